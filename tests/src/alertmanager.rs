//! A real Alertmanager on 127.0.0.1 with one webhook receiver.

use std::path::Path;
use std::process::Command;

use serde_json::{json, Map, Value};
use tempfile::TempDir;

use crate::error::{http_err, io_err, Result, TestbedError};
use crate::paths::{free_port, require_tool};
use crate::process::{Proc, READY_TIMEOUT};

/// `alertmanager.yml`: every alert group goes to one webhook right away
/// (group_wait 0s, group_interval 1s, send_resolved), with an optional bearer token.
pub fn alertmanager_config(webhook_url: &str, bearer_token: Option<&str>) -> String {
    let q = |s: &str| Value::from(s).to_string();
    let mut out = format!(
        "route:\n  receiver: webhook\n  group_by: ['...']\n  group_wait: 0s\n  group_interval: 1s\n  repeat_interval: 1h\n\
         receivers:\n  - name: webhook\n    webhook_configs:\n      - url: {}\n        send_resolved: true\n",
        q(webhook_url)
    );
    if let Some(t) = bearer_token {
        out.push_str(&format!(
            "        http_config:\n          authorization:\n            type: Bearer\n            credentials: {}\n",
            q(t)
        ));
    }
    out
}

/// A running Alertmanager (stopped on drop). Gossip is off.
#[derive(Debug)]
pub struct Alertmanager {
    proc: Proc,
    port: u16,
    dir: TempDir,
}

fn label_map(pairs: &[(&str, &str)]) -> Map<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), Value::from(*v)))
        .collect()
}

impl Alertmanager {
    /// Starts Alertmanager sending every alert to `webhook_url` (with
    /// `Authorization: Bearer <token>` when given) and waits for `/-/ready`.
    pub async fn start(webhook_url: &str, bearer_token: Option<&str>) -> Result<Alertmanager> {
        let bin = require_tool("prometheus-alertmanager")?;
        let dir = tempfile::Builder::new()
            .prefix("sluice-am-")
            .tempdir()
            .map_err(io_err("creating Alertmanager temp dir"))?;
        let config = dir.path().join("alertmanager.yml");
        std::fs::write(&config, alertmanager_config(webhook_url, bearer_token))
            .map_err(io_err(format!("writing {}", config.display())))?;
        let port = free_port();
        let mut cmd = Command::new(bin);
        cmd.arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .current_dir(dir.path());
        let mut proc = Proc::spawn(
            "alertmanager",
            &mut cmd,
            &dir.path().join("alertmanager.log"),
        )?;
        proc.wait_ready(&format!("http://127.0.0.1:{port}/-/ready"), READY_TIMEOUT)
            .await?;
        Ok(Alertmanager { proc, port, dir })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `127.0.0.1:PORT`, for Prometheus' `alerting` section.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The listening port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The temp dir with `alertmanager.yml` and `alertmanager.log`.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The process guard.
    pub fn process(&self) -> &Proc {
        &self.proc
    }

    /// Fires an alert by hand (`POST /api/v2/alerts`). The webhook follows within ~20 ms.
    pub async fn post_alert(
        &self,
        labels: &[(&str, &str)],
        annotations: &[(&str, &str)],
    ) -> Result<()> {
        let alert = json!([{
            "labels": label_map(labels),
            "annotations": label_map(annotations),
            "generatorURL": format!("{}/testbed", self.url()),
        }]);
        self.post(alert).await
    }

    /// Resolves the alert with these labels (posts it with `endsAt` = now). The resolved
    /// webhook follows at the next group_interval tick (≤ 1 s).
    pub async fn resolve_alert(&self, labels: &[(&str, &str)]) -> Result<()> {
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let alert = json!([{ "labels": label_map(labels), "endsAt": now }]);
        self.post(alert).await
    }

    async fn post(&self, body: Value) -> Result<()> {
        let url = format!("{}/api/v2/alerts", self.url());
        let r = crate::http_client()
            .post(&url)
            .json(&body)
            .send()
            .await
            .map_err(http_err(&url))?;
        if !r.status().is_success() {
            let status = r.status();
            let text = r.text().await.unwrap_or_default();
            return Err(TestbedError::BadResponse {
                url,
                detail: format!("HTTP {status}: {text}"),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_has_receiver_and_optional_token() {
        let c = alertmanager_config("http://127.0.0.1:1/hook", Some("s3cret"));
        assert!(c.contains(r#"url: "http://127.0.0.1:1/hook""#));
        assert!(c.contains("send_resolved: true"));
        assert!(c.contains(r#"credentials: "s3cret""#));
        assert!(c.contains("group_wait: 0s"));
        let plain = alertmanager_config("http://127.0.0.1:1/hook", None);
        assert!(!plain.contains("authorization"));
    }
}
