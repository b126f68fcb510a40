//! Smoke test of the real-component test bed.

use std::time::Duration;

use sluice_tests::Prometheus;

#[tokio::test]
async fn prometheus_scrapes_itself() {
    let port = sluice_tests::free_port();
    let _ = port;
    let p0 = Prometheus::builder().start().await.unwrap();
    let p = Prometheus::builder()
        .scrape("peer", [p0.addr()])
        .start()
        .await
        .unwrap();
    let r = p
        .wait_for_series("up{job=\"peer\"} == 1", Duration::from_secs(15))
        .await
        .unwrap();
    assert_eq!(r[0]["metric"]["job"], "peer");
}
