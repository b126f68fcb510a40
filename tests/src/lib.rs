//! Test bed: real Prometheus, Alertmanager, NGINX, mtail, Traefik and demo-app processes for tests.
//!
//! Every component runs as a plain process on 127.0.0.1 on a free port, with its config in a
//! temp dir, and is stopped when its guard is dropped (SIGTERM, then SIGKILL after 3 s).
//! Missing tools are installed once per process by `scripts/install-deps.sh`.

pub mod alertmanager;
pub mod demo_app;
pub mod error;
pub mod loadgen;
pub mod mtail;
pub mod nginx;
pub mod paths;
pub mod process;
pub mod prometheus;
pub mod traefik;

pub use alertmanager::{alertmanager_config, Alertmanager};
pub use demo_app::{DemoApp, DemoAppOptions};
pub use error::{Result, TestbedError};
pub use loadgen::{LoadGen, LoadGenOptions, LoadSnapshot};
pub use mtail::{Mtail, NGINX_MTAIL_PROGRAM};
pub use nginx::{nginx_config, upstream_conf, Nginx, NGINX_UPSTREAM};
pub use paths::{
    ensure_installed, find_bin, find_bin_in, free_port, require_tool, target_dir, tool,
    traefik_bin, workspace_root,
};
pub use process::{Proc, READY_TIMEOUT};
pub use prometheus::{parse_values, prometheus_config, Prometheus, PrometheusBuilder, ScrapeJob};
pub use traefik::{traefik_static_config, weighted_config, Traefik};

/// A shared HTTP client for the harness: no proxy (everything is on loopback), 10 s timeout.
pub fn http_client() -> reqwest::Client {
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    CLIENT
        .get_or_init(|| {
            reqwest::Client::builder()
                .no_proxy()
                .timeout(std::time::Duration::from_secs(10))
                .build()
                .expect("building a plain-HTTP reqwest client cannot fail")
        })
        .clone()
}
