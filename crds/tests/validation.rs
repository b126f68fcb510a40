//! One test per validation rule: each bad spec yields an error naming the field.

use sluice_crds::*;

fn valid() -> RolloutSpec {
    serde_saphyr::from_str(
        r#"
targetRef: { name: podinfo }
service: { port: 80, targetPort: 9898 }
strategy:
  canary:
    steps:
      - setWeight: 10
      - pause: { duration: 30s }
      - analysis: {}
      - setWeight: 50
      - pause: {}
router:
  nginx: { ingressRef: podinfo }
analysis:
  interval: 30s
  prometheus: { address: "http://prometheus:9090" }
  metrics:
    - name: errors
      builtin: nginx-errors-vs-stable
      comparison: { alpha: 0.05 }
    - name: p99
      builtin: nginx-latency-p99
      threshold: { max: 0.5 }
alerts:
  - labels: { team: web }
"#,
    )
    .expect("valid example parses")
}

fn errors_of(spec: &RolloutSpec) -> Vec<FieldError> {
    match validate(spec, Some(&["shared".to_string()])) {
        Ok(()) => vec![],
        Err(e) => e.0,
    }
}

fn assert_error(spec: &RolloutSpec, field: &str, contains: &str) {
    let errs = errors_of(spec);
    assert!(
        errs.iter()
            .any(|e| e.field == field && e.message.contains(contains)),
        "expected error on {field} containing {contains:?}, got {errs:?}"
    );
}

#[test]
fn the_valid_spec_passes_and_defaults_apply() {
    let s = valid();
    assert_eq!(errors_of(&s), vec![]);
    assert_eq!(s.progress_deadline_seconds, 600);
    assert_eq!(s.target_ref.kind, "Deployment");
    let a = s.analysis.as_ref().unwrap();
    assert_eq!(a.inconclusive_limit, 3);
    assert_eq!(a.on_inconclusive, InconclusivePolicy::Pause);
    assert_eq!(a.on_errors, ErrorPolicy::Resume);
    assert_eq!(s.canary_loss.grace_seconds, 10);
    assert_eq!(s.canary_loss.policy, CanaryLossPolicy::Rollback);
}

#[test]
fn canary_loss_grace_out_of_range() {
    for bad in [-1, 3601] {
        let mut s = valid();
        s.canary_loss.grace_seconds = bad;
        assert_error(&s, "spec.canaryLoss.graceSeconds", "0..=3600");
    }
}

#[test]
fn canary_loss_and_on_errors_parse_and_unknown_policies_are_refused() {
    let text = "graceSeconds: 3\npolicy: hold\n";
    let c: CanaryLossSpec = serde_saphyr::from_str(text).unwrap();
    assert_eq!((c.grace_seconds, c.policy), (3, CanaryLossPolicy::Hold));
    let e = serde_saphyr::from_str::<CanaryLossSpec>("policy: retry\n").unwrap_err();
    assert!(e.to_string().contains("retry"), "{e}");
    let p: ErrorPolicy = serde_saphyr::from_str("pause").unwrap();
    assert_eq!(p, ErrorPolicy::Pause);
    assert!(serde_saphyr::from_str::<ErrorPolicy>("human").is_err());
}

#[test]
fn empty_target_name() {
    let mut s = valid();
    s.target_ref.name = " ".into();
    assert_error(&s, "spec.targetRef.name", "must not be empty");
}

#[test]
fn unsupported_target_kind() {
    let mut s = valid();
    s.target_ref.kind = "StatefulSet".into();
    assert_error(&s, "spec.targetRef.kind", "only Deployment");
}

#[test]
fn port_out_of_range() {
    let mut s = valid();
    s.service.port = 0;
    assert_error(&s, "spec.service.port", "1..=65535");
    s.service.port = 80;
    s.service.target_port = Some(70000);
    assert_error(&s, "spec.service.targetPort", "1..=65535");
}

#[test]
fn no_strategy_or_both() {
    let mut s = valid();
    s.strategy.canary = None;
    assert_error(&s, "spec.strategy", "none set");
    let mut s = valid();
    s.strategy.blue_green = Some(BlueGreenStrategy::default());
    assert_error(&s, "spec.strategy", "both set");
}

#[test]
fn weights_out_of_range_or_decreasing() {
    let mut s = valid();
    s.strategy.canary.as_mut().unwrap().steps[0].set_weight = Some(101);
    assert_error(&s, "spec.strategy.canary.steps[0].setWeight", "0..=100");
    let mut s = valid();
    s.strategy.canary.as_mut().unwrap().steps[3].set_weight = Some(5);
    assert_error(
        &s,
        "spec.strategy.canary.steps[3].setWeight",
        "must not decrease",
    );
}

#[test]
fn step_with_two_kinds() {
    let mut s = valid();
    s.strategy.canary.as_mut().unwrap().steps[0].pause = Some(PauseStep::default());
    assert_error(&s, "spec.strategy.canary.steps[0]", "exactly one");
}

#[test]
fn bad_pause_duration() {
    let mut s = valid();
    s.strategy.canary.as_mut().unwrap().steps[1] = CanaryStep::pause_for("soon");
    assert_error(
        &s,
        "spec.strategy.canary.steps[1].pause.duration",
        "invalid duration",
    );
}

#[test]
fn shorthand_rules() {
    let mut s = valid();
    s.strategy.canary = Some(CanaryStrategy {
        step_weight: Some(60),
        max_weight: Some(50),
        ..Default::default()
    });
    assert_error(&s, "spec.strategy.canary.stepWeight", "exceeds maxWeight");
    s.strategy.canary = Some(CanaryStrategy {
        step_weight: Some(0),
        ..Default::default()
    });
    assert_error(&s, "spec.strategy.canary.stepWeight", "1..=100");
    s.strategy.canary = Some(CanaryStrategy {
        steps: vec![CanaryStep::weight(10)],
        step_weight: Some(10),
        ..Default::default()
    });
    assert_error(&s, "spec.strategy.canary", "exclusive");
    s.strategy.canary = Some(CanaryStrategy::default());
    assert_error(&s, "spec.strategy.canary", "set steps or stepWeight");
}

#[test]
fn router_count() {
    let mut s = valid();
    s.router.traefik = Some(TraefikRouter::default());
    assert_error(&s, "spec.router", "2 set");
    let mut s = valid();
    s.router.nginx = None;
    assert_error(&s, "spec.router", "0 set");
}

#[test]
fn traefik_api_group() {
    let mut s = valid();
    s.router.nginx = None;
    s.router.traefik = Some(TraefikRouter {
        api_group: Some("traefik.example".into()),
        ..Default::default()
    });
    assert_error(&s, "spec.router.traefik.apiGroup", "traefik.io");
}

#[test]
fn header_value_without_header() {
    let mut s = valid();
    s.router.nginx.as_mut().unwrap().canary_by_header_value = Some("yes".into());
    assert_error(
        &s,
        "spec.router.nginx.canaryByHeaderValue",
        "needs canaryByHeader",
    );
}

#[test]
fn interval_must_parse_and_be_at_least_a_second() {
    let mut s = valid();
    s.analysis.as_mut().unwrap().interval = "often".into();
    assert_error(&s, "spec.analysis.interval", "invalid duration");
    s.analysis.as_mut().unwrap().interval = "500ms".into();
    assert_error(&s, "spec.analysis.interval", "at least 1s");
}

#[test]
fn prometheus_address_must_be_url() {
    let mut s = valid();
    s.analysis
        .as_mut()
        .unwrap()
        .prometheus
        .as_mut()
        .unwrap()
        .address = "prometheus:9090".into();
    assert_error(&s, "spec.analysis.prometheus.address", "http(s) URL");
}

#[test]
fn metric_needs_query_and_judge() {
    let mut s = valid();
    let m = &mut s.analysis.as_mut().unwrap().metrics[1];
    m.builtin = None;
    assert_error(&s, "spec.analysis.metrics[1]", "set builtin or query");
    let mut s = valid();
    s.analysis.as_mut().unwrap().metrics[1].threshold = None;
    assert_error(&s, "spec.analysis.metrics[1]", "set threshold");
    let mut s = valid();
    s.analysis.as_mut().unwrap().metrics[1].query = Some("up".into());
    assert_error(&s, "spec.analysis.metrics[1]", "exclusive");
}

#[test]
fn threshold_bounds() {
    let mut s = valid();
    s.analysis.as_mut().unwrap().metrics[1].threshold = Some(Threshold {
        min: Some(2.0),
        max: Some(1.0),
        unless_stable_fails: None,
    });
    assert_error(&s, "spec.analysis.metrics[1].threshold", "min 2 > max 1");
    s.analysis.as_mut().unwrap().metrics[1].threshold = Some(Threshold {
        min: None,
        max: None,
        unless_stable_fails: None,
    });
    assert_error(&s, "spec.analysis.metrics[1].threshold", "set min or max");
    s.analysis.as_mut().unwrap().metrics[1].threshold = Some(Threshold {
        min: None,
        max: Some(f64::NAN),
        unless_stable_fails: None,
    });
    assert_error(&s, "spec.analysis.metrics[1].threshold.max", "finite");
}

#[test]
fn comparison_parameters() {
    let mut s = valid();
    let c = s.analysis.as_mut().unwrap().metrics[0]
        .comparison
        .as_mut()
        .unwrap();
    c.alpha = Some(1.5);
    c.tolerated_ratio = Some(3.0);
    assert_error(&s, "spec.analysis.metrics[0].comparison.alpha", "(0, 1)");
    assert_error(
        &s,
        "spec.analysis.metrics[0].comparison.degradedRatio",
        "> toleratedRatio",
    );
}

#[test]
fn custom_comparison_names_a_counter_and_refuses_increase_queries() {
    let mut s = valid();
    let m = &mut s.analysis.as_mut().unwrap().metrics[0];
    m.builtin = None;
    m.comparison.as_mut().unwrap().requests_query =
        Some("sum(increase(x{arm=\"{{arm}}\"}[1m]))".into());
    assert_error(
        &s,
        "spec.analysis.metrics[0].comparison.requestsQuery",
        "not supported",
    );
    let m = &mut s.analysis.as_mut().unwrap().metrics[0];
    let c = m.comparison.as_mut().unwrap();
    c.requests_query = None;
    c.counter = Some("http_requests_total".into());
    assert_error(
        &s,
        "spec.analysis.metrics[0].comparison.selector",
        "required",
    );
    assert_error(
        &s,
        "spec.analysis.metrics[0].comparison.badSelector",
        "required",
    );
    let c = s.analysis.as_mut().unwrap().metrics[0]
        .comparison
        .as_mut()
        .unwrap();
    c.selector = Some("app=\"web\"".into());
    assert_error(
        &s,
        "spec.analysis.metrics[0].comparison.selector",
        "{{arm}}",
    );
    let c = s.analysis.as_mut().unwrap().metrics[0]
        .comparison
        .as_mut()
        .unwrap();
    c.selector = Some("app=\"{{arm}}\"".into());
    c.bad_selector = Some("code=~\"5..\"".into());
    assert_eq!(errors_of(&s), vec![]);
    let c = s.analysis.as_mut().unwrap().metrics[0]
        .comparison
        .as_mut()
        .unwrap();
    c.counter = Some("9lives".into());
    c.negligible_bad_rate = Some(1.5);
    assert_error(
        &s,
        "spec.analysis.metrics[0].comparison.counter",
        "not a Prometheus metric name",
    );
    assert_error(
        &s,
        "spec.analysis.metrics[0].comparison.negligibleBadRate",
        "(0, 1)",
    );
    // The floor never applies to latency.
    let mut s = valid();
    let m = &mut s.analysis.as_mut().unwrap().metrics[0];
    m.builtin = Some("nginx-latency-vs-stable".into());
    m.comparison.as_mut().unwrap().negligible_bad_rate = Some(0.005);
    assert_error(
        &s,
        "spec.analysis.metrics[0].comparison.negligibleBadRate",
        "not for latency",
    );
}

#[test]
fn per_route_comparison_needs_a_label_name_and_an_error_comparison() {
    let spec = |comparison: &str, builtin: &str| -> RolloutSpec {
        let mut s = valid();
        let m = &mut s.analysis.as_mut().unwrap().metrics[0];
        m.builtin = Some(builtin.into());
        m.comparison = Some(serde_saphyr::from_str(comparison).expect("comparison parses"));
        s
    };
    let f = "spec.analysis.metrics[0].comparison";
    let ok = spec(
        "{ by: path, maxRoutes: 5, promoteWhen: everyRoute }",
        "nginx-errors-vs-stable",
    );
    assert_eq!(errors_of(&ok), vec![]);
    assert_error(
        &spec("{ by: 'path-x' }", "nginx-errors-vs-stable"),
        &format!("{f}.by"),
        "not a Prometheus label name",
    );
    assert_error(
        &spec("{ by: path }", "nginx-latency-vs-stable"),
        &format!("{f}.by"),
        "error comparisons only",
    );
    assert_error(
        &spec("{ maxRoutes: 3 }", "nginx-errors-vs-stable"),
        &format!("{f}.maxRoutes"),
        "needs comparison.by",
    );
    assert_error(
        &spec("{ by: path, maxRoutes: 0 }", "nginx-errors-vs-stable"),
        &format!("{f}.maxRoutes"),
        "1..=50",
    );
    // Unknown policies do not parse.
    assert!(serde_saphyr::from_str::<ComparisonSpec>("{ by: path, promoteWhen: some }").is_err());
}

#[test]
fn duplicate_metric_names() {
    let mut s = valid();
    s.analysis.as_mut().unwrap().metrics[1].name = "errors".into();
    assert_error(&s, "spec.analysis.metrics[1].name", "duplicate");
}

#[test]
fn unknown_template_and_empty_analysis() {
    let mut s = valid();
    let a = s.analysis.as_mut().unwrap();
    a.templates.push(TemplateRef {
        name: "missing".into(),
        ..Default::default()
    });
    assert_error(&s, "spec.analysis.templates[0].name", "not found");
    let a = s.analysis.as_mut().unwrap();
    a.templates.clear();
    a.metrics.clear();
    assert_error(&s, "spec.analysis.metrics", "at least one");
}

#[test]
fn alert_matcher_needs_labels() {
    let mut s = valid();
    s.alerts.push(AlertMatcher::default());
    assert_error(&s, "spec.alerts[1].labels", "at least one label");
}

#[test]
fn deadline_positive() {
    let mut s = valid();
    s.progress_deadline_seconds = 0;
    assert_error(&s, "spec.progressDeadlineSeconds", "> 0");
}

#[test]
fn malformed_yaml_is_an_error_not_a_panic() {
    let r: Result<RolloutSpec, _> = serde_saphyr::from_str("targetRef: [unclosed");
    assert!(r.is_err());
    let r: Result<RolloutSpec, _> =
        serde_saphyr::from_str("targetRef: {name: x}\nservice: {port: eighty}");
    assert!(r.is_err());
}

#[test]
fn command_annotation_round_trip_and_garbage() {
    let c = Command {
        id: "abc".into(),
        action: CommandAction::PromoteFull,
        by: Some("alice".into()),
        reason: None,
        alert_name: None,
        fingerprint: None,
        revision: Some("rev2".into()),
        at: chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
    };
    assert_eq!(Command::parse(&c.to_annotation()).unwrap(), c);
    assert!(Command::parse("{not json").is_err());
    assert!(
        Command::parse(r#"{"id":"x","action":"explode","at":"2026-01-01T00:00:00Z"}"#).is_err()
    );
}

#[test]
fn condition_transition_time_changes_only_on_status_change() {
    let t0 = chrono::DateTime::from_timestamp(1_000, 0).unwrap();
    let t1 = chrono::DateTime::from_timestamp(2_000, 0).unwrap();
    let mut st = RolloutStatus::default();
    st.set_condition("Ready", true, "A", "a", t0);
    st.set_condition("Ready", true, "B", "b", t1);
    assert_eq!(st.condition("Ready").unwrap().last_transition_time, t0);
    assert_eq!(st.condition("Ready").unwrap().reason, "B");
    st.set_condition("Ready", false, "C", "c", t1);
    assert_eq!(st.condition("Ready").unwrap().last_transition_time, t1);
}

#[test]
fn web_metrics_need_a_threshold_an_http_url_a_pointer_and_nothing_prometheus() {
    let web = |yaml: &str| {
        let mut spec = valid();
        let m: MetricSpec = serde_saphyr::from_str(yaml).expect("metric parses");
        spec.analysis.as_mut().unwrap().metrics = vec![m];
        spec
    };
    let ok = web("{name: w, threshold: {min: 0.9}, web: {url: 'http://checks/{{canary}}', jsonPointer: /score, timeout: 2s}}");
    assert_eq!(errors_of(&ok), vec![]);
    let f = "spec.analysis.metrics[0]";
    assert_error(
        &web("{name: w, web: {url: 'http://x/'}}"),
        f,
        "needs a threshold",
    );
    assert_error(
        &web(
            "{name: w, builtin: nginx-success-rate, threshold: {min: 1}, web: {url: 'http://x/'}}",
        ),
        f,
        "exclusive with builtin, query and comparison",
    );
    let w = "spec.analysis.metrics[0].web";
    assert_error(
        &web("{name: w, threshold: {min: 1}, web: {url: 'https://x/'}}"),
        &format!("{w}.url"),
        "https is not supported",
    );
    assert_error(
        &web("{name: w, threshold: {min: 1}, web: {url: 'ftp://x/'}}"),
        &format!("{w}.url"),
        "not an http:// URL",
    );
    assert_error(
        &web("{name: w, threshold: {min: 1}, web: {url: 'http://x/', jsonPointer: score}}"),
        &format!("{w}.jsonPointer"),
        "not a JSON Pointer",
    );
    assert_error(
        &web("{name: w, threshold: {min: 1}, web: {url: 'http://x/', body: '{}'}}"),
        &format!("{w}.body"),
        "needs method: POST",
    );
    assert_error(
        &web("{name: w, threshold: {min: 1}, web: {url: 'http://x/', timeout: 0s}}"),
        &format!("{w}.timeout"),
        "more than 0",
    );
    assert_error(
        &web("{name: w, threshold: {min: 1}, web: {url: 'http://x/', timeout: soon}}"),
        &format!("{w}.timeout"),
        "",
    );
    assert_error(
        &web("{name: w, threshold: {min: 1}, web: {url: 'http://x/', headers: {'a b': c}}}"),
        &format!("{w}.headers"),
        "not an HTTP header name",
    );
}

#[test]
fn job_metrics_need_a_pod_template_and_nothing_else() {
    let job = |yaml: &str| {
        let mut spec = valid();
        let m: MetricSpec = serde_saphyr::from_str(yaml).expect("metric parses");
        spec.analysis.as_mut().unwrap().metrics = vec![m];
        spec
    };
    let ok = "{name: smoke, job: {spec: {template: {spec: {restartPolicy: Never, containers: [{name: c, image: busybox}]}}}}}";
    assert_eq!(errors_of(&job(ok)), vec![]);
    let f = "spec.analysis.metrics[0]";
    assert_error(
        &job("{name: smoke, threshold: {max: 1}, job: {spec: {template: {spec: {containers: [{name: c}]}}}}}"),
        f,
        "judged by the Job's success",
    );
    assert_error(
        &job("{name: smoke, job: {spec: {}}}"),
        &format!("{f}.job.spec"),
        "needs template.spec.containers",
    );
    assert_error(
        &job("{name: smoke, job: {spec: {template: {spec: {restartPolicy: Always, containers: [{name: c}]}}}}}"),
        &format!("{f}.job.spec"),
        "restartPolicy Never or OnFailure",
    );
}

fn gated(yaml: &str) -> RolloutSpec {
    let mut spec = valid();
    spec.gates = serde_saphyr::from_str(yaml).expect("gates parse");
    spec
}

#[test]
fn gates_parse_with_defaults_and_a_valid_set_passes() {
    let spec = gated(
        r#"
preRollout:
  checks: [{ name: smoke, url: "http://smoke.test/run", timeout: 30s }]
confirmPromotion:
  deadline: 2h
  onDeadline: hold
  interval: 1m
  checks:
    - name: approval
      url: "http://approvals.test/ok"
      method: GET
      headers:
        - { name: Authorization, secretKeyRef: { name: approvals, key: token } }
        - { name: X-Team, value: web }
postRollout:
  checks: [{ name: notify, url: "http://hooks.test/done" }]
"#,
    );
    assert_eq!(errors_of(&spec), vec![]);
    let pre = spec.gates.pre_rollout.as_ref().unwrap();
    assert_eq!(pre.checks[0].method, GateMethod::Post);
    assert_eq!(pre.on_deadline, GateDeadlinePolicy::Fail);
    assert_eq!(pre.deadline, None);
    assert!(spec.gates.get(GateName::ConfirmTrafficIncrease).is_none());
}

#[test]
fn bad_gates_are_refused_naming_the_field() {
    let cases = [
        (
            "preRollout: { checks: [] }",
            "spec.gates.preRollout.checks",
            "1 to 10 checks",
        ),
        (
            "preRollout: { checks: [{ name: a, url: \"https://x.test/\" }] }",
            "spec.gates.preRollout.checks[0].url",
            "https is not supported",
        ),
        (
            "preRollout: { checks: [{ name: a, url: \"x.test/\" }] }",
            "spec.gates.preRollout.checks[0].url",
            "not an http:// URL",
        ),
        (
            "confirmPromotion: { deadline: soon, checks: [{ name: a, url: \"http://x/\" }] }",
            "spec.gates.confirmPromotion.deadline",
            "",
        ),
        (
            "confirmPromotion: { interval: 0s, checks: [{ name: a, url: \"http://x/\" }] }",
            "spec.gates.confirmPromotion.interval",
            "at least 1s",
        ),
        (
            "postRollout: { onDeadline: hold, checks: [{ name: a, url: \"http://x/\" }] }",
            "spec.gates.postRollout.onDeadline",
            "hold applies to gates that hold",
        ),
        (
            "onRollback: { checks: [{ name: a, url: \"http://x/\" }, { name: a, url: \"http://y/\" }] }",
            "spec.gates.onRollback.checks[1].name",
            "used twice",
        ),
        (
            "preRollout: { checks: [{ name: a, url: \"http://x/\", timeout: 5m }] }",
            "spec.gates.preRollout.checks[0].timeout",
            "at most 1m",
        ),
        (
            "preRollout: { checks: [{ name: a, url: \"http://x/\", headers: [{ name: \"Bad Name\", value: v }] }] }",
            "spec.gates.preRollout.checks[0].headers[0].name",
            "not an HTTP header name",
        ),
        (
            "preRollout: { checks: [{ name: a, url: \"http://x/\", headers: [{ name: A, value: v, env: B }] }] }",
            "spec.gates.preRollout.checks[0].headers[0]",
            "exactly one of value, secretKeyRef, env",
        ),
    ];
    for (yaml, field, msg) in cases {
        assert_error(&gated(yaml), field, msg);
    }
}

#[test]
fn unknown_gate_policies_and_methods_do_not_parse() {
    for yaml in [
        "preRollout: { onDeadline: retry, checks: [{ name: a, url: \"http://x/\" }] }",
        "preRollout: { checks: [{ name: a, url: \"http://x/\", method: PUT }] }",
    ] {
        assert!(serde_saphyr::from_str::<GatesSpec>(yaml).is_err(), "{yaml}");
    }
}
