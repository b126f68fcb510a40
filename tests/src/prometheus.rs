//! A real Prometheus on 127.0.0.1 with a generated config in a temp dir.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

use crate::error::{http_err, io_err, Result, TestbedError};
use crate::paths::{free_port, require_tool};
use crate::process::{Proc, READY_TIMEOUT};

/// One scrape job: a job name, `host:port` targets and an optional metrics path.
#[derive(Clone, Debug, PartialEq)]
pub struct ScrapeJob {
    pub job: String,
    pub targets: Vec<String>,
    /// Defaults to `/metrics`.
    pub metrics_path: Option<String>,
}

/// Builder for [`Prometheus`]; see [`Prometheus::builder`].
#[derive(Clone, Debug, Default)]
pub struct PrometheusBuilder {
    jobs: Vec<ScrapeJob>,
    rules: Option<String>,
    alertmanager: Option<String>,
    backfill: Option<String>,
}

impl PrometheusBuilder {
    /// Adds a scrape job for `targets` (`host:port`, e.g. `app.addr()`).
    pub fn scrape<S: Into<String>>(
        mut self,
        job: &str,
        targets: impl IntoIterator<Item = S>,
    ) -> Self {
        self.jobs.push(ScrapeJob {
            job: job.to_string(),
            targets: targets.into_iter().map(Into::into).collect(),
            metrics_path: None,
        });
        self
    }

    /// Adds a scrape job with a metrics path other than `/metrics`.
    pub fn scrape_path<S: Into<String>>(
        mut self,
        job: &str,
        metrics_path: &str,
        targets: impl IntoIterator<Item = S>,
    ) -> Self {
        self.jobs.push(ScrapeJob {
            job: job.to_string(),
            targets: targets.into_iter().map(Into::into).collect(),
            metrics_path: Some(metrics_path.to_string()),
        });
        self
    }

    /// Content of the rule file (`groups: ...` YAML). Rules are evaluated every 1 s.
    pub fn rules(mut self, yaml: &str) -> Self {
        self.rules = Some(yaml.to_string());
        self
    }

    /// Sends alerts to this Alertmanager (`host:port`, e.g. `am.addr()`).
    pub fn alertmanager(mut self, addr: &str) -> Self {
        self.alertmanager = Some(addr.to_string());
        self
    }

    /// OpenMetrics text (see [`openmetrics`]) to load into the TSDB before the start, with
    /// `promtool tsdb create-blocks-from openmetrics` (Prometheus' backfill,
    /// docs/storage.md "Backfilling from OpenMetrics format").
    pub fn backfill(mut self, openmetrics: String) -> Self {
        self.backfill = Some(openmetrics);
        self
    }

    /// Writes the config, starts Prometheus and waits for `/-/ready`.
    pub async fn start(self) -> Result<Prometheus> {
        let bin = require_tool("prometheus")?;
        let dir = tempfile::Builder::new()
            .prefix("sluice-prom-")
            .tempdir()
            .map_err(io_err("creating Prometheus temp dir"))?;
        let config = dir.path().join("prometheus.yml");
        let rules = dir.path().join("rules.yml");
        write(
            &config,
            &prometheus_config(&self.jobs, self.alertmanager.as_deref()),
        )?;
        write(&rules, self.rules.as_deref().unwrap_or("groups: []\n"))?;
        if let Some(text) = &self.backfill {
            let promtool = require_tool("promtool")?;
            let file = dir.path().join("backfill.om");
            write(&file, text)?;
            let data = dir.path().join("data");
            let out = Command::new(&promtool)
                .args(["tsdb", "create-blocks-from", "openmetrics"])
                .arg(&file)
                .arg(&data)
                .output()
                .map_err(io_err("running promtool"))?;
            if !out.status.success() {
                return Err(TestbedError::Command {
                    cmd: format!(
                        "promtool tsdb create-blocks-from openmetrics {}",
                        file.display()
                    ),
                    output: format!(
                        "{}{}",
                        String::from_utf8_lossy(&out.stdout),
                        String::from_utf8_lossy(&out.stderr)
                    ),
                });
            }
        }
        let port = free_port();
        let mut proc = spawn(&bin, &config, dir.path(), port, "prometheus.log")?;
        let url = format!("http://127.0.0.1:{port}");
        proc.wait_ready(&format!("{url}/-/ready"), READY_TIMEOUT)
            .await?;
        let prom = Prometheus {
            proc,
            port,
            config,
            rules,
            dir,
        };
        if self.alertmanager.is_some() {
            // Service discovery hands the Alertmanager over only after ~5 s; alerts before that are dropped.
            prom.wait_alertmanager_discovered(READY_TIMEOUT).await?;
        }
        Ok(prom)
    }
}

/// Prometheus on `port` with this config, its data under `dir/data`.
fn spawn(bin: &Path, config: &Path, dir: &Path, port: u16, log: &str) -> Result<Proc> {
    let mut cmd = Command::new(bin);
    cmd.arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--web.enable-lifecycle")
        // Default 1m: an alert that fired before Alertmanager was discovered would wait that long.
        .arg("--rules.alert.resend-delay=1s")
        .current_dir(dir);
    Proc::spawn("prometheus", &mut cmd, &dir.join(log))
}

/// One series for [`openmetrics`]: labels (with `__name__`) and `(unix ms, value)` samples.
pub type Series = (BTreeMap<String, String>, Vec<(i64, f64)>);

/// OpenMetrics text of counter series `(labels with __name__, [(unix ms, value)])`, one family
/// per metric name (families must be contiguous; OpenMetrics timestamps are in seconds), typed
/// `unknown` so that names without `_total` are accepted, ending with `# EOF`.
pub fn openmetrics(series: &[Series]) -> String {
    let mut by_name: BTreeMap<&str, Vec<&Series>> = BTreeMap::new();
    for s in series {
        let name = s.0.get("__name__").map_or("", String::as_str);
        by_name.entry(name).or_default().push(s);
    }
    let esc = |v: &str| {
        v.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n")
    };
    let mut out = String::new();
    for (name, list) in by_name {
        out.push_str(&format!("# TYPE {name} unknown\n"));
        for (labels, samples) in list {
            let l: Vec<String> = labels
                .iter()
                .filter(|(k, _)| k.as_str() != "__name__")
                .map(|(k, v)| format!("{k}=\"{}\"", esc(v)))
                .collect();
            for (t, v) in samples {
                out.push_str(&format!(
                    "{name}{{{}}} {v} {}.{:03}\n",
                    l.join(","),
                    t.div_euclid(1000),
                    t.rem_euclid(1000)
                ));
            }
        }
    }
    out.push_str("# EOF\n");
    out
}

/// The `prometheus.yml` text: 1 s scrape and evaluation, rules from `rules.yml`.
pub fn prometheus_config(jobs: &[ScrapeJob], alertmanager: Option<&str>) -> String {
    let q = |s: &str| serde_json::Value::from(s).to_string();
    let mut out = String::from(
        "global: { scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s }\n\
         rule_files: [ rules.yml ]\n",
    );
    if let Some(am) = alertmanager {
        out.push_str(&format!(
            "alerting:\n  alertmanagers: [ {{ static_configs: [ {{ targets: [ {} ] }} ] }} ]\n",
            q(am)
        ));
    }
    out.push_str(if jobs.is_empty() {
        "scrape_configs: []\n"
    } else {
        "scrape_configs:\n"
    });
    for j in jobs {
        let targets: Vec<String> = j.targets.iter().map(|t| q(t)).collect();
        out.push_str(&format!("  - job_name: {}\n", q(&j.job)));
        if let Some(p) = &j.metrics_path {
            out.push_str(&format!("    metrics_path: {}\n", q(p)));
        }
        out.push_str(&format!(
            "    static_configs: [ {{ targets: [ {} ] }} ]\n",
            targets.join(", ")
        ));
    }
    out
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(io_err(format!("writing {}", path.display())))
}

/// A running Prometheus (stopped on drop). Scrape and evaluation interval 1 s.
#[derive(Debug)]
pub struct Prometheus {
    proc: Proc,
    port: u16,
    config: PathBuf,
    rules: PathBuf,
    dir: TempDir,
}

impl Prometheus {
    /// Starts configuring a Prometheus.
    pub fn builder() -> PrometheusBuilder {
        PrometheusBuilder::default()
    }

    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `127.0.0.1:PORT`, for scrape targets.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The listening port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The config file.
    pub fn config_path(&self) -> &Path {
        &self.config
    }

    /// The rule file (`rules.yml` next to the config).
    pub fn rules_path(&self) -> &Path {
        &self.rules
    }

    /// The temp dir holding config, rules, data and `prometheus.log`.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Stops Prometheus, leaves it down for `outage`, and starts it again on the same port with
    /// the same config and data (an outage as clients see it: connection refused).
    pub async fn restart_after(&mut self, outage: Duration) -> Result<()> {
        self.proc.stop();
        tokio::time::sleep(outage).await;
        let bin = require_tool("prometheus")?;
        let mut proc = spawn(
            &bin,
            &self.config,
            self.dir.path(),
            self.port,
            "prometheus-2.log",
        )?;
        proc.wait_ready(&format!("{}/-/ready", self.url()), READY_TIMEOUT)
            .await?;
        self.proc = proc;
        Ok(())
    }

    /// The process guard (pid, log tail).
    pub fn process(&self) -> &Proc {
        &self.proc
    }

    /// Waits until Prometheus' notifier knows an Alertmanager
    /// (`prometheus_notifications_alertmanagers_discovered` >= 1; about 5 s after start).
    pub async fn wait_alertmanager_discovered(&self, timeout: Duration) -> Result<()> {
        let url = format!("{}/metrics", self.url());
        let start = Instant::now();
        loop {
            let last = match crate::http_client().get(&url).send().await {
                Ok(r) => {
                    let text = r.text().await.unwrap_or_default();
                    let n =
                        metric_value(&text, "prometheus_notifications_alertmanagers_discovered");
                    if n.is_some_and(|n| n >= 1.0) {
                        return Ok(());
                    }
                    format!("discovered = {n:?}")
                }
                Err(e) => e.to_string(),
            };
            if start.elapsed() > timeout {
                return Err(TestbedError::Timeout {
                    what: "Prometheus to discover its Alertmanager".into(),
                    waited: start.elapsed(),
                    last,
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Replaces the rule file and reloads (`POST /-/reload`).
    pub async fn set_rules(&self, yaml: &str) -> Result<()> {
        write(&self.rules, yaml)?;
        self.reload().await
    }

    /// `POST /-/reload`.
    pub async fn reload(&self) -> Result<()> {
        let url = format!("{}/-/reload", self.url());
        let r = crate::http_client()
            .post(&url)
            .send()
            .await
            .map_err(http_err(&url))?;
        if !r.status().is_success() {
            let status = r.status();
            let body = r.text().await.unwrap_or_default();
            return Err(TestbedError::BadResponse {
                url,
                detail: format!("HTTP {status}: {body}"),
            });
        }
        Ok(())
    }

    /// Instant query; returns the whole JSON answer (`{"status":"success","data":{...}}`).
    /// An HTTP error status or `"status":"error"` is an error.
    pub async fn query(&self, promql: &str) -> Result<Value> {
        let url = format!("{}/api/v1/query", self.url());
        let r = crate::http_client()
            .get(&url)
            .query(&[("query", promql)])
            .send()
            .await
            .map_err(http_err(&url))?;
        let status = r.status();
        let body: Value = r.json().await.map_err(http_err(&url))?;
        if !status.is_success() || body["status"] != "success" {
            return Err(TestbedError::BadResponse {
                url,
                detail: format!("query {promql:?}: HTTP {status}: {body}"),
            });
        }
        Ok(body)
    }

    /// Instant query returning `(labels, value)` per vector element (or one element with
    /// empty labels for a scalar). Values are parsed from Prometheus' strings (NaN allowed).
    pub async fn query_values(&self, promql: &str) -> Result<Vec<(Value, f64)>> {
        let body = self.query(promql).await?;
        Ok(parse_values(&body))
    }

    /// Polls `promql` every 250 ms until its result is non-empty (and, for a single
    /// sample, not NaN); returns `data.result`. Errors with the last answer on timeout.
    pub async fn wait_for_series(&self, promql: &str, timeout: Duration) -> Result<Value> {
        self.wait_until(promql, timeout, |v| !v.is_empty()).await
    }

    /// Polls `promql` every 250 ms until `pred` holds on the parsed values; returns `data.result`.
    pub async fn wait_until(
        &self,
        promql: &str,
        timeout: Duration,
        pred: impl Fn(&[(Value, f64)]) -> bool,
    ) -> Result<Value> {
        let start = Instant::now();
        loop {
            let last = match self.query(promql).await {
                Ok(body) => {
                    let vals = parse_values(&body);
                    let no_nan: Vec<(Value, f64)> =
                        vals.into_iter().filter(|(_, v)| !v.is_nan()).collect();
                    if pred(&no_nan) {
                        return Ok(body["data"]["result"].clone());
                    }
                    body["data"].to_string()
                }
                Err(e) => e.to_string(),
            };
            if start.elapsed() > timeout {
                return Err(TestbedError::Timeout {
                    what: format!("Prometheus query {promql:?}"),
                    waited: start.elapsed(),
                    last,
                });
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

/// The value of an unlabelled sample `name` in Prometheus text format.
fn metric_value(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .find_map(|v| v.trim().parse().ok())
}

/// `(metric labels, value)` pairs of a query answer; a scalar gives one pair with `{}`.
pub fn parse_values(body: &Value) -> Vec<(Value, f64)> {
    let data = &body["data"];
    let num = |v: &Value| v.as_str().and_then(|s| s.parse::<f64>().ok());
    match data["resultType"].as_str() {
        Some("vector") => data["result"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| Some((e["metric"].clone(), num(&e["value"][1])?)))
                    .collect()
            })
            .unwrap_or_default(),
        Some("scalar") => num(&data["result"][1])
            .map(|v| vec![(Value::Object(Default::default()), v)])
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_lists_jobs_and_alertmanager() {
        let jobs = vec![
            ScrapeJob {
                job: "apps".into(),
                targets: vec!["127.0.0.1:1".into(), "127.0.0.1:2".into()],
                metrics_path: None,
            },
            ScrapeJob {
                job: "x".into(),
                targets: vec!["127.0.0.1:3".into()],
                metrics_path: Some("/m".into()),
            },
        ];
        let c = prometheus_config(&jobs, Some("127.0.0.1:9"));
        assert!(c.contains(r#"- job_name: "apps""#));
        assert!(c.contains(r#"targets: [ "127.0.0.1:1", "127.0.0.1:2" ]"#));
        assert!(c.contains(r#"metrics_path: "/m""#));
        assert!(c.contains(r#"targets: [ "127.0.0.1:9" ]"#));
        let empty = prometheus_config(&[], None);
        assert!(empty.contains("scrape_configs: []"));
        assert!(!empty.contains("alerting"));
    }

    #[test]
    fn reads_unlabelled_metric() {
        let t = "# HELP x\nfoo_total{a=\"b\"} 3\nfoo 2\nfoo_bar 5\n";
        assert_eq!(metric_value(t, "foo"), Some(2.0));
        assert_eq!(metric_value(t, "missing"), None);
    }

    #[test]
    fn parses_vector_scalar_and_nan() {
        let v: Value = serde_json::from_str(
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"version":"canary"},"value":[1.5,"0.25"]},{"metric":{},"value":[1.5,"NaN"]}]}}"#,
        )
        .unwrap();
        let p = parse_values(&v);
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].0["version"], "canary");
        assert_eq!(p[0].1, 0.25);
        assert!(p[1].1.is_nan());
        let s: Value = serde_json::from_str(
            r#"{"status":"success","data":{"resultType":"scalar","result":[1.5,"3"]}}"#,
        )
        .unwrap();
        assert_eq!(parse_values(&s)[0].1, 3.0);
    }
}
