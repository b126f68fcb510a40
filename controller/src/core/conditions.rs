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
