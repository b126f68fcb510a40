//! `GET /api/v1/access`: what the caller's token may do, so the dashboard shows command buttons
//! only to those who may use them. The answer is advisory: every command is checked again.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::auth::Verb;
use super::error::ApiError;
use super::ApiState;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessQuery {
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
}

/// The caller and whether it may send commands (to the named rollout, if one is named).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Access {
    pub user: String,
    pub can_command: bool,
}

/// `GET /api/v1/access[?namespace=NS&name=NAME]`: 401 for a missing or wrong token, else who
/// the caller is and whether a command would be allowed.
pub async fn access(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Query(q): Query<AccessQuery>,
) -> Result<Json<Access>, ApiError> {
    let ns = q.namespace.as_deref();
    let name = q.name.as_deref();
    let reader = state.auth.check_api(&headers, Verb::Read, ns, name).await?;
    let can_command = match state
        .auth
        .check_api(&headers, Verb::Command, ns, name)
        .await
    {
        Ok(_) => true,
        Err(e) if e.status == StatusCode::FORBIDDEN => false,
        Err(e) => return Err(e),
    };
    Ok(Json(Access {
        user: reader.name,
        can_command,
    }))
}
