//! A real NGINX on 127.0.0.1 splitting traffic between a stable and a canary backend
//! through `include upstream.conf` (upstream `app`), logging per-version lines for mtail.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tempfile::TempDir;

use crate::error::{io_err, Result, TestbedError};
use crate::paths::{free_port, require_tool};
use crate::process::{Proc, READY_TIMEOUT};

/// Name of the upstream block that `upstream.conf` must define.
pub const NGINX_UPSTREAM: &str = "app";

/// How long [`Nginx::reload`] waits after signalling, so new workers serve (TESTBED §7: ≤ 110 ms).
const RELOAD_SETTLE: Duration = Duration::from_millis(250);

/// `nginx.conf`: daemon off, 1 worker, temp paths and logs inside the prefix, a
/// `$upstream_version` map from the backend addresses, access-log format
/// `$msec $pid $upstream_version $status $request_time $upstream_addr` (for mtail),
/// `proxy_next_upstream off`, and stub_status on a second port.
pub fn nginx_config(port: u16, status_port: u16, stable_addr: &str, canary_addr: &str) -> String {
    format!(
        r#"daemon off;
master_process on;
worker_processes 1;
pid nginx.pid;
error_log logs/error.log notice;
events {{ worker_connections 1024; }}
http {{
    client_body_temp_path tmp/body;
    proxy_temp_path tmp/proxy;
    fastcgi_temp_path tmp/fastcgi;
    uwsgi_temp_path tmp/uwsgi;
    scgi_temp_path tmp/scgi;
    map $upstream_addr $upstream_version {{
        "{stable_addr}" stable;
        "{canary_addr}" canary;
        default other;
    }}
    log_format plain '$msec $pid $upstream_version $status $request_time $upstream_addr';
    access_log logs/access.log plain;
    include upstream.conf;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://{NGINX_UPSTREAM};
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_next_upstream off;
            add_header X-Upstream $upstream_addr always;
        }}
    }}
    server {{
        listen 127.0.0.1:{status_port};
        location = /stub_status {{ stub_status; }}
    }}
}}
"#
    )
}

/// `upstream.conf` text for a stable/canary split. Weight 0 marks the server `down`
/// (NGINX rejects `weight=0`); `max_fails=0` keeps a failing canary in rotation.
pub fn upstream_conf(
    stable_addr: &str,
    canary_addr: &str,
    stable_weight: u32,
    canary_weight: u32,
) -> String {
    let line = |addr: &str, w: u32| {
        if w == 0 {
            format!("    server {addr} down;\n")
        } else {
            format!("    server {addr} weight={w} max_fails=0;\n")
        }
    };
    format!(
        "upstream {NGINX_UPSTREAM} {{\n{}{}    keepalive 16;\n}}\n",
        line(stable_addr, stable_weight),
        line(canary_addr, canary_weight)
    )
}

/// A running NGINX master (stopped on drop with SIGTERM, which also ends its workers).
#[derive(Debug)]
pub struct Nginx {
    proc: Proc,
    bin: PathBuf,
    port: u16,
    status_port: u16,
    stable_addr: String,
    canary_addr: String,
    dir: TempDir,
}

impl Nginx {
    /// Starts NGINX proxying to `stable_addr` / `canary_addr` (`host:port`) at 100/0 and
    /// waits until stub_status answers.
    pub async fn start(stable_addr: &str, canary_addr: &str) -> Result<Nginx> {
        let bin = require_tool("nginx")?;
        let dir = tempfile::Builder::new()
            .prefix("sluice-nginx-")
            .tempdir()
            .map_err(io_err("creating NGINX temp dir"))?;
        let prefix = dir.path();
        for sub in ["logs", "tmp"] {
            std::fs::create_dir_all(prefix.join(sub))
                .map_err(io_err(format!("creating {sub} under {}", prefix.display())))?;
        }
        // As root the workers run as `nobody`: let them reach the temp paths.
        set_mode(prefix, 0o755)?;
        set_mode(&prefix.join("tmp"), 0o777)?;
        let port = free_port();
        let status_port = free_port();
        let conf = prefix.join("nginx.conf");
        std::fs::write(
            &conf,
            nginx_config(port, status_port, stable_addr, canary_addr),
        )
        .map_err(io_err(format!("writing {}", conf.display())))?;
        std::fs::write(
            prefix.join("upstream.conf"),
            upstream_conf(stable_addr, canary_addr, 100, 0),
        )
        .map_err(io_err("writing upstream.conf"))?;
        let mut cmd = Command::new(&bin);
        cmd.args(base_args(prefix)).current_dir(prefix);
        let mut proc = Proc::spawn("nginx", &mut cmd, &prefix.join("logs/stderr.log"))?;
        proc.add_log(&prefix.join("logs/error.log"));
        let mut me = Nginx {
            proc,
            bin,
            port,
            status_port,
            stable_addr: stable_addr.to_string(),
            canary_addr: canary_addr.to_string(),
            dir,
        };
        let ready = format!("http://127.0.0.1:{status_port}/stub_status");
        me.proc.wait_ready(&ready, READY_TIMEOUT).await?;
        Ok(me)
    }

    /// `http://127.0.0.1:PORT` (the proxy).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The proxy port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:STATUS_PORT/stub_status`.
    pub fn stub_status_url(&self) -> String {
        format!("http://127.0.0.1:{}/stub_status", self.status_port)
    }

    /// The prefix (`-p`) and config directory; holds nginx.conf, upstream.conf, logs/, tmp/.
    pub fn config_dir(&self) -> &Path {
        self.dir.path()
    }

    /// `nginx.conf`.
    pub fn conf_path(&self) -> PathBuf {
        self.dir.path().join("nginx.conf")
    }

    /// `upstream.conf`, included by nginx.conf; must define upstream [`NGINX_UPSTREAM`].
    pub fn upstream_conf_path(&self) -> PathBuf {
        self.dir.path().join("upstream.conf")
    }

    /// The master's pid file (`nginx.pid`).
    pub fn pid_file(&self) -> PathBuf {
        self.dir.path().join("nginx.pid")
    }

    /// The access log mtail reads.
    pub fn access_log(&self) -> PathBuf {
        self.dir.path().join("logs/access.log")
    }

    /// The error log.
    pub fn error_log(&self) -> PathBuf {
        self.dir.path().join("logs/error.log")
    }

    /// The `nginx` binary used.
    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// The master process guard.
    pub fn process(&self) -> &Proc {
        &self.proc
    }

    /// The command a router should run to reload: `nginx -s reload -c CONF -p PREFIX -e LOG`.
    pub fn reload_command(&self) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.args(base_args(self.dir.path())).args(["-s", "reload"]);
        cmd
    }

    /// Rewrites `upstream.conf` atomically for a stable/canary split (no reload).
    pub fn write_upstream(&self, stable_weight: u32, canary_weight: u32) -> Result<()> {
        let text = upstream_conf(
            &self.stable_addr,
            &self.canary_addr,
            stable_weight,
            canary_weight,
        );
        let tmp = self.dir.path().join(".upstream.conf.tmp");
        std::fs::write(&tmp, text).map_err(io_err("writing upstream.conf.tmp"))?;
        std::fs::rename(&tmp, self.upstream_conf_path()).map_err(io_err("renaming upstream.conf"))
    }

    /// `nginx -t`, then `nginx -s reload`, then waits 250 ms so new workers serve.
    pub async fn reload(&self) -> Result<()> {
        let mut test = Command::new(&self.bin);
        test.args(base_args(self.dir.path())).arg("-t");
        run(test).await?;
        run(self.reload_command()).await?;
        tokio::time::sleep(RELOAD_SETTLE).await;
        Ok(())
    }

    /// [`Nginx::write_upstream`] then [`Nginx::reload`].
    pub async fn set_weights(&self, stable_weight: u32, canary_weight: u32) -> Result<()> {
        self.write_upstream(stable_weight, canary_weight)?;
        self.reload().await
    }
}

fn base_args(prefix: &Path) -> Vec<String> {
    vec![
        "-c".into(),
        prefix.join("nginx.conf").display().to_string(),
        "-p".into(),
        format!("{}/", prefix.display()),
        "-e".into(),
        prefix.join("logs/error.log").display().to_string(),
    ]
}

async fn run(cmd: Command) -> Result<()> {
    let mut cmd = tokio::process::Command::from(cmd);
    let shown = format!("{:?}", cmd.as_std());
    let out = cmd
        .output()
        .await
        .map_err(io_err(format!("running {shown}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(TestbedError::Command {
            cmd: shown,
            output: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(io_err(format!("chmod {}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_marks_zero_weight_down() {
        let t = upstream_conf("127.0.0.1:1", "127.0.0.1:2", 100, 0);
        assert!(t.starts_with("upstream app {\n"));
        assert!(t.contains("server 127.0.0.1:1 weight=100 max_fails=0;"));
        assert!(t.contains("server 127.0.0.1:2 down;"));
        let t = upstream_conf("127.0.0.1:1", "127.0.0.1:2", 90, 10);
        assert!(t.contains("server 127.0.0.1:2 weight=10 max_fails=0;"));
    }

    #[test]
    fn config_maps_addresses_to_versions() {
        let c = nginx_config(10, 11, "127.0.0.1:1", "127.0.0.1:2");
        assert!(c.contains("\"127.0.0.1:1\" stable;"));
        assert!(c.contains("\"127.0.0.1:2\" canary;"));
        assert!(c.contains("listen 127.0.0.1:10;"));
        assert!(c.contains("proxy_next_upstream off;"));
        assert!(c.contains("include upstream.conf;"));
    }
}
