//! In-process state shared by the standalone loop and the HTTP API: the current rollouts file
//! and the state file's contents. Implements `RolloutStore` (rollouts appear as `Rollout`
//! objects in namespace `standalone`); a command is saved to the state file at once and wakes
//! the loop, which hands it to the state machine as `obs.command`.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use futures::future::BoxFuture;
use sluice_crds::{Command, Rollout, COMMAND_ANNOTATION};
use tokio::sync::Notify;

use super::config::{RolloutConfig, StandaloneConfig, NAMESPACE};
use super::state::{RolloutState, StateError, StateFile};
use crate::store::{RolloutStore, StoreError};

struct Inner {
    config: StandaloneConfig,
    state: StateFile,
}

/// Shared between the loop and the API. Cheap to clone.
#[derive(Clone)]
pub struct Shared {
    inner: Arc<Mutex<Inner>>,
    state_path: Arc<PathBuf>,
    wake: Arc<Notify>,
}

impl Shared {
    pub fn new(config: StandaloneConfig, state: StateFile, state_path: PathBuf) -> Self {
        Shared {
            inner: Arc::new(Mutex::new(Inner { config, state })),
            state_path: Arc::new(state_path),
            wake: Arc::new(Notify::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn config(&self) -> StandaloneConfig {
        self.lock().config.clone()
    }

    pub fn set_config(&self, config: StandaloneConfig) {
        self.lock().config = config;
    }

    /// The saved state of a rollout (default when new).
    pub fn rollout_state(&self, name: &str) -> RolloutState {
        self.lock()
            .state
            .rollouts
            .get(name)
            .cloned()
            .unwrap_or_default()
    }

    /// Replace a rollout's state and write the state file. Keeps a command that arrived since
    /// `seen_command` was read, so a command is never lost to a concurrent tick.
    pub fn save_rollout(
        &self,
        name: &str,
        mut st: RolloutState,
        seen_command: Option<&Command>,
    ) -> Result<(), StateError> {
        let mut g = self.lock();
        if let Some(cur) = g.state.rollouts.get(name) {
            if cur.command.as_ref() != seen_command {
                st.command = cur.command.clone();
            }
        }
        if g.state.rollouts.get(name) == Some(&st) {
            return Ok(());
        }
        g.state.rollouts.insert(name.to_string(), st);
        g.state.save(&self.state_path)
    }

    /// Wait until a command arrives (true) or `d` passes (false).
    pub async fn sleep(&self, d: std::time::Duration) -> bool {
        tokio::time::timeout(d, self.wake.notified()).await.is_ok()
    }

    /// Wake the loop (a stored permit if it is not waiting right now).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    fn rollout_object(cfg: &RolloutConfig, st: Option<&RolloutState>) -> Rollout {
        let mut r = Rollout::new(&cfg.name, cfg.rollout_spec());
        r.metadata.namespace = Some(NAMESPACE.to_string());
        if let Some(st) = st {
            r.status = Some(st.status.clone());
            if let Some(c) = &st.command {
                r.metadata.annotations = Some(
                    [(COMMAND_ANNOTATION.to_string(), c.to_annotation())]
                        .into_iter()
                        .collect(),
                );
            }
        } else {
            r.status = Some(Default::default());
        }
        r
    }

    /// The RolloutStore view of this shared state.
    pub fn store(&self) -> StandaloneStore {
        StandaloneStore(self.clone())
    }
}

/// `RolloutStore` over [`Shared`].
#[derive(Clone)]
pub struct StandaloneStore(Shared);

fn not_found(namespace: &str, name: &str) -> StoreError {
    StoreError::NotFound {
        namespace: namespace.to_string(),
        name: name.to_string(),
    }
}

impl RolloutStore for StandaloneStore {
    fn list(&self) -> BoxFuture<'_, Result<Vec<Rollout>, StoreError>> {
        let g = self.0.lock();
        let out = g
            .config
            .rollouts
            .iter()
            .map(|c| Shared::rollout_object(c, g.state.rollouts.get(&c.name)))
            .collect();
        Box::pin(async move { Ok(out) })
    }

    fn get<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Rollout, StoreError>> {
        let found = if namespace == NAMESPACE {
            let g = self.0.lock();
            g.config
                .rollouts
                .iter()
                .find(|c| c.name == name)
                .map(|c| Shared::rollout_object(c, g.state.rollouts.get(name)))
        } else {
            None
        };
        Box::pin(async move { found.ok_or_else(|| not_found(namespace, name)) })
    }

    fn command<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
        command: Command,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let result = (|| {
            if namespace != NAMESPACE {
                return Err(not_found(namespace, name));
            }
            let mut g = self.0.lock();
            if !g.config.rollouts.iter().any(|c| c.name == name) {
                return Err(not_found(namespace, name));
            }
            let entry = g.state.rollouts.entry(name.to_string()).or_default();
            entry.command = Some(command);
            g.state
                .save(&self.0.state_path)
                .map_err(|e| StoreError::Unavailable(e.to_string()))
        })();
        if result.is_ok() {
            self.0.wake();
        }
        Box::pin(async move { result })
    }
}
