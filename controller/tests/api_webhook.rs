//! Alertmanager webhook over the router with an in-memory store: targeting, idempotency,
//! resolved alerts, auth, and bad bodies.

mod api_support;

use api_support::*;
use axum::http::StatusCode;
use sluice_controller::store::{MemoryStore, StoreError};
use sluice_crds::{Command, CommandAction, Phase};

const HOOK: &str = "/webhooks/alertmanager";

fn fleet() -> MemoryStore {
    let s = MemoryStore::new();
    s.insert(rollout("shop", "web", Phase::Progressing, Some("rev2")));
    s.insert(rollout("shop", "api", Phase::Progressing, Some("rev7")));
    s.insert(rollout("other", "web", Phase::Paused, Some("rev3")));
    s.insert(rollout("shop", "idle", Phase::Idle, None));
    s
}

fn alert_for(ns: &str, name: &str) -> serde_json::Value {
    am_payload(&[(
        &[
            ("alertname", "CanaryHighErrorRate"),
            ("rollout", name),
            ("namespace", ns),
        ],
        "firing",
        "bb010712e3c4b2d7",
    )])
}

#[tokio::test]
async fn firing_alert_aborts_only_the_targeted_rollout() {
    let store = fleet();
    let st = state(&store);
    let r = call(
        &st,
        "POST",
        HOOK,
        Some(HOOK_TOKEN),
        alert_for("shop", "web").to_string(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["aborted"], serde_json::json!(["shop/web"]));
    let cmd = Command::parse(&annotation(&store, "shop", "web").unwrap()).unwrap();
    assert_eq!(cmd.action, CommandAction::Abort);
    assert_eq!(cmd.alert_name.as_deref(), Some("CanaryHighErrorRate"));
    assert_eq!(cmd.fingerprint.as_deref(), Some("bb010712e3c4b2d7"));
    assert_eq!(cmd.revision.as_deref(), Some("rev2"));
    assert_eq!(cmd.by.as_deref(), Some("alertmanager"));
    assert_eq!(cmd.reason.as_deref(), Some("canary 5xx ratio above 5%"));
    // Same name in another namespace, and the other rollouts: untouched.
    assert_eq!(annotation(&store, "other", "web"), None);
    assert_eq!(annotation(&store, "shop", "api"), None);
    assert_eq!(annotation(&store, "shop", "idle"), None);
    assert_eq!(store.writes(), 1);
    assert!(st
        .telemetry
        .render()
        .contains("sluice_webhook_requests_total{outcome=\"aborted\"} 1"));
}

#[tokio::test]
async fn resend_is_idempotent() {
    let store = fleet();
    let st = state(&store);
    let body = alert_for("shop", "web").to_string();
    let first = call(&st, "POST", HOOK, Some(HOOK_TOKEN), body.clone()).await;
    assert_eq!(first.status, StatusCode::OK);
    let id1 = Command::parse(&annotation(&store, "shop", "web").unwrap())
        .unwrap()
        .id;
    let second = call(&st, "POST", HOOK, Some(HOOK_TOKEN), body).await;
    assert_eq!(second.status, StatusCode::OK);
    assert_eq!(
        second.json["already_aborted"],
        serde_json::json!(["shop/web"])
    );
    assert_eq!(store.writes(), 1, "a re-send must not write again");
    let id2 = Command::parse(&annotation(&store, "shop", "web").unwrap())
        .unwrap()
        .id;
    assert_eq!(id1, id2);
    // A new firing (other startsAt) of the same alert is a new command.
    let mut again = alert_for("shop", "web");
    again["alerts"][0]["startsAt"] = "2026-11-25T01:00:00Z".into();
    call(&st, "POST", HOOK, Some(HOOK_TOKEN), again.to_string()).await;
    assert_eq!(store.writes(), 2);
}

#[tokio::test]
async fn resolved_alerts_and_idle_rollouts_change_nothing() {
    let store = fleet();
    let st = state(&store);
    let resolved = am_payload(&[(
        &[
            ("alertname", "X"),
            ("rollout", "web"),
            ("namespace", "shop"),
        ],
        "resolved",
        "f1",
    )]);
    let r = call(&st, "POST", HOOK, Some(HOOK_TOKEN), resolved.to_string()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let idle = alert_for("shop", "idle");
    let r = call(&st, "POST", HOOK, Some(HOOK_TOKEN), idle.to_string()).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json["ignored_alerts"], 1);
    for (name, phase) in [
        ("promoting", Phase::Promoting),
        ("back", Phase::RollingBack),
    ] {
        store.insert(rollout("shop", name, phase, Some("x1")));
        let r = call(
            &st,
            "POST",
            HOOK,
            Some(HOOK_TOKEN),
            alert_for("shop", name).to_string(),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.json["ignored_alerts"], 1, "{phase}");
    }
    let unknown = alert_for("nowhere", "ghost");
    let r = call(&st, "POST", HOOK, Some(HOOK_TOKEN), unknown.to_string()).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(store.writes(), 0);
}

#[tokio::test]
async fn declared_matchers_target_rollouts() {
    let store = MemoryStore::new();
    store.insert(with_matcher(
        rollout("shop", "web", Phase::Paused, Some("r1")),
        &[("service", "web"), ("severity", "critical")],
    ));
    store.insert(with_matcher(
        rollout("shop", "cart", Phase::Progressing, Some("r2")),
        &[("service", "cart")],
    ));
    let st = state(&store);
    let p = am_payload(&[(
        &[
            ("alertname", "Latency"),
            ("service", "web"),
            ("severity", "critical"),
        ],
        "firing",
        "aa",
    )]);
    let r = call(&st, "POST", HOOK, Some(HOOK_TOKEN), p.to_string()).await;
    assert_eq!(
        r.json["aborted"],
        serde_json::json!(["shop/web"]),
        "{}",
        r.text
    );
    assert!(annotation(&store, "shop", "cart").is_none());
    // A partial match (severity missing) matches nothing.
    let partial = am_payload(&[(&[("alertname", "L"), ("service", "web")], "firing", "bb")]);
    let r = call(&st, "POST", HOOK, Some(HOOK_TOKEN), partial.to_string()).await;
    assert_eq!(r.json["aborted"], serde_json::json!([]));
    assert_eq!(store.writes(), 1);
}

#[tokio::test]
async fn auth_is_required() {
    let store = fleet();
    let st = state(&store);
    let body = alert_for("shop", "web").to_string();
    for token in [None, Some("wrong"), Some(API_TOKEN.trim_end_matches('3'))] {
        let r = call(&st, "POST", HOOK, token, body.clone()).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{token:?}");
        assert_eq!(r.json["error"], "unauthorized");
    }
    assert_eq!(store.writes(), 0);
}

#[tokio::test]
async fn transient_store_failures_are_5xx_so_alertmanager_retries() {
    let store = fleet();
    let st = state(&store);
    store.fail_next(vec![StoreError::Unavailable("apiserver down".into())]);
    let body = alert_for("shop", "web").to_string();
    let r = call(&st, "POST", HOOK, Some(HOOK_TOKEN), body.clone()).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(store.writes(), 0);
    // Conflicts on write are retried inside the request...
    store.fail_next_commands(vec![StoreError::Conflict("x".into()); 2]);
    let r = call(&st, "POST", HOOK, Some(HOOK_TOKEN), body.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(store.writes(), 1);
    // ...and a conflict that persists is a 503 (Alertmanager retries), with nothing written.
    let other = alert_for("shop", "api").to_string();
    store.fail_next_commands(vec![StoreError::Conflict("x".into()); 5]);
    let r = call(&st, "POST", HOOK, Some(HOOK_TOKEN), other).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(annotation(&store, "shop", "api").is_none());
}

#[tokio::test]
async fn bad_bodies_are_4xx_and_change_nothing() {
    let store = fleet();
    let st = state(&store);
    let good = alert_for("shop", "web").to_string();
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    let deep_in_field = {
        let mut v = alert_for("shop", "web");
        v["extra"] = serde_json::Value::Null;
        v.to_string().replace(
            "\"extra\":null",
            &format!("\"extra\":{}1{}", "[".repeat(3000), "]".repeat(3000)),
        )
    };
    let mut wrong_type = alert_for("shop", "web");
    wrong_type["alerts"][0]["labels"] = serde_json::json!(["rollout", "web"]);
    let mut wrong_version = alert_for("shop", "web");
    wrong_version["version"] = "3".into();
    let mut label_number = alert_for("shop", "web");
    label_number["alerts"][0]["labels"]["rollout"] = 7.into();
    let mut bad_time = alert_for("shop", "web");
    bad_time["alerts"][0]["startsAt"] = "yesterday".into();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("truncated", good[..good.len() / 2].to_string().into_bytes()),
        (
            "garbage",
            "\u{0}\u{1}not json at all".to_string().into_bytes(),
        ),
        ("array", "[1,2,3]".to_string().into_bytes()),
        ("deep nesting", deep.into_bytes()),
        ("deep unknown field", deep_in_field.into_bytes()),
        ("labels wrong type", wrong_type.to_string().into_bytes()),
        ("label value number", label_number.to_string().into_bytes()),
        ("wrong version", wrong_version.to_string().into_bytes()),
        ("bad timestamp", bad_time.to_string().into_bytes()),
        (
            "missing alerts",
            r#"{"version":"4","status":"firing"}"#.to_string().into_bytes(),
        ),
        ("invalid utf8 string", b"{\"version\":\"4\xff\"}".to_vec()),
    ];
    for (what, body) in cases {
        let r = call(&st, "POST", HOOK, Some(HOOK_TOKEN), body).await;
        assert!(
            r.status.is_client_error(),
            "{what}: {} {}",
            r.status,
            r.text
        );
        assert!(r.json["error"].is_string(), "{what}: {}", r.text);
        assert!(r.json["message"].is_string(), "{what}: {}", r.text);
    }
    // Over the 1 MiB limit.
    let huge = format!(
        "{{\"version\":\"4\",\"pad\":\"{}\"}}",
        "x".repeat(2 * 1024 * 1024)
    );
    let r = call(&st, "POST", HOOK, Some(HOOK_TOKEN), huge).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.text);
    assert_eq!(store.writes(), 0);
    assert!(annotation(&store, "shop", "web").is_none());
}

#[tokio::test]
async fn alert_inside_the_post_promotion_window_reverts() {
    let store = MemoryStore::new();
    let mut promoted = rollout("shop", "web", Phase::Succeeded, Some("rev2"));
    promoted.spec.post_promotion_watch_seconds = 600;
    if let Some(s) = promoted.status.as_mut() {
        s.stable_revision = Some("rev2".into());
        s.promoted_at = Some(chrono::Utc::now() - chrono::Duration::seconds(30));
    }
    let mut long_ago = rollout("shop", "old", Phase::Succeeded, Some("rev9"));
    long_ago.spec.post_promotion_watch_seconds = 600;
    if let Some(s) = long_ago.status.as_mut() {
        s.promoted_at = Some(chrono::Utc::now() - chrono::Duration::hours(2));
    }
    store.insert(promoted);
    store.insert(long_ago);
    let st = state(&store);
    for name in ["web", "old"] {
        let r = call(
            &st,
            "POST",
            HOOK,
            Some(HOOK_TOKEN),
            alert_for("shop", name).to_string(),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK);
    }
    let cmd = Command::parse(&annotation(&store, "shop", "web").unwrap()).unwrap();
    assert_eq!(cmd.action, CommandAction::Abort);
    assert_eq!(
        cmd.revision.as_deref(),
        Some("rev2"),
        "targets the promoted revision"
    );
    assert!(
        annotation(&store, "shop", "old").is_none(),
        "window over: no revert"
    );
}

/// A store whose reads never finish (an API server that hangs).
struct HangingStore;

impl sluice_controller::store::RolloutStore for HangingStore {
    fn list(
        &self,
    ) -> futures::future::BoxFuture<'_, Result<Vec<sluice_crds::Rollout>, StoreError>> {
        Box::pin(futures::future::pending())
    }
    fn get<'a>(
        &'a self,
        _: &'a str,
        _: &'a str,
    ) -> futures::future::BoxFuture<'a, Result<sluice_crds::Rollout, StoreError>> {
        Box::pin(futures::future::pending())
    }
    fn command<'a>(
        &'a self,
        _: &'a str,
        _: &'a str,
        _: Command,
    ) -> futures::future::BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(futures::future::pending())
    }
}

#[tokio::test]
async fn a_hanging_store_gets_a_503_in_time() {
    let mut st = state(&MemoryStore::new());
    st.store = std::sync::Arc::new(HangingStore);
    st.store_deadline = std::time::Duration::from_millis(100);
    let r = call(
        &st,
        "POST",
        HOOK,
        Some(HOOK_TOKEN),
        alert_for("shop", "web").to_string(),
    )
    .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text);
    let r = call(&st, "GET", "/readyz", None, "").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
}
