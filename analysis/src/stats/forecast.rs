//! How far a comparison is from a decision: the sequential test's own evidence projected
//! forward under "the next traffic looks like the traffic so far" (same canary share as the
//! last window, stable's observed bad rate, the canary at its current ratio estimate). The
//! projection runs the product's rule ([`accumulate`] + [`evaluate`], tempering, minimum
//! requests and the floor included) on expected counts, so it forecasts exactly what the test
//! would decide if the future matched the expectation. It is a planning number ("about"),
//! not a guarantee: real counts scatter around their expectation.

use serde::{Deserialize, Serialize};

use super::ratio::{
    accumulate, evaluate, ratio_estimate, IntervalCounts, SequentialConfig, SequentialState,
};
use crate::verdict::VerdictKind;

/// Beyond this, "cannot decide in reasonable time".
pub const REASONABLE_SECONDS: f64 = 3600.0;
/// The projection gives up beyond this many more canary requests.
const MAX_PROJECTED: f64 = 1e9;

/// Which way the evidence is heading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Heading {
    Promote,
    RollBack,
}

/// A forecast for people (`message`) and machines.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Forecast {
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heading: Option<Heading>,
    /// More canary requests until the projected decision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub more_canary_requests: Option<u64>,
    /// Seconds until it at the last window's canary request rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds: Option<f64>,
}

impl Forecast {
    fn only(message: impl Into<String>) -> Self {
        Forecast {
            message: message.into(),
            heading: None,
            more_canary_requests: None,
            seconds: None,
        }
    }
}

/// A count for people: "about 1,200" style, two significant digits from 100 up.
pub fn about_count(n: f64) -> String {
    let n = n.max(0.0);
    let rounded = if n >= 100.0 {
        let mag = 10f64.powi(n.log10().floor() as i32 - 1);
        (n / mag).round() * mag
    } else {
        n.round()
    };
    let digits = format!("{}", rounded as u64);
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// A duration for people: "40 s", "4 min", "2.5 h", "3 days".
pub fn about_duration(secs: f64) -> String {
    if secs < 90.0 {
        format!("{} s", (secs.max(1.0) / 5.0).ceil() * 5.0)
    } else if secs < 5400.0 {
        format!("{} min", (secs / 60.0).round())
    } else if secs < 2.0 * 86400.0 {
        format!("{:.1} h", secs / 3600.0)
    } else {
        format!("{} days", (secs / 86400.0).round())
    }
}

fn projected(
    config: &SequentialConfig,
    state: &SequentialState,
    m: f64,
    k: f64,
    p_c: f64,
    p_s: f64,
) -> VerdictKind {
    let c = IntervalCounts {
        canary_requests: m,
        canary_bad: m * p_c,
        stable_requests: m * k,
        stable_bad: m * k * p_s,
    };
    evaluate(config, &accumulate(state, &c)).kind
}

/// The forecast for `state` after a window that held `last` in `window_seconds`.
pub fn forecast(
    config: &SequentialConfig,
    state: &SequentialState,
    last: &IntervalCounts,
    window_seconds: f64,
) -> Forecast {
    let knobs = "an SLO level (analysis.slo) or comparison.negligibleBadRate to promote on the canary's own rate, a higher canary weight (evidence is fastest near 50%), more load, or a larger degradedRatio";
    if state.canary_requests <= 0.0 || state.stable_requests <= 0.0 {
        return Forecast::only(
            "no forecast yet: no window with requests on both arms (is the canary weight 0, or is routing broken?)",
        );
    }
    let bad = state.canary_bad + state.stable_bad;
    if bad <= 0.0 && config.negligible_bad_rate.is_none() {
        return Forecast::only(format!(
            "cannot decide from bad events yet: neither arm has had one in {} canary and {} stable requests, and the ratio test decides on bad events; knobs: {knobs}",
            about_count(state.canary_requests),
            about_count(state.stable_requests)
        ));
    }
    // Share of the last window (the current weight), else of everything so far.
    let k = if last.canary_requests > 0.0 && last.stable_requests > 0.0 {
        last.stable_requests / last.canary_requests
    } else {
        state.stable_requests / state.canary_requests
    };
    let rate = (last.canary_requests > 0.0 && window_seconds > 0.0)
        .then(|| last.canary_requests / window_seconds);
    let p_s = if state.stable_bad > 0.0 {
        state.stable_bad / state.stable_requests
    } else {
        bad / (state.canary_requests + state.stable_requests)
    };
    let r_hat = ratio_estimate(state, config.alpha)
        .0
        .unwrap_or(1.0)
        .clamp(config.pass_grid_min, 100.0);
    let p_c = (r_hat * p_s).min(1.0);
    let decided = |m: f64| projected(config, state, m, k, p_c, p_s);
    let mut hi = 1.0;
    while decided(hi) == VerdictKind::Inconclusive && hi < MAX_PROJECTED {
        hi *= 2.0;
    }
    let estimate = if bad > 0.0 {
        format!("ratio estimate {r_hat:.2}")
    } else {
        "no bad events yet".to_string()
    };
    let heading = match decided(hi) {
        VerdictKind::Pass => Heading::Promote,
        VerdictKind::Fail => Heading::RollBack,
        _ => {
            let why = if r_hat > config.tolerated_ratio && r_hat < config.bad_ratio {
                format!(
                    "its {estimate} lies between toleratedRatio {} and degradedRatio {}, where more evidence points neither way; decide by hand (promote or abort), or use a larger degradedRatio",
                    config.tolerated_ratio, config.bad_ratio
                )
            } else {
                format!("({estimate}); knobs: {knobs}")
            };
            return Forecast::only(format!("cannot decide at the current rates: {why}"));
        }
    };
    let mut lo = hi / 2.0;
    if hi <= 1.0 {
        lo = 0.0;
    }
    for _ in 0..40 {
        let mid = 0.5 * (lo + hi);
        if decided(mid) == VerdictKind::Inconclusive {
            lo = mid;
        } else {
            hi = mid;
        }
        if hi - lo < 0.5 {
            break;
        }
    }
    let more = hi.ceil();
    let seconds = rate.map(|r| more / r);
    let verb = match heading {
        Heading::Promote => "promote",
        Heading::RollBack => "roll back",
    };
    let when = match (seconds, rate) {
        (Some(s), Some(r)) => format!(
            "about {} at the current {r:.1} canary requests/s",
            about_duration(s)
        ),
        _ => "no time estimate: no canary requests in the last window".to_string(),
    };
    let message = match seconds {
        Some(s) if s > REASONABLE_SECONDS => format!(
            "cannot decide in reasonable time: to {verb} needs about {} more canary requests, {when} ({estimate}, stable bad rate {:.2}%); knobs: {knobs}",
            about_count(more),
            100.0 * p_s
        ),
        _ => format!(
            "about {} more canary requests to {verb} if traffic stays like this ({estimate}), {when}",
            about_count(more)
        ),
    };
    Forecast {
        message,
        heading: Some(heading),
        more_canary_requests: Some(more as u64),
        seconds,
    }
}

#[cfg(test)]
#[path = "forecast_tests.rs"]
mod tests;
