//! Commands (promote, promoteFull, abort, pause, resume): each id is acted on once and
//! acknowledged in status, whatever the outcome. A command naming another revision than the
//! one in progress is acknowledged and ignored.
//!
//! Post-promotion abort: within `postPromotionWatchSeconds` after a promotion, an abort reverts
//! the primary to the previous stable revision (see [`rollback::start_revert`]).

use sluice_crds::{Command, CommandAck, CommandAction, Phase, Step};

use super::conditions as cond;
use super::ctx::{add, Ctx};
use super::model::EventType;
use super::plan::post_promotion_watch;
use super::{gates, holds, progress, rollback};

pub(crate) fn handle(cx: &mut Ctx) {
    let obs = cx.obs;
    let Some(cmd) = obs.command.as_ref() else {
        return;
    };
    if cx
        .st
        .acknowledged_command
        .as_ref()
        .is_some_and(|a| a.id == cmd.id)
    {
        return;
    }
    cx.st.acknowledged_command = Some(CommandAck {
        id: cmd.id.clone(),
        action: cmd.action.as_str().to_string(),
        at: cx.now,
    });
    let action = cmd.action.as_str();
    let current = match cx.st.phase {
        Phase::Succeeded => cx.st.stable_revision.clone(),
        _ => cx.st.canary_revision.clone(),
    };
    if let (Some(want), Some(cur)) = (cmd.revision.as_deref(), current.as_deref()) {
        if want != cur {
            cx.event(
                EventType::Warning,
                "CommandIgnored",
                format!(
                    "{action} {} targets revision {want}, but the rollout is at {cur}",
                    cmd.id
                ),
            );
            return;
        }
    }
    match cx.st.phase {
        Phase::Progressing | Phase::Paused => in_progress(cx, cmd),
        Phase::Succeeded if cmd.action == CommandAction::Abort && in_watch_window(cx) => {
            post_promotion_abort(cx, cmd)
        }
        phase => {
            let why = match phase {
                Phase::Promoting => "a promotion is already under way",
                Phase::RollingBack => "a rollback is already under way",
                _ => "no rollout in progress",
            };
            cx.event(
                EventType::Normal,
                "CommandIgnored",
                format!("{action} {}: {why} (phase {phase})", cmd.id),
            );
        }
    }
}

fn by(cmd: &Command) -> String {
    cmd.by.clone().unwrap_or_else(|| "unknown".to_string())
}

fn in_progress(cx: &mut Ctx, cmd: &Command) {
    let who = by(cmd);
    let now = cx.now;
    match cmd.action {
        CommandAction::Abort => {
            let source = if cmd.alert_name.is_some() {
                "alert"
            } else {
                "command"
            };
            let reason = match (&cmd.alert_name, &cmd.reason) {
                (Some(alert), Some(r)) => format!("alert {alert} firing: {r}"),
                (Some(alert), None) => format!("alert {alert} firing"),
                (None, Some(r)) => format!("aborted by {who}: {r}"),
                (None, None) => format!("aborted by {who}"),
            };
            rollback::start(
                cx,
                source,
                &reason,
                cmd.alert_name.clone(),
                cmd.fingerprint.clone(),
            );
        }
        CommandAction::Pause => {
            let msg = format!("paused by {who}");
            cx.st
                .set_condition(cond::PAUSED, true, cond::REASON_COMMAND, &msg, now);
            cx.st.phase = Phase::Paused;
            cx.message(msg.clone());
            cx.event(EventType::Normal, "RolloutPaused", msg);
        }
        CommandAction::Resume => {
            holds::release(cx, &who);
            gates::release(cx);
            cx.st.phase = Phase::Progressing;
            cx.event(
                EventType::Normal,
                "RolloutResumed",
                format!("resumed by {who}"),
            );
        }
        CommandAction::Promote => {
            holds::release(cx, &who);
            if gates::pass_held(cx, &who, false) {
                // A human passed the gate the rollout waited at: the step itself still runs.
                cx.st.phase = Phase::Progressing;
            } else if cx.plan.blue_green {
                jump_to_switch(cx);
            } else {
                progress::advance(cx);
            }
            let msg = format!(
                "promoted by {who}: continuing at step {}",
                cx.st.current_step + 1
            );
            cx.event(EventType::Normal, "RolloutPromoted", msg);
        }
        CommandAction::PromoteFull => {
            holds::release(cx, &who);
            gates::pass_held(cx, &who, true);
            if cx.plan.blue_green {
                jump_to_switch(cx);
            } else {
                cx.st.current_step = cx.plan.steps.len() as u32;
                cx.st.step_started_at = Some(now);
                cx.st.phase = Phase::Progressing;
            }
            cx.event(
                EventType::Normal,
                "RolloutPromotedFull",
                format!("full promotion requested by {who}"),
            );
        }
    }
}

/// Blue/green: promote skips the remaining gates and goes to the traffic switch (last step).
fn jump_to_switch(cx: &mut Ctx) {
    let last = cx
        .plan
        .steps
        .iter()
        .rposition(|s| matches!(s, Step::SetWeight(_)))
        .unwrap_or(cx.plan.steps.len());
    if (cx.st.current_step as usize) < last {
        cx.st.current_step = last as u32;
        cx.st.step_started_at = Some(cx.now);
        cx.st.analysis.consecutive_passes = 0;
    }
    cx.st.phase = Phase::Progressing;
}

fn in_watch_window(cx: &Ctx) -> bool {
    let watch = post_promotion_watch(cx.spec);
    match cx.st.promoted_at {
        Some(at) if !watch.is_zero() => cx.now < add(at, watch),
        _ => false,
    }
}

fn post_promotion_abort(cx: &mut Ctx, cmd: &Command) {
    let Some(previous) = cx.st.previous_stable_revision.clone() else {
        cx.event(
            EventType::Warning,
            "CommandIgnored",
            format!(
                "abort {} after promotion: no previous revision is known",
                cmd.id
            ),
        );
        return;
    };
    let source = if cmd.alert_name.is_some() {
        "alert"
    } else {
        "command"
    };
    let why = match (&cmd.alert_name, &cmd.reason) {
        (Some(a), Some(r)) => format!("alert {a} firing: {r}"),
        (Some(a), None) => format!("alert {a} firing"),
        (None, Some(r)) => format!("aborted by {}: {r}", by(cmd)),
        (None, None) => format!("aborted by {}", by(cmd)),
    };
    rollback::start_revert(
        cx,
        source,
        &previous,
        &why,
        cmd.alert_name.clone(),
        cmd.fingerprint.clone(),
    );
}
