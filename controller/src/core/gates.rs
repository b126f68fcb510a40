//! Gates (`spec.gates`, docs/gates.md): HTTP checks asked at fixed points of a rollout. Like
//! analysis runs they are an effect (`AskGate`) and an observation (`GateAnswer`); their
//! records live in `status.gates`, one per gate and revision (`confirmTrafficIncrease`: per
//! step), so a restarted controller asks again where it was, with the same deadline.
//!
//! - `preRollout`, `confirmTrafficIncrease`, `confirmPromotion` hold the rollout while closed
//!   (phase stays `Progressing`, condition `Gated=True`); analysis keeps running, and aborts,
//!   alerts, failed analysis and a lost canary roll back whatever a gate says. Closed at the
//!   deadline (from the first ask): `onDeadline: fail` rolls back (abort source `gate`),
//!   `hold` stops asking and waits for a human (phase `Paused`, `Paused` reason `GateDeadline`).
//! - `postRollout`: asked once after the promotion completed; a closed answer is an event and
//!   `PostRollout=False`, nothing is undone.
//! - `onRollback`: asked once when a rollback starts, after the weight went back to 0 in the
//!   same decision; its answer is only reported.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sluice_crds::{
    parse_duration, Gate, GateDeadlinePolicy, GateName, GateState, GateStatus, Phase,
    DEFAULT_GATE_DEADLINE, DEFAULT_GATE_INTERVAL,
};

use super::conditions as cond;
use super::ctx::{add, Ctx};
use super::model::{Effect, EventType};
use super::rollback;

/// Condition type: True while a gate holds the rollout (reason `<gate>Closed`, `<gate>Pending`
/// or `GateDeadline`), False once it opened.
pub const GATED: &str = "Gated";
/// Condition type: the `postRollout` gate's last answer.
pub const POST_ROLLOUT: &str = "PostRollout";
/// `Paused` reason of a gate held past its deadline (`onDeadline: hold`).
pub const REASON_GATE_DEADLINE: &str = "GateDeadline";

/// A gate's deadline, from its first ask.
pub fn deadline(g: &Gate) -> Duration {
    parse_duration(g.deadline.as_deref().unwrap_or(DEFAULT_GATE_DEADLINE))
        .unwrap_or(Duration::from_secs(600))
}

/// Time between two asks of a closed gate.
pub fn interval(g: &Gate) -> Duration {
    parse_duration(g.interval.as_deref().unwrap_or(DEFAULT_GATE_INTERVAL))
        .unwrap_or(Duration::from_secs(15))
        .max(Duration::from_secs(1))
}

fn find(
    st: &sluice_crds::RolloutStatus,
    gate: GateName,
    rev: &str,
    step: Option<u32>,
) -> Option<usize> {
    st.gates
        .iter()
        .position(|g| g.gate == gate && g.revision == rev && g.step == step)
}

/// Take the shell's answers into account: each once, for the record that asked.
pub(crate) fn absorb(cx: &mut Ctx) {
    let obs = cx.obs;
    for a in &obs.gates {
        let Some(i) = find(&cx.st, a.gate, &a.revision, a.step) else {
            continue;
        };
        let rec = &cx.st.gates[i];
        let fresh = a.asked_at >= rec.since && rec.answered_at.is_none_or(|t| a.asked_at > t);
        if !fresh || rec.state == GateState::Open || rec.expired {
            continue;
        }
        let before = rec.state;
        let rec = &mut cx.st.gates[i];
        rec.state = if a.open {
            GateState::Open
        } else {
            GateState::Closed
        };
        rec.reason = Some(a.reason.clone());
        rec.answered_at = Some(a.asked_at);
        let (gate, rev) = (a.gate, a.revision.clone());
        report(cx, gate, &rev, before, a.open, &a.reason, a.asked_at);
    }
}

/// Events and conditions for an answer that changed something.
fn report(
    cx: &mut Ctx,
    gate: GateName,
    rev: &str,
    before: GateState,
    open: bool,
    reason: &str,
    at: DateTime<Utc>,
) {
    match gate {
        GateName::PostRollout => {
            let msg = format!("postRollout gate after promoting {rev}: {reason}");
            if open {
                cx.st.set_condition(POST_ROLLOUT, true, "Open", &msg, at);
                cx.event(EventType::Normal, "PostRolloutGateOpen", msg);
            } else {
                cx.st
                    .set_condition(POST_ROLLOUT, false, "GateClosed", &msg, at);
                cx.event(EventType::Warning, "PostRolloutGateClosed", msg);
            }
        }
        GateName::OnRollback => {
            let msg = format!("onRollback gate for {rev}: {reason}");
            if open {
                cx.event(EventType::Normal, "RollbackGateOpen", msg);
            } else {
                cx.event(EventType::Warning, "RollbackGateClosed", msg);
            }
        }
        _ if open => {
            let msg = format!("gate {gate} open for {rev}: {reason}");
            if cond::is_true(&cx.st, GATED) {
                cx.st.set_condition(GATED, false, "Open", &msg, at);
            }
            cx.event(EventType::Normal, "GateOpen", msg);
        }
        _ if before != GateState::Closed => {
            let msg = format!("gate {gate} closed for {rev}: {reason}");
            cx.event(EventType::Warning, "GateClosed", msg);
        }
        _ => {}
    }
}

/// The holding gate `gate` (at `step` for `confirmTrafficIncrease`) for the canary revision:
/// true when it is open (or not configured). Otherwise the rollout is held here (or rolled
/// back at the deadline) and the gate asked when due.
pub(crate) fn passes(cx: &mut Ctx, gate: GateName, step: Option<u32>) -> bool {
    let spec = cx.spec;
    let Some(g) = spec.gates.get(gate) else {
        return true;
    };
    let Some(rev) = cx.st.canary_revision.clone() else {
        return true;
    };
    let now = cx.now;
    let i = match find(&cx.st, gate, &rev, step) {
        Some(i) => i,
        None => {
            cx.st.gates.push(GateStatus {
                gate,
                revision: rev.clone(),
                step,
                state: GateState::Pending,
                reason: None,
                since: now,
                asked_at: None,
                answered_at: None,
                expired: false,
            });
            cx.st.gates.len() - 1
        }
    };
    let rec = cx.st.gates[i].clone();
    if rec.state == GateState::Open {
        return true;
    }
    let limit = deadline(g);
    let end = add(rec.since, limit);
    let last = rec.reason.clone().unwrap_or_else(|| "no answer yet".into());
    if rec.expired || (rec.state == GateState::Closed && now >= end) {
        match g.on_deadline {
            GateDeadlinePolicy::Fail => {
                let reason = format!(
                    "gate {gate} still closed after its deadline ({}): {last}",
                    sluice_crds::format_duration(limit)
                );
                rollback::start(cx, "gate", &reason, None, None);
            }
            GateDeadlinePolicy::Hold => {
                let msg = format!(
                    "gate {gate} still closed after its deadline ({}): {last}; waiting for a human (resume asks again, promote passes the gate, abort rolls back)",
                    sluice_crds::format_duration(limit)
                );
                if !rec.expired {
                    cx.st.gates[i].expired = true;
                    cx.event(EventType::Warning, "GateDeadline", msg.clone());
                }
                cx.st.phase = Phase::Paused;
                cx.st
                    .set_condition(cond::PAUSED, true, REASON_GATE_DEADLINE, &msg, now);
                cx.st
                    .set_condition(GATED, true, REASON_GATE_DEADLINE, &msg, now);
                cx.message(msg);
            }
        }
        return false;
    }
    let every = interval(g);
    // Asked and answered: again an interval later. Asked without an answer (the shell could
    // not deliver it): again an interval later too.
    let due = rec.asked_at.map_or(now, |t| add(t, every));
    if now >= due {
        cx.st.gates[i].asked_at = Some(now);
        cx.emit(Effect::AskGate {
            gate,
            revision: rev.clone(),
            step,
        });
        cx.requeue_in(every);
    } else {
        cx.requeue_at(due);
    }
    if rec.state == GateState::Closed {
        cx.requeue_at(end);
    }
    let policy = match g.on_deadline {
        GateDeadlinePolicy::Fail => "then the rollout fails",
        GateDeadlinePolicy::Hold => "then it waits for a human",
    };
    let msg = match rec.state {
        GateState::Closed => format!(
            "held by gate {gate}: {last}; asking every {} until {} ({policy})",
            sluice_crds::format_duration(every),
            end.format("%H:%M:%S")
        ),
        _ => format!("asking gate {gate}"),
    };
    let reason = match rec.state {
        GateState::Closed => format!("{}Closed", camel(gate)),
        _ => format!("{}Pending", camel(gate)),
    };
    cx.st.phase = Phase::Progressing;
    if cond::is_true(&cx.st, cond::PAUSED) {
        cx.st
            .set_condition(cond::PAUSED, false, "Running", "rollout running", now);
    }
    cx.st.set_condition(GATED, true, &reason, &msg, now);
    cx.message(msg);
    false
}

/// `PreRollout` for condition reasons.
fn camel(g: GateName) -> String {
    let s = g.as_str();
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
        None => String::new(),
    }
}

/// Ask a reporting gate (`postRollout`, `onRollback`) once for `rev`.
pub(crate) fn notify(cx: &mut Ctx, gate: GateName, rev: &str) {
    if cx.spec.gates.get(gate).is_none() || find(&cx.st, gate, rev, None).is_some() {
        return;
    }
    let now = cx.now;
    cx.st.gates.push(GateStatus {
        gate,
        revision: rev.to_string(),
        step: None,
        state: GateState::Pending,
        reason: None,
        since: now,
        asked_at: Some(now),
        answered_at: None,
        expired: false,
    });
    cx.emit(Effect::AskGate {
        gate,
        revision: rev.to_string(),
        step: None,
    });
}

/// `resume`: gates held past their deadline are asked again, with a new deadline.
pub(crate) fn release(cx: &mut Ctx) {
    let now = cx.now;
    let rev = cx.st.canary_revision.clone();
    for g in cx.st.gates.iter_mut() {
        if g.expired && Some(&g.revision) == rev.as_ref() {
            g.expired = false;
            g.state = GateState::Pending;
            g.since = now;
            g.asked_at = None;
        }
    }
}

/// `promote` / `promoteFull`: open the holding gate the rollout waits at (a human decided).
/// Returns true when there was one, so `promote` passes the gate instead of skipping a step.
pub(crate) fn pass_held(cx: &mut Ctx, by: &str, full: bool) -> bool {
    let Some(rev) = cx.st.canary_revision.clone() else {
        return false;
    };
    let now = cx.now;
    let step = cx.st.current_step;
    let mut passed = false;
    for g in cx.st.gates.iter_mut() {
        let here = match g.gate {
            GateName::PreRollout | GateName::ConfirmPromotion => true,
            GateName::ConfirmTrafficIncrease => g.step == Some(step),
            _ => false,
        };
        if here && g.revision == rev && g.state != GateState::Open {
            g.state = GateState::Open;
            g.expired = false;
            g.reason = Some(format!("passed by promote from {by}"));
            g.answered_at = Some(now);
            passed = true;
        }
    }
    if full
        && cx.spec.gates.get(GateName::ConfirmPromotion).is_some()
        && find(&cx.st, GateName::ConfirmPromotion, &rev, None).is_none()
    {
        cx.st.gates.push(GateStatus {
            gate: GateName::ConfirmPromotion,
            revision: rev,
            step: None,
            state: GateState::Open,
            reason: Some(format!("passed by promoteFull from {by}")),
            since: now,
            asked_at: None,
            answered_at: Some(now),
            expired: false,
        });
    }
    if passed && cond::is_true(&cx.st, GATED) {
        let msg = format!("gate passed by promote from {by}");
        cx.st.set_condition(GATED, false, "Passed", &msg, now);
    }
    passed
}
