//! Where the HTTP API and CLI read rollouts and send commands: the Kubernetes API (reflector store +
//! annotation patch) or the standalone runner's in-process state. The API holds no state of its own.

pub mod kube;
pub mod memory;

use futures::future::BoxFuture;
use sluice_crds::{Command, Rollout};

pub use self::kube::KubeStore;
pub use memory::MemoryStore;

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("rollout {namespace}/{name} not found")]
    NotFound { namespace: String, name: String },
    #[error("conflict writing rollout {0}; retry")]
    Conflict(String),
    #[error("backend unavailable: {0}")]
    Unavailable(String),
    #[error("forbidden: {0}")]
    Forbidden(String),
}

impl StoreError {
    pub fn not_found(namespace: &str, name: &str) -> Self {
        StoreError::NotFound {
            namespace: namespace.to_string(),
            name: name.to_string(),
        }
    }
}

/// Read rollouts, write commands.
pub trait RolloutStore: Send + Sync {
    fn list(&self) -> BoxFuture<'_, Result<Vec<Rollout>, StoreError>>;
    fn get<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Rollout, StoreError>>;
    /// Write the command onto the rollout (annotation `sluice.dev/command`); the state machine acts on it.
    fn command<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
        command: Command,
    ) -> BoxFuture<'a, Result<(), StoreError>>;
}

/// The command currently written on a rollout's annotation, if it parses.
pub fn pending_command(rollout: &Rollout) -> Option<Command> {
    rollout
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(sluice_crds::COMMAND_ANNOTATION))
        .and_then(|s| Command::parse(s).ok())
}

/// True when a command with this id was already written or already acted upon (idempotent re-sends).
pub fn command_already_sent(rollout: &Rollout, id: &str) -> bool {
    let acked = rollout
        .status
        .as_ref()
        .and_then(|s| s.acknowledged_command.as_ref())
        .is_some_and(|a| a.id == id);
    acked || pending_command(rollout).is_some_and(|c| c.id == id)
}
