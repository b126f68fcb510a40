//! Rollout routes over the router with an in-memory store: read, commands, wait, auth (static
//! token and a fake Kubernetes authorizer), strict bodies, health and metrics.

mod api_support;

use std::sync::Arc;
use std::time::Duration;

use api_support::*;
use axum::http::StatusCode;
use futures::future::BoxFuture;
use sluice_controller::api::auth::AuthError;
use sluice_controller::api::{AuthDecision, Authorizer, Principal, Verb};
use sluice_controller::store::{MemoryStore, StoreError};
use sluice_crds::{AbortInfo, Command, CommandAction, Phase, RolloutStatus};

const WEB: &str = "/api/v1/namespaces/shop/rollouts/web";

fn store() -> MemoryStore {
    let s = MemoryStore::new();
    s.insert(rollout("shop", "web", Phase::Progressing, Some("rev2")));
    s.insert(rollout("shop", "done", Phase::Succeeded, None));
    s
}

#[tokio::test]
async fn list_and_get() {
    let s = store();
    let st = state(&s);
    let r = call(&st, "GET", "/api/v1/rollouts", Some(API_TOKEN), "").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let names: Vec<&str> = r.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["done", "web"]);
    let r = call(&st, "GET", WEB, Some(API_TOKEN), "").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json["phase"], "Progressing");
    assert_eq!(r.json["weight"], 10);
    assert_eq!(r.json["step"], 1);
    assert_eq!(r.json["totalSteps"], 3);
    assert_eq!(r.json["canaryRevision"], "rev2");
    assert_eq!(r.json["stableRevision"], "stable1");
    let r = call(
        &st,
        "GET",
        "/api/v1/namespaces/shop/rollouts/nope",
        Some(API_TOKEN),
        "",
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json["error"], "not_found");
    let r = call(&st, "GET", "/api/v1/nothing/here", Some(API_TOKEN), "").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = call(&st, "DELETE", WEB, Some(API_TOKEN), "").await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn api_needs_the_token() {
    let s = store();
    let st = state(&s);
    for token in [None, Some("wrong"), Some(HOOK_TOKEN)] {
        let r = call(&st, "GET", WEB, token, "").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{token:?}");
        let r = call(&st, "POST", &format!("{WEB}/abort"), token, "").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{token:?}");
    }
    assert_eq!(s.writes(), 0);
    // Health and metrics are open.
    assert_eq!(
        call(&st, "GET", "/healthz", None, "").await.status,
        StatusCode::OK
    );
    assert_eq!(
        call(&st, "GET", "/readyz", None, "").await.status,
        StatusCode::OK
    );
    s.fail_next(vec![StoreError::Unavailable("down".into())]);
    assert_eq!(
        call(&st, "GET", "/readyz", None, "").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
}

#[tokio::test]
async fn commands_write_the_annotation() {
    let s = store();
    let st = state(&s);
    let r = call(
        &st,
        "POST",
        &format!("{WEB}/promote?full=true"),
        Some(API_TOKEN),
        "",
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    let cmd = Command::parse(&annotation(&s, "shop", "web").unwrap()).unwrap();
    assert_eq!(cmd.action, CommandAction::PromoteFull);
    assert_eq!(cmd.by.as_deref(), Some("api-token"));
    for (path, action) in [
        ("promote", CommandAction::Promote),
        ("pause", CommandAction::Pause),
        ("resume", CommandAction::Resume),
        ("abort", CommandAction::Abort),
    ] {
        let body = serde_json::json!({"reason": format!("by test {path}"), "revision": "rev2"});
        let r = call(
            &st,
            "POST",
            &format!("{WEB}/{path}"),
            Some(API_TOKEN),
            body.to_string(),
        )
        .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{path}: {}", r.text);
        let cmd = Command::parse(&annotation(&s, "shop", "web").unwrap()).unwrap();
        assert_eq!(cmd.action, action);
        assert_eq!(cmd.reason, Some(format!("by test {path}")));
        assert_eq!(cmd.revision.as_deref(), Some("rev2"));
    }
    assert_eq!(s.writes(), 5);
    assert!(st
        .telemetry
        .render()
        .contains("sluice_commands_total{action=\"abort\",source=\"api\"} 1"));
}

#[tokio::test]
async fn commands_refused_when_they_cannot_apply() {
    let s = store();
    let st = state(&s);
    // Wrong revision: the pipeline's revision was superseded.
    let r = call(
        &st,
        "POST",
        &format!("{WEB}/promote"),
        Some(API_TOKEN),
        r#"{"revision":"old"}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.json["error"], "revision_mismatch");
    // Nothing to promote on a finished rollout.
    let r = call(
        &st,
        "POST",
        "/api/v1/namespaces/shop/rollouts/done/promote",
        Some(API_TOKEN),
        "",
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.json["error"], "not_applicable");
    let r = call(
        &st,
        "POST",
        "/api/v1/namespaces/shop/rollouts/ghost/abort",
        Some(API_TOKEN),
        "",
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // Persistent conflict: 409 after retries.
    s.fail_next_commands(vec![StoreError::Conflict("x".into()); 5]);
    let r = call(&st, "POST", &format!("{WEB}/abort"), Some(API_TOKEN), "").await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.json["error"], "conflict");
    assert_eq!(s.writes(), 0);
}

#[tokio::test]
async fn bad_command_bodies_are_400() {
    let s = store();
    let st = state(&s);
    let long_reason = serde_json::json!({"reason": "x".repeat(5000)}).to_string();
    let bodies = [
        r#"{"reason":"x","force":true}"#.to_string(),
        r#"{"reason":5}"#.to_string(),
        r#"{"reason":"x""#.to_string(),
        "not json".to_string(),
        format!("{}{}", "[".repeat(100), "]".repeat(100)),
        long_reason,
    ];
    for b in bodies {
        let r = call(
            &st,
            "POST",
            &format!("{WEB}/abort"),
            Some(API_TOKEN),
            b.clone(),
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{b:.60}: {}", r.text);
        assert_eq!(r.json["error"], "bad_request");
    }
    let r = call(
        &st,
        "POST",
        &format!("{WEB}/promote?full=maybe"),
        Some(API_TOKEN),
        "",
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = call(
        &st,
        "POST",
        &format!("{WEB}/promote?fast=1"),
        Some(API_TOKEN),
        "",
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(s.writes(), 0);
}

#[tokio::test]
async fn wait_reports_outcomes_with_distinct_statuses() {
    let s = store();
    let st = state(&s);
    let wait = |q: &str| format!("{WEB}/wait?{q}");
    // Still progressing: times out.
    let r = call(
        &st,
        "GET",
        &wait("for=promoted&timeout=100ms"),
        Some(API_TOKEN),
        "",
    )
    .await;
    assert_eq!(r.status.as_u16(), 408, "{}", r.text);
    assert_eq!(r.json["outcome"], "timeout");
    // Promoted while waiting.
    let s2 = s.clone();
    let flip = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut st = RolloutStatus {
            phase: Phase::Succeeded,
            stable_revision: Some("rev2".into()),
            ..Default::default()
        };
        st.canary_revision = Some("rev2".into());
        s2.set_status("shop", "web", st);
    });
    let r = call(
        &st,
        "GET",
        &wait("for=promoted&timeout=5s&revision=rev2"),
        Some(API_TOKEN),
        "",
    )
    .await;
    flip.await.unwrap();
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["outcome"], "promoted");
    // Rolled back.
    s.set_status(
        "shop",
        "web",
        RolloutStatus {
            phase: Phase::Failed,
            stable_revision: Some("stable1".into()),
            canary_revision: Some("rev3".into()),
            abort: Some(AbortInfo {
                source: "alert".into(),
                reason: "error rate".into(),
                alert_name: Some("HighErrors".into()),
                revision: Some("rev3".into()),
                at: chrono::Utc::now(),
                ..Default::default()
            }),
            ..Default::default()
        },
    );
    let r = call(
        &st,
        "GET",
        &wait("revision=rev3&timeout=1s"),
        Some(API_TOKEN),
        "",
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.json["outcome"], "rolled_back");
    assert!(r.json["reason"].as_str().unwrap().contains("HighErrors"));
    // Paused.
    s.set_status(
        "shop",
        "web",
        RolloutStatus {
            phase: Phase::Paused,
            canary_revision: Some("rev4".into()),
            ..Default::default()
        },
    );
    let r = call(&st, "GET", &wait("timeout=1s"), Some(API_TOKEN), "").await;
    assert_eq!(r.status.as_u16(), 423);
    assert_eq!(r.json["outcome"], "paused");
    // Bad parameters and unknown rollouts.
    for q in [
        "for=sometime",
        "timeout=forever",
        "timeout=2h",
        "colour=red",
    ] {
        let r = call(&st, "GET", &wait(q), Some(API_TOKEN), "").await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{q}");
    }
    let r = call(
        &st,
        "GET",
        "/api/v1/namespaces/shop/rollouts/ghost/wait",
        Some(API_TOKEN),
        "",
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

/// Stands in for TokenReview + SubjectAccessReview: alice may patch in `shop`, bob may only read.
struct FakeKube;

impl Authorizer for FakeKube {
    fn authorize<'a>(
        &'a self,
        token: &'a str,
        verb: Verb,
        namespace: Option<&'a str>,
        _name: Option<&'a str>,
    ) -> BoxFuture<'a, Result<AuthDecision, AuthError>> {
        Box::pin(async move {
            let user = match token {
                "alice-token" => "alice",
                "bob-token" => "bob",
                "broken" => return Err(AuthError("apiserver down".into())),
                _ => return Ok(AuthDecision::Unauthenticated),
            };
            let allowed = match (user, verb) {
                ("alice", _) => namespace == Some("shop"),
                ("bob", Verb::Read) => true,
                _ => false,
            };
            Ok(if allowed {
                AuthDecision::Allowed(Principal { name: user.into() })
            } else {
                AuthDecision::Denied {
                    user: user.into(),
                    reason: "no RoleBinding".into(),
                }
            })
        })
    }
}

#[tokio::test]
async fn kubernetes_authorizer_decides_per_verb() {
    let s = store();
    let mut st = state(&s);
    st.auth.authorizer = Some(Arc::new(FakeKube));
    let abort = format!("{WEB}/abort");
    let r = call(&st, "POST", &abort, Some("bob-token"), "").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    assert!(r.json["message"].as_str().unwrap().contains("patch"));
    assert_eq!(
        call(&st, "GET", WEB, Some("bob-token"), "").await.status,
        StatusCode::OK
    );
    assert_eq!(
        call(&st, "POST", &abort, Some("nobody"), "").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        call(&st, "POST", &abort, Some("broken"), "").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(s.writes(), 0);
    let r = call(&st, "POST", &abort, Some("alice-token"), "").await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    let cmd = Command::parse(&annotation(&s, "shop", "web").unwrap()).unwrap();
    assert_eq!(cmd.by.as_deref(), Some("alice"));
    // alice may not list across namespaces.
    assert_eq!(
        call(&st, "GET", "/api/v1/rollouts", Some("alice-token"), "")
            .await
            .status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn metrics_render() {
    let s = store();
    let st = state(&s);
    st.telemetry.record_reconcile(0.02, true);
    let r = call(&st, "GET", "/metrics", None, "").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.text.contains("sluice_reconcile_duration_seconds_count 1"),
        "{}",
        r.text
    );
}

#[tokio::test]
async fn events_stream_changes() {
    use futures::StreamExt;
    use tower::ServiceExt;

    let s = store();
    let st = state(&s);
    let req = axum::http::Request::get(format!("{WEB}/events"))
        .header("authorization", format!("Bearer {API_TOKEN}"))
        .body(axum::body::Body::empty())
        .unwrap();
    let resp = sluice_controller::api::router(st.clone())
        .oneshot(req)
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let mut body = resp.into_body().into_data_stream();
    let first = String::from_utf8(body.next().await.unwrap().unwrap().to_vec()).unwrap();
    assert!(first.starts_with("event: rollout"), "{first}");
    assert!(first.contains("\"phase\":\"Progressing\""), "{first}");
    s.set_status(
        "shop",
        "web",
        RolloutStatus {
            phase: Phase::Failed,
            ..Default::default()
        },
    );
    let next = tokio::time::timeout(Duration::from_secs(5), body.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let next = String::from_utf8(next.to_vec()).unwrap();
    assert!(next.contains("\"phase\":\"Failed\""), "{next}");
    // Unknown rollout and missing token: plain JSON errors.
    let r = call(
        &st,
        "GET",
        "/api/v1/namespaces/shop/rollouts/ghost/events",
        Some(API_TOKEN),
        "",
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = call(&st, "GET", &format!("{WEB}/events"), None, "").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}
