//! The `sluice` binary against a real HTTP API server (in-process, free port, in-memory store):
//! wait exit codes, commands, errors, and the `kubectl-sluice` plugin name.

mod api_support;

use std::process::Output;
use std::sync::Arc;
use std::time::Duration;

use api_support::*;
use sluice_controller::api::{self, ApiState, AuthConfig, Secret};
use sluice_controller::cli::{display_name, parse_args, parse_assignment};
use sluice_controller::store::MemoryStore;
use sluice_controller::telemetry::Telemetry;
use sluice_crds::{AbortInfo, Command, CommandAction, Phase, RolloutStatus};
use tokio::sync::oneshot;

/// API server on 127.0.0.1:0, stopped when dropped.
struct Server {
    url: String,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

async fn serve(store: &MemoryStore) -> Server {
    let state = ApiState::new(
        Arc::new(store.clone()),
        Telemetry::new(),
        AuthConfig {
            api_token: Some(Secret::new(API_TOKEN)),
            ..Default::default()
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(api::serve_on(state, listener, async {
        let _ = rx.await;
    }));
    Server {
        url: format!("http://{addr}"),
        stop: Some(tx),
    }
}

async fn sluice(args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .env_remove("SLUICE_SERVER")
        .env_remove("SLUICE_TOKEN")
        .env_remove("SLUICE_NAMESPACE")
        .kill_on_drop(true)
        .output()
        .await
        .unwrap()
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn set(store: &MemoryStore, status: RolloutStatus) {
    assert!(store.set_status("shop", "web", status));
}

async fn wait_cli(srv: &Server, extra: &[&str]) -> Output {
    let mut args = vec![
        "wait",
        "web",
        "-n",
        "shop",
        "--server",
        &srv.url,
        "--token",
        API_TOKEN,
        "--interval",
        "50ms",
    ];
    if !extra.contains(&"--timeout") {
        args.extend_from_slice(&["--timeout", "3s"]);
    }
    args.extend_from_slice(extra);
    sluice(&args).await
}

#[tokio::test]
async fn wait_exit_codes() {
    let store = MemoryStore::new();
    store.insert(rollout("shop", "web", Phase::Succeeded, Some("r2")));
    let srv = serve(&store).await;

    set(
        &store,
        RolloutStatus {
            phase: Phase::Succeeded,
            stable_revision: Some("r2".into()),
            canary_revision: Some("r2".into()),
            ..Default::default()
        },
    );
    let o = wait_cli(&srv, &["--revision", "r2"]).await;
    assert_eq!(code(&o), 0, "{o:?}");
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("promoted"));

    set(
        &store,
        RolloutStatus {
            phase: Phase::Failed,
            stable_revision: Some("r1".into()),
            canary_revision: Some("r3".into()),
            abort: Some(AbortInfo {
                source: "analysis".into(),
                reason: "error rate 7%".into(),
                revision: Some("r3".into()),
                at: chrono::Utc::now(),
                ..Default::default()
            }),
            ..Default::default()
        },
    );
    let o = wait_cli(&srv, &["--revision", "r3", "-o", "json"]).await;
    assert_eq!(code(&o), 2, "{o:?}");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["outcome"], "rolled_back");

    set(
        &store,
        RolloutStatus {
            phase: Phase::Paused,
            canary_revision: Some("r4".into()),
            stable_revision: Some("r1".into()),
            ..Default::default()
        },
    );
    assert_eq!(code(&wait_cli(&srv, &[]).await), 3);

    set(
        &store,
        RolloutStatus {
            phase: Phase::Progressing,
            canary_revision: Some("r4".into()),
            stable_revision: Some("r1".into()),
            ..Default::default()
        },
    );
    let o = wait_cli(&srv, &["--timeout", "300ms"]).await;
    assert_eq!(code(&o), 4, "{o:?}");

    // Superseded while waiting.
    let s2 = store.clone();
    let flip = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(400)).await;
        s2.set_status(
            "shop",
            "web",
            RolloutStatus {
                phase: Phase::Progressing,
                canary_revision: Some("r5".into()),
                stable_revision: Some("r1".into()),
                ..Default::default()
            },
        );
    });
    let o = wait_cli(&srv, &["--revision", "r4"]).await;
    flip.await.unwrap();
    assert_eq!(code(&o), 5, "{o:?}");

    // Errors: unknown rollout, wrong token, unreachable server, bad arguments.
    let o = sluice(&[
        "wait", "ghost", "-n", "shop", "--server", &srv.url, "--token", API_TOKEN,
    ])
    .await;
    assert_eq!(code(&o), 1);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("not found"),
        "{o:?}"
    );
    let o = sluice(&[
        "wait", "web", "-n", "shop", "--server", &srv.url, "--token", "bad",
    ])
    .await;
    assert_eq!(code(&o), 1);
    assert!(String::from_utf8_lossy(&o.stderr).contains("401"), "{o:?}");
    let o = sluice(&[
        "wait",
        "web",
        "--server",
        "http://127.0.0.1:9",
        "--timeout",
        "1s",
    ])
    .await;
    assert_eq!(code(&o), 1);
    let o = sluice(&["wait", "web", "--for", "eventually"]).await;
    assert_eq!(
        code(&o),
        1,
        "usage errors must not look like 'rolled back' (2)"
    );
}

#[tokio::test]
async fn commands_and_status_over_http() {
    let store = MemoryStore::new();
    store.insert(rollout("shop", "web", Phase::Progressing, Some("r2")));
    let srv = serve(&store).await;
    let base = ["-n", "shop", "--server", &srv.url, "--token", API_TOKEN];
    let run = |cmd: Vec<&str>| {
        let mut a = cmd;
        a.extend_from_slice(&base);
        let owned: Vec<String> = a.iter().map(|s| s.to_string()).collect();
        async move {
            let refs: Vec<&str> = owned.iter().map(String::as_str).collect();
            sluice(&refs).await
        }
    };
    let o = run(vec!["promote", "web", "--full", "--reason", "looks good"]).await;
    assert_eq!(code(&o), 0, "{o:?}");
    let cmd = Command::parse(&annotation(&store, "shop", "web").unwrap()).unwrap();
    assert_eq!(cmd.action, CommandAction::PromoteFull);
    assert_eq!(cmd.reason.as_deref(), Some("looks good"));

    let o = run(vec!["abort", "web", "--revision", "r2"]).await;
    assert_eq!(code(&o), 0, "{o:?}");
    let cmd = Command::parse(&annotation(&store, "shop", "web").unwrap()).unwrap();
    assert_eq!(cmd.action, CommandAction::Abort);

    let o = run(vec!["pause", "web", "--revision", "old"]).await;
    assert_eq!(code(&o), 1);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("revision"),
        "{o:?}"
    );

    let o = run(vec!["status", "web"]).await;
    assert_eq!(code(&o), 0);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("Progressing") && out.contains("10%") && out.contains("r2"),
        "{out}"
    );
    let o = run(vec!["status", "-o", "json"]).await;
    let items: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(items[0]["name"], "web");

    let o = run(vec!["set-image", "web", "app=img:2"]).await;
    assert_eq!(code(&o), 1, "set-image needs a cluster");
}

#[tokio::test]
async fn kubectl_plugin_name() {
    assert_eq!(
        display_name("/usr/local/bin/kubectl-sluice"),
        "kubectl sluice"
    );
    assert_eq!(display_name("sluice"), "sluice");
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("kubectl-sluice");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_sluice"), &link).unwrap();
    let o = tokio::process::Command::new(&link)
        .arg("--help")
        .output()
        .await
        .unwrap();
    assert_eq!(code(&o), 0);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("Usage: kubectl sluice"),
        "{o:?}"
    );
    let o = sluice(&["crds"]).await;
    assert_eq!(code(&o), 0);
    assert!(String::from_utf8_lossy(&o.stdout).contains("rollouts.sluice.dev"));
}

#[test]
fn argument_parsing() {
    assert_eq!(
        parse_assignment("app=nginx:1.27"),
        Ok(("app".into(), "nginx:1.27".into()))
    );
    assert!(parse_assignment("app").is_err());
    assert!(parse_assignment("=img").is_err());
    sluice_controller::cli::check_definition().unwrap();
    let cli = parse_args(
        [
            "kubectl-sluice",
            "wait",
            "web",
            "--for",
            "completed",
            "--timeout",
            "10m",
        ]
        .iter()
        .map(Into::into)
        .collect(),
    )
    .unwrap();
    assert!(
        matches!(cli.command, sluice_controller::cli::Cmd::Wait(ref w) if w.for_ == "completed" && w.timeout == Duration::from_secs(600))
    );
}

#[tokio::test]
async fn status_watch_ends_when_the_rollout_finishes() {
    let store = MemoryStore::new();
    store.insert(rollout("shop", "web", Phase::Progressing, Some("r2")));
    let srv = serve(&store).await;
    let s2 = store.clone();
    let flip = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        s2.set_status(
            "shop",
            "web",
            RolloutStatus {
                phase: Phase::Succeeded,
                stable_revision: Some("r2".into()),
                ..Default::default()
            },
        );
    });
    let o = tokio::time::timeout(
        Duration::from_secs(20),
        sluice(&[
            "status",
            "web",
            "--watch",
            "--interval",
            "50ms",
            "-n",
            "shop",
            "--server",
            &srv.url,
            "--token",
            API_TOKEN,
        ]),
    )
    .await
    .expect("--watch must end once the rollout finished");
    flip.await.unwrap();
    assert_eq!(code(&o), 0, "{o:?}");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("Phase:    Progressing"), "{out}");
    assert!(
        out.lines().last().unwrap_or("").contains("Succeeded"),
        "{out}"
    );
}
