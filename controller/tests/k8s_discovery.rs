//! Which router resources the cluster serves (k8s::discovery) against kube-fake-client: an
//! HTTPRoute served only as `v1beta1` (older Gateway API releases) is used through that version,
//! a cluster without HTTPRoute gets a clear report, and TraefikService groups are found.

mod k8s_common;

use kube::api::{Api, DynamicObject};
use kube::CustomResource;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sluice_controller::k8s::discovery::served;
use sluice_controller::k8s::names::Names;
use sluice_controller::router::gateway::GatewayRouter;
use sluice_controller::router::{RouterError, TrafficRouter};
use sluice_crds::Rollout;

use k8s_common::*;

/// HTTPRoute as a Gateway API v0.x cluster serves it.
#[derive(CustomResource, Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[kube(
    group = "gateway.networking.k8s.io",
    version = "v1beta1",
    kind = "HTTPRoute",
    plural = "httproutes",
    namespaced,
    schema = "disabled"
)]
pub struct HTTPRouteSpec {
    #[serde(flatten)]
    pub rest: serde_json::Map<String, serde_json::Value>,
}

fn route(version: &str) -> serde_json::Value {
    json!({
        "apiVersion": format!("gateway.networking.k8s.io/{version}"),
        "kind": "HTTPRoute",
        "metadata": {"name": "podinfo", "namespace": NS},
        "spec": {"rules": [{"backendRefs": [{"name": "podinfo-primary", "port": 80}]}]}
    })
}

#[tokio::test]
async fn an_httproute_served_only_as_v1beta1_is_used_through_v1beta1() {
    let client = kube_fake_client::ClientBuilder::new()
        .with_resource::<Rollout>()
        .with_status_subresource::<Rollout>()
        .with_resource::<HTTPRoute>()
        .with_runtime_objects(vec![route("v1beta1")])
        .build()
        .await
        .unwrap();
    let s = served(&client, Some(NS)).await;
    let ar = s.httproute.clone().expect("v1beta1 found");
    assert_eq!(ar.api_version, "gateway.networking.k8s.io/v1beta1");
    // No Traefik CRDs in this cluster.
    assert!(s.traefik.is_empty(), "{:?}", s.traefik);

    let router = GatewayRouter::new(
        client.clone(),
        Names::of(&rollout()),
        "podinfo".into(),
        Some(&ar),
    );
    router.set_weight(30).await.unwrap();
    assert_eq!(router.current_weight().await.unwrap(), Some(30));
    let stored = Api::<DynamicObject>::namespaced_with(client.clone(), NS, &ar)
        .get("podinfo")
        .await
        .unwrap();
    assert_eq!(
        stored.data["spec"]["rules"][0]["backendRefs"][1]["weight"],
        30
    );
}

#[tokio::test]
async fn a_cluster_without_httproute_is_reported_clearly() {
    let client = kube_fake_client::ClientBuilder::new()
        .with_resource::<Rollout>()
        .build()
        .await
        .unwrap();
    let s = served(&client, Some(NS)).await;
    assert!(s.httproute.is_none());
    let router = GatewayRouter::new(client, Names::of(&rollout()), "podinfo".into(), None);
    match router.set_weight(10).await {
        Err(RouterError::NotFound(m)) => {
            assert!(m.contains("serves no HTTPRoute"), "{m}");
            assert!(m.contains("v1 or v1beta1"), "{m}");
            assert!(m.contains("install the Gateway API CRDs"), "{m}");
        }
        other => panic!("expected a NotFound report, got {other:?}"),
    }
    // Deleting a Rollout still works: nothing to clean up.
    assert!(GatewayRouter::new(
        builder().build().await.unwrap(),
        Names::of(&rollout()),
        "podinfo".into(),
        None
    )
    .cleanup()
    .await
    .is_ok());
}

#[tokio::test]
async fn the_current_versions_are_preferred() {
    let client = builder()
        .with_runtime_objects(vec![route("v1")])
        .build()
        .await
        .unwrap();
    let s = served(&client, Some(NS)).await;
    assert_eq!(
        s.httproute.map(|a| a.api_version),
        Some("gateway.networking.k8s.io/v1".to_string())
    );
    let groups: Vec<String> = s.traefik.iter().map(|a| a.group.clone()).collect();
    assert_eq!(groups, ["traefik.io"]);
}
