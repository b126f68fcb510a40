//! Overdispersion of bad events: errors arrive in bursts (one pod on a bad node, a GC storm, a
//! flaky dependency), so per-interval counts vary more than independent requests would make
//! them. The ratio test's likelihood assumes independent requests; under bursts it counts each
//! burst as many independent pieces of evidence and rolls healthy canaries back.
//!
//! Remedy: estimate the dispersion factor φ from stable's interval-to-interval variation (data
//! the comparison does not judge) and temper the log-likelihood ratio by η = 1/φ.
//! - φ is the Pearson statistic over its degrees of freedom, the quasi-likelihood estimate of
//!   McCullagh & Nelder, *Generalized Linear Models* (2nd ed., 1989), §4.5.2:
//!   φ̂ = Σ_j (x_j − n_j·p̂)² / (n_j·p̂·(1−p̂)) / (J − 1), with p̂ = Σx / Σn over J intervals.
//!   It is shrunk towards 1 with [`PRIOR_DF`] pseudo-intervals (few intervals give a noisy
//!   estimate) and never goes below 1 (underdispersion is not credited).
//! - Tempering a likelihood by a learning rate η is the "generalized" or "safe" Bayes of
//!   Grünwald & van Ommen (Bayesian Analysis 12(4), 2017). Why η = 1/φ: per interval the
//!   log-likelihood ratio l has, under the null, mean −K and variance ≈ 2K for independent
//!   requests (K the Kullback–Leibler divergence); overdispersion multiplies the variance by φ.
//!   To second order E[exp(η·l)] ≈ exp(−η·K + η²·φ·K), which is ≤ 1 exactly when η ≤ 1/φ, so
//!   the tempered mixture stays (approximately) a supermartingale and Ville's bound holds.
//!   The approximation is second order; docs/benchmarks.md measures it with bursty errors.

use serde::{Deserialize, Serialize};

/// Pseudo-intervals at φ = 1 that the estimate is shrunk with.
pub const PRIOR_DF: f64 = 4.0;

/// Running sums of stable's per-interval counts.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Dispersion {
    /// Intervals with at least one request.
    pub intervals: f64,
    pub requests: f64,
    pub bad: f64,
    /// Σ x_j² / n_j.
    pub sum_bad_sq_over_requests: f64,
}

impl Dispersion {
    /// Adds one interval's stable counts (intervals without requests carry no information).
    pub fn add(&mut self, requests: f64, bad: f64) {
        if !(requests.is_finite() && bad.is_finite()) || requests <= 0.0 || bad < 0.0 {
            return;
        }
        let bad = bad.min(requests);
        self.intervals += 1.0;
        self.requests += requests;
        self.bad += bad;
        self.sum_bad_sq_over_requests += bad * bad / requests;
    }

    /// Pearson X² = Σ (x − n·p̂)² / (n·p̂·(1−p̂)); `None` with fewer than 2 intervals or no
    /// bad events (or only bad events) at all.
    pub fn pearson(&self) -> Option<f64> {
        if self.intervals < 2.0 || self.requests <= 0.0 {
            return None;
        }
        let p = self.bad / self.requests;
        if p <= 0.0 || p >= 1.0 {
            return None;
        }
        let ss = self.sum_bad_sq_over_requests - 2.0 * p * self.bad + p * p * self.requests;
        Some((ss / (p * (1.0 - p))).max(0.0))
    }

    /// The dispersion factor φ ≥ 1 used to temper the evidence.
    pub fn phi(&self) -> f64 {
        match self.pearson() {
            Some(x2) => ((x2 + PRIOR_DF) / (self.intervals - 1.0 + PRIOR_DF)).max(1.0),
            None => 1.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(counts: &[(f64, f64)]) -> Dispersion {
        let mut d = Dispersion::default();
        for (n, x) in counts {
            d.add(*n, *x);
        }
        d
    }

    #[test]
    fn pearson_matches_a_hand_computation() {
        // n = 100 each, x = 0, 2, 10: p̂ = 12/300 = 0.04, expected 4 each, n·p̂·(1−p̂) = 3.84.
        // X² = (16 + 4 + 36) / 3.84 = 14.583333…; df = 2; φ = (14.5833 + 4) / (2 + 4) = 3.097222…
        let d = from(&[(100.0, 0.0), (100.0, 2.0), (100.0, 10.0)]);
        assert!((d.pearson().unwrap() - 56.0 / 3.84).abs() < 1e-9);
        assert!((d.phi() - (56.0 / 3.84 + 4.0) / 6.0).abs() < 1e-9);
    }

    #[test]
    fn unequal_sizes_and_binomial_data_give_about_one() {
        // Exactly proportional counts: X² = 0, φ is floored at 1.
        let d = from(&[(50.0, 1.0), (100.0, 2.0), (200.0, 4.0)]);
        assert!(d.pearson().unwrap().abs() < 1e-9);
        assert_eq!(d.phi(), 1.0);
        // Unequal sizes by hand: n = 10, 30; x = 3, 1; p̂ = 0.1; expected 1 and 3; var 0.9, 2.7.
        // X² = 4/0.9 + 4/2.7 = 5.925925…
        let d = from(&[(10.0, 3.0), (30.0, 1.0)]);
        assert!((d.pearson().unwrap() - (4.0 / 0.9 + 4.0 / 2.7)).abs() < 1e-9);
    }

    #[test]
    fn too_little_data_means_no_tempering() {
        assert_eq!(Dispersion::default().phi(), 1.0);
        assert_eq!(from(&[(100.0, 3.0)]).phi(), 1.0);
        assert_eq!(from(&[(100.0, 0.0), (50.0, 0.0)]).phi(), 1.0);
        // Garbage is ignored, not absorbed.
        let mut d = from(&[(100.0, 1.0)]);
        d.add(f64::NAN, 1.0);
        d.add(0.0, 0.0);
        d.add(10.0, -1.0);
        assert_eq!(d.intervals, 1.0);
    }
}
