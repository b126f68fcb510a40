//! Tests of one analysis step against the in-memory metrics sources: canned answers for
//! threshold queries, the simulated Prometheus ([`crate::simprom`]) for comparisons.

use chrono::TimeZone;

use super::*;
use crate::builtin::{error_counter, latency_histogram, BuiltinMetric, CounterSpec, Provider};
use crate::prometheus::QueryError;
use crate::simprom::SimPrometheus;
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

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn secs(s: i64) -> chrono::Duration {
    chrono::Duration::seconds(s)
}

const NGINX: &str = "nginx_ingress_controller_requests";

/// ingress-nginx's shape: both arms under the main Ingress, the canary arm with `canary` set.
fn nginx_add(p: &SimPrometheus, canary: bool, status: &str, n: f64) {
    let arm = if canary { "shop-web-canary-80" } else { "" };
    p.add(
        NGINX,
        &[
            ("namespace", "shop"),
            ("ingress", "web"),
            ("canary", arm),
            ("status", status),
        ],
        n,
    );
}

fn errors_metric(name: &str) -> MetricSpec {
    MetricSpec {
        name: name.into(),
        check: Check::ErrorComparison {
            counter: error_counter(Provider::NginxIngress),
            settings: SequentialConfig::default(),
            by: None,
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
        &vars("1m"),
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
    assert!(q.contains(r#"ingress="web",canary!="""#), "{q}");
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
async fn comparison_counts_exactly_between_scrapes() {
    let p = SimPrometheus::new();
    // Before the rollout stable serves 100 requests per 15 s scrape.
    for k in 0..=240 {
        nginx_add(&p, false, "200", 100.0);
        p.scrape(ms(t0()) - 3_600_000 + k * 15_000);
    }
    let spec = vec![errors_metric("errors")];
    // The canary's series appear mid-window; scrapes at +5 s and +20 s of the first window.
    nginx_add(&p, true, "200", 40.0);
    nginx_add(&p, false, "200", 360.0);
    nginx_add(&p, false, "500", 4.0);
    p.scrape(ms(t0()) + 5_000);
    nginx_add(&p, true, "200", 59.0);
    nginx_add(&p, true, "500", 1.0);
    nginx_add(&p, false, "200", 500.0);
    p.scrape(ms(t0()) + 20_000);
    let now = t0() + secs(25);
    let out = analyse_step(&spec, &p, &vars("30s"), &AnalysisState::default(), now).await;
    let v = &out.verdicts[0].verdict;
    assert_eq!(
        v.cause,
        Some(InconclusiveCause::NotEnoughEvidence),
        "{}",
        v.reason
    );
    let st = &out.state.metrics["errors"];
    // The window ends at the last scrape both arms have, not at `now`.
    assert_eq!(st.last_at, Some(t0() + secs(20)));
    let seq = st.sequential.as_ref().unwrap();
    assert_eq!(
        (
            seq.canary_requests,
            seq.canary_bad,
            seq.stable_requests,
            seq.stable_bad
        ),
        (100.0, 1.0, 964.0, 4.0)
    );
    assert!(
        out.verdicts[0].queries[0].starts_with(NGINX),
        "{:?}",
        out.verdicts[0].queries
    );
    // Nothing scraped since: the window is not consumed, whatever the clock says.
    let out2 = analyse_step(&spec, &p, &vars("30s"), &out.state, now + secs(8)).await;
    assert_eq!(out2.state, out.state);
    assert!(out2.verdicts[0].verdict.reason.contains("no new scrape"));
    // The ingress-nginx controller restarts: counters start from zero and are counted as such.
    p.restart();
    nginx_add(&p, true, "200", 30.0);
    nginx_add(&p, true, "500", 20.0);
    nginx_add(&p, false, "200", 450.0);
    p.scrape(ms(t0()) + 35_000);
    let out3 = analyse_step(&spec, &p, &vars("30s"), &out2.state, t0() + secs(36)).await;
    let ev = out3.verdicts[0].verdict.evidence.clone().unwrap();
    // 200s: 99 -> 30 is a reset, counted as 30. 500s: 1 -> 20 cannot be told from 19 new errors
    // (Prometheus' reset rule has the same blind spot): one error is lost across the restart.
    assert_eq!((ev.canary_requests, ev.canary_bad), (149.0, 20.0));
    assert_eq!(ev.stable_requests, 964.0 + 450.0);
    assert_eq!(
        out3.verdicts[0].verdict.kind,
        VerdictKind::Fail,
        "{}",
        out3.verdicts[0].verdict.reason
    );
}

#[tokio::test]
async fn no_series_is_no_data_and_errors_keep_the_window() {
    let p = SimPrometheus::new();
    let spec = vec![errors_metric("errors"), errors_metric("errors-again")];
    let out = analyse_step(&spec, &p, &vars("1m"), &AnalysisState::default(), t0()).await;
    assert_eq!(
        out.verdicts[0].verdict.cause,
        Some(InconclusiveCause::NoData)
    );
    assert!(out.state.metrics.is_empty());
    // Prometheus down: Error, and the saved state stays as it was.
    let fake = FakeMetricsSource::new();
    nginx_add(&p, true, "200", 100.0);
    nginx_add(&p, false, "200", 900.0);
    p.scrape(ms(t0()) - 1000);
    let ok = analyse_step(&spec, &p, &vars("1m"), &AnalysisState::default(), t0()).await;
    let ev = ok.verdicts[1].verdict.evidence.clone().unwrap();
    assert_eq!(
        ev.fail_threshold, 40.0,
        "alpha 0.05 split over two statistical metrics"
    );
    let q = ok.verdicts[0].queries[0].clone();
    fake.set(q, Err(QueryError::Connect("refused".into())));
    let down = analyse_step(&spec, &fake, &vars("1m"), &ok.state, t0() + secs(20)).await;
    assert_eq!(down.summary.kind, VerdictKind::Error);
    assert_eq!(down.state, ok.state);
}

fn traefik_bucket(p: &SimPrometheus, svc: &str, le_counts: &[(&str, f64)]) {
    for (le, n) in le_counts {
        p.add(
            "traefik_service_request_duration_seconds_bucket",
            &[("service", svc), ("le", le)],
            *n,
        );
    }
}

fn latency_metric(boundary: Option<f64>) -> Vec<MetricSpec> {
    vec![MetricSpec {
        name: "latency".into(),
        check: Check::LatencyComparison {
            histogram: latency_histogram(Provider::TraefikFile),
            quantile: 0.95,
            boundary,
            settings: SequentialConfig::default(),
        },
        args: Variables::new(),
    }]
}

#[tokio::test]
async fn latency_boundary_comes_from_before_the_rollout() {
    let p = SimPrometheus::new();
    // An hour of stable history: 95% at or below 0.1 s, 99% at or below 0.25 s.
    for k in 0..=120 {
        traefik_bucket(
            &p,
            "web-primary@file",
            &[("0.1", 95.0), ("0.25", 99.0), ("+Inf", 100.0)],
        );
        p.scrape(ms(t0()) - 3_600_000 + k * 30_000);
    }
    // The first judged window: canary much slower.
    traefik_bucket(
        &p,
        "web-primary@file",
        &[("0.1", 950.0), ("0.25", 990.0), ("+Inf", 1000.0)],
    );
    traefik_bucket(
        &p,
        "web@file",
        &[("0.1", 30.0), ("0.25", 60.0), ("+Inf", 100.0)],
    );
    p.scrape(ms(t0()) + 10_000);
    let out = analyse_step(
        &latency_metric(None),
        &p,
        &vars("1m"),
        &AnalysisState::default(),
        t0() + secs(11),
    )
    .await;
    let v = &out.verdicts[0].verdict;
    assert_eq!(v.kind, VerdictKind::Fail, "{}", v.reason);
    assert_eq!(v.evidence.as_ref().unwrap().boundary, Some(0.1));
    let st = &out.state.metrics["latency"];
    assert!(st.baseline_read);
    assert_eq!(st.sequential.as_ref().unwrap().boundary, Some(0.1));
    // Three queries: both arms' window, then stable's baseline (at the window's start).
    assert_eq!(out.verdicts[0].queries.len(), 3);
}

#[tokio::test]
async fn without_history_the_boundary_is_calibrated_on_windows_not_judged() {
    let p = SimPrometheus::new();
    traefik_bucket(
        &p,
        "web-primary@file",
        &[("0.1", 60.0), ("0.25", 70.0), ("+Inf", 70.0)],
    );
    traefik_bucket(
        &p,
        "web@file",
        &[("0.1", 0.0), ("0.25", 0.0), ("+Inf", 10.0)],
    );
    p.scrape(ms(t0()) + 10_000);
    let spec = latency_metric(None);
    let out = analyse_step(
        &spec,
        &p,
        &vars("1m"),
        &AnalysisState::default(),
        t0() + secs(11),
    )
    .await;
    let v = &out.verdicts[0].verdict;
    assert_eq!(
        v.cause,
        Some(InconclusiveCause::NotEnoughEvidence),
        "{}",
        v.reason
    );
    assert!(v.reason.contains("70 of 100"), "{}", v.reason);
    // The slow canary window was calibration only: no evidence counted.
    let seq = out.state.metrics["latency"].sequential.clone().unwrap();
    assert_eq!(seq.canary_requests, 0.0);
    traefik_bucket(
        &p,
        "web-primary@file",
        &[("0.1", 30.0), ("0.25", 40.0), ("+Inf", 40.0)],
    );
    traefik_bucket(&p, "web@file", &[("+Inf", 10.0)]);
    p.scrape(ms(t0()) + 20_000);
    let out = analyse_step(&spec, &p, &vars("1m"), &out.state, t0() + secs(21)).await;
    let st = &out.state.metrics["latency"];
    assert_eq!(st.sequential.as_ref().unwrap().boundary, Some(0.25));
    assert!(st.calibration.is_none());
    assert_eq!(st.sequential.as_ref().unwrap().canary_requests, 0.0);
    // A quantile outside (0, 1) is a configuration error, not an endless wait.
    let mut bad = spec.clone();
    if let Check::LatencyComparison { quantile, .. } = &mut bad[0].check {
        *quantile = 95.0;
    }
    let out = analyse_step(&bad, &p, &vars("1m"), &AnalysisState::default(), t0()).await;
    assert_eq!(out.summary.kind, VerdictKind::Error);
    assert!(
        out.summary.reason.contains("quantile"),
        "{}",
        out.summary.reason
    );
    // An arg that redefines a step variable is refused.
    let mut bad = spec.clone();
    bad[0].args.insert("range".into(), "1h".into());
    let out = analyse_step(&bad, &p, &vars("1m"), &AnalysisState::default(), t0()).await;
    assert_eq!(out.summary.kind, VerdictKind::Error);
}

#[tokio::test]
async fn slo_guard_on_a_custom_counter_and_custom_threshold() {
    let p = SimPrometheus::new();
    p.add("reqs_total", &[("app", "web"), ("code", "200")], 360.0);
    p.add("reqs_total", &[("app", "web"), ("code", "503")], 40.0);
    p.scrape(ms(t0()) - 1000);
    let counter = CounterSpec {
        metric: "reqs_total".into(),
        stable: r#"app="{{primary}}""#.into(),
        canary: r#"app="{{canary}}""#.into(),
        bad: r#"code=~"5..""#.into(),
    };
    let spec = vec![MetricSpec {
        name: "slo".into(),
        check: Check::Slo {
            counter,
            settings: SloConfig::default(),
        },
        args: Variables::new(),
    }];
    let out = analyse_step(&spec, &p, &vars("1m"), &AnalysisState::default(), t0()).await;
    assert_eq!(
        out.verdicts[0].verdict.kind,
        VerdictKind::Fail,
        "{}",
        out.verdicts[0].verdict.reason
    );
    assert_eq!(out.state.metrics["slo"].slo.unwrap().requests, 400.0);
    let fake = FakeMetricsSource::new();
    let custom = vec![MetricSpec {
        name: "custom".into(),
        check: Check::Threshold {
            query: "scalar(up)".into(),
            threshold: Threshold {
                min: None,
                max: Some(1.0),
            },
        },
        args: Variables::new(),
    }];
    fake.set("scalar(up)", Ok(QueryResult::Scalar(0.0, f64::NAN)));
    let out = analyse_step(&custom, &fake, &vars("1m"), &AnalysisState::default(), t0()).await;
    assert_eq!(out.verdicts[0].verdict.cause, Some(InconclusiveCause::NaN));
    assert!(out.state.metrics.is_empty());
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

#[tokio::test]
async fn threshold_metrics_are_not_held_by_the_comparisons_one_second_guard() {
    let fake = FakeMetricsSource::new();
    fake.set_value("scalar(up)", 0.5);
    let spec = vec![MetricSpec {
        name: "custom".into(),
        check: Check::Threshold {
            query: "scalar(up)".into(),
            threshold: Threshold {
                min: None,
                max: Some(1.0),
            },
        },
        args: Variables::new(),
    }];
    let out = analyse_step(
        &spec,
        &fake,
        &vars("500ms"),
        &AnalysisState::default(),
        t0(),
    )
    .await;
    assert_eq!(
        out.summary.kind,
        VerdictKind::Pass,
        "{}",
        out.summary.reason
    );
}
