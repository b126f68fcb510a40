//! Revert after promotion: an abort inside `postPromotionWatchSeconds` puts the primary back on
//! the previous stable revision, waits for it, then fails the promoted revision.
mod core_support;

use std::time::Duration;

use core_support::*;
use sluice_controller::core::{step, Effect, EventType};
use sluice_controller::sim::{Script, ScriptAction, Timeline};
use sluice_crds::{CommandAction, Phase, RolloutSpec, RolloutStatus};

fn spec(watch: i64) -> RolloutSpec {
    let mut spec = canary(vec![w(50)]);
    spec.analysis = None;
    spec.post_promotion_watch_seconds = watch;
    spec
}

/// An Alertmanager abort command.
fn alert() -> ScriptAction {
    let mut c = cmd("am-1", CommandAction::Abort);
    c.alert_name = Some("HighErrorRate".into());
    c.fingerprint = Some("fp1".into());
    ScriptAction::Command(c)
}

/// Effects (events as their reasons) from `from` seconds on, in order.
fn effects_from(tl: &Timeline, from: u64) -> Vec<String> {
    tl.effects()
        .filter(|(t, _)| *t >= Duration::from_secs(from))
        .map(|(_, e)| match e {
            Effect::Event { reason, .. } => format!("Event {reason}"),
            other => format!("{other:?}"),
        })
        .collect()
}

fn promote_then_alert(
    watch: i64,
    alert_secs: u64,
    until: u64,
) -> (Timeline, sluice_controller::sim::Simulator) {
    let script = Script::new().revision(30, "v2").at(alert_secs, alert());
    let mut sim = sim(&spec(watch), pass());
    let tl = sim.run(&script, Duration::from_secs(until));
    (tl, sim)
}

#[test]
fn alert_in_the_watch_window_reverts_the_primary_exactly_once() {
    let (tl, sim) = promote_then_alert(300, 200, 400);
    assert_eq!(tl.final_phase(), Phase::Failed);
    assert_eq!(
        effects_from(&tl, 200),
        vec![
            "Event RevertStarted",
            r#"RevertPrimary { revision: "v1" }"#,
            // Primary becomes ready 10 s later; ScaleCanary repeats idempotently (already 0).
            "ScaleCanary { up: false }",
            "Event Reverted",
        ]
    );
    let phases = tl.phases();
    let n = phases.len();
    assert_eq!(
        &phases[n - 3..],
        &[Phase::Succeeded, Phase::RollingBack, Phase::Failed]
    );
    assert_eq!(
        tl.first_time_in(Phase::Failed),
        Some(Duration::from_secs(210))
    );
    let st = &tl.final_status;
    assert_eq!(st.stable_revision.as_deref(), Some("v1"));
    assert_eq!(st.previous_stable_revision, None);
    assert_eq!(st.canary_weight, 0);
    let abort = st.abort.as_ref().unwrap();
    assert_eq!(abort.source, "alert");
    assert_eq!(abort.revision.as_deref(), Some("v2"));
    assert_eq!(abort.alert_name.as_deref(), Some("HighErrorRate"));
    assert_eq!(abort.fingerprint.as_deref(), Some("fp1"));
    assert_eq!(
        abort.reason,
        "reverted to v1 after promotion: alert HighErrorRate firing"
    );
    let aborted = st.condition("Aborted").unwrap();
    assert_eq!(aborted.status, "True");
    assert_eq!(aborted.reason, "AlertFiring");
    assert_eq!(st.condition("Promoted").unwrap().reason, "Reverted");
    assert_eq!(st.condition("Ready").unwrap().status, "True");
    // The world: primary back on v1, target still on v2 at zero replicas, router at 0.
    assert_eq!(sim.world.primary.revision.as_deref(), Some("v1"));
    assert_eq!(sim.world.primary_previous.as_deref(), Some("v2"));
    assert_eq!(sim.world.target.revision.as_deref(), Some("v2"));
    assert_eq!(sim.world.target.replicas, 0);
    assert_eq!(sim.world.router.weight, Some(0));
    assert_eq!(sim.world.revert_errors, 0);
    assert_eq!(tl.set_weights(), vec![0, 50, 0]);
    // The failed revision is not retried while the target keeps it.
    assert!(tl
        .entries
        .iter()
        .filter(|e| e.offset > Duration::from_secs(210))
        .all(|e| e.phase == Phase::Failed && e.effects.is_empty()));
}

#[test]
fn abort_command_reverts_and_a_new_revision_rolls_out_from_the_reverted_primary() {
    let script = Script::new()
        .revision(30, "v2")
        .command(200, "stop", CommandAction::Abort)
        .revision(300, "v3");
    let mut sim = sim(&spec(300), pass());
    let tl = sim.run(&script, Duration::from_secs(600));
    let at_300 = tl
        .entries
        .iter()
        .find(|e| e.offset >= Duration::from_secs(220))
        .unwrap();
    assert_eq!(at_300.phase, Phase::Failed);
    assert_eq!(tl.final_phase(), Phase::Succeeded);
    let st = &tl.final_status;
    assert_eq!(st.stable_revision.as_deref(), Some("v3"));
    assert_eq!(st.previous_stable_revision.as_deref(), Some("v1"));
    assert!(st.abort.is_none());
    assert_eq!(sim.world.primary.revision.as_deref(), Some("v3"));
    let reasons = tl.events();
    let tail: Vec<_> = reasons
        .iter()
        .skip_while(|r| *r != "RevertStarted")
        .map(String::as_str)
        .collect();
    assert_eq!(
        tail,
        vec![
            "RevertStarted",
            "Reverted",
            "RolloutStarted",
            "Promoting",
            "Promoted"
        ]
    );
}

#[test]
fn alert_after_the_window_does_not_revert() {
    let (tl, sim) = promote_then_alert(60, 300, 400);
    assert_eq!(tl.final_phase(), Phase::Succeeded);
    assert_eq!(sim.world.primary.revision.as_deref(), Some("v2"));
    assert!(!tl
        .effects()
        .any(|(_, e)| matches!(e, Effect::RevertPrimary { .. })));
}

/// The status right after the abort (RollingBack, reverting to v1).
fn reverting_status() -> (RolloutSpec, RolloutStatus) {
    let (tl, _) = promote_then_alert(300, 200, 200);
    assert_eq!(tl.final_phase(), Phase::RollingBack);
    (spec(300), tl.final_status)
}

#[test]
fn revert_waits_for_the_primary_and_repeats_only_idempotent_effects() {
    let (spec, st) = reverting_status();
    let now = at(201);
    // Primary still on v2: ask again, no events, same status.
    let o = obs(scaled_down("v2"), ready("v2"), Some(0));
    let d = step(&spec, &st, &o, now);
    assert_eq!(
        d.effects,
        vec![Effect::RevertPrimary {
            revision: "v1".into()
        }]
    );
    assert_eq!(d.status.phase, Phase::RollingBack);
    assert_eq!(d.requeue_after, Some(Duration::from_secs(5)));
    assert_eq!(step(&spec, &d.status, &o, now), d);
    // Primary on v1 but not ready yet: wait.
    let mut p = ready("v1");
    p.ready = false;
    let d2 = step(&spec, &d.status, &obs(scaled_down("v2"), p, Some(0)), now);
    assert!(d2.effects.is_empty(), "{:?}", d2.effects);
    assert_eq!(d2.status.phase, Phase::RollingBack);
    assert!(d2
        .status
        .message
        .unwrap()
        .contains("waiting for the primary"));
}

#[test]
fn a_restarted_controller_finishes_the_revert_from_status() {
    let (spec, st) = reverting_status();
    // Round-trip through JSON as a status subresource would.
    let st: RolloutStatus = serde_json::from_value(serde_json::to_value(&st).unwrap()).unwrap();
    let d = step(
        &spec,
        &st,
        &obs(scaled_down("v2"), ready("v1"), Some(0)),
        at(400),
    );
    assert_eq!(d.status.phase, Phase::Failed);
    assert_eq!(d.status.stable_revision.as_deref(), Some("v1"));
    assert_eq!(d.effects[0], Effect::ScaleCanary { up: false });
    assert!(matches!(
        &d.effects[1],
        Effect::Event { type_: EventType::Warning, reason, .. } if reason == "Reverted"
    ));
}

#[test]
fn router_drift_during_the_revert_is_repaired_before_failing() {
    let (spec, st) = reverting_status();
    let o = obs(scaled_down("v2"), ready("v1"), Some(30));
    let d = step(&spec, &st, &o, at(205));
    assert_eq!(d.effects, vec![Effect::SetWeight { weight: 0 }]);
    assert_eq!(d.status.phase, Phase::RollingBack);
}

#[test]
fn commands_during_the_revert_are_ignored() {
    let (spec, st) = reverting_status();
    let mut o = obs(scaled_down("v2"), ready("v2"), Some(0));
    o.command = Some(cmd("again", CommandAction::Abort));
    let d = step(&spec, &st, &o, at(202));
    assert_eq!(event_reasons(&d.effects), vec!["CommandIgnored"]);
    assert!(d.effects.contains(&Effect::RevertPrimary {
        revision: "v1".into()
    }));
}
