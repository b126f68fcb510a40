//! A revision in progress (Progressing or Paused): supersession by a newer revision, holds,
//! canary readiness under the progress deadline, analysis, and the step engine shared by
//! canary and blue/green.

use sluice_crds::{GateName, Phase, Step};

use super::analysis_gate::{self, Absorbed};
use super::canary_loss::{self, Loss};
use super::conditions as cond;
use super::ctx::{add, Ctx};
use super::model::{Effect, EventType};
use super::plan::progress_deadline;
use super::{gates, holds, lifecycle, promotion, rollback, POLL};

pub(crate) fn tick(cx: &mut Ctx) {
    let Some(mut canary) = cx.st.canary_revision.clone() else {
        cx.st.phase = Phase::Idle;
        return;
    };
    if cx.target_revision() != Some(canary.as_str()) {
        match superseded(cx, &canary) {
            // Restarted on the newer revision: carry on with it in this call.
            Some(new) => canary = new,
            None => return,
        }
    }
    match canary_loss::check(cx, &canary) {
        Loss::Handled => return,
        Loss::Grace { message } => {
            // The canary still holds weight: analysis goes on, its failures are evidence.
            if analysis_gate::absorb(cx) == Absorbed::Aborted {
                return;
            }
            // Only its failures: a run that passed while the canary had no ready pod says
            // nothing about it serving, so it never counts towards the step (also when the
            // recovery is interrupted and `recovered` never resets the count).
            cx.st.analysis.consecutive_passes = 0;
            if !holds::apply(cx) {
                cx.st.phase = Phase::Progressing;
            }
            cx.message(message);
            analysis_gate::schedule(cx);
            return;
        }
        Loss::Serving => {}
    }
    // Holds that wait for a human stop everything; a hold for query errors that may end by
    // itself keeps analysis running (below).
    if holds::current(cx).is_some_and(|h| !h.analysing) {
        holds::apply(cx);
        return;
    }
    if !canary_ready(cx, &canary) {
        return;
    }
    if analysis_gate::absorb(cx) == Absorbed::Aborted {
        return;
    }
    if let Some(h) = holds::current(cx) {
        holds::apply(cx);
        if h.analysing {
            analysis_gate::schedule(cx);
        }
        return;
    }
    // preRollout: the canary is ready and gets no traffic until the gate opens.
    let asked = cx.st.gates.iter().any(|g| g.gate == GateName::PreRollout);
    if (asked || cx.st.canary_weight == 0) && !gates::passes(cx, GateName::PreRollout, None) {
        analysis_gate::schedule(cx);
        return;
    }
    run_steps(cx);
    analysis_gate::schedule(cx);
}

/// The target runs a newer revision (or was reverted): weight 0 first, then restart on it.
/// Returns the new revision when the rollout restarted on it.
fn superseded(cx: &mut Ctx, old: &str) -> Option<String> {
    let newer = cx.target_revision().map(str::to_string);
    let now = cx.now;
    if !cx.want_weight(0) {
        let msg = format!(
            "target changed from {old} to {}: returning traffic to stable before restarting",
            newer.as_deref().unwrap_or("<missing>")
        );
        if !cond::is_true_with(&cx.st, cond::PROGRESSING, "Superseded") {
            cx.st
                .set_condition(cond::PROGRESSING, true, "Superseded", &msg, now);
            cx.event(EventType::Normal, "RolloutSuperseded", msg.clone());
        }
        cx.st.phase = Phase::Progressing;
        cx.message(msg);
        cx.requeue_in(POLL);
        return None;
    }
    match newer {
        Some(new) if Some(new.as_str()) != cx.st.stable_revision.as_deref() => {
            lifecycle::start(cx, &new, "RolloutRestarted");
            Some(new)
        }
        _ => {
            // Reverted to stable (or deleted): nothing left to roll out.
            let msg = format!("rollout of {old} cancelled: the target no longer runs it");
            cx.emit(Effect::ScaleCanary { up: false });
            cx.st.phase = Phase::Idle;
            cx.st.canary_weight = 0;
            cx.st
                .set_condition(cond::PROGRESSING, false, "Cancelled", &msg, now);
            cx.st
                .set_condition(cond::PAUSED, false, "Cancelled", &msg, now);
            cx.message(msg.clone());
            cx.event(EventType::Normal, "RolloutCancelled", msg);
            None
        }
    }
}

/// Wait for the canary to run `canary` with ready pods; abort past the progress deadline,
/// counted from when the canary was last seen not ready.
fn canary_ready(cx: &mut Ctx, canary: &str) -> bool {
    let t = &cx.obs.target;
    let now = cx.now;
    let runs_canary = t.replicas > 0 && t.revision.as_deref() == Some(canary);
    // Once ready, a canary with some ready pods still serves its share (a pod restarting is
    // not a reason to stop analysis); one with none is handled by `canary_loss`.
    let serving = t.ready_replicas > 0 && cond::is_true(&cx.st, cond::CANARY_READY);
    if runs_canary && (t.ready || serving) {
        if !t.ready {
            return true;
        }
        if cx.st.current_step == 0 && !cond::is_true(&cx.st, cond::CANARY_READY) {
            // The first step's clock (pause, analysis interval) starts when the canary is up.
            cx.st.step_started_at = Some(now);
        }
        cx.st
            .set_condition(cond::CANARY_READY, true, "Ready", "canary ready", now);
        return true;
    }
    if t.replicas == 0 {
        cx.emit(Effect::ScaleCanary { up: true });
    }
    cx.st.set_condition(
        cond::CANARY_READY,
        false,
        "NotReady",
        "waiting for the canary to be ready",
        now,
    );
    let since = cx
        .st
        .condition(cond::CANARY_READY)
        .map_or(now, |c| c.last_transition_time);
    let deadline = add(since, progress_deadline(cx.spec));
    if now >= deadline {
        let reason = format!(
            "canary {canary} not ready within progressDeadlineSeconds ({}s)",
            cx.spec.progress_deadline_seconds
        );
        rollback::start(cx, "deadline", &reason, None, None);
        return false;
    }
    cx.st.phase = Phase::Progressing;
    cx.message(format!("waiting for canary {canary} to be ready"));
    cx.requeue_in(POLL);
    cx.requeue_at(deadline);
    false
}

/// Walk the steps from `current_step` as far as they complete now.
fn run_steps(cx: &mut Ctx) {
    let steps = cx.plan.steps.clone();
    let n = steps.len();
    for _ in 0..=n {
        let idx = cx.st.current_step as usize;
        let Some(step) = steps.get(idx) else {
            // Analysis keeps running while confirmPromotion is closed (scheduled by the caller).
            if gates::passes(cx, GateName::ConfirmPromotion, None) {
                promotion::enter(cx);
            }
            return;
        };
        let label = format!("step {}/{}", idx + 1, n);
        let done = match step {
            Step::SetWeight(w) => {
                let increase = *w > cx.st.canary_weight;
                if increase
                    && !gates::passes(cx, GateName::ConfirmTrafficIncrease, Some(idx as u32))
                {
                    return;
                }
                let ok = cx.want_weight(*w);
                if !ok {
                    cx.message(format!("{label}: setting canary weight to {w}%"));
                    cx.requeue_in(POLL);
                }
                ok
            }
            Step::Pause(Some(d)) => {
                let end = add(cx.st.step_started_at.unwrap_or(cx.now), *d);
                if cx.now >= end {
                    true
                } else {
                    cx.message(format!("{label}: pausing until {}", end.to_rfc3339()));
                    cx.requeue_at(end);
                    false
                }
            }
            Step::Pause(None) => {
                let (reason, msg) = if cx.plan.blue_green {
                    (
                        cond::REASON_AWAITING_PROMOTION,
                        format!(
                            "{label}: analysis passed, waiting for promote (autoPromote is off)"
                        ),
                    )
                } else {
                    (
                        cond::REASON_PAUSE_STEP,
                        format!("{label}: paused until promoted"),
                    )
                };
                cx.st.phase = Phase::Paused;
                cx.st
                    .set_condition(cond::PAUSED, true, reason, &msg, cx.now);
                cx.message(msg);
                return;
            }
            Step::Analysis { iterations } => {
                let passes = cx.st.analysis.consecutive_passes;
                let ok = !cx.plan.analysis_active || passes >= *iterations;
                if !ok {
                    cx.message(format!(
                        "{label}: analysing at {}%: {passes}/{iterations} passing runs",
                        cx.st.canary_weight
                    ));
                }
                ok
            }
        };
        if !done {
            running(cx);
            return;
        }
        advance(cx);
    }
}

/// Not held and not at an indefinite pause.
fn running(cx: &mut Ctx) {
    cx.st.phase = Phase::Progressing;
    if cond::is_true(&cx.st, cond::PAUSED) {
        cx.st
            .set_condition(cond::PAUSED, false, "Running", "rollout running", cx.now);
    }
}

/// Move to the next step.
pub(crate) fn advance(cx: &mut Ctx) {
    cx.st.current_step += 1;
    cx.st.step_started_at = Some(cx.now);
    cx.st.analysis.consecutive_passes = 0;
    running(cx);
}
