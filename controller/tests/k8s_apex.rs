//! The apex Service (`spec.service.apex`): Service `NAME`, what in-cluster callers use, selects
//! pods that serve (ready, with replicas) at every point of a rollout, a promotion, a second
//! rollout and its abort (as does the selector docs/install.md gives for NetworkPolicies and
//! PodDisruptionBudgets), and is handed back selecting the target's pods when the Rollout goes.

mod k8s_common;

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, ListParams};
use kube::Client;
use sluice_controller::clock::ManualClock;
use sluice_controller::k8s::names::Names;
use sluice_controller::k8s::workloads::{KubeWorkloads, Workloads};
use sluice_crds::{CommandAction, Rollout};

use k8s_common::*;

fn apex_rollout() -> Rollout {
    let mut r = rollout();
    r.spec.service.apex = true;
    r
}

async fn apex(client: &Client) -> Service {
    Api::<Service>::namespaced(client.clone(), NS)
        .get(APP)
        .await
        .expect("apex Service")
}

fn matches(selector: &BTreeMap<String, String>, labels: &BTreeMap<String, String>) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// Ready replicas of the Deployments whose pods the apex Service selects.
async fn serving_pods_selected(client: &Client) -> i32 {
    let sel = apex(client)
        .await
        .spec
        .and_then(|s| s.selector)
        .unwrap_or_default();
    let mut ready = 0;
    for d in Api::<Deployment>::namespaced(client.clone(), NS)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
    {
        let labels = d
            .spec
            .as_ref()
            .and_then(|s| s.template.metadata.as_ref())
            .and_then(|m| m.labels.clone())
            .unwrap_or_default();
        let replicas = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
        let available = d
            .status
            .as_ref()
            .and_then(|s| s.available_replicas)
            .unwrap_or(0);
        if matches(&sel, &labels) {
            ready += replicas.min(available);
        }
    }
    ready
}

/// What docs/install.md tells users to put in NetworkPolicies, PodDisruptionBudgets and
/// PodMonitors (`matchExpressions: [{key: app, operator: In, values: [APP, APP-primary]}]`), in
/// the label-selector string form the API server accepts.
const POLICY_SELECTOR: &str = "app in (podinfo,podinfo-primary)";

/// Deployments running pods (replicas > 0) whose pod labels `selector` does not match, judged by
/// kube-fake-client's implementation of Kubernetes label selectors.
async fn pods_outside(client: &Client, selector: &str) -> Vec<String> {
    let mut out = Vec::new();
    for d in Api::<Deployment>::namespaced(client.clone(), NS)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
    {
        let spec = d.spec.clone().unwrap_or_default();
        let labels = spec
            .template
            .metadata
            .and_then(|m| m.labels)
            .unwrap_or_default();
        if spec.replicas.unwrap_or(1) > 0
            && !kube_fake_client::label_selector::matches_label_selector(&labels, selector).unwrap()
        {
            out.push(d.metadata.name.clone().unwrap_or_default());
        }
    }
    out
}

/// Tick until `phase`, checking after each tick that the apex Service reaches serving pods.
async fn until_checked(
    client: &Client,
    ctx: &Arc<sluice_controller::k8s::Context>,
    clock: &ManualClock,
    phase: &str,
) {
    for _ in 0..40 {
        let p = tick(client, ctx, clock, chrono::Duration::seconds(30)).await;
        kubelet(client).await;
        assert!(
            serving_pods_selected(client).await >= 3,
            "no serving pod behind the apex at {p:?}"
        );
        let uncovered = pods_outside(client, POLICY_SELECTOR).await;
        assert!(
            uncovered.is_empty(),
            "pods of {uncovered:?} escape the documented policy selector at {p:?}"
        );
        if p.phase == phase {
            return;
        }
    }
    panic!("{phase} not reached");
}

#[tokio::test]
async fn the_apex_service_selects_serving_pods_through_rollout_and_rollback() {
    let client = client_with(apex_rollout(), None).await;
    let clock = Arc::new(ManualClock::new(start()));
    let ctx = context(&client, &clock);
    until_checked(&client, &ctx, &clock, "Idle").await;
    let svc = apex(&client).await;
    assert_eq!(
        svc.spec.as_ref().and_then(|s| s.selector.clone()),
        Some(BTreeMap::from([(
            "app".to_string(),
            "podinfo-primary".to_string()
        )]))
    );
    assert!(svc.metadata.owner_references.is_some());

    // A rollout to the end, then another one aborted half-way.
    set_image(&client, "podinfo:2.0").await;
    until_checked(&client, &ctx, &clock, "Succeeded").await;
    set_image(&client, "podinfo:3.0").await;
    until_checked(&client, &ctx, &clock, "Progressing").await;
    send_command(&client, &command(CommandAction::Abort, "abort-1")).await;
    until_checked(&client, &ctx, &clock, "Failed").await;

    // Rollout deletion hands the Service back: it selects the target's pods, is not owned.
    KubeWorkloads::new(client.clone(), Names::of(&apex_rollout()))
        .cleanup()
        .await
        .unwrap();
    let svc = apex(&client).await;
    assert_eq!(
        svc.spec.as_ref().and_then(|s| s.selector.clone()),
        Some(BTreeMap::from([("app".to_string(), "podinfo".to_string())]))
    );
    assert!(svc.metadata.owner_references.is_none_or(|o| o.is_empty()));
    let labels = svc.metadata.labels.unwrap_or_default();
    assert!(
        !labels.contains_key(sluice_crds::MANAGED_BY_LABEL),
        "{labels:?}"
    );
}

#[tokio::test]
async fn a_users_own_apex_service_is_not_taken_over() {
    let users = Service {
        metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            name: Some(APP.into()),
            namespace: Some(NS.into()),
            ..Default::default()
        },
        spec: Some(k8s_openapi::api::core::v1::ServiceSpec {
            selector: Some(BTreeMap::from([("app".to_string(), APP.to_string())])),
            ..Default::default()
        }),
        status: None,
    };
    let client = builder()
        .with_object(apex_rollout())
        .with_object(target("podinfo:1.0", 3))
        .with_object(user_ingress())
        .with_object(users)
        .build()
        .await
        .unwrap();
    let clock = Arc::new(ManualClock::new(start()));
    let ctx = context(&client, &clock);
    for _ in 0..3 {
        kubelet(&client).await;
        let _ =
            sluice_controller::k8s::reconcile(Arc::new(get_rollout(&client).await), ctx.clone())
                .await;
    }
    let st = get_rollout(&client).await.status.unwrap();
    let ready = st.condition("Ready").unwrap();
    assert_eq!(ready.reason, "Blocked");
    assert!(
        ready
            .message
            .contains("Service demo/podinfo already exists"),
        "{}",
        ready.message
    );
    assert_eq!(
        apex(&client).await.spec.and_then(|s| s.selector),
        Some(BTreeMap::from([("app".to_string(), "podinfo".to_string())]))
    );
}
