//! Aggregates runs per policy and scenario, the ratios of Sluice to the baselines, and the
//! theoretical yardstick (Wald's SPRT expected sample size).

use serde::Serialize;
use sluice_analysis::stats::sprt::wald_expected_samples;

use super::policy::Outcome;
use super::run::RunResult;
use super::scenario::Scenario;
use super::traffic::fraction_slower;

/// Distribution summary of one quantity.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Dist {
    pub n: usize,
    pub mean: f64,
    pub median: f64,
    pub p90: f64,
}

impl Dist {
    pub fn of(mut xs: Vec<f64>) -> Option<Dist> {
        if xs.is_empty() {
            return None;
        }
        xs.sort_by(f64::total_cmp);
        let q = |p: f64| xs[((p * (xs.len() - 1) as f64).round() as usize).min(xs.len() - 1)];
        Some(Dist {
            n: xs.len(),
            mean: xs.iter().sum::<f64>() / xs.len() as f64,
            median: q(0.5),
            p90: q(0.9),
        })
    }
}

/// One policy on one scenario over all seeds.
#[derive(Debug, Clone, Serialize)]
pub struct Cell {
    pub policy: String,
    pub scenario: String,
    pub runs: usize,
    pub promoted: usize,
    pub rolled_back: usize,
    pub undecided: usize,
    /// Seconds from the change to the rollback, over rolled-back runs.
    pub time_to_rollback: Option<Dist>,
    /// Seconds from the change to the promotion decision, over promoted runs.
    pub time_to_promote: Option<Dist>,
    /// Canary requests / errors until the decision (or the horizon), over all runs.
    pub canary_requests: Option<Dist>,
    pub canary_errors: Option<Dist>,
    /// Canary-death scenarios: errors served after the death, seconds from death to weight 0.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors_after_death: Option<Dist>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub death_to_zero: Option<Dist>,
}

impl Cell {
    pub fn new(policy: &str, scenario: &str, runs: &[RunResult]) -> Cell {
        let count = |o: Outcome| runs.iter().filter(|r| r.outcome == o).count();
        let times = |o: Outcome| {
            Dist::of(
                runs.iter()
                    .filter(|r| r.outcome == o)
                    .filter_map(|r| r.decided_at.map(|t| t as f64))
                    .collect(),
            )
        };
        Cell {
            policy: policy.to_string(),
            scenario: scenario.to_string(),
            runs: runs.len(),
            promoted: count(Outcome::Promoted),
            rolled_back: count(Outcome::RolledBack),
            undecided: count(Outcome::Undecided),
            time_to_rollback: times(Outcome::RolledBack),
            time_to_promote: times(Outcome::Promoted),
            canary_requests: Dist::of(runs.iter().map(|r| r.canary_requests as f64).collect()),
            canary_errors: Dist::of(runs.iter().map(|r| r.canary_errors as f64).collect()),
            errors_after_death: Dist::of(
                runs.iter()
                    .filter_map(|r| r.errors_after_death.map(|e| e as f64))
                    .collect(),
            ),
            death_to_zero: Dist::of(
                runs.iter()
                    .filter_map(|r| r.death_to_zero.map(|e| e as f64))
                    .collect(),
            ),
        }
    }

    pub fn rate(&self, n: usize) -> f64 {
        if self.runs == 0 {
            0.0
        } else {
            n as f64 / self.runs as f64
        }
    }
}

/// Sluice variant against a baseline on one scenario (value < 1: Sluice smaller/faster).
#[derive(Debug, Clone, Serialize)]
pub struct Ratio {
    pub sluice: String,
    pub baseline: String,
    pub scenario: String,
    /// Median time to rollback (bad scenarios) or to promote (healthy ones).
    pub median_time: Option<f64>,
    /// Mean canary requests (blast radius).
    pub canary_requests: Option<f64>,
    pub canary_errors: Option<f64>,
}

fn div(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

pub fn ratios(cells: &[Cell], scenarios: &[Scenario]) -> Vec<Ratio> {
    let find = |p: &str, s: &str| cells.iter().find(|c| c.policy == p && c.scenario == s);
    let mut out = Vec::new();
    let mut sluices: Vec<&str> = Vec::new();
    for c in cells {
        if c.policy.starts_with("sluice") && !sluices.contains(&c.policy.as_str()) {
            sluices.push(&c.policy);
        }
    }
    for sc in scenarios {
        for s in &sluices {
            for b in ["flagger", "argo"] {
                let (Some(cs), Some(cb)) = (find(s, &sc.name), find(b, &sc.name)) else {
                    continue;
                };
                let time = |c: &Cell| {
                    if sc.bad {
                        c.time_to_rollback.map(|d| d.median)
                    } else {
                        c.time_to_promote.map(|d| d.median)
                    }
                };
                out.push(Ratio {
                    sluice: s.to_string(),
                    baseline: b.to_string(),
                    scenario: sc.name.clone(),
                    median_time: div(time(cs), time(cb)),
                    canary_requests: div(
                        cs.canary_requests.map(|d| d.mean),
                        cb.canary_requests.map(|d| d.mean),
                    ),
                    canary_errors: div(
                        cs.canary_errors.map(|d| d.mean),
                        cb.canary_errors.map(|d| d.mean),
                    ),
                });
            }
        }
    }
    out
}

/// Wald's expected sample size for the scenario's bad-event rates (alpha = beta = 0.05): the
/// canary requests a one-sample SPRT that knows stable's rate exactly needs on average.
#[derive(Debug, Clone, Serialize)]
pub struct Theory {
    pub scenario: String,
    /// "errors" or "slower than 0.25 s".
    pub event: String,
    /// Healthy rate and the rate under the alternative (the canary's, or 2x for healthy ones).
    pub p0: f64,
    pub p1: f64,
    /// Expected canary requests to decide (under the canary's true rate).
    pub requests: f64,
    /// The same in seconds at 10% canary weight of the scenario's rate.
    pub seconds_at_10pct: f64,
}

/// Wald's E0[N] (the canary is as good as stable) of the SPRT of p0 against p1.
pub fn wald_expected_samples_h0(p0: f64, p1: f64, alpha: f64, beta: f64) -> f64 {
    let kl = p0 * (p0 / p1).ln() + (1.0 - p0) * ((1.0 - p0) / (1.0 - p1)).ln();
    let a = ((1.0 - beta) / alpha).ln();
    let b = (beta / (1.0 - alpha)).ln();
    -(alpha * a + (1.0 - alpha) * b) / kl
}

pub fn theory(scenarios: &[Scenario]) -> Vec<Theory> {
    let (alpha, beta) = (0.05, 0.05);
    scenarios
        .iter()
        .filter(|s| !s.canary_unreachable)
        .map(|s| {
            let (event, p0, p1, bad) = if s.canary_latency_factor != 1.0 {
                let p0 = fraction_slower(0.25, 1.0);
                (
                    "slower than 0.25 s",
                    p0,
                    fraction_slower(0.25, s.canary_latency_factor),
                    true,
                )
            } else if s.canary_error_factor != 1.0 {
                (
                    "errors",
                    s.base_error,
                    s.base_error * s.canary_error_factor,
                    true,
                )
            } else {
                ("errors", s.base_error, 2.0 * s.base_error, false)
            };
            let requests = if bad {
                wald_expected_samples(p0, p1, alpha, beta)
            } else {
                wald_expected_samples_h0(p0, p1, alpha, beta)
            };
            Theory {
                scenario: s.name.clone(),
                event: event.to_string(),
                p0,
                p1,
                requests,
                seconds_at_10pct: requests / (0.1 * s.rate),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dist_quantiles() {
        let d = Dist::of((1..=11).map(f64::from).collect()).unwrap();
        assert_eq!((d.n, d.median, d.p90, d.mean), (11, 6.0, 10.0, 6.0));
        assert!(Dist::of(vec![]).is_none());
    }

    #[test]
    fn wald_h0_is_symmetric_to_h1_with_swapped_rates() {
        // E0[N] for (p0, p1) equals E1[N] for (p1, p0) with alpha and beta swapped.
        let a = wald_expected_samples_h0(0.005, 0.01, 0.05, 0.05);
        let b = wald_expected_samples(0.01, 0.005, 0.05, 0.05);
        assert!((a - b).abs() < 1e-9 * a, "{a} {b}");
        assert!(a > 0.0);
    }
}
