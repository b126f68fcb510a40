//! The `sluice` binary as a new user meets it (issue 13): a server address without a scheme,
//! the standalone namespace by default, errors printed once, usage lines that do not turn set
//! `SLUICE_*` variables into required flags, commands in words, and `wait` against a rollout
//! whose new revision cannot start.

mod api_support;

use std::process::Output;
use std::sync::Arc;

use api_support::*;
use sluice_controller::api::{self, ApiState, AuthConfig, Secret, ServerInfo};
use sluice_controller::store::MemoryStore;
use sluice_controller::telemetry::Telemetry;
use sluice_crds::Phase;
use tokio::sync::oneshot;

struct Server {
    addr: String,
    _stop: oneshot::Sender<()>,
}

async fn serve(store: &MemoryStore, info: ServerInfo) -> Server {
    let state = ApiState::new(
        Arc::new(store.clone()),
        Telemetry::new(),
        AuthConfig {
            api_token: Some(Secret::new(API_TOKEN)),
            ..Default::default()
        },
    )
    .with_info(info);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(api::serve_on(state, listener, async {
        let _ = rx.await;
    }));
    Server { addr, _stop: tx }
}

async fn sluice_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let home = tempfile::tempdir().unwrap();
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_sluice"));
    cmd.args(args)
        .env_remove("SLUICE_SERVER")
        .env_remove("SLUICE_TOKEN")
        .env_remove("SLUICE_NAMESPACE")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env("HOME", home.path())
        .env("KUBECONFIG", home.path().join("no-such-kubeconfig"))
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().await.unwrap()
}

async fn sluice(args: &[&str]) -> Output {
    sluice_env(args, &[]).await
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[tokio::test]
async fn standalone_server_host_port_and_default_namespace() {
    let store = MemoryStore::new();
    store.insert(rollout("standalone", "web", Phase::Progressing, Some("v2")));
    let srv = serve(&store, ServerInfo::standalone("standalone")).await;
    // No scheme, no -n: the old CLI said "builder error: relative URL without a base", and with
    // a scheme "rollout default/web not found".
    let o = sluice(&["status", "web", "--server", &srv.addr, "--token", API_TOKEN]).await;
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert!(out(&o).contains("Rollout standalone/web"), "{}", out(&o));
    let o = sluice(&["status", "web", "--server", "::not a url", "--token", "x"]).await;
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err(&o).contains("e.g. http://127.0.0.1:8080"),
        "{}",
        err(&o)
    );
    // Commands in words.
    let url = format!("http://{}", srv.addr);
    let o = sluice(&[
        "promote", "web", "--full", "--server", &url, "--token", API_TOKEN,
    ])
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert!(
        out(&o).starts_with(
            "full promotion (all remaining steps skipped) requested for rollout standalone/web"
        ),
        "{}",
        out(&o)
    );
}

#[tokio::test]
async fn errors_are_printed_once_and_env_does_not_make_flags_required() {
    let o = sluice(&["status", "web"]).await;
    assert_eq!(o.status.code(), Some(1));
    let e = err(&o);
    assert_eq!(e.matches("error:").count(), 1, "{e}");
    assert_eq!(e.matches("No such file or directory").count(), 1, "{e}");
    assert!(e.contains("use --server URL"), "{e}");
    // clap's `env` put set variables into the usage line: "Usage: sluice wait --server <SERVER> <NAME>".
    let o = sluice_env(
        &["wait"],
        &[
            ("SLUICE_SERVER", "http://127.0.0.1:9"),
            ("SLUICE_TOKEN", "t"),
        ],
    )
    .await;
    assert_eq!(o.status.code(), Some(1), "usage errors exit 1");
    let usage = err(&o);
    let line = usage
        .lines()
        .find(|l| l.starts_with("Usage:"))
        .unwrap_or_default();
    assert_eq!(line, "Usage: sluice wait <NAME>", "{usage}");
    // The variables still work.
    let store = MemoryStore::new();
    store.insert(rollout("shop", "web", Phase::Progressing, Some("r2")));
    let srv = serve(&store, ServerInfo::kubernetes()).await;
    let o = sluice_env(
        &["status", "web"],
        &[
            ("SLUICE_SERVER", srv.addr.as_str()),
            ("SLUICE_TOKEN", API_TOKEN),
            ("SLUICE_NAMESPACE", "shop"),
        ],
    )
    .await;
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
}

#[tokio::test]
async fn wait_reports_a_blocked_new_revision_with_its_own_exit_code() {
    let store = MemoryStore::new();
    let mut r = rollout("standalone", "web", Phase::Idle, None);
    let st = r.status.get_or_insert_with(Default::default);
    st.stable_revision = Some("v1".into());
    sluice_controller::core::conditions::set_blocked(
        st,
        "Blocked",
        "router: router config rejected by validation: nginx: [emerg] invalid port",
        chrono::Utc::now(),
    );
    store.insert(r);
    store.set_desired("standalone", "web", "v2");
    let srv = serve(&store, ServerInfo::standalone("standalone")).await;
    let o = sluice(&[
        "wait",
        "web",
        "--server",
        &srv.addr,
        "--token",
        API_TOKEN,
        "--interval",
        "50ms",
        "--blocked-after",
        "200ms",
        "--timeout",
        "20s",
    ])
    .await;
    // The old CLI printed "promoted: nothing to roll out; stable revision v1" and exited 0.
    assert_eq!(o.status.code(), Some(6), "{}{}", out(&o), err(&o));
    assert!(
        out(&o).starts_with("blocked: revision v2 cannot be rolled out"),
        "{}",
        out(&o)
    );
    assert!(out(&o).contains("invalid port"), "{}", out(&o));
    // `sluice status` shows it, in the list too.
    let o = sluice(&["status", "web", "--server", &srv.addr, "--token", API_TOKEN]).await;
    assert!(out(&o).contains("Blocked:  Blocked since"), "{}", out(&o));
    assert!(
        out(&o).contains("Target:   v2 (not rolled out yet)"),
        "{}",
        out(&o)
    );
    let o = sluice(&["status", "--server", &srv.addr, "--token", API_TOKEN]).await;
    assert!(
        out(&o).contains("Blocked: router: router config rejected"),
        "{}",
        out(&o)
    );
}

#[tokio::test]
async fn resume_at_a_pause_step_is_refused_with_what_to_do() {
    let store = MemoryStore::new();
    let mut r = rollout("standalone", "web", Phase::Paused, Some("v2"));
    let st = r.status.get_or_insert_with(Default::default);
    st.set_condition(
        "Paused",
        true,
        "PauseStep",
        "step 2/3: paused until promoted",
        chrono::Utc::now(),
    );
    store.insert(r);
    let srv = serve(&store, ServerInfo::standalone("standalone")).await;
    let o = sluice(&["resume", "web", "--server", &srv.addr, "--token", API_TOKEN]).await;
    // The old CLI printed "resume requested" and exited 0; nothing moved.
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    assert!(err(&o).contains("only promote moves it on"), "{}", err(&o));
    assert_eq!(store.writes(), 0);
}
