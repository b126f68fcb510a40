//! Abort and rollback: traffic back to the primary first; the canary is scaled down only once
//! the router reads 0 (scaling down a weighted canary means 503s).
//!
//! Revert after promotion: an abort inside the post-promotion watch window puts the primary back
//! on the previous stable revision (`RevertPrimary`), waits until it is ready, then fails the
//! promoted revision. While reverting, `abort.revision` is the (still) stable revision: that is
//! how a resumed controller tells a revert from a canary rollback.

use sluice_crds::{AbortInfo, Phase};

use super::conditions as cond;
use super::ctx::Ctx;
use super::model::{Effect, EventType};
use super::{gates, POLL};

/// Abort the current revision: record why, phase RollingBack, weight 0.
pub(crate) fn start(
    cx: &mut Ctx,
    source: &str,
    reason: &str,
    alert_name: Option<String>,
    fingerprint: Option<String>,
) {
    let rev = cx.st.canary_revision.clone();
    cx.st.abort = Some(AbortInfo {
        source: source.to_string(),
        reason: reason.to_string(),
        alert_name,
        fingerprint,
        revision: rev.clone(),
        at: cx.now,
    });
    cx.st.phase = Phase::RollingBack;
    // Traffic back to the primary is the first effect the shell executes.
    cx.want_weight(0);
    let rev = rev.unwrap_or_default();
    let msg = format!("rolling back revision {rev} ({source}): {reason}");
    cx.st
        .set_condition(cond::PROGRESSING, true, "RollingBack", &msg, cx.now);
    if cond::is_true(&cx.st, gates::GATED) {
        // No gate holds a rollback.
        cx.st
            .set_condition(gates::GATED, false, "RollingBack", &msg, cx.now);
    }
    cx.message(msg.clone());
    cx.event(EventType::Warning, "RolloutAborted", msg);
    // After the weight went to 0 in this decision: the shell runs effects in order.
    gates::notify(cx, sluice_crds::GateName::OnRollback, &rev);
}

/// RollingBack: weight 0 first, then scale the canary down and fail the revision.
pub(crate) fn tick(cx: &mut Ctx) {
    if let Some(previous) = reverting_to(cx) {
        revert_tick(cx, &previous);
        return;
    }
    if !cx.want_weight(0) {
        let why = cx
            .st
            .abort
            .as_ref()
            .map(|a| a.reason.clone())
            .unwrap_or_default();
        cx.message(format!(
            "rolling back: waiting for the router to route 0% to the canary ({why})"
        ));
        cx.requeue_in(POLL);
        return;
    }
    let now = cx.now;
    let (source, reason) = cx
        .st
        .abort
        .as_ref()
        .map(|a| (a.source.clone(), a.reason.clone()))
        .unwrap_or_else(|| ("unknown".to_string(), "aborted".to_string()));
    let rev = cx.st.canary_revision.clone().unwrap_or_default();
    let msg = format!("revision {rev} rolled back ({source}): {reason}");
    cx.emit(Effect::ScaleCanary { up: false });
    cx.st.phase = Phase::Failed;
    cx.st
        .set_condition(cond::ABORTED, true, &reason_word(&source), &msg, now);
    cx.st
        .set_condition(cond::PROGRESSING, false, "RolledBack", &msg, now);
    cx.st
        .set_condition(cond::PAUSED, false, "RolledBack", &msg, now);
    // `Promoted` said "rolling out revision ..." since the start; the revision was not promoted.
    cx.st
        .set_condition(cond::PROMOTED, false, "RolledBack", &msg, now);
    cx.message(msg.clone());
    cx.event(EventType::Warning, "RolledBack", msg);
}

/// Start reverting the promoted (stable) revision to `previous` after a post-promotion abort.
pub(crate) fn start_revert(
    cx: &mut Ctx,
    source: &str,
    previous: &str,
    why: &str,
    alert_name: Option<String>,
    fingerprint: Option<String>,
) {
    let promoted = cx.st.stable_revision.clone().unwrap_or_default();
    cx.st.abort = Some(AbortInfo {
        source: source.to_string(),
        reason: format!("reverted to {previous} after promotion: {why}"),
        alert_name,
        fingerprint,
        revision: Some(promoted.clone()),
        at: cx.now,
    });
    cx.st.phase = Phase::RollingBack;
    cx.want_weight(0);
    let msg = format!(
        "post-promotion abort of {promoted} ({source}): {why}; reverting the primary to {previous}"
    );
    cx.st
        .set_condition(cond::PROGRESSING, true, "Reverting", &msg, cx.now);
    cx.message(msg.clone());
    cx.event(EventType::Warning, "RevertStarted", msg);
    gates::notify(cx, sluice_crds::GateName::OnRollback, &promoted);
}

/// The revision a revert in progress restores, if this RollingBack is a revert.
fn reverting_to(cx: &Ctx) -> Option<String> {
    let aborted = cx.st.abort.as_ref()?.revision.as_deref()?;
    if cx.st.stable_revision.as_deref() != Some(aborted) {
        return None;
    }
    cx.st.previous_stable_revision.clone()
}

/// Reverting: weight 0, primary back on `previous` and ready, then the promoted revision fails.
fn revert_tick(cx: &mut Ctx, previous: &str) {
    let routed = cx.want_weight(0);
    let primary = &cx.obs.primary;
    let restored = primary.exists && primary.revision.as_deref() == Some(previous);
    if !restored {
        cx.emit(Effect::RevertPrimary {
            revision: previous.to_string(),
        });
        cx.message(format!(
            "reverting: restoring the primary to revision {previous}"
        ));
        cx.requeue_in(POLL);
        return;
    }
    if !primary.ready || !routed {
        cx.message(format!(
            "reverting: waiting for the primary to be ready with revision {previous}"
        ));
        cx.requeue_in(POLL);
        return;
    }
    let now = cx.now;
    let Some(abort) = cx.st.abort.clone() else {
        return;
    };
    let promoted = abort.revision.clone().unwrap_or_default();
    // The target keeps the promoted template, scaled to zero: a failed revision is not retried.
    cx.emit(Effect::ScaleCanary { up: false });
    cx.st.phase = Phase::Failed;
    cx.st.stable_revision = Some(previous.to_string());
    cx.st.previous_stable_revision = None;
    let msg = format!(
        "revision {promoted} reverted to {previous} ({}): {}",
        abort.source, abort.reason
    );
    cx.st
        .set_condition(cond::ABORTED, true, &reason_word(&abort.source), &msg, now);
    cx.st
        .set_condition(cond::PROMOTED, false, "Reverted", &msg, now);
    cx.st
        .set_condition(cond::PROGRESSING, false, "Reverted", &msg, now);
    cx.st
        .set_condition(cond::PAUSED, false, "RolledBack", &msg, now);
    cx.st
        .set_condition(cond::READY, true, "PrimaryReady", &msg, now);
    cx.message(msg.clone());
    cx.event(EventType::Warning, "Reverted", msg);
}

/// Condition reasons are CamelCase words.
fn reason_word(source: &str) -> String {
    match source {
        "analysis" => "AnalysisFailed",
        "command" => "AbortCommand",
        "alert" => "AlertFiring",
        "deadline" => "ProgressDeadlineExceeded",
        "canaryLost" => "CanaryLost",
        "gate" => "GateDeadline",
        _ => "Aborted",
    }
    .to_string()
}
