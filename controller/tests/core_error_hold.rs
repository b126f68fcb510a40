//! Analysis errors past `errorLimit` hold the rollout; with `onErrors: resume` (default)
//! analysis keeps querying and the hold ends by itself at the first run without errors,
//! within progressDeadlineSeconds from the hold's start (issue 17).
mod core_support;

use core_support::*;
use sluice_controller::core::VerdictKind;
use sluice_controller::sim::{Script, ScriptedOracle, When};
use sluice_crds::{CanaryStep, ErrorPolicy, Phase, RolloutSpec};

/// v2 at 30, ready at 40, 25% at 40; runs every 30 s from 70; errorLimit 3, deadline 120 s.
fn spec(policy: ErrorPolicy) -> RolloutSpec {
    let mut s = canary(vec![
        w(25),
        CanaryStep::analyse(),
        w(50),
        CanaryStep::analyse(),
    ]);
    s.analysis.as_mut().unwrap().on_errors = policy;
    s
}

/// Runs 0..=4 (70..190 s) are errors (Prometheus down), later ones pass.
fn outage() -> ScriptedOracle {
    pass()
        .rule(None, When::FromRun(0), VerdictKind::Error)
        .rule(None, When::FromRun(5), VerdictKind::Pass)
}

fn script() -> Script {
    Script::new().revision(30, "v2")
}

#[test]
fn an_error_hold_ends_by_itself_when_queries_work_again() {
    let tl = run(&spec(ErrorPolicy::Resume), outage(), script(), 600);
    assert_eq!(tl.final_phase(), Phase::Succeeded);
    assert_eq!(tl.set_weights(), vec![0, 25, 50, 0]);
    let events = tl.events();
    let pos = |r: &str| events.iter().position(|e| e == r);
    assert!(
        pos("AnalysisErrors") < pos("AnalysisRecovered"),
        "{events:?}"
    );
    assert_eq!(
        events.iter().filter(|e| *e == "AnalysisErrors").count(),
        1,
        "one event when the hold starts: {events:?}"
    );
    // Held from the 4th error run (160 s) until the first good run (220 s).
    assert!(tl.phases().contains(&Phase::Paused));
    let held_at_200 = tl
        .entries
        .iter()
        .rfind(|e| e.offset.as_secs() <= 200)
        .unwrap();
    assert_eq!(held_at_200.phase, Phase::Paused);
    assert!(held_at_200
        .message
        .as_deref()
        .unwrap()
        .contains("resuming by itself once queries work again"));
    assert_eq!(held_at_200.router_weight, Some(25));
}

#[test]
fn on_errors_pause_waits_for_a_human() {
    let tl = run(&spec(ErrorPolicy::Pause), outage(), script(), 600);
    assert_eq!(tl.final_phase(), Phase::Paused);
    let msg = tl.final_status.message.clone().unwrap();
    assert!(msg.contains("waiting for a human"), "{msg}");
    // No query after the hold began (runs at 70, 100, 130, 160).
    assert_eq!(tl.analysis_requests(), 4);
}

#[test]
fn an_error_hold_past_the_progress_deadline_waits_for_a_human() {
    // Errors until 300 s: the hold began at 160, automatic release ended at 160 + 120.
    let oracle = pass()
        .rule(None, When::FromRun(0), VerdictKind::Error)
        .rule(None, When::FromTime(at(300)), VerdictKind::Pass);
    let tl = run(&spec(ErrorPolicy::Resume), oracle, script(), 900);
    assert_eq!(tl.final_phase(), Phase::Paused);
    let msg = tl.final_status.message.clone().unwrap();
    assert!(
        msg.contains("still failing after progressDeadlineSeconds") && msg.contains("human"),
        "{msg}"
    );
    let last_run = tl
        .effects()
        .filter(|(_, e)| matches!(e, sluice_controller::core::Effect::RunAnalysis { .. }))
        .last()
        .unwrap()
        .0
        .as_secs();
    assert!(last_run < 280, "queried at {last_run}");
}
