//! What one analysis step checks (input) and what it remembers between steps (state).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::builtin::{BuiltinMetric, Provider};
use crate::stats::{SequentialConfig, SequentialState, SloConfig, SloState};
use crate::template::Variables;
use crate::verdict::{Threshold, Verdict};

/// Four count query templates of a custom comparison (or SLO guard, which uses the canary pair).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CountTemplates {
    pub canary_requests: String,
    pub canary_bad: String,
    pub stable_requests: String,
    pub stable_bad: String,
}

/// Where per-arm request / bad counts come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum CountSource {
    /// Built-in requests / 5xx queries of a provider.
    Builtin(Provider),
    Custom(CountTemplates),
}

/// Where per-arm histogram buckets (`sum by (le) (increase(..._bucket[...]))`) come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum BucketSource {
    Builtin(Provider),
    Custom { stable: String, canary: String },
}

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
    /// Sequential canary-vs-stable test on 5xx (or custom bad-event) counts.
    ErrorComparison {
        source: CountSource,
        settings: SequentialConfig,
    },
    /// Sequential test on requests slower than a bucket boundary: `boundary` if given, else the
    /// first finite bucket holding stable's `quantile` (chosen once, then kept in the state).
    LatencyComparison {
        source: BucketSource,
        quantile: f64,
        boundary: Option<f64>,
        settings: SequentialConfig,
    },
    /// Absolute bad-rate guard on the canary (H0: rate <= settings.max_bad_rate).
    Slo {
        source: CountSource,
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
