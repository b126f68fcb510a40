//! Notifications in the Kubernetes shell: the sinks from `--notifications-file`, the worker, and
//! the `OutboxStore` that settles entries in the Rollout's `status.notifications` (a merge
//! patch guarded by the resourceVersion it read; a 409 is retried against a fresh read).

use std::sync::Arc;

use futures::future::BoxFuture;
use kube::api::{Api, Patch, PatchParams};
use kube::Client;
use sluice_crds::Rollout;

use super::error::{is_conflict, is_not_found};
use super::workloads::FIELD_MANAGER;
use crate::clock::Clock;
use crate::notify::{Feed, Notifier, OutboxOps, OutboxStore, Outcome, Sink};
use crate::telemetry::Telemetry;

/// Attempts of one settle write before it gives up (the entry stays pending).
const SETTLE_ATTEMPTS: u32 = 5;

/// What reconciles need to notify: every Rollout notifies these sinks.
pub struct KubeNotify {
    pub notifier: Notifier,
    pub sinks: Vec<Sink>,
    pub dashboard_url: Option<String>,
}

impl KubeNotify {
    pub fn feed<'a>(&'a self, telemetry: &'a Telemetry) -> Feed<'a> {
        Feed {
            notifier: &self.notifier,
            sinks: &self.sinks,
            dashboard_url: self.dashboard_url.as_deref(),
            telemetry,
        }
    }
}

/// Settles outbox entries in the Rollout's status.
pub struct KubeOutbox {
    pub client: Client,
    pub clock: Arc<dyn Clock>,
}

impl KubeOutbox {
    async fn settle_once(
        &self,
        namespace: &str,
        rollout: &str,
        sink: &str,
        key: &str,
        outcome: Outcome,
    ) -> Result<(), String> {
        let api: Api<Rollout> = Api::namespaced(self.client.clone(), namespace);
        for _ in 0..SETTLE_ATTEMPTS {
            let current = match api.get_status(rollout).await {
                Ok(r) => r,
                // Deleted meanwhile: nothing to record.
                Err(e) if is_not_found(&e) => return Ok(()),
                Err(e) => return Err(e.to_string()),
            };
            let mut outbox = current.status.map(|s| s.notifications).unwrap_or_default();
            if !outbox.settle(sink, key, outcome, self.clock.now()) {
                return Ok(());
            }
            // Both arrays spelled out: a merge patch replaces arrays whole, and an empty
            // `pending` must replace the stored one.
            let patch = serde_json::json!({
                "metadata": {"resourceVersion": current.metadata.resource_version},
                "status": {"notifications": {
                    "pending": outbox.pending,
                    "settled": outbox.settled,
                }},
            });
            let pp = PatchParams {
                field_manager: Some(FIELD_MANAGER.to_string()),
                ..PatchParams::default()
            };
            match api.patch_status(rollout, &pp, &Patch::Merge(&patch)).await {
                Ok(_) => return Ok(()),
                Err(e) if is_conflict(&e) => continue,
                Err(e) => return Err(e.to_string()),
            }
        }
        Err(format!(
            "the status kept changing ({SETTLE_ATTEMPTS} conflicts)"
        ))
    }
}

impl OutboxStore for KubeOutbox {
    fn settle<'a>(
        &'a self,
        namespace: &'a str,
        rollout: &'a str,
        sink: &'a str,
        key: &'a str,
        outcome: Outcome,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(self.settle_once(namespace, rollout, sink, key, outcome))
    }
}

/// Start the worker for `--notifications-file`.
pub fn start(
    path: &std::path::Path,
    client: &Client,
    clock: Arc<dyn Clock>,
    telemetry: &Telemetry,
) -> anyhow::Result<KubeNotify> {
    let (cfg, sinks) = crate::notify::config::load_file(path).map_err(anyhow::Error::msg)?;
    let store = Arc::new(KubeOutbox {
        client: client.clone(),
        clock: clock.clone(),
    });
    let notifier = Notifier::start(
        cfg.queue_capacity
            .unwrap_or(crate::notify::config::DEFAULT_QUEUE_CAPACITY),
        cfg.retry.policy(),
        store,
        clock,
        telemetry.clone(),
    )?;
    Ok(KubeNotify {
        notifier,
        sinks,
        dashboard_url: cfg.dashboard_url,
    })
}
