//! Smoke test for the alert-latency bench (`benches/alert_latency.rs`, included as a module): three
//! aborts through a real Alertmanager and NGINX are all measured and their intervals add up.
//! Structure only, no timing assertions.

#[path = "../benches/alert_latency.rs"]
#[allow(dead_code)]
mod alert_latency;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_alert_aborts_are_measured_end_to_end() {
    let r = alert_latency::run(3).await.unwrap();
    assert_eq!(r.requested, 3);
    assert_eq!(r.failed, 0, "{r:#?}");
    assert_eq!(r.samples.len(), 3);
    for s in &r.samples {
        // The pieces nest: Sluice, then the router call, then NGINX applying the reload.
        let parts = s.sluice_ms + s.router_ms + s.nginx_apply_ms;
        assert!((parts - s.to_served_zero_ms).abs() < 1.0, "{s:?}");
        assert!(
            (s.sluice_ms + s.router_ms - s.to_router_zero_ms).abs() < 1.0,
            "{s:?}"
        );
        assert!(
            s.nginx_test_ms + s.nginx_reload_ms <= s.router_ms + 1.0,
            "{s:?}"
        );
    }
    assert_eq!(r.dists.len(), 9);
    let shares = r.sluice_share + r.router_share + r.nginx_apply_share;
    assert!((shares - 1.0).abs() < 0.01, "{shares}");
    let table = alert_latency::table(&r);
    assert!(table.contains("3 aborts measured"), "{table}");
    assert!(table.contains("NGINX serves 0% canary"), "{table}");
}
