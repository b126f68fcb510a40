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
        }
    }

    /// CLI exit code: 0 success, 2 rolled back, 3 paused, 4 timeout, 5 superseded (1 is any error).
    pub fn exit_code(&self) -> i32 {
        match self {
            WaitOutcome::Promoted | WaitOutcome::Completed => 0,
            WaitOutcome::RolledBack => 2,
            WaitOutcome::Paused => 3,
            WaitOutcome::Timeout => 4,
            WaitOutcome::Superseded => 5,
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

/// Follows one rollout across observations. Without an expected revision it locks onto the
/// revision in progress at the first observation.
#[derive(Debug, Clone)]
pub struct WaitTracker {
    want: WaitFor,
    expected: Option<String>,
    locked: Option<String>,
    seen: bool,
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
        }
    }

    fn success(&self) -> WaitOutcome {
        match self.want {
            WaitFor::Promoted => WaitOutcome::Promoted,
            WaitFor::Completed => WaitOutcome::Completed,
        }
    }

    /// Some(result) when the wait is over; None to keep waiting.
    pub fn observe(&mut self, v: &RolloutView, now: DateTime<Utc>) -> Option<WaitResult> {
        if self.expected.is_none() && self.locked.is_none() {
            if v.phase.in_progress() {
                self.locked = v.canary_revision.clone();
            } else {
                return self.first_idle_observation(v, now);
            }
        }
        let rev = self.expected.clone().or_else(|| self.locked.clone())?;
        self.judge(v, &rev, now)
    }

    /// No revision given and nothing in progress: report on the latest revision.
    fn first_idle_observation(
        &mut self,
        v: &RolloutView,
        now: DateTime<Utc>,
    ) -> Option<WaitResult> {
        match v.phase {
            Phase::Failed => done(
                WaitOutcome::RolledBack,
                abort_reason(v),
                v.canary_revision.as_deref(),
            ),
            Phase::Succeeded | Phase::Idle => {
                if self.want == WaitFor::Completed && v.in_post_promotion_watch(now) {
                    self.locked = v.stable_revision.clone();
                    return None;
                }
                let reason = match (&v.phase, &v.stable_revision) {
                    (Phase::Idle, Some(s)) => format!("nothing to roll out; stable revision {s}"),
                    (_, Some(s)) => format!("revision {s} promoted"),
                    _ => "nothing to roll out".to_string(),
                };
                done(self.success(), reason, v.stable_revision.as_deref())
            }
            _ => None,
        }
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
        let reason = match v {
            Some(v) => format!(
                "timed out: rollout is {} at step {}/{} with {}% canary traffic",
                v.phase, v.step, v.total_steps, v.weight
            ),
            None => "timed out before the rollout could be read".to_string(),
        };
        WaitResult {
            outcome: WaitOutcome::Timeout,
            reason,
            revision: self.expected.clone().or_else(|| self.locked.clone()),
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
