//! Inputs and outputs of the pure state machine: what the shell observed, what it must do.
//! No I/O, no clock: plain data, serde-serializable for timelines and tests.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sluice_crds::{Command, GateName, RolloutStatus};

/// State of one Deployment as the shell saw it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkloadState {
    pub exists: bool,
    /// Pod-template hash of its current template.
    pub revision: Option<String>,
    /// Desired replicas.
    pub replicas: i32,
    /// Ready/available replicas of the current template.
    pub ready_replicas: i32,
    /// Rollout of its current template complete (observedGeneration caught up, all updated and available).
    pub ready: bool,
}

/// Verdict of one metric in one analysis run (mapped from sluice-analysis by the shell).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum VerdictKind {
    Pass,
    Fail,
    /// No data, NaN, no traffic: counts toward the inconclusive limit.
    Inconclusive,
    /// A sequential test is still collecting evidence: no decision, no counter.
    Pending,
    /// Prometheus unreachable, bad query: counts toward the error limit.
    Error,
}

impl VerdictKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            VerdictKind::Pass => "Pass",
            VerdictKind::Fail => "Fail",
            VerdictKind::Inconclusive => "Inconclusive",
            VerdictKind::Pending => "Pending",
            VerdictKind::Error => "Error",
        }
    }
}

/// One metric's result in an analysis run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricOutcome {
    pub name: String,
    pub verdict: VerdictKind,
    pub value: Option<f64>,
    pub reason: String,
    /// Updated sequential-test state to persist in status (opaque to the state machine).
    pub sequential_state: Option<serde_json::Value>,
    /// How far a statistical check is from a decision (None once decided, or for thresholds).
    #[serde(default)]
    pub forecast: Option<sluice_crds::MetricForecast>,
}

/// Result of one analysis run, for the revision `revision`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnalysisRun {
    pub at: DateTime<Utc>,
    pub revision: String,
    pub metrics: Vec<MetricOutcome>,
}

/// Everything the shell measured before calling `step`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Observations {
    /// Rollout metadata.generation.
    pub generation: Option<i64>,
    /// The target Deployment (`NAME`, which runs the canary during a rollout).
    pub target: WorkloadState,
    /// The primary copy (`NAME-primary`).
    pub primary: WorkloadState,
    /// Canary weight read back from the router (None: router object missing / unknown).
    pub router_weight: Option<i32>,
    /// An analysis run the shell performed because the previous decision asked for it.
    pub analysis: Option<AnalysisRun>,
    /// The latest command from the Rollout (acted on only if its id is not yet acknowledged).
    pub command: Option<Command>,
    /// Answers of the gates the shell asked because the previous decision said so.
    #[serde(default)]
    pub gates: Vec<GateAnswer>,
}

/// What a gate answered: open when every check answered 2xx. `gate`, `revision` and `step`
/// are copied from the [`Effect::AskGate`] that asked; `asked_at` is when it was asked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateAnswer {
    pub gate: GateName,
    pub revision: String,
    pub step: Option<u32>,
    pub asked_at: DateTime<Utc>,
    pub open: bool,
    /// For people: every check open, or the first closed check and what it answered.
    pub reason: String,
}

/// Event severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventType {
    Normal,
    Warning,
}

/// What the shell must do. Executed in order; all are idempotent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Effect {
    /// Create or update `NAME-primary` from the target's template of `revision`, with the target's replicas
    /// (first sight, or promotion), plus the primary/canary Services.
    ApplyPrimary { revision: String },
    /// Put `NAME-primary` back on the template of `revision`, the stable revision before the
    /// last promotion (post-promotion abort). The shell kept that template when it promoted.
    RevertPrimary { revision: String },
    /// Scale the target (canary) to the replicas in its spec (Up) or to zero (Down).
    ScaleCanary { up: bool },
    /// Route `weight`% (0..=100) to the canary, the rest to primary.
    SetWeight { weight: i32 },
    /// Run analysis for `revision` and call `step` again with the result.
    RunAnalysis { revision: String },
    /// Ask every check of gate `gate` (spec.gates) for `revision` and call `step` again with
    /// the [`GateAnswer`]. The request body is built from the decision's status.
    AskGate {
        gate: GateName,
        revision: String,
        step: Option<u32>,
    },
    /// Record a Kubernetes Event (only on transitions).
    Event {
        type_: EventType,
        reason: String,
        message: String,
    },
}

/// The state machine's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub status: RolloutStatus,
    pub effects: Vec<Effect>,
    /// Call again after this long at the latest (None: only on change).
    pub requeue_after: Option<Duration>,
}
