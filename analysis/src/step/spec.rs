//! What one analysis step checks (input) and what it remembers between steps (state).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::window::Calibration;
use crate::builtin::{BuiltinMetric, CounterSpec, Provider};
use crate::stats::{
    RouteSplit, RouteState, SequentialConfig, SequentialState, SloConfig, SloState,
};
use crate::template::Variables;
use crate::verdict::{Threshold, Verdict};

/// How one metric is measured and judged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Check {
    /// A PromQL template whose single value must lie within the threshold.
    Threshold { query: String, threshold: Threshold },
    /// A built-in value metric of the canary arm within the threshold.
    BuiltinThreshold {
        provider: Provider,
        metric: BuiltinMetric,
        threshold: Threshold,
    },
    /// Like `BuiltinThreshold`, but a failure that stable shares over the same window is
    /// Inconclusive (`step::shared`).
    SharedThreshold {
        provider: Provider,
        metric: BuiltinMetric,
        threshold: Threshold,
    },
    /// Sequential canary-vs-stable test on exact request / bad-event counts of a counter.
    /// With `by`, the same test also runs on each route's counts (`stats::routes`).
    ErrorComparison {
        counter: CounterSpec,
        settings: SequentialConfig,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<RouteSplit>,
    },
    /// Sequential test on requests slower than a bucket boundary of a histogram's `_bucket`
    /// counter: `boundary` if given, else the first finite bucket holding stable's `quantile`,
    /// chosen from stable's data before the first judged window and then kept in the state.
    LatencyComparison {
        histogram: CounterSpec,
        quantile: f64,
        boundary: Option<f64>,
        settings: SequentialConfig,
    },
    /// Absolute bad-rate guard on the canary (H0: rate <= settings.max_bad_rate).
    Slo {
        counter: CounterSpec,
        settings: SloConfig,
    },
}

impl Check {
    /// Statistical checks share the step's alpha (Bonferroni).
    pub fn is_statistical(&self) -> bool {
        matches!(
            self,
            Check::ErrorComparison { .. } | Check::LatencyComparison { .. } | Check::Slo { .. }
        )
    }
}

/// One metric of a step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricSpec {
    pub name: String,
    pub check: Check,
    /// Extra template variables for this metric (may not redefine the step's variables).
    #[serde(default)]
    pub args: Variables,
}

/// Per-metric memory kept between steps.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricState {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequential: Option<SequentialState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slo: Option<SloState>,
    /// End of the last counted window: the next window starts here, so windows never overlap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_at: Option<DateTime<Utc>>,
    /// Whether stable's history before the first window has been read (boundary, dispersion).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub baseline_read: bool,
    /// Latency: stable's buckets collected in-rollout while the baseline had too few requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration: Option<Calibration>,
    /// Per-route comparisons: each route slot's test (the pooled one is `sequential`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routes: Option<RouteState>,
}

/// All metrics' memory, keyed by metric name. Persist it in the rollout status; reset it when a
/// new canary revision starts.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisState {
    #[serde(default)]
    pub metrics: BTreeMap<String, MetricState>,
}

/// The verdict of one metric plus the rendered queries (for status and logs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricVerdict {
    pub name: String,
    pub verdict: Verdict,
    pub queries: Vec<String>,
}

/// Result of one analysis step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepOutcome {
    pub verdicts: Vec<MetricVerdict>,
    /// Fail if any Fail; else Error if any Error; else Inconclusive if any (cause: a no-data kind
    /// before NotEnoughEvidence); else Pass.
    pub summary: Verdict,
    pub state: AnalysisState,
}
