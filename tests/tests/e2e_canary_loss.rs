//! End to end, standalone mode, real NGINX + mtail + Prometheus (issue 17): the canary backend
//! is killed while it holds 25% of traffic. Its weight must go to 0 after
//! `canaryLoss.graceSeconds` (default 10 s), long before the progress deadline (60 s here,
//! which is when today's code would have returned the traffic), and the rollout fails with
//! source `canaryLost`. Prints the time to 0% and how many requests the dead canary got.

#[path = "e2e_support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use support::*;

/// 25% and a long pause: only the canary's death can end this step early.
const HOLD_AT_25: &str = "
          - setWeight: 25
          - pause: { duration: 300s }";

#[tokio::test(flavor = "multi_thread")]
async fn killed_canary_loses_its_traffic_after_the_grace_not_at_the_deadline() {
    let mut bed = Bed::start(BedOptions {
        steps: HOLD_AT_25,
        analysis: "",
        ..BedOptions::default()
    })
    .await;
    bed.ready_for_rollout().await;
    bed.write_file("v2");
    bed.wait_state("25% on the canary", Duration::from_secs(60), |s| {
        weight(s) == 25 && phase_is(s, "Progressing")
    })
    .await;
    // Let the canary serve a moment, then kill it.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let load = bed.load.as_ref().unwrap();
    let served = load.snapshot();
    assert!(served.version("canary") > 0, "{served:?}");
    let killed_at = Instant::now();
    bed.canary.kill();
    let before = bed.load.as_ref().unwrap().snapshot();
    let s = bed
        .wait_state("the rollback", Duration::from_secs(55), |s| {
            phase_is(s, "Failed")
        })
        .await;
    let to_zero = killed_at.elapsed();
    assert_eq!(weight(&s), 0, "{s}");
    assert_eq!(
        s.pointer("/status/abort/source").and_then(|v| v.as_str()),
        Some("canaryLost"),
        "{s}"
    );
    assert!(
        bed.upstream_text().contains("down;"),
        "{}",
        bed.upstream_text()
    );
    let load = bed.load.as_ref().unwrap();
    let during = load.snapshot().since(&before);
    // NGINX's own 502s (no X-Version): the requests routed to the dead canary.
    let lost = during.by_status.get(&502).copied().unwrap_or(0);
    assert!(lost > 0, "the dead canary got no request: {during:?}");
    // Once the weight is 0 no request reaches it any more.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = load.measure(Duration::from_secs(3)).await;
    assert!(after.responses() > 100, "{after:?}");
    assert_eq!(after.server_errors(), 0, "{after:?}");
    assert_eq!(after.version("stable"), after.responses(), "{after:?}");
    eprintln!(
        "canary killed at 25%: weight 0 and Failed after {:.1} s (grace 10 s, deadline 60 s); {lost} requests answered 502 meanwhile out of {}",
        to_zero.as_secs_f64(),
        during.responses()
    );
}
