//! Alert-to-rollback latency: a real Alertmanager posts webhooks to Sluice's HTTP API (axum router,
//! in process), the standalone tick loop (`standalone::reconcile::tick`, woken by the command like
//! `sluice run`) aborts the rollout, and the real NGINX file router (`nginx -t` + `nginx -s reload`)
//! returns traffic to stable. Timestamps: webhook receipt, router set_weight(0) start/end (split
//! into `nginx -t` and reload), and the first response NGINX serves from stable.
//!
//! `cargo bench -p sluice-tests --bench alert_latency -- [--aborts 200] [--quick] [--json FILE]`
//! (`SLUICE_ALERT_ABORTS=N` also works; `--quick` = 5 aborts).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::middleware::Next;
use sluice_analysis::FakeMetricsSource;
use sluice_controller::api::{self, ApiState, AuthConfig, Secret};
use sluice_controller::router::nginx_file::{NginxCli, NginxControl, NginxFileRouter};
use sluice_controller::router::{RouterError, TrafficRouter};
use sluice_controller::standalone::reconcile::{tick, TickContext};
use sluice_controller::standalone::state::StateFile;
use sluice_controller::standalone::{Shared, StandaloneConfig};
use sluice_controller::telemetry::Telemetry;
use sluice_crds::Phase;
use sluice_tests::{free_port, Alertmanager, Nginx};

const TOKEN: &str = "bench-webhook-token";
const ROLLOUT: &str = "web";
/// Longest pause between two ticks (what `sluice run --poll-ms` sets); commands wake the loop.
const POLL: Duration = Duration::from_millis(200);
const ABORT_TIMEOUT: Duration = Duration::from_secs(20);
/// Consecutive answers from one version that count as "NGINX serves it".
const STREAK: usize = 10;

#[path = "alert_latency/report.rs"]
mod report;

use report::{ms, report};
pub use report::{table, AbortSample, AlertReport};

type Fut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The instants of one abort, filled in as they happen.
#[derive(Debug, Default, Clone)]
struct Marks {
    armed: bool,
    posted: Option<Instant>,
    received: Option<Instant>,
    answered: Option<Instant>,
    set_start: Option<Instant>,
    test_start: Option<Instant>,
    test_end: Option<Instant>,
    reload_start: Option<Instant>,
    reload_end: Option<Instant>,
    set_end: Option<Instant>,
    served_stable: Option<Instant>,
}

type SharedMarks = Arc<Mutex<Marks>>;

fn marks(m: &SharedMarks) -> std::sync::MutexGuard<'_, Marks> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Times `nginx -t` and the reload around the real NGINX CLI.
struct TimedControl {
    inner: NginxCli,
    marks: SharedMarks,
}

impl NginxControl for TimedControl {
    fn test(&self) -> Fut<'_, Result<(), String>> {
        Box::pin(async move {
            let t0 = Instant::now();
            let r = self.inner.test().await;
            let mut m = marks(&self.marks);
            if m.armed && m.set_start.is_some() && m.test_start.is_none() {
                m.test_start = Some(t0);
                m.test_end = Some(Instant::now());
            }
            r
        })
    }

    fn reload(&self) -> Fut<'_, Result<(), String>> {
        Box::pin(async move {
            let t0 = Instant::now();
            let r = self.inner.reload().await;
            let mut m = marks(&self.marks);
            if m.armed && m.set_start.is_some() && m.reload_start.is_none() {
                m.reload_start = Some(t0);
                m.reload_end = Some(Instant::now());
            }
            r
        })
    }
}

/// Times set_weight(0) around the real NGINX file router.
struct TimedRouter {
    inner: NginxFileRouter,
    marks: SharedMarks,
}

impl TrafficRouter for TimedRouter {
    fn set_weight(&self, weight: i32) -> Fut<'_, Result<(), RouterError>> {
        Box::pin(async move {
            let t0 = Instant::now();
            let first = {
                let mut m = marks(&self.marks);
                let first = weight == 0 && m.armed && m.set_start.is_none();
                if first {
                    m.set_start = Some(t0);
                }
                first
            };
            let r = self.inner.set_weight(weight).await;
            if first {
                marks(&self.marks).set_end = Some(Instant::now());
            }
            r
        })
    }

    fn current_weight(&self) -> Fut<'_, Result<Option<i32>, RouterError>> {
        self.inner.current_weight()
    }

    fn cleanup(&self) -> Fut<'_, Result<(), RouterError>> {
        self.inner.cleanup()
    }
}

/// A backend answering every request with its version in `X-Version`.
async fn backend(version: &'static str) -> String {
    let app =
        axum::Router::new().fallback(move || async move { ([("x-version", version)], version) });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a backend port");
    let addr = listener.local_addr().expect("backend address").to_string();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

fn config_yaml(nginx: &Nginx, stable: &str, canary: &str) -> String {
    format!(
        r#"webhookToken: {TOKEN}
rollouts:
  - name: {ROLLOUT}
    stable: {{ address: "{stable}", version: v1 }}
    canary: {{ address: "{canary}", version: v1 }}
    router:
      nginx:
        conf: {conf}
        prefix: {prefix}
        upstreamFile: {upstream}
        upstream: app
        nginxBin: {bin}
    strategy:
      canary:
        steps:
          - setWeight: 100
          - pause: {{}}
    progressDeadlineSeconds: 600
"#,
        conf = nginx.conf_path().display(),
        prefix = nginx.config_dir().display(),
        upstream = nginx.upstream_conf_path().display(),
        bin = nginx.bin().display(),
    )
}

fn sample(m: &Marks) -> Option<AbortSample> {
    let r = m.received;
    Some(AbortSample {
        alertmanager_ms: ms(m.posted, r)?,
        webhook_ms: ms(r, m.answered)?,
        sluice_ms: ms(r, m.set_start)?,
        router_ms: ms(m.set_start, m.set_end)?,
        nginx_test_ms: ms(m.test_start, m.test_end)?,
        nginx_reload_ms: ms(m.reload_start, m.reload_end)?,
        nginx_apply_ms: ms(m.set_end, m.served_stable)?,
        to_router_zero_ms: ms(r, m.set_end)?,
        to_served_zero_ms: ms(r, m.served_stable)?,
    })
}

fn probe_client() -> reqwest::Client {
    sluice_tests::init_tls();
    reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(2))
        .build()
        .expect("a plain-HTTP client")
}

async fn served_version(client: &reqwest::Client, url: &str) -> Option<String> {
    let r = client.get(url).send().await.ok()?;
    r.headers()
        .get("x-version")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// Waits until `STREAK` consecutive new-connection requests are answered by `version`; returns
/// when the first of them was sent. During a reload the old workers still accept connections
/// for a moment, so one answer is not enough.
async fn wait_serving(client: &reqwest::Client, url: &str, version: &str) -> Option<Instant> {
    let start = Instant::now();
    let mut first: Option<Instant> = None;
    let mut streak = 0;
    while start.elapsed() < ABORT_TIMEOUT {
        let sent = Instant::now();
        if served_version(client, url).await.as_deref() == Some(version) {
            first.get_or_insert(sent);
            streak += 1;
            if streak >= STREAK {
                return first;
            }
        } else {
            first = None;
            streak = 0;
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    None
}

async fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while !f() {
        if start.elapsed() > timeout {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    true
}

/// Runs `aborts` alert-driven aborts and reports their latencies.
pub async fn run(aborts: usize) -> Result<AlertReport, String> {
    let stable = backend("stable").await;
    let canary = backend("canary").await;
    let nginx = Nginx::start(&stable, &canary)
        .await
        .map_err(|e| e.to_string())?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let file = dir.path().join("rollouts.yaml");
    let config = StandaloneConfig::parse(&config_yaml(&nginx, &stable, &canary), &file)
        .map_err(|e| e.to_string())?;
    let spec = config.rollouts[0]
        .router
        .nginx
        .clone()
        .ok_or("no nginx router in the config")?;
    let shared = Shared::new(
        config.clone(),
        StateFile::default(),
        dir.path().join("state.json"),
    );
    let m: SharedMarks = Arc::default();
    let control = Arc::new(TimedControl {
        inner: NginxCli::from_spec(&spec),
        marks: m.clone(),
    });
    let router = Arc::new(TimedRouter {
        inner: NginxFileRouter::with_control(spec, &stable, &canary, control)
            .map_err(|e| e.to_string())?,
        marks: m.clone(),
    });

    // The HTTP API, with receipt/answer timestamps on the webhook route.
    let telemetry = Telemetry::new();
    let auth = AuthConfig {
        webhook_token: Some(Secret::new(TOKEN)),
        ..Default::default()
    };
    let state = ApiState::new(Arc::new(shared.store()), telemetry.clone(), auth);
    let mm = m.clone();
    let app = api::router(state).layer(axum::middleware::from_fn(
        move |req: Request, next: Next| {
            let mm = mm.clone();
            async move {
                let hook = req.uri().path() == "/webhooks/alertmanager";
                if hook {
                    let mut g = marks(&mm);
                    if g.armed && g.received.is_none() {
                        g.received = Some(Instant::now());
                    }
                }
                let resp = next.run(req).await;
                if hook {
                    let mut g = marks(&mm);
                    if g.armed && g.received.is_some() && g.answered.is_none() {
                        g.answered = Some(Instant::now());
                    }
                }
                resp
            }
        },
    ));
    let port = free_port();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|e| e.to_string())?;
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let hook = format!("http://127.0.0.1:{port}/webhooks/alertmanager");
    let am = Alertmanager::start(&hook, Some(TOKEN))
        .await
        .map_err(|e| e.to_string())?;

    // The standalone loop: tick, then sleep until the requeue time or a command.
    let loop_shared = shared.clone();
    let loop_router = router.clone();
    let ticker = tokio::spawn(async move {
        let metrics = FakeMetricsSource::new();
        let telemetry = Telemetry::new();
        let load = sluice_controller::load::LoadManager::new(telemetry.clone());
        loop {
            let Some(cfg) = loop_shared.config().rollouts.first().cloned() else {
                return;
            };
            let cx = TickContext {
                shared: &loop_shared,
                router: loop_router.as_ref(),
                metrics: &metrics,
                templates: &[],
                telemetry: &telemetry,
                load: &load,
                now: chrono::Utc::now(),
                notify: None,
            };
            let requeue = tick(&cfg, &cx).await;
            loop_shared.sleep(requeue.unwrap_or(POLL).min(POLL)).await;
        }
    });

    let client = probe_client();
    let url = nginx.url();
    let mut samples = Vec::new();
    let mut failed = 0;
    for i in 0..aborts {
        // Arm: a new canary version; wait until NGINX sends it all traffic.
        let version = format!("v{}", i + 2);
        let mut cfg = config.clone();
        cfg.rollouts[0].canary.version = Some(version.clone());
        shared.set_config(cfg);
        shared.wake();
        let armed = wait_until(ABORT_TIMEOUT, || {
            let st = shared.rollout_state(ROLLOUT).status;
            st.canary_weight == 100
                && st.canary_revision.as_deref() == Some(version.as_str())
                && matches!(st.phase, Phase::Paused | Phase::Progressing)
        })
        .await;
        if !armed || wait_serving(&client, &url, "canary").await.is_none() {
            failed += 1;
            eprintln!("alert_latency: abort {i}: rollout {version} never reached 100% canary");
            continue;
        }
        *marks(&m) = Marks {
            armed: true,
            ..Marks::default()
        };
        let iteration = i.to_string();
        let labels = [
            ("alertname", "CanaryHighErrorRate"),
            ("rollout", ROLLOUT),
            ("namespace", "standalone"),
            ("iteration", iteration.as_str()),
        ];
        marks(&m).posted = Some(Instant::now());
        if let Err(e) = am.post_alert(&labels, &[("summary", "bench")]).await {
            failed += 1;
            eprintln!("alert_latency: abort {i}: {e}");
            continue;
        }
        // Stable answers from here on = NGINX serves 0% canary (the weight was 100%).
        let served = wait_serving(&client, &url, "stable").await;
        marks(&m).served_stable = served;
        // Let set_weight return before reading the marks (NGINX may switch before it does).
        wait_until(Duration::from_secs(5), || marks(&m).set_end.is_some()).await;
        let got = {
            let mut g = marks(&m);
            g.armed = false;
            g.clone()
        };
        match sample(&got) {
            Some(s) => samples.push(s),
            None => {
                failed += 1;
                eprintln!("alert_latency: abort {i}: incomplete timestamps {got:?}");
            }
        }
        let _ = am.resolve_alert(&labels).await;
        // Wait for the rollback to finish before the next version.
        wait_until(ABORT_TIMEOUT, || {
            let st = shared.rollout_state(ROLLOUT).status;
            st.canary_weight == 0
                && !matches!(
                    st.phase,
                    Phase::Progressing | Phase::Paused | Phase::RollingBack
                )
        })
        .await;
    }
    ticker.abort();
    server.abort();
    drop(am);
    drop(nginx);
    Ok(report(aborts, failed, samples))
}

fn parse_args() -> (usize, Option<String>) {
    let mut aborts = std::env::var("SLUICE_ALERT_ABORTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let mut json = None;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => aborts = 5,
            "--aborts" => aborts = it.next().and_then(|v| v.parse().ok()).unwrap_or(aborts),
            "--json" => json = it.next().cloned(),
            _ => {} // `cargo bench` passes --bench.
        }
    }
    (aborts, json)
}

#[allow(dead_code)] // unused when the smoke test includes this file as a module
fn main() {
    let (aborts, json) = parse_args();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match rt.block_on(run(aborts)) {
        Ok(r) => {
            println!("{}", table(&r));
            if let Some(path) = json {
                let body = serde_json::to_string_pretty(&r).unwrap_or_default();
                if let Err(e) = std::fs::write(&path, body) {
                    eprintln!("cannot write {path}: {e}");
                }
            }
        }
        Err(e) => {
            eprintln!("alert_latency: {e}");
            std::process::exit(1);
        }
    }
}
