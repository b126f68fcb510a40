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
    let all = [Promoted, RolledBack, Paused, Timeout, Superseded];
    let codes: Vec<i32> = all.iter().map(|o| o.exit_code()).collect();
    assert_eq!(codes, [0, 2, 3, 4, 5]);
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

#[test]
fn idle_rollout_without_revision_is_done() {
    let now = Utc::now();
    let mut t = WaitTracker::new(WaitFor::Promoted, None);
    let r = t.observe(&view(Phase::Idle, None, "r1"), now).unwrap();
    assert_eq!(r.outcome, WaitOutcome::Promoted);
    let mut t = WaitTracker::new(WaitFor::Promoted, None);
    assert_eq!(t.observe(&view(Phase::Initializing, None, "r1"), now), None);
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
