//! The dashboard's routes over the router with an in-memory store: `/api/v1/access` for the
//! API token, the read-only token and a wrong one; the embedded assets and their headers.

mod api_support;

use api_support::*;
use axum::http::StatusCode;
use sluice_controller::api::Secret;
use sluice_controller::store::MemoryStore;
use sluice_crds::Phase;

#[tokio::test]
async fn access_tells_who_may_command() {
    let s = MemoryStore::new();
    s.insert(rollout("shop", "web", Phase::Progressing, Some("rev2")));
    let mut st = state(&s);
    st.auth.read_token = Some(Secret::new("viewer"));
    let q = "/api/v1/access?namespace=shop&name=web";
    let r = call(&st, "GET", q, Some(API_TOKEN), "").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["canCommand"], true, "{}", r.text);
    let r = call(&st, "GET", q, Some("viewer"), "").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["canCommand"], false, "{}", r.text);
    assert_eq!(r.json["user"], "read-token");
    let r = call(&st, "GET", q, Some("wrong"), "").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
    // The read-only token really cannot command.
    let r = call(
        &st,
        "POST",
        "/api/v1/namespaces/shop/rollouts/web/abort",
        Some("viewer"),
        "",
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    let r = call(&st, "GET", "/api/v1/access?bogus=1", Some(API_TOKEN), "").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
}

#[tokio::test]
async fn ui_assets_are_served_without_a_token() {
    let s = MemoryStore::new();
    let st = state(&s);
    let r = call(&st, "GET", "/ui/", None, "").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.text.contains("<title>Sluice rollouts</title>"),
        "{}",
        r.text
    );
    let r = call(&st, "GET", "/ui/app.js", None, "").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.text.contains("sessionStorage"));
    let r = call(&st, "GET", "/ui/nope.js", None, "").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = call(&st, "GET", "/", None, "").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
}
