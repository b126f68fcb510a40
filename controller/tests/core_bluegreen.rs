//! Blue/green: analysed at weight 0, then one switch 0 -> 100, then promotion.
mod core_support;

use std::time::Duration;

use core_support::*;
use sluice_controller::core::{Effect, VerdictKind};
use sluice_controller::sim::{Script, ScriptedOracle};
use sluice_crds::{CommandAction, Phase};

#[test]
fn auto_promote_switches_after_passing_runs() {
    let tl = run(
        &blue_green(2, true),
        pass(),
        Script::new().revision(30, "v2"),
        600,
    );
    assert_eq!(tl.set_weights(), vec![0, 100, 0]);
    assert_eq!(tl.final_phase(), Phase::Succeeded);
    assert_eq!(tl.analysis_requests(), 2);
    // Every run was taken while the canary had no live traffic.
    for e in &tl.entries {
        if e.effects
            .iter()
            .any(|x| matches!(x, Effect::RunAnalysis { .. }))
        {
            assert_eq!(e.observed_weight, Some(0));
        }
    }
    // Switch, then primary updated, then back to 0, then scale-down.
    let pos = |e: Effect| tl.position(&e).unwrap();
    let hundred = pos(Effect::SetWeight { weight: 100 });
    let apply = pos(Effect::ApplyPrimary {
        revision: "v2".into(),
    });
    assert!(hundred < apply);
    assert_eq!(tl.final_status.stable_revision.as_deref(), Some("v2"));
}

#[test]
fn manual_promotion_waits_for_promote() {
    let script = Script::new()
        .revision(30, "v2")
        .command(300, "go", CommandAction::Promote);
    let tl = run(&blue_green(1, false), pass(), script, 600);
    assert_eq!(tl.set_weights(), vec![0, 100, 0]);
    let hundred = tl
        .effects()
        .find(|(_, e)| **e == Effect::SetWeight { weight: 100 })
        .unwrap()
        .0;
    assert_eq!(hundred, Duration::from_secs(300));
    let paused = tl
        .entries
        .iter()
        .find(|e| e.phase == Phase::Paused)
        .unwrap();
    assert!(paused.offset < Duration::from_secs(100));
    assert!(paused
        .message
        .as_deref()
        .unwrap()
        .contains("waiting for promote"));
    assert_eq!(tl.final_phase(), Phase::Succeeded);
}

#[test]
fn manual_blue_green_without_promote_stays_paused() {
    let tl = run(
        &blue_green(1, false),
        pass(),
        Script::new().revision(30, "v2"),
        600,
    );
    assert_eq!(tl.set_weights(), vec![0]);
    assert_eq!(tl.final_phase(), Phase::Paused);
    assert_eq!(
        tl.final_status.condition("Paused").unwrap().reason,
        "AwaitingPromotion"
    );
}

#[test]
fn failing_preview_never_gets_traffic() {
    let tl = run(
        &blue_green(3, true),
        ScriptedOracle::new(VerdictKind::Fail),
        Script::new().revision(30, "v2"),
        400,
    );
    assert_eq!(tl.set_weights(), vec![0]);
    assert_eq!(tl.final_phase(), Phase::Failed);
    assert_eq!(tl.final_status.abort.as_ref().unwrap().source, "analysis");
}

#[test]
fn promote_during_preview_analysis_goes_straight_to_the_switch() {
    let script = Script::new()
        .revision(30, "v2")
        .command(50, "now", CommandAction::Promote);
    let tl = run(&blue_green(5, false), pass(), script, 400);
    assert_eq!(tl.set_weights(), vec![0, 100, 0]);
    assert_eq!(tl.analysis_requests(), 0);
    assert_eq!(tl.final_phase(), Phase::Succeeded);
}

#[test]
fn blue_green_skip_analysis_switches_once_ready() {
    let mut spec = blue_green(3, true);
    spec.skip_analysis = true;
    let tl = run(&spec, pass(), Script::new().revision(30, "v2"), 300);
    assert_eq!(tl.set_weights(), vec![0, 100, 0]);
    // canary ready 10s after the start
    assert_eq!(
        tl.effects()
            .find(|(_, e)| **e == Effect::SetWeight { weight: 100 })
            .unwrap()
            .0,
        Duration::from_secs(40)
    );
    assert_eq!(tl.final_phase(), Phase::Succeeded);
}
