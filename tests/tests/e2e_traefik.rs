//! End to end, standalone mode with the Traefik file provider: Sluice writes the weighted
//! service into Traefik's watched directory, Prometheus scrapes Traefik's own per-service
//! metrics (`service="canary@file"`), and a faulty canary is rolled back.

#[path = "e2e_support/mod.rs"]
mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use sluice_tests::{
    find_bin, free_port, DemoApp, LoadGen, LoadGenOptions, Proc, Prometheus, Traefik,
};
use support::{phase_is, weight, TOKEN};

fn state(path: &std::path::Path) -> Option<Value> {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    v.pointer("/rollouts/web").cloned()
}

async fn wait(
    path: &std::path::Path,
    sluice: &Proc,
    what: &str,
    ok: impl Fn(&Value) -> bool,
) -> Value {
    let t0 = Instant::now();
    loop {
        if let Some(s) = state(path).filter(|s| ok(s)) {
            return s;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}: {:?}\n{}",
            state(path),
            sluice.log_tail(40)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn faulty_canary_behind_traefik_is_rolled_back() {
    let stable = DemoApp::start("stable", 0.0, 5.0).await.unwrap();
    let canary = DemoApp::start("canary", 0.5, 5.0).await.unwrap();
    let traefik = Traefik::start().await.unwrap();
    let prom = Prometheus::builder()
        .scrape("traefik", [traefik.metrics_addr()])
        .start()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (file, state_file) = (
        dir.path().join("rollouts.yaml"),
        dir.path().join("state.json"),
    );
    let dyn_file = traefik.dyn_dir().join("app.yml");
    let write = |version: &str| {
        let text = format!(
            r#"prometheus: {prom}
apiToken: {TOKEN}
rollouts:
  - name: web
    stable: {{ address: "{s}", version: v1 }}
    canary: {{ address: "{c}", version: {version} }}
    router:
      traefik:
        file: {dyn_file}
        rule: "PathPrefix(`/`)"
        entryPoints: [web]
    strategy:
      canary:
        steps:
          - setWeight: 30
          - analysis: {{}}
          - setWeight: 60
          - analysis: {{}}
    analysis:
      interval: 2s
      inconclusiveLimit: 10
      metrics:
        - name: success-rate
          builtin: traefik-success-rate
          threshold: {{ min: 0.95 }}
    queryWindow: 5s
"#,
            prom = prom.url(),
            s = stable.addr(),
            c = canary.addr(),
            dyn_file = dyn_file.display(),
        );
        std::fs::write(dir.path().join(".tmp"), text).unwrap();
        std::fs::rename(dir.path().join(".tmp"), &file).unwrap();
    };
    write("v1");
    let port = free_port();
    let mut cmd = Command::new(find_bin("sluice").unwrap());
    cmd.arg("run")
        .arg("-f")
        .arg(&file)
        .arg("--state")
        .arg(&state_file)
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--poll-ms")
        .arg("500");
    let mut sluice = Proc::spawn("sluice", &mut cmd, &dir.path().join("sluice.log")).unwrap();
    sluice
        .wait_ready(
            &format!("http://127.0.0.1:{port}/healthz"),
            Duration::from_secs(30),
        )
        .await
        .unwrap();
    wait(&state_file, &sluice, "initialization", |s| {
        phase_is(s, "Idle")
    })
    .await;
    traefik
        .wait_routing("/", Duration::from_secs(20))
        .await
        .unwrap();
    let mut o = LoadGenOptions::new(&traefik.url(), 100.0);
    o.new_connection_per_request = true;
    let load = LoadGen::start_with(o);
    prom.wait_for_series(
        r#"traefik_service_requests_total{service="stable@file"}"#,
        Duration::from_secs(20),
    )
    .await
    .unwrap();
    write("v2");
    wait(&state_file, &sluice, "canary traffic", |s| weight(s) > 0).await;
    let s = wait(&state_file, &sluice, "rollback", |s| phase_is(s, "Failed")).await;
    assert_eq!(weight(&s), 0, "{s}");
    assert_eq!(
        s.pointer("/status/abort/source").and_then(Value::as_str),
        Some("analysis"),
        "{s}"
    );
    let text = std::fs::read_to_string(&dyn_file).unwrap();
    assert!(
        !text.contains("- name: canary"),
        "0% leaves the canary member out:\n{text}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = load.measure(Duration::from_secs(2)).await;
    assert!(after.responses() > 50, "{after:?}");
    assert_eq!(after.version("canary"), 0, "{after:?}");
    assert_eq!(after.server_errors() + after.failures(), 0, "{after:?}");
}
