//! End to end, standalone mode: `sluice run` against a real NGINX (upstream file + reload),
//! mtail, Prometheus and Alertmanager, with real traffic from the load generator.
//! Each test has its own bed on free ports, so they run in parallel.

#[path = "e2e_support/mod.rs"]
mod support;

use std::time::Duration;

use nix::sys::signal::Signal;
use support::*;

const ROLLOUT_TIMEOUT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread")]
async fn faulty_canary_is_rolled_back_and_errors_return_to_stable_level() {
    let mut bed = Bed::start(BedOptions {
        canary_error_rate: 0.5,
        ..BedOptions::default()
    })
    .await;
    bed.ready_for_rollout().await;
    let before = bed.load.as_ref().unwrap().snapshot();
    bed.write_file("v2");
    bed.wait_state("the canary to get traffic", ROLLOUT_TIMEOUT, |s| {
        weight(s) > 0
    })
    .await;
    let s = bed
        .wait_state("rollback", ROLLOUT_TIMEOUT, |s| phase_is(s, "Failed"))
        .await;
    assert_eq!(weight(&s), 0, "{s}");
    assert_eq!(
        s.pointer("/status/abort/source").and_then(|v| v.as_str()),
        Some("analysis"),
        "{s}"
    );
    assert!(
        bed.upstream_text().contains("down;"),
        "{}",
        bed.upstream_text()
    );
    let load = bed.load.as_ref().unwrap();
    let during = load.snapshot().since(&before);
    assert!(
        during.version("canary") > 0,
        "the canary never served: {during:?}"
    );
    // After the rollback the clients see stable's error rate (0) again, all from stable.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = load.measure(Duration::from_secs(3)).await;
    assert!(after.responses() > 100, "{after:?}");
    assert_eq!(after.version("canary"), 0, "{after:?}");
    assert_eq!(after.server_errors(), 0, "{after:?}");
    assert_eq!(after.failures(), 0, "{after:?}");
    eprintln!(
        "faulty canary served {} requests ({} errors) before the rollback",
        during.version("canary"),
        during.server_errors()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn healthy_canary_reaches_full_weight_and_is_promoted_without_dropped_requests() {
    let mut bed = Bed::start(BedOptions::default()).await;
    bed.ready_for_rollout().await;
    let before = bed.load.as_ref().unwrap().snapshot();
    bed.write_file("v2");
    bed.wait_state("weight 50", ROLLOUT_TIMEOUT, |s| weight(s) >= 50)
        .await;
    let s = bed
        .wait_state("promotion", ROLLOUT_TIMEOUT, |s| phase_is(s, "Succeeded"))
        .await;
    assert_eq!(
        s.pointer("/status/stableRevision").and_then(|v| v.as_str()),
        Some("v2")
    );
    assert_eq!(
        weight(&s),
        0,
        "after promotion all traffic is on the primary"
    );
    // The API serves the same rollout from the standalone store.
    let view = bed
        .api_get("/api/v1/namespaces/standalone/rollouts/web")
        .await;
    assert_eq!(view["phase"], "Succeeded", "{view}");
    let during = bed.load.as_ref().unwrap().snapshot().since(&before);
    assert!(during.version("canary") > 50, "{during:?}");
    // Several NGINX reloads happened; a client without keepalive lost nothing.
    assert_eq!(during.failures(), 0, "{:?}", during.last_errors);
    assert_eq!(during.server_errors(), 0, "{during:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn firing_alert_through_alertmanager_aborts_the_rollout() {
    let mut bed = Bed::start(BedOptions {
        canary_error_rate: 0.3,
        // No analysis gate: only the alert can stop this rollout.
        steps: "
          - setWeight: 20
          - pause: { duration: 5m }",
        analysis: "",
        alerting: true,
        ..BedOptions::default()
    })
    .await;
    bed.ready_for_rollout().await;
    bed.write_file("v2");
    bed.wait_state("weight 20", ROLLOUT_TIMEOUT, |s| weight(s) == 20)
        .await;
    let s = bed
        .wait_state("alert abort", ROLLOUT_TIMEOUT, |s| phase_is(s, "Failed"))
        .await;
    assert_eq!(weight(&s), 0, "{s}");
    assert_eq!(
        s.pointer("/status/abort/source").and_then(|v| v.as_str()),
        Some("alert"),
        "{s}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn rejected_nginx_config_keeps_traffic_flowing_then_rollout_continues() {
    let mut bed = Bed::start(BedOptions {
        steps: "
          - setWeight: 20
          - pause: { duration: 3s }
          - setWeight: 50
          - pause: { duration: 1s }",
        analysis: "",
        ..BedOptions::default()
    })
    .await;
    bed.ready_for_rollout().await;
    let conf = bed.nginx.conf_path();
    let good = std::fs::read_to_string(&conf).unwrap();
    bed.write_file("v2");
    bed.wait_state("weight 20", ROLLOUT_TIMEOUT, |s| weight(s) == 20)
        .await;
    // Break the main config: every `nginx -t` now fails, so Sluice must not reload.
    std::fs::write(&conf, format!("{good}\nthis_is_not_a_directive on;\n")).unwrap();
    let before = bed.load.as_ref().unwrap().snapshot();
    let s = bed
        .wait_state("a rejected weight change", ROLLOUT_TIMEOUT, |s| {
            s.pointer("/status/message")
                .and_then(|m| m.as_str())
                .is_some_and(|m| m.contains("rejected"))
        })
        .await;
    assert_eq!(weight(&s), 20, "{s}");
    assert!(
        bed.upstream_text().contains("weight=20"),
        "{}",
        bed.upstream_text()
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let during = bed.load.as_ref().unwrap().snapshot().since(&before);
    assert!(during.responses() > 100, "{during:?}");
    assert_eq!(during.failures() + during.server_errors(), 0, "{during:?}");
    assert!(during.version("canary") > 0, "the 20% split stays in force");
    // Fixed config: the rollout carries on to promotion.
    std::fs::write(&conf, good).unwrap();
    bed.wait_state("promotion", ROLLOUT_TIMEOUT, |s| phase_is(s, "Succeeded"))
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_sluice_resumes_from_its_state_file() {
    let mut bed = Bed::start(BedOptions {
        steps: "
          - setWeight: 20
          - pause: { duration: 2s }
          - setWeight: 40
          - pause: { duration: 6s }
          - setWeight: 60
          - pause: { duration: 1s }",
        analysis: "",
        ..BedOptions::default()
    })
    .await;
    bed.ready_for_rollout().await;
    bed.write_file("v2");
    let at_kill = bed
        .wait_state("the long pause at 40%", ROLLOUT_TIMEOUT, |s| {
            weight(s) == 40 && step(s) == 3
        })
        .await;
    let started = at_kill.pointer("/status/startedAt").cloned();
    bed.sluice
        .as_ref()
        .unwrap()
        .signal(Signal::SIGKILL)
        .unwrap();
    drop(bed.sluice.take());
    // NGINX keeps the last weights while Sluice is down.
    assert!(
        bed.upstream_text().contains("weight=40"),
        "{}",
        bed.upstream_text()
    );
    bed.start_sluice().await;
    let s = bed
        .wait_state("promotion after restart", ROLLOUT_TIMEOUT, |s| {
            phase_is(s, "Succeeded")
        })
        .await;
    // Same rollout (not restarted from step 0).
    assert_eq!(s.pointer("/status/startedAt").cloned(), started, "{s}");
    assert_eq!(
        s.pointer("/status/stableRevision").and_then(|v| v.as_str()),
        Some("v2")
    );
}
