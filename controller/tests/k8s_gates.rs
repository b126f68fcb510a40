//! Gates in the Kubernetes shell, on the in-memory API (kube-fake-client) and a real gate
//! server on 127.0.0.1: the gate is asked with a header value from a Secret, a closed gate
//! holds the canary at 0% with the reason in status, and the weight moves once it opens.

mod k8s_common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::ByteString;
use sluice_controller::clock::ManualClock;
use sluice_crds::{Gate, GateCheck, GateHeader, GatesSpec, SecretKeyRef};

use k8s_common::*;

#[derive(Default)]
struct Seen {
    code: u16,
    auth: Vec<Option<String>>,
    bodies: Vec<serde_json::Value>,
}

async fn gate_server(seen: Arc<Mutex<Seen>>) -> (String, tokio::task::JoinHandle<()>) {
    let app = axum::Router::new().route(
        "/confirm",
        post(move |h: HeaderMap, body: String| {
            let seen = seen.clone();
            async move {
                let mut s = seen.lock().unwrap();
                s.auth.push(
                    h.get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string),
                );
                s.bodies
                    .push(serde_json::from_str(&body).unwrap_or(serde_json::Value::Null));
                (StatusCode::from_u16(s.code).unwrap(), "change freeze")
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/confirm", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, task)
}

#[tokio::test]
async fn a_closed_gate_holds_the_canary_at_zero_and_an_open_one_lets_it_move() {
    let seen = Arc::new(Mutex::new(Seen {
        code: 403,
        ..Seen::default()
    }));
    let (url, server) = gate_server(seen.clone()).await;
    let mut r = rollout();
    r.spec.gates = GatesSpec {
        confirm_traffic_increase: Some(Gate {
            checks: vec![GateCheck {
                name: "freeze".into(),
                url,
                headers: vec![GateHeader {
                    name: "Authorization".into(),
                    secret_key_ref: Some(SecretKeyRef {
                        name: "gate-token".into(),
                        key: "token".into(),
                    }),
                    ..GateHeader::default()
                }],
                ..GateCheck::default()
            }],
            deadline: Some("1h".into()),
            interval: Some("10s".into()),
            ..Gate::default()
        }),
        ..GatesSpec::default()
    };
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some("gate-token".into()),
            namespace: Some(NS.into()),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([(
            "token".to_string(),
            ByteString(b"Bearer s3cret\n".to_vec()),
        )])),
        ..Secret::default()
    };
    let client = builder()
        .with_object(r)
        .with_object(target("podinfo:1.0", 3))
        .with_object(user_ingress())
        .with_object(secret)
        .build()
        .await
        .unwrap();
    let clock = Arc::new(ManualClock::new(start()));
    let ctx = context(&client, &clock);
    run_until(&client, &ctx, &clock, "Idle", 10).await;
    set_image(&client, "podinfo:2.0").await;
    // Ten ticks of 30 s with the gate closed: the canary is ready and stays at 0%.
    let mut trace = Vec::new();
    for _ in 0..10 {
        trace.push(tick(&client, &ctx, &clock, chrono::Duration::seconds(30)).await);
    }
    assert!(
        trace
            .iter()
            .all(|p| p.weight.unwrap_or(0) == 0 && p.phase == "Progressing"),
        "{trace:#?}"
    );
    let st = get_rollout(&client).await.status.unwrap();
    let rec = &st.gates[0];
    assert_eq!(rec.state, sluice_crds::GateState::Closed);
    assert_eq!(rec.step, Some(0));
    let reason = rec.reason.clone().unwrap();
    assert!(
        reason.starts_with("check freeze: POST http://127.0.0.1:")
            && reason.ends_with("answered HTTP 403: change freeze"),
        "{reason}"
    );
    let gated = st.condition("Gated").unwrap();
    assert_eq!(
        (gated.status.as_str(), gated.reason.as_str()),
        ("True", "ConfirmTrafficIncreaseClosed")
    );
    {
        let s = seen.lock().unwrap();
        assert!(s.auth.len() >= 9, "asked {} times", s.auth.len());
        // The Secret's value, its trailing newline dropped.
        assert!(s.auth.iter().all(|a| a.as_deref() == Some("Bearer s3cret")));
        assert_eq!(s.bodies[0]["namespace"], NS);
        assert_eq!(s.bodies[0]["gate"], "confirmTrafficIncrease");
        assert_eq!(s.bodies[0]["nextWeight"], 20);
    }
    seen.lock().unwrap().code = 200;
    let mut weights = Vec::new();
    for _ in 0..3 {
        weights.push(
            tick(&client, &ctx, &clock, chrono::Duration::seconds(30))
                .await
                .weight,
        );
    }
    assert!(weights.contains(&Some(20)), "{weights:?}");
    let st = get_rollout(&client).await.status.unwrap();
    assert_eq!(st.condition("Gated").unwrap().status, "False");
    server.abort();
}

#[tokio::test]
async fn a_missing_secret_closes_the_gate_with_a_reason() {
    let mut r = rollout();
    r.spec.gates = GatesSpec {
        pre_rollout: Some(Gate {
            checks: vec![GateCheck {
                name: "smoke".into(),
                url: "http://127.0.0.1:1/never-reached".into(),
                headers: vec![GateHeader {
                    name: "Authorization".into(),
                    secret_key_ref: Some(SecretKeyRef {
                        name: "absent".into(),
                        key: "token".into(),
                    }),
                    ..GateHeader::default()
                }],
                ..GateCheck::default()
            }],
            ..Gate::default()
        }),
        ..GatesSpec::default()
    };
    let client = client_with(r, None).await;
    let clock = Arc::new(ManualClock::new(start()));
    let ctx = context(&client, &clock);
    run_until(&client, &ctx, &clock, "Idle", 10).await;
    set_image(&client, "podinfo:2.0").await;
    for _ in 0..4 {
        tick(&client, &ctx, &clock, chrono::Duration::seconds(30)).await;
    }
    let st = get_rollout(&client).await.status.unwrap();
    let rec = &st.gates[0];
    assert_eq!(rec.state, sluice_crds::GateState::Closed);
    assert_eq!(
        rec.reason.as_deref(),
        Some("check smoke: header Authorization: Secret demo/absent not found")
    );
    assert_eq!(canary_weight(&client).await.unwrap_or(0), 0);
}
