//! How the Kubernetes shell runs an analysis when the state machine asks for one.
//! `PlaceholderAnalysis` is used until the shared analysis bridge is wired: it reports every
//! metric as `Error` (never `Pass`), so a rollout can only advance past analysis by a human.

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use sluice_crds::Rollout;

use crate::core::{AnalysisRun, MetricOutcome, VerdictKind};

/// Runs one analysis of `revision` for a Rollout (its spec names the metrics, its status holds
/// the sequential-test state).
pub trait AnalysisRunner: Send + Sync {
    fn run<'a>(
        &'a self,
        rollout: &'a Rollout,
        revision: &'a str,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, AnalysisRun>;
}

/// Stand-in until the analysis bridge exists: `Error` verdicts with a clear reason.
#[derive(Debug, Default, Clone, Copy)]
pub struct PlaceholderAnalysis;

impl AnalysisRunner for PlaceholderAnalysis {
    fn run<'a>(
        &'a self,
        rollout: &'a Rollout,
        revision: &'a str,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, AnalysisRun> {
        let mut names: Vec<String> = rollout
            .spec
            .analysis
            .iter()
            .flat_map(|a| a.metrics.iter().map(|m| m.name.clone()))
            .collect();
        if names.is_empty() {
            names.push("analysis".to_string());
        }
        let run = AnalysisRun {
            at: now,
            revision: revision.to_string(),
            metrics: names
                .into_iter()
                .map(|name| MetricOutcome {
                    name,
                    verdict: VerdictKind::Error,
                    value: None,
                    reason: "analysis is not wired into the Kubernetes controller in this build"
                        .to_string(),
                    sequential_state: None,
                })
                .collect(),
        };
        Box::pin(async move { run })
    }
}
