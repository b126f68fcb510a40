//! Commands (promote, abort, pause, resume) written by the API/CLI onto the Rollout as an
//! annotation, read by the state machine, and acknowledged in status so each runs once.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Annotation holding the latest command as JSON.
pub const COMMAND_ANNOTATION: &str = "sluice.dev/command";

/// What a release manager (or Alertmanager) asks for.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum CommandAction {
    /// Advance past the current step (or approve a pause / inconclusive hold).
    Promote,
    /// Skip the remaining steps and promote now.
    PromoteFull,
    /// Return all traffic to stable and fail this revision.
    Abort,
    /// Hold where it is.
    Pause,
    /// Continue after a pause.
    Resume,
}

impl CommandAction {
    pub fn as_str(&self) -> &'static str {
        match self {
            CommandAction::Promote => "promote",
            CommandAction::PromoteFull => "promoteFull",
            CommandAction::Abort => "abort",
            CommandAction::Pause => "pause",
            CommandAction::Resume => "resume",
        }
    }
}

/// A command; `id` is unique per request (the state machine acts on an id once).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Command {
    pub id: String,
    pub action: CommandAction,
    /// Who asked: user name, `alertmanager`, `cli`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Alert that triggered an abort.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// Only act if the canary revision is this one (a stale command must not hit a newer revision).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    pub at: DateTime<Utc>,
}

#[derive(Debug, thiserror::Error)]
#[error("annotation {COMMAND_ANNOTATION} is not a valid command: {0}")]
pub struct CommandParseError(#[from] serde_json::Error);

impl Command {
    pub fn parse(annotation: &str) -> Result<Self, CommandParseError> {
        Ok(serde_json::from_str(annotation)?)
    }

    pub fn to_annotation(&self) -> String {
        // Serializing a plain struct of strings and a timestamp cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}
