//! A canary that was ready and has no ready pod any more while it holds traffic (it crashed,
//! its pods were evicted): every request routed to it fails, so it must lose its weight in
//! seconds, not at the progress deadline. While `canaryLoss.graceSeconds` runs, analysis keeps
//! running (the failed requests are evidence); then the weight goes to 0 and
//! `canaryLoss.policy` rolls back or holds at 0 until the canary serves again.
//!
//! State lives in the `CanaryReady` condition: reason `Lost` (status False, its transition
//! time is the moment of the loss) and `Recovered` (status True, the step's weight is being
//! restored), so a restarted controller resumes the same way.

use chrono::{DateTime, Utc};
use sluice_crds::{CanaryLossPolicy, Phase, Step};

use super::conditions as cond;
use super::ctx::{add, Ctx};
use super::model::EventType;
use super::plan::progress_deadline;
use super::{rollback, POLL};

/// `CanaryReady=False`: the canary was ready and has no ready pod.
pub const REASON_LOST: &str = "Lost";
/// `CanaryReady=True` after a loss, until the step's weight is back.
pub const REASON_RECOVERED: &str = "Recovered";

/// What the loss check found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Loss {
    /// The canary serves (or never served yet): carry on.
    Serving,
    /// Lost, inside the grace: it keeps its weight, analysis runs, steps do not move.
    Grace { message: String },
    /// Lost past the grace (or restoring the weight after a recovery): nothing else this call.
    Handled,
}

pub(crate) fn check(cx: &mut Ctx, canary: &str) -> Loss {
    let t = &cx.obs.target;
    let lost = cx.st.condition(cond::CANARY_READY).and_then(|c| {
        (c.status == "False" && c.reason == REASON_LOST).then_some(c.last_transition_time)
    });
    let was_ready = cond::is_true(&cx.st, cond::CANARY_READY);
    if lost.is_none() && !was_ready {
        return Loss::Serving;
    }
    if !t.exists || t.revision.as_deref() != Some(canary) {
        return Loss::Serving;
    }
    let serving = t.replicas > 0 && t.ready_replicas > 0;
    let weight = cx.router_weight().unwrap_or(0);
    if serving {
        return recovered(cx, lost.is_some());
    }
    let since = match lost {
        Some(since) => since,
        None if weight <= 0 => return Loss::Serving, // no traffic on it: the readiness wait
        None => {
            let msg =
                format!("canary {canary} has no ready pod while it holds {weight}% of traffic");
            cx.st
                .set_condition(cond::CANARY_READY, false, REASON_LOST, &msg, cx.now);
            cx.event(EventType::Warning, "CanaryLost", msg);
            cx.now
        }
    };
    let grace = cx.spec.canary_loss.grace_seconds.max(0);
    let grace_end = add(since, std::time::Duration::from_secs(grace as u64));
    if cx.now < grace_end && weight > 0 {
        cx.requeue_at(grace_end);
        return Loss::Grace {
            message: format!(
                "canary {canary} has no ready pod since {}: it keeps {weight}% until {} (canaryLoss.graceSeconds {grace}s) unless it recovers or analysis fails",
                hms(since),
                hms(grace_end)
            ),
        };
    }
    match cx.spec.canary_loss.policy {
        CanaryLossPolicy::Rollback => {
            let reason = format!(
                "canary {canary} had no ready pod for {grace}s (canaryLoss.graceSeconds) while holding traffic"
            );
            rollback::start(cx, "canaryLost", &reason, None, None);
        }
        CanaryLossPolicy::Hold => hold(cx, canary, since),
    }
    Loss::Handled
}

/// Policy `hold`: weight 0, wait for the canary under the progress deadline (from the loss).
fn hold(cx: &mut Ctx, canary: &str, since: DateTime<Utc>) {
    let deadline = add(since, progress_deadline(cx.spec));
    if cx.now >= deadline {
        let reason = format!(
            "canary {canary} lost at {} and not ready again within progressDeadlineSeconds ({}s)",
            hms(since),
            cx.spec.progress_deadline_seconds
        );
        rollback::start(cx, "deadline", &reason, None, None);
        return;
    }
    let zero = cx.want_weight(0);
    if cx.st.phase != Phase::Paused {
        cx.st.phase = Phase::Progressing;
    }
    cx.message(if zero {
        format!(
            "canary {canary} has no ready pod: traffic is back on stable; waiting for it to be ready again until {} (canaryLoss.policy hold)",
            hms(deadline)
        )
    } else {
        format!("canary {canary} has no ready pod: returning its traffic to stable")
    });
    cx.requeue_in(POLL);
    cx.requeue_at(deadline);
}

/// The canary serves again: give the step's weight back (after a hold at 0), then carry on
/// with the step's clock and passing runs restarted, so a timed pause is served with live
/// traffic and an analysis step passes on runs of a serving canary.
fn recovered(cx: &mut Ctx, was_lost: bool) -> Loss {
    let restoring = cond::is_true_with(&cx.st, cond::CANARY_READY, REASON_RECOVERED);
    if !was_lost && !restoring {
        return Loss::Serving;
    }
    let now = cx.now;
    let w = weight_before(cx);
    if !cx.want_weight(w) {
        cx.st.set_condition(
            cond::CANARY_READY,
            true,
            REASON_RECOVERED,
            "canary ready again, restoring its weight",
            now,
        );
        cx.message(format!("canary ready again: restoring its weight to {w}%"));
        cx.requeue_in(POLL);
        return Loss::Handled;
    }
    let msg = format!("canary ready again at {w}%: the step's clock and passing runs restart");
    cx.st
        .set_condition(cond::CANARY_READY, true, "Ready", &msg, now);
    cx.st.step_started_at = Some(now);
    // Runs that passed while the canary was down say nothing about it serving: an analysis
    // step needs fresh passes.
    cx.st.analysis.consecutive_passes = 0;
    cx.event(EventType::Normal, "CanaryRecovered", msg);
    Loss::Serving
}

/// The weight of the steps already completed: the last `setWeight` before the current step.
fn weight_before(cx: &Ctx) -> i32 {
    let idx = (cx.st.current_step as usize).min(cx.plan.steps.len());
    cx.plan.steps[..idx]
        .iter()
        .rev()
        .find_map(|s| match s {
            Step::SetWeight(w) => Some(*w),
            _ => None,
        })
        .unwrap_or(0)
}

fn hms(t: DateTime<Utc>) -> String {
    t.format("%H:%M:%S").to_string()
}
