//! Bridge from the Rollout's analysis settings (crds `AnalysisSpec` / `MetricSpec` and
//! `AnalysisTemplate`s) to `sluice_analysis::analyse_step`, and from its verdicts back to the
//! state machine's `AnalysisRun`. Used by both shells (Kubernetes and standalone).
//!
//! Built-in metric names are `<family>-<metric>` with family `nginx` or `traefik` and metric
//! `success-rate`, `latency-p99`, `latency-mean`, `errors-vs-stable`, `latency-vs-stable`; the
//! analysis crate's own names (`request-success-rate`, ...) are accepted too. Whether `nginx` means
//! ingress-nginx or NGINX + mtail (and `traefik` the CRD or the file provider) comes from the
//! shell's router ([`Provider`]). In custom comparison queries `{{arm}}` stands for the arm's name
//! (the `primary` or `canary` variable).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sluice_analysis::stats::{RoutePromotion, RouteSplit};
use sluice_analysis::{
    analyse_step, error_counter, latency_histogram, AnalysisState, BuiltinMetric, Check,
    CounterSpec, InconclusiveCause, MetricState, MetricsSource, Provider, SequentialConfig,
    Variables,
};
use sluice_crds::{AnalysisSpec, AnalysisTemplate, ComparisonSpec, MetricSpec, RolloutStatus};

use crate::core::{AnalysisRun, MetricOutcome, VerdictKind};

/// Quantile of stable's latency whose bucket boundary the latency comparison judges at: the
/// first bucket bound at or above stable's p95. p95 rather than p99 because the test needs slow
/// requests to decide either way: with Prometheus' default buckets and a p99 of 300 ms, the
/// p99 bucket (0.5 s) holds about 0.03% of stable's requests, so proving "not 2x slower" would
/// take hours of traffic; at the p95 bucket about 2.6% are slower.
pub const LATENCY_QUANTILE: f64 = 0.95;

/// The template variables every metric may use.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StepVars {
    pub namespace: String,
    pub name: String,
    /// Stable arm: Service name (Kubernetes) or version label / file service name (standalone).
    pub primary: String,
    /// Canary arm, same conventions.
    pub canary: String,
    /// PromQL range for threshold queries, e.g. `30s`.
    pub interval: String,
    pub ingress: String,
    pub service: String,
    /// Service port (Traefik on Kubernetes labels services `NS-SVC-PORT@kubernetes`).
    pub port: String,
}

impl StepVars {
    pub fn to_variables(&self) -> Variables {
        [
            ("namespace", &self.namespace),
            ("name", &self.name),
            ("primary", &self.primary),
            ("canary", &self.canary),
            ("interval", &self.interval),
            ("ingress", &self.ingress),
            ("service", &self.service),
            ("port", &self.port),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
    }
}

impl StepVars {
    /// Variables for a Kubernetes Rollout: `primary` / `canary` are the Service names Sluice
    /// creates (`BASE-primary`, `BASE-canary` or the blue/green preview Service), `ingress` the
    /// user's Ingress (ingress-nginx), `service` the base name, `interval` the analysis interval.
    pub fn for_rollout(rollout: &sluice_crds::Rollout) -> StepVars {
        let spec = &rollout.spec;
        let base = spec
            .service
            .name
            .clone()
            .unwrap_or_else(|| spec.target_ref.name.clone());
        let canary = spec
            .strategy
            .blue_green
            .as_ref()
            .and_then(|b| b.preview_service.clone())
            .unwrap_or_else(|| format!("{base}-canary"));
        StepVars {
            namespace: rollout
                .metadata
                .namespace
                .clone()
                .unwrap_or_else(|| "default".to_string()),
            name: rollout.metadata.name.clone().unwrap_or_default(),
            primary: format!("{base}-primary"),
            canary,
            interval: spec
                .analysis
                .as_ref()
                .map(promql_interval)
                .unwrap_or_else(|| "1m".to_string()),
            ingress: spec
                .router
                .nginx
                .as_ref()
                .map(|n| n.ingress_ref.clone())
                .unwrap_or_default(),
            service: base,
            port: spec.service.port.to_string(),
        }
    }
}

/// The built-in flavour of a Kubernetes router: ingress-nginx or Traefik (CRD / Gateway API:
/// Traefik's service labels).
pub fn provider_for_router(router: &sluice_crds::RouterSpec) -> Provider {
    if router.nginx.is_some() {
        Provider::NginxIngress
    } else {
        Provider::Traefik
    }
}

/// The analysis interval as a PromQL duration (`2s`, `1m`), defaulting to `1m` when unparsable.
pub fn promql_interval(spec: &AnalysisSpec) -> String {
    sluice_crds::parse_duration(&spec.interval)
        .map(sluice_crds::format_duration)
        .unwrap_or_else(|_| "1m".to_string())
}

/// A metric that cannot be turned into a check (reported as an Error outcome every run).
#[derive(Debug, Clone, PartialEq)]
pub struct Unresolved {
    pub name: String,
    pub reason: String,
}

/// Metrics of the Rollout plus those of its templates, as analysis checks (web metrics aside:
/// [`resolve_web`]).
pub fn resolve_metrics(
    spec: &AnalysisSpec,
    templates: &[AnalysisTemplate],
    provider: Provider,
) -> (Vec<sluice_analysis::MetricSpec>, Vec<Unresolved>) {
    let (wanted, mut bad) = wanted_metrics(spec, templates);
    let mut ok = Vec::new();
    for (m, args) in wanted
        .into_iter()
        .filter(|(m, _)| m.web.is_none() && m.job.is_none())
    {
        match to_check(&m, provider) {
            Ok(check) => ok.push(sluice_analysis::MetricSpec {
                name: m.name.clone(),
                check,
                args,
            }),
            Err(reason) => bad.push(Unresolved {
                name: m.name.clone(),
                reason,
            }),
        }
    }
    (ok, bad)
}

/// A web metric ready to run: its request, its threshold, its template arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct WebMetric {
    pub name: String,
    pub check: sluice_crds::WebCheck,
    pub threshold: sluice_analysis::Threshold,
    pub args: BTreeMap<String, String>,
}

/// The web metrics of the Rollout and its templates (a template's problems are reported once,
/// by [`resolve_metrics`]; a web metric without a threshold there too).
pub fn resolve_web(spec: &AnalysisSpec, templates: &[AnalysisTemplate]) -> Vec<WebMetric> {
    let (wanted, _) = wanted_metrics(spec, templates);
    wanted
        .into_iter()
        .filter_map(|(m, args)| {
            let check = m.web.clone()?;
            let t = m.threshold.as_ref()?;
            Some(WebMetric {
                name: m.name.clone(),
                check,
                threshold: sluice_analysis::Threshold {
                    min: t.min,
                    max: t.max,
                },
                args,
            })
        })
        .collect()
}

/// A metric with its template arguments.
type WithArgs = (MetricSpec, BTreeMap<String, String>);

/// The job metrics (Kubernetes only) of the Rollout and its templates: name and Job.
pub fn resolve_jobs(
    spec: &AnalysisSpec,
    templates: &[AnalysisTemplate],
) -> Vec<(String, sluice_crds::JobCheck)> {
    let (wanted, _) = wanted_metrics(spec, templates);
    wanted
        .into_iter()
        .filter_map(|(m, _)| Some((m.name.clone(), m.job.clone()?)))
        .collect()
}

/// Every metric of the Rollout and of its templates with its arguments, and the template
/// references that cannot be used.
fn wanted_metrics(
    spec: &AnalysisSpec,
    templates: &[AnalysisTemplate],
) -> (Vec<WithArgs>, Vec<Unresolved>) {
    let mut wanted: Vec<WithArgs> = Vec::new();
    let mut bad = Vec::new();
    for m in &spec.metrics {
        wanted.push((m.clone(), m.args.clone()));
    }
    for r in &spec.templates {
        let Some(t) = templates
            .iter()
            .find(|t| t.metadata.name.as_deref() == Some(r.name.as_str()))
        else {
            bad.push(Unresolved {
                name: format!("template/{}", r.name),
                reason: format!("AnalysisTemplate {:?} not found", r.name),
            });
            continue;
        };
        // Template defaults, overridden by the reference's args, overridden by the metric's.
        let mut args: BTreeMap<String, String> = BTreeMap::new();
        let mut missing = Vec::new();
        for a in &t.spec.args {
            match r.args.get(&a.name).or(a.value.as_ref()) {
                Some(v) => {
                    args.insert(a.name.clone(), v.clone());
                }
                None => missing.push(a.name.clone()),
            }
        }
        for m in &t.spec.metrics {
            if missing.is_empty() {
                let mut all = args.clone();
                all.extend(m.args.clone());
                wanted.push((m.clone(), all));
            } else {
                bad.push(Unresolved {
                    name: m.name.clone(),
                    reason: format!(
                        "AnalysisTemplate {:?} needs a value for {}",
                        r.name,
                        missing.join(", ")
                    ),
                });
            }
        }
    }
    (wanted, bad)
}

/// `nginx` / `traefik` in the shell's flavour (Kubernetes or files).
fn family_provider(family: &str, base: Provider) -> Option<Provider> {
    let files = matches!(base, Provider::NginxMtail | Provider::TraefikFile);
    match (family, files) {
        ("nginx", false) => Some(Provider::NginxIngress),
        ("nginx", true) => Some(Provider::NginxMtail),
        ("traefik", false) => Some(Provider::Traefik),
        ("traefik", true) => Some(Provider::TraefikFile),
        ("load", _) => Some(Provider::SluiceLoad),
        _ => None,
    }
}

/// Parse a built-in name into its provider and metric.
pub fn parse_builtin(name: &str, base: Provider) -> Result<(Provider, BuiltinMetric), String> {
    if let Some(m) = BuiltinMetric::from_name(name) {
        return Ok((base, m));
    }
    let (family, rest) = name
        .split_once('-')
        .ok_or_else(|| format!("unknown built-in metric {name:?}"))?;
    let provider = family_provider(family, base).ok_or_else(|| {
        format!("unknown built-in family {family:?} in {name:?} (nginx, traefik, load)")
    })?;
    let metric = FAMILY_METRICS
        .iter()
        .find(|(suffix, _)| *suffix == rest)
        .map(|(_, m)| *m)
        .ok_or_else(|| format!("unknown built-in metric {rest:?} in {name:?}"))?;
    Ok((provider, metric))
}

/// The `<family>-` built-in families (`nginx`, `traefik`, and `load`: Sluice's built-in load).
pub const FAMILIES: [&str; 3] = ["nginx", "traefik", "load"];

/// The metric suffixes of the `<family>-<metric>` built-in names.
pub const FAMILY_METRICS: [(&str, BuiltinMetric); 5] = [
    ("success-rate", BuiltinMetric::RequestSuccessRate),
    ("latency-p99", BuiltinMetric::RequestDurationP99),
    ("latency-mean", BuiltinMetric::RequestDurationMean),
    ("errors-vs-stable", BuiltinMetric::ErrorRateComparison),
    ("latency-vs-stable", BuiltinMetric::LatencyComparison),
];

fn sequential(c: Option<&ComparisonSpec>) -> SequentialConfig {
    let d = SequentialConfig::default();
    let Some(c) = c else {
        return SequentialConfig {
            tolerated_ratio: 1.2,
            min_canary_requests: 200.0,
            ..d
        };
    };
    SequentialConfig {
        alpha: c.alpha.unwrap_or(d.alpha),
        beta: c.beta.unwrap_or(d.beta),
        tolerated_ratio: c.tolerated_ratio.unwrap_or(1.2),
        bad_ratio: c.degraded_ratio.unwrap_or(2.0),
        min_canary_requests: c.min_canary_requests.unwrap_or(200) as f64,
        negligible_bad_rate: c.negligible_bad_rate,
        ..d
    }
}

const LATENCY_BY: &str =
    "comparison.by (per-route comparison) is for error comparisons only, not latency";

/// Route slots of a per-route comparison unless `comparison.maxRoutes` says otherwise.
pub const DEFAULT_MAX_ROUTES: u32 = 10;

/// `comparison.by` as the analysis crate's route split (`None` without `by`).
fn route_split(c: Option<&ComparisonSpec>) -> Result<Option<RouteSplit>, String> {
    let Some(c) = c else { return Ok(None) };
    let Some(label) = &c.by else { return Ok(None) };
    let split = RouteSplit {
        label: label.clone(),
        max_routes: c.max_routes.unwrap_or(DEFAULT_MAX_ROUTES) as usize,
        promote: match c.promote_when.unwrap_or_default() {
            sluice_crds::RoutePromotion::Pooled => RoutePromotion::Pooled,
            sluice_crds::RoutePromotion::EveryRoute => RoutePromotion::EveryRoute,
        },
    };
    split
        .validate()
        .map_err(|e| format!("comparison.by: {e}"))?;
    Ok(Some(split))
}

/// `{{arm}}` becomes `{{primary}}` / `{{canary}}`, so the analysis crate escapes the value.
fn arm_template(t: &str, arm: &str) -> String {
    t.replace("{{arm}}", &format!("{{{{{arm}}}}}"))
        .replace("{{ arm }}", &format!("{{{{{arm}}}}}"))
}

/// One crds metric as an analysis check.
pub fn to_check(m: &MetricSpec, provider: Provider) -> Result<Check, String> {
    let threshold = m.threshold.as_ref().map(|t| sluice_analysis::Threshold {
        min: t.min,
        max: t.max,
    });
    if let Some(name) = &m.builtin {
        let (p, metric) = parse_builtin(name, provider)?;
        if metric.is_comparison() && !p.has_stable_arm() {
            return Err(format!(
                "built-in {name:?} compares with stable, but the built-in load reaches only the canary: use load-success-rate or load-latency-p99 with a threshold"
            ));
        }
        return match metric {
            BuiltinMetric::ErrorRateComparison => Ok(Check::ErrorComparison {
                counter: error_counter(p),
                settings: sequential(m.comparison.as_ref()),
                by: route_split(m.comparison.as_ref())?,
            }),
            BuiltinMetric::LatencyComparison if route_split(m.comparison.as_ref())?.is_some() => {
                Err(LATENCY_BY.into())
            }
            BuiltinMetric::LatencyComparison => Ok(Check::LatencyComparison {
                histogram: latency_histogram(p),
                quantile: LATENCY_QUANTILE,
                boundary: m
                    .comparison
                    .as_ref()
                    .and_then(|c| c.latency_boundary_seconds),
                settings: SequentialConfig {
                    // Never a floor on slow-request rates (validation refuses it too).
                    negligible_bad_rate: None,
                    ..sequential(m.comparison.as_ref())
                },
            }),
            _ => {
                let threshold = threshold
                    .ok_or_else(|| format!("built-in {name:?} needs a threshold (min/max)"))?;
                let shared = m.threshold.as_ref().and_then(|t| t.unless_stable_fails);
                if shared == Some(true) && !p.has_stable_arm() {
                    return Err(format!("{name:?}: threshold.unlessStableFails needs a stable arm, and the built-in load reaches only the canary"));
                }
                if shared.unwrap_or(p.has_stable_arm()) {
                    Ok(Check::SharedThreshold {
                        provider: p,
                        metric,
                        threshold,
                    })
                } else {
                    Ok(Check::BuiltinThreshold {
                        provider: p,
                        metric,
                        threshold,
                    })
                }
            }
        };
    }
    if let Some(c) = &m.comparison {
        if c.requests_query.is_some() || c.bad_query.is_some() {
            return Err("comparison.requestsQuery/badQuery are not supported (increase() extrapolates, so a window cannot be counted exactly): name the counter with comparison.counter, selector and badSelector".into());
        }
        let selector = c
            .selector
            .as_deref()
            .ok_or("a custom comparison needs comparison.selector (label matchers with {{arm}})")?;
        let spec = |metric: String, bad: String| CounterSpec {
            metric,
            stable: arm_template(selector, "primary"),
            canary: arm_template(selector, "canary"),
            bad,
        };
        return match (&c.counter, &c.histogram) {
            (Some(counter), None) => Ok(Check::ErrorComparison {
                counter: spec(
                    counter.clone(),
                    c.bad_selector
                        .clone()
                        .ok_or("comparison.counter needs comparison.badSelector")?,
                ),
                settings: sequential(Some(c)),
                by: route_split(Some(c))?,
            }),
            (None, Some(_)) if c.by.is_some() => Err(LATENCY_BY.into()),
            (None, Some(h)) => Ok(Check::LatencyComparison {
                histogram: spec(format!("{h}_bucket"), String::new()),
                quantile: LATENCY_QUANTILE,
                boundary: c.latency_boundary_seconds,
                settings: SequentialConfig {
                    negligible_bad_rate: None,
                    ..sequential(Some(c))
                },
            }),
            _ => Err("a custom comparison needs exactly one of comparison.counter or comparison.histogram".into()),
        };
    }
    if m.threshold.as_ref().and_then(|t| t.unless_stable_fails) == Some(true) {
        return Err("threshold.unlessStableFails needs a built-in metric (Sluice cannot tell stable's value from a custom query)".into());
    }
    match (&m.query, threshold) {
        (Some(q), Some(t)) => Ok(Check::Threshold {
            query: q.clone(),
            threshold: t,
        }),
        (Some(_), None) => Err("a query needs a threshold (min/max) or a comparison".into()),
        (None, _) => Err("set builtin, query, or comparison.counter / comparison.histogram".into()),
    }
}

/// The analysis crate's forecast in the status' shape.
fn forecast_status(f: &sluice_analysis::stats::Forecast) -> sluice_crds::MetricForecast {
    sluice_crds::MetricForecast {
        message: f.message.clone(),
        heading: f.heading.map(|h| format!("{h:?}")),
        more_canary_requests: f.more_canary_requests,
        seconds: f.seconds.filter(|s| s.is_finite()).map(|s| s.round()),
    }
}

/// The analysis crate's per-metric memory from the persisted status.
pub fn state_from_status(status: &RolloutStatus) -> AnalysisState {
    let mut state = AnalysisState::default();
    for m in &status.analysis.metrics {
        let Some(v) = &m.sequential_state else {
            continue;
        };
        match serde_json::from_value::<MetricState>(v.clone()) {
            Ok(s) => {
                state.metrics.insert(m.name.clone(), s);
            }
            Err(e) => {
                tracing::warn!(metric = %m.name, error = %e, "dropping unreadable sequential state")
            }
        }
    }
    state
}

/// The state machine's verdict for an analysis verdict.
pub fn map_verdict(v: &sluice_analysis::Verdict) -> VerdictKind {
    use sluice_analysis::VerdictKind as A;
    match (v.kind, v.cause) {
        (A::Pass, _) => VerdictKind::Pass,
        (A::Fail, _) => VerdictKind::Fail,
        (A::Error, _) => VerdictKind::Error,
        (A::Inconclusive, Some(InconclusiveCause::NotEnoughEvidence)) => VerdictKind::Pending,
        (A::Inconclusive, _) => VerdictKind::Inconclusive,
    }
}

fn reason(v: &sluice_analysis::Verdict) -> String {
    // The analysis crate's reason already names the counts; add the anytime-valid p-values.
    match &v.evidence {
        Some(e) => format!(
            "{} [p_fail={:.3}, p_pass={:.3}]",
            v.reason, e.p_fail, e.p_pass
        ),
        None => v.reason.clone(),
    }
}

/// Everything one analysis run needs.
pub struct RunInput<'a> {
    pub spec: &'a AnalysisSpec,
    pub templates: &'a [AnalysisTemplate],
    pub status: &'a RolloutStatus,
    pub vars: &'a StepVars,
    /// The shell's router flavour for built-ins.
    pub provider: Provider,
    pub revision: &'a str,
    pub now: DateTime<Utc>,
}

/// Run every metric once and return the run for `obs.analysis`. Never fails as a whole:
/// problems become Error / Inconclusive outcomes.
pub async fn run_analysis(input: RunInput<'_>, source: &dyn MetricsSource) -> AnalysisRun {
    let (metrics, unresolved) = resolve_metrics(input.spec, input.templates, input.provider);
    let state = state_from_status(input.status);
    let outcome = analyse_step(
        &metrics,
        source,
        &input.vars.to_variables(),
        &state,
        input.now,
    )
    .await;
    let mut out: Vec<MetricOutcome> = outcome
        .verdicts
        .iter()
        .map(|mv| MetricOutcome {
            name: mv.name.clone(),
            verdict: map_verdict(&mv.verdict),
            value: mv.verdict.value.filter(|v| v.is_finite()),
            reason: reason(&mv.verdict),
            sequential_state: outcome
                .state
                .metrics
                .get(&mv.name)
                .and_then(|s| serde_json::to_value(s).ok()),
            forecast: mv.verdict.forecast.as_ref().map(forecast_status),
        })
        .collect();
    let step_vars = input.vars.to_variables();
    for w in resolve_web(input.spec, input.templates) {
        let mut vars = step_vars.clone();
        let clash = w.args.keys().find(|k| step_vars.contains_key(*k));
        let verdict = match clash {
            Some(k) => sluice_analysis::Verdict::error(format!(
                "metric argument {k:?} may not redefine a step variable"
            )),
            None => {
                vars.extend(w.args.clone());
                crate::checks::web::evaluate(&w.check, &w.threshold, &vars)
                    .await
                    .0
            }
        };
        out.push(MetricOutcome {
            name: w.name,
            verdict: map_verdict(&verdict),
            value: verdict.value.filter(|v| v.is_finite()),
            reason: reason(&verdict),
            sequential_state: None,
            forecast: None,
        });
    }
    out.extend(unresolved.into_iter().map(|u| MetricOutcome {
        name: u.name,
        verdict: VerdictKind::Error,
        value: None,
        reason: u.reason,
        sequential_state: None,
        forecast: None,
    }));
    AnalysisRun {
        at: input.now,
        revision: input.revision.to_string(),
        metrics: out,
    }
}

#[cfg(test)]
#[path = "analysis_bridge_tests.rs"]
mod tests;
