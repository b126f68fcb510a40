//! Outbound notifications' data: transition and sink kinds, what a notification says, and the
//! outbox (pending entries and settled keys) kept with a rollout's state. The logic (detecting
//! transitions, recording, settling, delivering) is in the controller's `notify` module.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::status::Phase;

/// A kind of transition, as notifications name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum TransitionKind {
    Started,
    Step,
    Paused,
    AnalysisFailed,
    RolledBack,
    Promoted,
    Reverted,
}

impl TransitionKind {
    pub const ALL: [TransitionKind; 7] = [
        TransitionKind::Started,
        TransitionKind::Step,
        TransitionKind::Paused,
        TransitionKind::AnalysisFailed,
        TransitionKind::RolledBack,
        TransitionKind::Promoted,
        TransitionKind::Reverted,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            TransitionKind::Started => "started",
            TransitionKind::Step => "step",
            TransitionKind::Paused => "paused",
            TransitionKind::AnalysisFailed => "analysisFailed",
            TransitionKind::RolledBack => "rolledBack",
            TransitionKind::Promoted => "promoted",
            TransitionKind::Reverted => "reverted",
        }
    }
}

/// The format a sink receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SinkKind {
    /// Sluice's own JSON, signed (Standard Webhooks headers) when a key is set.
    Webhook,
    /// A Slack incoming webhook.
    Slack,
    /// A Microsoft Teams Workflows webhook ("When a Teams webhook request is received").
    Teams,
}

impl SinkKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            SinkKind::Webhook => "webhook",
            SinkKind::Slack => "slack",
            SinkKind::Teams => "teams",
        }
    }
}

/// The failing metric of an `analysisFailed` notification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FailedMetric {
    pub name: String,
    /// The last value, rounded for people (absent when the metric had none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// One notification, the same for every sink (each sink renders it in its own format).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    /// Unique per rollout and transition, the same on every attempt and after a restart; sent
    /// as `webhook-id` so that a receiver can drop a repeat. No `.` (Standard Webhooks signs
    /// `id.timestamp.body`).
    pub id: String,
    /// The transition's key, `REVISION/KIND/STEP`.
    pub key: String,
    pub kind: TransitionKind,
    pub namespace: String,
    pub rollout: String,
    pub phase: Phase,
    pub canary_weight: i32,
    /// Index of the current step (the text for people says `step N`, counted from 1).
    pub step: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable_revision: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary_revision: Option<String>,
    pub message: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed_metrics: Vec<FailedMetric>,
    /// The rollout's page on the dashboard, when an external URL is configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dashboard_url: Option<String>,
    pub at: DateTime<Utc>,
}

/// How a delivery ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Outcome {
    Delivered,
    /// Given up: a 4xx other than 408/429, or retried past the maximum age.
    Failed,
}

impl Outcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Delivered => "delivered",
            Outcome::Failed => "failed",
        }
    }
}

/// A notification waiting for one sink.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Pending {
    pub sink: String,
    pub notification: Notification,
}

/// A (sink, key) that was delivered or given up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Settled {
    pub sink: String,
    pub key: String,
    pub outcome: Outcome,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Outbox {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending: Vec<Pending>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub settled: Vec<Settled>,
}

impl Outbox {
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty() && self.settled.is_empty()
    }
}
