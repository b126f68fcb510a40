//! Promotion: copy the canary to the primary, wait for it, route 0% to the canary, scale the
//! canary down, and record the new stable revision.

use sluice_crds::Phase;

use super::conditions as cond;
use super::ctx::{add, Ctx};
use super::model::{Effect, EventType};
use super::plan::progress_deadline;
use super::{gates, POLL};

/// Enter Promoting (after the last step, or promoteFull).
pub(crate) fn enter(cx: &mut Ctx) {
    let rev = cx.st.canary_revision.clone().unwrap_or_default();
    cx.st.phase = Phase::Promoting;
    cx.st.step_started_at = Some(cx.now);
    let reason = match cx.st.acknowledged_command.as_ref() {
        Some(a) if a.action == "promoteFull" && a.at == cx.now => {
            format!("promoteFull command {}", a.id)
        }
        _ => format!("all {} steps completed", cx.plan.steps.len()),
    };
    cx.st.promotion_started_at = Some(cx.now);
    cx.st.promotion_reason = Some(reason.clone());
    let msg = format!("promoting revision {rev} ({reason}): updating the primary");
    cx.st
        .set_condition(cond::PROGRESSING, true, "Promoting", &msg, cx.now);
    cx.st
        .set_condition(cond::PAUSED, false, "Promoting", &msg, cx.now);
    cx.message(msg.clone());
    cx.event(EventType::Normal, "Promoting", msg);
}

pub(crate) fn tick(cx: &mut Ctx) {
    let Some(rev) = cx.st.canary_revision.clone() else {
        cx.st.phase = Phase::Idle;
        return;
    };
    let primary = &cx.obs.primary;
    let primary_has_rev = primary.exists && primary.revision.as_deref() == Some(rev.as_str());
    if !primary_has_rev {
        if cx.target_revision() != Some(rev.as_str()) {
            // The target changed before the primary took the canary's template: the newer
            // revision supersedes this one (the primary still runs the old stable).
            cx.st.phase = Phase::Progressing;
            return;
        }
        cx.emit(Effect::ApplyPrimary { revision: rev });
        cx.requeue_in(POLL);
        return;
    }
    if !primary.ready {
        let since = cx.st.step_started_at.unwrap_or(cx.now);
        let msg = if cx.now >= add(since, progress_deadline(cx.spec)) {
            format!(
                "promoting revision {rev}: primary not ready after progressDeadlineSeconds; still waiting (it already runs the new template, so there is nothing to roll back to)"
            )
        } else {
            format!("promoting revision {rev}: waiting for the primary to be ready")
        };
        cx.message(msg);
        cx.requeue_in(POLL);
        return;
    }
    if !cx.want_weight(0) {
        cx.message(format!(
            "promoting revision {rev}: primary ready, routing all traffic to it"
        ));
        cx.requeue_in(POLL);
        return;
    }
    let now = cx.now;
    cx.emit(Effect::ScaleCanary { up: false });
    cx.st.phase = Phase::Succeeded;
    cx.st.previous_stable_revision = cx.st.stable_revision.take();
    cx.st.stable_revision = Some(rev.clone());
    cx.st.promoted_at = Some(now);
    let msg = format!("revision {rev} promoted");
    cx.st
        .set_condition(cond::PROMOTED, true, "Promoted", &msg, now);
    cx.st
        .set_condition(cond::PROGRESSING, false, "Succeeded", &msg, now);
    cx.st
        .set_condition(cond::READY, true, "PrimaryReady", &msg, now);
    cx.message(msg.clone());
    cx.event(EventType::Normal, "Promoted", msg);
    gates::notify(cx, sluice_crds::GateName::PostRollout, &rev);
}
