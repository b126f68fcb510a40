//! sluice-analysis against a real Prometheus: a small exporter serves stable and canary series
//! in the shapes of every provider (mtail, Traefik file / Kubernetes, ingress-nginx) with known
//! counts that grow every 250 ms; Prometheus scrapes it every 1 s; the built-in queries and the
//! judges must give the expected verdicts through the HTTP API.
//!
//! ingress-nginx's shape is the real one: a canary Ingress is merged into the main Ingress, so
//! both arms carry the main Ingress's name in `ingress`, and the canary arm's requests carry
//! `canary="<namespace>-<canary service>-<port>"` (stable's `canary=""`). One main Ingress per
//! canary version here, as a cluster has one canary per Ingress.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use sluice_analysis::stats::SequentialConfig;
use sluice_analysis::verdict::Threshold;
use sluice_analysis::{
    analyse_step, error_counter, latency_histogram, AnalysisState, BuiltinMetric, Check,
    InconclusiveCause, MetricSpec, MetricsSource, PrometheusClient, PrometheusConfig, Provider,
    QueryError, QueryResult, Variables, VerdictKind,
};
use sluice_tests::Prometheus;

const BUCKETS: [&str; 5] = ["0.05", "0.1", "0.25", "1", "+Inf"];

/// Per tick of one version: requests, 5xx, and how many land in each latency bucket (non-cumulative).
#[derive(Clone, Copy)]
struct Profile {
    name: &'static str,
    requests: u64,
    errors: u64,
    per_bucket: [u64; 5],
}

// stable and "good": 1% errors, 95% under 50 ms; "bad": 10% errors and slow; "idle": no traffic.
const PROFILES: [Profile; 4] = [
    Profile {
        name: "stable",
        requests: 1000,
        errors: 10,
        per_bucket: [950, 40, 10, 0, 0],
    },
    Profile {
        name: "good",
        requests: 1000,
        errors: 10,
        per_bucket: [950, 40, 10, 0, 0],
    },
    Profile {
        name: "bad",
        requests: 1000,
        errors: 100,
        per_bucket: [600, 100, 100, 200, 0],
    },
    Profile {
        name: "idle",
        requests: 0,
        errors: 0,
        per_bucket: [0, 0, 0, 0, 0],
    },
];

#[derive(Default)]
struct Counters {
    ticks: u64,
}

/// Metric families of every provider: (requests counter, code label, duration histogram, labels
/// of a version). ingress-nginx's family is emitted per main Ingress (see [`nginx_ingress`]).
fn families(version: &str) -> [(&'static str, &'static str, &'static str, String); 3] {
    [
        (
            "nginx_upstream_requests_total",
            "code",
            "nginx_upstream_request_duration_seconds",
            format!("version=\"{version}\""),
        ),
        (
            "traefik_service_requests_total",
            "code",
            "traefik_service_request_duration_seconds",
            format!("service=\"{version}@file\""),
        ),
        (
            "traefik_service_requests_total",
            "code",
            "traefik_service_request_duration_seconds",
            format!("service=\"shop-{version}-80@kubernetes\""),
        ),
    ]
}

/// ingress-nginx's series of the main Ingress `ing-<canary>`: stable's requests with
/// `canary=""`, the canary version's with `canary="shop-<canary>-80"`.
fn nginx_ingress(
    arm: &Profile,
    canary: &str,
) -> (&'static str, &'static str, &'static str, String) {
    let upstream = if arm.name == "stable" {
        String::new()
    } else {
        format!("shop-{canary}-80")
    };
    (
        "nginx_ingress_controller_requests",
        "status",
        "nginx_ingress_controller_request_duration_seconds",
        format!("namespace=\"shop\",ingress=\"ing-{canary}\",canary=\"{upstream}\""),
    )
}

fn render_metrics(ticks: u64) -> String {
    let mut out = String::new();
    for p in PROFILES {
        // "idle" keeps fixed counters (series exist, rates are 0).
        let (req, err) = if p.name == "idle" {
            (500, 5)
        } else {
            (p.requests * ticks, p.errors * ticks)
        };
        let t = if p.name == "idle" { 0 } else { ticks };
        let mut fams: Vec<_> = families(p.name).into_iter().collect();
        if p.name == "stable" {
            fams.extend(PROFILES[1..].iter().map(|c| nginx_ingress(&p, c.name)));
        } else {
            fams.push(nginx_ingress(&p, p.name));
        }
        for (requests, code, duration, labels) in fams {
            let _ = writeln!(out, "{requests}{{{labels},{code}=\"200\"}} {}", req - err);
            let _ = writeln!(out, "{requests}{{{labels},{code}=\"500\"}} {err}");
            let mut cum = 0;
            for (le, n) in BUCKETS.iter().zip(p.per_bucket) {
                cum += n * t;
                let _ = writeln!(out, "{duration}_bucket{{{labels},le=\"{le}\"}} {cum}");
            }
            let _ = writeln!(out, "{duration}_sum{{{labels}}} {}", 0.04 * cum as f64);
            let _ = writeln!(out, "{duration}_count{{{labels}}} {cum}");
        }
    }
    out
}

/// Serves `/metrics` on a free port and advances the counters every 250 ms until dropped.
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
    let state = Arc::new(Mutex::new(Counters::default()));
    let app = Router::new()
        .route(
            "/metrics",
            get(|State(s): State<Arc<Mutex<Counters>>>| async move {
                render_metrics(s.lock().unwrap().ticks)
            }),
        )
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let ticker = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(250)).await;
            state.lock().unwrap().ticks += 1;
        }
    });
    Exporter {
        addr,
        tasks: vec![server, ticker],
    }
}

const PROVIDERS: [Provider; 4] = [
    Provider::NginxMtail,
    Provider::TraefikFile,
    Provider::Traefik,
    Provider::NginxIngress,
];

fn vars(canary: &str) -> Variables {
    let ing = format!("ing-{canary}");
    [
        ("namespace", "shop"),
        ("ingress", ing.as_str()),
        ("port", "80"),
        ("primary", "stable"),
        ("canary", canary),
        ("interval", "5s"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn metrics(provider: Provider) -> Vec<MetricSpec> {
    let m = |name: &str, check: Check| MetricSpec {
        name: name.into(),
        check,
        args: Variables::new(),
    };
    vec![
        m(
            "errors",
            Check::ErrorComparison {
                counter: error_counter(provider),
                settings: SequentialConfig::default(),
                by: None,
            },
        ),
        m(
            "latency",
            Check::LatencyComparison {
                histogram: latency_histogram(provider),
                quantile: 0.95,
                boundary: None,
                settings: SequentialConfig::default(),
            },
        ),
        m(
            "success-rate",
            Check::BuiltinThreshold {
                provider,
                metric: BuiltinMetric::RequestSuccessRate,
                threshold: Threshold {
                    min: Some(0.95),
                    max: None,
                },
            },
        ),
        m(
            "p99",
            Check::BuiltinThreshold {
                provider,
                metric: BuiltinMetric::RequestDurationP99,
                threshold: Threshold {
                    min: None,
                    max: Some(2.0),
                },
            },
        ),
        m(
            "mean",
            Check::BuiltinThreshold {
                provider,
                metric: BuiltinMetric::RequestDurationMean,
                threshold: Threshold {
                    min: None,
                    max: Some(1.0),
                },
            },
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn builtin_queries_and_judges_on_real_prometheus() {
    let exporter = start_exporter().await;
    let prom = Prometheus::builder()
        .scrape("exporter", [exporter.addr.clone()])
        .start()
        .await
        .unwrap();
    prom.wait_until(
        r#"count(nginx_upstream_requests_total{version="stable"})"#,
        Duration::from_secs(15),
        |v| !v.is_empty(),
    )
    .await
    .unwrap();
    let client = PrometheusClient::new(PrometheusConfig::new(prom.url())).unwrap();

    // Typed errors and shapes through the real API.
    match client.query("sum(rate(", None).await {
        Err(QueryError::Prometheus {
            error_type,
            http_status,
            ..
        }) => assert_eq!((error_type.as_str(), http_status), ("bad_data", 400)),
        other => panic!("expected bad_data, got {other:?}"),
    }
    let empty = client
        .query(
            r#"sum(nginx_upstream_requests_total{version="nobody"})"#,
            None,
        )
        .await
        .unwrap();
    assert_eq!(empty.result, QueryResult::Vector(vec![]));
    assert!(
        matches!(client.query("1/0", None).await.unwrap().result, QueryResult::Scalar(_, v) if v == f64::INFINITY)
    );

    // Wait until a 5 s window holds enough scrapes for increase() and rate().
    tokio::time::sleep(Duration::from_secs(4)).await;

    // Per provider: (state of the good canary, of the bad one, good passed, bad failed on every
    // check, which of errors / latency / success rate failed so far).
    let mut runs: Vec<(AnalysisState, AnalysisState, bool, bool, [bool; 3])> =
        vec![Default::default(); PROVIDERS.len()];
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut log = Vec::new();
    while Instant::now() < deadline && !runs.iter().all(|r| r.2 && r.3) {
        let now = chrono::Utc::now();
        for (provider, run) in PROVIDERS.iter().zip(runs.iter_mut()) {
            let specs = metrics(*provider);
            let good = analyse_step(&specs, &client, &vars("good"), &run.0, now).await;
            let bad = analyse_step(&specs, &client, &vars("bad"), &run.1, now).await;
            for m in good.verdicts.iter().chain(&bad.verdicts) {
                assert_ne!(
                    m.verdict.kind,
                    VerdictKind::Error,
                    "{provider:?} {}: {} ({:?})",
                    m.name,
                    m.verdict.reason,
                    m.queries
                );
            }
            for m in &good.verdicts {
                assert_ne!(
                    m.verdict.kind,
                    VerdictKind::Fail,
                    "{provider:?}: healthy canary failed {}: {}",
                    m.name,
                    m.verdict.reason
                );
            }
            log.push(format!(
                "{provider:?} good: {:?} {}\n{provider:?} bad: {:?} {}",
                good.summary.kind, good.summary.reason, bad.summary.kind, bad.summary.reason
            ));
            run.2 |= good.summary.kind == VerdictKind::Pass;
            // Each of the bad canary's checks must fail at some step: errors and the success
            // rate at once, latency after its boundary is chosen (the window that chooses it is
            // not judged when stable has no history before the rollout, as here).
            for (i, m) in bad.verdicts.iter().take(3).enumerate() {
                if m.verdict.kind == VerdictKind::Fail {
                    run.4[i] = true;
                }
            }
            let errors = &bad.verdicts[0].verdict;
            if errors.kind == VerdictKind::Fail {
                let ev = errors.evidence.as_ref().unwrap();
                assert!(
                    ev.e_fail >= ev.fail_threshold && ev.estimate.unwrap() > 5.0,
                    "{ev:?}"
                );
            }
            let success = &bad.verdicts[2].verdict;
            if success.kind == VerdictKind::Fail {
                assert!(
                    (success.value.unwrap() - 0.9).abs() < 0.01,
                    "{}",
                    success.reason
                );
            }
            run.3 = run.4.iter().all(|f| *f);
            (run.0, run.1) = (good.state, bad.state);
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    println!("{}", log.join("\n"));
    for (provider, run) in PROVIDERS.iter().zip(&runs) {
        assert!(
            run.3,
            "{provider:?}: bad canary was not rolled back:\n{}",
            log.join("\n")
        );
        assert!(
            run.2,
            "{provider:?}: healthy canary never passed:\n{}",
            log.join("\n")
        );
        let latency = run.0.metrics["latency"].sequential.as_ref().unwrap();
        assert_eq!(
            latency.boundary,
            Some(0.05),
            "boundary at stable's p95 bucket"
        );
    }

    // Later windows cover exactly the time since the previous one: the counted canary requests
    // grow by 4000/s times the time between the windows' ends (their last scrapes), neither
    // double-counted nor lost, exact to within one scrape (1 s) plus one 250 ms tick.
    let specs = metrics(Provider::NginxMtail);
    let mut state = runs[0].0.clone();
    let before = state.metrics["errors"]
        .sequential
        .as_ref()
        .unwrap()
        .canary_requests;
    let since = state.metrics["errors"].last_at.unwrap();
    let mut now = since;
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_secs(3)).await;
        now = chrono::Utc::now();
        let out = analyse_step(&specs, &client, &vars("good"), &state, now).await;
        assert_eq!(
            out.summary.kind,
            VerdictKind::Pass,
            "{}",
            out.summary.reason
        );
        assert!(
            out.verdicts[0].queries[0].ends_with("ms]"),
            "{:?}",
            out.verdicts[0].queries
        );
        state = out.state;
    }
    let added = state.metrics["errors"]
        .sequential
        .as_ref()
        .unwrap()
        .canary_requests
        - before;
    let end = state.metrics["errors"].last_at.unwrap();
    assert!(end <= now && end > since);
    let expected = 4000.0 * (end - since).num_milliseconds() as f64 / 1000.0;
    println!(
        "windows after the first: counted {added:.0} canary requests, expected {expected:.0} from the windows' ends"
    );
    assert!(
        (added - expected).abs() <= 4000.0 * 1.25,
        "counted {added} canary requests, expected {expected} within one scrape"
    );

    // A canary that serves nothing: NaN success rate and no traffic, never Pass or Fail.
    let specs = metrics(Provider::NginxMtail);
    let idle = analyse_step(
        &specs,
        &client,
        &vars("idle"),
        &AnalysisState::default(),
        chrono::Utc::now(),
    )
    .await;
    assert_eq!(
        idle.verdicts[0].verdict.cause,
        Some(InconclusiveCause::NoTraffic),
        "{}",
        idle.verdicts[0].verdict.reason
    );
    assert_eq!(
        idle.verdicts[2].verdict.cause,
        Some(InconclusiveCause::NaN),
        "{}",
        idle.verdicts[2].verdict.reason
    );
    assert_eq!(idle.summary.kind, VerdictKind::Inconclusive);

    // The client is usable as a shared trait object.
    let shared: Arc<dyn MetricsSource> = Arc::new(client);
    assert!(shared.query("up", None).await.is_ok());
}
