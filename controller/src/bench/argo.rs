//! Argo Rollouts-style canary with background threshold analysis: steps setWeight 10, 25, 50
//! with 2m pauses, then full promotion; an AnalysisRun started with the first step measures
//! every 1m (first measurement one interval after start, as with `initialDelay: 1m`) the
//! canary's success rate (>= 0.99) and p99 (<= 0.5 s) over the last 1m. A NaN result fails the
//! measurement (an unguarded `successCondition`), and a metric failing more than
//! `failureLimit` (2) times aborts at once.

use super::policy::{Control, Outcome, Policy};
use super::promql::{histogram_quantile, success_rate_percent};
use super::traffic::History;

/// The Argo-style settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ArgoConfig {
    /// (weight, pause seconds) per step; promotion after the last pause.
    pub steps: Vec<(i32, u64)>,
    pub interval: u64,
    pub failure_limit: u32,
    pub min_success: f64,
    pub max_p99: f64,
    pub canary_ready_after: u64,
}

impl Default for ArgoConfig {
    fn default() -> Self {
        ArgoConfig {
            steps: vec![(10, 120), (25, 120), (50, 120)],
            interval: 60,
            failure_limit: 2,
            min_success: 0.99,
            max_p99: 0.5,
            canary_ready_after: 30,
        }
    }
}

/// State of one Argo-style run.
#[derive(Debug, Clone)]
pub struct Argo {
    cfg: ArgoConfig,
    success_failures: u32,
    latency_failures: u32,
}

impl Argo {
    pub fn new(cfg: ArgoConfig) -> Self {
        Argo {
            cfg,
            success_failures: 0,
            latency_failures: 0,
        }
    }

    /// The weight of the step running at `t` (None: all steps done).
    fn weight_at(&self, t: u64) -> Option<i32> {
        let mut end = self.cfg.canary_ready_after;
        for (w, pause) in &self.cfg.steps {
            end += pause;
            if t < end {
                return Some(*w);
            }
        }
        None
    }
}

impl Policy for Argo {
    fn control(&mut self, t: u64, h: &History) -> Control {
        let start = self.cfg.canary_ready_after;
        if t < start {
            return Control::weight(0);
        }
        let since = t - start;
        if since > 0 && since.is_multiple_of(self.cfg.interval) {
            let (canary, _) = h.window(t - self.cfg.interval, t);
            let sr = success_rate_percent(&canary) / 100.0;
            if sr.is_nan() || sr < self.cfg.min_success {
                self.success_failures += 1;
            }
            let p99 = histogram_quantile(0.99, &canary);
            if p99.is_nan() || p99 > self.cfg.max_p99 {
                self.latency_failures += 1;
            }
            if self.success_failures.max(self.latency_failures) > self.cfg.failure_limit {
                return Control::decided(Outcome::RolledBack);
            }
        }
        match self.weight_at(t) {
            Some(w) => Control::weight(w),
            None => Control {
                weight: 100,
                decided: Some(Outcome::Promoted),
            },
        }
    }
}
