//! The Kubernetes shell on the in-memory API: a canary Deployment that was ready and loses its
//! ready pods while it holds weight has its weight set to 0 within `canaryLoss.graceSeconds`
//! (default 10 s), not at the progress deadline (`core::canary_loss`).

mod k8s_common;

use std::sync::Arc;

use chrono::Duration;
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use sluice_controller::clock::{Clock, ManualClock};
use sluice_controller::k8s::reconcile;
use sluice_crds::DEFAULT_CANARY_LOSS_GRACE_SECONDS;

use k8s_common::*;

/// The target's pods are gone: the Deployment controller reports none ready or available.
async fn lose_pods(client: &kube::Client) {
    let api: Api<Deployment> = Api::namespaced(client.clone(), NS);
    let d = api.get(APP).await.unwrap();
    let status = json!({"status": {
        "observedGeneration": d.metadata.generation,
        "replicas": 3, "updatedReplicas": 3, "availableReplicas": 0, "readyReplicas": 0,
        "unavailableReplicas": 3
    }});
    api.patch_status(APP, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_weighted_canary_that_loses_readiness_goes_to_zero_within_the_grace() {
    let client = client_with(rollout(), None).await;
    let clock = Arc::new(ManualClock::new(start()));
    let ctx = context(&client, &clock);
    run_until(&client, &ctx, &clock, "Idle", 10).await;
    set_image(&client, "podinfo:2.0").await;
    let mut weighted = None;
    for _ in 0..20 {
        let p = tick(&client, &ctx, &clock, Duration::seconds(5)).await;
        if p.phase == "Progressing" && p.weight.unwrap_or(0) > 0 {
            weighted = p.weight;
            break;
        }
    }
    let weight = weighted.expect("the canary reached a weight");

    lose_pods(&client).await;
    let lost_at = clock.now();
    let grace = Duration::seconds(DEFAULT_CANARY_LOSS_GRACE_SECONDS);
    let mut trace = Vec::new();
    let mut zero_at = None;
    // Reconcile every 2 s, with no kubelet bringing the pods back.
    for _ in 0..30 {
        reconcile(Arc::new(get_rollout(&client).await), ctx.clone())
            .await
            .unwrap();
        let w = canary_weight(&client).await;
        trace.push((clock.now() - lost_at, w));
        if w == Some(0) {
            zero_at = Some(clock.now());
            break;
        }
        // Within the grace the canary keeps its weight (its errors are analysis evidence).
        if clock.now() - lost_at < grace {
            assert_eq!(w, Some(weight), "{trace:?}");
        }
        clock.advance(Duration::seconds(2));
    }
    let zero_at = zero_at.unwrap_or_else(|| panic!("weight never went to 0: {trace:?}"));
    let took = zero_at - lost_at;
    assert!(
        took >= grace && took <= grace + Duration::seconds(2),
        "weight 0 after {} s (grace {} s): {trace:?}",
        took.num_seconds(),
        grace.num_seconds()
    );
    let status = get_rollout(&client).await.status.unwrap_or_default();
    assert!(
        status
            .conditions
            .iter()
            .any(|c| c.type_ == "CanaryReady" && c.status == "False"),
        "{:?}",
        status.conditions
    );
}
