//! Tests of the analysis bridge against the analysis crate's fake metrics source.

use chrono::TimeZone;
use sluice_analysis::{FakeMetricsSource, QueryError, QueryResult, SimPrometheus};
use sluice_crds::{AnalysisTemplateSpec, MetricStatus, TemplateArg, TemplateRef, Threshold};

use super::*;

fn vars() -> StepVars {
    StepVars {
        namespace: "standalone".into(),
        name: "web".into(),
        primary: "stable".into(),
        canary: "canary".into(),
        interval: "10s".into(),
        ingress: "web".into(),
        service: "web".into(),
        port: "80".into(),
    }
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 10, 0, 0).unwrap()
}

const ERR_Q: &str =
    r#"sum(rate(http_requests_total{version="{{canary}}",code=~"5.."}[{{interval}}]))"#;
const ERR_Q_RENDERED: &str = r#"sum(rate(http_requests_total{version="canary",code=~"5.."}[10s]))"#;

fn threshold_metric(name: &str, max: f64) -> MetricSpec {
    MetricSpec {
        name: name.into(),
        query: Some(ERR_Q.into()),
        threshold: Some(Threshold {
            min: None,
            max: Some(max),
            unless_stable_fails: None,
        }),
        ..Default::default()
    }
}

async fn run(
    spec: &AnalysisSpec,
    templates: &[AnalysisTemplate],
    status: &RolloutStatus,
    fake: &dyn MetricsSource,
    now: DateTime<Utc>,
) -> AnalysisRun {
    let v = vars();
    run_analysis(
        RunInput {
            spec,
            templates,
            status,
            vars: &v,
            provider: Provider::NginxMtail,
            revision: "v2",
            now,
        },
        fake,
    )
    .await
}

#[tokio::test]
async fn threshold_verdicts_map_to_pass_fail_inconclusive_error() {
    let spec = AnalysisSpec {
        metrics: vec![threshold_metric("errors", 0.5)],
        ..Default::default()
    };
    let st = RolloutStatus::default();
    let fake = FakeMetricsSource::new();
    let cases: Vec<(Result<QueryResult, QueryError>, VerdictKind)> = vec![
        (Ok(QueryResult::single(0.1)), VerdictKind::Pass),
        (Ok(QueryResult::single(0.9)), VerdictKind::Fail),
        (Ok(QueryResult::Vector(vec![])), VerdictKind::Inconclusive),
        (Ok(QueryResult::single(f64::NAN)), VerdictKind::Inconclusive),
        (
            Err(QueryError::Connect("refused".into())),
            VerdictKind::Error,
        ),
    ];
    for (answer, want) in cases {
        fake.set(ERR_Q_RENDERED, answer.clone());
        let r = run(&spec, &[], &st, &fake, t0()).await;
        assert_eq!(r.revision, "v2");
        assert_eq!(r.at, t0());
        assert_eq!(r.metrics.len(), 1);
        assert_eq!(r.metrics[0].verdict, want, "{answer:?}: {:?}", r.metrics[0]);
        assert_eq!(r.metrics[0].name, "errors");
        if want == VerdictKind::Fail {
            assert_eq!(r.metrics[0].value, Some(0.9));
        }
        assert!(!r.metrics[0].reason.is_empty());
    }
    assert!(fake.calls().iter().all(|q| q == ERR_Q_RENDERED));
}

/// mtail's shape (`nginx_upstream_requests_total{version,code}`), scraped at `at`.
fn serve(p: &SimPrometheus, at: DateTime<Utc>, counts: [f64; 4]) {
    let c = "nginx_upstream_requests_total";
    p.add(
        c,
        &[("version", "canary"), ("code", "200")],
        counts[0] - counts[1],
    );
    p.add(c, &[("version", "canary"), ("code", "502")], counts[1]);
    p.add(
        c,
        &[("version", "stable"), ("code", "200")],
        counts[2] - counts[3],
    );
    p.add(c, &[("version", "stable"), ("code", "500")], counts[3]);
    p.scrape(at.timestamp_millis());
}

#[tokio::test]
async fn comparison_is_pending_then_fails_and_carries_sequential_state() {
    let spec = AnalysisSpec {
        metrics: vec![MetricSpec {
            name: "errors-vs-stable".into(),
            builtin: Some("nginx-errors-vs-stable".into()),
            ..Default::default()
        }],
        ..Default::default()
    };
    let prom = SimPrometheus::new();
    // Few requests, no errors anywhere: still collecting evidence.
    serve(
        &prom,
        t0() - chrono::Duration::seconds(1),
        [5.0, 0.0, 45.0, 0.0],
    );
    let first = run(&spec, &[], &RolloutStatus::default(), &prom, t0()).await;
    let m = &first.metrics[0];
    assert_eq!(m.verdict, VerdictKind::Pending, "{m:?}");
    // Still collecting: the forecast says why no decision is in sight and which knob helps.
    let f = m.forecast.as_ref().expect("a forecast while collecting");
    assert!(
        f.message
            .starts_with("cannot decide from bad events yet: neither arm has had one in 5 canary and 45 stable requests"),
        "{}",
        f.message
    );
    assert!(f.message.contains("analysis.slo"), "{}", f.message);
    let saved = m.sequential_state.clone().expect("state to persist");
    // The state travels through status; the next window starts where the last one ended.
    let mut status = RolloutStatus::default();
    status.analysis.metrics.push(MetricStatus {
        name: "errors-vs-stable".into(),
        sequential_state: Some(saved.clone()),
        ..Default::default()
    });
    assert_eq!(state_from_status(&status).metrics.len(), 1);
    let later = t0() + chrono::Duration::seconds(5);
    serve(
        &prom,
        later - chrono::Duration::seconds(1),
        [100.0, 50.0, 900.0, 9.0],
    );
    let second = run(&spec, &[], &status, &prom, later).await;
    let m = &second.metrics[0];
    assert_eq!(m.verdict, VerdictKind::Fail, "{m:?}");
    assert!(m.reason.contains("p_fail"), "{}", m.reason);
    assert!(m.reason.contains("canary 50/105 bad"), "{}", m.reason);
    assert_eq!(m.forecast, None, "a decision needs no forecast");
    assert_ne!(m.sequential_state.as_ref(), Some(&saved));
}

#[tokio::test]
async fn templates_args_and_unresolvable_metrics() {
    let tmpl = AnalysisTemplate::new(
        "error-rate",
        AnalysisTemplateSpec {
            args: vec![
                TemplateArg {
                    name: "code".into(),
                    value: Some("5..".into()),
                },
                TemplateArg {
                    name: "job".into(),
                    value: None,
                },
            ],
            metrics: vec![MetricSpec {
                name: "tmpl-errors".into(),
                query: Some(
                    r#"sum(rate(x{job="{{job}}",code=~"{{code}}",v="{{canary}}"}[{{interval}}]))"#
                        .into(),
                ),
                threshold: Some(Threshold {
                    min: None,
                    max: Some(1.0),
                    unless_stable_fails: None,
                }),
                ..Default::default()
            }],
        },
    );
    let with_ref = |args: &[(&str, &str)]| AnalysisSpec {
        metrics: vec![MetricSpec {
            name: "broken".into(),
            builtin: Some("haproxy-success-rate".into()),
            ..Default::default()
        }],
        templates: vec![
            TemplateRef {
                name: "error-rate".into(),
                args: args
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            },
            TemplateRef {
                name: "nope".into(),
                args: Default::default(),
            },
        ],
        ..Default::default()
    };
    let fake = FakeMetricsSource::new();
    fake.set_value(
        r#"sum(rate(x{job="api",code=~"4..",v="canary"}[10s]))"#,
        0.5,
    );
    let r = run(
        &with_ref(&[("job", "api"), ("code", "4..")]),
        std::slice::from_ref(&tmpl),
        &RolloutStatus::default(),
        &fake,
        t0(),
    )
    .await;
    let by_name = |n: &str| r.metrics.iter().find(|m| m.name == n).unwrap().clone();
    assert_eq!(by_name("tmpl-errors").verdict, VerdictKind::Pass);
    assert_eq!(by_name("broken").verdict, VerdictKind::Error);
    assert!(by_name("broken").reason.contains("haproxy"));
    assert_eq!(by_name("template/nope").verdict, VerdictKind::Error);
    // The required arg `job` missing: that template's metric is an Error naming it.
    let r = run(
        &with_ref(&[]),
        &[tmpl],
        &RolloutStatus::default(),
        &fake,
        t0(),
    )
    .await;
    let m = r.metrics.iter().find(|m| m.name == "tmpl-errors").unwrap();
    assert_eq!(m.verdict, VerdictKind::Error);
    assert!(m.reason.contains("job"), "{}", m.reason);
}

#[test]
fn builtin_names_follow_the_router_flavour() {
    use BuiltinMetric::*;
    assert_eq!(
        parse_builtin("nginx-success-rate", Provider::NginxMtail),
        Ok((Provider::NginxMtail, RequestSuccessRate))
    );
    assert_eq!(
        parse_builtin("nginx-latency-p99", Provider::Traefik),
        Ok((Provider::NginxIngress, RequestDurationP99))
    );
    assert_eq!(
        parse_builtin("traefik-latency-vs-stable", Provider::NginxMtail),
        Ok((Provider::TraefikFile, LatencyComparison))
    );
    assert_eq!(
        parse_builtin("request-duration-mean", Provider::Traefik),
        Ok((Provider::Traefik, RequestDurationMean))
    );
    assert!(parse_builtin("nginx-nope", Provider::Traefik).is_err());
    assert!(parse_builtin("plain", Provider::Traefik).is_err());
    // A threshold built-in without a threshold is refused.
    let m = MetricSpec {
        name: "x".into(),
        builtin: Some("nginx-success-rate".into()),
        ..Default::default()
    };
    assert!(to_check(&m, Provider::NginxMtail).is_err());
}

#[test]
fn load_builtins_judge_the_canary_alone() {
    let metric = |builtin: &str, unless_stable_fails: Option<bool>| MetricSpec {
        name: "load".into(),
        builtin: Some(builtin.into()),
        threshold: Some(sluice_crds::Threshold {
            min: Some(0.99),
            unless_stable_fails,
            ..Default::default()
        }),
        ..Default::default()
    };
    // Whatever the router, `load-` is Sluice's own load, and never the shared-incident check
    // (stable gets no load to compare with).
    for base in [Provider::NginxIngress, Provider::TraefikFile] {
        match to_check(&metric("load-success-rate", None), base).unwrap() {
            Check::BuiltinThreshold { provider, .. } => {
                assert_eq!(provider, Provider::SluiceLoad)
            }
            other => panic!("{other:?}"),
        }
    }
    let shared = to_check(
        &metric("load-success-rate", Some(true)),
        Provider::NginxMtail,
    );
    assert!(shared.unwrap_err().contains("stable arm"));
    let cmp = MetricSpec {
        threshold: None,
        ..metric("load-errors-vs-stable", None)
    };
    let err = to_check(&cmp, Provider::NginxMtail).unwrap_err();
    assert!(err.contains("reaches only the canary"), "{err}");
}

#[test]
fn custom_comparison_names_a_counter_and_substitutes_the_arm() {
    let m = MetricSpec {
        name: "c".into(),
        comparison: Some(ComparisonSpec {
            counter: Some("http_requests_total".into()),
            selector: Some(r#"app="{{arm}}",route="/checkout""#.into()),
            bad_selector: Some(r#"code=~"5..""#.into()),
            tolerated_ratio: Some(1.5),
            ..Default::default()
        }),
        ..Default::default()
    };
    match to_check(&m, Provider::NginxMtail).unwrap() {
        Check::ErrorComparison {
            counter, settings, ..
        } => {
            assert_eq!(
                counter.bad_query(sluice_analysis::Arm::Canary),
                r#"http_requests_total{app="{{canary}}",route="/checkout",code=~"5.."}[{{range}}]"#
            );
            assert_eq!(
                counter.all_query(sluice_analysis::Arm::Stable),
                r#"http_requests_total{app="{{primary}}",route="/checkout"}[{{range}}]"#
            );
            assert_eq!(settings.tolerated_ratio, 1.5);
            assert_eq!(settings.negligible_bad_rate, None);
        }
        other => panic!("{other:?}"),
    }
    // increase()-style queries are refused: they cannot be windowed exactly.
    let old = MetricSpec {
        name: "c".into(),
        comparison: Some(ComparisonSpec {
            requests_query: Some(r#"sum(increase(r{v="{{arm}}"}[1m]))"#.into()),
            bad_query: Some(r#"sum(increase(r{v="{{arm}}",code="500"}[1m]))"#.into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let err = to_check(&old, Provider::NginxMtail).unwrap_err();
    assert!(err.contains("not supported"), "{err}");
    // A latency comparison on a custom histogram never gets the negligible-rate floor.
    let lat = MetricSpec {
        name: "l".into(),
        comparison: Some(ComparisonSpec {
            histogram: Some("http_request_duration_seconds".into()),
            selector: Some(r#"app="{{arm}}""#.into()),
            negligible_bad_rate: Some(0.01),
            ..Default::default()
        }),
        ..Default::default()
    };
    match to_check(&lat, Provider::NginxMtail).unwrap() {
        Check::LatencyComparison {
            histogram,
            settings,
            ..
        } => {
            assert_eq!(histogram.metric, "http_request_duration_seconds_bucket");
            assert_eq!(settings.negligible_bad_rate, None);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn verdict_mapping() {
    use sluice_analysis::Verdict;
    let inc = |c| Verdict::inconclusive(c, None, "x");
    assert_eq!(map_verdict(&Verdict::pass(None, "")), VerdictKind::Pass);
    assert_eq!(map_verdict(&Verdict::fail(None, "")), VerdictKind::Fail);
    assert_eq!(map_verdict(&Verdict::error("")), VerdictKind::Error);
    for c in [
        InconclusiveCause::NoData,
        InconclusiveCause::NaN,
        InconclusiveCause::NoTraffic,
    ] {
        assert_eq!(map_verdict(&inc(c)), VerdictKind::Inconclusive);
    }
    assert_eq!(
        map_verdict(&inc(InconclusiveCause::NotEnoughEvidence)),
        VerdictKind::Pending
    );
    let spec = AnalysisSpec {
        interval: "90s".into(),
        ..Default::default()
    };
    assert_eq!(promql_interval(&spec), "1m30s");
}

#[test]
fn kubernetes_rollout_variables() {
    let mut r = sluice_crds::Rollout::new(
        "web",
        sluice_crds::RolloutSpec {
            target_ref: sluice_crds::TargetRef {
                name: "podinfo".into(),
                ..Default::default()
            },
            service: sluice_crds::ServiceSpec {
                port: 9898,
                ..Default::default()
            },
            router: sluice_crds::RouterSpec {
                nginx: Some(sluice_crds::NginxRouter {
                    ingress_ref: "podinfo".into(),
                    ..Default::default()
                }),
                ..Default::default()
            },
            analysis: Some(AnalysisSpec {
                interval: "30s".into(),
                ..Default::default()
            }),
            ..Default::default()
        },
    );
    r.metadata.namespace = Some("shop".into());
    let v = StepVars::for_rollout(&r);
    assert_eq!(
        (
            v.namespace.as_str(),
            v.name.as_str(),
            v.primary.as_str(),
            v.canary.as_str()
        ),
        ("shop", "web", "podinfo-primary", "podinfo-canary")
    );
    assert_eq!(
        (v.interval.as_str(), v.ingress.as_str(), v.port.as_str()),
        ("30s", "podinfo", "9898")
    );
    assert_eq!(provider_for_router(&r.spec.router), Provider::NginxIngress);
}

#[test]
fn comparison_by_becomes_a_route_split_for_error_comparisons_only() {
    let with = |builtin: &str, c: ComparisonSpec| MetricSpec {
        name: "m".into(),
        builtin: Some(builtin.into()),
        comparison: Some(c),
        ..Default::default()
    };
    let by = ComparisonSpec {
        by: Some("path".into()),
        ..Default::default()
    };
    match to_check(
        &with("nginx-errors-vs-stable", by.clone()),
        Provider::NginxIngress,
    )
    .unwrap()
    {
        Check::ErrorComparison {
            by: Some(split), ..
        } => {
            assert_eq!(split.label, "path");
            assert_eq!(split.max_routes, DEFAULT_MAX_ROUTES as usize);
            assert_eq!(split.promote, RoutePromotion::Pooled);
        }
        other => panic!("{other:?}"),
    }
    let every = ComparisonSpec {
        max_routes: Some(4),
        promote_when: Some(sluice_crds::RoutePromotion::EveryRoute),
        ..by.clone()
    };
    match to_check(
        &with("nginx-errors-vs-stable", every),
        Provider::NginxIngress,
    )
    .unwrap()
    {
        Check::ErrorComparison {
            by: Some(split), ..
        } => {
            assert_eq!(split.max_routes, 4);
            assert_eq!(split.promote, RoutePromotion::EveryRoute);
        }
        other => panic!("{other:?}"),
    }
    let err = to_check(&with("nginx-latency-vs-stable", by), Provider::NginxIngress).unwrap_err();
    assert!(err.contains("error comparisons only"), "{err}");
    let bad = ComparisonSpec {
        by: Some("a-b".into()),
        ..Default::default()
    };
    let err = to_check(&with("nginx-errors-vs-stable", bad), Provider::NginxIngress).unwrap_err();
    assert!(err.contains("label name"), "{err}");
}
