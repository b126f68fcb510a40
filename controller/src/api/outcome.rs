//! Pure decisions shared by the API and the CLI: what a wait has come to (promoted, rolled back,
//! paused for a human, superseded), its HTTP status and exit code, and whether a command applies.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sluice_crds::{CommandAction, Phase};

use super::view::RolloutView;

/// What a pipeline waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum WaitFor {
    /// The revision was promoted to stable (the decision is made).
    #[default]
    Promoted,
    /// Promoted, primary ready, and any post-promotion watch window over.
    Completed,
}

impl FromStr for WaitFor {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "promoted" => Ok(WaitFor::Promoted),
            "completed" => Ok(WaitFor::Completed),
            other => Err(format!(
                "unknown wait target {other:?}: use promoted or completed"
            )),
        }
    }
}

/// How a wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WaitOutcome {
    Promoted,
    Completed,
    RolledBack,
    /// Paused, waiting for a human (promote/resume or abort).
    Paused,
    Timeout,
    /// Another revision replaced the one waited for.
    Superseded,
    /// The rollout cannot start or move (`Ready=False`, reason `Blocked` or `InvalidSpec`): a
    /// router that refuses its config, a failing hook, an invalid spec or file.
    Blocked,
}

impl WaitOutcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            WaitOutcome::Promoted => "promoted",
            WaitOutcome::Completed => "completed",
            WaitOutcome::RolledBack => "rolled_back",
            WaitOutcome::Paused => "paused",
            WaitOutcome::Timeout => "timeout",
            WaitOutcome::Superseded => "superseded",
            WaitOutcome::Blocked => "blocked",
        }
    }

    /// CLI exit code: 0 success, 2 rolled back, 3 paused, 4 timeout, 5 superseded, 6 blocked
    /// (1 is any error).
    pub fn exit_code(&self) -> i32 {
        match self {
            WaitOutcome::Promoted | WaitOutcome::Completed => 0,
            WaitOutcome::RolledBack => 2,
            WaitOutcome::Paused => 3,
            WaitOutcome::Timeout => 4,
            WaitOutcome::Superseded => 5,
            WaitOutcome::Blocked => 6,
        }
    }

    /// HTTP status of the wait endpoint, distinct per outcome so `curl --fail` fails on all but success.
    pub fn http_status(&self) -> u16 {
        match self {
            WaitOutcome::Promoted | WaitOutcome::Completed => 200,
            WaitOutcome::RolledBack => 409,
            WaitOutcome::Paused => 423,
            WaitOutcome::Timeout => 408,
            WaitOutcome::Superseded => 410,
            WaitOutcome::Blocked => 424,
        }
    }

    /// Inverse of [`WaitOutcome::http_status`] (for the CLI talking HTTP).
    pub fn from_http_status(code: u16) -> Option<Self> {
        [
            WaitOutcome::Promoted,
            WaitOutcome::RolledBack,
            WaitOutcome::Paused,
            WaitOutcome::Timeout,
            WaitOutcome::Superseded,
            WaitOutcome::Blocked,
        ]
        .into_iter()
        .find(|o| o.http_status() == code)
    }
}

/// The answer of a wait: outcome plus a human reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WaitResult {
    pub outcome: WaitOutcome,
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
}

/// How long a rollout may report `Blocked` before a wait ends with [`WaitOutcome::Blocked`]
/// (a router reload that fails once is retried; one that keeps failing needs a human).
pub const DEFAULT_BLOCKED_GRACE: std::time::Duration = std::time::Duration::from_secs(30);

/// Follows one rollout across observations. Without an expected revision it waits for the
/// revision the target has now (`desiredRevision` of the first observation that has one), so a
/// revision that was never rolled out is never reported as promoted.
#[derive(Debug, Clone)]
pub struct WaitTracker {
    want: WaitFor,
    expected: Option<String>,
    locked: Option<String>,
    seen: bool,
    grace: chrono::Duration,
    /// When this tracker first saw the rollout blocked (reset when it is not).
    blocked_since: Option<DateTime<Utc>>,
}

fn done(outcome: WaitOutcome, reason: impl Into<String>, rev: Option<&str>) -> Option<WaitResult> {
    Some(WaitResult {
        outcome,
        reason: reason.into(),
        revision: rev.map(str::to_string),
    })
}

impl WaitTracker {
    pub fn new(want: WaitFor, revision: Option<String>) -> Self {
        WaitTracker {
            want,
            expected: revision.filter(|r| !r.is_empty()),
            locked: None,
            seen: false,
            grace: chrono::Duration::seconds(DEFAULT_BLOCKED_GRACE.as_secs() as i64),
            blocked_since: None,
        }
    }

    /// End with `Blocked` once the rollout has reported a block for this long (`Blocked`
    /// reasons only; an `InvalidSpec` ends the wait at once).
    pub fn with_blocked_grace(mut self, grace: std::time::Duration) -> Self {
        self.grace = chrono::Duration::from_std(grace).unwrap_or(chrono::Duration::MAX);
        self
    }

    fn success(&self) -> WaitOutcome {
        match self.want {
            WaitFor::Promoted => WaitOutcome::Promoted,
            WaitFor::Completed => WaitOutcome::Completed,
        }
    }

    /// The revision this wait is about, once known.
    pub fn revision(&self) -> Option<&str> {
        self.expected.as_deref().or(self.locked.as_deref())
    }

    /// Some(result) when the wait is over; None to keep waiting.
    pub fn observe(&mut self, v: &RolloutView, now: DateTime<Utc>) -> Option<WaitResult> {
        if self.expected.is_none() && self.locked.is_none() {
            self.locked = v.desired_revision.clone().or_else(|| {
                // A server that cannot tell what the target runs: follow the revision in
                // progress; when nothing is, wait (and say so at the timeout) rather than guess.
                v.phase
                    .in_progress()
                    .then(|| v.canary_revision.clone())
                    .flatten()
            });
        }
        let rev = self.revision()?.to_string();
        self.judge(v, &rev, now)
    }

    /// Blocked for long enough (or invalid): the wait ends; a cleared block restarts the clock.
    fn check_blocked(
        &mut self,
        v: &RolloutView,
        rev: &str,
        now: DateTime<Utc>,
    ) -> Option<WaitResult> {
        let Some(b) = &v.blocked else {
            self.blocked_since = None;
            return None;
        };
        let since = *self.blocked_since.get_or_insert(now);
        let invalid = b.reason == crate::core::conditions::REASON_INVALID;
        if invalid || now - since >= self.grace {
            let what = if v.canary_revision.as_deref() == Some(rev) && v.phase.in_progress() {
                format!("rollout of {rev} is stuck")
            } else {
                format!("revision {rev} cannot be rolled out")
            };
            return done(
                WaitOutcome::Blocked,
                format!("{what} ({}): {}", b.reason, b.message),
                Some(rev),
            );
        }
        None
    }

    fn judge(&mut self, v: &RolloutView, rev: &str, now: DateTime<Utc>) -> Option<WaitResult> {
        let ours_canary = v.canary_revision.as_deref() == Some(rev);
        let ours_stable = v.stable_revision.as_deref() == Some(rev);
        let ours_aborted = v
            .abort
            .as_ref()
            .is_some_and(|a| a.revision.as_deref() == Some(rev));
        if ours_canary || ours_stable || ours_aborted {
            self.seen = true;
        }
        let rolling_back = matches!(v.phase, Phase::RollingBack | Phase::Failed);
        if rolling_back && (ours_aborted || (ours_canary && !ours_stable)) {
            return done(WaitOutcome::RolledBack, abort_reason(v), Some(rev));
        }
        if ours_stable && !(ours_canary && v.phase.in_progress()) {
            if self.want == WaitFor::Completed
                && (v.in_post_promotion_watch(now) || v.phase == Phase::Promoting)
            {
                return None;
            }
            return done(
                self.success(),
                format!("revision {rev} promoted"),
                Some(rev),
            );
        }
        if let Some(r) = self.check_blocked(v, rev, now) {
            return Some(r);
        }
        if ours_canary {
            return match v.phase {
                Phase::Promoting if self.want == WaitFor::Promoted => done(
                    WaitOutcome::Promoted,
                    format!("revision {rev} is being promoted"),
                    Some(rev),
                ),
                Phase::Paused => done(
                    WaitOutcome::Paused,
                    format!(
                        "paused, waiting for a human: {}",
                        v.message
                            .as_deref()
                            .unwrap_or("promote, resume or abort it")
                    ),
                    Some(rev),
                ),
                _ => None,
            };
        }
        if self.seen {
            let by = v
                .canary_revision
                .as_deref()
                .or(v.stable_revision.as_deref())
                .unwrap_or("another revision");
            return done(
                WaitOutcome::Superseded,
                format!("revision {rev} was superseded by {by}"),
                Some(rev),
            );
        }
        None
    }

    /// The result when the deadline passes without a decision.
    pub fn timeout(&self, v: Option<&RolloutView>) -> WaitResult {
        let reason = match (v, self.revision()) {
            (None, _) => "timed out before the rollout could be read".to_string(),
            (Some(_), None) => "timed out: the server does not say which revision the target \
                 runs now and none is in progress; pass --revision"
                .to_string(),
            (Some(v), Some(rev)) if !self.seen => format!(
                "timed out: revision {rev} has not started; rollout is {} (stable {}){}",
                v.phase,
                v.stable_revision.as_deref().unwrap_or("none"),
                v.message
                    .as_deref()
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default()
            ),
            (Some(v), Some(_)) => format!(
                "timed out: rollout is {} at step {}/{} with {}% canary traffic",
                v.phase,
                v.step_display(),
                v.total_steps,
                v.weight
            ),
        };
        WaitResult {
            outcome: WaitOutcome::Timeout,
            reason,
            revision: self.revision().map(str::to_string),
        }
    }
}

fn abort_reason(v: &RolloutView) -> String {
    let detail = v
        .abort
        .as_ref()
        .map(|a| match &a.alert_name {
            Some(alert) => format!("{} (alert {alert})", a.reason),
            None => a.reason.clone(),
        })
        .or_else(|| v.message.clone())
        .unwrap_or_else(|| "no reason recorded".to_string());
    format!("rolled back: {detail}")
}

/// Whether `action` makes sense for the rollout now; Err((kind, message)) for a 409.
pub fn check_command(
    v: &RolloutView,
    action: CommandAction,
    revision: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), (&'static str, String)> {
    let watch = v.in_post_promotion_watch(now);
    if let Some(rev) = revision {
        let current = if watch && action == CommandAction::Abort {
            v.stable_revision.as_deref()
        } else {
            v.canary_revision.as_deref()
        };
        if current != Some(rev) {
            return Err((
                "revision_mismatch",
                format!(
                    "rollout is on revision {}, not {rev}",
                    current.unwrap_or("(none)")
                ),
            ));
        }
    }
    if action == CommandAction::Resume && v.phase == Phase::Paused {
        use crate::core::conditions as cond;
        let at_pause_step = v.conditions.iter().any(|c| {
            c.type_ == cond::PAUSED
                && c.status == "True"
                && (c.reason == cond::REASON_PAUSE_STEP
                    || c.reason == cond::REASON_AWAITING_PROMOTION)
        });
        if at_pause_step {
            return Err((
                "not_applicable",
                format!(
                    "rollout {} waits at a pause step (step {}/{}): only promote moves it on \
                     (resume releases a pause command or an analysis hold)",
                    v.name,
                    v.step_display(),
                    v.total_steps
                ),
            ));
        }
    }
    let ok = match action {
        CommandAction::Promote | CommandAction::PromoteFull => {
            matches!(v.phase, Phase::Progressing | Phase::Paused)
        }
        // The state machine ignores commands while Promoting (the copy is under way).
        CommandAction::Abort => matches!(v.phase, Phase::Progressing | Phase::Paused) || watch,
        CommandAction::Pause | CommandAction::Resume => {
            matches!(v.phase, Phase::Progressing | Phase::Paused)
        }
    };
    if ok {
        Ok(())
    } else {
        Err((
            "not_applicable",
            format!(
                "cannot {} a rollout that is {}",
                action.as_str(),
                v.phase.as_str()
            ),
        ))
    }
}
