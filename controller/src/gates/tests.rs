//! Gate requests: the JSON body, header values, the 2xx rule, and real asks of a local server.

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use chrono::TimeZone;
use sluice_crds::{GateCheck, GateHeader, SecretKeyRef};

use super::*;

fn status() -> RolloutStatus {
    RolloutStatus {
        phase: sluice_crds::Phase::Progressing,
        canary_weight: 20,
        current_step: 2,
        stable_revision: Some("v1".into()),
        canary_revision: Some("v2".into()),
        ..RolloutStatus::default()
    }
}

fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
}

fn check(url: &str) -> GateCheck {
    GateCheck {
        name: "smoke".into(),
        url: url.into(),
        ..GateCheck::default()
    }
}

#[tokio::test]
async fn post_carries_the_rollout_as_json_and_get_has_no_body() {
    let st = status();
    let cx = AskContext {
        name: "shop",
        namespace: "prod",
        status: &st,
        gate: GateName::ConfirmTrafficIncrease,
        revision: "v2",
        step: Some(3),
        next_weight: Some(40),
        now: at(),
    };
    let p = cx.payload("smoke");
    let r = request(&check("http://127.0.0.1:9/g"), &p, &EnvHeaders)
        .await
        .unwrap();
    assert_eq!(r.method, WebMethod::Post);
    let body: serde_json::Value = serde_json::from_str(r.body.as_deref().unwrap()).unwrap();
    assert_eq!(
        body,
        serde_json::json!({
            "name": "shop", "namespace": "prod", "gate": "confirmTrafficIncrease",
            "check": "smoke", "revision": "v2", "stableRevision": "v1", "canaryRevision": "v2",
            "phase": "Progressing", "weight": 20, "step": 3, "nextWeight": 40,
            "askedAt": "2026-01-01T00:00:00Z"
        })
    );
    let get = GateCheck {
        method: GateMethod::Get,
        ..check("http://127.0.0.1:9/g")
    };
    assert_eq!(request(&get, &p, &EnvHeaders).await.unwrap().body, None);
}

#[tokio::test]
async fn header_values_come_from_the_environment_standalone_and_missing_ones_say_so() {
    let p = AskContext {
        name: "a",
        namespace: "standalone",
        status: &status(),
        gate: GateName::PreRollout,
        revision: "v2",
        step: None,
        next_weight: None,
        now: at(),
    }
    .payload("smoke");
    // PATH is set in every test process.
    let mut c = check("http://127.0.0.1:9/g");
    c.headers = vec![
        GateHeader {
            name: "X-Literal".into(),
            value: Some("yes".into()),
            ..GateHeader::default()
        },
        GateHeader {
            name: "X-Path".into(),
            env: Some("PATH".into()),
            ..GateHeader::default()
        },
    ];
    let r = request(&c, &p, &EnvHeaders).await.unwrap();
    assert_eq!(r.headers[0], ("X-Literal".into(), "yes".into()));
    assert_eq!(r.headers[1].1, std::env::var("PATH").unwrap());
    c.headers = vec![GateHeader {
        name: "Authorization".into(),
        env: Some("SLUICE_TEST_SURELY_UNSET_VAR".into()),
        ..GateHeader::default()
    }];
    let e = request(&c, &p, &EnvHeaders).await.unwrap_err();
    assert!(
        e.contains("Authorization") && e.contains("SLUICE_TEST_SURELY_UNSET_VAR is not set"),
        "{e}"
    );
    c.headers = vec![GateHeader {
        name: "Authorization".into(),
        secret_key_ref: Some(SecretKeyRef {
            name: "s".into(),
            key: "k".into(),
        }),
        ..GateHeader::default()
    }];
    let e = request(&c, &p, &EnvHeaders).await.unwrap_err();
    assert!(e.contains("Kubernetes only"), "{e}");
}

#[test]
fn only_2xx_opens_and_a_closed_answer_shows_its_body_shortened() {
    let req = WebRequest {
        method: WebMethod::Post,
        url: "http://g/x".into(),
        body: None,
        headers: vec![],
        timeout: DEFAULT_TIMEOUT,
    };
    let a = |status: u16, body: &str| {
        Ok(WebAnswer {
            status,
            body: body.as_bytes().to_vec(),
        })
    };
    assert_eq!(judge(&req, &a(200, "")), Ok(()));
    assert_eq!(judge(&req, &a(204, "")), Ok(()));
    assert_eq!(
        judge(&req, &a(403, " not approved yet \n")),
        Err("POST http://g/x answered HTTP 403: not approved yet".into())
    );
    assert_eq!(
        judge(&req, &a(301, "")),
        Err("POST http://g/x answered HTTP 301".into())
    );
    let long = "x".repeat(500);
    let e = judge(&req, &a(500, &long)).unwrap_err();
    assert!(e.ends_with('…') && e.len() < 300, "{e}");
    assert_eq!(
        judge(&req, &Err("refused".into())),
        Err("refused".to_string())
    );
}

type Seen = Arc<Mutex<Vec<(Option<String>, serde_json::Value)>>>;

/// A gate server on 127.0.0.1 that answers `code` and records what it got.
async fn server(code: StatusCode) -> (String, Seen, tokio::task::JoinHandle<()>) {
    let seen: Seen = Arc::default();
    let app = axum::Router::new()
        .route(
            "/gate",
            post(
                move |State(s): State<Seen>, h: HeaderMap, body: String| async move {
                    let auth = h
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string);
                    let v = serde_json::from_str(&body).unwrap_or(serde_json::Value::Null);
                    s.lock().unwrap().push((auth, v));
                    (code, "gate says so")
                },
            ),
        )
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let h = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/gate"), seen, h)
}

#[tokio::test]
async fn a_gate_is_open_only_when_every_check_answers_2xx() {
    let (ok, seen_ok, h1) = server(StatusCode::OK).await;
    let (no, _, h2) = server(StatusCode::SERVICE_UNAVAILABLE).await;
    let st = status();
    let cx = AskContext {
        name: "shop",
        namespace: "prod",
        status: &st,
        gate: GateName::ConfirmPromotion,
        revision: "v2",
        step: None,
        next_weight: None,
        now: at(),
    };
    let mut first = check(&ok);
    first.headers = vec![GateHeader {
        name: "Authorization".into(),
        value: Some("Bearer t".into()),
        ..GateHeader::default()
    }];
    let gate = Gate {
        checks: vec![first.clone()],
        ..Gate::default()
    };
    let a = ask(&gate, &cx, &EnvHeaders).await;
    assert!(a.open, "{}", a.reason);
    assert_eq!(a.reason, "its check answered 2xx");
    {
        let seen = seen_ok.lock().unwrap();
        assert_eq!(seen[0].0.as_deref(), Some("Bearer t"));
        assert_eq!(seen[0].1["gate"], "confirmPromotion");
        assert_eq!(seen[0].1["canaryRevision"], "v2");
    }
    let mut second = check(&no);
    second.name = "approval".into();
    let mut refused = check("http://127.0.0.1:1/gate");
    refused.name = "down".into();
    let gate = Gate {
        checks: vec![first, second, refused],
        ..Gate::default()
    };
    let a = ask(&gate, &cx, &EnvHeaders).await;
    assert!(!a.open);
    assert!(
        a.reason.starts_with(&format!(
            "check approval: POST {no} answered HTTP 503: gate says so (and 1 more closed)"
        )),
        "{}",
        a.reason
    );
    h1.abort();
    h2.abort();
}

#[tokio::test]
async fn a_check_that_does_not_answer_in_time_closes_the_gate() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // Accepts and never answers.
    let h = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    let mut c = check(&format!("http://{addr}/gate"));
    c.timeout = Some("1s".into());
    let gate = Gate {
        checks: vec![c],
        ..Gate::default()
    };
    let st = status();
    let cx = AskContext {
        name: "shop",
        namespace: "prod",
        status: &st,
        gate: GateName::PreRollout,
        revision: "v2",
        step: None,
        next_weight: None,
        now: at(),
    };
    let a = ask(&gate, &cx, &EnvHeaders).await;
    assert!(!a.open);
    assert!(
        a.reason.contains("did not answer within 1 s"),
        "{}",
        a.reason
    );
    h.abort();
}
