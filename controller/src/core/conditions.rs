//! Condition types and the helpers that keep them consistent with the phase.
//! `Paused` and `CanaryReady` are Sluice's own additions: `Paused` (reason `Command`) persists a
//! pause command, and `CanaryReady`'s transition time starts the readiness deadline.

use chrono::{DateTime, Utc};
use sluice_crds::RolloutStatus;

pub const READY: &str = "Ready";
pub const PROGRESSING: &str = "Progressing";
pub const PROMOTED: &str = "Promoted";
pub const ABORTED: &str = "Aborted";
pub const PAUSED: &str = "Paused";
pub const CANARY_READY: &str = "CanaryReady";

/// Reason of the `Paused` condition that marks a pause command (highest-priority hold).
pub const REASON_COMMAND: &str = "Command";
/// Reasons of the `Paused` condition at an indefinite pause step: only `promote` moves on.
pub const REASON_PAUSE_STEP: &str = "PauseStep";
pub const REASON_AWAITING_PROMOTION: &str = "AwaitingPromotion";

/// `Ready=False` reasons a shell writes when the rollout cannot move: the spec (or file) is
/// invalid, or an effect (router write, hook, API write) keeps failing. Set and cleared by the
/// shells, never by `step`; the API, `sluice status` and `sluice wait` report them.
pub const REASON_INVALID: &str = "InvalidSpec";
pub const REASON_BLOCKED: &str = "Blocked";
/// `Ready=True` reason once a blocked effect succeeds again.
pub const REASON_UNBLOCKED: &str = "Unblocked";

/// The `Ready=False` condition saying the rollout cannot move, if any.
pub fn blocked(st: &RolloutStatus) -> Option<&sluice_crds::Condition> {
    st.condition(READY).filter(|c| {
        c.status == "False" && (c.reason == REASON_BLOCKED || c.reason == REASON_INVALID)
    })
}

/// Record that the rollout cannot move (`Ready=False`, `reason`, `message`). The transition time
/// is kept while the reason stays the same, so it tells since when the rollout is blocked.
pub fn set_blocked(st: &mut RolloutStatus, reason: &str, message: &str, now: DateTime<Utc>) {
    let same = st
        .condition(READY)
        .is_some_and(|c| c.status == "False" && c.reason == reason);
    if same {
        st.set_condition(READY, false, reason, message, now);
    } else {
        reset(st, READY, false, reason, message, now);
    }
}

/// Clear a block after an effect succeeded again (`Ready=True`, reason `Unblocked`).
/// Returns true when there was one.
pub fn clear_blocked(st: &mut RolloutStatus, now: DateTime<Utc>) -> bool {
    if blocked(st).is_none() {
        return false;
    }
    st.set_condition(
        READY,
        true,
        REASON_UNBLOCKED,
        "the blocked action succeeded",
        now,
    );
    true
}

/// True when the condition exists with status True.
pub fn is_true(st: &RolloutStatus, type_: &str) -> bool {
    st.condition(type_).is_some_and(|c| c.status == "True")
}

/// True when the condition is True with this reason.
pub fn is_true_with(st: &RolloutStatus, type_: &str, reason: &str) -> bool {
    st.condition(type_)
        .is_some_and(|c| c.status == "True" && c.reason == reason)
}

/// Set a condition whose transition time must restart now, even if its status is unchanged.
pub fn reset(
    st: &mut RolloutStatus,
    type_: &str,
    status: bool,
    reason: &str,
    message: &str,
    now: DateTime<Utc>,
) {
    st.conditions.retain(|c| c.type_ != type_);
    st.set_condition(type_, status, reason, message, now);
}
