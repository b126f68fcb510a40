//! First sight: create the primary from the target, route 0% to the canary, then scale the
//! target down and become Idle. The target is scaled down only once the primary is ready and the
//! router reads 0, so the application never loses its serving pods.

use sluice_crds::Phase;

use super::conditions as cond;
use super::ctx::Ctx;
use super::model::{Effect, EventType};
use super::POLL;

pub(crate) fn tick(cx: &mut Ctx) {
    let now = cx.now;
    let Some(rev) = cx.target_revision() else {
        let msg = format!(
            "waiting for target Deployment {} to exist",
            cx.spec.target_ref.name
        );
        cx.st
            .set_condition(cond::READY, false, "TargetMissing", &msg, now);
        cx.message(msg);
        cx.requeue_in(POLL);
        return;
    };
    let primary = &cx.obs.primary;
    let primary_ok = primary.exists && primary.revision.as_deref() == Some(rev) && primary.ready;
    if !(primary.exists && primary.revision.as_deref() == Some(rev)) {
        cx.emit(Effect::ApplyPrimary {
            revision: rev.to_string(),
        });
    }
    let weight_ok = cx.want_weight(0);
    if primary_ok && weight_ok {
        cx.emit(Effect::ScaleCanary { up: false });
        cx.st.phase = Phase::Idle;
        cx.st.stable_revision = Some(rev.to_string());
        let msg = format!("primary ready with revision {rev}");
        cx.st
            .set_condition(cond::READY, true, "PrimaryReady", &msg, now);
        cx.st
            .set_condition(cond::PROGRESSING, false, "Idle", &msg, now);
        cx.event(EventType::Normal, "Initialized", msg.clone());
        cx.message(msg);
        return;
    }
    let msg = if !primary_ok {
        format!("initializing: waiting for primary with revision {rev} to be ready")
    } else {
        "initializing: waiting for the router to route 0% to the canary".to_string()
    };
    cx.st
        .set_condition(cond::READY, false, "Initializing", &msg, now);
    cx.message(msg);
    cx.requeue_in(POLL);
}
