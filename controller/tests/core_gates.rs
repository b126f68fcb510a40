//! Gates (spec.gates) through the simulator: exact weight and phase sequences for a gate that
//! is closed then opens, a deadline that fails, a deadline that holds, and an abort while closed.
mod core_support;

use core_support::*;
use sluice_controller::core::{self, Effect, GateAnswer, VerdictKind};
use sluice_controller::sim::{Script, ScriptedOracle};
use sluice_crds::{
    CanaryStep, CommandAction, Gate, GateCheck, GateDeadlinePolicy, GateName, GateState, Phase,
    RolloutSpec,
};

fn gate(deadline: &str, on_deadline: GateDeadlinePolicy) -> Gate {
    Gate {
        checks: vec![GateCheck {
            name: "approval".into(),
            url: "http://gate.test/approve".into(),
            ..GateCheck::default()
        }],
        deadline: Some(deadline.into()),
        on_deadline,
        interval: Some("10s".into()),
    }
}

fn steps() -> Vec<CanaryStep> {
    vec![
        w(10),
        CanaryStep::pause_for("30s"),
        w(50),
        CanaryStep::pause_for("30s"),
    ]
}

fn with(spec: RolloutSpec, name: GateName, g: Gate) -> RolloutSpec {
    let mut spec = spec;
    let gates = &mut spec.gates;
    match name {
        GateName::PreRollout => gates.pre_rollout = Some(g),
        GateName::ConfirmTrafficIncrease => gates.confirm_traffic_increase = Some(g),
        GateName::ConfirmPromotion => gates.confirm_promotion = Some(g),
        GateName::PostRollout => gates.post_rollout = Some(g),
        GateName::OnRollback => gates.on_rollback = Some(g),
    }
    spec
}

fn asks(tl: &sluice_controller::sim::Timeline, name: GateName) -> usize {
    tl.effects()
        .filter(|(_, e)| matches!(e, Effect::AskGate { gate, .. } if *gate == name))
        .count()
}

#[test]
fn open_gates_change_nothing_but_are_each_asked_once_per_point() {
    let mut spec = canary(steps());
    for g in GateName::ALL {
        spec = with(spec, g, gate("10m", GateDeadlinePolicy::Fail));
    }
    let tl = run(&spec, pass(), Script::new().revision(30, "v2"), 600);
    assert_eq!(tl.set_weights(), vec![0, 10, 50, 0]);
    assert_eq!(tl.final_phase(), Phase::Succeeded);
    assert_eq!(asks(&tl, GateName::PreRollout), 1);
    // One per weight increase: 0 -> 10 and 10 -> 50.
    assert_eq!(asks(&tl, GateName::ConfirmTrafficIncrease), 2);
    assert_eq!(asks(&tl, GateName::ConfirmPromotion), 1);
    assert_eq!(asks(&tl, GateName::PostRollout), 1);
    assert_eq!(asks(&tl, GateName::OnRollback), 0);
    let st = &tl.final_status;
    assert_eq!(st.condition("PostRollout").unwrap().status, "True");
    assert!(st.gates.iter().all(|g| g.state == GateState::Open));
}

#[test]
fn a_closed_pre_rollout_gate_keeps_the_canary_at_zero_until_it_opens() {
    let spec = with(
        canary(steps()),
        GateName::PreRollout,
        gate("10m", GateDeadlinePolicy::Fail),
    );
    let script = Script::new()
        .gate_closed(
            0,
            GateName::PreRollout,
            "smoke test failed: 3 of 10 requests 500",
        )
        .revision(30, "v2")
        .gate_open(120, GateName::PreRollout);
    let tl = run(&spec, pass(), script, 600);
    // No weight above 0 before the gate opened at 120s.
    for e in tl.entries.iter().filter(|e| e.offset.as_secs() < 120) {
        assert_eq!(e.router_weight.unwrap_or(0), 0, "at {:?}", e.offset);
        if e.offset.as_secs() > 45 {
            assert_eq!(e.phase, Phase::Progressing, "at {:?}", e.offset);
        }
    }
    let held = tl
        .entries
        .iter()
        .find(|e| e.offset.as_secs() == 100)
        .or_else(|| tl.entries.iter().rev().find(|e| e.offset.as_secs() < 120))
        .unwrap();
    let msg = held.message.clone().unwrap();
    assert!(
        msg.contains("held by gate preRollout: smoke test failed"),
        "{msg}"
    );
    assert_eq!(tl.set_weights(), vec![0, 10, 50, 0]);
    assert_eq!(tl.final_phase(), Phase::Succeeded);
    // Asked every 10s while closed: canary ready at 40s, open answer at 120s.
    let n = asks(&tl, GateName::PreRollout);
    assert!((8..=10).contains(&n), "{n} asks");
    let ten = tl
        .entries
        .iter()
        .find(|e| e.router_weight == Some(10))
        .unwrap();
    assert_eq!(ten.offset.as_secs(), 120);
    assert!(tl.events().contains(&"GateClosed".to_string()));
    assert!(tl.events().contains(&"GateOpen".to_string()));
}

#[test]
fn a_closed_traffic_increase_gate_holds_the_current_weight() {
    let spec = with(
        canary(steps()),
        GateName::ConfirmTrafficIncrease,
        gate("10m", GateDeadlinePolicy::Fail),
    );
    // Closed from 60s: 0 -> 10 (at 40s) passes, 10 -> 50 (at 70s) waits until 200s.
    let script = Script::new()
        .revision(30, "v2")
        .gate_closed(60, GateName::ConfirmTrafficIncrease, "change freeze")
        .gate_open(200, GateName::ConfirmTrafficIncrease);
    let tl = run(&spec, pass(), script, 600);
    assert_eq!(tl.set_weights(), vec![0, 10, 50, 0]);
    let fifty = tl
        .entries
        .iter()
        .find(|e| e.router_weight == Some(50))
        .unwrap();
    assert!(
        (200..=210).contains(&fifty.offset.as_secs()),
        "{:?}",
        fifty.offset
    );
    for e in tl
        .entries
        .iter()
        .filter(|e| (75..200).contains(&e.offset.as_secs()))
    {
        assert_eq!(e.router_weight, Some(10), "at {:?}", e.offset);
    }
    assert_eq!(tl.final_phase(), Phase::Succeeded);
}

#[test]
fn a_closed_promotion_gate_holds_while_analysis_runs_and_a_failed_run_still_rolls_back() {
    let spec = with(
        canary(vec![w(20), CanaryStep::analyse()]),
        GateName::ConfirmPromotion,
        gate("1h", GateDeadlinePolicy::Fail),
    );
    let script = Script::new()
        .gate_closed(0, GateName::ConfirmPromotion, "waiting for QA sign-off")
        .revision(30, "v2");
    // Analysis passes the step, then fails its 5th run while the gate holds.
    let oracle = ScriptedOracle::new(VerdictKind::Pass).on_run(5, VerdictKind::Fail);
    let tl = run(&spec, oracle, script, 900);
    assert_eq!(tl.set_weights(), vec![0, 20, 0]);
    assert_eq!(tl.final_phase(), Phase::Failed);
    assert!(!tl.phases().contains(&Phase::Promoting));
    let abort = tl.final_status.abort.clone().unwrap();
    assert_eq!(abort.source, "analysis");
    assert!(tl.analysis_requests() >= 5);
}

#[test]
fn a_deadline_fails_the_rollout_with_the_gates_reason() {
    let spec = with(
        canary(steps()),
        GateName::ConfirmPromotion,
        gate("2m", GateDeadlinePolicy::Fail),
    );
    let script = Script::new()
        .gate_closed(0, GateName::ConfirmPromotion, "ticket CHG-42 not approved")
        .revision(30, "v2");
    let tl = run(&spec, pass(), script, 900);
    assert_eq!(tl.set_weights(), vec![0, 10, 50, 0]);
    assert_eq!(tl.final_phase(), Phase::Failed);
    let abort = tl.final_status.abort.clone().unwrap();
    assert_eq!(abort.source, "gate");
    assert_eq!(
        abort.reason,
        "gate confirmPromotion still closed after its deadline (2m): ticket CHG-42 not approved"
    );
    // First asked when the last pause ended (40 + 30 + 30 = 100s); failed 2m later.
    let failed_at = tl.first_time_in(Phase::RollingBack).unwrap().as_secs();
    assert!((220..=230).contains(&failed_at), "{failed_at}");
    assert_eq!(
        tl.final_status.condition("Aborted").unwrap().reason,
        "GateDeadline"
    );
    // No gate holds a rollback: Gated is False once it started.
    assert_eq!(tl.final_status.condition("Gated").unwrap().status, "False");
}

#[test]
fn a_deadline_with_hold_waits_for_a_human_and_resume_asks_again() {
    let spec = with(
        canary(steps()),
        GateName::ConfirmPromotion,
        gate("1m", GateDeadlinePolicy::Hold),
    );
    let script = Script::new()
        .gate_closed(0, GateName::ConfirmPromotion, "not yet")
        .revision(30, "v2")
        .command(400, "r1", CommandAction::Resume)
        .gate_open(420, GateName::ConfirmPromotion);
    let tl = run(&spec, pass(), script, 900);
    assert_eq!(
        tl.phases(),
        vec![
            Phase::Initializing,
            Phase::Idle,
            Phase::Progressing,
            Phase::Paused,
            Phase::Progressing,
            Phase::Promoting,
            Phase::Succeeded
        ]
    );
    // Paused at 100 + 60 s; no ask while paused for a human.
    let paused = tl.first_time_in(Phase::Paused).unwrap().as_secs();
    assert!((160..=170).contains(&paused), "{paused}");
    let asked_while_paused = tl
        .entries
        .iter()
        .filter(|e| e.phase == Phase::Paused)
        .flat_map(|e| &e.effects)
        .filter(|e| matches!(e, Effect::AskGate { .. }))
        .count();
    assert_eq!(asked_while_paused, 0);
    let p = tl.first_time_in(Phase::Promoting).unwrap().as_secs();
    assert!((420..=430).contains(&p), "{p}");
    assert!(tl.events().contains(&"GateDeadline".to_string()));
}

#[test]
fn promote_passes_a_gate_held_past_its_deadline_without_skipping_a_step() {
    let spec = with(
        canary(steps()),
        GateName::ConfirmTrafficIncrease,
        gate("30s", GateDeadlinePolicy::Hold),
    );
    let script = Script::new()
        .gate_closed(0, GateName::ConfirmTrafficIncrease, "no")
        .revision(30, "v2")
        .command(200, "p1", CommandAction::Promote);
    let tl = run(&spec, pass(), script, 900);
    // The first increase (0 -> 10) is passed by the human; the next one (10 -> 50) asks again
    // and is held past its deadline.
    assert_eq!(tl.set_weights(), vec![0, 10]);
    assert_eq!(tl.final_phase(), Phase::Paused);
    let held = &tl.final_status.gates;
    assert_eq!(held.len(), 2);
    assert_eq!(held[0].state, GateState::Open);
    assert!(held[0]
        .reason
        .as_deref()
        .unwrap()
        .contains("promote from sim"));
    assert!(held[1].expired);
    assert_eq!(held[1].step, Some(2));
}

#[test]
fn an_abort_while_a_gate_is_closed_rolls_back_at_once_and_calls_on_rollback() {
    let spec = with(
        with(
            canary(steps()),
            GateName::ConfirmTrafficIncrease,
            gate("1h", GateDeadlinePolicy::Fail),
        ),
        GateName::OnRollback,
        gate("1m", GateDeadlinePolicy::Fail),
    );
    let script = Script::new()
        .revision(30, "v2")
        .gate_closed(60, GateName::ConfirmTrafficIncrease, "hold")
        .gate_closed(0, GateName::OnRollback, "pager is down")
        .command(150, "a1", CommandAction::Abort);
    let tl = run(&spec, pass(), script, 400);
    assert_eq!(tl.set_weights(), vec![0, 10, 0]);
    assert_eq!(tl.final_phase(), Phase::Failed);
    let zero_at = tl
        .entries
        .iter()
        .filter(|e| e.offset.as_secs() >= 150)
        .find(|e| e.router_weight == Some(0))
        .unwrap()
        .offset
        .as_secs();
    assert_eq!(zero_at, 150);
    assert_eq!(asks(&tl, GateName::OnRollback), 1);
    // The weight went to 0 before the onRollback gate was asked, in the same decision.
    let pos_zero = tl
        .effects()
        .position(|(o, e)| o.as_secs() >= 150 && *e == Effect::SetWeight { weight: 0 })
        .unwrap();
    let pos_ask = tl
        .effects()
        .position(|(_, e)| {
            matches!(
                e,
                Effect::AskGate {
                    gate: GateName::OnRollback,
                    ..
                }
            )
        })
        .unwrap();
    assert!(pos_zero < pos_ask);
    assert!(tl.events().contains(&"RollbackGateClosed".to_string()));
}

#[test]
fn a_closed_post_rollout_gate_is_reported_and_nothing_is_undone() {
    let spec = with(
        canary(steps()),
        GateName::PostRollout,
        gate("1m", GateDeadlinePolicy::Fail),
    );
    let script = Script::new()
        .gate_closed(0, GateName::PostRollout, "smoke after promotion failed")
        .revision(30, "v2");
    let tl = run(&spec, pass(), script, 600);
    assert_eq!(tl.final_phase(), Phase::Succeeded);
    assert_eq!(asks(&tl, GateName::PostRollout), 1);
    let c = tl.final_status.condition("PostRollout").unwrap().clone();
    assert_eq!(
        (c.status.as_str(), c.reason.as_str()),
        ("False", "GateClosed")
    );
    assert!(
        c.message.contains("smoke after promotion failed"),
        "{}",
        c.message
    );
    assert!(tl.events().contains(&"PostRolloutGateClosed".to_string()));
}

#[test]
fn a_restart_asks_again_from_status_with_the_same_deadline() {
    // A closed confirmPromotion gate recorded in status; a new controller (same status, no
    // memory) asks again when due and fails at the recorded deadline, not a new one.
    let spec = with(
        canary(vec![w(20)]),
        GateName::ConfirmPromotion,
        gate("5m", GateDeadlinePolicy::Fail),
    );
    let mut sim = sim(&spec, pass());
    let tl = sim.run(
        &Script::new()
            .gate_closed(0, GateName::ConfirmPromotion, "no")
            .revision(30, "v2"),
        std::time::Duration::from_secs(120),
    );
    let st = tl.final_status.clone();
    let rec = st
        .gates
        .iter()
        .find(|g| g.gate == GateName::ConfirmPromotion)
        .unwrap();
    assert_eq!(rec.state, GateState::Closed);
    let since = rec.since;
    // Restart: a fresh step from the stored status, 1 minute later.
    let obs = obs(ready("v2"), ready("v1"), Some(20));
    let now = at(180);
    let d = core::step(&spec, &st, &obs, now);
    assert!(d.effects.iter().any(|e| matches!(
        e,
        Effect::AskGate {
            gate: GateName::ConfirmPromotion,
            ..
        }
    )));
    // Still closed at since + 5m: the rollout fails then.
    let mut o2 = obs.clone();
    o2.gates = vec![GateAnswer {
        gate: GateName::ConfirmPromotion,
        revision: "v2".into(),
        step: None,
        asked_at: since + chrono::Duration::seconds(300),
        open: false,
        reason: "still no".into(),
    }];
    let d2 = core::step(
        &spec,
        &d.status,
        &o2,
        since + chrono::Duration::seconds(300),
    );
    assert_eq!(d2.status.phase, Phase::RollingBack);
    assert!(d2.status.abort.unwrap().reason.ends_with("still no"));
}
