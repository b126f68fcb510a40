//! The JSON shape of one rollout as the API returns it and the CLI prints it (built from a `Rollout`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sluice_crds::{
    effective_steps, AbortInfo, CommandAck, Condition, MetricStatus, Phase, Rollout,
};

use crate::store::pending_command;

/// One metric's latest analysis values (the sequential-test state is left out).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MetricView {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_value: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_verdict: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_time: Option<DateTime<Utc>>,
    #[serde(default)]
    pub passed: u32,
    #[serde(default)]
    pub failed: u32,
    #[serde(default)]
    pub inconclusive: u32,
    #[serde(default)]
    pub errors: u32,
    /// Statistical checks still collecting evidence: how far from a decision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forecast: Option<ForecastView>,
}

/// How far a comparison is from a decision (`forecast.message` is what people read).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ForecastView {
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub more_canary_requests: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds: Option<f64>,
}

impl From<&MetricStatus> for MetricView {
    fn from(m: &MetricStatus) -> Self {
        MetricView {
            name: m.name.clone(),
            last_value: m.last_value.filter(|v| v.is_finite()),
            last_verdict: m.last_verdict.clone(),
            last_reason: m.last_reason.clone(),
            last_time: m.last_time,
            passed: m.passed,
            failed: m.failed,
            inconclusive: m.inconclusive,
            errors: m.errors,
            forecast: m.forecast.as_ref().map(|f| ForecastView {
                message: f.message.clone(),
                more_canary_requests: f.more_canary_requests,
                seconds: f.seconds.filter(|s| s.is_finite()),
            }),
        }
    }
}

/// One gate (spec.gates) as people and the dashboard see it: for the revision in progress
/// (`postRollout`: the promoted one), configured gates not asked yet included.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GateView {
    /// `preRollout`, `confirmTrafficIncrease`, `confirmPromotion`, `postRollout`, `onRollback`.
    pub gate: String,
    /// `open`, `closed`, `pending` (asked, no answer yet) or `notAsked`.
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// `confirmTrafficIncrease`: the 0-based `setWeight` step it guards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<u32>,
    /// First asked (its deadline counts from here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asked_at: Option<DateTime<Utc>>,
    /// While not open: when the deadline passes (or passed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_at: Option<DateTime<Utc>>,
    /// `fail` or `hold`.
    pub on_deadline: String,
    /// The deadline passed with `onDeadline: hold`: waiting for a human.
    #[serde(default)]
    pub expired: bool,
}

/// The gates of `spec` with their records in `status`.
pub fn gate_views(
    spec: &sluice_crds::RolloutSpec,
    status: &sluice_crds::RolloutStatus,
) -> Vec<GateView> {
    use sluice_crds::{GateDeadlinePolicy, GateName, GateState};
    let mut out = Vec::new();
    for name in GateName::ALL {
        let Some(g) = spec.gates.get(name) else {
            continue;
        };
        let on_deadline = match g.on_deadline {
            GateDeadlinePolicy::Fail => "fail",
            GateDeadlinePolicy::Hold => "hold",
        }
        .to_string();
        let rev = match name {
            GateName::PostRollout => status.stable_revision.as_deref(),
            _ => status.canary_revision.as_deref(),
        };
        let records: Vec<_> = status
            .gates
            .iter()
            .filter(|r| r.gate == name && Some(r.revision.as_str()) == rev)
            .collect();
        if records.is_empty() {
            out.push(GateView {
                gate: name.as_str().to_string(),
                state: "notAsked".into(),
                reason: None,
                step: None,
                since: None,
                asked_at: None,
                deadline_at: None,
                on_deadline,
                expired: false,
            });
            continue;
        }
        for r in records {
            let open = r.state == GateState::Open;
            let deadline = crate::core::gates::deadline(g);
            out.push(GateView {
                gate: name.as_str().to_string(),
                state: match r.state {
                    GateState::Open => "open",
                    GateState::Closed => "closed",
                    GateState::Pending => "pending",
                }
                .to_string(),
                reason: r.reason.clone(),
                step: r.step,
                since: Some(r.since),
                asked_at: r.asked_at,
                deadline_at: (!open && name.holds())
                    .then(|| chrono::TimeDelta::from_std(deadline).ok())
                    .flatten()
                    .and_then(|d| r.since.checked_add_signed(d)),
                on_deadline: on_deadline.clone(),
                expired: r.expired,
            });
        }
    }
    out
}

/// A pending (written, not yet acknowledged) command.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PendingCommandView {
    pub id: String,
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    pub at: DateTime<Utc>,
}

fn default_target_kind() -> String {
    "Deployment".to_string()
}

/// A rollout that cannot start or move, and why.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BlockedView {
    /// `Blocked` (an action keeps failing) or `InvalidSpec` (the spec or file is refused).
    pub reason: String,
    pub message: String,
    pub since: DateTime<Utc>,
}

/// Status of one rollout for people and pipelines.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RolloutView {
    pub namespace: String,
    pub name: String,
    /// `canary` or `blueGreen`.
    pub strategy: String,
    pub target: String,
    /// `Deployment` on Kubernetes; `Backends` in standalone mode (two fixed backends).
    #[serde(default = "default_target_kind")]
    pub target_kind: String,
    pub phase: Phase,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Traffic percentage on the canary.
    pub weight: i32,
    /// Current step index and number of canary steps.
    pub step: u32,
    pub total_steps: u32,
    pub paused: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable_revision: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary_revision: Option<String>,
    /// The revision the target has now (Kubernetes: the target's pod-template hash; standalone:
    /// `canary.version` in the file), whether or not a rollout of it has started. `wait` without
    /// `--revision` waits for this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired_revision: Option<String>,
    /// Why the rollout cannot start or move (`Ready=False` with reason `Blocked` or
    /// `InvalidSpec`), if so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked: Option<BlockedView>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_stable_revision: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    /// When the current step began (`status.stepStartedAt`): a timed pause ends a duration
    /// after it; while Promoting, when promotion began.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_started_at: Option<DateTime<Utc>>,
    /// When the decision to promote this revision was taken (phase Promoting began) and why
    /// (`all N steps completed`, `promoteFull command ID`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promotion_started_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promotion_reason: Option<String>,
    /// When the promotion finished (the primary runs the revision, all traffic on it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promoted_at: Option<DateTime<Utc>>,
    /// When the decision to roll back was taken (phase RollingBack began) and why, as
    /// `SOURCE: REASON` (`abort` has the same in parts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_started_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_reason: Option<String>,
    #[serde(default)]
    pub post_promotion_watch_seconds: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abort: Option<AbortInfo>,
    #[serde(default)]
    pub analysis: Vec<MetricView>,
    /// The gates (spec.gates) and their state; empty without gates.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gates: Vec<GateView>,
    #[serde(default)]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged_command: Option<CommandAck>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_command: Option<PendingCommandView>,
}

impl RolloutView {
    pub fn from_rollout(r: &Rollout) -> Self {
        let status = r.status.clone().unwrap_or_default();
        let spec = &r.spec;
        let total_steps = spec
            .strategy
            .canary
            .as_ref()
            .map(|c| effective_steps(c).len())
            .unwrap_or(0);
        let pending = pending_command(r).filter(|c| {
            status
                .acknowledged_command
                .as_ref()
                .is_none_or(|a| a.id != c.id)
        });
        RolloutView {
            namespace: r
                .metadata
                .namespace
                .clone()
                .unwrap_or_else(|| "default".to_string()),
            name: r.metadata.name.clone().unwrap_or_default(),
            strategy: if spec.strategy.blue_green.is_some() {
                "blueGreen"
            } else {
                "canary"
            }
            .to_string(),
            target: spec.target_ref.name.clone(),
            target_kind: spec.target_ref.kind.clone(),
            phase: status.phase,
            message: status.message.clone(),
            weight: status.canary_weight,
            step: status.current_step,
            total_steps: u32::try_from(total_steps).unwrap_or(u32::MAX),
            paused: spec.paused,
            stable_revision: status.stable_revision.clone(),
            canary_revision: status.canary_revision.clone(),
            desired_revision: None,
            blocked: crate::core::conditions::blocked(&status).map(|c| BlockedView {
                reason: c.reason.clone(),
                message: c.message.clone(),
                since: c.last_transition_time,
            }),
            previous_stable_revision: status.previous_stable_revision.clone(),
            started_at: status.started_at,
            step_started_at: status.step_started_at,
            promotion_started_at: status.promotion_started_at,
            promotion_reason: status.promotion_reason.clone(),
            promoted_at: status.promoted_at,
            rollback_started_at: status.abort.as_ref().map(|a| a.at),
            rollback_reason: status
                .abort
                .as_ref()
                .map(|a| format!("{}: {}", a.source, a.reason)),
            post_promotion_watch_seconds: spec.post_promotion_watch_seconds,
            abort: status.abort.clone(),
            analysis: status
                .analysis
                .metrics
                .iter()
                .map(MetricView::from)
                .collect(),
            gates: gate_views(spec, &status),
            conditions: status.conditions.clone(),
            acknowledged_command: status.acknowledged_command.clone(),
            pending_command: pending.map(|c| PendingCommandView {
                id: c.id,
                action: c.action.as_str().to_string(),
                by: c.by,
                at: c.at,
            }),
        }
    }

    /// The view with the revision the target has now (see [`RolloutView::desired_revision`]).
    pub fn with_desired(mut self, desired: Option<String>) -> Self {
        self.desired_revision = desired.filter(|d| !d.is_empty());
        self
    }

    /// The step as people count it: the one under way (1-based) while a rollout runs, else the
    /// number of steps done. `step` in JSON stays the 0-based index of `status.currentStep`.
    pub fn step_display(&self) -> u32 {
        if self.phase.in_progress() && self.step < self.total_steps {
            self.step + 1
        } else {
            self.step.min(self.total_steps)
        }
    }

    /// True while a firing alert would revert a promoted revision.
    pub fn in_post_promotion_watch(&self, now: DateTime<Utc>) -> bool {
        self.phase == Phase::Succeeded
            && self.post_promotion_watch_seconds > 0
            && self.promoted_at.is_some_and(|p| {
                now < p + chrono::Duration::seconds(self.post_promotion_watch_seconds)
            })
    }
}

/// A list answer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RolloutList {
    pub items: Vec<RolloutView>,
}
