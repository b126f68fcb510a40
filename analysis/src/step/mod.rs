//! One analysis step: render every metric's queries, ask the metrics source, judge, summarise.
//!
//! Statistical checks (comparisons, SLO guards) split alpha evenly (Bonferroni): with k of them
//! each runs at `alpha / k`, so the chance that any healthy metric rolls back stays <= alpha.
//! Their count queries cover the time since that metric's previous counted window
//! (`{{interval}}` is set to it), so windows neither overlap nor leave gaps; the first window
//! uses the caller's `interval`.

// Early exits carry the finished Verdict; it is built once per metric, so its size does not matter.
#![allow(clippy::result_large_err)]

mod spec;

use chrono::{DateTime, Utc};

pub use spec::{
    AnalysisState, BucketSource, Check, CountSource, CountTemplates, MetricSpec, MetricState,
    MetricVerdict, StepOutcome,
};

use crate::builtin::{count_queries, value_query, Arm};
use crate::prometheus::QueryResult;
use crate::source::MetricsSource;
use crate::stats::{
    choose_boundary, latency_counts, slo_update, update, Histogram, IntervalCounts,
    SequentialConfig, SequentialState,
};
use crate::template::{render, Variables};
use crate::verdict::{judge_threshold, single_value, InconclusiveCause, Verdict, VerdictKind};

/// Stable requests needed before a latency boundary is chosen from stable's buckets.
pub const MIN_STABLE_FOR_BOUNDARY: f64 = 100.0;

struct Ctx<'a> {
    source: &'a dyn MetricsSource,
    now: DateTime<Utc>,
    queries: Vec<String>,
}

type Step<T> = Result<T, Verdict>;

impl Ctx<'_> {
    async fn run(&mut self, template: &str, vars: &Variables) -> Step<QueryResult> {
        let q =
            render(template, vars).map_err(|e| Verdict::error(format!("query template: {e}")))?;
        self.queries.push(q.clone());
        match self.source.query(&q, Some(self.now)).await {
            Ok(r) => Ok(r.result),
            Err(e) => Err(Verdict::error(format!("query failed: {e}"))),
        }
    }

    async fn value(&mut self, what: &str, template: &str, vars: &Variables) -> Step<f64> {
        let r = self.run(template, vars).await?;
        match single_value(&r) {
            Err(reason) => Err(Verdict::error(format!("{what}: {reason}"))),
            Ok(None) => Err(Verdict::inconclusive(
                InconclusiveCause::NoData,
                None,
                format!("{what}: no data (empty result)"),
            )),
            Ok(Some(v)) if v.is_nan() => Err(Verdict::inconclusive(
                InconclusiveCause::NaN,
                None,
                format!("{what}: NaN"),
            )),
            Ok(Some(v)) => Ok(v),
        }
    }

    async fn histogram(&mut self, what: &str, template: &str, vars: &Variables) -> Step<Histogram> {
        let r = self.run(template, vars).await?;
        Histogram::from_result(&r).map_err(|e| Verdict::error(format!("{what}: {e}")))
    }
}

fn templates(source: &CountSource) -> CountTemplates {
    match source {
        CountSource::Builtin(p) => {
            let (c, s) = (
                count_queries(*p, Arm::Canary),
                count_queries(*p, Arm::Stable),
            );
            CountTemplates {
                canary_requests: c.requests,
                canary_bad: c.errors,
                stable_requests: s.requests,
                stable_bad: s.errors,
            }
        }
        CountSource::Custom(t) => t.clone(),
    }
}

fn bucket_templates(source: &BucketSource) -> (String, String) {
    match source {
        BucketSource::Builtin(p) => (
            count_queries(*p, Arm::Stable).buckets,
            count_queries(*p, Arm::Canary).buckets,
        ),
        BucketSource::Custom { stable, canary } => (stable.clone(), canary.clone()),
    }
}

/// The step's variables plus the metric's args; `canary_ingress` defaults to `<ingress>-canary`.
fn metric_vars(base: &Variables, args: &Variables) -> Step<Variables> {
    let mut vars = base.clone();
    for (k, v) in args {
        if base.contains_key(k) {
            return Err(Verdict::error(format!(
                "metric argument {k:?} may not redefine a step variable"
            )));
        }
        vars.insert(k.clone(), v.clone());
    }
    if let (Some(ing), false) = (
        vars.get("ingress").cloned(),
        vars.contains_key("canary_ingress"),
    ) {
        vars.insert("canary_ingress".into(), format!("{ing}-canary"));
    }
    Ok(vars)
}

fn divided(settings: &SequentialConfig, k: usize) -> SequentialConfig {
    SequentialConfig {
        alpha: settings.alpha / k.max(1) as f64,
        ..*settings
    }
}

fn resume(saved: &Option<SequentialState>, cfg: &SequentialConfig) -> SequentialState {
    match saved {
        Some(s) if s.matches(cfg) => s.clone(),
        Some(_) => {
            tracing::warn!("comparison settings changed; restarting its evidence");
            SequentialState::new(cfg)
        }
        None => SequentialState::new(cfg),
    }
}

async fn judge(
    ctx: &mut Ctx<'_>,
    check: &Check,
    vars: &Variables,
    st: &mut MetricState,
    k: usize,
) -> Step<Verdict> {
    match check {
        Check::Threshold { query, threshold } => {
            Ok(judge_threshold(&ctx.run(query, vars).await?, threshold))
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
            Ok(judge_threshold(&ctx.run(&query, vars).await?, threshold))
        }
        Check::ErrorComparison { source, settings } => {
            let t = templates(source);
            let counts = IntervalCounts {
                canary_requests: ctx
                    .value("canary requests", &t.canary_requests, vars)
                    .await?,
                canary_bad: ctx.value("canary bad events", &t.canary_bad, vars).await?,
                stable_requests: ctx
                    .value("stable requests", &t.stable_requests, vars)
                    .await?,
                stable_bad: ctx.value("stable bad events", &t.stable_bad, vars).await?,
            };
            let cfg = divided(settings, k);
            let (s, v) = update(&cfg, &resume(&st.sequential, &cfg), &counts);
            st.sequential = Some(s);
            Ok(v)
        }
        Check::LatencyComparison {
            source,
            quantile,
            boundary,
            settings,
        } => {
            if !(*quantile > 0.0 && *quantile < 1.0) {
                return Err(Verdict::error(format!(
                    "latency quantile {quantile} must be in (0, 1)"
                )));
            }
            let (ts, tc) = bucket_templates(source);
            let stable = ctx.histogram("stable buckets", &ts, vars).await?;
            let canary = ctx.histogram("canary buckets", &tc, vars).await?;
            let cfg = divided(settings, k);
            let mut seq = resume(&st.sequential, &cfg);
            let Some(b) = boundary
                .or(seq.boundary)
                .or_else(|| choose_boundary(&stable, *quantile, MIN_STABLE_FOR_BOUNDARY))
            else {
                let cause = if stable.total() > 0.0 {
                    InconclusiveCause::NotEnoughEvidence
                } else {
                    InconclusiveCause::NoData
                };
                return Ok(Verdict::inconclusive(
                    cause,
                    None,
                    format!("waiting for {MIN_STABLE_FOR_BOUNDARY} stable requests in one window to choose a latency boundary (have {})", stable.total()),
                ));
            };
            let counts = latency_counts(&stable, &canary, b).ok_or_else(|| {
                Verdict::error(format!(
                    "latency boundary {b}s is not a bucket boundary of both arms' histograms"
                ))
            })?;
            seq.boundary = Some(b);
            let (s, v) = update(&cfg, &seq, &counts);
            st.sequential = Some(s);
            Ok(v)
        }
        Check::Slo { source, settings } => {
            let t = templates(source);
            let n = ctx
                .value("canary requests", &t.canary_requests, vars)
                .await?;
            let x = ctx.value("canary bad events", &t.canary_bad, vars).await?;
            let cfg = crate::stats::SloConfig {
                alpha: settings.alpha / k.max(1) as f64,
                ..*settings
            };
            let (s, v) = slo_update(&cfg, &st.slo.unwrap_or_default(), n, x);
            st.slo = Some(s);
            Ok(v)
        }
    }
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
        let (verdict, consumed) = match metric_vars(vars, &m.args) {
            Err(v) => (v, false),
            Ok(mut mv) => {
                let since = saved
                    .last_at
                    .filter(|_| m.check.is_statistical())
                    .map(|l| (now - l).num_milliseconds());
                match since {
                    Some(ms) if ms < 1000 => (
                        Verdict::inconclusive(
                            InconclusiveCause::NotEnoughEvidence,
                            None,
                            "evaluated less than 1 s ago; waiting",
                        ),
                        false,
                    ),
                    _ => {
                        if let Some(ms) = since {
                            mv.insert("interval".into(), format!("{ms}ms"));
                        }
                        let v = judge(&mut ctx, &m.check, &mv, &mut st, k)
                            .await
                            .unwrap_or_else(|v| v);
                        // A failed query leaves its window (and evidence) to the next step.
                        let consumed = v.kind != VerdictKind::Error;
                        (v, consumed)
                    }
                }
            }
        };
        if !consumed {
            st = saved;
        } else if m.check.is_statistical() {
            st.last_at = Some(now);
        }
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
