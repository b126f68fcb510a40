//! Per-route comparison against a real Prometheus: an exporter serves ingress-nginx-shaped
//! `nginx_ingress_controller_requests` series with the `path` label (ingress-nginx's
//! `requestTags` in `internal/ingress/metric/collectors/socket.go`: status, method, path,
//! namespace, ingress, service, canary), stable with `canary=""` and the canary with
//! `canary="shop-web-canary-80"`. `/` carries 98% of the traffic at 0.5% errors on both arms;
//! `/checkout` 2%, with 5% canary errors against stable's 0.5%. Pooled, the canary is 1.18x
//! stable (inside the tolerated 1.2x), so the pooled test cannot roll it back; on its own
//! counts `/checkout` is 10x and must fail, naming the route, while `/` stays unjudged or passes.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use sluice_analysis::stats::{RoutePromotion, RouteSplit, SequentialConfig};
use sluice_analysis::{
    analyse_step, error_counter, AnalysisState, Check, MetricSpec, PrometheusClient,
    PrometheusConfig, Provider, Variables, VerdictKind,
};
use sluice_tests::Prometheus;

/// Per 250 ms tick and arm: (path, requests, 5xx) — 5xx of stable's `/checkout` every 5th tick.
const ROUTES: [(&str, u64); 2] = [("/", 2000), ("/checkout", 40)];

fn render(ticks: u64) -> String {
    let mut out = String::new();
    for (arm, canary) in [("stable", ""), ("canary", "shop-web-canary-80")] {
        for (path, per_tick) in ROUTES {
            let requests = per_tick * ticks;
            let errors = match (arm, path) {
                ("canary", "/checkout") => 2 * ticks, // 5%
                (_, "/checkout") => ticks / 5,        // 0.5%
                _ => 10 * ticks,                      // 0.5%
            };
            let labels = format!(
                r#"namespace="shop",ingress="web",service="web",method="GET",path="{path}",canary="{canary}""#
            );
            let _ = writeln!(
                out,
                "nginx_ingress_controller_requests{{{labels},status=\"200\"}} {}",
                requests - errors
            );
            let _ = writeln!(
                out,
                "nginx_ingress_controller_requests{{{labels},status=\"503\"}} {errors}"
            );
        }
    }
    out
}

struct Exporter {
    addr: String,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Exporter {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

async fn start_exporter() -> Exporter {
    let ticks = Arc::new(Mutex::new(0u64));
    let app = Router::new()
        .route(
            "/metrics",
            get(|State(t): State<Arc<Mutex<u64>>>| async move {
                let n = *t.lock().unwrap();
                render(n)
            }),
        )
        .with_state(ticks.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let ticker = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(250)).await;
            *ticks.lock().unwrap() += 1;
        }
    });
    Exporter {
        addr,
        tasks: vec![server, ticker],
    }
}

fn vars() -> Variables {
    [
        ("namespace", "shop"),
        ("ingress", "web"),
        ("port", "80"),
        ("primary", "web-primary"),
        ("canary", "web-canary"),
        ("interval", "2s"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn metrics() -> Vec<MetricSpec> {
    let settings = SequentialConfig {
        tolerated_ratio: 1.2,
        ..SequentialConfig::default()
    };
    let m = |name: &str, by: Option<RouteSplit>| MetricSpec {
        name: name.into(),
        check: Check::ErrorComparison {
            counter: error_counter(Provider::NginxIngress),
            settings,
            by,
        },
        args: Variables::new(),
    };
    vec![
        m(
            "by-path",
            Some(RouteSplit {
                label: "path".into(),
                max_routes: 10,
                promote: RoutePromotion::Pooled,
            }),
        ),
        m("pooled", None),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_regression_on_one_path_fails_on_that_paths_counts() {
    let exporter = start_exporter().await;
    let prom = Prometheus::builder()
        .scrape("exporter", [exporter.addr.clone()])
        .start()
        .await
        .unwrap();
    prom.wait_until(
        r#"count(nginx_ingress_controller_requests{path="/checkout"})"#,
        Duration::from_secs(15),
        |v| !v.is_empty(),
    )
    .await
    .unwrap();
    let client = PrometheusClient::new(PrometheusConfig::new(prom.url())).unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;

    let specs = metrics();
    let mut state = AnalysisState::default();
    let mut log = Vec::new();
    let mut failed = None;
    let deadline = Instant::now() + Duration::from_secs(40);
    while Instant::now() < deadline && failed.is_none() {
        let out = analyse_step(&specs, &client, &vars(), &state, chrono::Utc::now()).await;
        for m in &out.verdicts {
            assert_ne!(
                m.verdict.kind,
                VerdictKind::Error,
                "{}: {}",
                m.name,
                m.verdict.reason
            );
            log.push(format!(
                "{} {:?}: {}",
                m.name, m.verdict.kind, m.verdict.reason
            ));
        }
        // The split is done on the raw answers: the same four raw selectors as the pooled test.
        assert_eq!(out.verdicts[0].queries[..4], out.verdicts[1].queries[..4]);
        assert!(out.verdicts[0].queries.iter().all(|q| !q.contains(" by ")));
        let pooled = &out.verdicts[1].verdict;
        assert_ne!(
            pooled.kind,
            VerdictKind::Fail,
            "pooled failed: {}",
            pooled.reason
        );
        if out.verdicts[0].verdict.kind == VerdictKind::Fail {
            failed = Some(out.verdicts[0].verdict.clone());
        }
        state = out.state;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    println!("{}", log.join("\n"));
    let f = failed.unwrap_or_else(|| panic!("per-path test never failed:\n{}", log.join("\n")));
    assert!(f.reason.starts_with("route /checkout:"), "{}", f.reason);
    let ev = f.evidence.as_ref().unwrap();
    assert!(ev.estimate.unwrap() > 4.0, "{ev:?}");

    // The per-route counts are the exporter's: /checkout's canary errors are exactly 5% of
    // its requests; / has 50 times /checkout's requests; the slots add up to the pooled counts
    // (the last window of the pooled state is not in the slots only if a slot had no traffic).
    let m = &state.metrics["by-path"];
    let routes = m.routes.as_ref().expect("route state");
    let slot = |name: &str| {
        routes
            .slots
            .iter()
            .find(|s| s.route.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("no slot for {name}: {routes:?}"))
            .state
            .clone()
    };
    let (root, checkout) = (slot("/"), slot("/checkout"));
    assert_eq!(routes.slots.len(), 2);
    assert_eq!(checkout.canary_bad * 20.0, checkout.canary_requests);
    assert_eq!(checkout.canary_requests * 50.0, root.canary_requests);
    assert_eq!(root.canary_bad * 200.0, root.canary_requests);
    let pooled = m.sequential.as_ref().unwrap();
    assert_eq!(
        pooled.canary_requests,
        root.canary_requests + checkout.canary_requests
    );
    assert_eq!(pooled.stable_bad, root.stable_bad + checkout.stable_bad);
    drop(prom);
    drop(exporter);
}
