//! A canary that dies while it holds traffic (issue 17): its weight goes to 0 within
//! `canaryLoss.graceSeconds`, analysis keeps running until then, and the policy rolls back or
//! holds. Exact weights and times through the simulator.
mod core_support;

use std::time::Duration;

use core_support::*;
use sluice_controller::core::{Effect, VerdictKind};
use sluice_controller::sim::{Script, ScriptAction, When};
use sluice_crds::{CanaryLossPolicy, CanaryStep, CommandAction, Phase, RolloutSpec};

/// v2 at t=30, ready at 40: 25% at 40, analysis every 30 s, then 50% and a 60 s pause.
fn spec(policy: CanaryLossPolicy, grace: i64) -> RolloutSpec {
    let mut s = canary(vec![
        w(25),
        CanaryStep::analyse(),
        CanaryStep::pause_for("60s"),
        w(50),
        CanaryStep::pause_for("60s"),
    ]);
    s.strategy.canary.as_mut().unwrap().steps[1] = CanaryStep {
        analysis: Some(sluice_crds::AnalysisStep {
            iterations: Some(2),
        }),
        ..CanaryStep::default()
    };
    s.canary_loss.policy = policy;
    s.canary_loss.grace_seconds = grace;
    s
}

/// Seconds from the start at which the router was first asked for `weight` after `after`.
fn set_weight_at(tl: &sluice_controller::sim::Timeline, weight: i32, after: u64) -> Option<u64> {
    tl.effects()
        .find(|(t, e)| t.as_secs() > after && **e == Effect::SetWeight { weight })
        .map(|(t, _)| t.as_secs())
}

fn dies(at_: u64, back_after: Duration) -> Script {
    Script::new()
        .revision(30, "v2")
        .at(at_, ScriptAction::CanaryDies(back_after))
}

#[test]
fn a_dead_canary_loses_its_weight_after_the_grace_and_rolls_back() {
    let tl = run(
        &spec(CanaryLossPolicy::Rollback, 10),
        pass(),
        dies(60, Duration::MAX),
        400,
    );
    assert_eq!(tl.set_weights(), vec![0, 25, 0]);
    // Died at 60 holding 25%; the grace ends at 70 (the progress deadline would be 180).
    assert_eq!(set_weight_at(&tl, 0, 40), Some(70));
    assert_eq!(tl.final_phase(), Phase::Failed);
    let abort = tl.final_status.abort.clone().unwrap();
    assert_eq!(abort.source, "canaryLost");
    assert!(
        abort.reason.contains("no ready pod for 10s"),
        "{}",
        abort.reason
    );
    let events = tl.events();
    assert!(events.contains(&"CanaryLost".to_string()), "{events:?}");
    assert_eq!(
        tl.final_status.condition("Aborted").unwrap().reason,
        "CanaryLost"
    );
}

#[test]
fn analysis_keeps_running_during_the_grace_and_its_failure_rolls_back_first() {
    // The canary dies at 60 with a 45 s grace; runs from 65 on fail.
    let oracle = pass().rule(None, When::FromTime(at(65)), VerdictKind::Fail);
    let tl = run(
        &spec(CanaryLossPolicy::Rollback, 45),
        oracle,
        dies(60, Duration::MAX),
        400,
    );
    assert_eq!(tl.set_weights(), vec![0, 25, 0]);
    // 25% is routed at 45 (the router is read on the next 5 s tick): runs at 75, 105, ...
    // The run at 75 fails, inside the grace that ends at 105.
    assert_eq!(set_weight_at(&tl, 0, 40), Some(75));
    let abort = tl.final_status.abort.clone().unwrap();
    assert_eq!(abort.source, "analysis");
    assert_eq!(abort.at, at(75));
    assert_eq!(tl.final_phase(), Phase::Failed);
}

#[test]
fn hold_policy_returns_traffic_then_restores_the_weight_when_the_canary_is_back() {
    let tl = run(
        &spec(CanaryLossPolicy::Hold, 10),
        pass(),
        dies(60, Duration::from_secs(30)),
        600,
    );
    // 25% → 0 at 70 (grace), back to 25% at 90 when the canary is ready, then on to 50%.
    assert_eq!(tl.set_weights(), vec![0, 25, 0, 25, 50, 0]);
    assert_eq!(set_weight_at(&tl, 0, 40), Some(70));
    assert_eq!(set_weight_at(&tl, 25, 70), Some(90));
    assert_eq!(tl.final_phase(), Phase::Succeeded);
    let events = tl.events();
    assert!(
        events.contains(&"CanaryRecovered".to_string()),
        "{events:?}"
    );
    // No analysis request while the canary was held at 0 outside an analysis step... and the
    // 60 s pause after the analysis is served with traffic: promotion not before 90 + 60.
    let promoting = tl.first_time_in(Phase::Promoting).unwrap().as_secs();
    assert!(promoting >= 150, "promoting at {promoting}");
}

#[test]
fn hold_policy_rolls_back_at_the_progress_deadline_counted_from_the_loss() {
    let tl = run(
        &spec(CanaryLossPolicy::Hold, 10),
        pass(),
        dies(60, Duration::MAX),
        600,
    );
    assert_eq!(tl.set_weights(), vec![0, 25, 0]);
    assert_eq!(set_weight_at(&tl, 0, 40), Some(70));
    let abort = tl.final_status.abort.clone().unwrap();
    assert_eq!(abort.source, "deadline");
    // progressDeadlineSeconds is 120 in these specs: 60 + 120.
    assert_eq!(abort.at, at(180));
    assert_eq!(tl.final_phase(), Phase::Failed);
}

#[test]
fn a_paused_rollout_still_takes_traffic_off_a_dead_canary() {
    let script = dies(60, Duration::MAX).command(50, "p1", CommandAction::Pause);
    let tl = run(&spec(CanaryLossPolicy::Rollback, 10), pass(), script, 400);
    assert_eq!(set_weight_at(&tl, 0, 40), Some(70));
    assert_eq!(tl.final_phase(), Phase::Failed);
}

#[test]
fn a_canary_that_dies_before_it_gets_traffic_is_waited_for_as_before() {
    // Ready at 40 with no weight yet (a 30 s pause first): no weight to take away, so the
    // readiness wait and its deadline apply.
    let mut s = canary(vec![CanaryStep::pause_for("30s"), w(25)]);
    s.canary_loss.grace_seconds = 5;
    let tl = run(&s, pass(), dies(50, Duration::from_secs(20)), 400);
    assert_eq!(tl.set_weights(), vec![0, 25, 0]);
    assert!(tl.final_status.abort.is_none());
    assert_eq!(tl.final_phase(), Phase::Succeeded);
}
