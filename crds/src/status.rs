//! Rollout status: phase, step, weight, revisions, analysis counters, commands, conditions.
//! Everything the controller needs to resume after a restart lives here.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Lifecycle phase, persisted in status.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq, Hash)]
pub enum Phase {
    /// First sight: primary being created and routed 100%.
    #[default]
    Initializing,
    /// Stable, nothing to roll out.
    Idle,
    /// Canary steps in progress.
    Progressing,
    /// Waiting: paused by spec/command, an indefinite pause step, or inconclusive analysis.
    Paused,
    /// Canary template copied to primary, waiting for primary to be ready.
    Promoting,
    /// Last revision promoted.
    Succeeded,
    /// Traffic returned to primary, canary being scaled down.
    RollingBack,
    /// Last revision rolled back.
    Failed,
}

impl Phase {
    pub fn as_str(&self) -> &'static str {
        match self {
            Phase::Initializing => "Initializing",
            Phase::Idle => "Idle",
            Phase::Progressing => "Progressing",
            Phase::Paused => "Paused",
            Phase::Promoting => "Promoting",
            Phase::Succeeded => "Succeeded",
            Phase::RollingBack => "RollingBack",
            Phase::Failed => "Failed",
        }
    }

    /// A revision is being rolled out (not idle, not finished).
    pub fn in_progress(&self) -> bool {
        matches!(
            self,
            Phase::Progressing | Phase::Paused | Phase::Promoting | Phase::RollingBack
        )
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = crate::schema::k8s_integers)]
pub struct RolloutStatus {
    #[serde(default)]
    pub phase: Phase,
    /// Why the rollout is where it is, for humans.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Index into the canary steps (after shorthand expansion).
    #[serde(default)]
    pub current_step: u32,
    /// Traffic percentage routed to the canary.
    #[serde(default)]
    #[schemars(range(min = 0, max = 100))]
    pub canary_weight: i32,
    /// Pod-template hash of what runs as primary (stable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable_revision: Option<String>,
    /// Pod-template hash of the revision being rolled out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary_revision: Option<String>,
    /// Stable revision before the last promotion (for a post-promotion revert).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_stable_revision: Option<String>,
    /// When the current revision's rollout started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    /// When the current step started (timed pauses, readiness deadline).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_started_at: Option<DateTime<Utc>>,
    /// When the promotion of the current (or last) revision began: its last step completed, or
    /// `promoteFull`. Cleared when a new revision starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promotion_started_at: Option<DateTime<Utc>>,
    /// Why that promotion began, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promotion_reason: Option<String>,
    /// When the last promotion completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promoted_at: Option<DateTime<Utc>>,
    /// Analysis progress of the current step / revision.
    #[serde(default)]
    pub analysis: AnalysisStatus,
    /// Gates asked for the current revision (and `postRollout` for the promoted one): state,
    /// reason, since when. A restarted controller asks again from these records.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gates: Vec<crate::gates::GateStatus>,
    /// Last command acted upon, so each command is applied exactly once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged_command: Option<CommandAck>,
    /// Why the current revision was aborted, if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abort: Option<AbortInfo>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Notifications still to deliver per sink and the keys already settled (the outbox: see
    /// docs/notifications.md). Written with the status, so a restart loses none.
    #[serde(default, skip_serializing_if = "crate::notification::Outbox::is_empty")]
    pub notifications: crate::notification::Outbox,
}

/// Counters and last values of the analysis of the current revision.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisStatus {
    /// Time of the last analysis run taken into account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run_at: Option<DateTime<Utc>>,
    /// Runs taken into account for this revision.
    #[serde(default)]
    pub runs: u32,
    /// Consecutive passing runs in the current step.
    #[serde(default)]
    pub consecutive_passes: u32,
    /// Failed runs for this revision (never reset within a revision).
    #[serde(default)]
    pub failed_runs: u32,
    /// Consecutive inconclusive runs.
    #[serde(default)]
    pub consecutive_inconclusive: u32,
    /// Consecutive runs with errors.
    #[serde(default)]
    pub consecutive_errors: u32,
    /// When the current hold for query errors began (errors past `errorLimit`); cleared when a
    /// run works again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_hold_since: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<MetricStatus>,
}

/// Per-metric record.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MetricStatus {
    pub name: String,
    #[serde(default)]
    pub passed: u32,
    #[serde(default)]
    pub failed: u32,
    #[serde(default)]
    pub inconclusive: u32,
    #[serde(default)]
    pub errors: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_value: Option<f64>,
    /// Pass, Fail, Inconclusive or Error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_verdict: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_time: Option<DateTime<Utc>>,
    /// Persisted state of a sequential test (opaque JSON), so a restart keeps the evidence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::preserve_unknown")]
    pub sequential_state: Option<serde_json::Value>,
    /// Statistical checks still collecting evidence: how far from a decision (cleared once
    /// the check decides).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forecast: Option<MetricForecast>,
}

/// How far a statistical check is from a decision, projected from the evidence so far and the
/// last window's traffic (docs/analysis.md, "Forecast").
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MetricForecast {
    /// For people, e.g. "about 1,200 more canary requests to promote …, about 4 min at the
    /// current 5.0 canary requests/s", or why no decision is in reach and which knob helps.
    pub message: String,
    /// `Promote` or `RollBack`: where the evidence is heading.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heading: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub more_canary_requests: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds: Option<f64>,
}

/// A command that was applied.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CommandAck {
    pub id: String,
    pub action: String,
    pub at: DateTime<Utc>,
}

/// Why a revision was aborted.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AbortInfo {
    /// `analysis`, `command`, `alert`, `deadline`, `canaryLost`, `gate`.
    pub source: String,
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// Revision that was aborted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    pub at: DateTime<Utc>,
}

/// A Kubernetes-style condition. `lastTransitionTime` changes only when `status` changes.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// `Ready`, `Promoted`, `Progressing`, `Aborted`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    pub reason: String,
    #[serde(default)]
    pub message: String,
    pub last_transition_time: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

impl RolloutStatus {
    /// Set a condition; keeps the transition time when the status value is unchanged.
    pub fn set_condition(
        &mut self,
        type_: &str,
        status: bool,
        reason: &str,
        message: &str,
        now: DateTime<Utc>,
    ) {
        let status_str = if status { "True" } else { "False" };
        if let Some(c) = self.conditions.iter_mut().find(|c| c.type_ == type_) {
            if c.status != status_str {
                c.last_transition_time = now;
                c.status = status_str.to_string();
            }
            c.reason = reason.to_string();
            c.message = message.to_string();
            c.observed_generation = self.observed_generation;
        } else {
            self.conditions.push(Condition {
                type_: type_.to_string(),
                status: status_str.to_string(),
                reason: reason.to_string(),
                message: message.to_string(),
                last_transition_time: now,
                observed_generation: self.observed_generation,
            });
        }
    }

    pub fn condition(&self, type_: &str) -> Option<&Condition> {
        self.conditions.iter().find(|c| c.type_ == type_)
    }

    /// The metric record with this name, created if missing.
    pub fn metric_mut(&mut self, name: &str) -> &mut MetricStatus {
        let idx = match self.analysis.metrics.iter().position(|m| m.name == name) {
            Some(i) => i,
            None => {
                self.analysis.metrics.push(MetricStatus {
                    name: name.to_string(),
                    ..MetricStatus::default()
                });
                self.analysis.metrics.len() - 1
            }
        };
        &mut self.analysis.metrics[idx]
    }
}

/// Label map type used by alerts.
pub type Labels = BTreeMap<String, String>;
