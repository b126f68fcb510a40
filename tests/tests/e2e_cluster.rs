//! End to end on a real Kubernetes cluster (any conformant one; CI uses kind in
//! .github/workflows/e2e-kind.yml). Runs only with `SLUICE_E2E_CLUSTER=1` and `KUBECONFIG`
//! naming a kubeconfig file; otherwise it prints why it skipped. It never runs in `.ci/run`,
//! which has no cluster.
//!
//! The cluster must already have ingress-nginx (IngressClass `nginx`, Service
//! `ingress-nginx-controller` in `ingress-nginx`) and the Prometheus of ingress-nginx's
//! `deploy/prometheus` (`prometheus-server.ingress-nginx:9090`, scraping the controller pods
//! annotated `prometheus.io/scrape`), and the Sluice image loaded or pullable
//! (`SLUICE_E2E_IMAGE` overrides the image of deploy/).
//!
//! The suite installs the CRDs and controller from deploy/ (kustomize), a token Secret, the
//! podinfo app of tests/e2e/ behind ingress-nginx with a load generator, then:
//! 1. a healthy release is promoted (`kubectl wait --for=condition=Promoted`);
//! 2. a faulty one (podinfo `--random-error`) is rolled back by analysis
//!    (`kubectl wait --for=condition=Aborted`, abort source `analysis`, canary weight 0);
//! 3. a healthy one is aborted by a firing alert: Alertmanager's webhook payload (version 4)
//!    posted to Sluice's API through `kubectl port-forward` (abort source `alert`).
//!
//! Finally it deletes the Rollout (its finalizer runs) and uninstalls deploy/.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sluice_tests::{free_port, workspace_root, Proc};

const NS: &str = "sluice-e2e";
const TOKEN: &str = "sluice-e2e-token";

/// Why the suite cannot run here, or None when it can.
fn skip_reason() -> Option<String> {
    if std::env::var("SLUICE_E2E_CLUSTER").as_deref() != Ok("1") {
        return Some(
            "SLUICE_E2E_CLUSTER=1 not set (runs in .github/workflows/e2e-kind.yml)".into(),
        );
    }
    match std::env::var_os("KUBECONFIG") {
        Some(p) if Path::new(&p).is_file() => None,
        Some(p) => Some(format!(
            "KUBECONFIG={} is not a file",
            Path::new(&p).display()
        )),
        None => Some("KUBECONFIG not set".into()),
    }
}

/// `kubectl` with the caller's KUBECONFIG.
struct Kubectl;

impl Kubectl {
    fn output(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = Command::new("kubectl");
        cmd.args(args).current_dir(workspace_root());
        let out = match stdin {
            None => cmd.output(),
            Some(text) => {
                use std::io::Write;
                cmd.stdin(std::process::Stdio::piped())
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped());
                let mut child = cmd.spawn().expect("spawn kubectl");
                if let Some(mut i) = child.stdin.take() {
                    i.write_all(text.as_bytes()).expect("kubectl stdin");
                }
                child.wait_with_output()
            }
        };
        out.expect("run kubectl (is it installed?)")
    }

    /// Runs and returns stdout; panics with stderr on failure.
    fn run(&self, args: &[&str]) -> String {
        let out = self.output(args, None);
        assert!(
            out.status.success(),
            "kubectl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn apply_stdin(&self, yaml: &str) {
        let out = self.output(&["apply", "-f", "-"], Some(yaml));
        assert!(
            out.status.success(),
            "kubectl apply: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn rollout(&self) -> Value {
        let text = self.run(&["-n", NS, "get", "rollout", "podinfo", "-o", "json"]);
        serde_json::from_str(&text).expect("rollout JSON")
    }

    /// `kubectl wait` on the Rollout, the way a pipeline would use it.
    fn wait(&self, condition: &str, timeout: &str) {
        let out = self.output(
            &[
                "-n",
                NS,
                "wait",
                &format!("--for={condition}"),
                "rollout/podinfo",
                &format!("--timeout={timeout}"),
            ],
            None,
        );
        assert!(
            out.status.success(),
            "kubectl wait --for={condition}: {}\nrollout status: {}\ncontroller logs:\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.rollout()["status"],
            self.controller_logs()
        );
    }

    fn controller_logs(&self) -> String {
        let out = self.output(
            &[
                "-n",
                "sluice-system",
                "logs",
                "deploy/sluice",
                "--tail=40",
                "--all-containers",
            ],
            None,
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

fn e2e_file(name: &str) -> PathBuf {
    workspace_root().join("tests/e2e").join(name)
}

fn install(k: &Kubectl) {
    // Server-side apply: the CRDs are large, and this is what GitOps tools do.
    k.run(&["apply", "--server-side", "-k", "deploy/"]);
    k.run(&[
        "wait",
        "--for=condition=Established",
        "crd/rollouts.sluice.dev",
        "--timeout=60s",
    ]);
    k.apply_stdin(&format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: sluice-api-token, namespace: sluice-system}}\nstringData: {{token: {TOKEN}}}\n"
    ));
    if let Ok(image) = std::env::var("SLUICE_E2E_IMAGE") {
        k.run(&[
            "-n",
            "sluice-system",
            "set",
            "image",
            "deploy/sluice",
            &format!("sluice={image}"),
        ]);
    }
    k.run(&["-n", "sluice-system", "rollout", "restart", "deploy/sluice"]);
    k.run(&[
        "-n",
        "sluice-system",
        "rollout",
        "status",
        "deploy/sluice",
        "--timeout=180s",
    ]);
}

fn deploy_app(k: &Kubectl) {
    let app = e2e_file("app.yaml");
    k.run(&["apply", "-f", &app.to_string_lossy()]);
    k.run(&[
        "-n",
        NS,
        "rollout",
        "status",
        "deploy/podinfo",
        "--timeout=180s",
    ]);
    k.run(&["apply", "-f", &e2e_file("rollout.yaml").to_string_lossy()]);
    k.wait("jsonpath={.status.phase}=Idle", "180s");
    k.run(&["apply", "-f", &e2e_file("loadgen.yaml").to_string_lossy()]);
    k.run(&[
        "-n",
        NS,
        "rollout",
        "status",
        "deploy/loadgen",
        "--timeout=180s",
    ]);
}

/// Starts a release by changing the pod template, and waits until Sluice has picked it up.
fn release(k: &Kubectl, n: u32, faulty: bool) {
    let mut cmd = vec![json!("./podinfo"), json!("--port=9898")];
    if faulty {
        cmd.push(json!("--random-error=true"));
    }
    let patch = json!({"spec": {"template": {"spec": {"containers": [{
        "name": "podinfo",
        "command": cmd,
        "env": [{"name": "E2E_RELEASE", "value": n.to_string()}],
    }]}}}});
    k.run(&[
        "-n",
        NS,
        "patch",
        "deploy/podinfo",
        "--type=strategic",
        "-p",
        &patch.to_string(),
    ]);
    // Both conditions turn False when a rollout of a new revision starts.
    k.wait("condition=Promoted=false", "120s");
    k.wait("condition=Aborted=false", "60s");
}

fn canary_weight(k: &Kubectl) -> Option<String> {
    let out = k.output(
        &[
            "-n",
            NS,
            "get",
            "ingress",
            "podinfo-canary",
            "-o",
            r"jsonpath={.metadata.annotations.nginx\.ingress\.kubernetes\.io/canary-weight}",
        ],
        None,
    );
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

async fn post_alert() {
    let port = free_port();
    let mut cmd = Command::new("kubectl");
    cmd.args([
        "-n",
        "sluice-system",
        "port-forward",
        "svc/sluice",
        &format!("{port}:8080"),
    ]);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut pf = Proc::spawn("kubectl port-forward", &mut cmd, &dir.path().join("pf.log"))
        .expect("port-forward");
    pf.wait_ready(
        &format!("http://127.0.0.1:{port}/healthz"),
        Duration::from_secs(30),
    )
    .await
    .expect("Sluice API through port-forward");
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    // The shape Alertmanager's webhook notifier sends (version "4").
    let body = json!({
        "version": "4", "status": "firing", "receiver": "sluice",
        "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {}, "externalURL": "",
        "alerts": [{
            "status": "firing",
            "labels": {"alertname": "SluiceE2EAbort", "namespace": NS, "rollout": "podinfo"},
            "annotations": {"summary": "e2e: abort requested by an alert"},
            "startsAt": now, "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "", "fingerprint": format!("e2e{}", std::process::id()),
        }],
    });
    let r = sluice_tests::http_client()
        .post(format!("http://127.0.0.1:{port}/webhooks/alertmanager"))
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .expect("POST the webhook");
    let status = r.status();
    let text = r.text().await.unwrap_or_default();
    assert!(status.is_success(), "webhook answered {status}: {text}");
    assert!(
        text.contains(&format!("{NS}/podinfo")),
        "the alert aborted the rollout: {text}"
    );
}

fn uninstall(k: &Kubectl) {
    // Rollouts first, while the controller still runs their finalizer; then everything else.
    let _ = k.output(
        &["-n", NS, "delete", "rollout", "podinfo", "--timeout=120s"],
        None,
    );
    let _ = k.output(&["delete", "namespace", NS, "--timeout=180s"], None);
    let _ = k.output(&["delete", "-k", "deploy/", "--timeout=180s"], None);
}

/// Uninstalls whatever happens to the test.
struct Cleanup;

impl Drop for Cleanup {
    fn drop(&mut self) {
        if std::env::var("SLUICE_E2E_KEEP").as_deref() != Ok("1") {
            uninstall(&Kubectl);
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn healthy_faulty_and_alert_rollouts_on_a_real_cluster() {
    if let Some(reason) = skip_reason() {
        eprintln!("SKIP real-cluster e2e: {reason}");
        return;
    }
    let k = Kubectl;
    let _cleanup = Cleanup;
    install(&k);
    deploy_app(&k);
    let first = k.rollout();
    let stable0 = first["status"]["stableRevision"].clone();
    assert!(stable0.is_string(), "{}", first["status"]);

    // 1. Healthy: promoted; the Promoted condition is what `kubectl wait` sees.
    release(&k, 2, false);
    k.wait("condition=Promoted", "900s");
    let r = k.rollout();
    assert_eq!(r["status"]["phase"], "Succeeded", "{}", r["status"]);
    assert_ne!(r["status"]["stableRevision"], stable0);
    let promoted = r["status"]["stableRevision"].clone();

    // 2. Faulty: rolled back by analysis, traffic back on primary.
    release(&k, 3, true);
    k.wait("condition=Aborted", "900s");
    let r = k.rollout();
    assert_eq!(r["status"]["phase"], "Failed", "{}", r["status"]);
    assert_eq!(
        r["status"]["abort"]["source"], "analysis",
        "{}",
        r["status"]
    );
    assert_eq!(r["status"]["stableRevision"], promoted, "stable unchanged");
    let t0 = Instant::now();
    while canary_weight(&k).is_some_and(|w| w != "0") {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "canary weight {:?}",
            canary_weight(&k)
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }

    // 3. Healthy again, aborted by a firing alert while in progress.
    release(&k, 4, false);
    k.wait("jsonpath={.status.phase}=Progressing", "120s");
    post_alert().await;
    k.wait("condition=Aborted", "300s");
    let r = k.rollout();
    assert_eq!(r["status"]["abort"]["source"], "alert", "{}", r["status"]);
    assert_eq!(r["status"]["stableRevision"], promoted);
}
