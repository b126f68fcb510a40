//! A real mtail tailing NGINX's access log, exporting per-version request counts and latency.

use std::path::Path;
use std::process::Command;

use tempfile::TempDir;

use crate::error::{io_err, Result};
use crate::paths::{free_port, require_tool};
use crate::process::{Proc, READY_TIMEOUT};

/// The mtail program for the NGINX log format of [`crate::nginx::nginx_config`]. Exports
/// `nginx_upstream_requests_total{version,code}` and the histogram
/// `nginx_upstream_request_duration_seconds{version}` (buckets 0.005..10).
pub const NGINX_MTAIL_PROGRAM: &str = r#"# nginx log_format plain '$msec $pid $upstream_version $status $request_time $upstream_addr';
counter nginx_upstream_requests_total by version, code
histogram nginx_upstream_request_duration_seconds by version buckets 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10

/^(?P<msec>\d+\.\d+) (?P<pid>\d+) (?P<version>\S+) (?P<code>\d{3}) (?P<rt>\d+\.\d+) (?P<up>\S+)$/ {
  nginx_upstream_requests_total[$version][$code]++
  nginx_upstream_request_duration_seconds[$version] = $rt
}
"#;

/// A running mtail (stopped on drop). It reads only lines appended after it started.
#[derive(Debug)]
pub struct Mtail {
    proc: Proc,
    port: u16,
    dir: TempDir,
}

impl Mtail {
    /// Starts mtail with [`NGINX_MTAIL_PROGRAM`] on `access_log` (e.g. `nginx.access_log()`),
    /// without the `prog` label, and waits for `/metrics`.
    pub async fn start(access_log: &Path) -> Result<Mtail> {
        Mtail::start_with_program(access_log, NGINX_MTAIL_PROGRAM).await
    }

    /// Like [`Mtail::start`] with another program text.
    pub async fn start_with_program(access_log: &Path, program: &str) -> Result<Mtail> {
        let bin = require_tool("mtail")?;
        let dir = tempfile::Builder::new()
            .prefix("sluice-mtail-")
            .tempdir()
            .map_err(io_err("creating mtail temp dir"))?;
        let progs = dir.path().join("progs");
        std::fs::create_dir_all(&progs).map_err(io_err("creating mtail progs dir"))?;
        std::fs::write(progs.join("nginx.mtail"), program)
            .map_err(io_err("writing nginx.mtail"))?;
        let port = free_port();
        let mut cmd = Command::new(bin);
        cmd.arg("--progs")
            .arg(&progs)
            .arg("--logs")
            .arg(access_log)
            .args(["--address", "127.0.0.1", "--port", &port.to_string()])
            .args(["--logtostderr", "--emit_prog_label=false"])
            .current_dir(dir.path());
        let mut proc = Proc::spawn("mtail", &mut cmd, &dir.path().join("mtail.log"))?;
        proc.wait_ready(&format!("http://127.0.0.1:{port}/metrics"), READY_TIMEOUT)
            .await?;
        Ok(Mtail { proc, port, dir })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:PORT/metrics`.
    pub fn metrics_url(&self) -> String {
        format!("{}/metrics", self.url())
    }

    /// `127.0.0.1:PORT`, for Prometheus scrape targets.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The temp dir with `progs/` and `mtail.log`.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The process guard.
    pub fn process(&self) -> &Proc {
        &self.proc
    }
}
