//! Alertmanager webhook (payload version "4"): a firing alert that names a rollout (labels
//! `rollout` + `namespace`, or a matcher in the Rollout's `spec.alerts`) aborts it if it is in progress.
//! Command ids derive from fingerprint + startsAt + rollout, so Alertmanager's re-sends are idempotent.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sluice_crds::{Command, CommandAction, Rollout};

use super::body::StrictJson;
use super::error::ApiError;
use super::view::RolloutView;
use super::ApiState;
use crate::store::{command_already_sent, StoreError};

/// The payload Alertmanager posts. Unknown top-level fields are ignored (newer Alertmanagers add
/// some); the fields used are typed strictly.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WebhookPayload {
    pub version: String,
    pub status: String,
    #[serde(default)]
    pub receiver: String,
    #[serde(default)]
    pub group_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub common_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub group_key: String,
    pub alerts: Vec<Alert>,
}

/// One alert of the payload.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    /// `firing` or `resolved`.
    pub status: String,
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    #[serde(default)]
    pub starts_at: Option<DateTime<Utc>>,
    /// The zero time `0001-01-01T00:00:00Z` means unset.
    #[serde(default)]
    pub ends_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub fingerprint: String,
}

impl Alert {
    pub fn is_firing(&self, now: DateTime<Utc>) -> bool {
        self.status == "firing" && ends_at(self).is_none_or(|e| e > now)
    }

    pub fn name(&self) -> Option<&str> {
        self.labels.get("alertname").map(String::as_str)
    }
}

/// `endsAt` unless it is Go's zero time.
pub fn ends_at(a: &Alert) -> Option<DateTime<Utc>> {
    a.ends_at.filter(|t| t.timestamp() > 0)
}

/// One abort to write.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedAbort {
    pub namespace: String,
    pub name: String,
    pub command: Command,
}

/// Summary returned to Alertmanager (and useful in logs).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct WebhookResponse {
    /// `ns/name` of rollouts that got an abort command now.
    pub aborted: Vec<String>,
    /// `ns/name` of targeted rollouts whose abort was already written earlier (re-send).
    pub already_aborted: Vec<String>,
    /// Firing alerts that matched no rollout in progress.
    pub ignored_alerts: usize,
}

/// FNV-1a 64: stable across Rust versions (unlike `DefaultHasher`), enough to key re-sends.
fn fnv1a(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.bytes().chain(std::iter::once(0xff)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// Deterministic command id for `alert` aimed at `namespace/name`.
pub fn command_id(alert: &Alert, namespace: &str, name: &str) -> String {
    let fingerprint = if alert.fingerprint.is_empty() {
        alert
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    } else {
        alert.fingerprint.clone()
    };
    let starts = alert.starts_at.map(|t| t.to_rfc3339()).unwrap_or_default();
    format!(
        "am-{:016x}",
        fnv1a(&[&fingerprint, &starts, namespace, name])
    )
}

/// Whether `alert` targets `rollout` (labels `rollout` + `namespace`, or a declared matcher).
pub fn targets(alert: &Alert, rollout: &Rollout) -> bool {
    let ns = rollout.metadata.namespace.as_deref().unwrap_or("default");
    let name = rollout.metadata.name.as_deref().unwrap_or_default();
    let by_labels = alert.labels.get("rollout").map(String::as_str) == Some(name)
        && alert.labels.get("namespace").map(String::as_str) == Some(ns);
    by_labels || rollout.spec.alerts.iter().any(|m| m.matches(&alert.labels))
}

/// Whether the state machine would act on an abort now: `Progressing` or `Paused`, or inside the
/// post-promotion watch window (it ignores commands while `Promoting` or `RollingBack`).
pub fn abortable(view: &RolloutView, now: DateTime<Utc>) -> bool {
    matches!(
        view.phase,
        sluice_crds::Phase::Progressing | sluice_crds::Phase::Paused
    ) || view.in_post_promotion_watch(now)
}

/// The aborts a payload asks for: at most one per rollout, none for resolved alerts or idle rollouts.
pub fn plan_aborts(
    payload: &WebhookPayload,
    rollouts: &[Rollout],
    now: DateTime<Utc>,
) -> (Vec<PlannedAbort>, usize) {
    let mut planned: Vec<PlannedAbort> = Vec::new();
    let mut ignored = 0;
    for alert in payload.alerts.iter().filter(|a| a.is_firing(now)) {
        let mut matched = false;
        for r in rollouts.iter().filter(|r| targets(alert, r)) {
            let view = RolloutView::from_rollout(r);
            if !abortable(&view, now) {
                continue;
            }
            matched = true;
            if planned
                .iter()
                .any(|p| p.namespace == view.namespace && p.name == view.name)
            {
                continue;
            }
            let alert_name = alert.name().map(str::to_string);
            let reason = alert
                .annotations
                .get("summary")
                .or_else(|| alert.annotations.get("description"))
                .cloned()
                .unwrap_or_else(|| {
                    format!(
                        "alert {} firing",
                        alert_name.as_deref().unwrap_or("(unnamed)")
                    )
                });
            let revision = if view.in_post_promotion_watch(now) {
                view.stable_revision.clone()
            } else {
                view.canary_revision.clone()
            };
            planned.push(PlannedAbort {
                command: Command {
                    id: command_id(alert, &view.namespace, &view.name),
                    action: CommandAction::Abort,
                    by: Some("alertmanager".to_string()),
                    reason: Some(reason),
                    alert_name,
                    fingerprint: (!alert.fingerprint.is_empty()).then(|| alert.fingerprint.clone()),
                    revision,
                    at: now,
                },
                namespace: view.namespace,
                name: view.name,
            });
        }
        if !matched {
            ignored += 1;
        }
    }
    (planned, ignored)
}

/// Attempts per command write when the store reports a conflict.
const WRITE_ATTEMPTS: u32 = 3;

/// Default for `ApiState::store_deadline`: answer within this even if the store hangs (Alertmanager's own timeout is longer): a 503
/// makes it retry instead of piling up requests.
pub const WEBHOOK_DEADLINE: std::time::Duration = std::time::Duration::from_secs(8);

/// `POST /webhooks/alertmanager`.
pub async fn alertmanager(
    State(state): State<ApiState>,
    headers: HeaderMap,
    body: Result<StrictJson<WebhookPayload>, ApiError>,
) -> Result<Json<WebhookResponse>, ApiError> {
    let tele = state.telemetry.clone();
    let deadline = state.store_deadline;
    let result = match tokio::time::timeout(deadline, handle(&state, &headers, body)).await {
        Ok(r) => r,
        Err(_) => Err(ApiError::unavailable(format!(
            "rollout store did not answer within {:?}",
            deadline
        ))),
    };
    let outcome = match &result {
        Ok(r) if !r.aborted.is_empty() => "aborted",
        Ok(_) => "ignored",
        Err(e) if e.status == 401 => "unauthorized",
        Err(e) if e.status.is_client_error() => "bad_request",
        Err(_) => "error",
    };
    tele.record_webhook(outcome);
    result.map(Json)
}

async fn handle(
    state: &ApiState,
    headers: &HeaderMap,
    body: Result<StrictJson<WebhookPayload>, ApiError>,
) -> Result<WebhookResponse, ApiError> {
    // Authenticate before looking at the body.
    state.auth.check_webhook(headers)?;
    let StrictJson(payload) = body?;
    if payload.version != "4" {
        return Err(ApiError::bad_request(format!(
            "unsupported webhook payload version {:?}; expected \"4\"",
            payload.version
        )));
    }
    let now = Utc::now();
    if !payload.alerts.iter().any(|a| a.is_firing(now)) {
        return Ok(WebhookResponse::default());
    }
    let rollouts = state.store.list().await.map_err(transient)?;
    let (planned, ignored) = plan_aborts(&payload, &rollouts, now);
    let mut resp = WebhookResponse {
        ignored_alerts: ignored,
        ..Default::default()
    };
    for p in planned {
        let key = format!("{}/{}", p.namespace, p.name);
        let current = rollouts.iter().find(|r| {
            r.metadata.name.as_deref() == Some(p.name.as_str())
                && r.metadata.namespace.as_deref().unwrap_or("default") == p.namespace
        });
        if current.is_some_and(|r| command_already_sent(r, &p.command.id)) {
            resp.already_aborted.push(key);
            continue;
        }
        match write_with_retry(state, &p).await {
            Ok(()) => {
                let alert = p.command.alert_name.as_deref().unwrap_or("-");
                tracing::info!(rollout = %key, alert, id = %p.command.id, "alert aborts rollout");
                state.telemetry.record_command("abort", "alertmanager");
                resp.aborted.push(key);
            }
            // Deleted since listed: nothing left to abort.
            Err(StoreError::NotFound { .. }) => {}
            Err(e) => return Err(transient(e)),
        }
    }
    Ok(resp)
}

async fn write_with_retry(state: &ApiState, p: &PlannedAbort) -> Result<(), StoreError> {
    let mut attempt = 0;
    loop {
        match state
            .store
            .command(&p.namespace, &p.name, p.command.clone())
            .await
        {
            Err(StoreError::Conflict(_)) if attempt + 1 < WRITE_ATTEMPTS => attempt += 1,
            other => return other,
        }
    }
}

/// Store failures in the webhook are 5xx so that Alertmanager retries.
fn transient(e: StoreError) -> ApiError {
    let msg = e.to_string();
    match e {
        StoreError::Forbidden(_) => ApiError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "store_forbidden",
            msg,
        ),
        _ => ApiError::unavailable(msg),
    }
}
