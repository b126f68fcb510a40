//! Sequential canary-vs-stable test on bad-event counts (errors, or requests slower than a
//! bucket boundary), anytime-valid in both directions.
//!
//! Per interval i with requests n_c, n_s and bad events x_c, x_s: given the x_c + x_s bad events,
//! each came from the canary with probability θ_i(r) = n_c·r / (n_c·r + n_s), r = canary/stable
//! bad-rate ratio. Only observed counts enter, so changing weights and incidents hitting both
//! arms do not bias it. Λ(r) = Σ_i [x_c·ln r − (x_c + x_s)·ln(n_c·r + n_s)] is the log-likelihood
//! up to a constant, stored on a log-spaced grid of r.
//! - Rollback: E_fail = mean_{r ∈ [r_fail_min, r_fail_max]} exp(Λ(r) − Λ(r0)); Fail when ≥ 1/alpha.
//! - Promotion (default, `pass_point` r1 set): E_pass = exp(Λ(r1) − Λ(r_bad)), a point
//!   alternative against the boundary of the null r ≥ r_bad; with `pass_point` unset, the older
//!   mixture mean_{r ∈ [r_pass_min, r_pass_max]} exp(Λ(r) − Λ(r_bad)). Pass when ≥ 1/beta and
//!   enough canary requests (optionally averaged with an absolute "rate below" e-value).
//!
//! Why the point alternative is valid for the whole composite null r ≥ r_bad: given an
//! interval's x bad events, x_c ~ Binomial(x, θ(r)) with θ increasing in r. For r1 < r_bad the
//! likelihood ratio (θ1/θb)^x_c·((1−θ1)/(1−θb))^(x−x_c) is decreasing in x_c (monotone
//! likelihood ratio of the binomial family: Lehmann & Romano, *Testing Statistical Hypotheses*,
//! 3rd ed., §3.4), and its expectation is exactly 1 under θb. Under θ ≥ θb, x_c is
//! stochastically larger, so the expectation of a decreasing function is ≤ 1: the product over
//! intervals is a nonnegative supermartingale for every r ≥ r_bad, and Ville's inequality gives
//! P(ever E_pass ≥ 1/beta) ≤ beta. Why it is faster: a mixture over [0.5, 1.2] averages the
//! likelihood over ratios a healthy canary does not have; the point r1 = 1 is Wald's SPRT
//! alternative for "canary = stable" (Wald & Wolfowitz 1948: the SPRT minimises the expected
//! sample size at its two points), so a healthy canary reaches 1/beta with about
//! ln(1/beta)/KL(θ(1) ‖ θ(r_bad)) bad events (51 at a 50% share and r_bad = 2).
//!
//! Ville's inequality bounds P(E ever ≥ 1/alpha) ≤ alpha under the null, at any stopping time.
//! Both e-values are tempered by 1/φ, φ the dispersion of stable's per-interval bad counts
//! ([`super::dispersion`]), so bursts of errors do not count as independent evidence.
//!
//! What a Pass means: with probability at least 1 − beta, the canary's bad rate is less than
//! `bad_ratio` times stable's. With `negligible_bad_rate` p0 set, the promotion e-value is the
//! mean of the ratio e-value and one for "canary bad rate < p0"; the mean is an e-value only
//! under both nulls, so the guarantee becomes: a canary that is `bad_ratio` times worse *and*
//! whose bad rate is at least p0 passes with probability at most beta. Off by default; never
//! used for latency (slow-request rates near a tail boundary are small by construction).

use serde::{Deserialize, Serialize};

use super::dispersion::Dispersion;
use super::grid::{finite_exp, log_grid, log_mean_exp, show};
use super::slo::ln_e_rate_below;
use crate::verdict::{Evidence, InconclusiveCause, Verdict};

/// One interval's counts for both arms (deltas, not cumulative counters). Reals are accepted
/// (fractional counts from user queries), though Sluice's own windows count exactly.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IntervalCounts {
    pub canary_requests: f64,
    pub canary_bad: f64,
    pub stable_requests: f64,
    pub stable_bad: f64,
}

/// Settings of the sequential ratio test.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SequentialConfig {
    /// Bound on false rollbacks (already divided among metrics by the caller).
    pub alpha: f64,
    /// Bound on false promotions.
    pub beta: f64,
    /// r0: the ratio still tolerated (1 = canary no worse than stable).
    pub tolerated_ratio: f64,
    /// r_bad: the ratio that must be ruled out before promotion (e.g. 2 = twice as bad).
    pub bad_ratio: f64,
    /// Pass needs at least this many canary requests.
    pub min_canary_requests: f64,
    /// Largest alternative ratio of the rollback mixture.
    pub fail_grid_max: f64,
    /// Smallest alternative ratio of the promotion mixture.
    pub pass_grid_min: f64,
    /// If set (off by default), the promotion e-value is the mean of the ratio e-value and an
    /// e-value for "canary bad rate < this": a regression below this rate is accepted. See the
    /// module docs for the guarantee it leaves.
    #[serde(default)]
    pub negligible_bad_rate: Option<f64>,
    /// Fail needs at least this many canary bad events: a verdict resting on one or two events
    /// (perhaps one client's retries) is fragile. Only delays a Fail, so alpha still holds.
    #[serde(default = "default_min_canary_bad_to_fail")]
    pub min_canary_bad_to_fail: f64,
    /// The promotion test's point alternative r1 (default 1: "canary = stable"); clamped to
    /// at most `pass_grid_max()`, so always below r_bad. `None`: the mixture over
    /// [`pass_grid_min`, `pass_grid_max()`] instead.
    #[serde(default = "default_pass_point")]
    pub pass_point: Option<f64>,
}

fn default_pass_point() -> Option<f64> {
    Some(1.0)
}

fn default_min_canary_bad_to_fail() -> f64 {
    5.0
}

impl Default for SequentialConfig {
    fn default() -> Self {
        SequentialConfig {
            alpha: 0.05,
            beta: 0.05,
            tolerated_ratio: 1.0,
            bad_ratio: 2.0,
            min_canary_requests: 100.0,
            // Mixtures on plausible ratios: larger ones still fail through r = 20 (monotone
            // likelihood ratio), smaller ones still pass through r = 0.5.
            fail_grid_max: 20.0,
            pass_grid_min: 0.5,
            negligible_bad_rate: None,
            min_canary_bad_to_fail: default_min_canary_bad_to_fail(),
            pass_point: default_pass_point(),
        }
    }
}

const GRID_MIN: f64 = 0.01;
const POINTS_PER_DECADE: f64 = 20.0;

impl SequentialConfig {
    /// Lower end of the rollback mixture: max(1.5, 1.25·r0).
    pub fn fail_grid_min(&self) -> f64 {
        (1.25 * self.tolerated_ratio).max(1.5)
    }
    /// Upper end of the promotion mixture: min(r0, r_bad/1.25).
    pub fn pass_grid_max(&self) -> f64 {
        self.tolerated_ratio.min(self.bad_ratio / 1.25)
    }
    /// The promotion test's point alternative as used: `pass_point` clamped to
    /// `[GRID_MIN, pass_grid_max()]`; `None` when the mixture is used.
    pub fn pass_alternative(&self) -> Option<f64> {
        self.pass_point
            .map(|p| p.min(self.pass_grid_max()).max(GRID_MIN))
    }

    pub fn validate(&self) -> Result<(), String> {
        let unit = |v: f64| v > 0.0 && v < 1.0;
        if !unit(self.alpha) || !unit(self.beta) {
            return Err(format!(
                "alpha {} and beta {} must be in (0, 1)",
                self.alpha, self.beta
            ));
        }
        if !(self.tolerated_ratio > 0.0 && self.bad_ratio > self.tolerated_ratio) {
            return Err(format!(
                "need 0 < toleratedRatio ({}) < badRatio ({})",
                self.tolerated_ratio, self.bad_ratio
            ));
        }
        if !(self.fail_grid_max > self.fail_grid_min() && self.fail_grid_max <= 1e4) {
            return Err(format!(
                "failGridMax {} must be in ({}, 10000]",
                self.fail_grid_max,
                self.fail_grid_min()
            ));
        }
        if !(self.pass_grid_min >= GRID_MIN && self.pass_grid_min < self.pass_grid_max()) {
            return Err(format!(
                "passGridMin {} must be in [{GRID_MIN}, {})",
                self.pass_grid_min,
                self.pass_grid_max()
            ));
        }
        if self.min_canary_requests.is_nan() || self.min_canary_requests < 0.0 {
            return Err("minCanaryRequests must be >= 0".into());
        }
        if self.min_canary_bad_to_fail.is_nan() || self.min_canary_bad_to_fail < 0.0 {
            return Err("minCanaryBadToFail must be >= 0".into());
        }
        if let Some(p) = self.pass_point.filter(|p| !(p.is_finite() && *p > 0.0)) {
            return Err(format!("passPoint {p} must be a positive ratio"));
        }
        if let Some(p) = self.negligible_bad_rate.filter(|p| !unit(*p)) {
            return Err(format!("negligibleBadRate {p} must be in (0, 1)"));
        }
        Ok(())
    }
}

/// Accumulated evidence; persist it (serde) in the rollout status and pass it back next step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SequentialState {
    /// Ratios r of the grid (log-spaced, fixed when the state is created).
    pub grid: Vec<f64>,
    /// Λ(r) at each grid point.
    pub loglik: Vec<f64>,
    pub tolerated_ratio: f64,
    pub loglik_tolerated: f64,
    pub bad_ratio: f64,
    pub loglik_bad: f64,
    /// The promotion test's point alternative r1 (`None`: the mixture) and Λ(r1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pass_point: Option<f64>,
    #[serde(default)]
    pub loglik_pass_point: f64,
    pub canary_requests: f64,
    pub canary_bad: f64,
    pub stable_requests: f64,
    pub stable_bad: f64,
    /// Intervals that entered the likelihood.
    pub intervals: u64,
    /// Latency comparisons: the bucket boundary in seconds, chosen once and then kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boundary: Option<f64>,
    /// Stable's per-interval variation (before and during the rollout): tempers the evidence.
    #[serde(default)]
    pub dispersion: Dispersion,
}

impl SequentialState {
    pub fn new(config: &SequentialConfig) -> Self {
        let hi = config.fail_grid_max.max(100.0);
        let n = (POINTS_PER_DECADE * (hi / GRID_MIN).log10()).ceil() as usize + 1;
        let grid = log_grid(GRID_MIN, hi, n);
        SequentialState {
            loglik: vec![0.0; grid.len()],
            grid,
            tolerated_ratio: config.tolerated_ratio,
            loglik_tolerated: 0.0,
            bad_ratio: config.bad_ratio,
            loglik_bad: 0.0,
            pass_point: config.pass_alternative(),
            loglik_pass_point: 0.0,
            canary_requests: 0.0,
            canary_bad: 0.0,
            stable_requests: 0.0,
            stable_bad: 0.0,
            intervals: 0,
            boundary: None,
            dispersion: Dispersion::default(),
        }
    }

    /// Whether this state was built for `config`'s ratios (else start a fresh one).
    pub fn matches(&self, config: &SequentialConfig) -> bool {
        self.tolerated_ratio == config.tolerated_ratio
            && self.bad_ratio == config.bad_ratio
            && self.pass_point == config.pass_alternative()
            && self.grid.len() == self.loglik.len()
            && self
                .grid
                .last()
                .is_some_and(|&g| g >= config.fail_grid_max * (1.0 - 1e-9))
    }
}

fn term(r: f64, x_c: f64, x_total: f64, n_c: f64, n_s: f64) -> f64 {
    x_c * r.ln() - x_total * (n_c * r + n_s).ln()
}

/// Adds one interval and judges. Pure: the old state is not modified.
pub fn update(
    config: &SequentialConfig,
    state: &SequentialState,
    counts: &IntervalCounts,
) -> (SequentialState, Verdict) {
    if let Err(e) = config.validate() {
        return (
            state.clone(),
            Verdict::error(format!("invalid comparison settings: {e}")),
        );
    }
    if !state.matches(config) {
        return (
            state.clone(),
            Verdict::error("stored analysis state was built for other ratios; reset it"),
        );
    }
    let c = counts;
    let all = [
        c.canary_requests,
        c.canary_bad,
        c.stable_requests,
        c.stable_bad,
    ];
    if all.iter().any(|v| !v.is_finite() || *v < 0.0) {
        return (
            state.clone(),
            Verdict::error(format!("invalid interval counts {c:?}")),
        );
    }
    if c.canary_requests == 0.0 {
        return (
            state.clone(),
            Verdict::inconclusive(
                InconclusiveCause::NoTraffic,
                None,
                "canary served no requests in this interval",
            ),
        );
    }
    if c.stable_requests == 0.0 {
        return (
            state.clone(),
            Verdict::inconclusive(
                InconclusiveCause::NoTraffic,
                None,
                "stable served no requests in this interval; nothing to compare with",
            ),
        );
    }
    let mut s = accumulate(state, counts);
    s.dispersion
        .add(c.stable_requests, c.stable_bad.min(c.stable_requests));
    let v = evaluate(config, &s);
    (s, v)
}

/// `state` plus one interval's likelihood terms and counts (the dispersion sums untouched).
/// Counts must be finite, nonnegative and have requests on both arms (as [`update`] checks).
pub fn accumulate(state: &SequentialState, c: &IntervalCounts) -> SequentialState {
    let (n_c, n_s) = (c.canary_requests, c.stable_requests);
    // Bad events can never exceed requests; cap them.
    let (x_c, x_s) = (c.canary_bad.min(n_c), c.stable_bad.min(n_s));
    let x = x_c + x_s;
    let mut s = state.clone();
    for (r, l) in s.grid.iter().zip(s.loglik.iter_mut()) {
        *l += term(*r, x_c, x, n_c, n_s);
    }
    s.loglik_tolerated += term(s.tolerated_ratio, x_c, x, n_c, n_s);
    s.loglik_bad += term(s.bad_ratio, x_c, x, n_c, n_s);
    if let Some(r1) = s.pass_point {
        s.loglik_pass_point += term(r1, x_c, x, n_c, n_s);
    }
    s.canary_requests += n_c;
    s.canary_bad += x_c;
    s.stable_requests += n_s;
    s.stable_bad += x_s;
    s.intervals += 1;
    s
}

fn in_range(state: &SequentialState, lo: f64, hi: f64) -> impl Iterator<Item = f64> + Clone + '_ {
    let tol = 1e-9;
    state
        .grid
        .iter()
        .zip(&state.loglik)
        .filter(move |(r, _)| **r >= lo * (1.0 - tol) && **r <= hi * (1.0 + tol))
        .map(|(_, l)| *l)
}

/// ln of the rollback and promotion e-values of `state`, tempered by 1/φ.
pub fn ln_e_values(config: &SequentialConfig, state: &SequentialState) -> (f64, f64) {
    let eta = 1.0 / state.dispersion.phi();
    let tempered = |lo: f64, hi: f64, null: f64| {
        log_mean_exp(in_range(state, lo, hi).map(move |l| eta * (l - null)))
    };
    let ln_fail = tempered(
        config.fail_grid_min(),
        config.fail_grid_max,
        state.loglik_tolerated,
    );
    let ln_rel = match state.pass_point {
        Some(_) => eta * (state.loglik_pass_point - state.loglik_bad),
        None => tempered(
            config.pass_grid_min,
            config.pass_grid_max(),
            state.loglik_bad,
        ),
    };
    let ln_pass = match config.negligible_bad_rate {
        Some(p0) => {
            let ln_abs = ln_e_rate_below(state.canary_bad, state.canary_requests, p0);
            log_mean_exp([ln_rel, ln_abs])
        }
        None => ln_rel,
    };
    (ln_fail, ln_pass)
}

/// Point estimate (grid maximum of the likelihood) and anytime-valid confidence range of r:
/// the grid points r whose own mixture e-value (alternatives: the whole grid) stays below 1/alpha,
/// widened by one grid step each side. `None` estimate when there are no bad events at all.
pub fn ratio_estimate(
    state: &SequentialState,
    alpha: f64,
) -> (Option<f64>, Option<f64>, Option<f64>) {
    if state.canary_bad + state.stable_bad <= 0.0 || state.grid.is_empty() {
        return (None, Some(0.0), None);
    }
    let best = state
        .loglik
        .iter()
        .enumerate()
        .fold(0, |b, (i, l)| if *l > state.loglik[b] { i } else { b });
    let eta = 1.0 / state.dispersion.phi();
    let ln_mix = log_mean_exp(state.loglik.iter().map(|l| eta * l));
    let limit = -alpha.ln();
    let inside: Vec<usize> = (0..state.grid.len())
        .filter(|&j| ln_mix - eta * state.loglik[j] < limit)
        .collect();
    let (Some(&first), Some(&last)) = (inside.first(), inside.last()) else {
        return (Some(state.grid[best]), None, None);
    };
    let low = if first == 0 {
        0.0
    } else {
        state.grid[first - 1]
    };
    let high = state.grid.get(last + 1).copied();
    (Some(state.grid[best]), Some(low), high)
}

fn dispersion_note(state: &SequentialState) -> String {
    let phi = state.dispersion.phi();
    if phi > 1.0 {
        format!("; bursty errors: evidence divided by {phi:.1}")
    } else {
        String::new()
    }
}

/// The verdict on the evidence accumulated so far.
pub fn evaluate(config: &SequentialConfig, state: &SequentialState) -> Verdict {
    let (ln_fail, ln_pass) = ln_e_values(config, state);
    let (estimate, low, high) = ratio_estimate(state, config.alpha);
    let ev = Evidence {
        e_fail: finite_exp(ln_fail),
        p_fail: finite_exp(-ln_fail).min(1.0),
        fail_threshold: 1.0 / config.alpha,
        e_pass: finite_exp(ln_pass),
        p_pass: finite_exp(-ln_pass).min(1.0),
        pass_threshold: 1.0 / config.beta,
        estimate,
        low,
        high,
        canary_requests: state.canary_requests,
        canary_bad: state.canary_bad,
        stable_requests: state.stable_requests,
        stable_bad: state.stable_bad,
        boundary: state.boundary,
    };
    let range = format!(
        "ratio {} (range {}..{})",
        estimate.map_or("n/a".to_string(), |e| format!("{e:.2}")),
        low.map_or("?".to_string(), |l| format!("{l:.2}")),
        high.map_or("inf".to_string(), |h| format!("{h:.2}"))
    );
    let counts = format!(
        "canary {}/{} bad, stable {}/{} bad",
        show(state.canary_bad),
        show(state.canary_requests),
        show(state.stable_bad),
        show(state.stable_requests)
    );
    let v = if ln_fail >= -config.alpha.ln() && state.canary_bad >= config.min_canary_bad_to_fail {
        Verdict::fail(
            estimate,
            format!(
                "canary's bad rate is above the tolerated {}x stable's (toleratedRatio): {range}, e-value {} >= {} ({counts}{})",
                config.tolerated_ratio,
                show(ev.e_fail),
                show(ev.fail_threshold),
                dispersion_note(state)
            ),
        )
    } else if ln_pass >= -config.beta.ln() && state.canary_requests >= config.min_canary_requests {
        Verdict::pass(
            estimate,
            format!(
                "canary is not {}x worse than stable (degradedRatio): {range}, e-value {} >= {} ({counts}{})",
                config.bad_ratio,
                show(ev.e_pass),
                show(ev.pass_threshold),
                dispersion_note(state)
            ),
        )
    } else {
        Verdict::inconclusive(
            InconclusiveCause::NotEnoughEvidence,
            estimate,
            format!(
                "collecting evidence: {range}, e-values fail {}/{}, pass {}/{}, canary requests {}/{} ({counts}{})",
                show(ev.e_fail),
                show(ev.fail_threshold),
                show(ev.e_pass),
                show(ev.pass_threshold),
                show(state.canary_requests),
                show(config.min_canary_requests),
                dispersion_note(state)
            ),
        )
    };
    v.with_evidence(ev)
}

#[cfg(test)]
#[path = "ratio_tests.rs"]
mod tests;
