//! End-to-end bed for `sluice run`: two demo-app backends, a real NGINX whose upstream file
//! Sluice owns, mtail on NGINX's access log, Prometheus (1 s scrape), optionally Alertmanager,
//! the `sluice` binary, and an open-loop load generator (new connection per request, so NGINX
//! reloads cannot cause keepalive races: TESTBED §7). Everything on free 127.0.0.1 ports and
//! stopped on drop.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use sluice_tests::{
    find_bin, free_port, http_client, Alertmanager, DemoApp, LoadGen, LoadGenOptions, Mtail, Nginx,
    Proc, Prometheus,
};

pub const TOKEN: &str = "e2e-token";

/// Canary steps with an analysis gate at 20% and 50%.
pub const ANALYSED_STEPS: &str = "
          - setWeight: 20
          - analysis: {}
          - setWeight: 50
          - analysis: {}";

/// Success-rate threshold on the canary arm (mtail series), runs every 2 s over 5 s windows.
pub const SUCCESS_RATE_ANALYSIS: &str = "
    analysis:
      interval: 2s
      failureLimit: 0
      inconclusiveLimit: 10
      metrics:
        - name: success-rate
          builtin: nginx-success-rate
          threshold: { min: 0.95 }";

/// Fires when more than 5% of the canary's requests fail (labels name the rollout).
pub const CANARY_ALERT_RULE: &str = r#"groups:
  - name: canary
    rules:
      - alert: CanaryHighErrorRate
        expr: sum(rate(nginx_upstream_requests_total{version="canary",code=~"5.."}[5s])) / sum(rate(nginx_upstream_requests_total{version="canary"}[5s])) > 0.05
        labels: { rollout: web, namespace: standalone, severity: critical }
"#;

pub struct BedOptions {
    pub canary_error_rate: f64,
    pub steps: &'static str,
    pub analysis: &'static str,
    pub alerting: bool,
    pub load_rate: f64,
    /// Extra top-level lines of the rollouts file (e.g. `readToken: ...`).
    pub extra_config: &'static str,
    /// Extra lines of the rollout, indented 4 spaces (e.g. a `gates:` section).
    pub extra_rollout: String,
    /// Prometheus also scrapes Sluice's own /metrics (the built-in load's counters).
    pub scrape_sluice: bool,
}

impl Default for BedOptions {
    fn default() -> Self {
        BedOptions {
            canary_error_rate: 0.0,
            steps: ANALYSED_STEPS,
            analysis: SUCCESS_RATE_ANALYSIS,
            alerting: false,
            load_rate: 100.0,
            extra_config: "",
            extra_rollout: String::new(),
            scrape_sluice: false,
        }
    }
}

pub struct Bed {
    // Drop order: load first, then sluice, then the rest.
    pub load: Option<LoadGen>,
    pub sluice: Option<Proc>,
    pub prom: Prometheus,
    pub am: Option<Alertmanager>,
    pub mtail: Mtail,
    pub nginx: Nginx,
    pub canary: DemoApp,
    pub stable: DemoApp,
    pub port: u16,
    pub opts: BedOptions,
    pub dir: tempfile::TempDir,
}

impl Bed {
    pub async fn start(opts: BedOptions) -> Bed {
        let stable = DemoApp::start("stable", 0.0, 5.0).await.unwrap();
        let canary = DemoApp::start("canary", opts.canary_error_rate, 5.0)
            .await
            .unwrap();
        let nginx = Nginx::start(&stable.addr(), &canary.addr()).await.unwrap();
        let mtail = Mtail::start(&nginx.access_log()).await.unwrap();
        let port = free_port();
        let am = if opts.alerting {
            let hook = format!("http://127.0.0.1:{port}/webhooks/alertmanager");
            Some(Alertmanager::start(&hook, Some(TOKEN)).await.unwrap())
        } else {
            None
        };
        let mut pb = Prometheus::builder().scrape("mtail", [mtail.addr()]);
        if opts.scrape_sluice {
            pb = pb.scrape("sluice", [format!("127.0.0.1:{port}")]);
        }
        if let Some(am) = &am {
            pb = pb.alertmanager(&am.addr()).rules(CANARY_ALERT_RULE);
        }
        let prom = pb.start().await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let bed = Bed {
            load: None,
            sluice: None,
            prom,
            am,
            mtail,
            nginx,
            canary,
            stable,
            port,
            opts,
            dir,
        };
        bed.write_file("v1");
        bed
    }

    pub fn file(&self) -> PathBuf {
        self.dir.path().join("rollouts.yaml")
    }

    pub fn state_file(&self) -> PathBuf {
        self.dir.path().join("state.json")
    }

    pub fn api(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// (Re)write the rollouts file with this canary version.
    pub fn write_file(&self, canary_version: &str) {
        let n = &self.nginx;
        let text = format!(
            r#"prometheus: {prom}
apiToken: {TOKEN}
{extra}rollouts:
  - name: web
    stable: {{ address: "{stable}", version: v1 }}
    canary: {{ address: "{canary}", version: {canary_version} }}
    router:
      nginx:
        conf: {conf}
        prefix: {prefix}
        upstreamFile: {upstream}
        upstream: app
        nginxBin: {bin}
    strategy:
      canary:
        steps:{steps}{analysis}
    queryWindow: 5s
    progressDeadlineSeconds: 60
{extra_rollout}"#,
            prom = self.prom.url(),
            stable = self.stable.addr(),
            canary = self.canary.addr(),
            conf = n.conf_path().display(),
            prefix = n.config_dir().display(),
            upstream = n.upstream_conf_path().display(),
            bin = n.bin().display(),
            steps = self.opts.steps,
            analysis = self.opts.analysis,
            extra = self.opts.extra_config,
            extra_rollout = self.opts.extra_rollout,
        );
        // Atomic, so Sluice never reads half a file.
        let tmp = self.dir.path().join(".rollouts.yaml.tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, self.file()).unwrap();
    }

    /// Start `sluice run` and wait for /healthz.
    pub async fn start_sluice(&mut self) {
        let bin = find_bin("sluice").unwrap();
        let log = self.dir.path().join(format!(
            "sluice-{}.log",
            chrono::Utc::now().timestamp_millis()
        ));
        let mut cmd = Command::new(bin);
        cmd.arg("run")
            .arg("-f")
            .arg(self.file())
            .arg("--state")
            .arg(self.state_file())
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", self.port))
            .arg("--poll-ms")
            .arg("500")
            .env("RUST_LOG", "info");
        let mut p = Proc::spawn("sluice", &mut cmd, &log).unwrap();
        p.wait_ready(&format!("{}/healthz", self.api()), Duration::from_secs(30))
            .await
            .unwrap();
        self.sluice = Some(p);
    }

    pub fn start_load(&mut self) {
        let mut o = LoadGenOptions::new(&self.nginx.url(), self.opts.load_rate);
        o.new_connection_per_request = true;
        self.load = Some(LoadGen::start_with(o));
    }

    /// The rollout's saved state (`rollouts.web`), if the state file exists.
    pub fn state(&self) -> Option<Value> {
        let text = std::fs::read_to_string(self.state_file()).ok()?;
        let v: Value = serde_json::from_str(&text).ok()?;
        v.pointer("/rollouts/web").cloned()
    }

    pub fn phase(&self) -> String {
        self.state()
            .and_then(|s| {
                s.pointer("/status/phase")
                    .and_then(Value::as_str)
                    .map(String::from)
            })
            .unwrap_or_default()
    }

    pub fn sluice_log(&self) -> String {
        self.sluice
            .as_ref()
            .map(|p| p.log_tail(40))
            .unwrap_or_default()
    }

    /// Poll the state file until `ok` holds; panics with the state and Sluice's log on timeout.
    pub async fn wait_state(
        &self,
        what: &str,
        timeout: Duration,
        ok: impl Fn(&Value) -> bool,
    ) -> Value {
        let t0 = Instant::now();
        loop {
            if let Some(s) = self.state() {
                if ok(&s) {
                    return s;
                }
            }
            if t0.elapsed() > timeout {
                panic!(
                    "timed out after {timeout:?} waiting for {what}\nstate: {}\nsluice log:\n{}",
                    self.state().map(|s| s.to_string()).unwrap_or_default(),
                    self.sluice_log()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The canary weight NGINX is configured with (from the upstream file).
    pub fn upstream_text(&self) -> String {
        std::fs::read_to_string(self.nginx.upstream_conf_path()).unwrap_or_default()
    }

    /// GET an API path with the token; the JSON body.
    pub async fn api_get(&self, path: &str) -> Value {
        http_client()
            .get(format!("{}{path}", self.api()))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Start Sluice, wait until it initialized (Idle on v1) and the load shows in Prometheus.
    pub async fn ready_for_rollout(&mut self) {
        self.start_sluice().await;
        self.wait_state("initialization", Duration::from_secs(30), |s| {
            phase_is(s, "Idle")
        })
        .await;
        self.start_load();
        self.prom
            .wait_for_series(
                r#"nginx_upstream_requests_total{version="stable"}"#,
                Duration::from_secs(20),
            )
            .await
            .unwrap();
    }
}

pub fn phase_is(s: &Value, phase: &str) -> bool {
    s.pointer("/status/phase").and_then(Value::as_str) == Some(phase)
}

pub fn weight(s: &Value) -> i64 {
    s.pointer("/status/canaryWeight")
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

pub fn step(s: &Value) -> i64 {
    s.pointer("/status/currentStep")
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

pub fn path_str(p: &Path) -> String {
    p.display().to_string()
}
