//! What happens in the world at given times: new revisions, commands, spec.paused flips,
//! readiness changes, canary deaths.

use std::time::Duration;

use sluice_crds::{Command, CommandAction};

/// One scripted change.
#[derive(Debug, Clone, PartialEq)]
pub enum ScriptAction {
    /// The user applies a new template to the target.
    NewRevision(String),
    /// A command is written (its `at` is set to the simulated time).
    Command(Command),
    /// `spec.paused` changes.
    SetPaused(bool),
    /// From now on, new canary pods take this long to be ready (`Duration::MAX`: never).
    CanaryReadyDelay(Duration),
    /// From now on, router changes take this long to apply.
    RouterLag(Duration),
    /// Every canary pod dies now (no ready pod; replicas unchanged) and comes back after this
    /// long (`Duration::MAX`: never).
    CanaryDies(Duration),
    /// From now on the gate answers open (`true`) or closed with this reason. Gates not
    /// scripted answer open.
    Gate(sluice_crds::GateName, bool, String),
}

/// A change at `at` after the start of the simulation.
#[derive(Debug, Clone, PartialEq)]
pub struct ScriptEvent {
    pub at: Duration,
    pub action: ScriptAction,
}

/// The script of a simulation, kept sorted by time.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Script {
    pub events: Vec<ScriptEvent>,
}

impl Script {
    pub fn new() -> Self {
        Self::default()
    }

    /// Add `action` at `secs` seconds after the start.
    pub fn at(mut self, secs: u64, action: ScriptAction) -> Self {
        self.events.push(ScriptEvent {
            at: Duration::from_secs(secs),
            action,
        });
        self.events.sort_by_key(|e| e.at);
        self
    }

    pub fn revision(self, secs: u64, revision: &str) -> Self {
        self.at(secs, ScriptAction::NewRevision(revision.to_string()))
    }

    /// Gate `gate` answers closed with `reason` from `secs` on.
    pub fn gate_closed(self, secs: u64, gate: sluice_crds::GateName, reason: &str) -> Self {
        self.at(secs, ScriptAction::Gate(gate, false, reason.to_string()))
    }

    /// Gate `gate` answers open from `secs` on.
    pub fn gate_open(self, secs: u64, gate: sluice_crds::GateName) -> Self {
        self.at(
            secs,
            ScriptAction::Gate(gate, true, "scripted open".to_string()),
        )
    }

    /// A command with id `id`, for whatever revision is in progress.
    pub fn command(self, secs: u64, id: &str, action: CommandAction) -> Self {
        self.at(secs, ScriptAction::Command(command(id, action)))
    }
}

/// A command with this id and action (no revision, no alert), by `sim`.
pub fn command(id: &str, action: CommandAction) -> Command {
    Command {
        id: id.to_string(),
        action,
        by: Some("sim".to_string()),
        reason: None,
        alert_name: None,
        fingerprint: None,
        revision: None,
        at: chrono::DateTime::<chrono::Utc>::UNIX_EPOCH,
    }
}
