//! Client tests against a small axum server that mimics the Prometheus API.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::Router;

use super::*;
use crate::prometheus::QueryResult;

#[derive(Default)]
struct Seen {
    hits: AtomicUsize,
    last: std::sync::Mutex<Option<(HashMap<String, String>, HeaderMap)>>,
}

type Shared = Arc<Seen>;

// Answers depend on the query text so one server covers every case.
fn answer(
    seen: &Seen,
    params: HashMap<String, String>,
    headers: HeaderMap,
) -> (StatusCode, String) {
    let n = seen.hits.fetch_add(1, Ordering::SeqCst);
    let q = params.get("query").cloned().unwrap_or_default();
    *seen.last.lock().unwrap() = Some((params, headers));
    match q.as_str() {
        "flaky" if n == 0 => (StatusCode::BAD_GATEWAY, "Bad Gateway".into()),
        "down" => (StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable".into()),
        "bad(" => (
            StatusCode::BAD_REQUEST,
            r#"{"status":"error","errorType":"bad_data","error":"parse error: unclosed left parenthesis"}"#.into(),
        ),
        _ => (
            StatusCode::OK,
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1.0,"42"]}]}}"#.into(),
        ),
    }
}

async fn serve() -> (String, Shared) {
    let seen: Shared = Arc::default();
    let app =
        Router::new()
            .route(
                "/api/v1/query",
                get(
                    |State(s): State<Shared>,
                     h: HeaderMap,
                     Query(p): Query<HashMap<String, String>>| async move {
                        answer(&s, p, h)
                    },
                )
                .post(
                    |State(s): State<Shared>,
                     h: HeaderMap,
                     Form(p): Form<HashMap<String, String>>| async move {
                        answer(&s, p, h)
                    },
                ),
            )
            .route(
                "/api/v1/query_range",
                get(
                    |State(s): State<Shared>,
                     h: HeaderMap,
                     Query(p): Query<HashMap<String, String>>| async move {
                        answer(&s, p, h)
                    },
                ),
            )
            .route(
                "/slow/api/v1/query",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    "late"
                }),
            )
            .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), seen)
}

fn quick(addr: &str) -> PrometheusConfig {
    PrometheusConfig {
        retry_backoff: Duration::from_millis(10),
        ..PrometheusConfig::new(addr)
    }
}

#[tokio::test]
async fn get_with_time_auth_and_headers() {
    let (addr, seen) = serve().await;
    let cfg = PrometheusConfig {
        auth: Some(Auth::Bearer("s3cret".into())),
        headers: vec![("X-Scope-OrgID".into(), "team-a".into())],
        ..quick(&addr)
    };
    let c = PrometheusClient::new(cfg).unwrap();
    let at = DateTime::from_timestamp(1_700_000_000, 500_000_000).unwrap();
    let r = c.query("sum(up)", Some(at)).await.unwrap();
    assert_eq!(r.result, QueryResult::single_at(1.0, 42.0));
    let (params, headers) = seen.last.lock().unwrap().clone().unwrap();
    assert_eq!(params["query"], "sum(up)");
    assert_eq!(params["time"], "1700000000.500");
    assert_eq!(params["timeout"], "10");
    assert_eq!(headers["authorization"], "Bearer s3cret");
    assert_eq!(headers["x-scope-orgid"], "team-a");
    assert!(!format!("{:?}", c.config()).contains("s3cret"));
}

#[tokio::test]
async fn post_form_and_basic_auth() {
    let (addr, seen) = serve().await;
    let cfg = PrometheusConfig {
        method: QueryMethod::Post,
        auth: Some(Auth::Basic {
            username: "u".into(),
            password: "p".into(),
        }),
        ..quick(&addr)
    };
    let c = PrometheusClient::new(cfg).unwrap();
    c.query("rate(x[5m])", None).await.unwrap();
    let (params, headers) = seen.last.lock().unwrap().clone().unwrap();
    assert_eq!(params["query"], "rate(x[5m])");
    assert!(!params.contains_key("time"));
    assert_eq!(headers["authorization"], "Basic dTpw");
}

#[tokio::test]
async fn range_query_sends_start_end_step() {
    let (addr, seen) = serve().await;
    let c = PrometheusClient::new(quick(&addr)).unwrap();
    let end = DateTime::from_timestamp(1_700_000_060, 0).unwrap();
    let start = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
    c.query_range("up", start, end, Duration::from_secs(15))
        .await
        .unwrap();
    let (params, _) = seen.last.lock().unwrap().clone().unwrap();
    assert_eq!(
        (
            params["start"].as_str(),
            params["end"].as_str(),
            params["step"].as_str()
        ),
        ("1700000000.000", "1700000060.000", "15")
    );
    assert!(matches!(
        c.query_range("up", start, end, Duration::ZERO).await,
        Err(QueryError::Config(_))
    ));
}

#[tokio::test]
async fn retries_5xx_then_succeeds() {
    let (addr, seen) = serve().await;
    let c = PrometheusClient::new(quick(&addr)).unwrap();
    assert!(c.query("flaky", None).await.is_ok());
    assert_eq!(seen.hits.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn persistent_5xx_gives_http_error_after_retries() {
    let (addr, seen) = serve().await;
    let c = PrometheusClient::new(quick(&addr)).unwrap();
    let e = c.query("down", None).await.unwrap_err();
    assert!(matches!(e, QueryError::Http { status: 503, .. }), "{e:?}");
    assert_eq!(seen.hits.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn bad_data_is_not_retried() {
    let (addr, seen) = serve().await;
    let c = PrometheusClient::new(quick(&addr)).unwrap();
    let e = c.query("bad(", None).await.unwrap_err();
    assert!(
        matches!(&e, QueryError::Prometheus { error_type, http_status: 400, .. } if error_type == "bad_data"),
        "{e:?}"
    );
    assert_eq!(seen.hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn connection_refused_and_timeout_are_typed() {
    // A port that was free a moment ago: bind, read the port, drop the listener.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let c = PrometheusClient::new(PrometheusConfig {
        retries: 1,
        ..quick(&format!("http://127.0.0.1:{port}"))
    })
    .unwrap();
    match c.query("sum(rate(secret_query_text[1m]))", None).await {
        Err(QueryError::Connect(msg)) => {
            // For people: causes as plain text, no `Some(..)`, no URL-encoded query.
            assert!(!msg.contains("Some("), "{msg}");
            assert!(!msg.contains("secret_query_text"), "{msg}");
            assert!(msg.to_lowercase().contains("connect"), "{msg}");
        }
        other => panic!("expected a connect error, got {other:?}"),
    }

    let (addr, _) = serve().await;
    let cfg = PrometheusConfig {
        timeout: Duration::from_millis(200),
        retries: 0,
        ..quick(&format!("{addr}/slow"))
    };
    let c = PrometheusClient::new(cfg).unwrap();
    assert!(matches!(
        c.query("up", None).await,
        Err(QueryError::Timeout(_))
    ));
}

#[test]
fn bad_config_is_rejected() {
    assert!(matches!(
        PrometheusClient::new(PrometheusConfig::new("not a url")),
        Err(QueryError::Config(_))
    ));
    assert!(matches!(
        PrometheusClient::new(PrometheusConfig::new("ftp://x")),
        Err(QueryError::Config(_))
    ));
    assert!(PrometheusClient::new(PrometheusConfig::new("https://x")).is_ok());
    let cfg = PrometheusConfig {
        ca_pem: Some(
            b"-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n".to_vec(),
        ),
        ..PrometheusConfig::new("https://x")
    };
    assert!(matches!(
        PrometheusClient::new(cfg),
        Err(QueryError::Config(_))
    ));
    let cfg = PrometheusConfig {
        headers: vec![("bad header".into(), "v".into())],
        ..PrometheusConfig::new("http://x")
    };
    assert!(matches!(
        PrometheusClient::new(cfg),
        Err(QueryError::Config(_))
    ));
}

#[tokio::test]
async fn https_to_a_plain_http_server_is_a_typed_error() {
    let (addr, _) = serve().await;
    let https = addr.replacen("http://", "https://", 1);
    let c = PrometheusClient::new(PrometheusConfig {
        retries: 0,
        ..quick(&https)
    })
    .unwrap();
    let err = c.query("up", None).await.unwrap_err();
    assert!(
        matches!(err, QueryError::Connect(_) | QueryError::Http { .. }),
        "unexpected {err:?}"
    );
}
