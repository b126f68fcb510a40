//! The file world's "workloads": two fixed backends. Readiness is a TCP connect (or an HTTP GET
//! of `healthPath`); what Kubernetes would do on promotion or scaling is a user hook.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::config::{BackendConfig, RolloutConfig};

const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
const HOOK_TIMEOUT: Duration = Duration::from_secs(60);

/// Whether the backend answers: HTTP status 200..=399 on `healthPath`, or a TCP connect.
/// The error says what failed, for the status message of a canary that is not ready.
pub async fn probe(b: &BackendConfig) -> Result<(), String> {
    tokio::time::timeout(PROBE_TIMEOUT, probe_inner(b))
        .await
        .unwrap_or_else(|_| {
            Err(format!(
                "no answer from {} within {}s",
                b.address,
                PROBE_TIMEOUT.as_secs()
            ))
        })
}

async fn probe_inner(b: &BackendConfig) -> Result<(), String> {
    let mut s = tokio::net::TcpStream::connect(&b.address)
        .await
        .map_err(|e| format!("cannot connect to {}: {e}", b.address))?;
    let Some(path) = &b.health_path else {
        return Ok(());
    };
    let req = format!(
        "GET {path} HTTP/1.0\r\nHost: {}\r\nUser-Agent: sluice\r\n\r\n",
        b.address
    );
    s.write_all(req.as_bytes())
        .await
        .map_err(|e| format!("cannot send GET {path} to {}: {e}", b.address))?;
    let mut head = [0u8; 16];
    let mut n = 0;
    while n < head.len() {
        match s.read(&mut head[n..]).await {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
    }
    // "HTTP/1.x NNN"
    let code = std::str::from_utf8(&head[..n])
        .ok()
        .and_then(|t| t.get(9..12))
        .and_then(|c| c.parse::<u16>().ok());
    match code {
        Some(c) if (200..400).contains(&c) => Ok(()),
        Some(c) => Err(format!("GET http://{}{path} answered {c}", b.address)),
        None => Err(format!(
            "GET http://{}{path} gave no HTTP answer",
            b.address
        )),
    }
}

/// Run a hook (argv, no shell). Empty hook: nothing to do.
pub async fn run_hook(
    argv: &[String],
    r: &RolloutConfig,
    revision: &str,
    extra: &[(&str, &str)],
) -> Result<(), String> {
    let Some((prog, args)) = argv.split_first() else {
        return Ok(());
    };
    let mut cmd = tokio::process::Command::new(prog);
    cmd.args(args)
        .env("SLUICE_ROLLOUT", &r.name)
        .env("SLUICE_REVISION", revision)
        .env("SLUICE_STABLE_ADDRESS", &r.stable.address)
        .env("SLUICE_CANARY_ADDRESS", &r.canary.address)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let out = tokio::time::timeout(HOOK_TIMEOUT, cmd.output())
        .await
        .map_err(|_| format!("hook {prog:?} timed out after {HOOK_TIMEOUT:?}"))?
        .map_err(|e| format!("cannot run hook {prog:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "hook {prog:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backend(addr: String, path: Option<&str>) -> BackendConfig {
        BackendConfig {
            address: addr,
            version: None,
            health_path: path.map(str::to_string),
        }
    }

    #[tokio::test]
    async fn probes_tcp_and_http() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                let mut buf = [0u8; 512];
                let n = s.read(&mut buf).await.unwrap_or(0);
                let req = String::from_utf8_lossy(&buf[..n]).to_string();
                let code = if req.starts_with("GET /ok ") {
                    200
                } else {
                    503
                };
                let _ = s
                    .write_all(format!("HTTP/1.1 {code} X\r\nContent-Length: 0\r\n\r\n").as_bytes())
                    .await;
            }
        });
        assert!(probe(&backend(addr.clone(), None)).await.is_ok());
        assert!(probe(&backend(addr.clone(), Some("/ok"))).await.is_ok());
        let e = probe(&backend(addr.clone(), Some("/bad")))
            .await
            .unwrap_err();
        assert_eq!(e, format!("GET http://{addr}/bad answered 503"));
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let dead = closed.local_addr().unwrap().to_string();
        drop(closed);
        let e = probe(&backend(dead.clone(), None)).await.unwrap_err();
        assert!(e.starts_with(&format!("cannot connect to {dead}: ")), "{e}");
    }
}
