//! The `sluice-demo-app` binary as a test backend (stable or canary).

use std::process::Command;

use tempfile::TempDir;

use crate::error::{http_err, io_err, Result, TestbedError};
use crate::paths::{find_bin, free_port};
use crate::process::{Proc, READY_TIMEOUT};

/// Start options of a [`DemoApp`].
#[derive(Clone, Debug, PartialEq)]
pub struct DemoAppOptions {
    /// `X-Version` header and `version` metrics label, e.g. "stable" or "canary".
    pub version: String,
    /// Probability in [0, 1] that `/` answers 500.
    pub error_rate: f64,
    /// Base latency of `/` in ms.
    pub latency_ms: f64,
    /// Extra uniform latency in [0, jitter_ms] ms.
    pub jitter_ms: f64,
}

impl DemoAppOptions {
    /// `version` with no errors, 5 ms latency, no jitter.
    pub fn new(version: &str) -> Self {
        DemoAppOptions {
            version: version.to_string(),
            error_rate: 0.0,
            latency_ms: 5.0,
            jitter_ms: 0.0,
        }
    }
}

/// A running demo backend (stopped on drop).
#[derive(Debug)]
pub struct DemoApp {
    proc: Proc,
    port: u16,
    version: String,
    _dir: TempDir,
}

impl DemoApp {
    /// Starts `sluice-demo-app --version V --error-rate E --latency-ms L` and waits for `/healthz`.
    pub async fn start(version: &str, error_rate: f64, latency_ms: f64) -> Result<DemoApp> {
        DemoApp::start_with(DemoAppOptions {
            error_rate,
            latency_ms,
            ..DemoAppOptions::new(version)
        })
        .await
    }

    /// Starts with all options.
    pub async fn start_with(opts: DemoAppOptions) -> Result<DemoApp> {
        let bin = find_bin("sluice-demo-app")?;
        let dir = tempfile::Builder::new()
            .prefix("sluice-demo-")
            .tempdir()
            .map_err(io_err("creating demo-app temp dir"))?;
        let port = free_port();
        let mut cmd = Command::new(bin);
        cmd.args(["--port", &port.to_string(), "--version", &opts.version])
            .args(["--error-rate", &opts.error_rate.to_string()])
            .args(["--latency-ms", &opts.latency_ms.to_string()])
            .args(["--jitter-ms", &opts.jitter_ms.to_string()]);
        let name = format!("demo-app {}", opts.version);
        let mut proc = Proc::spawn(&name, &mut cmd, &dir.path().join("demo-app.log"))?;
        proc.wait_ready(&format!("http://127.0.0.1:{port}/healthz"), READY_TIMEOUT)
            .await?;
        Ok(DemoApp {
            proc,
            port,
            version: opts.version,
            _dir: dir,
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `127.0.0.1:PORT` (for NGINX upstreams and Prometheus targets).
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The version label.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The process guard (e.g. to check it still runs).
    pub fn process(&self) -> &Proc {
        &self.proc
    }

    /// Kills the app now (e.g. to simulate a crashed canary).
    pub fn kill(&mut self) {
        self.proc.stop();
    }

    /// Changes error rate and latency at run time (`POST /admin`).
    pub async fn set(&self, error_rate: f64, latency_ms: f64) -> Result<()> {
        self.admin(&[
            ("error_rate", error_rate.to_string()),
            ("latency_ms", latency_ms.to_string()),
        ])
        .await
    }

    /// Changes the jitter at run time.
    pub async fn set_jitter(&self, jitter_ms: f64) -> Result<()> {
        self.admin(&[("jitter_ms", jitter_ms.to_string())]).await
    }

    async fn admin(&self, params: &[(&str, String)]) -> Result<()> {
        let url = format!("{}/admin", self.url());
        let r = crate::http_client()
            .post(&url)
            .query(params)
            .send()
            .await
            .map_err(http_err(&url))?;
        if r.status().is_success() {
            Ok(())
        } else {
            let status = r.status();
            Err(TestbedError::BadResponse {
                url,
                detail: format!("HTTP {status}: {}", r.text().await.unwrap_or_default()),
            })
        }
    }
}
