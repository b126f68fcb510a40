//! Gateway API router: the weights of the `NAME-primary` / `NAME-canary` backendRefs of the
//! user's HTTPRoute (the canary ref is added next to the primary one when missing).

use futures::future::BoxFuture;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::Client;
use serde_json::{json, Value};
use tracing::info;

use super::ingress_nginx::kube_err;
use super::{RouterError, TrafficRouter};
use crate::k8s::names::Names;

/// HTTPRoute versions Sluice can use, preferred first. v1beta1 has the same `rules[].backendRefs
/// [].weight` shape (Gateway API v0.6+ served HTTPRoute as v1beta1 before v1.0 made it v1).
pub const VERSIONS: [&str; 2] = ["v1", "v1beta1"];

/// `gateway.networking.k8s.io/v1` HTTPRoute.
pub fn api_resource() -> ApiResource {
    api_resource_version("v1")
}

/// HTTPRoute of `gateway.networking.k8s.io/<version>`.
pub fn api_resource_version(version: &str) -> ApiResource {
    let gvk = GroupVersionKind::gvk("gateway.networking.k8s.io", version, "HTTPRoute");
    ApiResource::from_gvk_with_plural(&gvk, "httproutes")
}

/// What a Rollout reports when the cluster serves no HTTPRoute version Sluice knows.
pub fn not_served_message() -> String {
    format!(
        "the cluster serves no HTTPRoute (gateway.networking.k8s.io {}): install the Gateway API \
         CRDs (standard channel) and restart Sluice, or use another router",
        VERSIONS.join(" or ")
    )
}

fn ref_name(r: &Value) -> Option<&str> {
    r.get("name").and_then(Value::as_str)
}

/// The route's `spec.rules` with weights set for `weight`% canary (`None`: remove canary refs).
/// Rules that reference neither primary nor canary are left alone.
pub fn rules_with_weight(spec: &Value, names: &Names, weight: Option<i32>) -> Value {
    let mut rules = spec.get("rules").cloned().unwrap_or_else(|| json!([]));
    let primary = names.primary_service.as_str();
    let canary = names.canary_service.as_str();
    for rule in rules.as_array_mut().into_iter().flatten() {
        let Some(refs) = rule.get_mut("backendRefs").and_then(Value::as_array_mut) else {
            continue;
        };
        let Some(pi) = refs.iter().position(|r| ref_name(r) == Some(primary)) else {
            continue;
        };
        let port = refs[pi].get("port").cloned().unwrap_or(json!(names.port));
        refs[pi]["weight"] = json!(100 - weight.unwrap_or(0));
        match weight {
            None => refs.retain(|r| ref_name(r) != Some(canary)),
            Some(w) => match refs.iter().position(|r| ref_name(r) == Some(canary)) {
                Some(ci) => refs[ci]["weight"] = json!(w),
                None => refs.insert(pi + 1, json!({"name": canary, "port": port, "weight": w})),
            },
        }
    }
    rules
}

/// Canary share in percent from the first rule that references the primary.
pub fn weight_of(spec: &Value, names: &Names) -> Option<i32> {
    let rules = spec.get("rules")?.as_array()?;
    for rule in rules {
        let Some(refs) = rule.get("backendRefs").and_then(Value::as_array) else {
            continue;
        };
        let w = |svc: &str| {
            refs.iter()
                .find(|r| ref_name(r) == Some(svc))
                .map(|r| r.get("weight").and_then(Value::as_i64).unwrap_or(1))
        };
        let (p, c) = (w(&names.primary_service), w(&names.canary_service));
        let Some(p) = p else { continue };
        let c = c.unwrap_or(0);
        if p + c <= 0 {
            return Some(0);
        }
        return Some(((c * 100) as f64 / (p + c) as f64).round() as i32);
    }
    None
}

/// The HTTPRoute router of one Rollout.
pub struct GatewayRouter {
    /// None when the cluster serves no HTTPRoute version (every call reports it).
    api: Option<Api<DynamicObject>>,
    names: Names,
    route: String,
}

impl GatewayRouter {
    /// The router for HTTPRoute `route` of the served version `ar` (see `k8s::discovery`).
    pub fn new(client: Client, names: Names, route: String, ar: Option<&ApiResource>) -> Self {
        Self {
            api: ar.map(|ar| Api::namespaced_with(client, &names.namespace, ar)),
            names,
            route,
        }
    }

    fn api(&self) -> Result<&Api<DynamicObject>, RouterError> {
        self.api
            .as_ref()
            .ok_or_else(|| RouterError::NotFound(not_served_message()))
    }

    async fn write(&self, weight: Option<i32>) -> Result<(), RouterError> {
        let obj = self.api()?.get(&self.route).await.map_err(kube_err)?;
        let spec = obj.data.get("spec").cloned().unwrap_or_else(|| json!({}));
        let wanted = rules_with_weight(&spec, &self.names, weight);
        if spec.get("rules") == Some(&wanted) {
            return Ok(());
        }
        if weight.is_some() && weight_of(&json!({"rules": wanted}), &self.names).is_none() {
            return Err(RouterError::Rejected(format!(
                "HTTPRoute {} has no backendRef named {}",
                self.route, self.names.primary_service
            )));
        }
        // resourceVersion makes the whole-array write fail (409) if someone changed the route meanwhile.
        let patch = json!({
            "metadata": {"resourceVersion": obj.metadata.resource_version},
            "spec": {"rules": wanted}
        });
        let pp = PatchParams {
            field_manager: Some(crate::k8s::workloads::FIELD_MANAGER.to_string()),
            ..PatchParams::default()
        };
        self.api()?
            .patch(&self.route, &pp, &Patch::Merge(&patch))
            .await
            .map_err(kube_err)?;
        info!(httproute = %self.route, ?weight, "patched HTTPRoute weights");
        Ok(())
    }
}

impl TrafficRouter for GatewayRouter {
    fn set_weight(&self, weight: i32) -> BoxFuture<'_, Result<(), RouterError>> {
        Box::pin(async move {
            if !(0..=100).contains(&weight) {
                return Err(RouterError::InvalidWeight(weight));
            }
            self.write(Some(weight)).await
        })
    }

    fn current_weight(&self) -> BoxFuture<'_, Result<Option<i32>, RouterError>> {
        Box::pin(async move {
            let obj = self.api()?.get_opt(&self.route).await.map_err(kube_err)?;
            Ok(obj.and_then(|o| o.data.get("spec").and_then(|s| weight_of(s, &self.names))))
        })
    }

    fn cleanup(&self) -> BoxFuture<'_, Result<(), RouterError>> {
        Box::pin(async move {
            match self.write(None).await {
                // Nothing to clean up in a route (or an API) that is not there.
                Err(RouterError::NotFound(_)) => Ok(()),
                other => other,
            }
        })
    }
}
