//! Verdicts of one metric at one analysis step, and the threshold judge.

use serde::{Deserialize, Serialize};

use crate::prometheus::QueryResult;

/// Outcome of one metric check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum VerdictKind {
    Pass,
    Fail,
    /// No decision possible yet; see [`InconclusiveCause`].
    Inconclusive,
    /// The measurement itself failed (Prometheus unreachable, bad query, unusable result shape).
    Error,
}

/// Why a verdict is inconclusive. `NoData`/`NaN`/`NoTraffic` mean nothing could be measured and
/// count toward an inconclusive limit; `NotEnoughEvidence` means "still collecting" (normal).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum InconclusiveCause {
    /// Empty result: no series matched (or an arm has no series yet).
    NoData,
    /// The value was NaN (e.g. 0/0 once traffic stopped).
    NaN,
    /// The canary (or stable, for a comparison) served no requests in this interval.
    NoTraffic,
    /// A statistical test has not yet reached its evidence threshold either way.
    NotEnoughEvidence,
    /// The canary fails a threshold that stable fails too over the same window.
    StableFailsToo,
}

/// Statistical evidence reported with a comparison or SLO verdict.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Evidence {
    /// E-value against "canary is not worse than tolerated" (rollback side).
    pub e_fail: f64,
    /// `min(1, 1/e_fail)`: an anytime-valid p-value.
    pub p_fail: f64,
    /// The e-value needed to fail (`1/alpha`).
    pub fail_threshold: f64,
    /// E-value against "canary is at least the bad ratio worse" (promotion side).
    pub e_pass: f64,
    pub p_pass: f64,
    /// The e-value needed to pass (`1/beta`).
    pub pass_threshold: f64,
    /// Estimate of the canary/stable bad-rate ratio (absolute bad rate for the SLO guard).
    pub estimate: Option<f64>,
    /// Lower end of the anytime-valid confidence range (0 = unbounded below).
    pub low: Option<f64>,
    /// Upper end of the confidence range (`None` = beyond the grid, unbounded above).
    pub high: Option<f64>,
    pub canary_requests: f64,
    pub canary_bad: f64,
    pub stable_requests: f64,
    pub stable_bad: f64,
    /// Latency comparisons: the bucket boundary (seconds) above which a request counts as bad.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boundary: Option<f64>,
}

/// Verdict of one metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Verdict {
    pub kind: VerdictKind,
    /// The measured value (threshold metrics) or the ratio estimate (comparisons).
    pub value: Option<f64>,
    /// Human readable reason.
    pub reason: String,
    /// Set exactly when `kind` is `Inconclusive`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<InconclusiveCause>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<Evidence>,
    /// Statistical checks still collecting evidence: how far from a decision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forecast: Option<crate::stats::Forecast>,
}

impl Verdict {
    pub fn pass(value: Option<f64>, reason: impl Into<String>) -> Self {
        Self::new(VerdictKind::Pass, value, reason, None)
    }
    pub fn fail(value: Option<f64>, reason: impl Into<String>) -> Self {
        Self::new(VerdictKind::Fail, value, reason, None)
    }
    pub fn error(reason: impl Into<String>) -> Self {
        Self::new(VerdictKind::Error, None, reason, None)
    }
    pub fn inconclusive(
        cause: InconclusiveCause,
        value: Option<f64>,
        reason: impl Into<String>,
    ) -> Self {
        Self::new(VerdictKind::Inconclusive, value, reason, Some(cause))
    }
    fn new(
        kind: VerdictKind,
        value: Option<f64>,
        reason: impl Into<String>,
        cause: Option<InconclusiveCause>,
    ) -> Self {
        Verdict {
            kind,
            value,
            reason: reason.into(),
            cause,
            evidence: None,
            forecast: None,
        }
    }
    pub fn with_evidence(mut self, evidence: Evidence) -> Self {
        self.evidence = Some(evidence);
        self
    }
    /// Attaches `forecast` when the verdict is still Inconclusive (a decision needs none).
    pub fn with_forecast(mut self, forecast: crate::stats::Forecast) -> Self {
        if self.kind == VerdictKind::Inconclusive {
            self.forecast = Some(forecast);
        }
        self
    }
}

/// Limits of a threshold metric; the value must satisfy `min <= value <= max`.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Threshold {
    pub min: Option<f64>,
    pub max: Option<f64>,
}

/// Extracts the single value of an instant result: `Ok(None)` for an empty vector, `Err` (reason)
/// for a multi-series vector or a shape without one number.
pub fn single_value(result: &QueryResult) -> Result<Option<f64>, String> {
    match result {
        QueryResult::Vector(v) if v.is_empty() => Ok(None),
        QueryResult::Vector(v) if v.len() == 1 => Ok(Some(v[0].value)),
        QueryResult::Vector(v) => Err(format!(
            "query returned {} series but one value is needed; aggregate it (e.g. sum(...) or max(...)); labels of the first: {:?}",
            v.len(),
            v[0].labels
        )),
        QueryResult::Scalar(_, x) => Ok(Some(*x)),
        other => Err(format!("query returned a {}, but an instant vector or scalar is needed", other.type_name())),
    }
}

/// Judges a threshold metric. Empty → Inconclusive(NoData); NaN → Inconclusive(NaN), never Pass or
/// Fail; several series → Error (a query mistake that waiting does not fix).
pub fn judge_threshold(result: &QueryResult, limits: &Threshold) -> Verdict {
    if limits.min.is_none() && limits.max.is_none() {
        return Verdict::error("threshold metric has neither min nor max");
    }
    let value = match single_value(result) {
        Err(reason) => return Verdict::error(reason),
        Ok(None) => {
            return Verdict::inconclusive(
                InconclusiveCause::NoData,
                None,
                "query returned no data (empty result)",
            )
        }
        Ok(Some(v)) if v.is_nan() => {
            return Verdict::inconclusive(
                InconclusiveCause::NaN,
                None,
                "query returned NaN (no traffic in the window?)",
            )
        }
        Ok(Some(v)) => v,
    };
    judge_value(value, limits)
}

/// A finite value against the threshold's bounds (whatever measured it: a query, a web check).
pub fn judge_value(value: f64, limits: &Threshold) -> Verdict {
    if limits.min.is_none() && limits.max.is_none() {
        return Verdict::error("threshold metric has neither min nor max");
    }
    if let Some(min) = limits.min.filter(|m| value < *m) {
        return Verdict::fail(
            Some(value),
            format!("value {value} is below the minimum {min}"),
        );
    }
    if let Some(max) = limits.max.filter(|m| value > *m) {
        return Verdict::fail(
            Some(value),
            format!("value {value} is above the maximum {max}"),
        );
    }
    Verdict::pass(
        Some(value),
        format!(
            "value {value} is within [{}, {}]",
            show(limits.min),
            show(limits.max)
        ),
    )
}

fn show(x: Option<f64>) -> String {
    x.map_or_else(|| "-".to_string(), |v| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prometheus::{Labels, Sample};

    const MIN99: Threshold = Threshold {
        min: Some(0.99),
        max: None,
    };
    const MAX05: Threshold = Threshold {
        min: None,
        max: Some(0.5),
    };

    fn series(n: usize) -> QueryResult {
        QueryResult::Vector(
            (0..n)
                .map(|i| Sample {
                    labels: Labels::from([("pod".to_string(), i.to_string())]),
                    timestamp: 0.0,
                    value: 1.0,
                })
                .collect(),
        )
    }

    #[test]
    fn pass_and_fail_by_limits() {
        assert_eq!(
            judge_threshold(&QueryResult::single(0.995), &MIN99).kind,
            VerdictKind::Pass
        );
        assert_eq!(
            judge_threshold(&QueryResult::single(0.99), &MIN99).kind,
            VerdictKind::Pass
        );
        let v = judge_threshold(&QueryResult::single(0.9), &MIN99);
        assert_eq!((v.kind, v.value), (VerdictKind::Fail, Some(0.9)));
        assert!(v.reason.contains("below"));
        assert_eq!(
            judge_threshold(&QueryResult::Scalar(0.0, 0.7), &MAX05).kind,
            VerdictKind::Fail
        );
        // p99 beyond the last finite bucket reads +Inf: that is a real (bad) value.
        assert_eq!(
            judge_threshold(&QueryResult::single(f64::INFINITY), &MAX05).kind,
            VerdictKind::Fail
        );
    }

    #[test]
    fn no_data_and_nan_are_inconclusive() {
        let v = judge_threshold(&QueryResult::Vector(vec![]), &MIN99);
        assert_eq!(
            (v.kind, v.cause),
            (VerdictKind::Inconclusive, Some(InconclusiveCause::NoData))
        );
        let v = judge_threshold(&QueryResult::single(f64::NAN), &MIN99);
        assert_eq!(
            (v.kind, v.cause, v.value),
            (
                VerdictKind::Inconclusive,
                Some(InconclusiveCause::NaN),
                None
            )
        );
        let v = judge_threshold(&QueryResult::Scalar(0.0, f64::NAN), &MAX05);
        assert_eq!(v.cause, Some(InconclusiveCause::NaN));
    }

    #[test]
    fn bad_shapes_are_errors() {
        let v = judge_threshold(&series(2), &MIN99);
        assert_eq!(v.kind, VerdictKind::Error);
        assert!(v.reason.contains("2 series"));
        assert_eq!(
            judge_threshold(&QueryResult::String(0.0, "x".into()), &MIN99).kind,
            VerdictKind::Error
        );
        assert_eq!(
            judge_threshold(&QueryResult::Matrix(vec![]), &MIN99).kind,
            VerdictKind::Error
        );
        assert_eq!(
            judge_threshold(&QueryResult::single(1.0), &Threshold::default()).kind,
            VerdictKind::Error
        );
    }

    #[test]
    fn verdict_serializes_for_status() {
        let v = judge_threshold(&QueryResult::Vector(vec![]), &MIN99);
        let json = serde_json::to_string(&v).unwrap();
        assert!(
            json.contains(r#""kind":"Inconclusive""#) && json.contains(r#""cause":"NoData""#),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<Verdict>(&json).unwrap(), v);
    }
}
