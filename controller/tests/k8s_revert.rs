//! Revert after promotion against kube-fake-client: the primary keeps the template it ran before
//! a promotion in annotations, and an abort inside `postPromotionWatchSeconds` restores it.

mod k8s_common;

use std::sync::Arc;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use kube::api::{Api, Patch, PatchParams};
use kube::ResourceExt;
use serde_json::json;
use sluice_controller::clock::ManualClock;
use sluice_controller::k8s::{reconcile, Context};
use sluice_crds::CommandAction;

use k8s_common::*;

const PREV_TEMPLATE: &str = "sluice.dev/previous-template";
const PREV_REVISION: &str = "sluice.dev/previous-revision";

fn watched() -> sluice_crds::Rollout {
    let mut r = rollout();
    r.spec.post_promotion_watch_seconds = 600;
    r
}

async fn abort(client: &kube::Client, id: &str) {
    let mut c = command(CommandAction::Abort, id);
    c.by = Some("alertmanager".into());
    c.reason = None;
    c.alert_name = Some("HighErrorRate".into());
    c.fingerprint = Some("f00".into());
    send_command(client, &c).await;
}

fn template(d: &Deployment) -> PodTemplateSpec {
    d.spec.clone().unwrap().template
}

fn image(d: &Deployment) -> Option<String> {
    template(d).spec.unwrap().containers[0].image.clone()
}

/// Initialize, promote podinfo:2.0; returns the primary's template before the promotion.
async fn promoted(
    client: &kube::Client,
    ctx: &Arc<Context>,
    clock: &ManualClock,
) -> PodTemplateSpec {
    run_until(client, ctx, clock, "Idle", 10).await;
    let before = template(&deployment(client, "podinfo-primary").await.unwrap());
    set_image(client, "podinfo:2.0").await;
    run_until(client, ctx, clock, "Succeeded", 40).await;
    before
}

#[tokio::test]
async fn abort_in_the_watch_window_restores_the_previous_template_exactly() {
    let client = client_with(watched(), None).await;
    let clock = Arc::new(ManualClock::new(start()));
    let ctx = context(&client, &clock);
    let before = promoted(&client, &ctx, &clock).await;

    let primary = deployment(&client, "podinfo-primary").await.unwrap();
    assert_eq!(image(&primary).as_deref(), Some("podinfo:2.0"));
    let st = get_rollout(&client).await.status.unwrap();
    let v1 = st.previous_stable_revision.clone().unwrap();
    let v2 = st.stable_revision.clone().unwrap();
    assert_ne!(v1, v2);
    let ann = primary.annotations();
    assert_eq!(ann.get(PREV_REVISION), Some(&v1));
    let kept: PodTemplateSpec = serde_json::from_str(&ann[PREV_TEMPLATE]).unwrap();
    assert_eq!(kept, before);

    abort(&client, "am-1").await;
    // A fresh context, as after a controller restart: everything needed is in the cluster.
    let ctx = context(&client, &clock);
    let trace = run_until(&client, &ctx, &clock, "Failed", 10).await;
    assert!(
        trace
            .iter()
            .all(|p| p.weight == Some(0) && p.target_replicas == 0),
        "{trace:#?}"
    );

    let primary = deployment(&client, "podinfo-primary").await.unwrap();
    assert_eq!(template(&primary), before, "template restored exactly");
    let ann = primary.annotations();
    assert_eq!(ann.get("sluice.dev/revision"), Some(&v1));
    // What the primary ran before the revert is kept in turn.
    assert_eq!(ann.get(PREV_REVISION), Some(&v2));
    let target = deployment(&client, APP).await.unwrap();
    assert_eq!(image(&target).as_deref(), Some("podinfo:2.0"));
    assert_eq!(target.spec.unwrap().replicas, Some(0));

    let st = get_rollout(&client).await.status.unwrap();
    assert_eq!(st.stable_revision.as_deref(), Some(v1.as_str()));
    let a = st.abort.unwrap();
    assert_eq!(a.source, "alert");
    assert_eq!(a.revision.as_deref(), Some(v2.as_str()));
    assert_eq!(
        a.reason,
        format!("reverted to {v1} after promotion: alert HighErrorRate firing")
    );
    assert_eq!(
        st.conditions
            .iter()
            .find(|c| c.type_ == "Aborted")
            .unwrap()
            .status,
        "True"
    );
    // Settled: more reconciles change nothing.
    let again = run_until(&client, &ctx, &clock, "Failed", 1).await;
    assert_eq!(again[0].weight, Some(0));
    assert_eq!(
        template(&deployment(&client, "podinfo-primary").await.unwrap()),
        before
    );
}

#[tokio::test]
async fn revert_without_a_kept_template_fails_with_a_clear_error() {
    let client = client_with(watched(), None).await;
    let clock = Arc::new(ManualClock::new(start()));
    let ctx = context(&client, &clock);
    promoted(&client, &ctx, &clock).await;
    // Someone removed the kept template.
    let strip = json!({"metadata": {"annotations": {PREV_TEMPLATE: null, PREV_REVISION: null}}});
    Api::<Deployment>::namespaced(client.clone(), NS)
        .patch(
            "podinfo-primary",
            &PatchParams::default(),
            &Patch::Merge(&strip),
        )
        .await
        .unwrap();
    abort(&client, "am-2").await;
    kubelet(&client).await;
    let err = reconcile(Arc::new(get_rollout(&client).await), ctx.clone())
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("cannot revert the primary"), "{msg}");
    assert!(msg.contains("no previous template"), "{msg}");
    let primary = deployment(&client, "podinfo-primary").await.unwrap();
    assert_eq!(image(&primary).as_deref(), Some("podinfo:2.0"));
    // The operator sees why in status.
    let st = get_rollout(&client).await.status.unwrap();
    assert!(st.message.unwrap().contains("cannot revert the primary"));
}
