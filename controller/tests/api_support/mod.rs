//! Shared fixtures for the API tests: rollouts in given phases, an in-memory store, a router.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use sluice_controller::api::{self, ApiState, AuthConfig, Secret};
use sluice_controller::store::MemoryStore;
use sluice_controller::telemetry::Telemetry;
use sluice_crds::{
    AlertMatcher, CanaryStep, CanaryStrategy, Phase, Rollout, RolloutSpec, RolloutStatus, Strategy,
    TargetRef,
};
use tower::ServiceExt;

pub const API_TOKEN: &str = "api-token-123";
pub const HOOK_TOKEN: &str = "hook-token-456";

pub fn rollout(ns: &str, name: &str, phase: Phase, canary_rev: Option<&str>) -> Rollout {
    let mut r = Rollout::new(
        name,
        RolloutSpec {
            target_ref: TargetRef {
                name: name.to_string(),
                ..Default::default()
            },
            strategy: Strategy {
                canary: Some(CanaryStrategy {
                    steps: vec![
                        CanaryStep::weight(10),
                        CanaryStep::pause_until_promoted(),
                        CanaryStep::weight(50),
                    ],
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        },
    );
    r.metadata.namespace = Some(ns.to_string());
    r.status = Some(RolloutStatus {
        phase,
        canary_weight: if phase.in_progress() { 10 } else { 0 },
        current_step: 1,
        stable_revision: Some("stable1".to_string()),
        canary_revision: canary_rev.map(str::to_string),
        ..Default::default()
    });
    r
}

pub fn with_matcher(mut r: Rollout, labels: &[(&str, &str)]) -> Rollout {
    r.spec.alerts.push(AlertMatcher {
        name: Some("m".to_string()),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
    });
    r
}

pub fn state(store: &MemoryStore) -> ApiState {
    let mut s = ApiState::new(
        Arc::new(store.clone()),
        Telemetry::new(),
        AuthConfig {
            webhook_token: Some(Secret::new(HOOK_TOKEN)),
            api_token: Some(Secret::new(API_TOKEN)),
            ..Default::default()
        },
    );
    s.poll_interval = Duration::from_millis(20);
    s
}

pub struct Reply {
    pub status: StatusCode,
    pub json: serde_json::Value,
    pub text: String,
}

pub async fn call(
    state: &ApiState,
    method: &str,
    uri: &str,
    token: Option<&str>,
    body: impl Into<Body>,
) -> Reply {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json");
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let resp = api::router(state.clone())
        .oneshot(req.body(body.into()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 16 * 1024 * 1024)
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&bytes).to_string();
    let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    Reply { status, json, text }
}

/// One test alert: labels, status, fingerprint.
pub type TestAlert<'a> = (&'a [(&'a str, &'a str)], &'a str, &'a str);

/// An Alertmanager v4 payload with the given alerts.
pub fn am_payload(alerts: &[TestAlert<'_>]) -> serde_json::Value {
    let alerts: Vec<serde_json::Value> = alerts
        .iter()
        .map(|(labels, status, fp)| {
            let labels: BTreeMap<&str, &str> = labels.iter().copied().collect();
            serde_json::json!({
                "status": status,
                "labels": labels,
                "annotations": {"summary": "canary 5xx ratio above 5%"},
                "startsAt": "2026-11-24T23:31:54.250671178Z",
                "endsAt": if *status == "firing" { "0001-01-01T00:00:00Z" } else { "2026-11-24T23:31:59.676Z" },
                "generatorURL": "http://127.0.0.1:19090/graph",
                "fingerprint": fp,
            })
        })
        .collect();
    serde_json::json!({
        "receiver": "sluice",
        "status": "firing",
        "alerts": alerts,
        "groupLabels": {"alertname": "CanaryHighErrorRate"},
        "commonLabels": {"alertname": "CanaryHighErrorRate"},
        "commonAnnotations": {},
        "externalURL": "http://am:9093",
        "version": "4",
        "groupKey": "{}:{alertname=\"CanaryHighErrorRate\"}",
        "truncatedAlerts": 0
    })
}

pub fn annotation(store: &MemoryStore, ns: &str, name: &str) -> Option<String> {
    store
        .snapshot(ns, name)?
        .metadata
        .annotations?
        .get(sluice_crds::COMMAND_ANNOTATION)
        .cloned()
}
