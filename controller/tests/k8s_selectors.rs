//! Selectors and names the shell must respect: a target selected by `matchExpressions`, an
//! unrelated `NAME-primary` (Deployment or Service) that Sluice must not take over, and a
//! target whose (immutable) selector changed.

mod k8s_common;

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelectorRequirement, ObjectMeta};
use kube::api::{Api, DeleteParams, PostParams};
use kube::Client;
use sluice_controller::clock::ManualClock;
use sluice_controller::k8s::{reconcile, Context};

use k8s_common::*;

async fn service_selector(client: &Client, name: &str) -> BTreeMap<String, String> {
    Api::<Service>::namespaced(client.clone(), NS)
        .get(name)
        .await
        .unwrap()
        .spec
        .and_then(|s| s.selector)
        .unwrap_or_default()
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

async fn ready_condition(client: &Client) -> Option<(String, String, String)> {
    let st = get_rollout(client).await.status?;
    let c = st.condition("Ready")?;
    Some((c.status.clone(), c.reason.clone(), c.message.clone()))
}

async fn reconcile_once(client: &Client, ctx: &Arc<Context>) {
    let _ = reconcile(Arc::new(get_rollout(client).await), ctx.clone()).await;
}

#[tokio::test]
async fn a_target_selected_by_match_expressions_gets_services_that_select_its_pods() {
    let mut t = target("podinfo:1.0", 3);
    let spec = t.spec.as_mut().unwrap();
    spec.selector.match_labels = None;
    spec.selector.match_expressions = Some(vec![LabelSelectorRequirement {
        key: "app".into(),
        operator: "In".into(),
        values: Some(vec![APP.into()]),
    }]);
    let client = builder()
        .with_object(rollout())
        .with_object(t)
        .with_object(user_ingress())
        .build()
        .await
        .unwrap();
    let clock = Arc::new(ManualClock::new(start()));
    let ctx = context(&client, &clock);
    run_until(&client, &ctx, &clock, "Idle", 10).await;

    // The canary Service selects the target's pods, the primary Service the primary's, and
    // neither is empty (an empty selector would select every pod of the namespace's Service).
    assert_eq!(
        service_selector(&client, "podinfo-canary").await,
        labels(&[("app", "podinfo")])
    );
    assert_eq!(
        service_selector(&client, "podinfo-primary").await,
        labels(&[("app", "podinfo-primary")])
    );
    let primary = deployment(&client, "podinfo-primary").await.unwrap();
    let spec = primary.spec.unwrap();
    assert_eq!(
        spec.selector.match_labels,
        Some(labels(&[("app", "podinfo-primary")]))
    );
    assert_eq!(
        spec.template.metadata.unwrap().labels.unwrap()["app"],
        "podinfo-primary"
    );
}

fn foreign_deployment() -> Deployment {
    let mut d = target("someone-else:7", 2);
    d.metadata.name = Some("podinfo-primary".into());
    d
}

#[tokio::test]
async fn an_unrelated_primary_deployment_is_not_taken_over() {
    let client = builder()
        .with_object(rollout())
        .with_object(target("podinfo:1.0", 3))
        .with_object(user_ingress())
        .with_object(foreign_deployment())
        .build()
        .await
        .unwrap();
    let clock = Arc::new(ManualClock::new(start()));
    let ctx = context(&client, &clock);
    for _ in 0..3 {
        kubelet(&client).await;
        reconcile_once(&client, &ctx).await;
    }
    let (status, reason, message) = ready_condition(&client).await.expect("Ready condition");
    assert_eq!((status.as_str(), reason.as_str()), ("False", "Blocked"));
    assert!(
        message.contains("podinfo-primary already exists and is not Sluice's"),
        "{message}"
    );
    let d = deployment(&client, "podinfo-primary").await.unwrap();
    let image = d.spec.unwrap().template.spec.unwrap().containers[0]
        .image
        .clone();
    assert_eq!(
        image.as_deref(),
        Some("someone-else:7"),
        "foreign primary changed"
    );
    // The user's Deployment keeps serving: not scaled down behind a primary that is not ours.
    let t = deployment(&client, APP).await.unwrap();
    assert_eq!(t.spec.unwrap().replicas, Some(3));
}

#[tokio::test]
async fn a_block_in_mid_rollout_is_lifted_as_soon_as_its_cause_is_gone() {
    let client = client_with(rollout(), None).await;
    let clock = Arc::new(ManualClock::new(start()));
    let ctx = context(&client, &clock);
    run_until(&client, &ctx, &clock, "Idle", 10).await;
    set_image(&client, "podinfo:2.0").await;
    run_until(&client, &ctx, &clock, "Progressing", 10).await;

    // The user's Ingress disappears mid-rollout: the router cannot write the weight.
    let ingresses: Api<Ingress> = Api::namespaced(client.clone(), NS);
    ingresses
        .delete(APP, &DeleteParams::default())
        .await
        .unwrap();
    let mut blocked = false;
    for _ in 0..5 {
        kubelet(&client).await;
        reconcile_once(&client, &ctx).await;
        clock.advance(chrono::Duration::seconds(30));
        if ready_condition(&client)
            .await
            .is_some_and(|(_, r, _)| r == "Blocked")
        {
            blocked = true;
            break;
        }
    }
    assert!(blocked, "a missing Ingress should block the rollout");

    // It comes back: the next reconcile that goes through lifts the block while the rollout
    // is still progressing (not only when a later promotion rewrites Ready).
    ingresses
        .create(&PostParams::default(), &user_ingress())
        .await
        .unwrap();
    kubelet(&client).await;
    reconcile_once(&client, &ctx).await;
    let r = get_rollout(&client).await;
    let st = r.status.clone().unwrap_or_default();
    assert_eq!(st.phase.to_string(), "Progressing");
    let (status, reason, _) = ready_condition(&client).await.expect("Ready condition");
    assert_eq!((status.as_str(), reason.as_str()), ("True", "Unblocked"));
    let view = sluice_controller::api::view::RolloutView::from_rollout(&r);
    assert_eq!(
        view.blocked, None,
        "the API still reports the rollout blocked"
    );
}

#[tokio::test]
async fn an_unrelated_service_of_the_same_name_is_not_taken_over() {
    let foreign = Service {
        metadata: ObjectMeta {
            name: Some("podinfo-canary".into()),
            namespace: Some(NS.into()),
            ..ObjectMeta::default()
        },
        spec: Some(k8s_openapi::api::core::v1::ServiceSpec {
            selector: Some(labels(&[("app", "billing")])),
            ..Default::default()
        }),
        status: None,
    };
    let client = builder()
        .with_object(rollout())
        .with_object(target("podinfo:1.0", 3))
        .with_object(user_ingress())
        .with_object(foreign)
        .build()
        .await
        .unwrap();
    let clock = Arc::new(ManualClock::new(start()));
    let ctx = context(&client, &clock);
    for _ in 0..3 {
        kubelet(&client).await;
        reconcile_once(&client, &ctx).await;
    }
    let (_, reason, message) = ready_condition(&client).await.expect("Ready condition");
    assert_eq!(reason, "Blocked");
    assert!(
        message.contains("Service demo/podinfo-canary already exists"),
        "{message}"
    );
    assert_eq!(
        service_selector(&client, "podinfo-canary").await,
        labels(&[("app", "billing")])
    );
}

#[tokio::test]
async fn a_changed_target_selector_blocks_with_what_to_do_and_recovers_after_it() {
    let client = client_with(rollout(), None).await;
    let clock = Arc::new(ManualClock::new(start()));
    let ctx = context(&client, &clock);
    run_until(&client, &ctx, &clock, "Idle", 10).await;

    // A selector cannot be edited: the user deletes and recreates the Deployment with another.
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NS);
    deployments
        .delete(APP, &DeleteParams::default())
        .await
        .unwrap();
    let mut t = target("podinfo:2.0", 3);
    let sel = labels(&[("app", APP), ("tier", "web")]);
    let spec = t.spec.as_mut().unwrap();
    spec.selector.match_labels = Some(sel.clone());
    spec.template.metadata.as_mut().unwrap().labels = Some(sel);
    deployments
        .create(&PostParams::default(), &t)
        .await
        .unwrap();

    let mut blocked = None;
    for _ in 0..40 {
        // A blocked reconcile returns its error (for error_policy); keep ticking.
        kubelet(&client).await;
        reconcile_once(&client, &ctx).await;
        clock.advance(chrono::Duration::seconds(30));
        if let Some((_, reason, message)) = ready_condition(&client).await {
            if reason == "Blocked" {
                blocked = Some(message);
                break;
            }
        }
    }
    let message = blocked.expect("blocked on the selector change");
    assert!(
        message.contains("selector of Deployment demo/podinfo changed"),
        "{message}"
    );
    assert!(
        message.contains("delete deployment podinfo-primary"),
        "{message}"
    );
    // The old primary still runs the old version with its old selector.
    let p = deployment(&client, "podinfo-primary").await.unwrap();
    let image = p.spec.clone().unwrap().template.spec.unwrap().containers[0]
        .image
        .clone();
    assert_eq!(image.as_deref(), Some("podinfo:1.0"));

    // Doing what the message says lets the rollout finish with a primary on the new selector.
    deployments
        .delete("podinfo-primary", &DeleteParams::default())
        .await
        .unwrap();
    run_until(&client, &ctx, &clock, "Succeeded", 20).await;
    let (_, reason, _) = ready_condition(&client).await.expect("Ready condition");
    assert_ne!(reason, "Blocked", "the block outlived its cause");
    let p = deployment(&client, "podinfo-primary").await.unwrap();
    assert_eq!(
        p.spec.unwrap().selector.match_labels,
        Some(labels(&[
            ("app", "podinfo-primary"),
            ("tier", "web-primary")
        ]))
    );
    assert_eq!(
        service_selector(&client, "podinfo-canary").await,
        labels(&[("app", "podinfo"), ("tier", "web")])
    );
}
