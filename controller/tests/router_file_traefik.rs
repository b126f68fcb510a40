//! Traefik file router: snapshots of the dynamic file, 0%/100% leave a member out, no write when
//! unchanged, read-back, and real traffic through a real Traefik (file provider) when installed.

#[path = "router_file_support/mod.rs"]
mod support;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use sluice_controller::router::traefik_file::{render_dynamic, TraefikFileRouter, TraefikFileSpec};
use sluice_controller::router::{RouterError, TrafficRouter};
use support::*;

fn spec(file: PathBuf) -> TraefikFileSpec {
    let mut s = TraefikFileSpec::new(file);
    s.rule = Some("PathPrefix(`/`)".into());
    s.entry_points = vec!["web".into()];
    s
}

#[test]
fn snapshot_dynamic_file_at_0_25_100() {
    let s = spec("/x/app.yml".into());
    let (a, b) = ("http://127.0.0.1:18081", "http://127.0.0.1:18082");
    insta::assert_snapshot!("traefik_dynamic_w0", render_dynamic(&s, a, b, 0).unwrap());
    insta::assert_snapshot!("traefik_dynamic_w25", render_dynamic(&s, a, b, 25).unwrap());
    let mut bare = TraefikFileSpec::new("/x/app.yml");
    bare.write_backends = false;
    bare.stable_service = "web-v1@docker".into();
    insta::assert_snapshot!(
        "traefik_dynamic_w100_bare",
        render_dynamic(&bare, a, b, 100).unwrap()
    );
}

#[tokio::test]
async fn unchanged_weight_does_not_rewrite_and_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dyn/app.yml");
    let r = TraefikFileRouter::new(spec(file.clone()), "http://a:1", "http://b:2").unwrap();
    assert_eq!(r.current_weight().await.unwrap(), None);
    r.set_weight(40).await.unwrap();
    let before = std::fs::metadata(&file).unwrap().modified().unwrap();
    std::thread::sleep(Duration::from_millis(20));
    r.set_weight(40).await.unwrap();
    assert_eq!(
        std::fs::metadata(&file).unwrap().modified().unwrap(),
        before
    );
    assert_eq!(r.current_weight().await.unwrap(), Some(40));
    r.set_weight(0).await.unwrap();
    assert_eq!(r.current_weight().await.unwrap(), Some(0));
    assert!(!std::fs::read_to_string(&file)
        .unwrap()
        .contains("- name: canary"));
    assert!(matches!(
        r.set_weight(-1).await,
        Err(RouterError::InvalidWeight(-1))
    ));
    // Only the target file is left in the directory (no temp file).
    let names: Vec<_> = std::fs::read_dir(dir.path().join("dyn"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("app.yml")]);
    // A foreign, broken file is reported, not read as 0.
    std::fs::write(&file, "http: [").unwrap();
    assert!(r.current_weight().await.is_err());
}

fn traefik_bin() -> Option<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let candidates = [
        std::env::var_os("TRAEFIK_BIN").map(PathBuf::from),
        Some(root.join(".testbed/venv/bin/traefik")),
    ];
    candidates.into_iter().flatten().find(|p| p.exists())
}

struct KillOnDrop(Child);
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn real_traefik_follows_the_file() {
    let Some(bin) = traefik_bin() else {
        eprintln!("SKIP: traefik not installed (scripts/install-deps.sh)");
        return;
    };
    let (stable, canary) = (backend("stable").await, backend("canary").await);
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("dyn")).unwrap();
    let (web, ping) = (free_port(), free_port());
    let conf = format!(
        "global: {{ checkNewVersion: false, sendAnonymousUsage: false }}\nentryPoints:\n  web: {{ address: \"127.0.0.1:{web}\" }}\n  traefik: {{ address: \"127.0.0.1:{ping}\" }}\nping: {{ entryPoint: traefik }}\nproviders:\n  providersThrottleDuration: 100ms\n  file: {{ directory: dyn, watch: true }}\nlog: {{ level: ERROR }}\n"
    );
    std::fs::write(dir.path().join("traefik.yml"), conf).unwrap();
    let r = TraefikFileRouter::new(
        spec(dir.path().join("dyn/app.yml")),
        format!("http://{}", stable.addr),
        format!("http://{}", canary.addr),
    )
    .unwrap();
    r.set_weight(0).await.unwrap();
    let _t = KillOnDrop(
        Command::new(bin)
            .arg("--configfile=traefik.yml")
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let url = format!("http://127.0.0.1:{web}/");
    // 0%: every answer from stable once the router is up.
    let mut up = false;
    for _ in 0..200 {
        if get(&url).await.map(|b| b == "stable").unwrap_or(false) {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(up, "traefik never routed to stable");
    assert_eq!(canary_count(&url, 20).await, 0);
    r.set_weight(100).await.unwrap();
    assert_eq!(wait_for_split(&url, 20, 20).await, 20);
    r.set_weight(50).await.unwrap();
    assert_eq!(wait_for_split(&url, 20, 10).await, 10);
}
