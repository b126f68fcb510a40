//! The container image starts the way the Deployment runs it: built by `scripts/image.sh` from
//! the workspace's `sluice` binary, unpacked, and run as the image's user on a read-only root
//! filesystem without capabilities (see `sluice_tests::image` for the sandbox; containers
//! cannot run on these machines). Checks: the image's shape (scratch, numeric user equal to the
//! Deployment's, OCI labels, CA bundle, no shell), `sluice --version`, `sluice controller` with
//! the Deployment's arguments and no reachable API server (a clear error, non-zero exit, at
//! once), and `sluice run -f` of a small file (its API answers, the root filesystem unchanged).
//!
//! Skipped, with the reason printed, when not root (chroot and mounts need it) or when buildah
//! and umoci cannot be installed.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;
use sluice_tests::image::ImageBundle;
use sluice_tests::{free_port, workspace_root, DemoApp, Proc};

fn image() -> Option<&'static ImageBundle> {
    static IMAGE: OnceLock<Option<ImageBundle>> = OnceLock::new();
    IMAGE
        .get_or_init(|| {
            if !is_root() {
                eprintln!("SKIP image start-up tests: not root (the chroot sandbox needs root)");
                return None;
            }
            match ImageBundle::build_and_unpack("test") {
                Ok(Ok(b)) => Some(b),
                Ok(Err(reason)) => {
                    eprintln!("SKIP image start-up tests: {reason}");
                    None
                }
                Err(e) => panic!("building the image: {e}"),
            }
        })
        .as_ref()
}

fn is_root() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status_field(&status, "Uid:").split_whitespace().nth(1) == Some("0")
}

fn scratch() -> tempfile::TempDir {
    let d = tempfile::tempdir().expect("tempdir");
    // An emptyDir is world-writable; so is this.
    std::fs::set_permissions(
        d.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .expect("chmod");
    d
}

/// Runs to completion, killed after `limit` (then the output says so).
fn run_with_limit(mut cmd: Command, limit: Duration) -> (Output, bool) {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the sandbox");
    let start = Instant::now();
    let mut killed = false;
    while matches!(child.try_wait(), Ok(None)) {
        if start.elapsed() > limit {
            let _ = child.kill();
            killed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    (child.wait_with_output().expect("wait"), killed)
}

/// The controller container of deploy/deployment.yaml: its args and literal env values.
fn deployment_container() -> (Vec<String>, Vec<(String, String)>, Value) {
    let text = std::fs::read_to_string(workspace_root().join("deploy/deployment.yaml"))
        .expect("deploy/deployment.yaml");
    let docs: Vec<Value> = serde_saphyr::from_multiple(&text).expect("yaml");
    let d = docs
        .into_iter()
        .find(|d| d["kind"] == "Deployment")
        .expect("a Deployment");
    let pod = d.pointer("/spec/template/spec").cloned().expect("pod spec");
    let c = &pod["containers"][0];
    let args = c["args"]
        .as_array()
        .expect("args")
        .iter()
        .filter_map(|a| a.as_str().map(String::from))
        .collect();
    let env = c["env"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| Some((e["name"].as_str()?.into(), e["value"].as_str()?.into())))
        .collect();
    (args, env, pod)
}

#[test]
fn image_is_from_scratch_with_the_deployments_user_and_labels() {
    let Some(img) = image() else { return };
    let p = img.process();
    let (_, _, pod) = deployment_container();
    let run_as = pod
        .pointer("/securityContext/runAsUser")
        .and_then(Value::as_u64);
    let run_as_group = pod
        .pointer("/securityContext/runAsGroup")
        .and_then(Value::as_u64);
    assert_eq!(Some(u64::from(p.uid)), run_as, "image user vs Deployment");
    assert_eq!(Some(u64::from(p.gid)), run_as_group);
    assert_ne!(p.uid, 0, "non-root");
    assert_eq!(
        p.args.first().map(String::as_str),
        Some("/usr/local/bin/sluice")
    );
    assert_eq!(p.cwd, "/");

    let a = img.annotations();
    let label = |k: &str| a.get(k).map(String::as_str).unwrap_or_default();
    assert_eq!(
        label("org.opencontainers.image.version"),
        env!("CARGO_PKG_VERSION")
    );
    assert!(
        label("org.opencontainers.image.source").starts_with("https://"),
        "{a:?}"
    );
    let head = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(workspace_root())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    if let Some(head) = head {
        assert_eq!(label("org.opencontainers.image.revision"), head);
    }

    let root = img.rootfs();
    let ca = std::fs::read_to_string(root.join("etc/ssl/certs/ca-certificates.crt")).expect("CA");
    assert!(ca.contains("BEGIN CERTIFICATE"));
    let passwd = std::fs::read_to_string(root.join("etc/passwd")).expect("passwd");
    assert!(
        passwd.contains(&format!(":{}:{}:", p.uid, p.gid)),
        "{passwd}"
    );
    for absent in ["bin/sh", "usr/bin/sh", "bin/bash"] {
        assert!(
            !root.join(absent).exists(),
            "the image has no shell: {absent}"
        );
    }
    let size = std::fs::metadata(img.archive()).expect("archive").len();
    eprintln!(
        "image archive {} : {} MB",
        img.archive().display(),
        size / 1_000_000
    );
}

#[test]
fn version_runs_as_the_image_user() {
    let Some(img) = image() else { return };
    let dir = scratch();
    let (out, killed) = run_with_limit(
        img.command(&["--version"], dir.path(), &[]),
        Duration::from_secs(30),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !killed && out.status.success(),
        "{:?}: {stderr}",
        out.status
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("sluice {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn controller_without_an_api_server_exits_with_a_clear_message() {
    let Some(img) = image() else { return };
    let (args, env, _) = deployment_container();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();

    // No kubeconfig, no service account: what an image started outside a Pod sees.
    let dir = scratch();
    let (out, killed) = run_with_limit(
        img.command(&args, dir.path(), &env),
        Duration::from_secs(30),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!killed, "still running after 30 s: {stderr}");
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("cannot reach the Kubernetes API"),
        "{stderr}"
    );
    assert!(stderr.contains("KUBECONFIG"), "says what to do: {stderr}");

    // A configuration whose server does not answer (nothing listens on the port): the
    // controller must not sit in watch retries, it must exit and name the address.
    let port = free_port();
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:{port}\n    insecure-skip-tls-verify: true\nusers:\n- name: u\n  user:\n    token: t\ncontexts:\n- name: x\n  context: {{cluster: c, user: u}}\ncurrent-context: x\n"
    );
    std::fs::write(dir.path().join("kubeconfig"), kubeconfig).expect("kubeconfig");
    let mut env2 = env.clone();
    env2.push(("KUBECONFIG", "/tmp/kubeconfig"));
    let (out, killed) = run_with_limit(
        img.command(&args, dir.path(), &env2),
        Duration::from_secs(30),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !killed,
        "still running after 30 s with an unreachable server: {stderr}"
    );
    assert!(!out.status.success(), "{stderr}");
    let want = format!("cannot reach the Kubernetes API at https://127.0.0.1:{port}");
    assert!(stderr.contains(&want), "{stderr}");
    assert!(
        stderr.to_lowercase().contains("refused"),
        "names the cause: {stderr}"
    );
}

fn proc_status(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default()
}

fn status_field<'a>(status: &'a str, key: &str) -> &'a str {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key).map(str::trim))
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn standalone_run_starts_its_api_on_a_read_only_root() {
    let Some(img) = image() else { return };
    let before = img.listing().expect("listing");
    let stable = DemoApp::start("stable", 0.0, 1.0).await.expect("demo app");
    let dir = scratch();
    let port = free_port();
    let file = format!(
        "listen: 127.0.0.1:{port}\nstateFile: state.json\nrollouts:\n  - name: web\n    stable: {{ address: \"{s}\", version: v1 }}\n    canary: {{ address: \"{s}\", version: v1 }}\n    router:\n      traefik:\n        file: /tmp/dyn/app.yml\n    strategy:\n      canary:\n        steps:\n          - setWeight: 50\n",
        s = stable.addr()
    );
    std::fs::create_dir(dir.path().join("dyn")).expect("dyn");
    std::fs::set_permissions(
        dir.path().join("dyn"),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .expect("chmod");
    std::fs::write(dir.path().join("rollouts.yaml"), file).expect("rollouts.yaml");
    let mut cmd = img.command(
        &["run", "-f", "/tmp/rollouts.yaml", "--poll-ms", "200"],
        dir.path(),
        &[],
    );
    let mut sluice =
        Proc::spawn("sluice (image)", &mut cmd, &dir.path().join("sluice.log")).expect("spawn");
    sluice
        .wait_ready(
            &format!("http://127.0.0.1:{port}/healthz"),
            Duration::from_secs(30),
        )
        .await
        .expect("the API answers");

    // The process is the entrypoint itself, as the image's user, with no capabilities.
    let status = proc_status(sluice.pid());
    assert!(status.starts_with("Name:\tsluice"), "{status}");
    let p = img.process();
    assert!(
        status_field(&status, "Uid:").starts_with(&format!("{}\t", p.uid)),
        "{status}"
    );
    assert!(
        status_field(&status, "Gid:").starts_with(&format!("{}\t", p.gid)),
        "{status}"
    );
    for caps in ["CapInh:", "CapPrm:", "CapEff:", "CapAmb:"] {
        assert_eq!(
            status_field(&status, caps),
            "0000000000000000",
            "{caps} {status}"
        );
    }
    assert_eq!(status_field(&status, "NoNewPrivs:"), "1");

    // The runner works: the rollout reaches Idle and its API shows it.
    let url = format!("http://127.0.0.1:{port}/api/v1/namespaces/standalone/rollouts/web");
    let client = sluice_tests::http_client();
    let t0 = Instant::now();
    let view = loop {
        let v: Option<Value> = match client.get(&url).send().await {
            Ok(r) if r.status().is_success() => r.json().await.ok(),
            _ => None,
        };
        if let Some(v) = v.filter(|v| v.to_string().contains("Idle")) {
            break v;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "rollout never Idle at {url}\n{}",
            sluice.log_tail(30)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(view["name"], "web", "{view}");
    sluice.stop();

    // It wrote only where a volume is mounted; the image's own files are unchanged.
    assert!(
        Path::new(&dir.path().join("state.json")).is_file(),
        "state in /tmp"
    );
    assert_eq!(
        img.listing().expect("listing"),
        before,
        "root filesystem changed"
    );
}
