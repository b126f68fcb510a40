//! Aborts and rollbacks: by command, alert, analysis, deadline; commands acted on once.
mod core_support;

use std::time::Duration;

use core_support::*;
use sluice_controller::core::{Effect, VerdictKind};
use sluice_controller::sim::{
    Script, ScriptAction, ScriptedOracle, SimConfig, Simulator, Timeline, When,
};
use sluice_crds::{CanaryStep, CommandAction, InconclusivePolicy, Phase, RolloutSpec};

fn steps() -> Vec<CanaryStep> {
    vec![
        w(10),
        CanaryStep::analyse(),
        w(50),
        CanaryStep::pause_for("60s"),
    ]
}

fn abort_at(secs: u64) -> Script {
    Script::new()
        .revision(30, "v2")
        .command(secs, "a1", CommandAction::Abort)
}

/// The canary is never scaled down in a call that observed a weight other than 0.
fn assert_safe_scale_down(tl: &Timeline) {
    for e in &tl.entries {
        if e.effects.contains(&Effect::ScaleCanary { up: false }) {
            assert_eq!(
                e.observed_weight,
                Some(0),
                "scale-down while weighted at {:?}",
                e.offset
            );
        }
    }
}

fn assert_failed(tl: &Timeline, source: &str) {
    assert_eq!(tl.final_phase(), Phase::Failed);
    let st = &tl.final_status;
    let abort = st.abort.as_ref().unwrap();
    assert_eq!(abort.source, source);
    assert_eq!(abort.revision.as_deref(), Some("v2"));
    assert_eq!(st.condition("Aborted").unwrap().status, "True");
    // `Promoted` no longer reads "rolling out revision v2" after the rollback.
    let promoted = st.condition("Promoted").unwrap();
    assert_eq!(
        (promoted.status.as_str(), promoted.reason.as_str()),
        ("False", "RolledBack"),
        "{promoted:?}"
    );
    assert!(promoted.message.contains("rolled back"), "{promoted:?}");
    assert_eq!(st.stable_revision.as_deref(), Some("v1"));
    assert!(tl.events().contains(&"RolloutAborted".to_string()));
    assert!(tl.events().contains(&"RolledBack".to_string()));
    assert_safe_scale_down(tl);
}

#[test]
fn abort_while_waiting_for_the_canary() {
    let tl = run(&canary(steps()), pass(), abort_at(32), 300);
    assert_eq!(tl.set_weights(), vec![0]);
    assert_failed(&tl, "command");
    assert_eq!(
        tl.first_time_in(Phase::Failed),
        Some(Duration::from_secs(32))
    );
}

#[test]
fn abort_during_analysis_step_returns_to_zero_then_scales_down() {
    let tl = run(&canary(steps()), pass(), abort_at(60), 300);
    assert_eq!(tl.set_weights(), vec![0, 10, 0]);
    assert_failed(&tl, "command");
    assert_eq!(
        tl.phases()[tl.phases().len() - 2..],
        [Phase::RollingBack, Phase::Failed]
    );
}

#[test]
fn abort_during_timed_pause() {
    let tl = run(&canary(steps()), pass(), abort_at(100), 400);
    assert_eq!(tl.set_weights(), vec![0, 10, 50, 0]);
    assert_failed(&tl, "command");
}

#[test]
fn abort_with_slow_router_waits_for_zero_before_scale_down() {
    let cfg = SimConfig {
        router_lag: Duration::from_secs(12),
        ..SimConfig::default()
    };
    let mut sim = Simulator::new(canary(steps()), cfg).with_oracle(pass());
    let tl = sim.run(&abort_at(100), Duration::from_secs(400));
    assert_failed(&tl, "command");
    let zero_at = tl
        .effects()
        .filter(|(_, e)| **e == Effect::SetWeight { weight: 0 })
        .map(|(t, _)| t)
        .find(|t| *t >= Duration::from_secs(100))
        .unwrap();
    let down_at = tl
        .effects()
        .filter(|(_, e)| **e == Effect::ScaleCanary { up: false })
        .last()
        .unwrap()
        .0;
    assert!(down_at >= zero_at + Duration::from_secs(12));
}

#[test]
fn abort_at_indefinite_pause() {
    let spec = canary(vec![w(30), CanaryStep::pause_until_promoted(), w(60)]);
    let tl = run(&spec, pass(), abort_at(120), 400);
    assert_eq!(tl.set_weights(), vec![0, 30, 0]);
    assert_failed(&tl, "command");
}

#[test]
fn abort_during_promotion_is_ignored() {
    let cfg = SimConfig {
        primary_ready_delay: Duration::from_secs(30),
        ..SimConfig::default()
    };
    let mut spec = canary(vec![w(10)]);
    spec.analysis = None;
    let mut sim = Simulator::new(spec, cfg).with_oracle(pass());
    let script = Script::new()
        .revision(60, "v2")
        .command(85, "late", CommandAction::Abort);
    let tl = sim.run(&script, Duration::from_secs(400));
    assert_eq!(
        tl.first_time_in(Phase::Promoting),
        Some(Duration::from_secs(75))
    );
    assert_eq!(tl.final_phase(), Phase::Succeeded);
    assert!(tl.events().contains(&"CommandIgnored".to_string()));
    assert_eq!(
        tl.final_status.acknowledged_command.as_ref().unwrap().id,
        "late"
    );
}

#[test]
fn abort_of_idle_rollout_is_acknowledged_harmlessly() {
    let tl = run(
        &canary(steps()),
        pass(),
        Script::new().command(20, "idle", CommandAction::Abort),
        100,
    );
    assert_eq!(tl.final_phase(), Phase::Idle);
    assert!(tl.final_status.abort.is_none());
    assert_eq!(
        tl.final_status.acknowledged_command.as_ref().unwrap().id,
        "idle"
    );
    assert_eq!(tl.events(), vec!["Initialized", "CommandIgnored"]);
}

#[test]
fn alert_abort_records_the_alert() {
    let mut c = cmd("alert-1", CommandAction::Abort);
    c.alert_name = Some("HighErrorRate".to_string());
    c.fingerprint = Some("abc123".to_string());
    c.by = Some("alertmanager".to_string());
    let script = Script::new()
        .revision(30, "v2")
        .at(60, ScriptAction::Command(c));
    let tl = run(&canary(steps()), pass(), script, 300);
    assert_eq!(tl.set_weights(), vec![0, 10, 0]);
    assert_failed(&tl, "alert");
    let abort = tl.final_status.abort.as_ref().unwrap();
    assert_eq!(abort.alert_name.as_deref(), Some("HighErrorRate"));
    assert_eq!(abort.fingerprint.as_deref(), Some("abc123"));
    assert!(abort.reason.contains("HighErrorRate"));
    assert_eq!(
        tl.final_status.condition("Aborted").unwrap().reason,
        "AlertFiring"
    );
}

#[test]
fn analysis_failure_with_limit_zero_rolls_back_on_first_fail() {
    let oracle = ScriptedOracle::new(VerdictKind::Fail);
    let tl = run(
        &canary(steps()),
        oracle,
        Script::new().revision(30, "v2"),
        300,
    );
    assert_eq!(tl.set_weights(), vec![0, 10, 0]);
    assert_failed(&tl, "analysis");
    assert_eq!(tl.analysis_requests(), 1);
    let abort = tl.final_status.abort.as_ref().unwrap();
    assert!(abort.reason.contains("error-rate=0.25"), "{}", abort.reason);
    let m = &tl.final_status.analysis.metrics[0];
    assert_eq!((m.failed, m.last_verdict.as_deref()), (1, Some("Fail")));
}

fn with_failure_limit(limit: u32) -> RolloutSpec {
    let mut spec = shorthand(10, 30);
    spec.analysis.as_mut().unwrap().failure_limit = limit;
    spec
}

#[test]
fn analysis_failure_limit_two_tolerates_two_fails() {
    let oracle = ScriptedOracle::new(VerdictKind::Fail);
    let tl = run(
        &with_failure_limit(2),
        oracle,
        Script::new().revision(30, "v2"),
        400,
    );
    assert_eq!(tl.set_weights(), vec![0, 10, 0]);
    assert_failed(&tl, "analysis");
    assert_eq!(tl.final_status.analysis.failed_runs, 3);
    assert_eq!(tl.analysis_requests(), 3);
    assert_eq!(
        tl.events()
            .iter()
            .filter(|e| *e == "AnalysisFailed")
            .count(),
        2
    );
}

#[test]
fn failed_runs_never_reset_within_a_revision() {
    // Runs 0 and 2 fail; passes in between; limit 2 => the rollout still succeeds, and a third
    // fail anywhere would have rolled it back.
    let oracle = pass()
        .on_run(0, VerdictKind::Fail)
        .on_run(2, VerdictKind::Fail);
    let tl = run(
        &with_failure_limit(2),
        oracle.clone(),
        Script::new().revision(30, "v2"),
        900,
    );
    assert_eq!(tl.final_phase(), Phase::Succeeded);
    assert_eq!(tl.final_status.analysis.failed_runs, 2);
    assert_eq!(tl.set_weights(), vec![0, 10, 20, 30, 0]);
    let tl = run(
        &with_failure_limit(1),
        oracle,
        Script::new().revision(30, "v2"),
        900,
    );
    assert_failed(&tl, "analysis");
}

#[test]
fn inconclusive_past_limit_pauses_for_a_human() {
    let oracle = ScriptedOracle::new(VerdictKind::Inconclusive);
    let spec = canary(vec![w(10), CanaryStep::analyse(), w(50)]);
    let script = Script::new()
        .revision(30, "v2")
        .command(400, "ok", CommandAction::Promote);
    let tl = run(&spec, oracle, script, 600);
    // limit 3: the 4th inconclusive run pauses
    let paused = tl
        .entries
        .iter()
        .find(|e| e.phase == Phase::Paused)
        .unwrap();
    assert!(paused
        .message
        .as_deref()
        .unwrap()
        .starts_with("analysis inconclusive: error-rate"));
    assert!(paused
        .message
        .as_deref()
        .unwrap()
        .ends_with("waiting for a human"));
    let before_promote = tl
        .effects()
        .filter(|(t, e)| *t < Duration::from_secs(400) && matches!(e, Effect::RunAnalysis { .. }))
        .count();
    assert_eq!(before_promote, 4);
    assert_eq!(tl.set_weights(), vec![0, 10, 50, 0]);
    assert_eq!(tl.final_phase(), Phase::Succeeded);
    assert!(tl.events().contains(&"AnalysisInconclusive".to_string()));
}

#[test]
fn inconclusive_past_limit_fails_when_policy_is_fail() {
    let mut spec = canary(steps());
    spec.analysis.as_mut().unwrap().on_inconclusive = InconclusivePolicy::Fail;
    let oracle = ScriptedOracle::new(VerdictKind::Inconclusive);
    let tl = run(&spec, oracle, Script::new().revision(30, "v2"), 400);
    assert_eq!(tl.set_weights(), vec![0, 10, 0]);
    assert_failed(&tl, "analysis");
    assert_eq!(tl.analysis_requests(), 4);
    assert!(tl
        .final_status
        .abort
        .as_ref()
        .unwrap()
        .reason
        .contains("inconclusive"));
}

#[test]
fn errors_pause_and_never_roll_back() {
    let oracle = ScriptedOracle::new(VerdictKind::Error);
    let script = Script::new()
        .revision(30, "v2")
        .command(400, "go-on", CommandAction::Resume);
    // `onErrors: pause` (a human decides); the default `resume` is in core_error_hold.rs.
    let mut spec = canary(steps());
    spec.analysis.as_mut().unwrap().on_errors = sluice_crds::ErrorPolicy::Pause;
    let tl = run(&spec, oracle, script, 900);
    assert!(!tl.phases().contains(&Phase::RollingBack));
    assert!(!tl.phases().contains(&Phase::Failed));
    assert_eq!(tl.final_phase(), Phase::Paused);
    assert!(tl
        .final_status
        .message
        .as_deref()
        .unwrap()
        .starts_with("analysis errors"));
    // 4 runs to the first hold, resume, 4 more runs to the second.
    assert_eq!(tl.analysis_requests(), 8);
    assert_eq!(tl.set_weights(), vec![0, 10]);
}

#[test]
fn canary_never_ready_fails_at_the_progress_deadline() {
    let script = Script::new()
        .at(0, ScriptAction::CanaryReadyDelay(Duration::MAX))
        .revision(30, "v2");
    let tl = run(&canary(steps()), pass(), script, 400);
    assert_eq!(tl.set_weights(), vec![0]);
    assert_failed(&tl, "deadline");
    // progressDeadlineSeconds = 120, counted from the start at 30s
    assert_eq!(
        tl.first_time_in(Phase::Failed),
        Some(Duration::from_secs(150))
    );
}

#[test]
fn stale_revision_command_is_acknowledged_and_ignored() {
    let mut c = cmd("old", CommandAction::Abort);
    c.revision = Some("v0".to_string());
    let script = Script::new()
        .revision(30, "v2")
        .at(60, ScriptAction::Command(c));
    let tl = run(&canary(steps()), pass(), script, 600);
    assert_eq!(tl.final_phase(), Phase::Succeeded);
    assert_eq!(tl.set_weights(), vec![0, 10, 50, 0]);
    assert_eq!(
        tl.final_status.acknowledged_command.as_ref().unwrap().id,
        "old"
    );
    assert_eq!(
        tl.events()
            .iter()
            .filter(|e| *e == "CommandIgnored")
            .count(),
        1
    );
}

#[test]
fn matching_revision_command_is_applied() {
    let mut c = cmd("mine", CommandAction::Abort);
    c.revision = Some("v2".to_string());
    let script = Script::new()
        .revision(30, "v2")
        .at(60, ScriptAction::Command(c));
    let tl = run(&canary(steps()), pass(), script, 300);
    assert_failed(&tl, "command");
}

#[test]
fn a_command_is_applied_once_although_it_stays_visible() {
    let spec = canary(vec![
        w(10),
        CanaryStep::pause_until_promoted(),
        w(20),
        CanaryStep::pause_until_promoted(),
        w(30),
    ]);
    let script = Script::new()
        .revision(30, "v2")
        .command(60, "p1", CommandAction::Promote);
    let tl = run(&spec, pass(), script, 600);
    assert_eq!(tl.set_weights(), vec![0, 10, 20]);
    assert_eq!(tl.final_phase(), Phase::Paused);
    assert_eq!(tl.final_status.current_step, 3);
    assert_eq!(
        tl.events()
            .iter()
            .filter(|e| *e == "RolloutPromoted")
            .count(),
        1
    );
}

#[test]
fn pause_and_resume_commands_hold_and_release() {
    let script = Script::new()
        .revision(30, "v2")
        .command(50, "hold", CommandAction::Pause)
        .command(300, "go", CommandAction::Resume);
    let tl = run(&canary(steps()), pass(), script, 700);
    let held: Vec<_> = tl
        .entries
        .iter()
        .filter(|e| e.offset >= Duration::from_secs(50) && e.offset < Duration::from_secs(300))
        .collect();
    assert!(held
        .iter()
        .all(|e| e.phase == Phase::Paused && e.router_weight == Some(10)));
    assert!(held.iter().all(|e| !e
        .effects
        .iter()
        .any(|x| matches!(x, Effect::RunAnalysis { .. } | Effect::SetWeight { .. }))));
    assert_eq!(tl.set_weights(), vec![0, 10, 50, 0]);
    assert_eq!(tl.final_phase(), Phase::Succeeded);
}

#[test]
fn failed_revision_is_not_retried_until_a_new_one_appears() {
    let oracle = pass().for_revision("v2", VerdictKind::Fail);
    let script = Script::new().revision(30, "v2").revision(400, "v3");
    let tl = run(&canary(steps()), oracle, script, 900);
    let starts = tl
        .events()
        .iter()
        .filter(|e| *e == "RolloutStarted")
        .count();
    assert_eq!(starts, 2);
    let failed_span: Vec<_> = tl
        .entries
        .iter()
        .filter(|e| e.offset > Duration::from_secs(100) && e.offset < Duration::from_secs(400))
        .collect();
    assert!(failed_span
        .iter()
        .all(|e| e.phase == Phase::Failed && e.effects.is_empty()));
    assert_eq!(tl.set_weights(), vec![0, 10, 0, 10, 50, 0]);
    assert_eq!(tl.final_phase(), Phase::Succeeded);
    assert_eq!(tl.final_status.stable_revision.as_deref(), Some("v3"));
    assert!(tl.final_status.abort.is_none());
}

#[test]
fn abort_after_the_watch_window_is_ignored() {
    let mut spec = canary(vec![w(50)]);
    spec.analysis = None;
    spec.post_promotion_watch_seconds = 60;
    let script = Script::new()
        .revision(30, "v2")
        .command(300, "late", CommandAction::Abort);
    let tl = run(&spec, pass(), script, 400);
    assert_eq!(tl.final_phase(), Phase::Succeeded);
    assert!(tl.final_status.abort.is_none());
    assert!(tl.events().contains(&"CommandIgnored".to_string()));
}

#[test]
fn scripted_fail_from_a_time_on() {
    let oracle = pass().rule(None, When::FromTime(at(120)), VerdictKind::Fail);
    let tl = run(
        &shorthand(10, 50),
        oracle,
        Script::new().revision(30, "v2"),
        600,
    );
    assert_failed(&tl, "analysis");
    assert_eq!(tl.set_weights(), vec![0, 10, 20, 30, 0]);
}

#[test]
fn abort_while_paused_by_command() {
    let script = Script::new()
        .revision(30, "v2")
        .command(50, "hold", CommandAction::Pause)
        .command(120, "stop", CommandAction::Abort);
    let tl = run(&canary(steps()), pass(), script, 300);
    assert_eq!(tl.set_weights(), vec![0, 10, 0]);
    assert_failed(&tl, "command");
    assert_eq!(
        tl.first_time_in(Phase::RollingBack),
        Some(Duration::from_secs(120))
    );
}

#[test]
fn resume_does_not_release_an_indefinite_pause_step() {
    let spec = canary(vec![w(10), CanaryStep::pause_until_promoted(), w(30)]);
    let script = Script::new()
        .revision(30, "v2")
        .command(100, "r", CommandAction::Resume);
    let tl = run(&spec, pass(), script, 300);
    assert_eq!(tl.final_phase(), Phase::Paused);
    assert_eq!(tl.set_weights(), vec![0, 10]);
    assert_eq!(tl.final_status.current_step, 1);
}
