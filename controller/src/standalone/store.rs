//! In-process state shared by the standalone loop and the HTTP API: the current rollouts file
//! and the state file's contents. Implements `RolloutStore` (rollouts appear as `Rollout`
//! objects in namespace `standalone`); a command is saved to the state file at once and wakes
//! the loop, which hands it to the state machine as `obs.command`.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use futures::future::BoxFuture;
use sluice_crds::{Command, Rollout, COMMAND_ANNOTATION};
use tokio::sync::Notify;

use super::config::{check_address, check_version, RolloutConfig, StandaloneConfig, NAMESPACE};
use super::state::{RolloutState, StateError, StateFile, VersionOverride};
use crate::notify::OutboxOps;
use crate::store::{RolloutStore, StoreError, VersionChange};

struct Inner {
    config: StandaloneConfig,
    state: StateFile,
    /// Why the latest edit of the rollouts file was rejected (the last good one is in force).
    file_error: Option<String>,
    /// The rollouts file on disk, read for `desired_revision` (None: use the loaded config).
    file: Option<PathBuf>,
}

/// `targetRef.kind` of standalone rollouts as the API shows them.
pub const TARGET_KIND: &str = "Backends";

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
            inner: Arc::new(Mutex::new(Inner {
                config,
                state,
                file_error: None,
                file: None,
            })),
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
        let mut g = self.lock();
        g.config = config;
        g.file_error = None;
    }

    /// Read `canary.version` for `desired_revision` from this file on disk, so a wait started
    /// right after an edit waits for the edited version even before the loop reloads the file.
    pub fn with_file(self, file: PathBuf) -> Self {
        self.lock().file = Some(file);
        self
    }

    /// Record that the latest edit of the file was rejected: every rollout then shows
    /// `Ready=False` reason `InvalidSpec` with this message until a good edit is loaded.
    pub fn set_file_error(&self, error: String) {
        self.lock().file_error = Some(error);
    }

    /// The rollouts to run: the file's, with `set-version` overrides applied.
    pub fn effective_config(&self) -> StandaloneConfig {
        let g = self.lock();
        let mut cfg = g.config.clone();
        for r in &mut cfg.rollouts {
            let o = g
                .state
                .rollouts
                .get(&r.name)
                .and_then(|s| s.version_override.as_ref());
            *r = r.with_override(o);
        }
        cfg
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
            // The delivery worker settles entries between this tick's read and this write.
            st.notifications.merge_settled(&cur.notifications);
            st.notifications
                .trim(crate::notify::feed::key_revision(&st.status));
        }
        if g.state.rollouts.get(name) == Some(&st) {
            return Ok(());
        }
        g.state.rollouts.insert(name.to_string(), st);
        g.state.save(&self.state_path)
    }

    /// Record how a notification's delivery ended (the worker's write to the state file).
    pub fn settle_notification(
        &self,
        name: &str,
        sink: &str,
        key: &str,
        outcome: crate::notify::Outcome,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), StateError> {
        let mut g = self.lock();
        let Some(st) = g.state.rollouts.get_mut(name) else {
            return Ok(());
        };
        if !st.notifications.settle(sink, key, outcome, at) {
            return Ok(());
        }
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

    fn rollout_object(
        cfg: &RolloutConfig,
        st: Option<&RolloutState>,
        file_error: Option<&str>,
    ) -> Rollout {
        let cfg = cfg.with_override(st.and_then(|s| s.version_override.as_ref()));
        let mut r = Rollout::new(&cfg.name, cfg.rollout_spec());
        r.metadata.namespace = Some(NAMESPACE.to_string());
        // What people see: two fixed backends, not a Deployment (the state machine's spec
        // keeps `Deployment`, which validation requires).
        r.spec.target_ref.kind = TARGET_KIND.to_string();
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
        if let (Some(e), Some(status)) = (file_error, r.status.as_mut()) {
            let at = status
                .condition(crate::core::conditions::READY)
                .map_or_else(chrono::Utc::now, |c| c.last_transition_time);
            crate::core::conditions::set_blocked(
                status,
                crate::core::conditions::REASON_INVALID,
                &format!("rollouts file rejected, the last good one is in force: {e}"),
                at,
            );
        }
        r
    }

    /// The RolloutStore view of this shared state.
    pub fn store(&self) -> StandaloneStore {
        StandaloneStore(self.clone())
    }
}

/// The notification worker settles entries in the state file.
impl crate::notify::OutboxStore for Shared {
    fn settle<'a>(
        &'a self,
        _namespace: &'a str,
        rollout: &'a str,
        sink: &'a str,
        key: &'a str,
        outcome: crate::notify::Outcome,
    ) -> BoxFuture<'a, Result<(), String>> {
        let r = self
            .settle_notification(rollout, sink, key, outcome, chrono::Utc::now())
            .map_err(|e| e.to_string());
        Box::pin(async move { r })
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
            .map(|c| {
                Shared::rollout_object(c, g.state.rollouts.get(&c.name), g.file_error.as_deref())
            })
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
            g.config.rollouts.iter().find(|c| c.name == name).map(|c| {
                Shared::rollout_object(c, g.state.rollouts.get(name), g.file_error.as_deref())
            })
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

    /// `canary.version` of the file on disk (or of a `set-version`), else the stable version.
    fn desired_revision<'a>(
        &'a self,
        rollout: &'a Rollout,
    ) -> BoxFuture<'a, Result<Option<String>, StoreError>> {
        let name = rollout.metadata.name.clone().unwrap_or_default();
        let g = self.0.lock();
        let o = g
            .state
            .rollouts
            .get(&name)
            .and_then(|s| s.version_override.as_ref());
        let on_disk = g.file.as_deref().and_then(|f| disk_versions(f, &name));
        let desired = match on_disk {
            Some((stable, canary)) => match o.filter(|o| o.file_version == canary) {
                Some(o) => Some(o.version.clone()),
                None => canary.or(stable).filter(|v| !v.is_empty()),
            },
            None => g
                .config
                .rollouts
                .iter()
                .find(|c| c.name == name)
                .and_then(|c| c.with_override(o).target_version().map(str::to_string)),
        };
        Box::pin(async move { Ok(desired) })
    }

    fn set_version<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
        change: VersionChange,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let result = (|| {
            if namespace != NAMESPACE {
                return Err(not_found(namespace, name));
            }
            check_version(&change.version).map_err(StoreError::Invalid)?;
            if let Some(a) = &change.address {
                check_address(a).map_err(|e| StoreError::Invalid(format!("address: {e}")))?;
            }
            let mut g = self.0.lock();
            let file_version = g
                .config
                .rollouts
                .iter()
                .find(|c| c.name == name)
                .ok_or_else(|| not_found(namespace, name))?
                .canary
                .version
                .clone();
            let entry = g.state.rollouts.entry(name.to_string()).or_default();
            entry.version_override = Some(VersionOverride {
                version: change.version,
                address: change.address,
                file_version,
                by: change.by,
                reason: change.reason,
                at: chrono::Utc::now(),
            });
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

/// `(stable.version, canary.version)` of rollout `name` in the file on disk, read leniently (as
/// plain YAML): a file the loop rejects still says which version its author wants.
fn disk_versions(file: &std::path::Path, name: &str) -> Option<(Option<String>, Option<String>)> {
    let text = std::fs::read_to_string(file).ok()?;
    let v: serde_json::Value = serde_saphyr::from_str(&text).ok()?;
    let r = v
        .get("rollouts")?
        .as_array()?
        .iter()
        .find(|r| r.get("name").and_then(|n| n.as_str()) == Some(name))?;
    let version = |arm: &str| {
        r.get(arm)
            .and_then(|b| b.get("version"))
            .and_then(|v| match v {
                serde_json::Value::String(s) => Some(s.clone()),
                serde_json::Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
    };
    Some((version("stable"), version("canary")))
}

#[cfg(test)]
mod disk_tests {
    #[test]
    fn versions_are_read_from_a_file_the_loader_would_reject() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("r.yaml");
        std::fs::write(
            &f,
            "prometheus: http://127.0.0.1:9\nrollouts:\n  - name: web\n    stable: { address: \"127.0.0.1:1\", version: v1 }\n    canary: { address: \"127.0.0.1:2\", version: v3 }\n    strategy: { canary: { steps: [ { setWeight: 150 } ] } }\n    bogus: 1\n",
        )
        .unwrap();
        assert_eq!(
            super::disk_versions(&f, "web"),
            Some((Some("v1".into()), Some("v3".into())))
        );
        assert_eq!(super::disk_versions(&f, "other"), None);
    }
}

#[cfg(test)]
mod desired_tests {
    use super::*;

    #[tokio::test]
    async fn desired_revision_follows_the_file_on_disk_before_a_reload() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("rollouts.yaml");
        let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../examples/standalone/rollouts.yaml");
        let text = std::fs::read_to_string(example).unwrap();
        std::fs::write(&f, &text).unwrap();
        let cfg = StandaloneConfig::load(&f).unwrap();
        let shared =
            Shared::new(cfg, StateFile::default(), dir.path().join("s.json")).with_file(f.clone());
        let store = shared.store();
        let r = store.get(NAMESPACE, "web").await.unwrap();
        assert_eq!(
            store.desired_revision(&r).await.unwrap().as_deref(),
            Some("v1")
        );
        // Edited, not reloaded yet (and even an edit the loader would reject).
        let edited = text.replacen(
            "      version: v1                 # set to v2",
            "      version: v2                 # set to v2",
            1,
        );
        assert_ne!(edited, text);
        std::fs::write(&f, format!("{edited}\nbogus: 1\n")).unwrap();
        assert_eq!(
            store.desired_revision(&r).await.unwrap().as_deref(),
            Some("v2")
        );
    }
}
