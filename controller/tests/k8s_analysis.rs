//! Analysis through the bridge inside `reconcile`: a passing metric promotes, a failing one rolls
//! back (weight 0, canary scaled down), and a Rollout without any Prometheus gets Error verdicts.

mod k8s_common;

use std::sync::Arc;

use sluice_analysis::FakeMetricsSource;
use sluice_controller::clock::ManualClock;
use sluice_controller::k8s::analysis::BridgeAnalysis;
use sluice_controller::k8s::Context;
use sluice_crds::{AnalysisSpec, CanaryStep, MetricSpec, Rollout, Threshold};

use k8s_common::*;

const QUERY: &str = "sum(rate(http_ok_total[1m])) / sum(rate(http_total[1m]))";

fn analysed_rollout() -> Rollout {
    let mut r = rollout();
    if let Some(c) = r.spec.strategy.canary.as_mut() {
        c.steps = vec![
            CanaryStep::weight(20),
            CanaryStep::analyse(),
            CanaryStep::weight(50),
        ];
    }
    r.spec.analysis = Some(AnalysisSpec {
        interval: "1m".into(),
        failure_limit: 0,
        inconclusive_limit: 3,
        error_limit: 3,
        on_errors: Default::default(),
        metrics: vec![MetricSpec {
            name: "success".into(),
            query: Some(QUERY.into()),
            threshold: Some(Threshold {
                min: Some(0.99),
                max: None,
                unless_stable_fails: None,
            }),
            ..MetricSpec::default()
        }],
        ..AnalysisSpec::default()
    });
    r
}

async fn scenario(value: f64, until: &str) -> (Vec<Point>, Arc<FakeMetricsSource>) {
    let client = client_with(analysed_rollout(), None).await;
    let clock = Arc::new(ManualClock::new(start()));
    let fake = Arc::new(FakeMetricsSource::new());
    fake.set_value(QUERY, value);
    let analysis = BridgeAnalysis::new(client.clone(), None).with_source(fake.clone());
    let ctx = Arc::new(
        Context::new(client.clone())
            .with_clock(clock.clone())
            .with_analysis(Arc::new(analysis)),
    );
    run_until(&client, &ctx, &clock, "Idle", 10).await;
    set_image(&client, "podinfo:2.0").await;
    (run_until(&client, &ctx, &clock, until, 40).await, fake)
}

#[tokio::test]
async fn passing_analysis_promotes() {
    let (trace, fake) = scenario(1.0, "Succeeded").await;
    assert!(!fake.calls().is_empty(), "Prometheus was asked");
    assert!(trace.iter().any(|p| p.weight == Some(50)), "{trace:#?}");
}

#[tokio::test]
async fn failing_analysis_rolls_back_before_50_percent() {
    let (trace, fake) = scenario(0.5, "Failed").await;
    assert_eq!(
        fake.calls().len(),
        1,
        "failureLimit 0: the first failed run decides"
    );
    assert!(trace.iter().all(|p| p.weight != Some(50)), "{trace:#?}");
    let last = trace.last().unwrap();
    assert_eq!(last.weight, Some(0));
    assert_eq!(last.target_replicas, 0);
}

#[tokio::test]
async fn without_prometheus_every_metric_is_an_error_not_a_pass() {
    let client = client_with(analysed_rollout(), None).await;
    let clock = Arc::new(ManualClock::new(start()));
    let ctx = context(&client, &clock);
    run_until(&client, &ctx, &clock, "Idle", 10).await;
    set_image(&client, "podinfo:2.0").await;
    for _ in 0..12 {
        tick(&client, &ctx, &clock, chrono::Duration::seconds(30)).await;
    }
    let st = get_rollout(&client).await.status.unwrap();
    let m = st
        .analysis
        .metrics
        .iter()
        .find(|m| m.name == "success")
        .unwrap();
    assert_eq!(m.last_verdict.as_deref(), Some("Error"));
    assert!(
        m.last_reason
            .as_deref()
            .unwrap_or("")
            .contains("Prometheus"),
        "{m:?}"
    );
    assert_ne!(st.phase.to_string(), "Succeeded");
    assert_eq!(m.passed, 0);
}
