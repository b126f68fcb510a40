//! Flagger's canary analysis with its documented defaults, reproduced tick by tick:
//! interval 1m, threshold 5, stepWeight 10, maxWeight 50, built-in request-success-rate
//! (min 99%) and request-duration (p99 max 500 ms) over the last 1m. An empty or NaN result is
//! a failed check, and the failed-check counter never resets during a rollout. The threshold
//! is checked at the start of a tick, before that tick's analysis (so the rollback comes one
//! interval after the fifth failure). Promotion starts once a check passes at maxWeight.
//!
//! A canary that stops being ready: Flagger's scheduler (`pkg/controller/scheduler.go`,
//! fluxcd/flagger) calls `IsCanaryReady` first at every tick and returns early on a retriable
//! error ("not ready"), before any check or weight change, so the canary keeps its weight and
//! no check fails; only once the readiness check reports the progress deadline exceeded
//! (non-retriable; `progressDeadlineSeconds`, default 600 s, docs/gitbook/usage/how-it-works.md)
//! does it roll back. Modelled as: no checks while dead, rollback at the first tick at least
//! `progress_deadline` seconds after the death.

use super::policy::{Control, Outcome, Policy};
use super::promql::{histogram_quantile, success_rate_percent};
use super::traffic::History;

/// Flagger's analysis settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FlaggerConfig {
    pub interval: u64,
    pub threshold: u32,
    pub step_weight: i32,
    pub max_weight: i32,
    pub min_success_percent: f64,
    pub max_p99_ms: f64,
    /// Seconds until the canary pods are ready (checked at ticks only).
    pub canary_ready_after: u64,
    /// `progressDeadlineSeconds`.
    pub progress_deadline: u64,
}

impl Default for FlaggerConfig {
    fn default() -> Self {
        FlaggerConfig {
            interval: 60,
            threshold: 5,
            step_weight: 10,
            max_weight: 50,
            min_success_percent: 99.0,
            max_p99_ms: 500.0,
            canary_ready_after: 30,
            progress_deadline: 600,
        }
    }
}

/// State of one Flagger canary run.
#[derive(Debug, Clone)]
pub struct Flagger {
    cfg: FlaggerConfig,
    weight: i32,
    failed_checks: u32,
    started: bool,
    /// When the canary's pods died (first dead second seen).
    dead_since: Option<u64>,
}

impl Flagger {
    pub fn new(cfg: FlaggerConfig) -> Self {
        Flagger {
            cfg,
            weight: 0,
            failed_checks: 0,
            started: false,
            dead_since: None,
        }
    }

    /// Both built-in checks over the last interval; the first failing one fails the tick.
    fn checks_pass(&self, t: u64, h: &History) -> bool {
        let (canary, _) = h.window(t.saturating_sub(self.cfg.interval), t);
        let sr = success_rate_percent(&canary);
        if sr.is_nan() || sr < self.cfg.min_success_percent {
            return false;
        }
        let p99_ms = 1000.0 * histogram_quantile(0.99, &canary);
        !(p99_ms.is_nan() || p99_ms > self.cfg.max_p99_ms)
    }
}

impl Policy for Flagger {
    fn control(&mut self, t: u64, h: &History) -> Control {
        // t = 0 is the tick that saw the new revision and scaled the canary up.
        if t == 0 || !t.is_multiple_of(self.cfg.interval) {
            return Control::weight(self.weight);
        }
        if self.failed_checks >= self.cfg.threshold {
            return Control::decided(Outcome::RolledBack);
        }
        if t < self.cfg.canary_ready_after {
            return Control::weight(self.weight);
        }
        if self.dead_since.is_none() {
            self.dead_since = h
                .seconds
                .iter()
                .position(|s| s.canary_dead)
                .map(|i| i as u64);
        }
        if let Some(d) = self.dead_since {
            if t >= d + self.cfg.progress_deadline {
                return Control::decided(Outcome::RolledBack);
            }
            return Control::weight(self.weight);
        }
        if !self.started {
            // "Starting canary analysis": no check before the first weight step.
            self.started = true;
        } else if !self.checks_pass(t, h) {
            self.failed_checks += 1;
            return Control::weight(self.weight);
        } else if self.weight >= self.cfg.max_weight {
            return Control {
                weight: self.weight,
                decided: Some(Outcome::Promoted),
            };
        }
        self.weight = (self.weight + self.cfg.step_weight).min(self.cfg.max_weight);
        Control::weight(self.weight)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::traffic::{History, Second};

    #[test]
    fn a_dead_canary_keeps_its_weight_until_the_progress_deadline() {
        let mut f = Flagger::new(FlaggerConfig::default());
        let mut h = History::default();
        let mut rolled_back_at = None;
        for t in 0..2000 {
            let c = f.control(t, &h);
            if c.decided.is_some() {
                rolled_back_at = Some(t);
                break;
            }
            h.seconds.push(Second {
                weight: c.weight,
                canary_dead: t >= 200,
                ..Second::default()
            });
        }
        // Dead from 200 s: held at its weight, rolled back at the first tick from 800 s.
        assert_eq!(rolled_back_at, Some(840));
        assert!(h.seconds[200..]
            .iter()
            .all(|s| s.weight == h.seconds[200].weight));
        assert!(h.seconds[200].weight > 0);
    }
}
