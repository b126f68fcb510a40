//! End to end, standalone: a rollout on the real bed (NGINX, mtail, Prometheus, `sluice run`)
//! notifies three sinks (signed webhook, Slack, Teams filtered to outcomes) on a receiver that
//! is down while the rollout runs and while Sluice is killed and restarted, then comes up:
//! every transition arrives exactly once per sink, and a further restart sends nothing again.

#[path = "e2e_support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use nix::sys::signal::Signal;
use serde_json::Value;
use sluice_controller::notify::signature::{verify, SigningKey};
use support::*;

const ROLLOUT_TIMEOUT: Duration = Duration::from_secs(90);
const KEY: &str = "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

type Inbox = Arc<Mutex<Vec<(String, HeaderMap, Bytes)>>>;

async fn record(
    State(inbox): State<Inbox>,
    Path(sink): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    inbox.lock().unwrap().push((sink, headers, body));
    StatusCode::OK
}

/// The receiver, up from `start` until dropped.
struct Receiver {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn receiver_on(port: u16, inbox: Inbox) -> Receiver {
    let app = axum::Router::new()
        .route("/{sink}", post(record))
        .with_state(inbox);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Receiver { task }
}

fn pending(s: &Value) -> usize {
    s.pointer("/notifications/pending")
        .and_then(Value::as_array)
        .map_or(0, Vec::len)
}

fn pending_keys(s: &Value, sink: &str) -> Vec<String> {
    s.pointer("/notifications/pending")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|p| p["sink"] == sink)
        .filter_map(|p| p.pointer("/notification/key")?.as_str().map(String::from))
        .collect()
}

/// Delivered keys per sink, from the state file's outbox.
fn delivered(s: &Value) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for e in s
        .pointer("/notifications/settled")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        assert_eq!(e["outcome"], "delivered", "{e}");
        out.entry(e["sink"].as_str().unwrap_or("").to_string())
            .or_default()
            .push(e["key"].as_str().unwrap_or("").to_string());
    }
    out
}

/// What the receiver got per sink: the transition key (webhook: from the body; Slack and
/// Teams bodies carry no key, so their text stands for it).
fn received(inbox: &Inbox) -> BTreeMap<String, Vec<String>> {
    let key = SigningKey::parse(KEY).unwrap();
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (sink, h, body) in inbox.lock().unwrap().iter() {
        let v: Value = serde_json::from_slice(body).unwrap();
        let id = match sink.as_str() {
            "hook" => {
                let hv = |n: &str| h.get(n).and_then(|v| v.to_str().ok()).unwrap_or("");
                let ts: i64 = hv("webhook-timestamp").parse().unwrap();
                assert!(
                    verify(&key, hv("webhook-id"), ts, body, hv("webhook-signature")),
                    "bad signature on {v}"
                );
                v.pointer("/data/key")
                    .and_then(Value::as_str)
                    .unwrap()
                    .to_string()
            }
            "slack" => v["text"].as_str().unwrap().to_string(),
            _ => v
                .pointer("/attachments/0/content/body/1/text")
                .and_then(Value::as_str)
                .unwrap()
                .to_string(),
        };
        out.entry(sink.clone()).or_default().push(id);
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn each_transition_reaches_each_sink_once_across_an_outage_and_restarts() {
    let port = sluice_tests::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let extra = format!(
        r#"notifications:
  dashboardUrl: http://sluice.example
  retry: {{ initialBackoffMs: 200, maxBackoffMs: 500 }}
  sinks:
    - {{ name: hook, kind: webhook, url: "{base}/hook", signingKey: "{KEY}" }}
    - {{ name: slack, kind: slack, url: "{base}/slack" }}
    - {{ name: teams, kind: teams, url: "{base}/teams", on: [promoted, rolledBack] }}
"#
    );
    let mut bed = Bed::start(BedOptions {
        extra_config: Box::leak(extra.into_boxed_str()),
        ..BedOptions::default()
    })
    .await;
    bed.ready_for_rollout().await;
    bed.write_file("v2");
    // The receiver is down: the start is pending for the two sinks that want it.
    let s = bed
        .wait_state("the start pending", ROLLOUT_TIMEOUT, |s| pending(s) >= 2)
        .await;
    assert_eq!(pending_keys(&s, "hook"), ["v2/started/0"], "{s}");
    assert!(pending_keys(&s, "teams").is_empty(), "{s}");
    // Killed before anything was delivered.
    let sluice = bed.sluice.as_ref().unwrap();
    sluice.signal(Signal::SIGKILL).unwrap();
    drop(bed.sluice.take());
    bed.start_sluice().await;
    let s = bed
        .wait_state("promotion with the receiver down", ROLLOUT_TIMEOUT, |s| {
            phase_is(s, "Succeeded")
        })
        .await;
    let hook_pending = pending_keys(&s, "hook");
    assert!(hook_pending.contains(&"v2/started/0".to_string()), "{s}");
    assert!(
        hook_pending.iter().any(|k| k.starts_with("v2/promoted/")),
        "{s}"
    );
    assert!(hook_pending.iter().any(|k| k.contains("/step/")), "{s}");
    assert_eq!(pending_keys(&s, "teams").len(), 1, "{s}");

    // The receiver comes up: everything pending is delivered, once.
    let inbox: Inbox = Arc::default();
    let _receiver = receiver_on(port, inbox.clone()).await;
    let s = bed
        .wait_state("every notification delivered", ROLLOUT_TIMEOUT, |s| {
            pending(s) == 0
        })
        .await;
    let settled = delivered(&s);
    let got = received(&inbox);
    assert_eq!(
        got["hook"], settled["hook"],
        "webhook keys in delivery order"
    );
    assert_eq!(got["slack"].len(), settled["slack"].len(), "{got:?}");
    assert_eq!(got["teams"].len(), 1, "{got:?}");
    assert!(got["teams"][0].contains("v2 promoted"), "{got:?}");
    for (sink, ids) in &got {
        let mut unique = ids.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), ids.len(), "{sink} got a duplicate: {ids:?}");
    }
    assert!(got["slack"][0].contains("rollout of v2 started"), "{got:?}");

    // Another restart: nothing is sent again.
    let before = inbox.lock().unwrap().len();
    bed.sluice.as_mut().unwrap().stop();
    bed.sluice = None;
    bed.start_sluice().await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        inbox.lock().unwrap().len(),
        before,
        "{:?}",
        received(&inbox)
    );
    eprintln!(
        "delivered after the outage: {} webhook, {} slack, {} teams",
        got["hook"].len(),
        got["slack"].len(),
        got["teams"].len()
    );
}
