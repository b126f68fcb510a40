//! Pod-template fields newer than the compiled k8s-openapi (a field a 1.34+ cluster stores that
//! `PodSpec` lacks) survive into `NAME-primary`, and changing only such a field is a new
//! revision that is rolled out like any other. Against kube-fake-client, which stores objects
//! as JSON and keeps fields it has no schema for, as an API server keeps fields its schema has.

mod k8s_common;

use std::sync::Arc;

use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use kube::Client;
use serde_json::{json, Value};
use sluice_controller::clock::ManualClock;

use k8s_common::*;

fn raw_api(client: &Client) -> Api<DynamicObject> {
    Api::namespaced_with(
        client.clone(),
        NS,
        &ApiResource::erase::<k8s_openapi::api::apps::v1::Deployment>(&()),
    )
}

async fn raw(client: &Client, name: &str) -> Value {
    serde_json::to_value(raw_api(client).get(name).await.unwrap()).unwrap()
}

/// The demo target with fields k8s-openapi 0.28 (Kubernetes 1.33) does not know.
fn newer_target() -> Value {
    let mut t = serde_json::to_value(target("podinfo:1.0", 3)).unwrap();
    t["apiVersion"] = json!("apps/v1");
    t["kind"] = json!("Deployment");
    t["spec"]["template"]["spec"]["futurePodField"] = json!({"mode": "a"});
    t["spec"]["template"]["spec"]["containers"][0]["futureContainerField"] = json!("on");
    t
}

#[tokio::test]
async fn unknown_template_fields_reach_the_primary_and_change_the_revision() {
    let client = builder()
        .with_object(rollout())
        .with_runtime_objects(vec![newer_target()])
        .with_object(user_ingress())
        .build()
        .await
        .unwrap();
    let clock = Arc::new(ManualClock::new(start()));
    let ctx = context(&client, &clock);
    // The fake keeps what it has no schema for, as the test needs.
    assert_eq!(
        raw(&client, APP).await["spec"]["template"]["spec"]["futurePodField"],
        json!({"mode": "a"})
    );

    run_until(&client, &ctx, &clock, "Idle", 10).await;
    let primary = raw(&client, "podinfo-primary").await;
    let pod = &primary["spec"]["template"]["spec"];
    assert_eq!(pod["futurePodField"], json!({"mode": "a"}), "{primary:#}");
    assert_eq!(pod["containers"][0]["futureContainerField"], "on");
    // Sluice's own selector labels are still on the copied template.
    assert_eq!(
        primary["spec"]["template"]["metadata"]["labels"]["app"],
        "podinfo-primary"
    );
    let stable = get_rollout(&client).await.status.unwrap().stable_revision;

    // Only the unknown field changes: that is a new revision.
    let patch = json!({"spec": {"template": {"spec": {"futurePodField": {"mode": "b"}}}}});
    raw_api(&client)
        .patch(APP, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    let trace = run_until(&client, &ctx, &clock, "Succeeded", 40).await;
    assert!(trace.iter().any(|p| p.phase == "Progressing"), "{trace:#?}");
    let st = get_rollout(&client).await.status.unwrap();
    assert_ne!(st.stable_revision, stable, "the revision did not change");
    let primary = raw(&client, "podinfo-primary").await;
    assert_eq!(
        primary["spec"]["template"]["spec"]["futurePodField"],
        json!({"mode": "b"})
    );
    // The template it replaced is kept, unknown fields included, for a revert.
    let kept = primary["metadata"]["annotations"]["sluice.dev/previous-template"]
        .as_str()
        .unwrap();
    let kept: Value = serde_json::from_str(kept).unwrap();
    assert_eq!(kept["spec"]["futurePodField"], json!({"mode": "a"}));
}
