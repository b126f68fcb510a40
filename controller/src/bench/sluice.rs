//! Sluice's default policy, driven through the real state machine (`core::step`) inside the
//! simulator (`sim::Simulator`), with an analysis oracle that feeds the simulated per-interval
//! counts to the real sequential canary-vs-stable test of sluice-analysis (errors, and requests
//! slower than the histogram bucket holding stable's p95).

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use sluice_analysis::stats::{self, choose_boundary, latency_counts, Histogram};
use sluice_analysis::verdict::{InconclusiveCause, Verdict, VerdictKind as AVerdict};
use sluice_analysis::{IntervalCounts, SequentialConfig, SequentialState};
use sluice_crds::{
    AnalysisSpec, CanaryStep, CanaryStrategy, InconclusivePolicy, MetricSpec, NginxRouter, Phase,
    RolloutSpec, RouterSpec, ServiceSpec, Strategy, TargetRef,
};

use super::policy::{Control, Outcome, Policy};
use super::traffic::{ArmCounts, History, BUCKETS};
use crate::core::{AnalysisRun, MetricOutcome, VerdictKind};
use crate::sim::{AnalysisOracle, Script, SimConfig, Simulator, TimelineEntry};

/// The Sluice configuration under test.
#[derive(Debug, Clone, PartialEq)]
pub struct SluiceConfig {
    /// Canary steps: (weight, seconds to stay) — the last weight waits for a passing analysis.
    pub steps: Vec<(i32, u64)>,
    pub interval: u64,
    /// The comparison's settings (alpha is divided between the two metrics here).
    pub alpha: f64,
    pub beta: f64,
    pub tolerated_ratio: f64,
    pub degraded_ratio: f64,
    pub min_canary_requests: f64,
    pub canary_ready_after: u64,
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
        }
    }
}

impl SluiceConfig {
    fn sequential(&self) -> SequentialConfig {
        SequentialConfig {
            // As analyse_step does: alpha is split over the two metrics, beta is not (a Pass
            // needs every metric to pass).
            alpha: self.alpha / 2.0,
            beta: self.beta,
            tolerated_ratio: self.tolerated_ratio,
            bad_ratio: self.degraded_ratio,
            min_canary_requests: self.min_canary_requests,
            ..SequentialConfig::default()
        }
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
        let metric = |name: &str, builtin: &str| MetricSpec {
            name: name.to_string(),
            builtin: Some(builtin.to_string()),
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
                prometheus: None,
                metrics: vec![
                    metric("errors", "nginx-errors-vs-stable"),
                    metric("latency", "nginx-latency-vs-stable"),
                ],
                templates: vec![],
            }),
            alerts: vec![],
            progress_deadline_seconds: 600,
            post_promotion_watch_seconds: 0,
            paused: false,
            skip_analysis: false,
        }
    }
}

/// Cumulative counts the policy shares with its oracle.
#[derive(Debug, Default)]
struct Totals {
    canary: ArmCounts,
    stable: ArmCounts,
}

/// Judges each analysis run from the counts since the previous run, with sluice-analysis.
struct CountsOracle {
    totals: Rc<RefCell<Totals>>,
    seen: Totals,
    cfg: SequentialConfig,
    errors: SequentialState,
    latency: SequentialState,
}

fn histogram(c: &ArmCounts) -> Histogram {
    let mut acc = 0.0;
    let mut buckets = Vec::with_capacity(c.buckets.len());
    for (i, n) in c.buckets.iter().enumerate() {
        acc += f64::from(*n);
        buckets.push((BUCKETS.get(i).copied().unwrap_or(f64::INFINITY), acc));
    }
    Histogram { buckets }
}

fn diff(a: &ArmCounts, b: &ArmCounts) -> ArmCounts {
    let mut out = ArmCounts {
        requests: a.requests - b.requests,
        errors: a.errors - b.errors,
        ..ArmCounts::default()
    };
    for (i, o) in out.buckets.iter_mut().enumerate() {
        *o = a.buckets[i] - b.buckets[i];
    }
    out
}

/// The state machine's view of an analysis verdict: "still collecting" is Pending.
fn outcome(name: &str, v: &Verdict) -> MetricOutcome {
    let verdict = match (v.kind, v.cause) {
        (AVerdict::Pass, _) => VerdictKind::Pass,
        (AVerdict::Fail, _) => VerdictKind::Fail,
        (AVerdict::Error, _) => VerdictKind::Error,
        (AVerdict::Inconclusive, Some(InconclusiveCause::NotEnoughEvidence)) => {
            VerdictKind::Pending
        }
        (AVerdict::Inconclusive, _) => VerdictKind::Inconclusive,
    };
    MetricOutcome {
        name: name.to_string(),
        verdict,
        value: v.value,
        reason: v.reason.clone(),
        // The oracle keeps the state itself; serializing it every run would only cost time.
        sequential_state: None,
    }
}

impl AnalysisOracle for CountsOracle {
    fn run(&mut self, at: DateTime<Utc>, _weight: i32, revision: &str) -> AnalysisRun {
        let totals = self.totals.borrow();
        let c = diff(&totals.canary, &self.seen.canary);
        let s = diff(&totals.stable, &self.seen.stable);
        let stable_so_far = histogram(&totals.stable);
        self.seen = Totals {
            canary: totals.canary,
            stable: totals.stable,
        };
        drop(totals);
        let err_counts = IntervalCounts {
            canary_requests: f64::from(c.requests),
            canary_bad: f64::from(c.errors),
            stable_requests: f64::from(s.requests),
            stable_bad: f64::from(s.errors),
        };
        let (st, v_err) = stats::update(&self.cfg, &self.errors, &err_counts);
        self.errors = st;
        if self.latency.boundary.is_none() {
            self.latency.boundary = choose_boundary(&stable_so_far, 0.95, 200.0);
        }
        let v_lat = match self.latency.boundary {
            None => Verdict::inconclusive(
                InconclusiveCause::NotEnoughEvidence,
                None,
                "waiting for enough stable requests to choose a latency boundary",
            ),
            Some(b) => match latency_counts(&histogram(&s), &histogram(&c), b) {
                Some(counts) => {
                    let (st, v) = stats::update(&self.cfg, &self.latency, &counts);
                    self.latency = st;
                    v
                }
                None => Verdict::error(format!("no bucket at {b}")),
            },
        };
        AnalysisRun {
            at,
            revision: revision.to_string(),
            metrics: vec![outcome("errors", &v_err), outcome("latency", &v_lat)],
        }
    }
}

/// One Sluice rollout of revision "v2" in the simulator.
pub struct Sluice {
    sim: Simulator,
    totals: Rc<RefCell<Totals>>,
    t0: DateTime<Utc>,
    next_wake: u64,
    max_tick: u64,
    entries: Vec<TimelineEntry>,
}

fn at(t0: DateTime<Utc>, secs: u64) -> DateTime<Utc> {
    t0 + TimeDelta::seconds(secs as i64)
}

impl Sluice {
    pub fn new(cfg: &SluiceConfig) -> Self {
        let totals = Rc::new(RefCell::new(Totals::default()));
        let seq = cfg.sequential();
        let oracle = CountsOracle {
            totals: totals.clone(),
            seen: Totals::default(),
            cfg: seq,
            errors: SequentialState::new(&seq),
            latency: SequentialState::new(&seq),
        };
        let sim_cfg = SimConfig {
            canary_ready_delay: Duration::from_secs(cfg.canary_ready_after),
            primary_ready_delay: Duration::from_secs(cfg.canary_ready_after),
            max_tick: Duration::from_secs(cfg.interval),
            ..SimConfig::default()
        };
        let mut sim = Simulator::new(cfg.rollout_spec(), sim_cfg).with_oracle(oracle);
        // First sight of the rollout: primary created, stable routed; then the change comes.
        sim.run(&Script::new(), Duration::from_secs(60));
        let t0 = sim.now() + TimeDelta::seconds(1);
        Sluice {
            sim,
            totals,
            t0,
            next_wake: 0,
            max_tick: cfg.interval,
            entries: Vec::new(),
        }
    }
}

impl Policy for Sluice {
    fn control(&mut self, t: u64, h: &History) -> Control {
        if t > 0 {
            if let Some(sec) = h.seconds.get(t as usize - 1) {
                let mut tot = self.totals.borrow_mut();
                tot.canary.add(&sec.canary);
                tot.stable.add(&sec.stable);
            }
        }
        let now = at(self.t0, t);
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
