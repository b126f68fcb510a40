//! Workloads of one Rollout behind a small trait: observe target/primary, copy the target to
//! `NAME-primary`, keep the Services, scale the canary. `KubeWorkloads` is the Kubernetes one.

use futures::future::BoxFuture;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::Client;
use serde_json::json;
use tracing::{debug, info};

use super::error::{is_not_found, Error};
use super::names::{is_managed, Names, DESIRED_REPLICAS_ANNOTATION};
use super::objects::{
    apex_service, canary_service, desired_replicas, not_ours, primary_deployment, primary_revision,
    primary_service, release_apex_patch, selector_changed, service_patch, workload_state,
};
use super::raw::{
    deployment_resource, keep_previous_template, raw_revision, reverted_primary, to_dynamic,
    to_json, typed, with_raw_template,
};
use crate::core::WorkloadState;

/// What `apply_primary` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyOutcome {
    Created,
    Updated,
    Unchanged,
    /// The target no longer has the requested revision (the user changed it again): nothing copied.
    RevisionMoved,
    /// The target Deployment does not exist.
    TargetMissing,
}

/// The Deployments and Services of one Rollout.
pub trait Workloads: Send + Sync {
    /// (target, primary) as the state machine sees them.
    fn observe(&self) -> BoxFuture<'_, Result<(WorkloadState, WorkloadState), Error>>;
    /// Copy the target to `NAME-primary` if the target's revision is `revision`; ensure the Services.
    fn apply_primary<'a>(&'a self, revision: &'a str)
        -> BoxFuture<'a, Result<ApplyOutcome, Error>>;
    /// Put `NAME-primary` back on the template it kept for `revision` (post-promotion revert).
    fn revert_primary<'a>(
        &'a self,
        revision: &'a str,
    ) -> BoxFuture<'a, Result<ApplyOutcome, Error>>;
    /// Create or repair the primary/canary Services (no-op while the target is missing).
    fn ensure_services(&self) -> BoxFuture<'_, Result<(), Error>>;
    /// Scale the target to the user's replicas (`up`) or to zero, recording the replicas first.
    fn scale_canary(&self, up: bool) -> BoxFuture<'_, Result<(), Error>>;
    /// On Rollout deletion: give the user's Deployment its replicas back, delete the canary Service.
    fn cleanup(&self) -> BoxFuture<'_, Result<(), Error>>;
}

/// Field manager name on every write.
pub const FIELD_MANAGER: &str = "sluice";

/// Workloads in a Kubernetes namespace.
pub struct KubeWorkloads {
    deployments: Api<Deployment>,
    /// The same Deployments as raw JSON (pod templates are copied as the server returned them).
    raw: Api<DynamicObject>,
    services: Api<Service>,
    hpas: Api<HorizontalPodAutoscaler>,
    names: Names,
}

impl KubeWorkloads {
    pub fn new(client: Client, names: Names) -> Self {
        Self {
            deployments: Api::namespaced(client.clone(), &names.namespace),
            raw: Api::namespaced_with(client.clone(), &names.namespace, &deployment_resource()),
            services: Api::namespaced(client.clone(), &names.namespace),
            hpas: Api::namespaced(client, &names.namespace),
            names,
        }
    }

    async fn ensure_service(&self, wanted: Service) -> Result<(), Error> {
        let name = wanted.metadata.name.clone().unwrap_or_default();
        match self.services.get_opt(&name).await? {
            None => {
                self.services
                    .create(&PostParams::default(), &wanted)
                    .await?;
                info!(service = %name, "created service");
            }
            Some(existing) => {
                if let Some(why) = not_ours(&self.names, "Service", &existing.metadata) {
                    return Err(Error::Invalid(why));
                }
                if let Some(patch) = service_patch(&existing, &wanted) {
                    self.services
                        .patch(&name, &pp(), &Patch::Merge(&patch))
                        .await?;
                    info!(service = %name, "updated service selector/ports");
                }
            }
        }
        Ok(())
    }

    async fn ensure_services_for(&self, target: &Deployment) -> Result<(), Error> {
        self.ensure_service(primary_service(&self.names, target))
            .await?;
        if let Some(apex) = &self.names.apex_service {
            self.ensure_service(apex_service(&self.names, apex, target))
                .await?;
        }
        self.ensure_service(canary_service(&self.names, target))
            .await
    }

    /// The apex Service back to the user, selecting the target's pods (Rollout deletion).
    async fn release_apex(&self) -> Result<(), Error> {
        let Some(apex) = &self.names.apex_service else {
            return Ok(());
        };
        let (Some(svc), Some(target)) = (
            self.services.get_opt(apex).await?,
            self.deployments.get_opt(&self.names.target).await?,
        ) else {
            return Ok(());
        };
        if not_ours(&self.names, "Service", &svc.metadata).is_some() {
            return Ok(());
        }
        let patch = release_apex_patch(&svc, &target);
        self.services
            .patch(apex, &pp(), &Patch::Merge(&patch))
            .await?;
        info!(service = %apex, "handed the apex service back, selecting the target's pods");
        Ok(())
    }

    /// A Deployment as raw JSON and as the typed view of it.
    async fn get_raw(&self, name: &str) -> Result<Option<(serde_json::Value, Deployment)>, Error> {
        let Some(obj) = self.raw.get_opt(name).await? else {
            return Ok(None);
        };
        let raw = to_json(&obj)?;
        let d = typed(&raw)?;
        Ok(Some((raw, d)))
    }

    /// min/max replicas of an HPA scaling the target, if there is one.
    async fn hpa_bounds(&self) -> Result<Option<(i32, i32)>, Error> {
        let list = match self.hpas.list(&ListParams::default()).await {
            Ok(l) => l,
            // No autoscaling API (or not allowed to list it): behave as without HPA.
            Err(e) if is_not_found(&e) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        Ok(list.items.iter().find_map(|h| {
            let spec = h.spec.as_ref()?;
            let r = &spec.scale_target_ref;
            (r.kind == "Deployment" && r.name == self.names.target)
                .then(|| (spec.min_replicas.unwrap_or(1), spec.max_replicas))
        }))
    }
}

fn pp() -> PatchParams {
    PatchParams {
        field_manager: Some(FIELD_MANAGER.to_string()),
        ..PatchParams::default()
    }
}

impl Workloads for KubeWorkloads {
    fn observe(&self) -> BoxFuture<'_, Result<(WorkloadState, WorkloadState), Error>> {
        Box::pin(async move {
            let target = self.get_raw(&self.names.target).await?;
            let primary = self.deployments.get_opt(&self.names.primary).await?;
            let t_rev = target.as_ref().and_then(|(raw, _)| raw_revision(raw));
            if let Some(why) = primary
                .as_ref()
                .and_then(|p| not_ours(&self.names, "Deployment", &p.metadata))
            {
                return Err(Error::Invalid(why));
            }
            let p_rev = primary.as_ref().and_then(primary_revision);
            Ok((
                workload_state(target.as_ref().map(|(_, d)| d), t_rev),
                workload_state(primary.as_ref(), p_rev),
            ))
        })
    }

    fn apply_primary<'a>(
        &'a self,
        revision: &'a str,
    ) -> BoxFuture<'a, Result<ApplyOutcome, Error>> {
        Box::pin(async move {
            let Some((raw_target, target)) = self.get_raw(&self.names.target).await? else {
                return Ok(ApplyOutcome::TargetMissing);
            };
            if raw_revision(&raw_target).as_deref() != Some(revision) {
                debug!(
                    revision,
                    "target moved to another revision; primary not copied"
                );
                return Ok(ApplyOutcome::RevisionMoved);
            }
            let existing = self.get_raw(&self.names.primary).await?;
            let outcome = match &existing {
                None => {
                    let obj = primary_deployment(&self.names, &target, revision, None);
                    let obj = with_raw_template(&obj, &raw_target).map_err(Error::Invalid)?;
                    self.raw
                        .create(&PostParams::default(), &to_dynamic(obj)?)
                        .await?;
                    info!(revision, "created primary deployment");
                    ApplyOutcome::Created
                }
                Some((_, e)) if primary_revision(e).as_deref() == Some(revision) => {
                    ApplyOutcome::Unchanged
                }
                Some((raw_existing, e)) => {
                    if let Some(why) = not_ours(&self.names, "Deployment", &e.metadata) {
                        return Err(Error::Invalid(why));
                    }
                    // Full replace (resourceVersion kept): removed fields must disappear too.
                    let obj = primary_deployment(&self.names, &target, revision, Some(e));
                    if let Some(why) = selector_changed(&self.names, e, &obj) {
                        return Err(Error::Invalid(why));
                    }
                    let mut obj = with_raw_template(&obj, &raw_target).map_err(Error::Invalid)?;
                    keep_previous_template(&mut obj, raw_existing).map_err(Error::Invalid)?;
                    self.raw
                        .replace(
                            &self.names.primary,
                            &PostParams::default(),
                            &to_dynamic(obj)?,
                        )
                        .await?;
                    info!(revision, "copied target template to primary");
                    ApplyOutcome::Updated
                }
            };
            self.ensure_services_for(&target).await?;
            Ok(outcome)
        })
    }

    fn revert_primary<'a>(
        &'a self,
        revision: &'a str,
    ) -> BoxFuture<'a, Result<ApplyOutcome, Error>> {
        Box::pin(async move {
            let Some((raw_existing, existing)) = self.get_raw(&self.names.primary).await? else {
                return Err(Error::Invalid(format!(
                    "cannot revert to revision {revision}: {} does not exist",
                    self.names.primary
                )));
            };
            if primary_revision(&existing).as_deref() == Some(revision) {
                return Ok(ApplyOutcome::Unchanged);
            }
            let obj = reverted_primary(&raw_existing, revision).map_err(Error::Invalid)?;
            self.raw
                .replace(
                    &self.names.primary,
                    &PostParams::default(),
                    &to_dynamic(obj)?,
                )
                .await?;
            info!(revision, "reverted primary to its previous template");
            Ok(ApplyOutcome::Updated)
        })
    }

    fn ensure_services(&self) -> BoxFuture<'_, Result<(), Error>> {
        Box::pin(async move {
            if let Some(target) = self.deployments.get_opt(&self.names.target).await? {
                self.ensure_services_for(&target).await?;
            }
            Ok(())
        })
    }

    fn scale_canary(&self, up: bool) -> BoxFuture<'_, Result<(), Error>> {
        Box::pin(async move {
            let Some(target) = self.deployments.get_opt(&self.names.target).await? else {
                return Ok(());
            };
            let current = target.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
            let patch = if up {
                let mut want = desired_replicas(&target);
                if let Some((min, max)) = self.hpa_bounds().await? {
                    want = want.clamp(min.max(1), max.max(min.max(1)));
                }
                if current == want {
                    return Ok(());
                }
                json!({
                    "metadata": {
                        "annotations": {DESIRED_REPLICAS_ANNOTATION: null},
                        "resourceVersion": target.metadata.resource_version,
                    },
                    "spec": {"replicas": want}
                })
            } else {
                if current == 0 {
                    return Ok(());
                }
                // An HPA stops acting on a Deployment at 0 replicas, so this is not fought.
                json!({
                    "metadata": {
                        "annotations": {DESIRED_REPLICAS_ANNOTATION: current.to_string()},
                        "resourceVersion": target.metadata.resource_version,
                    },
                    "spec": {"replicas": 0}
                })
            };
            // Guarded by the resourceVersion just read: if the user (or another replica) changed
            // the Deployment meanwhile, the write fails with 409 and the next reconcile decides
            // again on what is there now.
            self.deployments
                .patch(&self.names.target, &pp(), &Patch::Merge(&patch))
                .await?;
            info!(up, "scaled canary");
            Ok(())
        })
    }

    fn cleanup(&self) -> BoxFuture<'_, Result<(), Error>> {
        Box::pin(async move {
            self.scale_canary(true).await?;
            self.release_apex().await?;
            if let Some(svc) = self.services.get_opt(&self.names.canary_service).await? {
                if is_managed(&svc.metadata.labels.clone().unwrap_or_default()) {
                    match self
                        .services
                        .delete(&self.names.canary_service, &Default::default())
                        .await
                    {
                        Ok(_) => {}
                        Err(e) if is_not_found(&e) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
            }
            Ok(())
        })
    }
}
