//! Which router CRDs the cluster serves, found once at start: the HTTPRoute version
//! (`gateway.networking.k8s.io` v1, else v1beta1, which older Gateway API releases and
//! implementations serve) and the TraefikService groups (`traefik.io`, `traefik.containo.us`).
//!
//! Found by listing each collection with `limit=1`: a 404 for a collection means the version
//! is not served (for a named object it would be ambiguous). Served ones are watched, so edits
//! by others to an HTTPRoute or TraefikService Sluice manages are repaired at once.

use kube::api::{Api, ApiResource, DynamicObject, ListParams};
use kube::Client;
use sluice_crds::Rollout;

use super::error::is_not_found;
use crate::router::{gateway, traefik_crd};

/// The router resources the cluster serves.
#[derive(Debug, Clone)]
pub struct Served {
    /// The HTTPRoute version to use, None when neither v1 nor v1beta1 is served.
    pub httproute: Option<ApiResource>,
    /// TraefikService groups served.
    pub traefik: Vec<ApiResource>,
}

impl Default for Served {
    /// Without discovery: assume the current versions (tests, and the first reconcile).
    fn default() -> Self {
        Self {
            httproute: Some(gateway::api_resource_version("v1")),
            traefik: vec![
                traefik_crd::api_resource(Some("traefik.io")),
                traefik_crd::api_resource(Some("traefik.containo.us")),
            ],
        }
    }
}

/// False only when the API server says the collection does not exist (404). Other errors
/// (403 for a namespaced controller, a timeout) count as served: the router reports them later.
async fn serves(client: &Client, ns: Option<&str>, ar: &ApiResource) -> bool {
    let api: Api<DynamicObject> = match ns {
        Some(ns) => Api::namespaced_with(client.clone(), ns, ar),
        None => Api::all_with(client.clone(), ar),
    };
    match api.list(&ListParams::default().limit(1)).await {
        Ok(_) => true,
        Err(e) => !is_not_found(&e),
    }
}

/// Probe the cluster (in `ns`, or all namespaces).
pub async fn served(client: &Client, ns: Option<&str>) -> Served {
    let mut httproute = None;
    for v in gateway::VERSIONS {
        let ar = gateway::api_resource_version(v);
        if serves(client, ns, &ar).await {
            httproute = Some(ar);
            break;
        }
    }
    let mut traefik = Vec::new();
    for g in traefik_crd::GROUPS {
        let ar = traefik_crd::api_resource(Some(g));
        if serves(client, ns, &ar).await {
            traefik.push(ar);
        }
    }
    Served { httproute, traefik }
}

/// Rollouts whose Gateway API router manages HTTPRoute `name` in `ns`.
pub fn rollouts_for_httproute<'a>(
    rollouts: &'a [std::sync::Arc<Rollout>],
    ns: Option<&'a str>,
    name: &'a str,
) -> impl Iterator<Item = &'a Rollout> + 'a {
    rollouts.iter().map(|r| r.as_ref()).filter(move |r| {
        r.metadata.namespace.as_deref() == ns
            && r.spec
                .router
                .gateway_api
                .as_ref()
                .is_some_and(|g| g.http_route_ref == name)
    })
}

/// Rollouts whose Traefik router manages TraefikService `name` (its `traefikServiceRef`, or
/// the generated one named like the target) in `ns`.
pub fn rollouts_for_traefik_service<'a>(
    rollouts: &'a [std::sync::Arc<Rollout>],
    ns: Option<&'a str>,
    name: &'a str,
) -> impl Iterator<Item = &'a Rollout> + 'a {
    rollouts.iter().map(|r| r.as_ref()).filter(move |r| {
        r.metadata.namespace.as_deref() == ns
            && r.spec.router.traefik.as_ref().is_some_and(|t| {
                t.traefik_service_ref
                    .as_deref()
                    .unwrap_or(&r.spec.target_ref.name)
                    == name
            })
    })
}
