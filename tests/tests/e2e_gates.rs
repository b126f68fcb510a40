//! End to end, standalone mode, real NGINX + mtail + Prometheus (+ Alertmanager), with a local
//! gate server on 127.0.0.1 (issue 16, gates): a failing preRollout gate keeps every request
//! off the canary; a closed confirmPromotion gate holds the rollout until it opens, and an
//! alert during that hold still rolls back at once; a gate's deadline fails the rollout with
//! the gate's reason.

#[path = "e2e_support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use serde_json::Value;
use support::*;

/// What each gate path answers, and every body it received.
#[derive(Default)]
struct GateServerState {
    answers: BTreeMap<String, (u16, String)>,
    asked: Vec<(String, Value)>,
}

type Shared = Arc<Mutex<GateServerState>>;

/// A gate server: `POST /NAME` answers what `set` said (default 200).
struct GateServer {
    url: String,
    state: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl GateServer {
    async fn start() -> GateServer {
        let state: Shared = Arc::default();
        let app = axum::Router::new()
            .route(
                "/{name}",
                post(
                    |State(s): State<Shared>, Path(name): Path<String>, body: String| async move {
                        let mut s = s.lock().unwrap();
                        let v = serde_json::from_str(&body).unwrap_or(Value::Null);
                        s.asked.push((name.clone(), v));
                        let (code, text) =
                            s.answers.get(&name).cloned().unwrap_or((200, "ok".into()));
                        (StatusCode::from_u16(code).unwrap(), text)
                    },
                ),
            )
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        GateServer { url, state, task }
    }

    fn set(&self, name: &str, code: u16, text: &str) {
        self.state
            .lock()
            .unwrap()
            .answers
            .insert(name.into(), (code, text.into()));
    }

    fn asks(&self, name: &str) -> Vec<Value> {
        let s = self.state.lock().unwrap();
        s.asked
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

impl Drop for GateServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A `gates:` section with one gate of one check at `url/name`.
fn gates(gate: &str, url: &str, name: &str, extra: &str) -> String {
    format!(
        "    gates:\n      {gate}:\n        interval: 1s\n{extra}        checks:\n          - {{ name: {name}, url: \"{url}/{name}\", timeout: 2s }}\n"
    )
}

fn gate_record<'a>(s: &'a Value, gate: &str) -> Option<&'a Value> {
    s.pointer("/status/gates")?
        .as_array()?
        .iter()
        .find(|g| g["gate"] == gate)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_pre_rollout_gate_means_the_canary_never_gets_traffic() {
    let gate = GateServer::start().await;
    gate.set("smoke", 500, "smoke test: /checkout answered 500");
    let mut bed = Bed::start(BedOptions {
        extra_rollout: gates("preRollout", &gate.url, "smoke", "        deadline: 0s\n"),
        ..BedOptions::default()
    })
    .await;
    bed.ready_for_rollout().await;
    let before = bed.load.as_ref().unwrap().snapshot();
    let canary = bed.canary.addr();
    bed.write_file("v2");
    // Every look at NGINX's upstream file until the rollout failed: the canary stays `down`.
    let s = bed
        .wait_state("the rollback", Duration::from_secs(60), |s| {
            let text = bed.upstream_text();
            assert!(
                text.contains(&format!("server {canary} down;")),
                "the canary got weight: {text}"
            );
            phase_is(s, "Failed")
        })
        .await;
    assert_eq!(weight(&s), 0, "{s}");
    assert_eq!(s["status"]["abort"]["source"], "gate", "{s}");
    let reason = s["status"]["abort"]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with(
            "gate preRollout still closed after its deadline (0s): check smoke: POST "
        ) && reason.ends_with("/smoke answered HTTP 500: smoke test: /checkout answered 500"),
        "{reason}"
    );
    // Traffic went on through NGINX before, during and after the rollback: all of it stable.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let during = bed.load.as_ref().unwrap().snapshot().since(&before);
    assert!(during.responses() > 0, "no traffic at all: {during:?}");
    assert_eq!(
        during.version("canary"),
        0,
        "the canary served requests: {during:?}"
    );
    assert_eq!(during.version("stable"), during.responses(), "{during:?}");
    // The gate was asked with the rollout's identity before any traffic.
    let asks = gate.asks("smoke");
    assert_eq!(asks.len(), 1, "{asks:?}");
    assert_eq!(asks[0]["gate"], "preRollout");
    assert_eq!(asks[0]["canaryRevision"], "v2");
    assert_eq!(asks[0]["stableRevision"], "v1");
    assert_eq!(asks[0]["weight"], 0);
    eprintln!(
        "failing preRollout gate: rolled back; canary served {} of {} requests",
        during.version("canary"),
        during.responses()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_closed_promotion_gate_holds_the_rollout_until_it_opens() {
    let gate = GateServer::start().await;
    gate.set("qa", 409, "QA has not signed off");
    let mut bed = Bed::start(BedOptions {
        extra_rollout: gates(
            "confirmPromotion",
            &gate.url,
            "qa",
            "        deadline: 10m\n",
        ),
        ..BedOptions::default()
    })
    .await;
    bed.ready_for_rollout().await;
    bed.write_file("v2");
    // Both analysis steps pass, then the gate holds at 50%.
    let s = bed
        .wait_state("the hold at the gate", Duration::from_secs(90), |s| {
            gate_record(s, "confirmPromotion").is_some_and(|g| g["state"] == "Closed")
        })
        .await;
    assert_eq!(weight(&s), 50, "{s}");
    let held_at = Instant::now();
    // It stays held (still Progressing, still 50%, no promotion) while the gate is closed.
    while held_at.elapsed() < Duration::from_secs(6) {
        let s = bed.state().unwrap();
        assert!(phase_is(&s, "Progressing"), "{s}");
        assert_eq!(weight(&s), 50, "{s}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let s = bed.state().unwrap();
    let msg = s["status"]["message"].as_str().unwrap();
    assert!(
        msg.contains("held by gate confirmPromotion: check qa: POST")
            && msg.contains("answered HTTP 409: QA has not signed off"),
        "{msg}"
    );
    let view = bed
        .api_get("/api/v1/namespaces/standalone/rollouts/web")
        .await;
    let g = view["gates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["gate"] == "confirmPromotion")
        .unwrap();
    assert_eq!(g["state"], "closed", "{view}");
    assert!(g["since"].is_string() && g["deadlineAt"].is_string(), "{g}");
    let cond = view["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Gated")
        .unwrap();
    assert_eq!(cond["reason"], "ConfirmPromotionClosed", "{cond}");
    // Asked again every second while closed.
    let asked = gate.asks("qa").len();
    assert!(asked >= 4, "asked {asked} times in 6 s");
    gate.set("qa", 200, "signed off");
    let opened = Instant::now();
    let s = bed
        .wait_state("promotion", Duration::from_secs(30), |s| {
            phase_is(s, "Succeeded")
        })
        .await;
    assert_eq!(s["status"]["stableRevision"], "v2", "{s}");
    eprintln!(
        "confirmPromotion gate: held {} asks, promoted {:.1} s after it opened",
        asked,
        opened.elapsed().as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_alert_during_a_gate_hold_still_rolls_back_at_once() {
    let gate = GateServer::start().await;
    gate.set("qa", 409, "waiting for QA");
    let mut bed = Bed::start(BedOptions {
        canary_error_rate: 0.3,
        // No analysis: only the alert can end this rollout; the gate holds right after 20%.
        steps: "
          - setWeight: 20",
        analysis: "",
        alerting: true,
        extra_rollout: gates(
            "confirmPromotion",
            &gate.url,
            "qa",
            "        deadline: 10m\n",
        ),
        ..BedOptions::default()
    })
    .await;
    bed.ready_for_rollout().await;
    bed.write_file("v2");
    bed.wait_state("the hold at the gate", Duration::from_secs(60), |s| {
        weight(s) == 20
            && gate_record(s, "confirmPromotion").is_some_and(|g| g["state"] == "Closed")
    })
    .await;
    let s = bed
        .wait_state("the alert's rollback", Duration::from_secs(90), |s| {
            phase_is(s, "Failed")
        })
        .await;
    assert_eq!(weight(&s), 0, "{s}");
    assert_eq!(s["status"]["abort"]["source"], "alert", "{s}");
    // The gate never opened: the alert did not wait for it.
    let g = gate_record(&s, "confirmPromotion").unwrap();
    assert_eq!(g["state"], "Closed", "{s}");
    assert!(
        bed.upstream_text().contains("down;"),
        "{}",
        bed.upstream_text()
    );
    // From the abort to Failed (weight 0 in NGINX) within one tick or two.
    let at = |p: &str| {
        chrono::DateTime::parse_from_rfc3339(s.pointer(p).and_then(Value::as_str).unwrap()).unwrap()
    };
    let aborted = at("/status/abort/at");
    let failed = s["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Aborted")
        .and_then(|c| c["lastTransitionTime"].as_str())
        .map(|t| chrono::DateTime::parse_from_rfc3339(t).unwrap())
        .unwrap();
    let took = (failed - aborted).num_milliseconds();
    assert!(took <= 5_000, "abort at {aborted}, failed at {failed}");
    eprintln!("alert during a closed confirmPromotion gate: failed {took} ms after the abort");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_gate_deadline_fails_the_rollout_with_its_reason() {
    let gate = GateServer::start().await;
    gate.set("freeze", 423, "change freeze until Monday");
    let mut bed = Bed::start(BedOptions {
        steps: "
          - setWeight: 20
          - setWeight: 40",
        analysis: "",
        extra_rollout: gates(
            "confirmTrafficIncrease",
            &gate.url,
            "freeze",
            "        deadline: 4s\n",
        ),
        ..BedOptions::default()
    })
    .await;
    bed.ready_for_rollout().await;
    bed.write_file("v2");
    let t0 = Instant::now();
    let s = bed
        .wait_state("the deadline's rollback", Duration::from_secs(60), |s| {
            phase_is(s, "Failed")
        })
        .await;
    let took = t0.elapsed();
    assert_eq!(s["status"]["abort"]["source"], "gate", "{s}");
    let reason = s["status"]["abort"]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with(
            "gate confirmTrafficIncrease still closed after its deadline (4s): check freeze: POST "
        ) && reason.ends_with("answered HTTP 423: change freeze until Monday"),
        "{reason}"
    );
    let aborted = s["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Aborted")
        .unwrap();
    assert_eq!(aborted["reason"], "GateDeadline", "{aborted}");
    // The first increase (0 -> 20) was never confirmed: the canary never got traffic.
    assert_eq!(weight(&s), 0, "{s}");
    let asks = gate.asks("freeze");
    assert!(asks.len() >= 3, "{asks:?}");
    assert_eq!(asks[0]["nextWeight"], 20);
    eprintln!(
        "confirmTrafficIncrease deadline 4s: failed {:.1} s after the new version, {} asks",
        took.as_secs_f64(),
        asks.len()
    );
}
