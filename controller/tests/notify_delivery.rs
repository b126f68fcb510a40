//! The notification worker against a real HTTP receiver (axum on 127.0.0.1, ephemeral port):
//! the three body shapes on the wire, the signature a receiver verifies, retries on 5xx and
//! timeouts until delivered, no retry on 4xx, and a full queue that drops and counts.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use chrono::Utc;
use futures::future::BoxFuture;
use serde_json::Value;
use sluice_controller::clock::SystemClock;
use sluice_controller::notify::signature::{verify, SigningKey};
use sluice_controller::notify::{
    Notification, Notifier, Offer, OutboxStore, Outcome, RetryPolicy, Sink, SinkKind,
    TransitionKind,
};
use sluice_controller::telemetry::Telemetry;
use sluice_crds::Phase;

const KEY: &str = "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

/// What the receiver got and what it answers next.
#[derive(Default)]
struct Inbox {
    requests: Vec<(HeaderMap, Bytes)>,
    /// Answers for the next requests, in order; then 200.
    script: Vec<StatusCode>,
    /// Sleep this long before answering (for timeouts / a stuck receiver).
    delay: Option<Duration>,
}

struct Receiver {
    url: String,
    inbox: Arc<Mutex<Inbox>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn hook(
    State(inbox): State<Arc<Mutex<Inbox>>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let (status, delay) = {
        let mut g = inbox.lock().unwrap();
        g.requests.push((headers, body));
        let s = if g.script.is_empty() {
            StatusCode::OK
        } else {
            g.script.remove(0)
        };
        (s, g.delay.take())
    };
    if let Some(d) = delay {
        tokio::time::sleep(d).await;
    }
    status
}

async fn receiver(script: Vec<StatusCode>) -> Receiver {
    let inbox = Arc::new(Mutex::new(Inbox {
        script,
        ..Default::default()
    }));
    let app = axum::Router::new()
        .route("/hook", post(hook))
        .with_state(inbox.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Receiver { url, inbox, task }
}

/// Records settle calls (the state file / status write in the shells).
#[derive(Default)]
struct Recorded(Mutex<Vec<(String, String, Outcome)>>);

impl OutboxStore for Recorded {
    fn settle<'a>(
        &'a self,
        _namespace: &'a str,
        _rollout: &'a str,
        sink: &'a str,
        key: &'a str,
        outcome: Outcome,
    ) -> BoxFuture<'a, Result<(), String>> {
        self.0
            .lock()
            .unwrap()
            .push((sink.to_string(), key.to_string(), outcome));
        Box::pin(async { Ok(()) })
    }
}

impl Recorded {
    async fn wait(&self, n: usize) -> Vec<(String, String, Outcome)> {
        for _ in 0..400 {
            let g = self.0.lock().unwrap().clone();
            if g.len() >= n {
                return g;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("fewer than {n} settled: {:?}", self.0.lock().unwrap());
    }
}

fn fast() -> RetryPolicy {
    RetryPolicy {
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(100),
        max_age: Duration::from_secs(60),
        timeout: Duration::from_millis(500),
    }
}

fn note(key: &str) -> Notification {
    Notification {
        id: sluice_controller::notify::event::notification_id("standalone", "web", key),
        key: key.into(),
        kind: TransitionKind::AnalysisFailed,
        namespace: "standalone".into(),
        rollout: "web".into(),
        phase: Phase::RollingBack,
        canary_weight: 20,
        step: 1,
        stable_revision: Some("v1".into()),
        canary_revision: Some("v2".into()),
        message: "analysis failed: success-rate 0.82 below 0.95".into(),
        failed_metrics: vec![],
        dashboard_url: Some("http://sluice.example/ui/#/standalone/web".into()),
        at: Utc::now(),
    }
}

fn start(store: Arc<Recorded>, capacity: usize, telemetry: &Telemetry) -> Notifier {
    Notifier::start(
        capacity,
        fast(),
        store,
        Arc::new(SystemClock),
        telemetry.clone(),
    )
    .unwrap()
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> &'a str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

#[tokio::test]
async fn signed_webhook_verifies_and_slack_teams_shapes_arrive() {
    let r = receiver(vec![]).await;
    let store = Arc::new(Recorded::default());
    let t = Telemetry::new();
    let n = start(store.clone(), 8, &t);
    let hook = Sink::new("hook", SinkKind::Webhook, &r.url, Some(KEY), vec![]).unwrap();
    let slack = Sink::new("slack", SinkKind::Slack, &r.url, None, vec![]).unwrap();
    let teams = Sink::new("teams", SinkKind::Teams, &r.url, None, vec![]).unwrap();
    let msg = note("v2/analysisFailed/1");
    for s in [&hook, &slack, &teams] {
        assert_eq!(n.offer(s, &msg), Offer::Queued);
    }
    let settled = store.wait(3).await;
    assert!(
        settled.iter().all(|(_, _, o)| *o == Outcome::Delivered),
        "{settled:?}"
    );
    let g = r.inbox.lock().unwrap();
    assert_eq!(g.requests.len(), 3);
    let find = |pred: &dyn Fn(&Value) -> bool| {
        g.requests
            .iter()
            .find(|(_, b)| pred(&serde_json::from_slice(b).unwrap()))
            .cloned()
            .expect("a request of that shape")
    };
    // Webhook: Standard Webhooks headers; the signature verifies over the raw body.
    let (h, body) = find(&|v| v.get("data").is_some());
    assert_eq!(header(&h, "content-type"), "application/json");
    assert_eq!(header(&h, "webhook-id"), msg.id);
    let ts: i64 = header(&h, "webhook-timestamp").parse().unwrap();
    assert!((Utc::now().timestamp() - ts).abs() < 60);
    let key = SigningKey::parse(KEY).unwrap();
    assert!(verify(
        &key,
        &msg.id,
        ts,
        &body,
        header(&h, "webhook-signature")
    ));
    assert!(!verify(
        &key,
        &msg.id,
        ts + 1,
        &body,
        header(&h, "webhook-signature")
    ));
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["type"], "rollout.analysisFailed");
    assert_eq!(v["data"]["key"], "v2/analysisFailed/1");
    // Slack: text + blocks; no webhook headers.
    let (h, body) = find(&|v| v.get("blocks").is_some());
    assert!(h.get("webhook-signature").is_none());
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert!(v["text"].as_str().unwrap().contains("success-rate 0.82"));
    // Teams: an Adaptive Card attachment.
    let (_, body) = find(&|v| v.get("attachments").is_some());
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        v["attachments"][0]["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    drop(g);
    let m = t.render();
    assert!(
        m.contains(r#"sluice_notifications_total{sink="hook",outcome="delivered"} 1"#),
        "{m}"
    );
}

#[tokio::test]
async fn server_errors_and_timeouts_are_retried_until_delivered() {
    let r = receiver(vec![
        StatusCode::SERVICE_UNAVAILABLE,
        StatusCode::INTERNAL_SERVER_ERROR,
        StatusCode::TOO_MANY_REQUESTS,
    ])
    .await;
    let store = Arc::new(Recorded::default());
    let t = Telemetry::new();
    let n = start(store.clone(), 8, &t);
    let hook = Sink::new("hook", SinkKind::Webhook, &r.url, None, vec![]).unwrap();
    n.offer(&hook, &note("v2/step/1"));
    let settled = store.wait(1).await;
    assert_eq!(settled[0].2, Outcome::Delivered);
    {
        let g = r.inbox.lock().unwrap();
        // 3 refused + 1 accepted, all with the same id (receivers drop repeats by it).
        assert_eq!(g.requests.len(), 4);
        let ids: Vec<_> = g
            .requests
            .iter()
            .map(|(h, _)| header(h, "webhook-id"))
            .collect();
        assert!(ids.windows(2).all(|w| w[0] == w[1]), "{ids:?}");
    }
    // A receiver slower than the timeout: the attempt is abandoned and repeated.
    r.inbox.lock().unwrap().delay = Some(Duration::from_secs(2));
    n.offer(&hook, &note("v2/step/2"));
    let settled = store.wait(2).await;
    assert_eq!(settled[1].2, Outcome::Delivered);
    assert_eq!(r.inbox.lock().unwrap().requests.len(), 6);
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    let r = receiver(vec![StatusCode::BAD_REQUEST]).await;
    let store = Arc::new(Recorded::default());
    let t = Telemetry::new();
    let n = start(store.clone(), 8, &t);
    let hook = Sink::new("hook", SinkKind::Slack, &r.url, None, vec![]).unwrap();
    n.offer(&hook, &note("v2/promoted/2"));
    let settled = store.wait(1).await;
    assert_eq!(settled[0].2, Outcome::Failed);
    // An offer from a copy of the outbox read before the settle is not sent again.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(n.offer(&hook, &note("v2/promoted/2")), Offer::Settled);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(r.inbox.lock().unwrap().requests.len(), 1);
    assert!(t
        .render()
        .contains(r#"sluice_notifications_total{sink="hook",outcome="failed"} 1"#));
}

#[tokio::test]
async fn an_unreachable_receiver_is_retried_until_it_listens() {
    // A port nobody listens on (bound, then closed), later served.
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = probe.local_addr().unwrap();
    drop(probe);
    let store = Arc::new(Recorded::default());
    let t = Telemetry::new();
    let n = start(store.clone(), 8, &t);
    let url = format!("http://{addr}/hook");
    let hook = Sink::new("hook", SinkKind::Webhook, &url, None, vec![]).unwrap();
    n.offer(&hook, &note("v2/started/0"));
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(store.0.lock().unwrap().is_empty(), "settled while down");
    // Offering it again while it is being retried does not duplicate it.
    assert_eq!(n.offer(&hook, &note("v2/started/0")), Offer::InFlight);
    let inbox = Arc::new(Mutex::new(Inbox::default()));
    let app = axum::Router::new()
        .route("/hook", post(hook_handler_for_test))
        .with_state(inbox.clone());
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let settled = store.wait(1).await;
    task.abort();
    assert_eq!(settled[0].2, Outcome::Delivered);
    assert_eq!(inbox.lock().unwrap().requests.len(), 1);
}

async fn hook_handler_for_test(
    state: State<Arc<Mutex<Inbox>>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    hook(state, headers, body).await
}

#[tokio::test]
async fn a_full_queue_drops_and_counts_without_waiting() {
    let r = receiver(vec![]).await;
    r.inbox.lock().unwrap().delay = Some(Duration::from_secs(30));
    let store = Arc::new(Recorded::default());
    let t = Telemetry::new();
    let n = start(store.clone(), 1, &t);
    let hook = Sink::new("hook", SinkKind::Webhook, &r.url, None, vec![]).unwrap();
    assert_eq!(n.offer(&hook, &note("v2/step/1")), Offer::Queued);
    // `offer` is not async: it cannot wait for the receiver.
    assert_eq!(n.offer(&hook, &note("v2/step/2")), Offer::Dropped);
    assert_eq!(n.offer(&hook, &note("v2/step/3")), Offer::Dropped);
    let m = t.render();
    assert!(
        m.contains(r#"sluice_notifications_dropped_total{reason="queue_full"} 2"#),
        "{m}"
    );
}
