//! Runs one policy on one scenario and seed, second by second, and measures the outcome.

use serde::Serialize;

use super::argo::{Argo, ArgoConfig};
use super::flagger::{Flagger, FlaggerConfig};
use super::policy::{Outcome, Policy};
use super::scenario::Scenario;
use super::sluice::{Sluice, SluiceConfig};
use super::traffic::{History, Traffic};
use sluice_crds::RoutePromotion;

/// A policy to benchmark, by name and settings.
#[derive(Debug, Clone, PartialEq)]
pub enum PolicyKind {
    Flagger(FlaggerConfig),
    Argo(ArgoConfig),
    Sluice(SluiceConfig),
    /// A user's own Rollout spec (`sluice simulate`), with its analysis interval in seconds.
    Spec {
        spec: Box<sluice_crds::RolloutSpec>,
        interval: u64,
    },
}

/// A named policy.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicySpec {
    pub name: String,
    pub description: String,
    pub kind: PolicyKind,
}

impl PolicySpec {
    pub fn build(&self, scenario: &Scenario, seed: u64) -> Box<dyn Policy> {
        match &self.kind {
            PolicyKind::Flagger(c) => Box::new(Flagger::new(*c)),
            PolicyKind::Argo(c) => Box::new(Argo::new(c.clone())),
            PolicyKind::Sluice(c) => Box::new(Sluice::new(c, scenario, seed)),
            PolicyKind::Spec { spec, interval } => Box::new(Sluice::with_spec(
                (**spec).clone(),
                *interval,
                SluiceConfig::default().canary_ready_after,
                scenario,
                seed,
            )),
        }
    }
}

/// The policies compared, baselines first.
pub fn policies() -> Vec<PolicySpec> {
    let r3 = SluiceConfig {
        degraded_ratio: 3.0,
        ..SluiceConfig::default()
    };
    vec![
        PolicySpec {
            name: "flagger".into(),
            description: "Flagger defaults: 1m interval, threshold 5, stepWeight 10, maxWeight 50, success >= 99%, p99 <= 500 ms, NaN = failed check".into(),
            kind: PolicyKind::Flagger(FlaggerConfig::default()),
        },
        PolicySpec {
            name: "argo".into(),
            description: "Argo-style: steps 10/25/50 with 2m pauses then 100, background analysis every 1m, success >= 0.99 and p99 <= 0.5 s, failureLimit 2, NaN = failed".into(),
            kind: PolicyKind::Argo(ArgoConfig::default()),
        },
        PolicySpec {
            name: "sluice".into(),
            description: "Sluice default via core::step: steps 5/10/25 (1m each) then 50 until a Pass, 10s interval, sequential canary-vs-stable tests on errors and slow requests (alpha 0.05, beta 0.05, tolerated 1.2, degraded 2, min 200 canary requests)".into(),
            kind: PolicyKind::Sluice(SluiceConfig::default()),
        },
        PolicySpec {
            name: "sluice-r3".into(),
            description: "as sluice, but degradedRatio 3 (promotion rules out 3x instead of 2x)".into(),
            kind: PolicyKind::Sluice(r3),
        },
    ]
}

/// The policies of the fault cells (`--suite faults`): Flagger's defaults, Sluice's default,
/// and Sluice with the per-route error comparison (`comparison.by: path`) under both promotion
/// rules; all Sluice variants keep the default canary-loss grace (10 s, then roll back).
pub fn fault_policies() -> Vec<PolicySpec> {
    let mut out: Vec<PolicySpec> = policies()
        .into_iter()
        .filter(|p| p.name == "flagger" || p.name == "sluice")
        .collect();
    for (name, rule, what) in [
        (
            "sluice-by-path",
            RoutePromotion::Pooled,
            "promoteWhen pooled",
        ),
        (
            "sluice-by-path-every",
            RoutePromotion::EveryRoute,
            "promoteWhen everyRoute",
        ),
    ] {
        out.push(PolicySpec {
            name: name.into(),
            description: format!(
                "as sluice, with the error comparison also per route (comparison.by: path, maxRoutes 10, {what})"
            ),
            kind: PolicyKind::Sluice(SluiceConfig {
                by_path: Some(rule),
                ..SluiceConfig::default()
            }),
        });
    }
    out.push(PolicySpec {
        name: "sluice-recommended".into(),
        description: "as sluice, with the recommended metric set: the two comparisons plus success-rate >= 0.95 (unlessStableFails on)".into(),
        kind: PolicyKind::Sluice(SluiceConfig {
            success_floor: true,
            ..SluiceConfig::default()
        }),
    });
    out
}

/// Weight and canary errors over time, for plots (one point per `TRACE_STEP` seconds).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Trace {
    pub t: Vec<u64>,
    pub weight: Vec<i32>,
    /// Canary error rate over the trace step (None: no canary requests).
    pub canary_error_rate: Vec<Option<f64>>,
}

pub const TRACE_STEP: u64 = 10;

/// Measurements of one run.
#[derive(Debug, Clone, Serialize)]
pub struct RunResult {
    pub outcome: Outcome,
    /// Seconds from the change to the decision (promotion start or rollback); None if undecided.
    pub decided_at: Option<u64>,
    /// Requests and errors the canary served until the decision (or the horizon).
    pub canary_requests: u64,
    pub canary_errors: u64,
    /// Scenario `canary_dies_at`: canary requests answered with errors after the death, and
    /// seconds from the death to the first second the canary served no traffic (weight 0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors_after_death: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub death_to_zero: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace: Option<Trace>,
}

/// Run `policy` on `scenario` with `seed` for at most `horizon` seconds.
pub fn run_one(
    policy: &PolicySpec,
    scenario: &Scenario,
    seed: u64,
    horizon: u64,
    trace: bool,
) -> RunResult {
    let mut p = policy.build(scenario, seed);
    let mut traffic = Traffic::new(scenario, seed);
    let mut h = History::default();
    let mut decided = None;
    for t in 0..horizon {
        let c = p.control(t, &h);
        if let Some(o) = c.decided {
            decided = Some((o, t));
            break;
        }
        let sec = traffic.second(t, c.weight);
        h.seconds.push(sec);
    }
    let (c, _) = h.window(0, h.now());
    let death = h.seconds.iter().position(|s| s.canary_dead);
    let errors_after_death = death.map(|d| {
        h.seconds[d..]
            .iter()
            .map(|s| u64::from(s.canary.errors))
            .sum()
    });
    // Zero from the death on: the weight of a later second, or the decision (all to stable).
    let death_to_zero = death.and_then(|d| {
        h.seconds[d..]
            .iter()
            .position(|s| s.weight == 0)
            .map(|i| i as u64)
            .or_else(|| decided.map(|(_, t)| t.saturating_sub(d as u64)))
    });
    RunResult {
        errors_after_death,
        death_to_zero,
        outcome: decided.map_or(Outcome::Undecided, |d| d.0),
        decided_at: decided.map(|d| d.1),
        canary_requests: u64::from(c.requests),
        canary_errors: u64::from(c.errors),
        trace: trace.then(|| make_trace(&h)),
    }
}

fn make_trace(h: &History) -> Trace {
    let mut tr = Trace::default();
    let mut t = 0;
    while t < h.now() {
        let (c, _) = h.window(t, t + TRACE_STEP);
        tr.t.push(t);
        tr.weight
            .push(h.seconds.get(t as usize).map_or(0, |s| s.weight));
        tr.canary_error_rate
            .push((c.requests > 0).then(|| f64::from(c.errors) / f64::from(c.requests)));
        t += TRACE_STEP;
    }
    tr
}
