//! A built-in floor that stable fails too over the same window is Inconclusive, not a failure
//! of the canary (issue 17: a dependency outage that hit both arms rolled a healthy canary back).

use chrono::{TimeZone, Utc};
use sluice_analysis::builtin::value_query;
use sluice_analysis::{
    analyse_step, render, AnalysisState, Arm, BuiltinMetric, Check, FakeMetricsSource,
    InconclusiveCause, MetricSpec, Provider, Threshold, Variables, VerdictKind,
};

fn vars() -> Variables {
    [
        ("namespace", "shop"),
        ("ingress", "web"),
        ("primary", "web-primary"),
        ("canary", "web"),
        ("interval", "1m"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn query(arm: Arm) -> String {
    let q = value_query(
        Provider::NginxIngress,
        BuiltinMetric::RequestSuccessRate,
        arm,
    )
    .unwrap();
    render(&q, &vars()).unwrap()
}

fn floor(shared: bool) -> Vec<MetricSpec> {
    let threshold = Threshold {
        min: Some(0.95),
        max: None,
    };
    let (provider, metric) = (Provider::NginxIngress, BuiltinMetric::RequestSuccessRate);
    vec![MetricSpec {
        name: "success-rate".into(),
        check: if shared {
            Check::SharedThreshold {
                provider,
                metric,
                threshold,
            }
        } else {
            Check::BuiltinThreshold {
                provider,
                metric,
                threshold,
            }
        },
        args: Variables::new(),
    }]
}

async fn verdict(
    shared: bool,
    canary: f64,
    stable: Option<f64>,
) -> (VerdictKind, Option<InconclusiveCause>, String, Vec<String>) {
    let fake = FakeMetricsSource::new();
    fake.set_value(query(Arm::Canary), canary);
    if let Some(s) = stable {
        fake.set_value(query(Arm::Stable), s);
    }
    let at = Utc.with_ymd_and_hms(2026, 11, 25, 10, 0, 0).unwrap();
    let out = analyse_step(
        &floor(shared),
        &fake,
        &vars(),
        &AnalysisState::default(),
        at,
    )
    .await;
    let v = &out.verdicts[0];
    (
        v.verdict.kind,
        v.verdict.cause,
        v.verdict.reason.clone(),
        v.queries.clone(),
    )
}

#[tokio::test]
async fn a_floor_both_arms_fail_is_inconclusive() {
    // The incident of issue 17: canary 0.941, stable as bad.
    let (kind, cause, reason, queries) = verdict(true, 0.941, Some(0.938)).await;
    assert_eq!(kind, VerdictKind::Inconclusive, "{reason}");
    assert_eq!(cause, Some(InconclusiveCause::StableFailsToo));
    assert!(
        reason.contains("0.9410") && reason.contains("0.9380"),
        "{reason}"
    );
    assert_eq!(queries, vec![query(Arm::Canary), query(Arm::Stable)]);
}

#[tokio::test]
async fn a_floor_only_the_canary_fails_still_fails() {
    let (kind, _, reason, _) = verdict(true, 0.941, Some(0.999)).await;
    assert_eq!(kind, VerdictKind::Fail, "{reason}");
}

#[tokio::test]
async fn a_passing_canary_does_not_query_stable() {
    let (kind, _, _, queries) = verdict(true, 0.99, None).await;
    assert_eq!(kind, VerdictKind::Pass);
    assert_eq!(queries, vec![query(Arm::Canary)]);
}

#[tokio::test]
async fn without_the_option_a_shared_failure_fails_the_canary() {
    let (kind, _, _, _) = verdict(false, 0.941, Some(0.938)).await;
    assert_eq!(kind, VerdictKind::Fail);
}
