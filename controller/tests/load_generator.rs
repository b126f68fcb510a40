//! The built-in canary load against a local server: what is sent (paths in turn, headers, only
//! to the plan's address), what is counted (codes, "error" for no answer, skipped requests),
//! the concurrency bound, and that stopping it stops every request.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::routing::get;
use axum::Router;
use chrono::Utc;
use sluice_controller::load::{LoadManager, LoadPlan};
use sluice_controller::telemetry::Telemetry;

#[derive(Default)]
struct Seen {
    paths: Mutex<Vec<String>>,
    headers: Mutex<Vec<String>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

async fn handle(State(seen): State<Arc<Seen>>, uri: Uri, headers: HeaderMap) -> StatusCode {
    let now = seen.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    seen.max_in_flight.fetch_max(now, Ordering::SeqCst);
    seen.paths.lock().unwrap().push(uri.path().to_string());
    if let Some(v) = headers.get("x-load").and_then(|v| v.to_str().ok()) {
        seen.headers.lock().unwrap().push(v.to_string());
    }
    let code = match uri.path() {
        "/fail" => StatusCode::INTERNAL_SERVER_ERROR,
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            StatusCode::OK
        }
        _ => StatusCode::OK,
    };
    seen.in_flight.fetch_sub(1, Ordering::SeqCst);
    code
}

/// A server on 127.0.0.1 (ephemeral port), stopped when the test's runtime ends.
async fn server() -> (String, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let app = Router::new().fallback(get(handle)).with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        axum::serve(listener, app).await.ok();
    });
    (addr, seen)
}

fn plan(address: &str, paths: &[&str], rate: f64, concurrency: usize) -> LoadPlan {
    LoadPlan {
        namespace: "shop".into(),
        name: "web".into(),
        revision: "v2".into(),
        base: format!("http://{address}"),
        paths: paths.iter().map(|p| p.to_string()).collect(),
        headers: vec![("X-Load".into(), "sluice".into())],
        rate,
        concurrency,
        timeout: Duration::from_secs(1),
        until: Utc::now() + chrono::Duration::seconds(600),
    }
}

/// The value of the sample whose name-and-labels part is exactly `series`, 0 when absent.
fn value(t: &Telemetry, series: &str) -> u64 {
    t.render()
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0)
}

fn requests(t: &Telemetry, code: &str) -> u64 {
    value(
        t,
        &format!(
            "sluice_load_requests_total{{namespace=\"shop\",rollout=\"web\",revision=\"v2\",code=\"{code}\"}}"
        ),
    )
}

#[tokio::test]
async fn paths_in_turn_with_headers_and_codes_counted() {
    let (addr, seen) = server().await;
    let t = Telemetry::new();
    let load = LoadManager::new(t.clone());
    let started = std::time::Instant::now();
    load.apply("shop/web", Some(plan(&addr, &["/ok", "/fail"], 40.0, 8)));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    load.apply("shop/web", None);
    let elapsed = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_millis(200)).await;

    let (ok, fail) = (requests(&t, "200"), requests(&t, "500"));
    assert!(ok >= 5 && fail >= 5, "200: {ok}, 500: {fail}");
    // Paths alternate; at most one request is on the schedule's next path.
    assert!(ok.abs_diff(fail) <= 1, "200: {ok}, 500: {fail}");
    // Open loop at 40/s: never more than the schedule allows (one tick at t = 0).
    assert!(
        (ok + fail) as f64 <= 40.0 * elapsed + 1.0,
        "{} requests in {elapsed:.2} s",
        ok + fail
    );
    let paths = seen.paths.lock().unwrap().clone();
    assert_eq!(paths.len() as u64, ok + fail);
    assert!(paths.iter().all(|p| p == "/ok" || p == "/fail"));
    assert!(seen.headers.lock().unwrap().iter().all(|h| h == "sluice"));
    assert_eq!(seen.headers.lock().unwrap().len(), paths.len());
    // Answered requests have durations.
    let count = value(
        &t,
        "sluice_load_request_duration_seconds_count{namespace=\"shop\",rollout=\"web\",revision=\"v2\"}",
    );
    assert_eq!(count, ok + fail);
    assert!(load.running().is_empty());
}

#[tokio::test]
async fn the_concurrency_bound_holds_and_skips_are_counted() {
    let (addr, seen) = server().await;
    let t = Telemetry::new();
    let load = LoadManager::new(t.clone());
    load.apply("shop/web", Some(plan(&addr, &["/slow"], 20.0, 2)));
    tokio::time::sleep(Duration::from_millis(1000)).await;
    load.apply("shop/web", None);
    assert_eq!(seen.max_in_flight.load(Ordering::SeqCst), 2);
    let skipped = value(
        &t,
        "sluice_load_skipped_total{namespace=\"shop\",rollout=\"web\"}",
    );
    assert!(skipped >= 10, "skipped {skipped}");
    // The slow requests were in flight when the load stopped: dropped with it, never answered.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert_eq!(requests(&t, "200"), 0);
}

#[tokio::test]
async fn stopping_stops_every_request() {
    let (addr, seen) = server().await;
    let t = Telemetry::new();
    let load = LoadManager::new(t.clone());
    load.apply("shop/web", Some(plan(&addr, &["/"], 50.0, 8)));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(load.running(), vec!["shop/web".to_string()]);
    // The same plan again changes nothing (no second generator).
    load.apply("shop/web", Some(plan(&addr, &["/"], 50.0, 8)));
    load.retain(&[]);
    assert!(load.running().is_empty());
    tokio::time::sleep(Duration::from_millis(100)).await;
    let after_stop = seen.paths.lock().unwrap().len();
    assert!(after_stop > 0);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(seen.paths.lock().unwrap().len(), after_stop);
}

#[tokio::test]
async fn no_answer_is_counted_as_error() {
    // A port nobody listens on: bind, take the port, close.
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let t = Telemetry::new();
    let load = LoadManager::new(t.clone());
    load.apply("shop/web", Some(plan(&addr, &["/"], 20.0, 4)));
    tokio::time::sleep(Duration::from_millis(600)).await;
    load.apply("shop/web", None);
    assert!(requests(&t, "error") >= 3, "{}", t.render());
    assert_eq!(requests(&t, "200"), 0);
}

#[tokio::test]
async fn the_load_ends_by_itself_at_its_deadline() {
    let (addr, seen) = server().await;
    let t = Telemetry::new();
    let load = LoadManager::new(t.clone());
    let mut p = plan(&addr, &["/"], 50.0, 8);
    p.until = Utc::now() + chrono::Duration::milliseconds(300);
    load.apply("shop/web", Some(p));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let at_deadline = seen.paths.lock().unwrap().len();
    assert!(at_deadline > 0);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(seen.paths.lock().unwrap().len(), at_deadline);
}
