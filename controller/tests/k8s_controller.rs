//! The real `Controller` wiring of `sluice controller` (`k8s::run::controller`) against
//! kube-fake-client with a polling watch in front (tests/k8s_watch_support): Rollouts arrive by
//! watch, a Deployment change reaches its Rollout at once, a stored Rollout that cannot be
//! decoded (an out-of-range `setWeight` the API server stored because it does not enforce
//! `format: int32`) does not stop the others, and a controller that is not the leader writes
//! nothing. Time is tokio's paused clock: requeues and pauses pass without waiting, and the
//! state machine reads the same clock.

mod k8s_common;
mod k8s_watch_support;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::json;
use sluice_controller::clock::Clock;
use sluice_controller::k8s::discovery::served;
use sluice_controller::k8s::guard::REASON_UNDECODABLE;
use sluice_controller::k8s::run::controller;
use sluice_controller::k8s::Context;
use sluice_controller::store::kube::KubeStore;
use sluice_controller::store::RolloutStore;
use sluice_crds::{GatewayApiRouter, Rollout, RouterSpec};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use k8s_common::*;

/// The state machine's clock follows tokio's (paused) clock.
struct TokioClock {
    start: DateTime<Utc>,
    base: tokio::time::Instant,
}

impl Clock for TokioClock {
    fn now(&self) -> DateTime<Utc> {
        self.start + chrono::Duration::from_std(self.base.elapsed()).unwrap_or_default()
    }
}

/// The Deployment controller's part: report each Deployment rolled out (only when it is not).
async fn kubelet_once(client: &Client) {
    let api: Api<Deployment> = Api::namespaced(client.clone(), NS);
    let Ok(list) = api.list(&ListParams::default()).await else {
        return;
    };
    for d in list.items {
        let r = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
        let st = d.status.clone().unwrap_or_default();
        if st.observed_generation == d.metadata.generation
            && st.replicas == Some(r)
            && st.updated_replicas == Some(r)
            && st.available_replicas == Some(r)
        {
            continue;
        }
        let status = json!({"status": {
            "observedGeneration": d.metadata.generation,
            "replicas": r, "updatedReplicas": r, "availableReplicas": r, "readyReplicas": r
        }});
        let _ = api
            .patch_status(
                &d.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&status),
            )
            .await;
    }
}

/// A second Rollout, stored with `setWeight: 3000000000` (what `kubectl apply` gets through
/// when the CRD only says `format: int32`).
fn undecodable_rollout() -> serde_json::Value {
    let mut v = serde_json::to_value(rollout()).unwrap();
    v["metadata"]["name"] = json!("broken");
    v["metadata"]["uid"] = json!("0b6e8d5c-9999-2222-3333-444455556666");
    v["spec"]["targetRef"]["name"] = json!("other");
    v["spec"]["strategy"]["canary"]["steps"][0]["setWeight"] = json!(3_000_000_000_u64);
    v
}

struct Running {
    client: Client,
    leader: watch::Sender<bool>,
    stop: CancellationToken,
    store: KubeStore,
}

async fn start_controller(with_broken: bool) -> Running {
    let extra = if with_broken {
        vec![undecodable_rollout()]
    } else {
        vec![]
    };
    start_controller_with(rollout(), extra).await
}

async fn start_controller_with(r: Rollout, extra: Vec<serde_json::Value>) -> Running {
    let fake = builder()
        .with_object(r)
        .with_object(target("podinfo:1.0", 3))
        .with_object(user_ingress())
        .with_runtime_objects(extra)
        .build()
        .await
        .unwrap();
    let client = k8s_watch_support::with_watch(fake);
    let (leader, leader_rx) = watch::channel(true);
    let clock = Arc::new(TokioClock {
        start: start(),
        base: tokio::time::Instant::now(),
    });
    let ctx = Arc::new(
        Context::new(client.clone())
            .with_served(served(&client, Some(NS)).await)
            .with_clock(clock)
            .with_leader(leader_rx.clone()),
    );
    let stop = CancellationToken::new();
    let (cache, run) = controller(&client, Some(NS), 2, ctx, leader_rx, stop.clone());
    tokio::spawn(run);
    let kube = client.clone();
    let kstop = stop.clone();
    tokio::spawn(async move {
        while !kstop.is_cancelled() {
            kubelet_once(&kube).await;
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
    let store = KubeStore::new(client.clone())
        .with_namespace(Some(NS.into()))
        .with_cache(cache);
    Running {
        client,
        leader,
        stop,
        store,
    }
}

/// Poll `check` every 100 ms of (paused) time until it holds, at most `within`.
async fn eventually<F, Fut>(what: &str, within: Duration, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let begin = tokio::time::Instant::now();
    loop {
        if check().await {
            return begin.elapsed();
        }
        if begin.elapsed() > within {
            panic!("{what}: not reached within {within:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn phase(client: &Client) -> String {
    let r: Rollout = get_rollout(client).await;
    r.status.map(|s| s.phase.to_string()).unwrap_or_default()
}

async fn target_replicas(client: &Client) -> i32 {
    deployment(client, APP)
        .await
        .and_then(|d| d.spec.and_then(|s| s.replicas))
        .unwrap_or(-1)
}

async fn events_for(client: &Client, name: &str) -> Vec<Event> {
    Api::<Event>::namespaced(client.clone(), NS)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
        .collect()
}

const MINUTES: Duration = Duration::from_secs(600);

#[tokio::test(start_paused = true)]
async fn an_undecodable_rollout_beside_a_healthy_one_does_not_stop_it() {
    let run = start_controller(true).await;
    let c = run.client.clone();

    // The healthy Rollout arrives by watch and is initialised: primary created, target at 0.
    eventually("podinfo Idle", MINUTES, || async {
        phase(&c).await == "Idle"
    })
    .await;
    assert_eq!(target_replicas(&c).await, 0);

    // A new image: the Deployment watch maps the change to its Rollout, which runs to the end.
    set_image(&c, "podinfo:2.0").await;
    eventually("podinfo Succeeded", MINUTES, || async {
        phase(&c).await == "Succeeded"
    })
    .await;
    let primary = deployment(&c, "podinfo-primary").await.unwrap();
    let image = primary.spec.unwrap().template.spec.unwrap().containers[0]
        .image
        .clone();
    assert_eq!(image.as_deref(), Some("podinfo:2.0"));

    // The undecodable one: one Warning Event saying what is wrong and what to do; untouched.
    let evs = events_for(&c, "broken").await;
    assert_eq!(evs.len(), 1, "{evs:#?}");
    let note = evs[0].note.clone().unwrap_or_default();
    assert_eq!(evs[0].reason.as_deref(), Some(REASON_UNDECODABLE));
    assert!(note.contains("3000000000"), "{note}");
    assert!(note.contains("delete and re-apply"), "{note}");
    let raw: serde_json::Value = c
        .request(
            http::Request::get(format!(
                "/apis/sluice.dev/v1alpha1/namespaces/{NS}/rollouts/broken"
            ))
            .body(Vec::new())
            .unwrap(),
        )
        .await
        .unwrap();
    assert!(raw.get("status").is_none_or(|s| s.is_null()), "{raw}");
    assert!(raw["metadata"]["finalizers"].is_null(), "{raw}");

    // What the HTTP API (and /readyz) reads: the healthy Rollout, not an error.
    let listed = run.store.list().await.expect("list despite the bad object");
    assert_eq!(
        listed.iter().map(|r| r.name_any()).collect::<Vec<_>>(),
        ["podinfo"]
    );
    run.stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn a_deployment_change_is_seen_at_once_not_at_the_resync() {
    let run = start_controller(false).await;
    let c = run.client.clone();
    eventually("podinfo Idle", MINUTES, || async {
        phase(&c).await == "Idle"
    })
    .await;
    // Idle requeues after the 300 s resync; the Deployment watch must act well before.
    let took = {
        set_image(&c, "podinfo:2.0").await;
        eventually("canary scaled up", MINUTES, || async {
            target_replicas(&c).await == 3
        })
        .await
    };
    assert!(took < Duration::from_secs(30), "reacted after {took:?}");
    run.stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn a_controller_that_is_not_the_leader_writes_nothing() {
    let run = start_controller(false).await;
    let c = run.client.clone();
    eventually("podinfo Idle", MINUTES, || async {
        phase(&c).await == "Idle"
    })
    .await;

    run.leader.send(false).unwrap();
    let before = get_rollout(&c).await.resource_version();
    set_image(&c, "podinfo:2.0").await;
    tokio::time::sleep(Duration::from_secs(120)).await;
    assert_eq!(
        target_replicas(&c).await,
        0,
        "canary scaled while not leader"
    );
    assert_eq!(get_rollout(&c).await.resource_version(), before);

    // Leadership back: everything is reconciled at once and the rollout proceeds.
    run.leader.send(true).unwrap();
    let took = eventually("canary scaled up", MINUTES, || async {
        target_replicas(&c).await == 3
    })
    .await;
    assert!(took < Duration::from_secs(30), "resumed after {took:?}");
    run.stop.cancel();
}

fn gateway_rollout() -> Rollout {
    let mut r = rollout();
    r.spec.router = RouterSpec {
        gateway_api: Some(GatewayApiRouter {
            http_route_ref: "podinfo".into(),
        }),
        ..RouterSpec::default()
    };
    r
}

fn http_route() -> serde_json::Value {
    json!({
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "podinfo", "namespace": NS},
        "spec": {"rules": [{"backendRefs": [{"name": "podinfo-primary", "port": 80}]}]}
    })
}

async fn route_refs(client: &Client) -> serde_json::Value {
    let ar = sluice_controller::router::gateway::api_resource();
    let route = Api::<kube::api::DynamicObject>::namespaced_with(client.clone(), NS, &ar)
        .get("podinfo")
        .await
        .unwrap();
    route.data["spec"]["rules"][0]["backendRefs"].clone()
}

#[tokio::test(start_paused = true)]
async fn an_edit_to_the_httproute_by_someone_else_is_repaired_at_once() {
    let run = start_controller_with(gateway_rollout(), vec![http_route()]).await;
    let c = run.client.clone();
    eventually("podinfo Idle", MINUTES, || async {
        phase(&c).await == "Idle"
    })
    .await;
    let primary_only = |refs: &serde_json::Value| {
        refs.as_array().is_some_and(|a| {
            a.iter()
                .all(|r| r["name"] != "podinfo-canary" || r["weight"] == 0)
        })
    };
    assert!(
        primary_only(&route_refs(&c).await),
        "{}",
        route_refs(&c).await
    );

    // Someone sends half the traffic to the (scaled-down) canary.
    let ar = sluice_controller::router::gateway::api_resource();
    let edit = json!({"spec": {"rules": [{"backendRefs": [
        {"name": "podinfo-primary", "port": 80, "weight": 50},
        {"name": "podinfo-canary", "port": 80, "weight": 50}
    ]}]}});
    Api::<kube::api::DynamicObject>::namespaced_with(c.clone(), NS, &ar)
        .patch("podinfo", &PatchParams::default(), &Patch::Merge(&edit))
        .await
        .unwrap();
    // Idle requeues only at the 300 s resync; the HTTPRoute watch repairs it well before.
    let took = eventually("route repaired", MINUTES, || async {
        primary_only(&route_refs(&c).await)
    })
    .await;
    assert!(took < Duration::from_secs(30), "repaired after {took:?}");
    run.stop.cancel();
}
