//! One generator per rollout, kept in step with its [`LoadPlan`]: started when a plan appears,
//! restarted when it changes, stopped when it goes away (and when the manager is dropped).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::generator;
use super::plan::LoadPlan;
use crate::telemetry::Telemetry;

struct Running {
    plan: LoadPlan,
    stop: CancellationToken,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Cheap to clone: clones share the running generators.
#[derive(Clone)]
pub struct LoadManager {
    running: Arc<Mutex<BTreeMap<String, Running>>>,
    /// `None` when no HTTP client could be built (the reason is logged once, at start).
    client: Option<reqwest::Client>,
    telemetry: Telemetry,
}

impl LoadManager {
    pub fn new(telemetry: Telemetry) -> Self {
        // No proxy: the canary's address is in-cluster or local. No redirects: a redirect
        // could lead the load away from the canary.
        crate::cli::ensure_crypto_provider();
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| {
                warn!(error = %sluice_analysis::causes(&e), "no HTTP client: the built-in load cannot run");
            })
            .ok();
        Self {
            running: Arc::default(),
            client,
            telemetry,
        }
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Running>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Make rollout `key`'s load match `plan`. Needs a Tokio runtime to start a generator.
    pub fn apply(&self, key: &str, plan: Option<LoadPlan>) {
        let mut running = self.lock();
        match plan {
            None => {
                if let Some(r) = running.remove(key) {
                    info!(rollout = key, revision = %r.plan.revision, "built-in load stopped");
                }
            }
            Some(plan) => {
                if running.get(key).is_some_and(|r| r.plan == plan) {
                    return;
                }
                let Some(client) = &self.client else { return };
                let stop = CancellationToken::new();
                info!(
                    rollout = key,
                    revision = %plan.revision,
                    rate = plan.rate,
                    target = %plan.base,
                    "built-in load started"
                );
                tokio::spawn(generator::run(
                    plan.clone(),
                    client.clone(),
                    self.telemetry.clone(),
                    stop.clone(),
                ));
                // Replacing an older entry drops it, which stops its generator.
                running.insert(key.to_string(), Running { plan, stop });
            }
        }
    }

    /// Stop the load of every rollout not in `keys` (removed from the file, deleted).
    pub fn retain(&self, keys: &[String]) {
        self.lock().retain(|k, _| keys.contains(k));
    }

    /// Rollouts whose load is running.
    pub fn running(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }
}
