//! Server-sent events (the store is polled; the API keeps no state):
//! `GET .../rollouts/{name}/events` sends one `rollout` event with the `RolloutView` JSON at
//! connect and on every change; `GET /api/v1/rollouts/events` sends one `rollouts` event with
//! the `RolloutList` the same way (the dashboard's list page).

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::stream::{self, Stream};

use super::auth::Verb;
use super::error::ApiError;
use super::rollouts::view_with_desired;
use super::view::{RolloutList, RolloutView};
use super::ApiState;
use crate::store::StoreError;

struct Cursor {
    state: ApiState,
    ns: String,
    name: String,
    last: Option<String>,
    first: bool,
    done: bool,
}

struct ListCursor {
    state: ApiState,
    last: Option<String>,
    first: bool,
}

/// The next list event: the whole list whenever any rollout in it changed.
async fn next_list_event(mut c: ListCursor) -> Option<(Result<Event, Infallible>, ListCursor)> {
    loop {
        if !c.first {
            tokio::time::sleep(c.state.poll_interval).await;
        }
        c.first = false;
        match c.state.store.list().await {
            Ok(rollouts) => {
                let mut items: Vec<RolloutView> = futures::future::join_all(
                    rollouts.iter().map(|r| view_with_desired(&c.state, r)),
                )
                .await;
                items.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
                let json = serde_json::to_string(&RolloutList { items }).unwrap_or_default();
                if c.last.as_deref() != Some(json.as_str()) {
                    c.last = Some(json.clone());
                    return Some((Ok(Event::default().event("rollouts").data(json)), c));
                }
            }
            Err(e) => tracing::debug!(error = %e, "list events: store read failed; retrying"),
        }
    }
}

/// `GET /api/v1/rollouts/events`.
pub async fn list_events(
    State(state): State<ApiState>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    state
        .auth
        .check_api(&headers, Verb::Read, None, None)
        .await?;
    state.store.list().await?;
    let cursor = ListCursor {
        state,
        last: None,
        first: true,
    };
    Ok(Sse::new(stream::unfold(cursor, next_list_event))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// The next event: the view when it changed, an `error` event (and the end) if the rollout is gone.
async fn next_event(mut c: Cursor) -> Option<(Result<Event, Infallible>, Cursor)> {
    if c.done {
        return None;
    }
    loop {
        if !c.first {
            tokio::time::sleep(c.state.poll_interval).await;
        }
        c.first = false;
        match c.state.store.get(&c.ns, &c.name).await {
            Ok(r) => {
                let json =
                    serde_json::to_string(&RolloutView::from_rollout(&r)).unwrap_or_default();
                if c.last.as_deref() != Some(json.as_str()) {
                    c.last = Some(json.clone());
                    return Some((Ok(Event::default().event("rollout").data(json)), c));
                }
            }
            Err(e @ StoreError::NotFound { .. }) => {
                c.done = true;
                let body = serde_json::json!({"error": "not_found", "message": e.to_string()});
                return Some((
                    Ok(Event::default().event("error").data(body.to_string())),
                    c,
                ));
            }
            Err(e) => tracing::debug!(error = %e, "events: store read failed; retrying"),
        }
    }
}

/// `GET /api/v1/namespaces/{ns}/rollouts/{name}/events`.
pub async fn events(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path((ns, name)): Path<(String, String)>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    state
        .auth
        .check_api(&headers, Verb::Read, Some(&ns), Some(&name))
        .await?;
    // Unknown rollout: a plain 404 rather than a stream.
    state.store.get(&ns, &name).await?;
    let cursor = Cursor {
        state,
        ns,
        name,
        last: None,
        first: true,
        done: false,
    };
    Ok(Sse::new(stream::unfold(cursor, next_event))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
