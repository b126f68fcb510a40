//! NGINX file router: snapshots of the generated upstream file, no write when unchanged, a
//! rejected config keeps the old file, and real traffic through a real NGINX at 0/30/100%.

#[path = "router_file_support/mod.rs"]
mod support;

use std::sync::atomic::Ordering;

use sluice_controller::router::nginx_file::{render_upstream, NginxFileRouter, NginxFileSpec};
use sluice_controller::router::{RouterError, TrafficRouter};
use support::*;

const S: &str = "127.0.0.1:18081";
const C: &str = "127.0.0.1:18082";

#[test]
fn snapshot_upstream_at_0_10_100() {
    insta::assert_snapshot!("nginx_upstream_w0", render_upstream("app", S, C, 0, 16));
    insta::assert_snapshot!("nginx_upstream_w10", render_upstream("app", S, C, 10, 16));
    insta::assert_snapshot!("nginx_upstream_w100", render_upstream("web", S, C, 100, 0));
}

fn spec_in(dir: &std::path::Path) -> NginxFileSpec {
    NginxFileSpec::new(dir.join("nginx.conf"), dir.join("upstream.conf"))
}

#[tokio::test]
async fn unchanged_weight_writes_and_reloads_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let ctl = fake();
    let r = NginxFileRouter::with_control(spec_in(dir.path()), S, C, ctl.clone()).unwrap();
    assert_eq!(r.current_weight().await.unwrap(), None);
    r.set_weight(10).await.unwrap();
    assert_eq!(ctl.reloads.load(Ordering::SeqCst), 1);
    let path = dir.path().join("upstream.conf");
    let before = std::fs::metadata(&path).unwrap().modified().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    r.set_weight(10).await.unwrap();
    assert_eq!(ctl.tests.load(Ordering::SeqCst), 1, "no second nginx -t");
    assert_eq!(ctl.reloads.load(Ordering::SeqCst), 1, "no second reload");
    assert_eq!(
        std::fs::metadata(&path).unwrap().modified().unwrap(),
        before
    );
    assert_eq!(r.current_weight().await.unwrap(), Some(10));
    r.set_weight(100).await.unwrap();
    assert_eq!(ctl.reloads.load(Ordering::SeqCst), 2);
    assert_eq!(r.current_weight().await.unwrap(), Some(100));
    assert!(matches!(
        r.set_weight(101).await,
        Err(RouterError::InvalidWeight(101))
    ));
    r.cleanup().await.unwrap();
    assert_eq!(r.current_weight().await.unwrap(), Some(0));
}

#[tokio::test]
async fn rejected_config_keeps_the_old_file_and_skips_reload() {
    let dir = tempfile::tempdir().unwrap();
    let ctl = fake();
    let r = NginxFileRouter::with_control(spec_in(dir.path()), S, C, ctl.clone()).unwrap();
    r.set_weight(20).await.unwrap();
    let path = dir.path().join("upstream.conf");
    let old = std::fs::read_to_string(&path).unwrap();
    *ctl.reject.lock().unwrap() = Some("[emerg] something nginx disliked".into());
    let err = r.set_weight(50).await.unwrap_err();
    assert!(
        matches!(&err, RouterError::Rejected(m) if m.contains("something nginx disliked")),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), old);
    assert_eq!(ctl.reloads.load(Ordering::SeqCst), 1);
    assert_eq!(r.current_weight().await.unwrap(), Some(20));
    // A rejected first write leaves no file at all.
    let dir2 = tempfile::tempdir().unwrap();
    let r2 = NginxFileRouter::with_control(spec_in(dir2.path()), S, C, ctl.clone()).unwrap();
    assert!(r2.set_weight(5).await.is_err());
    assert!(!dir2.path().join("upstream.conf").exists());
}

#[tokio::test]
async fn real_nginx_splits_traffic_as_written() {
    if !nginx_available() {
        eprintln!("SKIP: nginx not installed (scripts/install-deps.sh)");
        return;
    }
    let (stable, canary) = (backend("stable").await, backend("canary").await);
    let (sa, ca) = (stable.addr.clone(), canary.addr.clone());
    let nginx = start_nginx(|p| {
        std::fs::write(p, render_upstream("app", &sa, &ca, 0, 16)).unwrap();
    })
    .await;
    let r = NginxFileRouter::new(nginx.spec(), &stable.addr, &canary.addr).unwrap();
    let url = nginx.url();
    assert_eq!(canary_count(&url, 20).await, 0);
    r.set_weight(30).await.unwrap();
    assert_eq!(wait_for_split(&url, 100, 30).await, 30);
    r.set_weight(100).await.unwrap();
    assert_eq!(wait_for_split(&url, 20, 20).await, 20);
    assert_eq!(r.current_weight().await.unwrap(), Some(100));
    r.set_weight(0).await.unwrap();
    assert_eq!(wait_for_split(&url, 20, 0).await, 0);
}

#[tokio::test]
async fn real_nginx_refuses_a_bad_config_and_keeps_serving() {
    if !nginx_available() {
        eprintln!("SKIP: nginx not installed (scripts/install-deps.sh)");
        return;
    }
    let (stable, canary) = (backend("stable").await, backend("canary").await);
    let (sa, ca) = (stable.addr.clone(), canary.addr.clone());
    let nginx = start_nginx(|p| {
        std::fs::write(p, render_upstream("app", &sa, &ca, 50, 16)).unwrap();
    })
    .await;
    let path = nginx.dir.path().join("upstream.conf");
    let old = std::fs::read_to_string(&path).unwrap();
    // Port 99999 passes our syntax guard but NGINX refuses it.
    let bad = NginxFileRouter::new(nginx.spec(), &stable.addr, "127.0.0.1:99999").unwrap();
    let err = bad.set_weight(10).await.unwrap_err();
    match &err {
        RouterError::Rejected(m) => assert!(m.contains("invalid port"), "{m}"),
        other => panic!("expected Rejected, got {other}"),
    }
    assert_eq!(std::fs::read_to_string(&path).unwrap(), old);
    // Traffic keeps flowing on the old config, half and half.
    assert_eq!(canary_count(&nginx.url(), 20).await, 10);
}

#[tokio::test]
async fn real_nginx_upstream_file_that_is_never_included_is_refused() {
    if !nginx_available() {
        eprintln!("SKIP: nginx not installed (scripts/install-deps.sh)");
        return;
    }
    let (stable, canary) = (backend("stable").await, backend("canary").await);
    let (sa, ca) = (stable.addr.clone(), canary.addr.clone());
    let nginx = start_nginx(|p| {
        std::fs::write(p, render_upstream("app", &sa, &ca, 0, 16)).unwrap();
    })
    .await;
    // The same NGINX, but Sluice is told to own a file nginx.conf does not include: the old
    // router wrote it, reloaded, and logged "updated and reloaded ... weight=10".
    let mut spec = nginx.spec();
    spec.upstream_file = nginx.dir.path().join("not-included.conf");
    let r = NginxFileRouter::new(spec, &stable.addr, &canary.addr).unwrap();
    let err = r.set_weight(10).await.unwrap_err().to_string();
    assert!(err.contains("does not include the upstream file"), "{err}");
    assert!(err.contains("not-included.conf"), "{err}");
    assert_eq!(canary_count(&nginx.url(), 20).await, 0, "traffic unchanged");
    // The file that is included passes the check.
    let ok = NginxFileRouter::new(nginx.spec(), &stable.addr, &canary.addr).unwrap();
    ok.check_included().await.unwrap();
}
