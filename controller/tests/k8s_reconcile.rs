//! The Kubernetes shell against kube-fake-client: `reconcile()` called in a loop on a ManualClock
//! (the fake has no watch). First sight, a canary rollout step by step, promotion, abort,
//! finalizer clean-up, a status conflict, a restart mid-rollout, invalid specs, leadership.

mod k8s_common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Api, ListParams};
use kube::ResourceExt;
use kube_fake_client::interceptor;
use sluice_controller::clock::ManualClock;
use sluice_controller::k8s::{reconcile, Context};
use sluice_crds::{CommandAction, FINALIZER};
use tokio::sync::watch;

use k8s_common::*;

async fn services(client: &kube::Client) -> Vec<String> {
    let mut v: Vec<String> = Api::<Service>::namespaced(client.clone(), NS)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|s| s.name_any())
        .collect();
    v.sort();
    v
}

async fn events(client: &kube::Client) -> Vec<String> {
    Api::<Event>::namespaced(client.clone(), NS)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .filter_map(|e| e.reason.clone())
        .collect()
}

/// Reach Idle: primary created, canary Ingress at 0, target scaled to zero.
async fn initialized(client: &kube::Client, ctx: &Arc<Context>, clock: &ManualClock) {
    run_until(client, ctx, clock, "Idle", 10).await;
}

#[tokio::test]
async fn first_sight_creates_primary_services_and_finalizer() {
    let client = client_with(rollout(), None).await;
    let clock = Arc::new(ManualClock::new(start()));
    let ctx = context(&client, &clock);

    reconcile(Arc::new(get_rollout(&client).await), ctx.clone())
        .await
        .unwrap();
    let primary = deployment(&client, "podinfo-primary")
        .await
        .expect("primary created");
    let spec = primary.spec.clone().unwrap();
    assert_eq!(spec.replicas, Some(3));
    assert_eq!(
        spec.selector
            .match_labels
            .unwrap()
            .get("app")
            .map(String::as_str),
        Some("podinfo-primary")
    );
    assert_eq!(
        spec.template.spec.unwrap().containers[0].image.as_deref(),
        Some("podinfo:1.0")
    );
    assert_eq!(
        services(&client).await,
        vec!["podinfo-canary", "podinfo-primary"]
    );
    let r = get_rollout(&client).await;
    assert!(r.finalizers().iter().any(|f| f == FINALIZER));
    assert_eq!(r.status.unwrap().phase.to_string(), "Initializing");
    // The target keeps serving until the primary is ready.
    assert_eq!(
        deployment(&client, APP)
            .await
            .unwrap()
            .spec
            .unwrap()
            .replicas,
        Some(3)
    );

    let trace = run_until(&client, &ctx, &clock, "Idle", 10).await;
    let last = trace.last().unwrap();
    assert_eq!(last.weight, Some(0));
    assert_eq!(last.target_replicas, 0);
    let target = deployment(&client, APP).await.unwrap();
    assert_eq!(
        target
            .annotations()
            .get("sluice.dev/desired-replicas")
            .map(String::as_str),
        Some("3")
    );
    assert!(events(&client).await.iter().any(|e| e == "Initialized"));
}

#[tokio::test]
async fn canary_steps_then_promotion_copies_the_template() {
    let client = client_with(rollout(), None).await;
    let clock = Arc::new(ManualClock::new(start()));
    let ctx = context(&client, &clock);
    initialized(&client, &ctx, &clock).await;

    set_image(&client, "podinfo:2.0").await;
    let trace = run_until(&client, &ctx, &clock, "Succeeded", 40).await;
    let mut weights: Vec<i32> = trace.iter().filter_map(|p| p.weight).collect();
    weights.dedup();
    assert_eq!(weights, vec![0, 20, 50, 0], "{trace:#?}");
    let mut steps: Vec<u32> = trace.iter().map(|p| p.step).collect();
    steps.dedup();
    assert_eq!(steps, vec![0, 1, 2, 3, 4], "every step once, in order");
    // The canary is scaled up before it gets traffic.
    let first_traffic = trace
        .iter()
        .position(|p| p.weight.unwrap_or(0) > 0)
        .unwrap();
    assert_eq!(trace[first_traffic].target_replicas, 3);

    let primary = deployment(&client, "podinfo-primary").await.unwrap();
    let image = primary.spec.unwrap().template.spec.unwrap().containers[0]
        .image
        .clone();
    assert_eq!(image.as_deref(), Some("podinfo:2.0"));
    let last = trace.last().unwrap();
    assert_eq!(last.weight, Some(0));
    assert_eq!(last.target_replicas, 0);
    let st = get_rollout(&client).await.status.unwrap();
    assert_eq!(st.stable_revision, st.canary_revision);
}

#[tokio::test]
async fn abort_returns_weight_zero_before_scaling_down() {
    let writes: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let log = writes.clone();
    let funcs = interceptor::Funcs::new().patch(move |ctx| {
        if let Ok(mut l) = log.lock() {
            l.push((ctx.name.to_string(), ctx.patch.to_string()));
        }
        Ok(None)
    });
    let client = client_with(rollout(), Some(funcs)).await;
    let clock = Arc::new(ManualClock::new(start()));
    let ctx = context(&client, &clock);
    initialized(&client, &ctx, &clock).await;
    set_image(&client, "podinfo:bad").await;
    for _ in 0..10 {
        let p = tick(&client, &ctx, &clock, chrono::Duration::seconds(5)).await;
        if p.weight == Some(20) {
            break;
        }
    }
    assert_eq!(canary_weight(&client).await, Some(20));

    writes.lock().unwrap().clear();
    send_command(&client, &command(CommandAction::Abort, "abort-1")).await;
    let trace = run_until(&client, &ctx, &clock, "Failed", 10).await;
    assert_eq!(trace.last().unwrap().weight, Some(0));
    assert_eq!(trace.last().unwrap().target_replicas, 0);

    let w = writes.lock().unwrap().clone();
    let zero = w
        .iter()
        .position(|(n, p)| n == "podinfo-canary" && p.contains("canary-weight\":\"0\""))
        .expect("weight set to 0");
    let down = w
        .iter()
        .position(|(n, p)| n == APP && p.contains("\"replicas\":0"))
        .expect("canary scaled down");
    assert!(
        zero < down,
        "weight 0 at write {zero}, scale-down at {down}: {w:#?}"
    );
    let st = get_rollout(&client).await.status.unwrap();
    assert_eq!(st.abort.unwrap().source, "command");
    // The primary was not touched by the aborted revision.
    let primary = deployment(&client, "podinfo-primary").await.unwrap();
    let image = primary.spec.unwrap().template.spec.unwrap().containers[0]
        .image
        .clone();
    assert_eq!(image.as_deref(), Some("podinfo:1.0"));
}

#[tokio::test]
async fn deletion_cleans_up_and_releases_the_finalizer() {
    let client = client_with(rollout(), None).await;
    let clock = Arc::new(ManualClock::new(start()));
    let ctx = context(&client, &clock);
    initialized(&client, &ctx, &clock).await;
    // Idle: the target is held at 0 replicas and the canary Ingress exists at weight 0.
    assert_eq!(
        deployment(&client, APP)
            .await
            .unwrap()
            .spec
            .unwrap()
            .replicas,
        Some(0)
    );
    // The fake ignores finalizers on delete, so seed a second API server with the same objects
    // and a deletionTimestamp, as a real one would show after `kubectl delete rollout`.
    let mut r = get_rollout(&client).await;
    r.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        k8s_openapi::jiff::Timestamp::now(),
    ));
    r.metadata.resource_version = None;
    let strip = |m: &mut k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta| {
        m.resource_version = None;
    };
    let mut b = builder().with_object(r);
    for mut d in Api::<k8s_openapi::api::apps::v1::Deployment>::namespaced(client.clone(), NS)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
    {
        strip(&mut d.metadata);
        b = b.with_object(d);
    }
    for mut s in Api::<Service>::namespaced(client.clone(), NS)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
    {
        strip(&mut s.metadata);
        b = b.with_object(s);
    }
    for mut i in Api::<Ingress>::namespaced(client.clone(), NS)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
    {
        strip(&mut i.metadata);
        b = b.with_object(i);
    }
    let deletes: Arc<Mutex<Vec<String>>> = Arc::default();
    let log = deletes.clone();
    let funcs = interceptor::Funcs::new().delete(move |ctx| {
        if let Ok(mut l) = log.lock() {
            l.push(ctx.name.to_string());
        }
        Ok(None)
    });
    let c2 = b.with_interceptor_funcs(funcs).build().await.unwrap();
    assert_eq!(canary_weight(&c2).await, Some(0));
    let ctx2 = context(&c2, &clock);
    let r = Api::<sluice_crds::Rollout>::namespaced(c2.clone(), NS)
        .get(APP)
        .await
        .unwrap();
    reconcile(Arc::new(r), ctx2).await.unwrap();

    // Sluice deletes the canary Ingress and the canary Service itself (the rest goes with the
    // Rollout through owner references, which the fake also cascades).
    let deleted = deletes.lock().unwrap().clone();
    assert_eq!(
        deleted,
        vec!["podinfo-canary", "podinfo-canary"],
        "{deleted:?}"
    );
    assert_eq!(canary_weight(&c2).await, None);
    assert!(services(&c2).await.is_empty());
    // The user's Deployment gets its replicas back before the primary goes away.
    let target = deployment(&c2, APP).await.unwrap();
    assert_eq!(target.spec.unwrap().replicas, Some(3));
    let gone = Api::<sluice_crds::Rollout>::namespaced(c2.clone(), NS)
        .get_opt(APP)
        .await
        .unwrap();
    assert!(
        gone.is_none(),
        "finalizer removed, so the Rollout is deleted"
    );
}

#[tokio::test]
async fn status_conflict_is_retried_with_a_fresh_read() {
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    let funcs = interceptor::Funcs::new().patch_status(move |ctx| {
        // Only the Rollout's status; the test kubelet writes Deployment status too.
        let rollout_status = ctx.name == APP
            && ctx
                .patch
                .get("status")
                .and_then(|s| s.get("phase"))
                .is_some();
        if rollout_status && seen.fetch_add(1, Ordering::SeqCst) == 0 {
            return Err(kube_fake_client::Error::Conflict("simulated".into()));
        }
        Ok(None)
    });
    let client = client_with(rollout(), Some(funcs)).await;
    let clock = Arc::new(ManualClock::new(start()));
    let ctx = context(&client, &clock);
    reconcile(Arc::new(get_rollout(&client).await), ctx)
        .await
        .unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 2, "one conflict, one retry");
    let st = get_rollout(&client)
        .await
        .status
        .expect("status written after retry");
    assert_eq!(st.phase.to_string(), "Initializing");
}

#[tokio::test]
async fn restart_mid_rollout_neither_repeats_nor_skips_a_step() {
    // Reference: one controller all the way.
    let client = client_with(rollout(), None).await;
    let clock = Arc::new(ManualClock::new(start()));
    let ctx = context(&client, &clock);
    initialized(&client, &ctx, &clock).await;
    set_image(&client, "podinfo:2.0").await;
    let reference = run_until(&client, &ctx, &clock, "Succeeded", 40).await;

    // Same scenario, but the controller restarts (new Context) after 4 ticks.
    let client = client_with(rollout(), None).await;
    let clock = Arc::new(ManualClock::new(start()));
    let ctx = context(&client, &clock);
    initialized(&client, &ctx, &clock).await;
    set_image(&client, "podinfo:2.0").await;
    let mut trace = Vec::new();
    for _ in 0..4 {
        trace.push(tick(&client, &ctx, &clock, chrono::Duration::seconds(30)).await);
    }
    drop(ctx);
    let ctx = context(&client, &clock);
    trace.extend(run_until(&client, &ctx, &clock, "Succeeded", 40).await);
    assert_eq!(trace, reference);
}

#[tokio::test]
async fn invalid_spec_sets_a_condition_and_one_event() {
    let mut r = rollout();
    r.spec.service.port = 0;
    let client = client_with(r, None).await;
    let clock = Arc::new(ManualClock::new(start()));
    let ctx = context(&client, &clock);
    for _ in 0..2 {
        reconcile(Arc::new(get_rollout(&client).await), ctx.clone())
            .await
            .unwrap();
    }
    let st = get_rollout(&client).await.status.unwrap();
    let ready = st.condition("Ready").unwrap();
    assert_eq!(ready.status, "False");
    assert_eq!(ready.reason, "InvalidSpec");
    assert!(
        ready.message.contains("spec.service.port"),
        "{}",
        ready.message
    );
    let ev = events(&client).await;
    assert_eq!(
        ev.iter().filter(|e| *e == "InvalidSpec").count(),
        1,
        "{ev:?}"
    );
    assert!(deployment(&client, "podinfo-primary").await.is_none());
}

#[tokio::test]
async fn a_follower_writes_nothing_until_it_leads() {
    let client = client_with(rollout(), None).await;
    let clock = Arc::new(ManualClock::new(start()));
    let (tx, rx) = watch::channel(false);
    let ctx = Arc::new(
        Context::new(client.clone())
            .with_clock(clock.clone())
            .with_leader(rx),
    );
    reconcile(Arc::new(get_rollout(&client).await), ctx.clone())
        .await
        .unwrap();
    assert!(deployment(&client, "podinfo-primary").await.is_none());
    assert!(get_rollout(&client).await.status.is_none());
    tx.send(true).unwrap();
    reconcile(Arc::new(get_rollout(&client).await), ctx)
        .await
        .unwrap();
    assert!(deployment(&client, "podinfo-primary").await.is_some());
}

#[tokio::test]
async fn a_missing_ingress_blocks_with_a_condition_not_a_hot_loop() {
    let client = builder()
        .with_object(rollout())
        .with_object(target("podinfo:1.0", 3))
        .build()
        .await
        .unwrap();
    let clock = Arc::new(ManualClock::new(start()));
    let ctx = context(&client, &clock);
    for _ in 0..2 {
        kubelet(&client).await;
        let err = reconcile(Arc::new(get_rollout(&client).await), ctx.clone())
            .await
            .expect_err("no Ingress to copy");
        assert!(
            !err.is_permanent(),
            "retried with backoff once the Ingress exists"
        );
    }
    let st = get_rollout(&client).await.status.unwrap();
    let ready = st.condition("Ready").unwrap();
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "Blocked")
    );
    assert!(ready.message.contains("podinfo"), "{}", ready.message);
    let ev = events(&client).await;
    assert_eq!(ev.iter().filter(|e| *e == "Blocked").count(), 1, "{ev:?}");
    // The target keeps serving meanwhile.
    assert_eq!(
        deployment(&client, APP)
            .await
            .unwrap()
            .spec
            .unwrap()
            .replicas,
        Some(3)
    );
}
