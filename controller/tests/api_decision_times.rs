//! Decision times in the API view and `sluice status` (issue 17): when the step began, when
//! Promoting / RollingBack began and why, and the Progressing condition's reason at those moments.
mod core_support;

use core_support::*;
use sluice_controller::api::view::RolloutView;
use sluice_controller::cli::format::status_text;
use sluice_controller::core::VerdictKind;
use sluice_controller::sim::{Script, ScriptedOracle, Simulator, When};
use sluice_crds::{CanaryStep, CommandAction, Phase, Rollout, RolloutSpec, RolloutStatus};

fn view(spec: &RolloutSpec, status: &RolloutStatus) -> RolloutView {
    let mut r = Rollout::new("app", spec.clone());
    r.metadata.namespace = Some("default".to_string());
    r.status = Some(status.clone());
    RolloutView::from_rollout(&r)
}

fn steps() -> Vec<CanaryStep> {
    vec![
        w(10),
        CanaryStep::pause_for("60s"),
        w(50),
        CanaryStep::pause_for("60s"),
    ]
}

#[test]
fn promoting_records_when_and_why_and_the_view_and_status_show_it() {
    let spec = canary(steps());
    let mut sim = sim(&spec, pass());
    let tl = sim.run(
        &Script::new().revision(30, "v2"),
        std::time::Duration::from_secs(600),
    );
    let promoting = tl.first_time_in(Phase::Promoting).unwrap().as_secs() as i64;
    let entry = tl
        .entries
        .iter()
        .find(|e| e.phase == Phase::Promoting)
        .unwrap();
    assert!(entry
        .message
        .as_deref()
        .unwrap()
        .contains("all 4 steps completed"));
    let st = &tl.final_status;
    assert_eq!(st.promotion_started_at, Some(at(promoting)));
    assert_eq!(
        st.promotion_reason.as_deref(),
        Some("all 4 steps completed")
    );
    let v = view(&spec, st);
    let json = serde_json::to_value(&v).unwrap();
    assert_eq!(
        json["promotionStartedAt"],
        serde_json::to_value(at(promoting)).unwrap()
    );
    assert_eq!(json["promotionReason"], "all 4 steps completed");
    assert!(json["stepStartedAt"].is_string(), "{json}");
    let text = status_text(&v);
    assert!(
        text.contains(&format!(
            "promoting since {} (all 4 steps completed)",
            at(promoting).format("%H:%M:%S")
        )),
        "{text}"
    );
}

#[test]
fn the_view_carries_the_current_steps_start_while_progressing() {
    let spec = canary(steps());
    let mut sim = sim(&spec, pass());
    // Stop in the second pause: 10% at 40, pause from 40 until 100.
    let tl = sim.run(
        &Script::new().revision(30, "v2"),
        std::time::Duration::from_secs(70),
    );
    let st = &tl.final_status;
    assert_eq!(st.phase, Phase::Progressing);
    let v = view(&spec, st);
    assert_eq!(v.step_started_at, st.step_started_at);
    assert!(v.step_started_at.is_some());
    let text = status_text(&v);
    let since = st.step_started_at.unwrap().format("%H:%M:%S").to_string();
    assert!(text.contains(&format!("step since {since}")), "{text}");
    assert!(v.promotion_started_at.is_none());
}

#[test]
fn promote_full_is_the_promotion_reason() {
    let spec = canary(steps());
    let script =
        Script::new()
            .revision(30, "v2")
            .command(60, "ship-it", CommandAction::PromoteFull);
    let tl = run(&spec, pass(), script, 600);
    let st = &tl.final_status;
    assert_eq!(st.promotion_started_at, Some(at(60)));
    assert_eq!(
        st.promotion_reason.as_deref(),
        Some("promoteFull command ship-it")
    );
}

#[test]
fn rolling_back_records_when_and_why_in_the_view() {
    let spec = canary(vec![w(10), CanaryStep::analyse(), w(50)]);
    let oracle =
        ScriptedOracle::new(VerdictKind::Pass).rule(None, When::FromRun(0), VerdictKind::Fail);
    let tl = run(&spec, oracle, Script::new().revision(30, "v2"), 600);
    let st = &tl.final_status;
    let abort = st.abort.clone().unwrap();
    // The first failed run: 10% routed at 45 (read on the next 5 s tick), interval 30 s.
    assert_eq!(abort.at, at(75));
    // Rolled back once the router read 0 (the next tick): after the decision.
    assert!(st.condition("Aborted").unwrap().last_transition_time > abort.at);
    let v = view(&spec, st);
    assert_eq!(v.rollback_started_at, Some(abort.at));
    assert_eq!(
        v.rollback_reason.as_deref(),
        Some(format!("analysis: {}", abort.reason).as_str())
    );
    assert!(v.promotion_started_at.is_none());
    let text = status_text(&v);
    assert!(
        text.contains(&format!("at {}", abort.at.format("%H:%M:%S"))),
        "{text}"
    );
}

#[test]
fn a_new_revision_clears_the_previous_promotion_decision() {
    let spec = canary(steps());
    let mut sim = Simulator::new(spec.clone(), Default::default());
    let tl = sim.run(
        &Script::new().revision(30, "v2").revision(400, "v3"),
        std::time::Duration::from_secs(420),
    );
    let st = &tl.final_status;
    assert_eq!(st.canary_revision.as_deref(), Some("v3"));
    assert!(st.promoted_at.is_some());
    assert!(st.promotion_started_at.is_none());
    assert!(st.promotion_reason.is_none());
    let text = status_text(&view(&spec, st));
    assert!(!text.contains("promoted "), "{text}");
}
