//! Canary lifecycle through the simulator: exact weight sequences and final phases.
mod core_support;

use std::time::Duration;

use core_support::*;
use sluice_controller::core::Effect;
use sluice_controller::sim::{Script, ScriptAction, SimConfig, Simulator};
use sluice_crds::{CanaryStep, CommandAction, Phase, RolloutStatus};

fn analysed_steps() -> Vec<CanaryStep> {
    vec![
        w(10),
        CanaryStep::analyse(),
        w(50),
        CanaryStep::pause_for("60s"),
    ]
}

#[test]
fn happy_canary_walks_every_weight_and_promotes() {
    let tl = run(
        &canary(analysed_steps()),
        pass(),
        Script::new().revision(30, "v2"),
        600,
    );
    assert_eq!(tl.set_weights(), vec![0, 10, 50, 0]);
    assert_eq!(tl.router_weights(), vec![0, 10, 50, 0]);
    assert_eq!(tl.final_phase(), Phase::Succeeded);
    let st = &tl.final_status;
    assert_eq!(st.stable_revision.as_deref(), Some("v2"));
    assert_eq!(st.previous_stable_revision.as_deref(), Some("v1"));
    assert!(st.promoted_at.is_some());
    assert_eq!(st.condition("Promoted").unwrap().status, "True");
    assert_eq!(st.condition("Progressing").unwrap().status, "False");
    assert_eq!(
        tl.events(),
        vec!["Initialized", "RolloutStarted", "Promoting", "Promoted"]
    );
    // The canary is scaled down only after the weight went back to 0.
    let zero = tl
        .effects()
        .filter(|(_, e)| **e == Effect::SetWeight { weight: 0 })
        .last();
    let down = tl
        .effects()
        .filter(|(_, e)| **e == Effect::ScaleCanary { up: false })
        .last();
    assert!(down.unwrap().0 > zero.unwrap().0);
    // Primary updated to v2 before traffic left the canary.
    let apply = tl
        .position(&Effect::ApplyPrimary {
            revision: "v2".into(),
        })
        .unwrap();
    let pos_zero = tl
        .effects()
        .enumerate()
        .filter(|(_, (_, e))| **e == Effect::SetWeight { weight: 0 })
        .last()
        .unwrap()
        .0;
    assert!(apply < pos_zero);
}

#[test]
fn shorthand_expands_to_weight_and_analysis_pairs() {
    let tl = run(
        &shorthand(20, 60),
        pass(),
        Script::new().revision(30, "v2"),
        900,
    );
    assert_eq!(tl.set_weights(), vec![0, 20, 40, 60, 0]);
    assert_eq!(tl.final_phase(), Phase::Succeeded);
    assert_eq!(tl.analysis_requests(), 3);
    assert_eq!(tl.final_status.analysis.runs, 3);
}

#[test]
fn timed_pause_waits_exactly_its_duration() {
    let spec = canary(vec![w(20), CanaryStep::pause_for("2m"), w(40)]);
    let tl = run(&spec, pass(), Script::new().revision(30, "v2"), 600);
    assert_eq!(tl.set_weights(), vec![0, 20, 40, 0]);
    let pause_start = tl.entries.iter().find(|e| e.step == 1).unwrap().offset;
    let forty = tl
        .effects()
        .find(|(_, e)| **e == Effect::SetWeight { weight: 40 })
        .unwrap()
        .0;
    assert_eq!(forty - pause_start, Duration::from_secs(120));
    assert_eq!(tl.final_phase(), Phase::Succeeded);
}

#[test]
fn indefinite_pause_holds_until_promote() {
    let spec = canary(vec![w(10), CanaryStep::pause_until_promoted(), w(30)]);
    let script = Script::new()
        .revision(30, "v2")
        .command(300, "p1", CommandAction::Promote);
    let tl = run(&spec, pass(), script, 600);
    assert_eq!(tl.set_weights(), vec![0, 10, 30, 0]);
    let thirty = tl
        .effects()
        .find(|(_, e)| **e == Effect::SetWeight { weight: 30 })
        .unwrap()
        .0;
    assert_eq!(thirty, Duration::from_secs(300));
    let paused: Vec<_> = tl
        .entries
        .iter()
        .filter(|e| e.phase == Phase::Paused)
        .collect();
    assert!(paused.first().unwrap().offset < Duration::from_secs(60));
    assert!(paused.iter().all(|e| e.offset < Duration::from_secs(300)));
    assert_eq!(tl.final_phase(), Phase::Succeeded);
    assert!(tl.events().contains(&"RolloutPromoted".to_string()));
}

#[test]
fn background_analysis_keeps_running_during_an_indefinite_pause() {
    let spec = canary(vec![w(10), CanaryStep::pause_until_promoted(), w(30)]);
    let tl = run(&spec, pass(), Script::new().revision(30, "v2"), 300);
    assert_eq!(tl.final_phase(), Phase::Paused);
    // weight 10 from ~40s to 300s, one run per 30s interval
    assert!(tl.analysis_requests() >= 7, "{}", tl.analysis_requests());
    assert_eq!(
        tl.final_status.condition("Paused").unwrap().reason,
        "PauseStep"
    );
}

#[test]
fn promote_full_skips_to_promotion() {
    let spec = canary(vec![
        w(10),
        CanaryStep::analyse(),
        w(20),
        CanaryStep::analyse(),
        w(30),
    ]);
    let script = Script::new()
        .revision(30, "v2")
        .command(60, "pf", CommandAction::PromoteFull);
    let tl = run(&spec, pass(), script, 600);
    assert_eq!(tl.set_weights(), vec![0, 10, 0]);
    assert_eq!(tl.final_phase(), Phase::Succeeded);
    assert_eq!(
        tl.first_time_in(Phase::Promoting),
        Some(Duration::from_secs(60))
    );
}

#[test]
fn skip_analysis_never_requests_a_run() {
    let mut spec = shorthand(25, 50);
    spec.skip_analysis = true;
    let tl = run(&spec, pass(), Script::new().revision(30, "v2"), 300);
    assert_eq!(tl.set_weights(), vec![0, 25, 50, 0]);
    assert_eq!(tl.analysis_requests(), 0);
    assert_eq!(tl.final_phase(), Phase::Succeeded);
}

#[test]
fn no_analysis_configured_passes_analysis_steps() {
    let mut spec = canary(analysed_steps());
    spec.analysis = None;
    let tl = run(&spec, pass(), Script::new().revision(30, "v2"), 300);
    assert_eq!(tl.set_weights(), vec![0, 10, 50, 0]);
    assert_eq!(tl.analysis_requests(), 0);
    assert_eq!(tl.final_phase(), Phase::Succeeded);
}

#[test]
fn spec_paused_holds_weights_and_analysis() {
    let script = Script::new()
        .revision(30, "v2")
        .at(50, ScriptAction::SetPaused(true))
        .at(300, ScriptAction::SetPaused(false));
    let tl = run(&canary(analysed_steps()), pass(), script, 700);
    let held: Vec<_> = tl
        .entries
        .iter()
        .filter(|e| e.offset >= Duration::from_secs(50) && e.offset < Duration::from_secs(300))
        .collect();
    assert!(held.iter().all(|e| e.phase == Phase::Paused));
    assert!(
        held.iter().all(|e| e.effects.is_empty()),
        "no effect while held"
    );
    assert!(held.iter().all(|e| e.router_weight == Some(10)));
    assert_eq!(tl.set_weights(), vec![0, 10, 50, 0]);
    assert_eq!(tl.final_phase(), Phase::Succeeded);
}

#[test]
fn new_revision_mid_rollout_returns_to_zero_then_restarts() {
    let spec = canary(vec![
        w(20),
        CanaryStep::analyse(),
        w(40),
        CanaryStep::analyse(),
    ]);
    let script = Script::new().revision(30, "v2").revision(70, "v3");
    let tl = run(&spec, pass(), script, 900);
    assert_eq!(tl.set_weights(), vec![0, 20, 0, 20, 40, 0]);
    assert_eq!(tl.final_phase(), Phase::Succeeded);
    let st = &tl.final_status;
    assert_eq!(st.stable_revision.as_deref(), Some("v3"));
    assert_eq!(st.previous_stable_revision.as_deref(), Some("v1"));
    let ev = tl.events();
    assert!(ev.contains(&"RolloutSuperseded".to_string()));
    assert!(ev.contains(&"RolloutRestarted".to_string()));
    // Counters were reset: only v3's two analysis steps are counted.
    assert_eq!(st.analysis.runs, 2);
    // The restart happened only once the router read 0.
    let restart = tl
        .entries
        .iter()
        .find(|e| {
            e.effects
                .iter()
                .any(|x| matches!(x, Effect::Event { reason, .. } if reason == "RolloutRestarted"))
        })
        .unwrap();
    assert_eq!(restart.router_weight, Some(0));
    assert!(restart.offset > Duration::from_secs(70));
}

#[test]
fn target_reverted_to_stable_cancels_the_rollout() {
    let spec = canary(vec![w(20), CanaryStep::analyse(), w(40)]);
    let script = Script::new().revision(30, "v2").revision(70, "v1");
    let tl = run(&spec, pass(), script, 300);
    assert_eq!(tl.set_weights(), vec![0, 20, 0]);
    assert_eq!(tl.final_phase(), Phase::Idle);
    assert_eq!(tl.final_status.stable_revision.as_deref(), Some("v1"));
    assert!(tl.events().contains(&"RolloutCancelled".to_string()));
}

#[test]
fn router_lag_is_waited_for_before_advancing() {
    let cfg = SimConfig {
        router_lag: Duration::from_secs(12),
        ..SimConfig::default()
    };
    let mut sim = Simulator::new(canary(analysed_steps()), cfg).with_oracle(pass());
    let tl = sim.run(&Script::new().revision(30, "v2"), Duration::from_secs(600));
    assert_eq!(tl.set_weights(), vec![0, 10, 50, 0]);
    let ten = tl
        .effects()
        .find(|(_, e)| **e == Effect::SetWeight { weight: 10 })
        .unwrap()
        .0;
    let step1 = tl.entries.iter().find(|e| e.step == 1).unwrap();
    assert_eq!(step1.router_weight, Some(10));
    assert!(step1.offset >= ten + Duration::from_secs(12));
    assert_eq!(tl.final_phase(), Phase::Succeeded);
}

#[test]
fn restart_from_persisted_status_neither_repeats_nor_skips() {
    let spec = canary(vec![
        w(10),
        CanaryStep::analyse(),
        w(30),
        CanaryStep::analyse(),
        w(60),
        CanaryStep::pause_for("45s"),
    ]);
    let script = Script::new().revision(30, "v2");
    let whole = run(&spec, pass(), script.clone(), 600);
    for cut in [45u64, 80, 110, 150, 200] {
        let mut first = sim(&spec, pass());
        let a = first.run(&script, Duration::from_secs(cut));
        // Persist through JSON, as the shells do, then continue with a fresh simulator.
        let json = serde_json::to_string(&first.status).unwrap();
        let restored: RolloutStatus = serde_json::from_str(&json).unwrap();
        let mut second = sim(&spec, pass());
        second.status = restored;
        second.world = first.world.clone();
        second.clock.set(first.now());
        let b = second.run(&Script::new(), Duration::from_secs(600));
        let mut joined = a.entries.clone();
        joined.extend(b.entries.clone());
        assert_eq!(joined, whole.entries, "cut at {cut}s");
        // The scripted oracle's run counter (world state, shown in reasons) restarted with it.
        let strip = |mut s: RolloutStatus| {
            s.analysis
                .metrics
                .iter_mut()
                .for_each(|m| m.last_reason = None);
            s
        };
        assert_eq!(strip(b.final_status), strip(whole.final_status.clone()));
    }
    assert_eq!(whole.set_weights(), vec![0, 10, 30, 60, 0]);
}

#[test]
fn first_step_clock_starts_when_the_canary_is_ready() {
    let spec = canary(vec![CanaryStep::pause_for("60s"), w(20)]);
    let tl = run(&spec, pass(), Script::new().revision(30, "v2"), 400);
    // started at 30s, canary ready at 40s, pause 60s
    let twenty = tl
        .effects()
        .find(|(_, e)| **e == Effect::SetWeight { weight: 20 })
        .unwrap()
        .0;
    assert_eq!(twenty, Duration::from_secs(100));
    assert_eq!(tl.set_weights(), vec![0, 20, 0]);
}
