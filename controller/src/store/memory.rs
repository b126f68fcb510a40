//! In-memory `RolloutStore`: tests, the CLI's test server, and embedders without Kubernetes.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use futures::future::BoxFuture;
use sluice_crds::{Command, Rollout, RolloutStatus, COMMAND_ANNOTATION};

use super::{RolloutStore, StoreError};

#[derive(Debug, Default)]
struct Inner {
    rollouts: BTreeMap<(String, String), Rollout>,
    /// Errors returned by the next calls (front first), to exercise transient failures.
    fail_next: Vec<StoreError>,
    /// Errors returned by the next `command` calls only.
    fail_commands: Vec<StoreError>,
    /// What `desired_revision` answers per rollout (tests of waits that start before a rollout).
    desired: BTreeMap<(String, String), String>,
    writes: u64,
}

/// Rollouts in a map; `command` writes the annotation like the Kubernetes store does.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    inner: Arc<Mutex<Inner>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Insert or replace a rollout (keyed by its namespace, `default` if unset, and name).
    pub fn insert(&self, rollout: Rollout) {
        let key = key_of(&rollout);
        self.lock().rollouts.insert(key, rollout);
    }

    /// Replace a rollout's status (as the controller would). False if the rollout is unknown.
    pub fn set_status(&self, namespace: &str, name: &str, status: RolloutStatus) -> bool {
        let mut g = self.lock();
        match g
            .rollouts
            .get_mut(&(namespace.to_string(), name.to_string()))
        {
            Some(r) => {
                r.status = Some(status);
                true
            }
            None => false,
        }
    }

    /// Set the revision the rollout's target has now (`desired_revision`).
    pub fn set_desired(&self, namespace: &str, name: &str, revision: &str) {
        self.lock().desired.insert(
            (namespace.to_string(), name.to_string()),
            revision.to_string(),
        );
    }

    /// A snapshot of one rollout.
    pub fn snapshot(&self, namespace: &str, name: &str) -> Option<Rollout> {
        self.lock()
            .rollouts
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }

    /// Make the next calls fail with these errors, in order.
    pub fn fail_next(&self, errors: Vec<StoreError>) {
        self.lock().fail_next = errors;
    }

    /// Make the next `command` calls (only those) fail with these errors, in order.
    pub fn fail_next_commands(&self, errors: Vec<StoreError>) {
        self.lock().fail_commands = errors;
    }

    /// Number of successful command writes so far.
    pub fn writes(&self) -> u64 {
        self.lock().writes
    }

    fn take_failure(g: &mut Inner) -> Option<StoreError> {
        if g.fail_next.is_empty() {
            None
        } else {
            Some(g.fail_next.remove(0))
        }
    }
}

fn key_of(r: &Rollout) -> (String, String) {
    (
        r.metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".to_string()),
        r.metadata.name.clone().unwrap_or_default(),
    )
}

impl RolloutStore for MemoryStore {
    fn list(&self) -> BoxFuture<'_, Result<Vec<Rollout>, StoreError>> {
        Box::pin(async move {
            let mut g = self.lock();
            if let Some(e) = Self::take_failure(&mut g) {
                return Err(e);
            }
            Ok(g.rollouts.values().cloned().collect())
        })
    }

    fn get<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Rollout, StoreError>> {
        Box::pin(async move {
            let mut g = self.lock();
            if let Some(e) = Self::take_failure(&mut g) {
                return Err(e);
            }
            g.rollouts
                .get(&(namespace.to_string(), name.to_string()))
                .cloned()
                .ok_or_else(|| StoreError::not_found(namespace, name))
        })
    }

    fn command<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
        command: Command,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let mut g = self.lock();
            if let Some(e) = Self::take_failure(&mut g) {
                return Err(e);
            }
            if !g.fail_commands.is_empty() {
                return Err(g.fail_commands.remove(0));
            }
            let r = g
                .rollouts
                .get_mut(&(namespace.to_string(), name.to_string()))
                .ok_or_else(|| StoreError::not_found(namespace, name))?;
            r.metadata
                .annotations
                .get_or_insert_with(Default::default)
                .insert(COMMAND_ANNOTATION.to_string(), command.to_annotation());
            g.writes += 1;
            Ok(())
        })
    }

    fn desired_revision<'a>(
        &'a self,
        rollout: &'a Rollout,
    ) -> BoxFuture<'a, Result<Option<String>, StoreError>> {
        let d = self.lock().desired.get(&key_of(rollout)).cloned();
        Box::pin(async move { Ok(d) })
    }
}
