//! The `sluice.dev/cleanup` finalizer: added on first sight; on deletion, traffic goes back to
//! primary, the canary Ingress / TraefikService member / HTTPRoute ref and the canary Service
//! are removed, the user's Deployment gets its replicas back, then the finalizer is dropped.

use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use sluice_crds::{Rollout, FINALIZER};
use tracing::info;

use super::error::{is_not_found, Error};
use super::workloads::{Workloads, FIELD_MANAGER};
use crate::router::TrafficRouter;

pub fn has_finalizer(r: &Rollout) -> bool {
    r.metadata
        .finalizers
        .as_ref()
        .is_some_and(|f| f.iter().any(|x| x == FINALIZER))
}

fn pp() -> PatchParams {
    PatchParams {
        field_manager: Some(FIELD_MANAGER.to_string()),
        ..PatchParams::default()
    }
}

/// Add the finalizer (guarded by resourceVersion so others' finalizers are never lost).
pub async fn ensure(api: &Api<Rollout>, r: &Rollout) -> Result<(), Error> {
    if has_finalizer(r) {
        return Ok(());
    }
    let mut list = r.metadata.finalizers.clone().unwrap_or_default();
    list.push(FINALIZER.to_string());
    let patch =
        json!({"metadata": {"finalizers": list, "resourceVersion": r.metadata.resource_version}});
    let name = r.metadata.name.clone().unwrap_or_default();
    api.patch(&name, &pp(), &Patch::Merge(&patch)).await?;
    Ok(())
}

/// Clean up, then remove the finalizer so Kubernetes can delete the Rollout.
pub async fn cleanup(
    api: &Api<Rollout>,
    r: &Rollout,
    router: Option<&dyn TrafficRouter>,
    workloads: &dyn Workloads,
) -> Result<(), Error> {
    if let Some(router) = router {
        router.cleanup().await?;
    }
    workloads.cleanup().await?;
    let list: Vec<String> = r
        .metadata
        .finalizers
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|f| f != FINALIZER)
        .collect();
    let patch =
        json!({"metadata": {"finalizers": list, "resourceVersion": r.metadata.resource_version}});
    let name = r.metadata.name.clone().unwrap_or_default();
    match api.patch(&name, &pp(), &Patch::Merge(&patch)).await {
        Ok(_) => {}
        Err(e) if is_not_found(&e) => {}
        Err(e) => return Err(e.into()),
    }
    info!("clean-up done, finalizer removed");
    Ok(())
}
