//! Pure wait/command decisions shared by the API and the CLI.

mod api_support;

use api_support::rollout;
use chrono::{Duration, Utc};
use sluice_controller::api::outcome::check_command;
use sluice_controller::api::{RolloutView, WaitFor, WaitOutcome, WaitTracker};
use sluice_crds::{AbortInfo, CommandAction, Phase};

fn view(phase: Phase, canary: Option<&str>, stable: &str) -> RolloutView {
    let mut v = RolloutView::from_rollout(&rollout("ns", "app", phase, canary));
    v.stable_revision = Some(stable.to_string());
    v
}

#[test]
fn exit_codes_and_http_statuses_are_distinct() {
    use WaitOutcome::*;
    let all = [Promoted, RolledBack, Paused, Timeout, Superseded, Blocked];
    let codes: Vec<i32> = all.iter().map(|o| o.exit_code()).collect();
    assert_eq!(codes, [0, 2, 3, 4, 5, 6]);
    assert_eq!(Completed.exit_code(), 0);
    for o in all {
        assert_eq!(WaitOutcome::from_http_status(o.http_status()), Some(o));
    }
    assert_eq!(WaitOutcome::from_http_status(500), None);
}

#[test]
fn follows_its_revision_to_promotion() {
    let now = Utc::now();
    let mut t = WaitTracker::new(WaitFor::Promoted, Some("r2".into()));
    // Not yet picked up by the controller: keep waiting, not superseded.
    assert_eq!(t.observe(&view(Phase::Idle, None, "r1"), now), None);
    assert_eq!(
        t.observe(&view(Phase::Progressing, Some("r2"), "r1"), now),
        None
    );
    let done = t
        .observe(&view(Phase::Succeeded, Some("r2"), "r2"), now)
        .unwrap();
    assert_eq!(done.outcome, WaitOutcome::Promoted);
}

#[test]
fn promoting_counts_as_promoted_but_not_completed() {
    let now = Utc::now();
    let v = view(Phase::Promoting, Some("r2"), "r1");
    let mut p = WaitTracker::new(WaitFor::Promoted, Some("r2".into()));
    assert_eq!(p.observe(&v, now).unwrap().outcome, WaitOutcome::Promoted);
    let mut c = WaitTracker::new(WaitFor::Completed, Some("r2".into()));
    assert_eq!(c.observe(&v, now), None);
    // Completed waits out the post-promotion watch window.
    let mut done = view(Phase::Succeeded, Some("r2"), "r2");
    done.post_promotion_watch_seconds = 60;
    done.promoted_at = Some(now);
    assert_eq!(c.observe(&done, now), None);
    let later = c.observe(&done, now + Duration::seconds(61)).unwrap();
    assert_eq!(later.outcome, WaitOutcome::Completed);
}

#[test]
fn rollback_pause_and_supersede() {
    let now = Utc::now();
    let mut failed = view(Phase::Failed, Some("r2"), "r1");
    failed.abort = Some(AbortInfo {
        source: "analysis".into(),
        reason: "error rate 9%".into(),
        revision: Some("r2".into()),
        at: now,
        ..Default::default()
    });
    let mut t = WaitTracker::new(WaitFor::Promoted, Some("r2".into()));
    let r = t.observe(&failed, now).unwrap();
    assert_eq!(r.outcome, WaitOutcome::RolledBack);
    assert!(r.reason.contains("error rate 9%"));

    let mut t = WaitTracker::new(WaitFor::Promoted, None);
    let r = t
        .observe(&view(Phase::Paused, Some("r5"), "r1"), now)
        .unwrap();
    assert_eq!(r.outcome, WaitOutcome::Paused);
    assert_eq!(r.revision.as_deref(), Some("r5"));

    // Locked onto r2 at first sight, then r3 replaced it.
    let mut t = WaitTracker::new(WaitFor::Promoted, None);
    assert_eq!(
        t.observe(&view(Phase::Progressing, Some("r2"), "r1"), now),
        None
    );
    let r = t
        .observe(&view(Phase::Progressing, Some("r3"), "r1"), now)
        .unwrap();
    assert_eq!(r.outcome, WaitOutcome::Superseded);
    assert!(r.reason.contains("r3"));

    let timeout = t.timeout(Some(&view(Phase::Progressing, Some("r3"), "r1")));
    assert_eq!(timeout.outcome, WaitOutcome::Timeout);
    assert!(timeout.reason.contains("Progressing"));
}

/// A view as the API builds it: from the rollout (with `status.conditions`) plus the revision
/// the target has now.
fn view_with(
    phase: Phase,
    stable: &str,
    desired: Option<&str>,
    block: Option<(&str, &str)>,
) -> RolloutView {
    let mut r = rollout("ns", "app", phase, None);
    let st = r.status.get_or_insert_with(Default::default);
    st.stable_revision = Some(stable.to_string());
    if let Some((reason, msg)) = block {
        sluice_controller::core::conditions::set_blocked(st, reason, msg, Utc::now());
    }
    RolloutView::from_rollout(&r).with_desired(desired.map(str::to_string))
}

#[test]
fn idle_rollout_is_done_only_when_the_target_revision_is_stable() {
    let now = Utc::now();
    let mut t = WaitTracker::new(WaitFor::Promoted, None);
    let r = t
        .observe(&view_with(Phase::Idle, "r1", Some("r1"), None), now)
        .unwrap();
    assert_eq!(r.outcome, WaitOutcome::Promoted);
    assert_eq!(r.revision.as_deref(), Some("r1"));
    let mut t = WaitTracker::new(WaitFor::Promoted, None);
    assert_eq!(t.observe(&view(Phase::Initializing, None, "r1"), now), None);
}

#[test]
fn a_revision_that_was_not_rolled_out_is_never_promoted() {
    // The issue: canary.version v2, the router refuses its config, the rollout stays Idle on
    // v1. The old tracker said "promoted: nothing to roll out; stable revision v1", exit 0.
    let now = Utc::now();
    let idle = view_with(Phase::Idle, "v1", Some("v2"), None);
    let mut t = WaitTracker::new(WaitFor::Promoted, None);
    assert_eq!(
        t.observe(&idle, now),
        None,
        "v2 has not started: keep waiting"
    );
    let timeout = t.timeout(Some(&idle));
    assert_eq!(timeout.outcome, WaitOutcome::Timeout);
    assert_eq!(timeout.revision.as_deref(), Some("v2"));
    assert!(
        timeout.reason.contains("v2 has not started"),
        "{}",
        timeout.reason
    );

    // Blocked: reported once the block has lasted the grace period, with the reason.
    let blocked = view_with(
        Phase::Idle,
        "v1",
        Some("v2"),
        Some(("Blocked", "router: router config rejected by validation")),
    );
    let mut t = WaitTracker::new(WaitFor::Promoted, None)
        .with_blocked_grace(std::time::Duration::from_secs(30));
    assert_eq!(t.observe(&blocked, now), None);
    assert_eq!(t.observe(&blocked, now + Duration::seconds(10)), None);
    let r = t.observe(&blocked, now + Duration::seconds(31)).unwrap();
    assert_eq!(r.outcome, WaitOutcome::Blocked);
    assert_eq!(r.outcome.exit_code(), 6);
    assert!(r.reason.contains("v2 cannot be rolled out"), "{}", r.reason);
    assert!(r.reason.contains("router config rejected"), "{}", r.reason);

    // A block that clears restarts the clock.
    let mut t = WaitTracker::new(WaitFor::Promoted, None)
        .with_blocked_grace(std::time::Duration::from_secs(30));
    assert_eq!(t.observe(&blocked, now), None);
    assert_eq!(t.observe(&idle, now + Duration::seconds(20)), None);
    assert_eq!(t.observe(&blocked, now + Duration::seconds(40)), None);

    // An invalid spec/file ends the wait at once.
    let invalid = view_with(
        Phase::Idle,
        "v1",
        Some("v2"),
        Some(("InvalidSpec", "weight 150 > 100")),
    );
    let mut t = WaitTracker::new(WaitFor::Promoted, None);
    assert_eq!(
        t.observe(&invalid, now).unwrap().outcome,
        WaitOutcome::Blocked
    );

    // A block does not hide a revision that is already promoted.
    let stable_blocked = view_with(Phase::Idle, "v2", Some("v2"), Some(("Blocked", "x")));
    let mut t =
        WaitTracker::new(WaitFor::Promoted, None).with_blocked_grace(std::time::Duration::ZERO);
    assert_eq!(
        t.observe(&stable_blocked, now).unwrap().outcome,
        WaitOutcome::Promoted
    );
}

#[test]
fn a_server_that_cannot_tell_the_target_revision_is_not_guessed() {
    let now = Utc::now();
    let v = view_with(Phase::Idle, "r1", None, None);
    let mut t = WaitTracker::new(WaitFor::Promoted, None);
    assert_eq!(t.observe(&v, now), None);
    let r = t.timeout(Some(&v));
    assert_eq!(r.outcome, WaitOutcome::Timeout);
    assert!(r.reason.contains("--revision"), "{}", r.reason);
}

#[test]
fn resume_is_refused_at_a_pause_step_and_steps_count_from_one() {
    let now = Utc::now();
    let mut r = rollout("ns", "app", Phase::Paused, Some("r2"));
    let st = r.status.get_or_insert_with(Default::default);
    st.current_step = 1;
    st.set_condition(
        "Paused",
        true,
        "PauseStep",
        "step 2/3: paused until promoted",
        now,
    );
    let v = RolloutView::from_rollout(&r);
    let (kind, msg) = check_command(&v, CommandAction::Resume, None, now).unwrap_err();
    assert_eq!(kind, "not_applicable");
    assert!(msg.contains("only promote"), "{msg}");
    assert!(check_command(&v, CommandAction::Promote, None, now).is_ok());
    // A pause command is released by resume.
    let st = r.status.get_or_insert_with(Default::default);
    st.set_condition("Paused", true, "Command", "paused by x", now);
    let v = RolloutView::from_rollout(&r);
    assert!(check_command(&v, CommandAction::Resume, None, now).is_ok());
    // The old status printed "Step: 1/3" next to "step 2/3: paused until promoted".
    assert_eq!((v.step, v.total_steps), (1, 3));
    assert_eq!(v.step_display(), 2, "the 2nd step is under way at index 1");
}

#[test]
fn command_applicability() {
    let now = Utc::now();
    let prog = view(Phase::Progressing, Some("r2"), "r1");
    for a in [
        CommandAction::Promote,
        CommandAction::PromoteFull,
        CommandAction::Abort,
        CommandAction::Pause,
        CommandAction::Resume,
    ] {
        assert!(check_command(&prog, a, None, now).is_ok(), "{a:?}");
        assert!(check_command(&prog, a, Some("r2"), now).is_ok());
        assert_eq!(
            check_command(&prog, a, Some("r9"), now).unwrap_err().0,
            "revision_mismatch"
        );
    }
    for busy in [Phase::Promoting, Phase::RollingBack] {
        let v = view(busy, Some("r2"), "r1");
        assert_eq!(
            check_command(&v, CommandAction::Abort, None, now)
                .unwrap_err()
                .0,
            "not_applicable",
            "the state machine ignores commands while {busy}"
        );
    }
    let idle = view(Phase::Idle, None, "r1");
    assert_eq!(
        check_command(&idle, CommandAction::Abort, None, now)
            .unwrap_err()
            .0,
        "not_applicable"
    );
    // Abort inside the post-promotion watch window reverts the promoted revision.
    let mut promoted = view(Phase::Succeeded, Some("r2"), "r2");
    promoted.post_promotion_watch_seconds = 300;
    promoted.promoted_at = Some(now - Duration::seconds(10));
    assert!(check_command(&promoted, CommandAction::Abort, Some("r2"), now).is_ok());
    assert!(check_command(&promoted, CommandAction::Promote, None, now).is_err());
    assert!(check_command(
        &promoted,
        CommandAction::Abort,
        None,
        now + Duration::seconds(600)
    )
    .is_err());
}
