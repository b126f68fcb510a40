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
    /// The request does not apply to this kind of store (e.g. set-version on Kubernetes).
    #[error("{0}")]
    Unsupported(String),
    /// The request was refused as given (e.g. an invalid version or address).
    #[error("{0}")]
    Invalid(String),
}

impl StoreError {
    pub fn not_found(namespace: &str, name: &str) -> Self {
        StoreError::NotFound {
            namespace: namespace.to_string(),
            name: name.to_string(),
        }
    }
}

/// A new version for a standalone rollout's canary (`sluice set-version`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionChange {
    pub version: String,
    /// New `host:port` of the canary backend (default: the file's `canary.address`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
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

    /// The revision the rollout's target has now, whether or not a rollout of it has started
    /// (see `RolloutView::desired_revision`). None when the store cannot tell.
    fn desired_revision<'a>(
        &'a self,
        _rollout: &'a Rollout,
    ) -> BoxFuture<'a, Result<Option<String>, StoreError>> {
        Box::pin(async { Ok(None) })
    }

    /// Give the target a new version (starts a rollout through the state machine). Only the
    /// standalone store can: on Kubernetes the target Deployment's template is the version.
    fn set_version<'a>(
        &'a self,
        _namespace: &'a str,
        _name: &'a str,
        _change: VersionChange,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async {
            Err(StoreError::Unsupported(
                "set-version is for standalone mode; on Kubernetes change the target Deployment \
                 (sluice set-image or kubectl set image)"
                    .to_string(),
            ))
        })
    }
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
