//! Traefik router: a TraefikService (`traefik.io/v1alpha1` or `traefik.containo.us/v1alpha1`) whose
//! `spec.weighted.services` holds the primary and canary Services. A member at weight 0 is left
//! out (Traefik drops a weighted service whose member has no ready endpoints).

use futures::future::BoxFuture;
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use kube::Client;
use serde_json::{json, Value};
use sluice_crds::TraefikRouter;
use tracing::info;

use super::ingress_nginx::kube_err;
use super::{RouterError, TrafficRouter};
use crate::k8s::names::Names;

/// The TraefikService API resource of `group` (`traefik.io` by default).
/// TraefikService groups: Traefik v3 `traefik.io`, v2 `traefik.containo.us`.
pub const GROUPS: [&str; 2] = ["traefik.io", "traefik.containo.us"];

pub fn api_resource(group: Option<&str>) -> ApiResource {
    let gvk = GroupVersionKind::gvk(group.unwrap_or("traefik.io"), "v1alpha1", "TraefikService");
    ApiResource::from_gvk_with_plural(&gvk, "traefikservices")
}

/// Weighted members for `weight`% to the canary; 0-weight members are left out.
pub fn weighted_members(names: &Names, weight: i32) -> Vec<Value> {
    let mut out = Vec::new();
    if weight < 100 {
        out.push(
            json!({"name": names.primary_service, "port": names.port, "weight": 100 - weight}),
        );
    }
    if weight > 0 {
        out.push(json!({"name": names.canary_service, "port": names.port, "weight": weight}));
    }
    out
}

/// The member list `obj` should have: its foreign members kept, ours replaced.
pub fn merged_members(existing: Option<&Value>, names: &Names, weight: i32) -> Vec<Value> {
    let ours = [
        names.primary_service.as_str(),
        names.canary_service.as_str(),
    ];
    let mut out: Vec<Value> = existing
        .and_then(|v| v.pointer("/spec/weighted/services"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter(|m| {
                    !m.get("name")
                        .and_then(Value::as_str)
                        .is_some_and(|n| ours.contains(&n))
                })
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    out.extend(weighted_members(names, weight));
    out
}

/// A TraefikService Sluice generates (when the Rollout names none).
pub fn traefik_service(ar: &ApiResource, name: &str, names: &Names, weight: i32) -> DynamicObject {
    let mut obj = DynamicObject::new(name, ar)
        .within(&names.namespace)
        .data(json!({"spec": {"weighted": {"services": weighted_members(names, weight)}}}));
    obj.metadata.labels = Some(names.managed_labels());
    obj.metadata.owner_references = names.owner_references();
    obj
}

/// Canary share in percent read from the members (Traefik weights are relative).
pub fn weight_of(data: &Value, names: &Names) -> Option<i32> {
    let members = data.pointer("/spec/weighted/services")?.as_array()?;
    let weight_of_member = |svc: &str| {
        members
            .iter()
            .find(|m| m.get("name").and_then(Value::as_str) == Some(svc))
            .map(|m| m.get("weight").and_then(Value::as_i64).unwrap_or(1))
    };
    match (
        weight_of_member(&names.primary_service),
        weight_of_member(&names.canary_service),
    ) {
        (None, None) => None,
        (Some(_), None) => Some(0),
        (None, Some(_)) => Some(100),
        (Some(p), Some(c)) if p + c <= 0 => Some(0),
        (Some(p), Some(c)) => Some(((c * 100) as f64 / (p + c) as f64).round() as i32),
    }
}

/// The TraefikService router of one Rollout.
pub struct TraefikCrdRouter {
    api: Api<DynamicObject>,
    ar: ApiResource,
    names: Names,
    name: String,
    /// Sluice generates the object itself (no `traefikServiceRef`).
    generated: bool,
}

impl TraefikCrdRouter {
    pub fn new(client: Client, names: Names, cfg: &TraefikRouter) -> Self {
        let ar = api_resource(cfg.api_group.as_deref());
        let generated = cfg.traefik_service_ref.is_none();
        let name = cfg
            .traefik_service_ref
            .clone()
            .unwrap_or_else(|| names.target.clone());
        Self {
            api: Api::namespaced_with(client, &names.namespace, &ar),
            ar,
            names,
            name,
            generated,
        }
    }

    async fn write(&self, weight: i32, create: bool) -> Result<(), RouterError> {
        if !(0..=100).contains(&weight) {
            return Err(RouterError::InvalidWeight(weight));
        }
        match self.api.get_opt(&self.name).await.map_err(kube_err)? {
            None if create && self.generated => {
                let obj = traefik_service(&self.ar, &self.name, &self.names, weight);
                self.api
                    .create(&PostParams::default(), &obj)
                    .await
                    .map_err(kube_err)?;
                info!(traefikservice = %self.name, weight, "created TraefikService");
            }
            None if create => {
                return Err(RouterError::NotFound(format!(
                    "TraefikService {}",
                    self.name
                )))
            }
            None => {}
            Some(existing) => {
                let wanted = merged_members(Some(&existing.data), &self.names, weight);
                let current = existing.data.pointer("/spec/weighted/services");
                if current != Some(&Value::Array(wanted.clone())) {
                    // resourceVersion: a concurrent edit makes the whole-array write fail (409).
                    let patch = json!({
                        "metadata": {"resourceVersion": existing.metadata.resource_version},
                        "spec": {"weighted": {"services": wanted}}
                    });
                    let pp = PatchParams {
                        field_manager: Some(crate::k8s::workloads::FIELD_MANAGER.to_string()),
                        ..PatchParams::default()
                    };
                    self.api
                        .patch(&self.name, &pp, &Patch::Merge(&patch))
                        .await
                        .map_err(kube_err)?;
                    info!(traefikservice = %self.name, weight, "patched TraefikService weights");
                }
            }
        }
        Ok(())
    }
}

impl TrafficRouter for TraefikCrdRouter {
    fn set_weight(&self, weight: i32) -> BoxFuture<'_, Result<(), RouterError>> {
        Box::pin(self.write(weight, true))
    }

    fn current_weight(&self) -> BoxFuture<'_, Result<Option<i32>, RouterError>> {
        Box::pin(async move {
            let obj = self.api.get_opt(&self.name).await.map_err(kube_err)?;
            Ok(obj.and_then(|o| weight_of(&o.data, &self.names)))
        })
    }

    /// All traffic to primary; the canary member is removed. The object itself stays: the
    /// user's IngressRoute refers to it.
    fn cleanup(&self) -> BoxFuture<'_, Result<(), RouterError>> {
        Box::pin(self.write(0, false))
    }
}
