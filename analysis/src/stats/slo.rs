//! Absolute bad-rate tests with Beta-prior mixtures (anytime-valid e-values).
//!
//! Rollback side ("SLO guard"), H0: p <= p0. E = ∫ L(p)/L(p0) dπ(p) with π a Beta(a, b) prior
//! restricted to (p0, 1). For every p > p0 the likelihood ratio against p0 is a supermartingale
//! under any p' <= p0 (binomial likelihoods have monotone ratios), so the mixture is an e-process
//! for the whole composite null, and `E >= 1/alpha` at any time has probability <= alpha.
//! Closed form: E = B(a+x, b+n-x)·(1 - I_p0(a+x, b+n-x)) / (B(a,b)·(1 - I_p0(a,b))·p0^x·(1-p0)^(n-x)).
//! Promotion side, H0: p >= p0, is the mirror with the prior restricted to (0, p0).

use serde::{Deserialize, Serialize};
use statrs::function::beta::{checked_beta_reg, ln_beta};

use super::grid::{finite_exp, show};
use crate::verdict::{Evidence, InconclusiveCause, Verdict};

fn ln_reg(a: f64, b: f64, x: f64) -> f64 {
    // statrs computes the upper branch as 1 - small, which can round to <= 0: that is "no mass".
    match checked_beta_reg(a, b, x) {
        Ok(v) if v > 0.0 => v.ln(),
        _ => f64::NEG_INFINITY,
    }
}

fn ln_binom_lik(x: f64, n: f64, p: f64) -> f64 {
    x * p.ln() + (n - x) * (1.0 - p).ln()
}

/// Prior for the rollback side: Beta(1, (1-p0)/p0), whose mass above p0 sits mostly within a
/// few multiples of p0 (where regressions worth catching are).
fn upper_prior(p0: f64) -> (f64, f64) {
    (1.0, (1.0 - p0) / p0)
}

/// ln E against H0: p <= p0, after `x` bad events in `n` trials (reals allowed).
pub fn ln_e_rate_above(x: f64, n: f64, p0: f64) -> f64 {
    let (a, b) = upper_prior(p0);
    let x = x.clamp(0.0, n);
    // 1 - I_p0(a', b') = I_{1-p0}(b', a'); prior mass above p0 is (1-p0)^b for a = 1.
    let num = ln_beta(a + x, b + n - x) + ln_reg(b + n - x, a + x, 1.0 - p0);
    let den = ln_beta(a, b) + b * (1.0 - p0).ln() + ln_binom_lik(x, n, p0);
    num - den
}

/// ln E against H0: p >= p0 (uniform prior on (0, p0)).
pub fn ln_e_rate_below(x: f64, n: f64, p0: f64) -> f64 {
    let x = x.clamp(0.0, n);
    // Uniform Beta(1,1) restricted to (0, p0): prior mass p0, B(1,1) = 1.
    let num = ln_beta(1.0 + x, 1.0 + n - x) + ln_reg(1.0 + x, 1.0 + n - x, p0);
    num - p0.ln() - ln_binom_lik(x, n, p0)
}

/// Settings of the absolute bad-rate guard on the canary.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SloConfig {
    /// The tolerated bad rate p0 (e.g. 0.01 for a 99% success objective).
    pub max_bad_rate: f64,
    /// Bound on the chance of failing a canary whose true rate is <= p0.
    pub alpha: f64,
    /// Bound on the chance of passing a canary whose true rate is >= p0.
    pub beta: f64,
    /// Pass needs at least this many canary requests.
    pub min_requests: f64,
}

impl Default for SloConfig {
    fn default() -> Self {
        SloConfig {
            max_bad_rate: 0.01,
            alpha: 0.05,
            beta: 0.05,
            min_requests: 100.0,
        }
    }
}

impl SloConfig {
    pub fn validate(&self) -> Result<(), String> {
        let unit = |v: f64| v > 0.0 && v < 1.0;
        if !unit(self.max_bad_rate) || !unit(self.alpha) || !unit(self.beta) {
            return Err("maxBadRate, alpha and beta must be in (0, 1)".into());
        }
        if self.min_requests.is_nan() || self.min_requests < 0.0 {
            return Err("minRequests must be >= 0".into());
        }
        Ok(())
    }
}

/// Accumulated canary counts (persist it in the rollout status).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SloState {
    pub requests: f64,
    pub bad: f64,
}

/// Adds one interval of canary counts and judges the canary's absolute bad rate.
pub fn slo_update(
    config: &SloConfig,
    state: &SloState,
    requests: f64,
    bad: f64,
) -> (SloState, Verdict) {
    if let Err(e) = config.validate() {
        return (
            *state,
            Verdict::error(format!("invalid SLO guard settings: {e}")),
        );
    }
    if !(requests.is_finite() && bad.is_finite() && requests >= 0.0 && bad >= 0.0) {
        return (
            *state,
            Verdict::error(format!("invalid counts: requests {requests}, bad {bad}")),
        );
    }
    if requests == 0.0 {
        return (
            *state,
            Verdict::inconclusive(
                InconclusiveCause::NoTraffic,
                None,
                "canary served no requests in this interval",
            ),
        );
    }
    let s = SloState {
        requests: state.requests + requests,
        bad: state.bad + bad.min(requests),
    };
    let p0 = config.max_bad_rate;
    let ln_fail = ln_e_rate_above(s.bad, s.requests, p0);
    let ln_pass = ln_e_rate_below(s.bad, s.requests, p0);
    let rate = s.bad / s.requests;
    let ev = Evidence {
        e_fail: finite_exp(ln_fail),
        p_fail: finite_exp(-ln_fail).min(1.0),
        fail_threshold: 1.0 / config.alpha,
        e_pass: finite_exp(ln_pass),
        p_pass: finite_exp(-ln_pass).min(1.0),
        pass_threshold: 1.0 / config.beta,
        estimate: Some(rate),
        canary_requests: s.requests,
        canary_bad: s.bad,
        ..Evidence::default()
    };
    let head = format!(
        "canary bad rate {:.4}% over {} requests (limit {}%)",
        rate * 100.0,
        show(s.requests),
        p0 * 100.0
    );
    let v = if ln_fail >= -config.alpha.ln() {
        Verdict::fail(
            Some(rate),
            format!(
                "{head}: above the limit, e-value {} >= {}",
                show(ev.e_fail),
                show(ev.fail_threshold)
            ),
        )
    } else if ln_pass >= -config.beta.ln() && s.requests >= config.min_requests {
        Verdict::pass(
            Some(rate),
            format!(
                "{head}: below the limit, e-value {} >= {}",
                show(ev.e_pass),
                show(ev.pass_threshold)
            ),
        )
    } else {
        Verdict::inconclusive(
            InconclusiveCause::NotEnoughEvidence,
            Some(rate),
            format!(
                "{head}: not enough evidence yet (e-values fail {}, pass {})",
                show(ev.e_fail),
                show(ev.e_pass)
            ),
        )
    };
    (s, v.with_evidence(ev))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::VerdictKind;

    // Reference integral ∫_lo^hi L(p)/L(p0) · prior(p) dp by the midpoint rule on a fine grid.
    fn numeric_e(x: f64, n: f64, p0: f64, lo: f64, hi: f64, a: f64, b: f64) -> f64 {
        let steps = 200_000;
        let h = (hi - lo) / steps as f64;
        let (mut num, mut mass) = (0.0, 0.0);
        for i in 0..steps {
            let p = lo + (i as f64 + 0.5) * h;
            let prior = ((a - 1.0) * p.ln() + (b - 1.0) * (1.0 - p).ln()).exp();
            num += prior * (ln_binom_lik(x, n, p) - ln_binom_lik(x, n, p0)).exp() * h;
            mass += prior * h;
        }
        num / mass
    }

    #[test]
    fn statrs_beta_reg_matches_known_values() {
        // I_0.5(2,3) = 11/16 (sum of binomial terms); I_x(1,1) = x.
        assert!((checked_beta_reg(2.0, 3.0, 0.5).unwrap() - 0.6875).abs() < 1e-12);
        assert!((checked_beta_reg(1.0, 1.0, 0.3).unwrap() - 0.3).abs() < 1e-12);
        // I_p(k, n-k+1) = P(Binomial(n, p) >= k): n = 9, p = 0.4, k = 5 gives 0.26656768.
        let tail: f64 = (5..=9u32)
            .map(|k| {
                statrs::function::factorial::binomial(9, k as u64)
                    * 0.4f64.powi(k as i32)
                    * 0.6f64.powi(9 - k as i32)
            })
            .sum();
        assert!((tail - 0.26656768).abs() < 1e-8);
        assert!((checked_beta_reg(5.0, 5.0, 0.4).unwrap() - tail).abs() < 1e-10);
    }

    #[test]
    fn closed_forms_match_numeric_integration() {
        for &(x, n, p0) in &[
            (3.0, 100.0, 0.01),
            (0.0, 200.0, 0.01),
            (12.0, 400.0, 0.02),
            (1.0, 50.0, 0.05),
        ] {
            let (a, b) = upper_prior(p0);
            let want = numeric_e(x, n, p0, p0, 1.0, a, b);
            let got = ln_e_rate_above(x, n, p0).exp();
            assert!(
                (got / want - 1.0).abs() < 1e-4,
                "above x={x} n={n}: {got} vs {want}"
            );
            let want = numeric_e(x, n, p0, 0.0, p0, 1.0, 1.0);
            let got = ln_e_rate_below(x, n, p0).exp();
            assert!(
                (got / want - 1.0).abs() < 1e-4,
                "below x={x} n={n}: {got} vs {want}"
            );
        }
    }

    #[test]
    fn guard_fails_a_bad_canary_and_passes_a_good_one() {
        let cfg = SloConfig::default();
        // 5% errors against a 1% limit.
        let (mut s, mut v) = (SloState::default(), Verdict::error("none"));
        for _ in 0..10 {
            (s, v) = slo_update(&cfg, &s, 50.0, 2.5);
            if v.kind == VerdictKind::Fail {
                break;
            }
        }
        assert_eq!(v.kind, VerdictKind::Fail, "{v:?}");
        assert!(s.requests <= 300.0, "needed {} requests", s.requests);
        // Zero errors: passes after a few hundred requests, never fails.
        let (mut s, mut v) = (SloState::default(), Verdict::error("none"));
        for _ in 0..40 {
            (s, v) = slo_update(&cfg, &s, 50.0, 0.0);
            assert_ne!(v.kind, VerdictKind::Fail);
            if v.kind == VerdictKind::Pass {
                break;
            }
        }
        assert_eq!(v.kind, VerdictKind::Pass, "{v:?}");
        let (_, v) = slo_update(&cfg, &s, 0.0, 0.0);
        assert_eq!(v.cause, Some(InconclusiveCause::NoTraffic));
        assert_eq!(
            slo_update(&cfg, &s, f64::NAN, 0.0).1.kind,
            VerdictKind::Error
        );
    }
}
