//! Tests of one analysis step against the in-memory metrics source.

use chrono::TimeZone;

use super::*;
use crate::builtin::{BuiltinMetric, Provider};
use crate::prometheus::{Labels, QueryError, Sample};
use crate::source::FakeMetricsSource;
use crate::stats::SloConfig;
use crate::verdict::Threshold;

fn vars(interval: &str) -> Variables {
    [
        ("namespace", "shop"),
        ("ingress", "web"),
        ("primary", "web-primary"),
        ("canary", "web"),
        ("interval", interval),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 10, 0, 0).unwrap()
}

fn with_canary_ingress(v: &Variables) -> Variables {
    metric_vars(v, &Variables::new()).unwrap()
}

/// Sets the four built-in NGINX count answers for the given window.
fn set_counts(fake: &FakeMetricsSource, interval: &str, n_c: f64, x_c: f64, n_s: f64, x_s: f64) {
    let v = with_canary_ingress(&vars(interval));
    let t = templates(&CountSource::Builtin(Provider::NginxIngress));
    for (tpl, val) in [
        (&t.canary_requests, n_c),
        (&t.canary_bad, x_c),
        (&t.stable_requests, n_s),
        (&t.stable_bad, x_s),
    ] {
        fake.set_value(render(tpl, &v).unwrap(), val);
    }
}

fn errors_metric(name: &str) -> MetricSpec {
    MetricSpec {
        name: name.into(),
        check: Check::ErrorComparison {
            source: CountSource::Builtin(Provider::NginxIngress),
            settings: SequentialConfig::default(),
        },
        args: Variables::new(),
    }
}

#[tokio::test]
async fn builtin_threshold_pass_fail_and_no_data() {
    let fake = FakeMetricsSource::new();
    let q = render(
        &value_query(
            Provider::NginxIngress,
            BuiltinMetric::RequestSuccessRate,
            Arm::Canary,
        )
        .unwrap(),
        &with_canary_ingress(&vars("1m")),
    )
    .unwrap();
    let spec = vec![MetricSpec {
        name: "success".into(),
        check: Check::BuiltinThreshold {
            provider: Provider::NginxIngress,
            metric: BuiltinMetric::RequestSuccessRate,
            threshold: Threshold {
                min: Some(0.99),
                max: None,
            },
        },
        args: Variables::new(),
    }];
    fake.set_value(q.clone(), 0.995);
    let out = analyse_step(&spec, &fake, &vars("1m"), &AnalysisState::default(), t0()).await;
    assert_eq!(out.summary.kind, VerdictKind::Pass);
    assert_eq!(out.verdicts[0].queries, vec![q.clone()]);
    assert!(q.contains(r#"ingress="web-canary""#), "{q}");
    fake.set_value(q.clone(), 0.9);
    let out = analyse_step(&spec, &fake, &vars("1m"), &AnalysisState::default(), t0()).await;
    assert_eq!(out.summary.kind, VerdictKind::Fail);
    fake.set(q.clone(), Ok(QueryResult::Vector(vec![])));
    let out = analyse_step(&spec, &fake, &vars("1m"), &AnalysisState::default(), t0()).await;
    assert_eq!(
        (out.summary.kind, out.summary.cause),
        (VerdictKind::Inconclusive, Some(InconclusiveCause::NoData))
    );
}

#[tokio::test]
async fn comparison_accumulates_with_non_overlapping_windows() {
    let fake = FakeMetricsSource::new();
    let spec = vec![errors_metric("errors")];
    set_counts(&fake, "1m", 100.0, 1.0, 900.0, 9.0);
    let out = analyse_step(&spec, &fake, &vars("1m"), &AnalysisState::default(), t0()).await;
    assert_eq!(
        out.verdicts[0].verdict.cause,
        Some(InconclusiveCause::NotEnoughEvidence),
        "{:?}",
        out.verdicts[0].verdict
    );
    let st = &out.state.metrics["errors"];
    assert_eq!(st.last_at, Some(t0()));
    assert_eq!(st.sequential.as_ref().unwrap().canary_requests, 100.0);
    // Next step 30 s later asks for exactly the 30 s since the last window; the canary is now bad.
    set_counts(&fake, "30000ms", 100.0, 20.0, 900.0, 9.0);
    let later = t0() + chrono::Duration::seconds(30);
    let out2 = analyse_step(&spec, &fake, &vars("1m"), &out.state, later).await;
    assert_eq!(
        out2.summary.kind,
        VerdictKind::Fail,
        "{}",
        out2.summary.reason
    );
    assert!(out2.verdicts[0].queries[0].contains("[30000ms]"));
    let ev = out2.verdicts[0].verdict.evidence.clone().unwrap();
    assert_eq!((ev.canary_requests, ev.canary_bad), (200.0, 21.0));
    assert_eq!(ev.fail_threshold, 20.0);
    // Called again within a second: nothing is counted twice.
    let again = analyse_step(&spec, &fake, &vars("1m"), &out2.state, later).await;
    assert_eq!(
        again.verdicts[0].verdict.cause,
        Some(InconclusiveCause::NotEnoughEvidence)
    );
    assert_eq!(again.state, out2.state);
}

#[tokio::test]
async fn query_errors_do_not_consume_the_window_and_alpha_is_divided() {
    let fake = FakeMetricsSource::new();
    let spec = vec![errors_metric("errors"), errors_metric("errors-again")];
    set_counts(&fake, "1m", 100.0, 1.0, 900.0, 9.0);
    let out = analyse_step(&spec, &fake, &vars("1m"), &AnalysisState::default(), t0()).await;
    let ev = out.verdicts[1].verdict.evidence.clone().unwrap();
    assert_eq!(
        ev.fail_threshold, 40.0,
        "alpha 0.05 split over two statistical metrics"
    );
    // Prometheus is down for the next step: Error, and the saved state stays as it was.
    let v = with_canary_ingress(&vars("20000ms"));
    let q = render(
        &templates(&CountSource::Builtin(Provider::NginxIngress)).canary_requests,
        &v,
    )
    .unwrap();
    fake.set(q, Err(QueryError::Connect("refused".into())));
    let out2 = analyse_step(
        &spec,
        &fake,
        &vars("1m"),
        &out.state,
        t0() + chrono::Duration::seconds(20),
    )
    .await;
    assert_eq!(out2.summary.kind, VerdictKind::Error);
    assert!(out2.summary.reason.contains("refused"));
    assert_eq!(out2.state, out.state);
}

#[tokio::test]
async fn latency_boundary_is_chosen_from_stable_and_kept() {
    let fake = FakeMetricsSource::new();
    let spec = vec![MetricSpec {
        name: "latency".into(),
        check: Check::LatencyComparison {
            source: BucketSource::Builtin(Provider::TraefikFile),
            quantile: 0.95,
            boundary: None,
            settings: SequentialConfig::default(),
        },
        args: [("port".to_string(), "80".to_string())].into(),
    }];
    let buckets = |pairs: &[(&str, f64)]| {
        QueryResult::Vector(
            pairs
                .iter()
                .map(|(le, v)| Sample {
                    labels: Labels::from([("le".into(), le.to_string())]),
                    timestamp: 0.0,
                    value: *v,
                })
                .collect(),
        )
    };
    let v = with_canary_ingress(&vars("1m"));
    let (ts, tc) = bucket_templates(&BucketSource::Builtin(Provider::TraefikFile));
    fake.set(
        render(&ts, &v).unwrap(),
        Ok(buckets(&[
            ("0.1", 900.0),
            ("0.25", 990.0),
            ("+Inf", 1000.0),
        ])),
    );
    fake.set(
        render(&tc, &v).unwrap(),
        Ok(buckets(&[("0.1", 30.0), ("0.25", 60.0), ("+Inf", 100.0)])),
    );
    let out = analyse_step(&spec, &fake, &vars("1m"), &AnalysisState::default(), t0()).await;
    let verdict = &out.verdicts[0].verdict;
    assert_eq!(verdict.kind, VerdictKind::Fail, "{}", verdict.reason);
    assert_eq!(verdict.evidence.as_ref().unwrap().boundary, Some(0.25));
    assert_eq!(
        out.state.metrics["latency"]
            .sequential
            .as_ref()
            .unwrap()
            .boundary,
        Some(0.25)
    );
    // A quantile outside (0, 1) is a configuration error, not an endless wait.
    let mut bad = spec.clone();
    if let Check::LatencyComparison { quantile, .. } = &mut bad[0].check {
        *quantile = 95.0;
    }
    let out = analyse_step(&bad, &fake, &vars("1m"), &AnalysisState::default(), t0()).await;
    assert!(
        out.summary.reason.contains("quantile"),
        "{}",
        out.summary.reason
    );
    assert_eq!(out.summary.kind, VerdictKind::Error);
    // An arg that redefines a step variable is refused.
    let mut bad = spec.clone();
    bad[0].args.insert("namespace".into(), "other".into());
    let out = analyse_step(&bad, &fake, &vars("1m"), &AnalysisState::default(), t0()).await;
    assert_eq!(out.summary.kind, VerdictKind::Error);
}

#[tokio::test]
async fn slo_guard_and_custom_threshold() {
    let fake = FakeMetricsSource::new();
    let t = CountTemplates {
        canary_requests: r#"sum(increase(reqs{app="{{canary}}"}[{{interval}}]))"#.into(),
        canary_bad: r#"sum(increase(errs{app="{{canary}}"}[{{interval}}])) or vector(0)"#.into(),
        stable_requests: String::new(),
        stable_bad: String::new(),
    };
    let spec = vec![
        MetricSpec {
            name: "slo".into(),
            check: Check::Slo {
                source: CountSource::Custom(t),
                settings: SloConfig::default(),
            },
            args: Variables::new(),
        },
        MetricSpec {
            name: "custom".into(),
            check: Check::Threshold {
                query: "scalar(up)".into(),
                threshold: Threshold {
                    min: None,
                    max: Some(1.0),
                },
            },
            args: Variables::new(),
        },
    ];
    fake.set_value(r#"sum(increase(reqs{app="web"}[1m]))"#, 400.0);
    fake.set_value(r#"sum(increase(errs{app="web"}[1m])) or vector(0)"#, 40.0);
    fake.set("scalar(up)", Ok(QueryResult::Scalar(0.0, f64::NAN)));
    let out = analyse_step(&spec, &fake, &vars("1m"), &AnalysisState::default(), t0()).await;
    assert_eq!(
        out.verdicts[0].verdict.kind,
        VerdictKind::Fail,
        "{}",
        out.verdicts[0].verdict.reason
    );
    assert_eq!(out.verdicts[1].verdict.cause, Some(InconclusiveCause::NaN));
    assert_eq!(out.summary.kind, VerdictKind::Fail);
    assert_eq!(out.state.metrics["slo"].slo.unwrap().requests, 400.0);
    assert!(!out.state.metrics.contains_key("custom"));
}

#[test]
fn summary_precedence_and_cause() {
    let mv = |name: &str, v: Verdict| MetricVerdict {
        name: name.into(),
        verdict: v,
        queries: vec![],
    };
    let collecting = || {
        mv(
            "a",
            Verdict::inconclusive(InconclusiveCause::NotEnoughEvidence, None, "collecting"),
        )
    };
    let nodata = || {
        mv(
            "b",
            Verdict::inconclusive(InconclusiveCause::NoData, None, "empty"),
        )
    };
    let s = summarise(&[collecting(), nodata()]);
    assert_eq!(
        (s.kind, s.cause),
        (VerdictKind::Inconclusive, Some(InconclusiveCause::NoData))
    );
    assert_eq!(
        summarise(&[collecting(), mv("c", Verdict::error("down"))]).kind,
        VerdictKind::Error
    );
    let s = summarise(&[
        mv("c", Verdict::error("down")),
        mv("d", Verdict::fail(Some(1.0), "bad")),
    ]);
    assert_eq!(s.kind, VerdictKind::Fail);
    assert!(s.reason.contains("d: bad"));
    assert_eq!(
        summarise(&[mv("e", Verdict::pass(None, "ok"))]).kind,
        VerdictKind::Pass
    );
    assert_eq!(summarise(&[]).kind, VerdictKind::Pass);
}

#[test]
fn outcome_serializes() {
    let out = StepOutcome {
        verdicts: vec![],
        summary: Verdict::pass(None, "x"),
        state: AnalysisState {
            metrics: [(
                "m".to_string(),
                MetricState {
                    last_at: Some(t0()),
                    ..Default::default()
                },
            )]
            .into(),
        },
    };
    let json = serde_json::to_string(&out).unwrap();
    assert_eq!(serde_json::from_str::<StepOutcome>(&json).unwrap(), out);
}
