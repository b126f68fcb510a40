//! Rollout routes: list, get, commands (promote/abort/pause/resume) and the long-poll wait.

use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use sluice_crds::{parse_duration, Command, CommandAction};

use super::auth::Verb;
use super::body::OptionalJson;
use super::error::ApiError;
use super::outcome::{check_command, WaitFor, WaitTracker};
use super::view::{RolloutList, RolloutView};
use super::ApiState;
use crate::store::StoreError;

/// Longest wait one request may ask for.
pub const MAX_WAIT: Duration = Duration::from_secs(15 * 60);

/// `GET /api/v1/rollouts`.
pub async fn list(
    State(state): State<ApiState>,
    headers: HeaderMap,
) -> Result<Json<RolloutList>, ApiError> {
    state
        .auth
        .check_api(&headers, Verb::Read, None, None)
        .await?;
    let rollouts = state.store.list().await?;
    let mut items: Vec<RolloutView> =
        futures::future::join_all(rollouts.iter().map(|r| view_with_desired(&state, r))).await;
    items.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    Ok(Json(RolloutList { items }))
}

/// `GET /api/v1/namespaces/{ns}/rollouts/{name}`.
pub async fn get(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path((ns, name)): Path<(String, String)>,
) -> Result<Json<RolloutView>, ApiError> {
    state
        .auth
        .check_api(&headers, Verb::Read, Some(&ns), Some(&name))
        .await?;
    let r = state.store.get(&ns, &name).await?;
    Ok(Json(view_with_desired(&state, &r).await))
}

/// The view with the revision the target has now; a store that cannot read it leaves it out
/// (a wait then says so instead of guessing).
pub async fn view_with_desired(state: &ApiState, r: &sluice_crds::Rollout) -> RolloutView {
    let desired = match state.store.desired_revision(r).await {
        Ok(d) => d,
        Err(e) => {
            tracing::debug!(error = %e, "cannot read the target's revision");
            None
        }
    };
    RolloutView::from_rollout(r).with_desired(desired)
}

/// Optional body of a command.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CommandBody {
    #[serde(default)]
    pub reason: Option<String>,
    /// Act only if this is the revision in progress (409 otherwise).
    #[serde(default)]
    pub revision: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromoteQuery {
    #[serde(default)]
    pub full: bool,
}

/// Answer of a command request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CommandResponse {
    pub namespace: String,
    pub name: String,
    pub command: Command,
}

/// Longest accepted `reason`.
const MAX_REASON: usize = 1024;

fn new_command_id() -> String {
    format!("api-{:016x}", rand::random::<u64>())
}

async fn send_command(
    state: &ApiState,
    headers: &HeaderMap,
    ns: &str,
    name: &str,
    action: CommandAction,
    body: Option<CommandBody>,
) -> Result<(StatusCode, Json<CommandResponse>), ApiError> {
    let principal = state
        .auth
        .check_api(headers, Verb::Command, Some(ns), Some(name))
        .await?;
    let body = body.unwrap_or_default();
    if body.reason.as_ref().is_some_and(|r| r.len() > MAX_REASON) {
        return Err(ApiError::bad_request(format!(
            "reason longer than {MAX_REASON} bytes"
        )));
    }
    let now = Utc::now();
    let command = Command {
        id: new_command_id(),
        action,
        by: Some(principal.name),
        reason: body.reason,
        alert_name: None,
        fingerprint: None,
        revision: body.revision.clone(),
        at: now,
    };
    let mut attempt = 0;
    loop {
        let view = RolloutView::from_rollout(&state.store.get(ns, name).await?);
        check_command(&view, action, body.revision.as_deref(), now)
            .map_err(|(kind, msg)| ApiError::conflict(kind, msg))?;
        match state.store.command(ns, name, command.clone()).await {
            Ok(()) => break,
            Err(StoreError::Conflict(_)) if attempt < 2 => attempt += 1,
            Err(e) => return Err(e.into()),
        }
    }
    state.telemetry.record_command(action.as_str(), "api");
    let by = command.by.as_deref().unwrap_or("unknown");
    tracing::info!(namespace = %ns, %name, action = action.as_str(), by, "command written");
    Ok((
        StatusCode::ACCEPTED,
        Json(CommandResponse {
            namespace: ns.to_string(),
            name: name.to_string(),
            command,
        }),
    ))
}

type CommandResult = Result<(StatusCode, Json<CommandResponse>), ApiError>;

/// `POST .../promote[?full=true]`.
pub async fn promote(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path((ns, name)): Path<(String, String)>,
    query: Result<Query<PromoteQuery>, axum::extract::rejection::QueryRejection>,
    OptionalJson(body): OptionalJson<CommandBody>,
) -> CommandResult {
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let action = if q.full {
        CommandAction::PromoteFull
    } else {
        CommandAction::Promote
    };
    send_command(&state, &headers, &ns, &name, action, body).await
}

/// `POST .../abort`.
pub async fn abort(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path((ns, name)): Path<(String, String)>,
    OptionalJson(body): OptionalJson<CommandBody>,
) -> CommandResult {
    send_command(&state, &headers, &ns, &name, CommandAction::Abort, body).await
}

/// `POST .../pause`.
pub async fn pause(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path((ns, name)): Path<(String, String)>,
    OptionalJson(body): OptionalJson<CommandBody>,
) -> CommandResult {
    send_command(&state, &headers, &ns, &name, CommandAction::Pause, body).await
}

/// `POST .../resume`.
pub async fn resume(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path((ns, name)): Path<(String, String)>,
    OptionalJson(body): OptionalJson<CommandBody>,
) -> CommandResult {
    send_command(&state, &headers, &ns, &name, CommandAction::Resume, body).await
}

/// Query of the wait endpoint.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaitQuery {
    #[serde(default, rename = "for")]
    pub for_: Option<String>,
    #[serde(default)]
    pub timeout: Option<String>,
    #[serde(default)]
    pub revision: Option<String>,
    /// How long the rollout may report `Blocked` before the wait ends `blocked` (default 30s).
    #[serde(default, rename = "blockedAfter")]
    pub blocked_after: Option<String>,
}

/// `blockedAfter` of a wait query (default [`super::outcome::DEFAULT_BLOCKED_GRACE`]).
pub fn parse_blocked_after(q: &WaitQuery) -> Result<Duration, ApiError> {
    match q.blocked_after.as_deref() {
        None => Ok(super::outcome::DEFAULT_BLOCKED_GRACE),
        Some(s) => {
            parse_duration(s).map_err(|e| ApiError::bad_request(format!("blockedAfter: {e}")))
        }
    }
}

/// Parsed wait parameters.
pub fn parse_wait_query(q: &WaitQuery) -> Result<(WaitFor, Duration, Option<String>), ApiError> {
    let want = match q.for_.as_deref() {
        None => WaitFor::Promoted,
        Some(s) => s.parse::<WaitFor>().map_err(ApiError::bad_request)?,
    };
    let timeout = match q.timeout.as_deref() {
        None => Duration::from_secs(30),
        Some(s) => parse_duration(s).map_err(|e| ApiError::bad_request(format!("timeout: {e}")))?,
    };
    if timeout > MAX_WAIT {
        return Err(ApiError::bad_request(format!(
            "timeout longer than {}s; wait again instead",
            MAX_WAIT.as_secs()
        )));
    }
    Ok((want, timeout, q.revision.clone().filter(|r| !r.is_empty())))
}

/// `GET .../wait?for=promoted|completed&timeout=30s&revision=REV`: long-polls the store.
pub async fn wait(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path((ns, name)): Path<(String, String)>,
    query: Result<Query<WaitQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    state
        .auth
        .check_api(&headers, Verb::Read, Some(&ns), Some(&name))
        .await?;
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let (want, timeout, revision) = parse_wait_query(&q)?;
    let grace = parse_blocked_after(&q)?;
    let deadline = tokio::time::Instant::now() + timeout;
    let mut tracker = WaitTracker::new(want, revision).with_blocked_grace(grace);
    let mut last: Option<RolloutView>;
    loop {
        // Unknown rollout: 404 at once; transient store errors are retried until the deadline.
        match state.store.get(&ns, &name).await {
            Ok(r) => {
                let view = view_with_desired(&state, &r).await;
                if let Some(result) = tracker.observe(&view, Utc::now()) {
                    return Ok(wait_response(result));
                }
                last = Some(view);
            }
            Err(e @ StoreError::NotFound { .. }) | Err(e @ StoreError::Forbidden(_)) => {
                return Err(e.into())
            }
            Err(e) => {
                tracing::debug!(error = %e, "wait: store read failed; retrying");
                last = None;
            }
        }
        if tokio::time::Instant::now() + state.poll_interval > deadline {
            return Ok(wait_response(tracker.timeout(last.as_ref())));
        }
        tokio::time::sleep(state.poll_interval).await;
    }
}

fn wait_response(result: super::outcome::WaitResult) -> Response {
    let status = StatusCode::from_u16(result.outcome.http_status())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(result)).into_response()
}

/// Body of `POST .../set-version`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SetVersionBody {
    pub version: String,
    /// New canary `host:port` (standalone); default: the file's `canary.address`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Answer of `POST .../set-version`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SetVersionResponse {
    pub namespace: String,
    pub name: String,
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

/// `POST .../set-version` `{"version": "v2", "address": "host:port"}`: standalone only; the
/// state machine sees the new target revision at the next tick and starts a rollout of it.
pub async fn set_version(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path((ns, name)): Path<(String, String)>,
    body: Result<Json<SetVersionBody>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<SetVersionResponse>), ApiError> {
    let principal = state
        .auth
        .check_api(&headers, Verb::Command, Some(&ns), Some(&name))
        .await?;
    let Json(body) = body.map_err(|e| ApiError::bad_request(e.body_text()))?;
    if body.reason.as_ref().is_some_and(|r| r.len() > MAX_REASON) {
        return Err(ApiError::bad_request(format!(
            "reason longer than {MAX_REASON} bytes"
        )));
    }
    let change = crate::store::VersionChange {
        version: body.version.clone(),
        address: body.address.clone(),
        by: Some(principal.name.clone()),
        reason: body.reason,
    };
    state.store.set_version(&ns, &name, change).await?;
    state.telemetry.record_command("set-version", "api");
    tracing::info!(namespace = %ns, %name, version = %body.version, by = %principal.name, "version set");
    Ok((
        StatusCode::ACCEPTED,
        Json(SetVersionResponse {
            namespace: ns,
            name,
            version: body.version,
            address: body.address,
        }),
    ))
}
