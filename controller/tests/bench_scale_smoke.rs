//! Smoke test for the scale bench (`benches/scale.rs`, included as a module): a tiny size runs to
//! completion and every field of the result is consistent. Structure only, no timing assertions.

#[path = "../benches/scale.rs"]
#[allow(dead_code)]
mod scale;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_rollouts_run_to_success_and_report_consistent_numbers() {
    let cfg = scale::ScaleConfig {
        rollouts: 20,
        concurrency: 8,
        max_rounds: 40,
    };
    let r = scale::run_one(&cfg).await;
    assert_eq!(r.rollouts, 20);
    assert_eq!(r.succeeded, 20, "{r:#?}");
    assert_eq!(r.reconcile_errors, 0, "{r:#?}");
    assert_eq!(r.reconciles, 20 * r.rounds as u64);
    // Two analysis steps per rollout, one query each (one metric, no baseline).
    assert!(r.analysis_runs >= 40, "{r:#?}");
    assert!(r.prometheus_queries >= r.analysis_runs, "{r:#?}");
    assert!(r.queries_per_analysis >= 1.0);
    // Each rollout moves through several states (weights 20 and 50, analyses, promotion).
    assert!(r.steps >= 20 * 3, "{r:#?}");
    assert!(r.reconcile_p50_ms <= r.reconcile_p99_ms);
    assert!(r.reconcile_p99_ms <= r.reconcile_max_ms);
    assert!(r.rss_setup_mb > 0.0 && r.rss_peak_mb >= r.rss_end_mb);
    let table = scale::table(&[r.clone(), r]);
    assert!(table.contains("| 20 |"), "{table}");
    assert!(table.contains("Growth 20 -> 20"), "{table}");
}

#[test]
fn percentile_is_nearest_rank() {
    let v: Vec<f64> = (1..=100).map(f64::from).collect();
    assert_eq!(scale::percentile(&v, 50.0), 50.0);
    assert_eq!(scale::percentile(&v, 99.0), 99.0);
    assert_eq!(scale::percentile(&[], 50.0), 0.0);
    assert!(scale::cpu_seconds() >= 0.0);
}
