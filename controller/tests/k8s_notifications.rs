//! Notifications from the Kubernetes shell (kube-fake-client, `reconcile()` in a loop): the
//! outbox lives in `status.notifications`; with the receiver answering 503 the rollout is
//! promoted and every transition stays pending; the controller "dies" (its worker stopped) and
//! a new one delivers each transition once per sink, settles it in the status, and sends
//! nothing again on later reconciles.

mod k8s_common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::Value;
use sluice_controller::clock::{Clock, ManualClock};
use sluice_controller::k8s::notifications::{KubeNotify, KubeOutbox};
use sluice_controller::k8s::Context;
use sluice_controller::notify::signature::{verify, SigningKey};
use sluice_controller::notify::{Notifier, RetryPolicy, Sink, SinkKind};
use sluice_controller::telemetry::Telemetry;

use k8s_common::*;

const KEY: &str = "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

#[derive(Default)]
struct Inbox {
    down: bool,
    got: Vec<(String, HeaderMap, Bytes)>,
}

type Shared = Arc<Mutex<Inbox>>;

async fn hook(
    State(inbox): State<Shared>,
    Path(sink): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let mut g = inbox.lock().unwrap();
    if g.down {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    g.got.push((sink, headers, body));
    StatusCode::NO_CONTENT
}

struct Receiver {
    base: String,
    inbox: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn receiver() -> Receiver {
    let inbox: Shared = Arc::new(Mutex::new(Inbox {
        down: true,
        ..Default::default()
    }));
    let app = axum::Router::new()
        .route("/{sink}", post(hook))
        .with_state(inbox.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Receiver { base, inbox, task }
}

/// A controller's context with a fresh notification worker (what a process start builds).
fn controller(
    client: &kube::Client,
    clock: &Arc<ManualClock>,
    r: &Receiver,
) -> (Arc<Context>, Arc<KubeNotify>) {
    let clock_dyn: Arc<dyn Clock> = clock.clone();
    let store = Arc::new(KubeOutbox {
        client: client.clone(),
        clock: clock_dyn.clone(),
    });
    let policy = RetryPolicy {
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(100),
        // The manual clock does not move while the worker retries.
        max_age: Duration::from_secs(24 * 3600),
        timeout: Duration::from_secs(2),
    };
    let notifier = Notifier::start(16, policy, store, clock_dyn, Telemetry::new()).unwrap();
    let sinks = vec![
        Sink::new(
            "hook",
            SinkKind::Webhook,
            &format!("{}/hook", r.base),
            Some(KEY),
            vec![],
        )
        .unwrap(),
        Sink::new(
            "slack",
            SinkKind::Slack,
            &format!("{}/slack", r.base),
            None,
            vec![],
        )
        .unwrap(),
    ];
    let notify = Arc::new(KubeNotify {
        notifier,
        sinks,
        dashboard_url: Some("https://sluice.example".into()),
    });
    let ctx = Context::new(client.clone())
        .with_clock(clock.clone())
        .with_notify(notify.clone());
    (Arc::new(ctx), notify)
}

async fn outbox(client: &kube::Client) -> Value {
    let r = get_rollout(client).await;
    serde_json::to_value(r.status.unwrap_or_default().notifications).unwrap()
}

fn keys(v: &Value, list: &str, sink: &str) -> Vec<String> {
    v[list]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["sink"] == sink)
        .filter_map(|e| {
            e.get("key")
                .or_else(|| e.pointer("/notification/key"))
                .and_then(Value::as_str)
                .map(String::from)
        })
        .collect()
}

/// Keys per sink as the receiver got them (webhook: signature checked).
fn received(r: &Receiver) -> BTreeMap<String, Vec<String>> {
    let key = SigningKey::parse(KEY).unwrap();
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (sink, h, body) in &r.inbox.lock().unwrap().got {
        let v: Value = serde_json::from_slice(body).unwrap();
        let k = if sink == "hook" {
            let hv = |n: &str| h.get(n).and_then(|v| v.to_str().ok()).unwrap_or("");
            let ts: i64 = hv("webhook-timestamp").parse().unwrap();
            assert!(verify(
                &key,
                hv("webhook-id"),
                ts,
                body,
                hv("webhook-signature")
            ));
            v.pointer("/data/key")
                .and_then(Value::as_str)
                .unwrap()
                .to_string()
        } else {
            v["text"].as_str().unwrap().to_string()
        };
        out.entry(sink.clone()).or_default().push(k);
    }
    out
}

#[tokio::test]
async fn outbox_in_status_survives_a_restart_and_each_transition_is_sent_once() {
    let client = client_with(rollout(), None).await;
    let clock = Arc::new(ManualClock::new(start()));
    let r = receiver().await;
    let (ctx, first) = controller(&client, &clock, &r);
    run_until(&client, &ctx, &clock, "Idle", 10).await;
    set_image(&client, "podinfo:2.0").await;
    run_until(&client, &ctx, &clock, "Succeeded", 40).await;

    // Receiver down all along: every transition is pending, none settled.
    let o = outbox(&client).await;
    let pending = keys(&o, "pending", "hook");
    assert!(!pending.is_empty(), "{o}");
    assert!(pending[0].ends_with("/started/0"), "{pending:?}");
    assert!(pending.iter().any(|k| k.contains("/step/")), "{pending:?}");
    assert!(
        pending.last().unwrap().contains("/promoted/"),
        "{pending:?}"
    );
    assert_eq!(keys(&o, "pending", "slack"), pending);
    assert!(keys(&o, "settled", "hook").is_empty(), "{o}");

    // The controller dies; a new one starts; the receiver is back.
    first.notifier.stop();
    drop(ctx);
    let (ctx, _second) = controller(&client, &clock, &r);
    r.inbox.lock().unwrap().down = false;
    for _ in 0..200 {
        tick(&client, &ctx, &clock, chrono::Duration::seconds(1)).await;
        if outbox(&client).await.get("pending").is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let o = outbox(&client).await;
    assert!(o.get("pending").is_none(), "still pending: {o}");
    assert_eq!(keys(&o, "settled", "hook"), pending, "settled in order");
    let got = received(&r);
    assert_eq!(got["hook"], pending, "each webhook once, in order");
    assert_eq!(got["slack"].len(), pending.len(), "{got:?}");
    let mut unique = got["slack"].clone();
    unique.dedup();
    assert_eq!(
        unique.len(),
        pending.len(),
        "a repeated Slack message: {got:?}"
    );

    // Later reconciles send nothing again.
    for _ in 0..5 {
        tick(&client, &ctx, &clock, chrono::Duration::seconds(30)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(received(&r)["hook"].len(), pending.len());
    assert_eq!(received(&r)["slack"].len(), pending.len());
}

#[tokio::test]
async fn a_status_write_that_conflicts_keeps_what_the_worker_settled() {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use kube::api::{Api, Patch, PatchParams};
    use kube_fake_client::interceptor;
    use sluice_controller::k8s::status::write_status_merged;
    use sluice_controller::notify::{Notification, OutboxStore, Outcome, TransitionKind};
    use sluice_crds::{Phase, Rollout};

    // The reconcile's first status write (it changes the phase) conflicts, as it would after
    // the worker's own write changed the resourceVersion.
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    let funcs = interceptor::Funcs::new().patch_status(move |ctx| {
        let phase_write = ctx.name == APP
            && ctx
                .patch
                .get("status")
                .and_then(|s| s.get("phase"))
                .is_some();
        if phase_write && seen.fetch_add(1, Ordering::SeqCst) == 0 {
            return Err(kube_fake_client::Error::Conflict("simulated".into()));
        }
        Ok(None)
    });
    let client = client_with(rollout(), Some(funcs)).await;
    let clock = Arc::new(ManualClock::new(start()));
    let api: Api<Rollout> = Api::namespaced(client.clone(), NS);
    let key = "abc/started/0";
    let note = Notification {
        id: sluice_controller::notify::event::notification_id(NS, APP, key),
        key: key.into(),
        kind: TransitionKind::Started,
        namespace: NS.into(),
        rollout: APP.into(),
        phase: Phase::Progressing,
        canary_weight: 0,
        step: 0,
        stable_revision: None,
        canary_revision: Some("abc".into()),
        message: "rollout of abc started".into(),
        failed_metrics: vec![],
        dashboard_url: None,
        at: start(),
    };
    let seed = serde_json::json!({"status": {"notifications": {"pending": [
        {"sink": "hook", "notification": note}
    ]}}});
    api.patch_status(APP, &PatchParams::default(), &Patch::Merge(&seed))
        .await
        .unwrap();
    // The reconcile read this ...
    let stale = get_rollout(&client).await;
    // ... the worker delivered and settled meanwhile ...
    let store = KubeOutbox {
        client: client.clone(),
        clock: clock.clone(),
    };
    store
        .settle(NS, APP, "hook", key, Outcome::Delivered)
        .await
        .unwrap();
    // ... and the reconcile writes its stale copy with a new phase.
    let mut new = stale.status.clone().unwrap();
    new.phase = Phase::Progressing;
    let (written, st) = write_status_merged(&api, &stale, &new).await.unwrap();
    assert!(written);
    assert_eq!(calls.load(Ordering::SeqCst), 2, "one conflict, one retry");
    assert!(st.notifications.pending.is_empty(), "{st:?}");
    let stored = get_rollout(&client).await.status.unwrap();
    assert_eq!(stored.phase, Phase::Progressing);
    assert!(
        stored.notifications.pending.is_empty(),
        "resurrected: {stored:?}"
    );
    assert_eq!(stored.notifications.settled.len(), 1);
    assert_eq!(stored.notifications.settled[0].key, key);
}
