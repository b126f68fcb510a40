//! `RolloutStore` on the Kubernetes API: list/get `Rollout`s (from a reflector cache when one is
//! given, so API reads and long-polls do not hit the API server), write a command as a merge patch
//! of the `sluice.dev/command` annotation, guarded by `resourceVersion` and retried on 409.

use std::time::Duration;

use ::kube::api::{Api, ListParams, Patch, PatchParams};
use ::kube::runtime::reflector::{ObjectRef, Store};
use ::kube::Client;
use futures::future::BoxFuture;
use sluice_crds::{Command, Rollout, COMMAND_ANNOTATION};

use crate::k8s::guard::{decoded, GuardedRollout};

use super::{RolloutStore, StoreError};

/// Attempts of read-then-patch before a conflict is reported.
const CONFLICT_ATTEMPTS: u32 = 4;

/// Reads and patches Rollouts through a `kube::Client`.
#[derive(Clone)]
pub struct KubeStore {
    client: Client,
    /// Restrict `list` to one namespace (None: all namespaces).
    namespace: Option<String>,
    /// The controller's reflector store; reads come from it once it is populated.
    cache: Option<Store<GuardedRollout>>,
}

impl KubeStore {
    pub fn new(client: Client) -> Self {
        KubeStore {
            client,
            namespace: None,
            cache: None,
        }
    }

    /// Serve reads from a reflector store (writes still go to the API server).
    pub fn with_cache(mut self, cache: Store<GuardedRollout>) -> Self {
        self.cache = Some(cache);
        self
    }

    /// The cache, if it has received its first full list.
    async fn ready_cache(&self) -> Option<&Store<GuardedRollout>> {
        let cache = self.cache.as_ref()?;
        // A populated store resolves at the first poll; otherwise read from the API meanwhile.
        match tokio::time::timeout(Duration::ZERO, cache.wait_until_ready()).await {
            Ok(Ok(())) => Some(cache),
            _ => None,
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
            if let Some(cache) = self.ready_cache().await {
                let ns = self.namespace.as_deref();
                return Ok(decoded(&cache.state())
                    .iter()
                    .filter(|r| ns.is_none() || r.metadata.namespace.as_deref() == ns)
                    .map(|r| r.as_ref().clone())
                    .collect());
            }
            // Guarded: one undecodable Rollout must not fail the list of all the others.
            let api: Api<GuardedRollout> = match &self.namespace {
                Some(ns) => Api::namespaced(self.client.clone(), ns),
                None => Api::all(self.client.clone()),
            };
            let list = api
                .list(&ListParams::default())
                .await
                .map_err(|e| map_kube_error(e, self.namespace.as_deref().unwrap_or("*"), "*"))?;
            Ok(list.items.into_iter().filter_map(|g| g.0.ok()).collect())
        })
    }

    fn get<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Rollout, StoreError>> {
        Box::pin(async move {
            if let Some(cache) = self.ready_cache().await {
                // A miss may be an object created a moment ago: ask the API server then.
                if let Some(r) = cache
                    .get(&ObjectRef::new(name).within(namespace))
                    .and_then(|g| g.0.as_ref().ok().cloned())
                {
                    return Ok(r);
                }
            }
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

    /// The pod-template hash of the target Deployment as Sluice computes revisions.
    fn desired_revision<'a>(
        &'a self,
        rollout: &'a Rollout,
    ) -> BoxFuture<'a, Result<Option<String>, StoreError>> {
        Box::pin(async move {
            let ns = rollout.metadata.namespace.as_deref().unwrap_or("default");
            let target = &rollout.spec.target_ref.name;
            let api: Api<k8s_openapi::api::apps::v1::Deployment> =
                Api::namespaced(self.client.clone(), ns);
            match api.get_opt(target).await {
                Ok(Some(d)) => Ok(crate::k8s::objects::template_revision(&d)),
                Ok(None) => Ok(None),
                Err(e) => Err(map_kube_error(e, ns, target)),
            }
        })
    }
}
