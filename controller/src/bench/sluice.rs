//! Sluice's default policy, driven through the real state machine (`core::step`) inside the
//! simulator (`sim::Simulator`), with the product's own analysis path: the simulated traffic is
//! exported as ingress-nginx-shaped counters into a simulated Prometheus
//! ([`sluice_analysis::SimPrometheus`]) that samples them at a scrape interval, and every
//! analysis run is `analysis_bridge::run_analysis` reading the Rollout's status, sending the
//! built-in queries and persisting its evidence back into the status. No rule is re-implemented
//! here.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use sluice_analysis::{Provider, SimPrometheus};
use sluice_crds::{
    AnalysisSpec, CanaryStep, CanaryStrategy, ComparisonSpec, InconclusivePolicy, MetricSpec,
    NginxRouter, Phase, RolloutSpec, RolloutStatus, RoutePromotion, RouterSpec, ServiceSpec,
    Strategy, TargetRef,
};

use super::policy::{Control, Outcome, Policy};
use super::scenario::Scenario;
use super::traffic::{History, Second, Traffic, BUCKETS};
use crate::analysis_bridge::{run_analysis, RunInput, StepVars};
use crate::core::AnalysisRun;
use crate::sim::{AnalysisOracle, Script, SimConfig, Simulator, TimelineEntry};

/// The Sluice configuration under test.
#[derive(Debug, Clone, PartialEq)]
pub struct SluiceConfig {
    /// Canary steps: (weight, seconds to stay) — the last weight waits for a passing analysis.
    pub steps: Vec<(i32, u64)>,
    pub interval: u64,
    /// The comparison's settings, written into the Rollout (the product divides alpha).
    pub alpha: f64,
    pub beta: f64,
    pub tolerated_ratio: f64,
    pub degraded_ratio: f64,
    pub min_canary_requests: f64,
    pub canary_ready_after: u64,
    /// `negligibleBadRate` of the error comparison (off unless set).
    pub floor: Option<f64>,
    /// Per-route error comparison on ingress-nginx's `path` label (`comparison.by: path`)
    /// with this promotion rule; off unless set.
    pub by_path: Option<RoutePromotion>,
    /// The recommended metric set (docs/analysis.md): the two comparisons plus the built-in
    /// success-rate floor (>= 0.95, `unlessStableFails` on by default).
    pub success_floor: bool,
}

impl Default for SluiceConfig {
    /// The ComparisonSpec defaults documented in the CRD (alpha 0.05, beta 0.05, tolerated
    /// 1.2, degraded 2, 200 canary requests), 10 s analysis interval, steps 5/10/25/50.
    fn default() -> Self {
        SluiceConfig {
            steps: vec![(5, 60), (10, 60), (25, 60), (50, 0)],
            interval: 10,
            alpha: 0.05,
            beta: 0.05,
            tolerated_ratio: 1.2,
            degraded_ratio: 2.0,
            min_canary_requests: 200.0,
            canary_ready_after: 30,
            floor: None,
            by_path: None,
            success_floor: false,
        }
    }
}

impl SluiceConfig {
    /// This config with a scenario's overrides (interval, last weight, floor).
    pub fn for_scenario(&self, sc: &Scenario) -> SluiceConfig {
        let mut c = self.clone();
        if let Some(i) = sc.interval {
            c.interval = i;
        }
        if let Some(w) = sc.max_weight {
            c.steps.retain(|(s, _)| *s < w);
            c.steps.push((w, 0));
        }
        if sc.floor.is_some() {
            c.floor = sc.floor;
        }
        c
    }

    /// The Rollout spec a user would write for this policy.
    pub fn rollout_spec(&self) -> RolloutSpec {
        let mut steps = Vec::new();
        let last = self.steps.len().saturating_sub(1);
        for (i, (w, stay)) in self.steps.iter().enumerate() {
            steps.push(CanaryStep::weight(*w));
            if i == last {
                steps.push(CanaryStep::analyse());
            } else if *stay > 0 {
                steps.push(CanaryStep::pause_for(&format!("{stay}s")));
            }
        }
        let metric = |name: &str, builtin: &str, floor: Option<f64>, by: bool| MetricSpec {
            name: name.to_string(),
            builtin: Some(builtin.to_string()),
            comparison: Some(ComparisonSpec {
                alpha: Some(self.alpha),
                beta: Some(self.beta),
                tolerated_ratio: Some(self.tolerated_ratio),
                degraded_ratio: Some(self.degraded_ratio),
                min_canary_requests: Some(self.min_canary_requests as u64),
                negligible_bad_rate: floor,
                by: (by && self.by_path.is_some()).then(|| "path".to_string()),
                promote_when: self.by_path.filter(|_| by),
                ..ComparisonSpec::default()
            }),
            ..MetricSpec::default()
        };
        RolloutSpec {
            target_ref: TargetRef {
                api_version: "apps/v1".into(),
                kind: "Deployment".into(),
                name: "app".into(),
            },
            service: ServiceSpec {
                port: 80,
                ..ServiceSpec::default()
            },
            strategy: Strategy {
                canary: Some(CanaryStrategy {
                    steps,
                    ..CanaryStrategy::default()
                }),
                ..Strategy::default()
            },
            router: RouterSpec {
                nginx: Some(NginxRouter {
                    ingress_ref: "app".into(),
                    ..NginxRouter::default()
                }),
                ..RouterSpec::default()
            },
            analysis: Some(AnalysisSpec {
                interval: format!("{}s", self.interval),
                failure_limit: 0,
                inconclusive_limit: 3,
                on_inconclusive: InconclusivePolicy::Pause,
                error_limit: 3,
                on_errors: Default::default(),
                prometheus: None,
                metrics: {
                    let mut m = vec![
                        metric("errors", "nginx-errors-vs-stable", self.floor, true),
                        metric("latency", "nginx-latency-vs-stable", None, false),
                    ];
                    if self.success_floor {
                        m.push(MetricSpec {
                            name: "success-rate".into(),
                            builtin: Some("nginx-success-rate".into()),
                            threshold: Some(sluice_crds::Threshold {
                                min: Some(0.95),
                                ..Default::default()
                            }),
                            ..MetricSpec::default()
                        });
                    }
                    m
                },
                templates: vec![],
            }),
            gates: Default::default(),
            alerts: vec![],
            progress_deadline_seconds: 600,
            canary_loss: Default::default(),
            load: None,
            post_promotion_watch_seconds: 0,
            paused: false,
            skip_analysis: false,
        }
    }
}

/// The namespace, names and ingress-nginx labels of the simulated app.
const NS: &str = "default";
const INGRESS: &str = "app";
/// ingress-nginx's `canary` label of a request served by the canary backend:
/// `<namespace>-<canary Service>-<port>` (see sluice_analysis::builtin).
const CANARY_UPSTREAM: &str = "default-app-canary-80";
const REQUESTS: &str = "nginx_ingress_controller_requests";
const DURATION: &str = "nginx_ingress_controller_request_duration_seconds_bucket";
/// Stable's history before the rollout that the simulated Prometheus holds.
const HISTORY_SECONDS: u64 = 3600;

/// The `le` label of each histogram slot (the finite bounds, then `+Inf`), formatted once
/// rather than every simulated second.
static LE_LABELS: std::sync::LazyLock<Vec<String>> = std::sync::LazyLock::new(|| {
    BUCKETS
        .iter()
        .map(|b| format!("{b}"))
        .chain(std::iter::once("+Inf".to_string()))
        .collect()
});

/// The exporter side: one second of both arms' traffic into ingress-nginx-shaped counters,
/// with the `path` label (the Ingress rule's path: `/`, and the scenario's hot route if any).
fn export(prom: &SimPrometheus, sec: &Second, hot_path: &str) {
    let rest = (
        sec.canary.minus(&sec.canary_hot),
        sec.stable.minus(&sec.stable_hot),
    );
    for (arm, path, c) in [
        (CANARY_UPSTREAM, "/", &rest.0),
        ("", "/", &rest.1),
        (CANARY_UPSTREAM, hot_path, &sec.canary_hot),
        ("", hot_path, &sec.stable_hot),
    ] {
        let ok = f64::from(c.requests - c.errors);
        let labels = |status: &'static str| {
            [
                ("namespace", NS),
                ("ingress", INGRESS),
                ("path", path),
                ("canary", arm),
                ("status", status),
            ]
        };
        if ok > 0.0 {
            prom.add(REQUESTS, &labels("200"), ok);
        }
        if c.errors > 0 {
            prom.add(REQUESTS, &labels("500"), f64::from(c.errors));
        }
        if c.requests == 0 {
            continue;
        }
        // Cumulative buckets; a histogram's children all exist once it has observed anything.
        let mut acc = 0.0;
        for (n, le) in c.buckets.iter().zip(LE_LABELS.iter()) {
            acc += f64::from(*n);
            prom.add(
                DURATION,
                &[
                    ("namespace", NS),
                    ("ingress", INGRESS),
                    ("path", path),
                    ("canary", arm),
                    ("le", le.as_str()),
                ],
                acc,
            );
        }
    }
}

/// The product's analysis path: the bridge (`run_analysis`), the step analysis, the windowed
/// queries and the evidence persisted in the Rollout's status, against the simulated Prometheus.
struct ProductOracle {
    prom: Arc<SimPrometheus>,
    analysis: AnalysisSpec,
    vars: StepVars,
}

impl AnalysisOracle for ProductOracle {
    fn run(
        &mut self,
        at: DateTime<Utc>,
        _weight: i32,
        revision: &str,
        status: &RolloutStatus,
    ) -> AnalysisRun {
        // The simulated Prometheus answers at once, so polling the future once finishes it.
        futures::executor::block_on(run_analysis(
            RunInput {
                spec: &self.analysis,
                templates: &[],
                status,
                vars: &self.vars,
                provider: Provider::NginxIngress,
                revision,
                now: at,
            },
            &*self.prom,
        ))
    }
}

/// One Sluice rollout of revision "v2" in the simulator.
pub struct Sluice {
    sim: Simulator,
    prom: Arc<SimPrometheus>,
    scrape: u64,
    /// Scrape phase: scrapes happen at seconds t with (t + phase) % scrape == 0.
    phase: u64,
    restart_at: Option<u64>,
    /// The scenario's hot route (`path` label), `/` without one.
    hot_path: String,
    /// Whether the canary's death (scenario `canary_dies_at`) reached the simulated world.
    killed: bool,
    t0: DateTime<Utc>,
    next_wake: u64,
    max_tick: u64,
    entries: Vec<TimelineEntry>,
}

fn at(t0: DateTime<Utc>, secs: u64) -> DateTime<Utc> {
    t0 + TimeDelta::seconds(secs as i64)
}

impl Sluice {
    pub fn new(cfg: &SluiceConfig, scenario: &Scenario, seed: u64) -> Self {
        let cfg = cfg.for_scenario(scenario);
        Self::with_spec(
            cfg.rollout_spec(),
            cfg.interval,
            cfg.canary_ready_after,
            scenario,
            seed,
        )
    }

    /// A rollout of `spec` (a user's own, for `sluice simulate`): `interval` is its analysis
    /// interval in seconds (the longest the simulator sleeps), `ready_after` how long a new
    /// Deployment takes to be ready.
    pub fn with_spec(
        spec: RolloutSpec,
        interval: u64,
        ready_after: u64,
        scenario: &Scenario,
        seed: u64,
    ) -> Self {
        let interval = interval.max(1);
        let prom = Arc::new(SimPrometheus::new());
        let oracle = ProductOracle {
            prom: prom.clone(),
            analysis: spec.analysis.clone().unwrap_or_default(),
            vars: StepVars {
                namespace: NS.into(),
                name: "app".into(),
                primary: "app-primary".into(),
                canary: "app-canary".into(),
                interval: format!("{interval}s"),
                ingress: INGRESS.into(),
                service: "app".into(),
                port: "80".into(),
            },
        };
        let sim_cfg = SimConfig {
            canary_ready_delay: Duration::from_secs(ready_after),
            primary_ready_delay: Duration::from_secs(ready_after),
            max_tick: Duration::from_secs(interval),
            ..SimConfig::default()
        };
        let mut sim = Simulator::new(spec, sim_cfg).with_oracle(oracle);
        // First sight of the rollout: primary created, stable routed; then the change comes.
        sim.run(&Script::new(), Duration::from_secs(60));
        let t0 = sim.now() + TimeDelta::seconds(1);
        let scrape = scenario.scrape.max(1);
        let phase = seed % scrape;
        let hot_path = scenario
            .hot_route
            .as_ref()
            .map_or("/".to_string(), |h| h.path.clone());
        // An hour of stable-only traffic before the change, as a running service has.
        let mut calm = scenario.clone();
        calm.spike = None;
        let mut before = Traffic::new(&calm, seed ^ 0x5eed_ba5e);
        let t_hist = t0 - TimeDelta::seconds(HISTORY_SECONDS as i64);
        for t in 0..HISTORY_SECONDS {
            if (t + phase).is_multiple_of(scrape) {
                prom.scrape(at(t_hist, t).timestamp_millis());
            }
            export(&prom, &before.second(t, 0), &hot_path);
        }
        Sluice {
            sim,
            prom,
            scrape,
            phase,
            restart_at: scenario.exporter_restart_at,
            hot_path,
            killed: false,
            t0,
            next_wake: 0,
            max_tick: interval,
            entries: Vec::new(),
        }
    }
}

impl Policy for Sluice {
    fn control(&mut self, t: u64, h: &History) -> Control {
        if t > 0 {
            if let Some(sec) = h.seconds.get(t as usize - 1) {
                export(&self.prom, sec, &self.hot_path);
                if sec.canary_dead && !self.killed {
                    // The pods are gone: the target Deployment has no ready replica from now.
                    self.killed = true;
                    self.sim.world.target.ready_at = None;
                }
            }
        }
        if self.restart_at == Some(t) {
            self.prom.restart();
        }
        let now = at(self.t0, t);
        if (t + HISTORY_SECONDS + self.phase).is_multiple_of(self.scrape) {
            self.prom.scrape(now.timestamp_millis());
        }
        self.sim.clock.set(now);
        if t == 0 {
            self.sim.world.set_target_revision("v2", now);
        }
        if t >= self.next_wake {
            let requeue = self.sim.tick(&mut self.entries);
            self.entries.clear();
            let mut wake = t + requeue
                .map_or(self.max_tick, |d| d.as_secs())
                .min(self.max_tick);
            if let Some(c) = self.sim.world.next_change(now) {
                let secs = (c - self.t0).num_seconds().max(0) as u64;
                wake = wake.min(secs);
            }
            self.next_wake = wake.max(t + 1);
        }
        let weight = self.sim.world.router.weight.unwrap_or(0);
        let decided = match self.sim.status.phase {
            Phase::Promoting | Phase::Succeeded => Some(Outcome::Promoted),
            Phase::RollingBack | Phase::Failed => Some(Outcome::RolledBack),
            _ => None,
        };
        Control { weight, decided }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bench's Sluice is the product's path: its evidence lives in the simulated Rollout's
    /// status (as the shells persist it) and no analysis run errors against the simulated
    /// Prometheus, which answers only the raw selectors the built-ins send.
    #[test]
    fn analysis_runs_through_the_status_and_the_simulated_prometheus() {
        let sc = Scenario::errors(5.0);
        let mut p = Sluice::new(&SluiceConfig::default(), &sc, 3);
        let mut traffic = Traffic::new(&sc, 3);
        let mut h = History::default();
        let mut decided = None;
        for t in 0..900 {
            let c = p.control(t, &h);
            if c.decided.is_some() {
                decided = c.decided;
                break;
            }
            h.seconds.push(traffic.second(t, c.weight));
        }
        assert_eq!(decided, Some(Outcome::RolledBack));
        let metrics = &p.sim.status.analysis.metrics;
        assert_eq!(metrics.len(), 2, "{metrics:?}");
        for m in metrics {
            assert_eq!(m.errors, 0, "{}: {:?}", m.name, m.last_reason);
            let state = m
                .sequential_state
                .as_ref()
                .expect("evidence persisted in status");
            let canary = state["sequential"]["canaryRequests"]
                .as_f64()
                .unwrap_or(0.0);
            assert!(canary > 0.0, "{}: {state}", m.name);
        }
        // The simulated Prometheus holds ingress-nginx's shape, canary series included.
        let canary_series = p
            .prom
            .dump()
            .into_iter()
            .filter(|(l, _)| l.get("canary").map(String::as_str) == Some(CANARY_UPSTREAM))
            .count();
        assert!(canary_series > 0);
    }
}
