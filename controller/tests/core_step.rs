//! `core::step` called directly: first sight, idempotency, conditions, requeue, analysis
//! bookkeeping.
mod core_support;

use std::time::Duration;

use core_support::*;
use sluice_controller::core::{step, Effect, Observations, VerdictKind, WorkloadState};
use sluice_crds::{CanaryStep, CommandAction, Phase, RolloutSpec, RolloutStatus};

fn spec() -> RolloutSpec {
    canary(vec![
        w(10),
        CanaryStep::analyse(),
        w(50),
        CanaryStep::pause_for("60s"),
    ])
}

/// An Idle rollout of v1, stable since t0.
fn idle() -> RolloutStatus {
    let o = obs(scaled_down("v1"), ready("v1"), Some(0));
    let d = step(&spec(), &RolloutStatus::default(), &o, t0());
    assert_eq!(d.status.phase, Phase::Idle);
    d.status
}

/// A Progressing rollout of v2 at step `step_idx`.
fn progressing(step_idx: u32, weight: i32) -> RolloutStatus {
    let mut st = idle();
    let d = step(
        &spec(),
        &st,
        &obs(ready("v2"), ready("v1"), Some(0)),
        at(10),
    );
    st = d.status;
    st.current_step = step_idx;
    st.canary_weight = weight;
    st
}

#[test]
fn first_sight_without_target_waits_with_a_message() {
    let o = obs(WorkloadState::default(), WorkloadState::default(), None);
    let d = step(&spec(), &RolloutStatus::default(), &o, t0());
    assert_eq!(d.status.phase, Phase::Initializing);
    assert!(d.effects.is_empty());
    assert!(d
        .status
        .message
        .as_deref()
        .unwrap()
        .contains("target Deployment app"));
    assert_eq!(d.requeue_after, Some(Duration::from_secs(5)));
}

#[test]
fn first_sight_creates_primary_and_routes_zero() {
    let o = obs(ready("v1"), WorkloadState::default(), None);
    let d = step(&spec(), &RolloutStatus::default(), &o, t0());
    assert_eq!(d.status.phase, Phase::Initializing);
    assert_eq!(
        d.effects,
        vec![
            Effect::ApplyPrimary {
                revision: "v1".into()
            },
            Effect::SetWeight { weight: 0 }
        ]
    );
    // Primary ready, router at 0: idle, the target is scaled down only now.
    let d2 = step(
        &spec(),
        &d.status,
        &obs(ready("v1"), ready("v1"), Some(0)),
        at(5),
    );
    assert_eq!(d2.status.phase, Phase::Idle);
    assert_eq!(d2.status.stable_revision.as_deref(), Some("v1"));
    assert_eq!(d2.effects[0], Effect::ScaleCanary { up: false });
    assert_eq!(d2.status.condition("Ready").unwrap().status, "True");
    assert_eq!(d2.requeue_after, None);
}

#[test]
fn start_sets_revision_counters_and_conditions() {
    let d = step(
        &spec(),
        &idle(),
        &obs(scaled_down("v2"), ready("v1"), Some(0)),
        at(10),
    );
    let st = &d.status;
    assert_eq!(st.phase, Phase::Progressing);
    assert_eq!(st.canary_revision.as_deref(), Some("v2"));
    assert_eq!(st.started_at, Some(at(10)));
    assert_eq!(st.current_step, 0);
    assert_eq!(d.effects[0], Effect::ScaleCanary { up: true });
    assert_eq!(event_reasons(&d.effects), vec!["RolloutStarted"]);
    assert_eq!(st.condition("Progressing").unwrap().status, "True");
    assert_eq!(st.condition("Promoted").unwrap().status, "False");
    assert!(d.requeue_after.unwrap() <= Duration::from_secs(5));
}

#[test]
fn stepping_again_with_the_same_observations_changes_nothing() {
    let s = spec();
    let cases: Vec<(RolloutStatus, Observations, i64)> = vec![
        (
            RolloutStatus::default(),
            obs(ready("v1"), WorkloadState::default(), None),
            0,
        ),
        (idle(), obs(scaled_down("v2"), ready("v1"), Some(0)), 10),
        (
            progressing(0, 0),
            obs(ready("v2"), ready("v1"), Some(0)),
            20,
        ),
        (
            progressing(0, 10),
            obs(ready("v2"), ready("v1"), Some(10)),
            20,
        ),
        (
            progressing(1, 10),
            obs(ready("v2"), ready("v1"), Some(10)),
            100,
        ),
        (
            progressing(3, 50),
            obs(ready("v2"), ready("v1"), Some(50)),
            100,
        ),
        (
            progressing(4, 50),
            obs(ready("v2"), ready("v2"), Some(50)),
            100,
        ),
    ];
    for (i, (st, mut o, t)) in cases.into_iter().enumerate() {
        if i == 4 {
            o.analysis = Some(run_of("v2", at(t), &[VerdictKind::Pass]));
        }
        let d1 = step(&s, &st, &o, at(t));
        let d2 = step(&s, &d1.status, &o, at(t));
        assert_eq!(d2.status, d1.status, "case {i}");
        assert!(
            event_reasons(&d2.effects).is_empty(),
            "case {i}: {:?}",
            d2.effects
        );
    }
}

#[test]
fn condition_transition_time_changes_only_with_status() {
    let st = progressing(1, 10);
    let o = obs(ready("v2"), ready("v1"), Some(10));
    let d = step(&spec(), &st, &o, at(60));
    let d2 = step(&spec(), &d.status, &o, at(90));
    let t1 = d
        .status
        .condition("Progressing")
        .unwrap()
        .last_transition_time;
    let t2 = d2
        .status
        .condition("Progressing")
        .unwrap()
        .last_transition_time;
    assert_eq!(t1, t2);
    assert_eq!(t1, at(10));
}

#[test]
fn observed_generation_comes_from_observations() {
    let mut o = obs(scaled_down("v1"), ready("v1"), Some(0));
    o.generation = Some(7);
    let d = step(&spec(), &idle(), &o, at(1));
    assert_eq!(d.status.observed_generation, Some(7));
}

#[test]
fn timed_pause_requeues_at_its_end() {
    let mut st = progressing(3, 50);
    st.step_started_at = Some(at(100));
    st.analysis.last_run_at = Some(at(150));
    let d = step(
        &spec(),
        &st,
        &obs(ready("v2"), ready("v1"), Some(50)),
        at(130),
    );
    assert_eq!(d.status.current_step, 3);
    // pause ends at 160 (30s), next background analysis at 180 (50s)
    assert_eq!(d.requeue_after, Some(Duration::from_secs(30)));
    let d = step(
        &spec(),
        &st,
        &obs(ready("v2"), ready("v1"), Some(50)),
        at(160),
    );
    assert_eq!(d.status.phase, Phase::Promoting);
}

#[test]
fn analysis_run_updates_metric_records_and_sequential_state() {
    let st = progressing(1, 10);
    let mut o = obs(ready("v2"), ready("v1"), Some(10));
    let mut run = run_of("v2", at(50), &[VerdictKind::Pending, VerdictKind::Pass]);
    run.metrics[0].sequential_state = Some(serde_json::json!({"llr": 1.5}));
    o.analysis = Some(run);
    let d = step(&spec(), &st, &o, at(50));
    let a = &d.status.analysis;
    assert_eq!(a.runs, 1);
    assert_eq!(a.last_run_at, Some(at(50)));
    // Pending: not a pass, no counter
    assert_eq!(a.consecutive_passes, 0);
    assert_eq!(d.status.current_step, 1);
    let m0 = &a.metrics[0];
    assert_eq!(m0.last_verdict.as_deref(), Some("Pending"));
    assert_eq!(m0.sequential_state, Some(serde_json::json!({"llr": 1.5})));
    assert_eq!(
        (m0.passed, m0.failed, m0.inconclusive, m0.errors),
        (0, 0, 0, 0)
    );
    let m1 = &a.metrics[1];
    assert_eq!(
        (m1.passed, m1.last_value, m1.last_time),
        (1, Some(1.0), Some(at(50)))
    );
}

#[test]
fn a_run_for_another_revision_or_an_old_run_is_ignored() {
    let st = progressing(1, 10);
    let mut o = obs(ready("v2"), ready("v1"), Some(10));
    o.analysis = Some(run_of("v1", at(50), &[VerdictKind::Fail]));
    let d = step(&spec(), &st, &o, at(50));
    assert_eq!(d.status.analysis.runs, 0);
    assert_eq!(d.status.phase, Phase::Progressing);
    let mut st2 = st.clone();
    st2.analysis.last_run_at = Some(at(60));
    o.analysis = Some(run_of("v2", at(50), &[VerdictKind::Fail]));
    let d = step(&spec(), &st2, &o, at(70));
    assert_eq!(d.status.analysis.failed_runs, 0);
}

#[test]
fn analysis_step_requests_a_run_each_interval() {
    let mut st = progressing(1, 10);
    st.step_started_at = Some(at(20));
    let o = obs(ready("v2"), ready("v1"), Some(10));
    let d = step(&spec(), &st, &o, at(40));
    assert!(!d
        .effects
        .iter()
        .any(|e| matches!(e, Effect::RunAnalysis { .. })));
    assert_eq!(d.requeue_after, Some(Duration::from_secs(10)));
    let d = step(&spec(), &st, &o, at(50));
    assert_eq!(
        d.effects,
        vec![Effect::RunAnalysis {
            revision: "v2".into()
        }]
    );
}

#[test]
fn no_background_analysis_without_traffic() {
    let spec = canary(vec![w(0), CanaryStep::pause_for("10m")]);
    let mut st = progressing(1, 0);
    st.step_started_at = Some(at(20));
    let d = step(&spec, &st, &obs(ready("v2"), ready("v1"), Some(0)), at(200));
    assert!(d.effects.is_empty());
}

#[test]
fn commands_on_idle_are_acknowledged_once() {
    let mut o = obs(scaled_down("v1"), ready("v1"), Some(0));
    o.command = Some(cmd("c1", CommandAction::Promote));
    let d = step(&spec(), &idle(), &o, at(3));
    assert_eq!(d.status.phase, Phase::Idle);
    let ack = d.status.acknowledged_command.clone().unwrap();
    assert_eq!(
        (ack.id.as_str(), ack.action.as_str(), ack.at),
        ("c1", "promote", at(3))
    );
    assert_eq!(event_reasons(&d.effects), vec!["CommandIgnored"]);
    let d2 = step(&spec(), &d.status, &o, at(4));
    assert!(d2.effects.is_empty());
    assert_eq!(d2.status, d.status);
}

#[test]
fn abort_sets_weight_zero_first_and_scales_down_only_at_zero() {
    let st = progressing(3, 50);
    let mut o = obs(ready("v2"), ready("v1"), Some(50));
    o.command = Some(cmd("stop", CommandAction::Abort));
    let d = step(&spec(), &st, &o, at(100));
    assert_eq!(d.status.phase, Phase::RollingBack);
    assert_eq!(d.effects[0], Effect::SetWeight { weight: 0 });
    assert!(!d.effects.contains(&Effect::ScaleCanary { up: false }));
    // Router still at 50: keep asking for 0, never scale down.
    let d2 = step(&spec(), &d.status, &o, at(105));
    assert_eq!(d2.effects, vec![Effect::SetWeight { weight: 0 }]);
    o.router_weight = Some(0);
    let d3 = step(&spec(), &d2.status, &o, at(110));
    assert_eq!(d3.status.phase, Phase::Failed);
    assert_eq!(d3.effects[0], Effect::ScaleCanary { up: false });
    assert_eq!(event_reasons(&d3.effects), vec!["RolledBack"]);
    assert_eq!(d3.requeue_after, None);
}

#[test]
fn idle_repairs_a_drifted_router_weight() {
    let d = step(
        &spec(),
        &idle(),
        &obs(scaled_down("v1"), ready("v1"), Some(30)),
        at(50),
    );
    assert_eq!(d.effects, vec![Effect::SetWeight { weight: 0 }]);
    assert_eq!(d.status.phase, Phase::Idle);
    assert!(event_reasons(&d.effects).is_empty());
}

#[test]
fn commands_during_rollback_are_ignored() {
    let st = progressing(3, 50);
    let mut o = obs(ready("v2"), ready("v1"), Some(50));
    o.command = Some(cmd("stop", CommandAction::Abort));
    let d = step(&spec(), &st, &o, at(100));
    o.command = Some(cmd("go", CommandAction::PromoteFull));
    let d2 = step(&spec(), &d.status, &o, at(101));
    assert_eq!(d2.status.phase, Phase::RollingBack);
    assert!(d2.effects.contains(&Effect::SetWeight { weight: 0 }));
    assert_eq!(event_reasons(&d2.effects), vec!["CommandIgnored"]);
    assert_eq!(d2.status.acknowledged_command.unwrap().id, "go");
}

#[test]
fn run_verdict_orders_fail_error_inconclusive_pending_pass() {
    use sluice_controller::core::run_verdict;
    use VerdictKind::*;
    let v = |ks: &[VerdictKind]| run_verdict(&run_of("v2", at(0), ks));
    assert_eq!(v(&[Pass, Fail, Error]), Fail);
    assert_eq!(v(&[Inconclusive, Error]), Error);
    assert_eq!(v(&[Pending, Inconclusive]), Inconclusive);
    assert_eq!(v(&[Pass, Pending]), Pending);
    assert_eq!(v(&[Pass, Pass]), Pass);
    assert_eq!(v(&[]), Inconclusive);
}
