//! End to end, standalone mode, real NGINX + mtail + Prometheus (issue 16, built-in load): a
//! canary that gets no user traffic at all. Sluice's own load (`load:`) reaches the canary's
//! address, Prometheus scrapes Sluice's `sluice_load_requests_total`, and the `load-success-rate`
//! built-in judges it: a healthy canary is promoted on that evidence, a failing one is rolled
//! back, and the load stops when the rollout leaves `Progressing` either way.

#[path = "e2e_support/mod.rs"]
mod support;

use std::time::Duration;

use sluice_tests::http_client;
use support::*;

/// The built-in load's success rate, the only evidence there is: no user sends a request.
const LOAD_ANALYSIS: &str = "
    analysis:
      interval: 2s
      failureLimit: 0
      inconclusiveLimit: 10
      metrics:
        - name: load-success
          builtin: load-success-rate
          threshold: { min: 0.95 }";

const LOAD: &str = "    load: { rate: 20, paths: [/], headers: { X-Load: sluice } }\n";

fn options(canary_error_rate: f64) -> BedOptions {
    BedOptions {
        canary_error_rate,
        analysis: LOAD_ANALYSIS,
        extra_rollout: LOAD.to_string(),
        scrape_sluice: true,
        ..BedOptions::default()
    }
}

/// Requests the demo app has served, all codes (its own `/metrics`).
async fn served(app_url: &str) -> u64 {
    let text = http_client()
        .get(format!("{app_url}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with("http_requests_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// All built-in load requests Sluice has counted (its own `/metrics`).
async fn load_requests(bed: &Bed) -> u64 {
    let text = http_client()
        .get(format!("{}/metrics", bed.api()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with("sluice_load_requests_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

async fn start(bed: &mut Bed) {
    bed.start_sluice().await;
    bed.wait_state("initialization", Duration::from_secs(30), |s| {
        phase_is(s, "Idle")
    })
    .await;
    // Idle: no load yet, whatever the file says.
    assert_eq!(load_requests(bed).await, 0);
    assert_eq!(served(&bed.canary.url()).await, 0);
}

/// The load has stopped: Sluice's counter and the canary's own count stay still.
async fn assert_load_stopped(bed: &Bed) {
    // Requests in flight when it stopped are dropped; let the last answers land first.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (sluice, canary) = (load_requests(bed).await, served(&bed.canary.url()).await);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(load_requests(bed).await, sluice, "Sluice still sends load");
    assert_eq!(
        served(&bed.canary.url()).await,
        canary,
        "the canary still gets requests"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_canary_without_user_traffic_is_promoted_on_its_load() {
    let mut bed = Bed::start(options(0.0)).await;
    start(&mut bed).await;
    bed.write_file("v2");
    let done = bed
        .wait_state("promotion", Duration::from_secs(120), |s| {
            phase_is(s, "Succeeded") || phase_is(s, "Failed") || phase_is(s, "Paused")
        })
        .await;
    assert!(phase_is(&done, "Succeeded"), "{done}\n{}", bed.sluice_log());
    let at = |k: &str| {
        done.pointer(&format!("/status/{k}"))
            .and_then(|v| v.as_str())
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
    };
    if let (Some(a), Some(b)) = (at("startedAt"), at("promotionStartedAt")) {
        println!(
            "promotion began {:.1} s after the rollout started (load 20 req/s)",
            (b - a).num_milliseconds() as f64 / 1000.0
        );
    }

    // The evidence was the load: Prometheus holds Sluice's counters for the canary revision,
    // and NGINX (the router) saw no request at all.
    let ok = bed
        .prom
        .query_values(r#"sluice_load_requests_total{namespace="standalone",rollout="web",revision="v2",code="200"}"#)
        .await
        .unwrap();
    assert!(
        ok.iter().map(|(_, v)| v).sum::<f64>() >= 20.0,
        "load in Prometheus: {ok:?}"
    );
    let routed = bed
        .prom
        .query_values("nginx_upstream_requests_total")
        .await
        .unwrap();
    assert!(routed.is_empty(), "user traffic through NGINX: {routed:?}");
    let sent = load_requests(&bed).await;
    let canary = served(&bed.canary.url()).await;
    assert!(sent >= 20, "load requests {sent}");
    // Every answered load request reached the canary and nothing else did (the stable backend
    // got none: the load goes only to the canary's address). The canary may have served up to
    // `concurrency` (default 8) more: requests in flight when the load stopped are dropped by
    // Sluice uncounted, though the canary may still have answered them.
    assert_eq!(served(&bed.stable.url()).await, 0);
    assert!(
        sent <= canary && canary <= sent + 8,
        "canary served {canary}, Sluice counted {sent}"
    );
    assert_load_stopped(&bed).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_canary_under_load_is_rolled_back_and_the_load_stops() {
    let mut bed = Bed::start(options(0.5)).await;
    start(&mut bed).await;
    bed.write_file("v2");
    let done = bed
        .wait_state("rollback", Duration::from_secs(120), |s| {
            phase_is(s, "Succeeded") || phase_is(s, "Failed") || phase_is(s, "Paused")
        })
        .await;
    assert!(phase_is(&done, "Failed"), "{done}\n{}", bed.sluice_log());
    let reason = done.to_string();
    assert!(reason.contains("load-success"), "{reason}");
    let errors = bed
        .prom
        .query_values(r#"sluice_load_requests_total{rollout="web",code="500"}"#)
        .await
        .unwrap();
    assert!(!errors.is_empty(), "no 500s counted");
    assert_load_stopped(&bed).await;
}
