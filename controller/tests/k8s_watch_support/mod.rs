//! A watch for kube-fake-client, so the real `Controller` wiring can run against it.
//!
//! kube-fake-client answers LIST, GET and writes but not `?watch=true`. [`with_watch`] puts a
//! tower service in front of a fake client: ordinary requests pass through; a watch request is
//! answered with a stream of watch events (`{"type": "ADDED"|"MODIFIED"|"DELETED", "object": ..}`
//! per line, the shape of the API server's watch responses) made by listing the same
//! collection every few milliseconds and comparing resourceVersions. Every object present at the
//! start of a watch is sent as ADDED (a real API server sends only what changed after the
//! requested resourceVersion; kube-runtime treats a repeated object as an update).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::StreamExt;
use http::{Request, Response, Uri};
use http_body::Frame;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, StreamBody};
use kube::client::Body;
use kube::Client;
use serde_json::Value;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type WatchBody = UnsyncBoxBody<Bytes, BoxError>;

/// How often a watch lists its collection.
pub const POLL: Duration = Duration::from_millis(250);

/// A client whose watches work: `inner` (a kube-fake-client) plus polling watches.
pub fn with_watch(inner: Client) -> Client {
    Client::new(WatchService { inner }, "default")
}

#[derive(Clone)]
struct WatchService {
    inner: Client,
}

fn is_watch(uri: &Uri) -> bool {
    uri.query()
        .is_some_and(|q| q.split('&').any(|kv| kv == "watch=true" || kv == "watch=1"))
}

/// The LIST of the same collection and selector as a watch request.
fn list_uri(uri: &Uri) -> String {
    let keep: Vec<&str> = uri
        .query()
        .unwrap_or_default()
        .split('&')
        .filter(|kv| kv.starts_with("labelSelector=") || kv.starts_with("fieldSelector="))
        .collect();
    if keep.is_empty() {
        uri.path().to_string()
    } else {
        format!("{}?{}", uri.path(), keep.join("&"))
    }
}

fn key(obj: &Value) -> String {
    let m = &obj["metadata"];
    format!(
        "{}/{}",
        m["namespace"].as_str().unwrap_or_default(),
        m["name"].as_str().unwrap_or_default()
    )
}

fn line(kind: &str, object: &Value) -> Bytes {
    let mut s = serde_json::json!({"type": kind, "object": object}).to_string();
    s.push('\n');
    Bytes::from(s)
}

/// Events that turn `known` into `items` (and update `known`).
fn diff(known: &mut BTreeMap<String, Value>, items: Vec<Value>) -> Vec<Bytes> {
    let mut out = Vec::new();
    let mut seen = BTreeMap::new();
    for obj in items {
        let k = key(&obj);
        match known.get(&k) {
            None => out.push(line("ADDED", &obj)),
            Some(old)
                if old["metadata"]["resourceVersion"] != obj["metadata"]["resourceVersion"] =>
            {
                out.push(line("MODIFIED", &obj))
            }
            Some(_) => {}
        }
        seen.insert(k, obj);
    }
    for (k, old) in known.iter() {
        if !seen.contains_key(k) {
            out.push(line("DELETED", old));
        }
    }
    *known = seen;
    out
}

async fn list(inner: &Client, uri: &str) -> Option<Vec<Value>> {
    let req = Request::get(uri).body(Vec::new()).ok()?;
    let list: Value = inner.request(req).await.ok()?;
    let kind = list["kind"]
        .as_str()
        .unwrap_or_default()
        .trim_end_matches("List")
        .to_string();
    let api_version = list["apiVersion"].as_str().unwrap_or_default().to_string();
    let items = list["items"].as_array().cloned().unwrap_or_default();
    Some(
        items
            .into_iter()
            .map(|mut o| {
                // List items may omit apiVersion/kind; watch events carry them.
                if o.get("kind").is_none() {
                    o["kind"] = Value::from(kind.clone());
                }
                if o.get("apiVersion").is_none() {
                    o["apiVersion"] = Value::from(api_version.clone());
                }
                o
            })
            .collect(),
    )
}

fn watch_body(inner: Client, uri: String) -> WatchBody {
    let state = (inner, uri, BTreeMap::new(), true);
    let stream = futures::stream::unfold(state, |(inner, uri, mut known, first)| async move {
        if !first {
            tokio::time::sleep(POLL).await;
        }
        // The collection went away (or the fake refused): end the watch; the watcher re-lists.
        let items = list(&inner, &uri).await?;
        let events = diff(&mut known, items);
        Some((events, (inner, uri, known, false)))
    })
    .flat_map(|events| futures::stream::iter(events.into_iter().map(|b| Ok(Frame::data(b)))));
    StreamBody::new(stream).boxed_unsync()
}

impl tower::Service<Request<Body>> for WatchService {
    type Response = Response<WatchBody>;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let inner = self.inner.clone();
        Box::pin(async move {
            if is_watch(req.uri()) {
                let uri = list_uri(req.uri());
                return Ok(Response::builder()
                    .status(200)
                    .header("content-type", "application/json")
                    .body(watch_body(inner, uri))?);
            }
            let resp = inner.send(req).await?;
            Ok(resp.map(|b| b.map_err(|e| Box::new(e) as BoxError).boxed_unsync()))
        })
    }
}
