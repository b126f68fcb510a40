//! HTTP API (axum): Alertmanager webhook, rollout status and commands, wait, events, /metrics,
//! health, and the dashboard's assets under `/ui/` (`crate::ui`).
//!
//! The API holds no state of its own: it reads rollouts from a [`RolloutStore`] and writes
//! commands onto them; the state machine acts on those.

pub mod access;
pub mod auth;
pub mod body;
pub mod error;
pub mod events;
pub mod kube_auth;
pub mod outcome;
pub mod rollouts;
pub mod view;
pub mod webhook;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;

pub use auth::{AuthConfig, AuthDecision, Authorizer, Principal, Secret, Verb};
pub use error::{ApiError, ErrorBody};
pub use outcome::{WaitFor, WaitOutcome, WaitResult, WaitTracker};
pub use view::{RolloutList, RolloutView};

use crate::store::RolloutStore;
use crate::telemetry::Telemetry;

/// Everything the handlers share. Cheap to clone.
#[derive(Clone)]
pub struct ApiState {
    pub store: Arc<dyn RolloutStore>,
    pub telemetry: Telemetry,
    pub auth: AuthConfig,
    /// How often the wait endpoint re-reads the rollout.
    pub poll_interval: Duration,
    /// Longest the webhook and /readyz wait for the store before answering 503.
    pub store_deadline: Duration,
    /// What `GET /api/v1/info` tells clients (mode, default namespace).
    pub info: ServerInfo,
}

/// `GET /api/v1/info`: which kind of server this is, so clients pick fitting defaults.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerInfo {
    /// `kubernetes` or `standalone`.
    pub mode: String,
    /// Namespace the CLI uses when `-n` is not given (`standalone` for `sluice run`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_namespace: Option<String>,
    pub version: String,
}

impl ServerInfo {
    pub fn kubernetes() -> Self {
        ServerInfo {
            mode: "kubernetes".to_string(),
            default_namespace: None,
            version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }

    pub fn standalone(namespace: &str) -> Self {
        ServerInfo {
            mode: "standalone".to_string(),
            default_namespace: Some(namespace.to_string()),
            version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }
}

impl ApiState {
    pub fn new(store: Arc<dyn RolloutStore>, telemetry: Telemetry, auth: AuthConfig) -> Self {
        ApiState {
            store,
            telemetry,
            auth,
            poll_interval: Duration::from_millis(250),
            store_deadline: webhook::WEBHOOK_DEADLINE,
            info: ServerInfo::kubernetes(),
        }
    }

    pub fn with_info(mut self, info: ServerInfo) -> Self {
        self.info = info;
        self
    }
}

/// All routes, with a 1 MiB body limit.
pub fn router(state: ApiState) -> Router {
    let rollout = "/api/v1/namespaces/{ns}/rollouts/{name}";
    Router::new()
        .route("/webhooks/alertmanager", post(webhook::alertmanager))
        .route("/api/v1/rollouts", get(rollouts::list))
        .route("/api/v1/rollouts/events", get(events::list_events))
        .route("/api/v1/access", get(access::access))
        .route(rollout, get(rollouts::get))
        .route(&format!("{rollout}/promote"), post(rollouts::promote))
        .route(&format!("{rollout}/abort"), post(rollouts::abort))
        .route(&format!("{rollout}/pause"), post(rollouts::pause))
        .route(&format!("{rollout}/resume"), post(rollouts::resume))
        .route(
            &format!("{rollout}/set-version"),
            post(rollouts::set_version),
        )
        .route("/api/v1/info", get(info))
        .route(&format!("{rollout}/wait"), get(rollouts::wait))
        .route(&format!("{rollout}/events"), get(events::events))
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .merge(crate::ui::routes())
        .fallback(error::not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(body::MAX_BODY_BYTES))
        .with_state(state)
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "method not allowed on this route",
    )
}

async fn metrics(State(state): State<ApiState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.telemetry.render(),
    )
}

async fn info(State(state): State<ApiState>) -> axum::Json<ServerInfo> {
    axum::Json(state.info.clone())
}

async fn healthz() -> &'static str {
    "ok"
}

/// Ready when the store answers in time.
async fn readyz(State(state): State<ApiState>) -> Result<&'static str, ApiError> {
    match tokio::time::timeout(state.store_deadline, state.store.list()).await {
        Ok(r) => r.map(|_| "ok").map_err(ApiError::from),
        Err(_) => Err(ApiError::unavailable(
            "rollout store did not answer in time",
        )),
    }
}

/// Serve the API on `addr` until `shutdown` resolves.
pub async fn serve(
    state: ApiState,
    addr: SocketAddr,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(%addr, "HTTP API listening");
    serve_on(state, listener, shutdown).await
}

/// Serve the API on an already bound listener (tests bind port 0 first).
pub async fn serve_on(
    state: ApiState,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}
