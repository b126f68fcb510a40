//! Shared helpers of the file-router tests: tiny backends that answer with their version, a
//! real NGINX in a temp dir (stopped on drop), and a counting fake of the NGINX control.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use sluice_controller::router::nginx_file::{NginxControl, NginxFileSpec};

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An HTTP backend answering `version` to every request, on a free port; aborted on drop.
pub struct Backend {
    pub addr: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn backend(version: &'static str) -> Backend {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let app = axum::Router::new().fallback(move || async move { version });
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Backend { addr, task }
}

/// Counts calls; `test()` fails with `reject` when set.
#[derive(Default)]
pub struct FakeControl {
    pub tests: AtomicUsize,
    pub reloads: AtomicUsize,
    pub reject: Mutex<Option<String>>,
}

impl NginxControl for FakeControl {
    fn test(&self) -> BoxFuture<'_, Result<(), String>> {
        self.tests.fetch_add(1, Ordering::SeqCst);
        let r = self.reject.lock().unwrap().clone();
        Box::pin(async move { r.map_or(Ok(()), Err) })
    }
    fn reload(&self) -> BoxFuture<'_, Result<(), String>> {
        self.reloads.fetch_add(1, Ordering::SeqCst);
        Box::pin(async { Ok(()) })
    }
}

pub fn fake() -> Arc<FakeControl> {
    Arc::new(FakeControl::default())
}

/// A real NGINX master with `include upstream.conf;`, one worker; stopped on drop.
pub struct RealNginx {
    pub dir: tempfile::TempDir,
    pub port: u16,
    child: Child,
}

impl RealNginx {
    pub fn spec(&self) -> NginxFileSpec {
        let mut s = NginxFileSpec::new(self.conf(), self.dir.path().join("upstream.conf"));
        s.prefix = Some(self.dir.path().to_path_buf());
        s
    }
    pub fn conf(&self) -> PathBuf {
        self.dir.path().join("nginx.conf")
    }
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }
}

impl Drop for RealNginx {
    fn drop(&mut self) {
        // SIGQUIT via the pid file: the master takes its workers down with it.
        let _ = Command::new("nginx")
            .arg("-s")
            .arg("stop")
            .arg("-c")
            .arg(self.conf())
            .arg("-p")
            .arg(self.dir.path())
            .stderr(Stdio::null())
            .status();
        for _ in 0..50 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn nginx_available() -> bool {
    Command::new("nginx")
        .arg("-v")
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Start NGINX whose upstream file is already written by the caller via `initial`.
pub async fn start_nginx(initial: impl FnOnce(&Path)) -> RealNginx {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    for sub in ["logs", "tmp"] {
        std::fs::create_dir_all(p.join(sub)).unwrap();
    }
    let port = free_port();
    let conf = format!(
        r#"daemon off;
worker_processes 1;
pid nginx.pid;
error_log logs/error.log notice;
events {{ worker_connections 256; }}
http {{
    client_body_temp_path tmp/body; proxy_temp_path tmp/proxy; fastcgi_temp_path tmp/fastcgi;
    uwsgi_temp_path tmp/uwsgi; scgi_temp_path tmp/scgi;
    access_log off;
    include upstream.conf;
    server {{
        listen 127.0.0.1:{port};
        location / {{ proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_next_upstream off; }}
    }}
}}
"#
    );
    std::fs::write(p.join("nginx.conf"), conf).unwrap();
    initial(&p.join("upstream.conf"));
    let child = Command::new("nginx")
        .arg("-c")
        .arg(p.join("nginx.conf"))
        .arg("-p")
        .arg(p)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let me = RealNginx { dir, port, child };
    for _ in 0..200 {
        if get(&me.url()).await.is_ok() {
            return me;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "nginx did not start; see {}",
        me.dir.path().join("logs/error.log").display()
    );
}

/// GET `url` over a fresh HTTP/1.0 connection (no keepalive race during reloads); the body.
/// A raw client because reqwest panics in this test binary: a dev-dependency turns on its
/// `rustls-no-provider` feature.
pub async fn get(url: &str) -> std::io::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.trim_start_matches("http://");
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let mut s = tokio::net::TcpStream::connect(host).await?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").as_bytes())
        .await?;
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf))
        .await
        .map_err(|_| std::io::Error::other("timeout"))??;
    let text = String::from_utf8_lossy(&buf).into_owned();
    match text.split_once("\r\n\r\n") {
        Some((_, body)) => Ok(body.to_string()),
        None => Err(std::io::Error::other(format!("no HTTP response: {text:?}"))),
    }
}

/// Send `n` sequential requests; count bodies equal to "canary".
pub async fn canary_count(url: &str, n: usize) -> usize {
    let mut k = 0;
    for _ in 0..n {
        let body = get(url).await.unwrap();
        if body == "canary" {
            k += 1;
        }
    }
    k
}

/// Poll until `n` requests show exactly `want` canary answers (a reload takes ~20-110 ms).
pub async fn wait_for_split(url: &str, n: usize, want: usize) -> usize {
    let mut got = 0;
    for _ in 0..50 {
        got = canary_count(url, n).await;
        if got == want {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    got
}
