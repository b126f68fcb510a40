//! `RolloutStore` on the Kubernetes API: list/get `Rollout`s, write a command as a merge patch of
//! the `sluice.dev/command` annotation, guarded by `resourceVersion` and retried on 409.

use std::time::Duration;

use ::kube::api::{Api, ListParams, Patch, PatchParams};
use ::kube::Client;
use futures::future::BoxFuture;
use sluice_crds::{Command, Rollout, COMMAND_ANNOTATION};

use super::{RolloutStore, StoreError};

/// Attempts of read-then-patch before a conflict is reported.
const CONFLICT_ATTEMPTS: u32 = 4;

/// Reads and patches Rollouts through a `kube::Client`.
#[derive(Clone)]
pub struct KubeStore {
    client: Client,
    /// Restrict `list` to one namespace (None: all namespaces).
    namespace: Option<String>,
}

impl KubeStore {
    pub fn new(client: Client) -> Self {
        KubeStore {
            client,
            namespace: None,
        }
    }

    /// Only list rollouts of `namespace` (a namespaced controller or a CLI with `-n`).
    pub fn with_namespace(mut self, namespace: Option<String>) -> Self {
        self.namespace = namespace;
        self
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    fn api(&self, namespace: &str) -> Api<Rollout> {
        Api::namespaced(self.client.clone(), namespace)
    }
}

/// Maps a kube error for `namespace/name` onto the store's error kinds.
pub fn map_kube_error(e: ::kube::Error, namespace: &str, name: &str) -> StoreError {
    match e {
        ::kube::Error::Api(status) => match status.code {
            404 => StoreError::not_found(namespace, name),
            409 => StoreError::Conflict(format!("{namespace}/{name}")),
            401 | 403 => StoreError::Forbidden(status.message.clone()),
            _ => StoreError::Unavailable(format!("{} ({})", status.message, status.code)),
        },
        other => StoreError::Unavailable(other.to_string()),
    }
}

/// The merge patch that writes `command`, conditional on `resource_version` when known.
pub fn command_patch(command: &Command, resource_version: Option<&str>) -> serde_json::Value {
    let mut metadata = serde_json::json!({
        "annotations": { COMMAND_ANNOTATION: command.to_annotation() }
    });
    if let Some(rv) = resource_version {
        metadata["resourceVersion"] = serde_json::Value::String(rv.to_string());
    }
    serde_json::json!({ "metadata": metadata })
}

impl RolloutStore for KubeStore {
    fn list(&self) -> BoxFuture<'_, Result<Vec<Rollout>, StoreError>> {
        Box::pin(async move {
            let api: Api<Rollout> = match &self.namespace {
                Some(ns) => Api::namespaced(self.client.clone(), ns),
                None => Api::all(self.client.clone()),
            };
            let list = api
                .list(&ListParams::default())
                .await
                .map_err(|e| map_kube_error(e, self.namespace.as_deref().unwrap_or("*"), "*"))?;
            Ok(list.items)
        })
    }

    fn get<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Rollout, StoreError>> {
        Box::pin(async move {
            self.api(namespace)
                .get(name)
                .await
                .map_err(|e| map_kube_error(e, namespace, name))
        })
    }

    fn command<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
        command: Command,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let api = self.api(namespace);
            let mut last = StoreError::Conflict(format!("{namespace}/{name}"));
            for attempt in 0..CONFLICT_ATTEMPTS {
                if attempt > 0 {
                    tokio::time::sleep(Duration::from_millis(50 * u64::from(attempt))).await;
                }
                // A fresh read each time: the patch only applies to the version we saw.
                let current = api
                    .get(name)
                    .await
                    .map_err(|e| map_kube_error(e, namespace, name))?;
                let patch = command_patch(&command, current.metadata.resource_version.as_deref());
                match api
                    .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                {
                    Ok(_) => return Ok(()),
                    Err(e) => match map_kube_error(e, namespace, name) {
                        StoreError::Conflict(m) => {
                            tracing::debug!(%namespace, %name, attempt, "conflict writing command; retrying");
                            last = StoreError::Conflict(m);
                        }
                        other => return Err(other),
                    },
                }
            }
            Err(last)
        })
    }
}
