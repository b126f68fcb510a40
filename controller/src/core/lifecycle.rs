//! Phase dispatch, and the settled phases (Idle, Succeeded, Failed) where a new revision starts
//! a rollout.

use sluice_crds::{AnalysisStatus, Phase};

use super::conditions::{self as cond};
use super::ctx::Ctx;
use super::model::{Effect, EventType};
use super::{commands, gates, initialize, progress, promotion, rollback};

/// Run one decision: the pending command first, then the phase handlers. A handler that moves
/// to another phase lets that phase act in the same call (e.g. abort at weight 0 finishes at once).
pub(crate) fn run(cx: &mut Ctx) {
    gates::absorb(cx);
    commands::handle(cx);
    for _ in 0..4 {
        let before = cx.st.phase;
        match before {
            Phase::Initializing => initialize::tick(cx),
            Phase::Idle | Phase::Succeeded | Phase::Failed => settled(cx),
            Phase::Progressing | Phase::Paused => progress::tick(cx),
            Phase::Promoting => promotion::tick(cx),
            Phase::RollingBack => rollback::tick(cx),
        }
        if cx.st.phase == before {
            break;
        }
    }
}

/// Idle, Succeeded or Failed: start a rollout when the target runs a new revision.
fn settled(cx: &mut Ctx) {
    let Some(stable) = cx.st.stable_revision.clone() else {
        // Status lost its stable revision: initialize again.
        cx.st.phase = Phase::Initializing;
        return;
    };
    // Nothing is rolling out: the canary gets no traffic (also repairs a drifted router).
    cx.want_weight(0);
    let Some(target) = cx.target_revision() else {
        return;
    };
    if target == stable {
        return;
    }
    let failed = cx.st.abort.as_ref().and_then(|a| a.revision.as_deref());
    if cx.st.phase == Phase::Failed && failed == Some(target) {
        // A failed revision is not retried until a new one appears.
        return;
    }
    start(cx, target, "RolloutStarted");
}

/// Begin rolling out `revision` from step 0 with fresh counters.
pub(crate) fn start(cx: &mut Ctx, revision: &str, reason: &str) {
    let now = cx.now;
    let stable = cx.st.stable_revision.clone().unwrap_or_default();
    cx.st.canary_revision = Some(revision.to_string());
    cx.st.started_at = Some(now);
    cx.st.step_started_at = Some(now);
    cx.st.current_step = 0;
    cx.st.canary_weight = 0;
    cx.st.analysis = AnalysisStatus::default();
    // Gate records (and their conditions) belong to the revision they were asked for.
    cx.st.gates.clear();
    cx.st
        .conditions
        .retain(|c| c.type_ != gates::GATED && c.type_ != gates::POST_ROLLOUT);
    cx.st.abort = None;
    cx.st.promotion_started_at = None;
    cx.st.promotion_reason = None;
    cx.st.phase = Phase::Progressing;
    let msg = format!("rolling out revision {revision} (stable {stable})");
    cx.message(msg.clone());
    cx.st
        .set_condition(cond::PROGRESSING, true, reason, &msg, now);
    cx.st
        .set_condition(cond::PROMOTED, false, "RolloutInProgress", &msg, now);
    cx.st
        .set_condition(cond::ABORTED, false, "RolloutInProgress", &msg, now);
    cx.st
        .set_condition(cond::PAUSED, false, "Running", &msg, now);
    cond::reset(
        &mut cx.st,
        cond::CANARY_READY,
        false,
        "Starting",
        "canary scaling up",
        now,
    );
    // The target already runs the new revision: a scale-down decided earlier in this call
    // (end of the previous rollout) would only kill the pods we are about to use.
    cx.retract(&Effect::ScaleCanary { up: false });
    cx.emit(Effect::ScaleCanary { up: true });
    cx.event(EventType::Normal, reason, msg);
}
