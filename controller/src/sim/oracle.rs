//! Analysis outcomes for the simulator: the [`AnalysisOracle`] trait (the benchmark implements
//! it from simulated request streams) and a scripted implementation for tests.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use sluice_crds::RolloutStatus;

use crate::core::{AnalysisRun, MetricOutcome, VerdictKind};

/// Produces the analysis run the shell would have measured.
pub trait AnalysisOracle {
    /// A run for `revision` at `at`, while the router serves `weight`% to the canary; `status`
    /// is the Rollout's status as persisted (where the analysis keeps its evidence).
    fn run(
        &mut self,
        at: DateTime<Utc>,
        weight: i32,
        revision: &str,
        status: &RolloutStatus,
    ) -> AnalysisRun;
}

/// When a scripted rule applies.
#[derive(Debug, Clone, PartialEq)]
pub enum When {
    Always,
    /// Exactly the n-th run (0-based) of the revision.
    Run(u32),
    /// The n-th run (0-based) of the revision and every later one.
    FromRun(u32),
    /// Runs at or after this time.
    FromTime(DateTime<Utc>),
}

/// A scripted verdict: for `revision` (None: any), when `when`, metric `metric` (None: all).
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub revision: Option<String>,
    pub when: When,
    pub metric: Option<String>,
    pub verdict: VerdictKind,
}

/// Verdicts by rule; the last matching rule wins; otherwise `default`.
#[derive(Debug, Clone)]
pub struct ScriptedOracle {
    pub metrics: Vec<String>,
    pub default: VerdictKind,
    pub rules: Vec<Rule>,
    runs: HashMap<String, u32>,
}

impl ScriptedOracle {
    /// One metric `error-rate`, every run `default`.
    pub fn new(default: VerdictKind) -> Self {
        Self::with_metrics(&["error-rate"], default)
    }

    pub fn with_metrics(metrics: &[&str], default: VerdictKind) -> Self {
        Self {
            metrics: metrics.iter().map(|m| m.to_string()).collect(),
            default,
            rules: Vec::new(),
            runs: HashMap::new(),
        }
    }

    pub fn rule(mut self, revision: Option<&str>, when: When, verdict: VerdictKind) -> Self {
        self.rules.push(Rule {
            revision: revision.map(str::to_string),
            when,
            metric: None,
            verdict,
        });
        self
    }

    /// The n-th run (0-based) of any revision gets `verdict`.
    pub fn on_run(self, n: u32, verdict: VerdictKind) -> Self {
        self.rule(None, When::Run(n), verdict)
    }

    /// Runs of `revision` get `verdict`.
    pub fn for_revision(self, revision: &str, verdict: VerdictKind) -> Self {
        self.rule(Some(revision), When::Always, verdict)
    }

    fn verdict(&self, at: DateTime<Utc>, revision: &str, n: u32, metric: &str) -> VerdictKind {
        self.rules
            .iter()
            .rev()
            .filter(|r| r.revision.as_deref().is_none_or(|x| x == revision))
            .filter(|r| r.metric.as_deref().is_none_or(|x| x == metric))
            .find(|r| match r.when {
                When::Always => true,
                When::Run(k) => n == k,
                When::FromRun(k) => n >= k,
                When::FromTime(t) => at >= t,
            })
            .map_or(self.default, |r| r.verdict)
    }
}

impl AnalysisOracle for ScriptedOracle {
    fn run(
        &mut self,
        at: DateTime<Utc>,
        weight: i32,
        revision: &str,
        _status: &RolloutStatus,
    ) -> AnalysisRun {
        let n = *self.runs.get(revision).unwrap_or(&0);
        self.runs.insert(revision.to_string(), n + 1);
        let metrics = self
            .metrics
            .iter()
            .map(|name| {
                let verdict = self.verdict(at, revision, n, name);
                let value = match verdict {
                    VerdictKind::Pass => Some(0.001),
                    VerdictKind::Fail => Some(0.25),
                    _ => None,
                };
                MetricOutcome {
                    name: name.clone(),
                    verdict,
                    value,
                    reason: format!("scripted {} (run {n}, weight {weight})", verdict.as_str()),
                    sequential_state: None,
                    forecast: None,
                }
            })
            .collect();
        AnalysisRun {
            at,
            revision: revision.to_string(),
            metrics,
        }
    }
}
