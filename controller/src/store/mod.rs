//! Where the HTTP API and CLI read rollouts and send commands: the Kubernetes API (reflector store +
//! annotation patch) or the standalone runner's in-process state. The API holds no state of its own.

use futures::future::BoxFuture;
use sluice_crds::{Command, Rollout};

#[derive(Debug, thiserror::Error)]
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

/// Read rollouts, write commands.
pub trait RolloutStore: Send + Sync {
    fn list(&self) -> BoxFuture<'_, Result<Vec<Rollout>, StoreError>>;
    fn get<'a>(&'a self, namespace: &'a str, name: &'a str)
        -> BoxFuture<'a, Result<Rollout, StoreError>>;
    /// Write the command onto the rollout (annotation `sluice.dev/command`); the state machine acts on it.
    fn command<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
        command: Command,
    ) -> BoxFuture<'a, Result<(), StoreError>>;
}
