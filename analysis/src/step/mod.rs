//! One analysis step: render every metric's queries, ask the metrics source, judge, summarise.
//!
//! Statistical checks (comparisons, SLO guards) split alpha evenly (Bonferroni): with k of them
//! each runs at `alpha / k`, so the chance that any healthy metric rolls back stays <= alpha.
//! They count exactly (raw counter samples, [`crate::counters`]) over windows that start where
//! that metric's previous counted window ended and end at the newest scrape both arms have
//! ([`window`]), so windows neither overlap nor leave gaps; the first window starts `interval`
//! before now.

// Early exits carry the finished Verdict; it is built once per metric, so its size does not matter.
#![allow(clippy::result_large_err)]

mod compare;
mod routes;
mod shared;
mod spec;
pub mod window;

use chrono::{DateTime, Utc};

pub use compare::MIN_STABLE_FOR_BOUNDARY;
pub use spec::{AnalysisState, Check, MetricSpec, MetricState, MetricVerdict, StepOutcome};

use crate::builtin::{value_query, Arm};
use crate::prometheus::QueryResult;
use crate::source::MetricsSource;
use crate::stats::{SequentialConfig, SloConfig};
use crate::template::{render, Variables};
use crate::verdict::{judge_threshold, InconclusiveCause, Verdict, VerdictKind};

/// The first window's length when `interval` is missing or unreadable.
const DEFAULT_INTERVAL_MS: i64 = 60_000;

pub(crate) struct Ctx<'a> {
    source: &'a dyn MetricsSource,
    now: DateTime<Utc>,
    queries: Vec<String>,
}

pub(crate) type Step<T> = Result<T, Verdict>;

impl Ctx<'_> {
    async fn run(&mut self, template: &str, vars: &Variables) -> Step<QueryResult> {
        let now = self.now;
        self.run_at(template, vars, now).await
    }

    async fn run_at(
        &mut self,
        template: &str,
        vars: &Variables,
        at: DateTime<Utc>,
    ) -> Step<QueryResult> {
        let q =
            render(template, vars).map_err(|e| Verdict::error(format!("query template: {e}")))?;
        self.queries.push(q.clone());
        match self.source.query(&q, Some(at)).await {
            Ok(r) => Ok(r.result),
            Err(e) => Err(Verdict::error(format!("query failed: {e}"))),
        }
    }
}

/// The step's variables plus the metric's args.
fn metric_vars(base: &Variables, args: &Variables) -> Step<Variables> {
    let mut vars = base.clone();
    for (k, v) in args {
        if base.contains_key(k) || k == "range" {
            return Err(Verdict::error(format!(
                "metric argument {k:?} may not redefine a step variable"
            )));
        }
        vars.insert(k.clone(), v.clone());
    }
    Ok(vars)
}

fn divided(settings: &SequentialConfig, k: usize) -> SequentialConfig {
    SequentialConfig {
        alpha: settings.alpha / k.max(1) as f64,
        ..*settings
    }
}

/// A verdict and, for statistical checks, where its counted window ended.
type Outcome = (Verdict, Option<i64>);

async fn judge(
    ctx: &mut Ctx<'_>,
    check: &Check,
    vars: &Variables,
    st: &mut MetricState,
    k: usize,
    start: i64,
    chunk_ms: i64,
) -> Step<Outcome> {
    let judged = match check {
        Check::Threshold { query, threshold } => {
            return Ok((
                judge_threshold(&ctx.run(query, vars).await?, threshold),
                None,
            ))
        }
        Check::BuiltinThreshold {
            provider,
            metric,
            threshold,
        } => {
            let query = value_query(*provider, *metric, Arm::Canary).ok_or_else(|| {
                Verdict::error(format!(
                    "{} is a comparison metric, not a threshold metric",
                    metric.name()
                ))
            })?;
            return Ok((
                judge_threshold(&ctx.run(&query, vars).await?, threshold),
                None,
            ));
        }
        Check::SharedThreshold {
            provider,
            metric,
            threshold,
        } => {
            return Ok((
                shared::judge(ctx, *provider, *metric, threshold, vars).await?,
                None,
            ))
        }
        Check::ErrorComparison {
            counter,
            settings,
            by,
        } => {
            let cfg = divided(settings, k);
            compare::errors(ctx, counter, by.as_ref(), &cfg, vars, st, start, chunk_ms).await?
        }
        Check::LatencyComparison {
            histogram,
            quantile,
            boundary,
            settings,
        } => {
            let cfg = divided(settings, k);
            compare::latency(
                ctx, histogram, *quantile, *boundary, &cfg, vars, st, start, chunk_ms,
            )
            .await?
        }
        Check::Slo { counter, settings } => {
            let cfg = SloConfig {
                alpha: settings.alpha / k.max(1) as f64,
                ..*settings
            };
            compare::slo(ctx, counter, &cfg, vars, st, start).await?
        }
    };
    Ok((judged.verdict, Some(judged.end_ms)))
}

/// Runs one analysis step at `now` with the step's template variables (`namespace`, `name`,
/// `primary`, `canary`, `ingress`, `interval`, ...). Never fails as a whole: problems become
/// per-metric Error / Inconclusive verdicts.
pub async fn analyse_step(
    metrics: &[MetricSpec],
    source: &dyn MetricsSource,
    vars: &Variables,
    state: &AnalysisState,
    now: DateTime<Utc>,
) -> StepOutcome {
    let k = metrics.iter().filter(|m| m.check.is_statistical()).count();
    let interval_ms = vars
        .get("interval")
        .and_then(|i| crate::template::duration_ms(i))
        .filter(|ms| *ms > 0)
        .unwrap_or(DEFAULT_INTERVAL_MS);
    let mut new_state = AnalysisState::default();
    let mut verdicts = Vec::with_capacity(metrics.len());
    for m in metrics {
        let mut ctx = Ctx {
            source,
            now,
            queries: Vec::new(),
        };
        let saved = state.metrics.get(&m.name).cloned().unwrap_or_default();
        let mut st = saved.clone();
        let start = saved
            .last_at
            .filter(|_| m.check.is_statistical())
            .map_or(now.timestamp_millis() - interval_ms, |l| {
                l.timestamp_millis()
            });
        let outcome = match metric_vars(vars, &m.args) {
            Err(v) => Err(v),
            Ok(_) if m.check.is_statistical() && now.timestamp_millis() - start < 1000 => {
                Err(Verdict::inconclusive(
                    InconclusiveCause::NotEnoughEvidence,
                    None,
                    "evaluated less than 1 s ago; waiting",
                ))
            }
            Ok(mv) => judge(&mut ctx, &m.check, &mv, &mut st, k, start, interval_ms).await,
        };
        // An early exit (query error, nothing new scraped) leaves its window and evidence to
        // the next step.
        let verdict = match outcome {
            Ok((v, end)) => {
                if let Some(end) = end {
                    st.last_at = Some(window::to_time(end));
                }
                v
            }
            Err(v) => {
                st = saved;
                v
            }
        };
        if st != MetricState::default() {
            new_state.metrics.insert(m.name.clone(), st);
        }
        verdicts.push(MetricVerdict {
            name: m.name.clone(),
            verdict,
            queries: ctx.queries,
        });
    }
    let summary = summarise(&verdicts);
    StepOutcome {
        verdicts,
        summary,
        state: new_state,
    }
}

/// Combines per-metric verdicts: Fail > Error > Inconclusive > Pass.
pub fn summarise(verdicts: &[MetricVerdict]) -> Verdict {
    let named = |kind: VerdictKind| -> Vec<String> {
        verdicts
            .iter()
            .filter(|m| m.verdict.kind == kind)
            .map(|m| format!("{}: {}", m.name, m.verdict.reason))
            .collect()
    };
    if verdicts.is_empty() {
        return Verdict::pass(None, "no metrics to check");
    }
    for kind in [VerdictKind::Fail, VerdictKind::Error] {
        let list = named(kind);
        if !list.is_empty() {
            return match kind {
                VerdictKind::Fail => Verdict::fail(None, list.join("; ")),
                _ => Verdict::error(list.join("; ")),
            };
        }
    }
    let list = named(VerdictKind::Inconclusive);
    if !list.is_empty() {
        // A metric without data matters more to the controller than one still collecting.
        let cause = verdicts
            .iter()
            .filter_map(|m| m.verdict.cause)
            .find(|c| *c != InconclusiveCause::NotEnoughEvidence)
            .unwrap_or(InconclusiveCause::NotEnoughEvidence);
        return Verdict::inconclusive(cause, None, list.join("; "));
    }
    Verdict::pass(None, format!("all {} metrics passed", verdicts.len()))
}

#[cfg(test)]
mod tests;
