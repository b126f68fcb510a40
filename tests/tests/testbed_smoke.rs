//! Smoke test of the real-component test bed: demo apps behind NGINX (with mtail) and
//! Traefik, scraped by Prometheus, and Alertmanager delivering to a webhook sink.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::Value;
use sluice_tests::{
    Alertmanager, DemoApp, LoadGen, LoadGenOptions, Mtail, Nginx, Prometheus, Traefik,
};

const WAIT: Duration = Duration::from_secs(15);

/// Sum of `promql` by `version`, once both versions have exactly the expected counts.
async fn wait_counts(prom: &Prometheus, promql: &str, stable: u64, canary: u64) {
    let want = move |v: &[(Value, f64)]| {
        let get = |name: &str| {
            v.iter()
                .find(|(m, _)| m["version"] == name)
                .map(|(_, x)| *x)
                .unwrap_or(-1.0)
        };
        get("stable") == stable as f64 && get("canary") == canary as f64
    };
    let r = prom.wait_until(promql, WAIT, want).await;
    assert!(
        r.is_ok(),
        "{promql}: want stable={stable} canary={canary}: {r:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_split_is_seen_by_apps_mtail_and_prometheus() {
    let stable = DemoApp::start("stable", 0.0, 1.0).await.unwrap();
    let canary = DemoApp::start("canary", 0.0, 1.0).await.unwrap();
    let nginx = Nginx::start(&stable.addr(), &canary.addr()).await.unwrap();
    nginx.write_upstream(90, 10).unwrap();
    nginx.reload().await.unwrap();
    let mtail = Mtail::start(&nginx.access_log()).await.unwrap();
    let prom = Prometheus::builder()
        .scrape("apps", [stable.addr(), canary.addr()])
        .scrape("mtail", [mtail.addr()])
        .start()
        .await
        .unwrap();

    let mut opts = LoadGenOptions::new(&format!("{}/", nginx.url()), 100.0);
    opts.duration = Some(Duration::from_secs(3));
    let load = LoadGen::start_with(opts).wait().await;

    assert!(load.responses() >= 100, "too few answers: {load:?}");
    assert_eq!(load.failures(), 0, "{load:?}");
    let share = load.version_share("canary");
    assert!(
        (0.05..=0.15).contains(&share),
        "canary share {share}: {load:?}"
    );
    let (s, c) = (load.version("stable"), load.version("canary"));
    assert_eq!(s + c, load.responses(), "{load:?}");

    // NGINX's log via mtail and the apps' own counters must both match what the client saw.
    wait_counts(
        &prom,
        "sum by (version) (nginx_upstream_requests_total{code=\"200\"})",
        s,
        c,
    )
    .await;
    wait_counts(
        &prom,
        "sum by (version) (http_requests_total{job=\"apps\",code=\"200\"})",
        s,
        c,
    )
    .await;
    let p99 = prom
        .query_values(
            "histogram_quantile(0.99, sum by (le) (nginx_upstream_request_duration_seconds_bucket{version=\"canary\"}))",
        )
        .await
        .unwrap();
    assert_eq!(p99.len(), 1, "{p99:?}");
    assert!(p99[0].1 > 0.0 && p99[0].1 < 10.0, "{p99:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traefik_weighted_file_config_reaches_both_versions() {
    let stable = DemoApp::start("stable", 0.0, 1.0).await.unwrap();
    let canary = DemoApp::start("canary", 0.0, 1.0).await.unwrap();
    let traefik = Traefik::start().await.unwrap();
    traefik
        .write_weighted(&stable.url(), &canary.url(), 50, 50)
        .unwrap();
    traefik.wait_routing("/", WAIT).await.unwrap();

    let mut opts = LoadGenOptions::new(&format!("{}/", traefik.url()), 100.0);
    opts.duration = Some(Duration::from_secs(2));
    opts.new_connection_per_request = true;
    let load = LoadGen::start_with(opts).wait().await;
    assert_eq!(load.failures(), 0, "{load:?}");
    let share = load.version_share("canary");
    assert!(
        (0.3..=0.7).contains(&share),
        "canary share {share}: {load:?}"
    );

    let metrics = sluice_tests::http_client()
        .get(traefik.metrics_url())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("traefik_service_requests_total{code=\"200\",method=\"GET\",protocol=\"http\",service=\"canary@file\"}"),
        "no canary@file series in Traefik metrics"
    );
}

/// What the webhook sink received: (Authorization header, JSON body).
type Received = Arc<Mutex<Vec<(String, Value)>>>;

async fn sink(
    State(rx): State<Received>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> StatusCode {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let ok = auth == "Bearer sink-token";
    rx.lock().unwrap().push((auth, body));
    if ok {
        StatusCode::OK
    } else {
        StatusCode::UNAUTHORIZED
    }
}

async fn wait_for(rx: &Received, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let found = rx
            .lock()
            .unwrap()
            .iter()
            .find(|(_, b)| pred(b))
            .map(|(_, b)| b.clone());
        if let Some(b) = found {
            return b;
        }
        assert!(
            start.elapsed() < WAIT,
            "no {what} webhook: {:?}",
            rx.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alertmanager_delivers_to_webhook_with_bearer_token() {
    let received: Received = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sink_url = format!("http://{}/webhook", listener.local_addr().unwrap());
    let app = Router::new()
        .route("/webhook", post(sink))
        .with_state(received.clone());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let am = Alertmanager::start(&sink_url, Some("sink-token"))
        .await
        .unwrap();
    let labels = [("alertname", "CanaryHighErrorRate"), ("rollout", "demo")];
    am.post_alert(&labels, &[("summary", "canary 5xx above 5%")])
        .await
        .unwrap();
    let firing = wait_for(&received, "firing", |b| b["status"] == "firing").await;
    assert_eq!(firing["version"], "4");
    assert_eq!(firing["alerts"][0]["labels"]["rollout"], "demo");
    assert_eq!(
        firing["alerts"][0]["annotations"]["summary"],
        "canary 5xx above 5%"
    );

    am.resolve_alert(&labels).await.unwrap();
    let resolved = wait_for(&received, "resolved", |b| b["status"] == "resolved").await;
    assert_eq!(
        resolved["alerts"][0]["labels"]["alertname"],
        "CanaryHighErrorRate"
    );

    // A Prometheus rule reaches the same sink through Alertmanager.
    let _prom = Prometheus::builder()
        .rules(
            "groups:\n  - name: t\n    interval: 1s\n    rules:\n      - alert: TestbedRule\n        expr: vector(1)\n        labels: { rollout: from-rule }\n",
        )
        .alertmanager(&am.addr())
        .start()
        .await
        .unwrap();
    let from_rule = wait_for(&received, "rule alert", |b| {
        b["alerts"][0]["labels"]["alertname"] == "TestbedRule"
    })
    .await;
    assert_eq!(from_rule["alerts"][0]["labels"]["rollout"], "from-rule");
    for (auth, _) in received.lock().unwrap().iter() {
        assert_eq!(auth, "Bearer sink-token");
    }
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loadgen_counts_5xx_and_connection_errors() {
    let app = DemoApp::start("canary", 0.0, 0.0).await.unwrap();
    app.set(1.0, 0.0).await.unwrap();
    let load = LoadGen::start(&app.url(), 200.0);
    let window = load.measure(Duration::from_millis(500)).await;
    let total = load.stop().await;
    assert!(window.responses() > 0, "{window:?}");
    assert_eq!(window.version_error_rate("canary"), 1.0, "{window:?}");
    assert_eq!(total.server_errors(), total.responses(), "{total:?}");
    assert!(total.responses() >= window.responses());

    // Nothing listens on a fresh free port: every request is a transport error.
    let dead = format!("http://127.0.0.1:{}/", sluice_tests::free_port());
    let mut opts = LoadGenOptions::new(&dead, 50.0);
    opts.duration = Some(Duration::from_millis(300));
    opts.new_connection_per_request = true;
    let refused = LoadGen::start_with(opts).wait().await;
    assert!(refused.conn_errors > 0, "{refused:?}");
    assert_eq!(refused.responses(), 0);
    assert_eq!(refused.error_rate(), 1.0);
}
