//! Validation of a Rollout spec with precise, field-addressed messages.

use std::collections::BTreeSet;

use crate::analysis::{AnalysisSpec, MetricSpec};
use crate::duration::parse_duration;
use crate::rollout::{CanaryStrategy, RolloutSpec};

/// Most canary steps a Rollout may have (the CRD's `maxItems`, which also bounds the cost of
/// its CEL rules).
pub const MAX_STEPS: usize = 100;

/// One problem in a spec: the field path and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// All problems found in a spec.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid Rollout: {}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))]
pub struct ValidationError(pub Vec<FieldError>);

mod route_split;

struct Errors(Vec<FieldError>);

impl Errors {
    fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError {
            field: field.into(),
            message: message.into(),
        });
    }
}

/// Validate a spec. `known_templates`: names of AnalysisTemplates that exist (None = not checked).
pub fn validate(
    spec: &RolloutSpec,
    known_templates: Option<&[String]>,
) -> Result<(), ValidationError> {
    let mut e = Errors(Vec::new());
    if spec.target_ref.name.trim().is_empty() {
        e.push("spec.targetRef.name", "must not be empty");
    }
    if spec.target_ref.kind != "Deployment" {
        e.push(
            "spec.targetRef.kind",
            format!(
                "only Deployment is supported, got {:?}",
                spec.target_ref.kind
            ),
        );
    }
    if !(1..=65535).contains(&spec.service.port) {
        e.push(
            "spec.service.port",
            format!("must be 1..=65535, got {}", spec.service.port),
        );
    }
    if let Some(tp) = spec.service.target_port {
        if !(1..=65535).contains(&tp) {
            e.push(
                "spec.service.targetPort",
                format!("must be 1..=65535, got {tp}"),
            );
        }
    }
    if spec.progress_deadline_seconds <= 0 {
        e.push("spec.progressDeadlineSeconds", "must be > 0");
    }
    if !(0..=3600).contains(&spec.canary_loss.grace_seconds) {
        e.push("spec.canaryLoss.graceSeconds", "must be 0..=3600");
    }
    if let Some(load) = &spec.load {
        for (field, message) in load.problems() {
            e.push(format!("spec.load.{field}"), message);
        }
    }
    if spec.post_promotion_watch_seconds < 0 {
        e.push("spec.postPromotionWatchSeconds", "must be >= 0");
    }
    match (&spec.strategy.canary, &spec.strategy.blue_green) {
        (None, None) => e.push(
            "spec.strategy",
            "set exactly one of canary or blueGreen (none set)",
        ),
        (Some(_), Some(_)) => e.push(
            "spec.strategy",
            "set exactly one of canary or blueGreen (both set)",
        ),
        (Some(c), None) => validate_canary(c, &mut e),
        (None, Some(bg)) => {
            if bg.analysis_iterations == Some(0) {
                e.push("spec.strategy.blueGreen.analysisIterations", "must be >= 1");
            }
        }
    }
    let routers = [
        spec.router.nginx.is_some(),
        spec.router.traefik.is_some(),
        spec.router.gateway_api.is_some(),
    ]
    .iter()
    .filter(|b| **b)
    .count();
    if routers != 1 {
        e.push(
            "spec.router",
            format!("set exactly one of nginx, traefik, gatewayApi ({routers} set)"),
        );
    }
    if let Some(n) = &spec.router.nginx {
        if n.ingress_ref.trim().is_empty() {
            e.push("spec.router.nginx.ingressRef", "must not be empty");
        }
        if n.canary_by_header_value.is_some() && n.canary_by_header.is_none() {
            e.push(
                "spec.router.nginx.canaryByHeaderValue",
                "needs canaryByHeader",
            );
        }
    }
    if let Some(t) = &spec.router.traefik {
        if let Some(g) = &t.api_group {
            if g != "traefik.io" && g != "traefik.containo.us" {
                e.push(
                    "spec.router.traefik.apiGroup",
                    format!("must be traefik.io or traefik.containo.us, got {g:?}"),
                );
            }
        }
    }
    if let Some(a) = &spec.analysis {
        validate_analysis(a, known_templates, &mut e);
    }
    for (field, message) in crate::gates::problems(&spec.gates) {
        e.push(field, message);
    }
    for (i, m) in spec.alerts.iter().enumerate() {
        if m.labels.is_empty() {
            e.push(
                format!("spec.alerts[{i}].labels"),
                "must name at least one label",
            );
        }
    }
    if e.0.is_empty() {
        Ok(())
    } else {
        Err(ValidationError(e.0))
    }
}

fn validate_canary(c: &CanaryStrategy, e: &mut Errors) {
    let base = "spec.strategy.canary";
    let shorthand = c.step_weight.is_some() || c.max_weight.is_some();
    if c.steps.is_empty() && !shorthand {
        e.push(base, "set steps or stepWeight (with optional maxWeight)");
        return;
    }
    if !c.steps.is_empty() && shorthand {
        e.push(base, "steps and stepWeight/maxWeight are exclusive");
        return;
    }
    if shorthand {
        let step = c.step_weight.unwrap_or(0);
        let max = c.max_weight.unwrap_or(50);
        if !(1..=100).contains(&step) {
            e.push(
                format!("{base}.stepWeight"),
                format!("must be 1..=100, got {step}"),
            );
        }
        if !(1..=100).contains(&max) {
            e.push(
                format!("{base}.maxWeight"),
                format!("must be 1..=100, got {max}"),
            );
        }
        if step > max {
            e.push(
                format!("{base}.stepWeight"),
                format!("{step} exceeds maxWeight {max}"),
            );
        }
        return;
    }
    if c.steps.len() > MAX_STEPS {
        e.push(
            format!("{base}.steps"),
            format!("at most {MAX_STEPS} steps, got {}", c.steps.len()),
        );
    }
    let mut last = 0;
    for (i, s) in c.steps.iter().enumerate() {
        let field = format!("{base}.steps[{i}]");
        let kinds = [
            s.set_weight.is_some(),
            s.pause.is_some(),
            s.analysis.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if kinds != 1 {
            e.push(
                &field,
                format!("set exactly one of setWeight, pause, analysis ({kinds} set)"),
            );
            continue;
        }
        if let Some(w) = s.set_weight {
            if !(0..=100).contains(&w) {
                e.push(
                    format!("{field}.setWeight"),
                    format!("must be 0..=100, got {w}"),
                );
            } else if w < last {
                e.push(
                    format!("{field}.setWeight"),
                    format!("weights must not decrease: {w} after {last}"),
                );
            } else {
                last = w;
            }
        }
        if let Some(p) = &s.pause {
            if let Some(d) = &p.duration {
                if let Err(err) = parse_duration(d) {
                    e.push(format!("{field}.pause.duration"), err.to_string());
                }
            }
        }
        if let Some(a) = &s.analysis {
            if a.iterations == Some(0) {
                e.push(format!("{field}.analysis.iterations"), "must be >= 1");
            }
        }
    }
}

fn validate_analysis(a: &AnalysisSpec, known: Option<&[String]>, e: &mut Errors) {
    let base = "spec.analysis";
    match parse_duration(&a.interval) {
        Ok(d) if d.as_millis() < 1000 => e.push(format!("{base}.interval"), "must be at least 1s"),
        Ok(_) => {}
        Err(err) => e.push(format!("{base}.interval"), err.to_string()),
    }
    if let Some(p) = &a.prometheus {
        if !(p.address.starts_with("http://") || p.address.starts_with("https://")) {
            e.push(
                format!("{base}.prometheus.address"),
                format!("must be an http(s) URL, got {:?}", p.address),
            );
        }
        if let Some(t) = &p.timeout {
            if let Err(err) = parse_duration(t) {
                e.push(format!("{base}.prometheus.timeout"), err.to_string());
            }
        }
    }
    if a.metrics.is_empty() && a.templates.is_empty() {
        e.push(
            format!("{base}.metrics"),
            "analysis needs at least one metric or template",
        );
    }
    let mut names = BTreeSet::new();
    for (i, m) in a.metrics.iter().enumerate() {
        let field = format!("{base}.metrics[{i}]");
        if !names.insert(m.name.clone()) {
            e.push(
                format!("{field}.name"),
                format!("duplicate metric name {:?}", m.name),
            );
        }
        validate_metric(m, &field, e);
    }
    for (i, t) in a.templates.iter().enumerate() {
        if let Some(known) = known {
            if !known.iter().any(|k| k == &t.name) {
                e.push(
                    format!("{base}.templates[{i}].name"),
                    format!("AnalysisTemplate {:?} not found", t.name),
                );
            }
        }
    }
}

/// Validate one metric (also used for AnalysisTemplate metrics).
pub fn validate_metric_spec(m: &MetricSpec, field: &str) -> Result<(), ValidationError> {
    let mut e = Errors(Vec::new());
    validate_metric(m, field, &mut e);
    if e.0.is_empty() {
        Ok(())
    } else {
        Err(ValidationError(e.0))
    }
}

fn validate_metric(m: &MetricSpec, field: &str, e: &mut Errors) {
    if m.name.trim().is_empty() {
        e.push(format!("{field}.name"), "must not be empty");
    }
    if let Some(w) = &m.web {
        validate_web(m, w, field, e);
        return;
    }
    if let Some(j) = &m.job {
        validate_job(m, j, field, e);
        return;
    }
    let custom_comparison = m
        .comparison
        .as_ref()
        .is_some_and(|c| c.counter.is_some() || c.histogram.is_some());
    match (&m.builtin, &m.query) {
        (None, None) if !custom_comparison => e.push(
            field,
            "set builtin or query (or comparison.counter / comparison.histogram)",
        ),
        (Some(_), Some(_)) => e.push(field, "builtin and query are exclusive"),
        _ => {}
    }
    let comparing = m
        .builtin
        .as_deref()
        .is_some_and(|b| b.ends_with("-vs-stable"))
        || m.comparison.is_some();
    match (&m.threshold, comparing) {
        (None, false) => e.push(field, "set threshold (min/max) or a comparison with stable"),
        (Some(_), true) => e.push(field, "threshold and comparison are exclusive"),
        _ => {}
    }
    if let Some(t) = &m.threshold {
        match (t.min, t.max) {
            (None, None) => e.push(format!("{field}.threshold"), "set min or max"),
            (Some(lo), Some(hi)) if lo > hi => {
                e.push(format!("{field}.threshold"), format!("min {lo} > max {hi}"))
            }
            _ => {}
        }
        for (k, v) in [("min", t.min), ("max", t.max)] {
            if v.is_some_and(|v| !v.is_finite()) {
                e.push(format!("{field}.threshold.{k}"), "must be a finite number");
            }
        }
    }
    if let Some(c) = &m.comparison {
        for (k, v) in [("alpha", c.alpha), ("beta", c.beta)] {
            if let Some(v) = v {
                if !(v > 0.0 && v < 1.0) {
                    e.push(
                        format!("{field}.comparison.{k}"),
                        format!("must be in (0, 1), got {v}"),
                    );
                }
            }
        }
        let tol = c.tolerated_ratio.unwrap_or(1.2);
        let deg = c.degraded_ratio.unwrap_or(2.0);
        if !(tol.is_finite() && tol >= 1.0) {
            e.push(
                format!("{field}.comparison.toleratedRatio"),
                format!("must be >= 1, got {tol}"),
            );
        }
        if !(deg.is_finite() && deg > tol) {
            e.push(
                format!("{field}.comparison.degradedRatio"),
                format!("must be > toleratedRatio ({tol}), got {deg}"),
            );
        }
        validate_comparison_source(m, c, field, e);
        route_split::validate_route_split(m, c, field, e);
        if let Some(b) = c.latency_boundary_seconds {
            if !(b.is_finite() && b > 0.0) {
                e.push(
                    format!("{field}.comparison.latencyBoundarySeconds"),
                    "must be > 0",
                );
            }
        }
    }
}

fn validate_comparison_source(
    m: &MetricSpec,
    c: &crate::ComparisonSpec,
    field: &str,
    e: &mut Errors,
) {
    let f = |k: &str| format!("{field}.comparison.{k}");
    for (k, v) in [
        ("requestsQuery", &c.requests_query),
        ("badQuery", &c.bad_query),
    ] {
        if v.is_some() {
            e.push(
                f(k),
                "not supported: increase()/rate() extrapolate, so such a query cannot count a window exactly; name the counter instead (comparison.counter, comparison.selector with {{arm}}, comparison.badSelector)",
            );
        }
    }
    let latency_builtin = m
        .builtin
        .as_deref()
        .is_some_and(|b| b.ends_with("latency-vs-stable") || b == "latency-comparison");
    match (&c.counter, &c.histogram) {
        (Some(_), Some(_)) => e.push(f("histogram"), "counter and histogram are exclusive"),
        (None, None) if m.builtin.is_none() && c.requests_query.is_none() => e.push(
            format!("{field}.comparison"),
            "a custom comparison needs counter (errors) or histogram (latency), with selector",
        ),
        _ => {}
    }
    let custom = c.counter.is_some() || c.histogram.is_some();
    if custom {
        if m.builtin.is_some() {
            e.push(
                f("counter"),
                "counter/histogram are for custom comparisons, not built-ins",
            );
        }
        for (k, v) in [("counter", &c.counter), ("histogram", &c.histogram)] {
            if let Some(name) = v {
                let ok = !name.is_empty()
                    && name
                        .chars()
                        .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == ':')
                    && !name.starts_with(|ch: char| ch.is_ascii_digit());
                if !ok {
                    e.push(f(k), format!("{name:?} is not a Prometheus metric name"));
                }
            }
        }
        match &c.selector {
            Some(sel) if sel.contains("{{arm}}") || sel.contains("{{ arm }}") => {}
            Some(_) => e.push(
                f("selector"),
                "must use {{arm}} so each arm selects its own series",
            ),
            None => e.push(f("selector"), "required with counter or histogram"),
        }
        for (k, v) in [("selector", &c.selector), ("badSelector", &c.bad_selector)] {
            if v.as_deref().is_some_and(|s| {
                s.contains(['{', '}'])
                    && !s
                        .replace("{{arm}}", "")
                        .replace("{{ arm }}", "")
                        .chars()
                        .all(|ch| ch != '{' && ch != '}')
            }) {
                e.push(
                    f(k),
                    "label matchers only, without braces (e.g. app=\"{{arm}}\")",
                );
            }
        }
        if c.counter.is_some() && c.bad_selector.is_none() {
            e.push(
                f("badSelector"),
                "required with counter, e.g. code=~\"5..\"",
            );
        }
    }
    if let Some(p) = c.negligible_bad_rate {
        if !(p > 0.0 && p < 1.0) {
            e.push(
                f("negligibleBadRate"),
                format!("must be in (0, 1), got {p}"),
            );
        }
        if latency_builtin || c.histogram.is_some() {
            e.push(
                f("negligibleBadRate"),
                "not for latency: the slow-request rate at a tail boundary is small by construction, so a floor would pass slower canaries",
            );
        }
    }
}

/// A web metric: one HTTP request and a threshold, nothing Prometheus-specific.
fn validate_web(m: &MetricSpec, w: &crate::WebCheck, field: &str, e: &mut Errors) {
    let f = |k: &str| format!("{field}.web.{k}");
    if m.builtin.is_some() || m.query.is_some() || m.comparison.is_some() {
        e.push(field, "web is exclusive with builtin, query and comparison");
    }
    match &m.threshold {
        None => e.push(field, "a web metric needs a threshold (min/max)"),
        Some(t) => match (t.min, t.max) {
            (None, None) => e.push(format!("{field}.threshold"), "set min or max"),
            (Some(lo), Some(hi)) if lo > hi => {
                e.push(format!("{field}.threshold"), format!("min {lo} > max {hi}"))
            }
            _ => {}
        },
    }
    let url = w.url.trim();
    if url.starts_with("https://") {
        e.push(
            f("url"),
            "https is not supported (Sluice's HTTP client has no TLS): use an http:// address",
        );
    } else if !url.starts_with("http://") || url.len() <= "http://".len() {
        e.push(f("url"), format!("{url:?} is not an http:// URL"));
    }
    if !w.json_pointer.is_empty() && !w.json_pointer.starts_with('/') {
        e.push(
            f("jsonPointer"),
            format!(
                "{:?} is not a JSON Pointer: it starts with / (e.g. /data/value), or is empty",
                w.json_pointer
            ),
        );
    }
    if w.body.is_some() && w.method == crate::WebMethod::Get {
        e.push(f("body"), "a body needs method: POST");
    }
    if let Some(t) = &w.timeout {
        match crate::parse_duration(t) {
            Ok(d) if d.is_zero() || d.as_secs() > 300 => {
                e.push(f("timeout"), "must be more than 0 and at most 5m")
            }
            Ok(_) => {}
            Err(err) => e.push(f("timeout"), err.to_string()),
        }
    }
    for k in w.headers.keys() {
        let ok = !k.is_empty()
            && k.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if !ok {
            e.push(f("headers"), format!("{k:?} is not an HTTP header name"));
        }
    }
}

/// A job metric: a JobSpec with a pod template, nothing else.
fn validate_job(m: &MetricSpec, j: &crate::JobCheck, field: &str, e: &mut Errors) {
    if m.builtin.is_some()
        || m.query.is_some()
        || m.comparison.is_some()
        || m.threshold.is_some()
        || m.web.is_some()
    {
        e.push(
            field,
            "a job metric is judged by the Job's success: remove builtin, query, comparison, threshold and web",
        );
    }
    let containers = j.spec.pointer("/template/spec/containers");
    if containers
        .and_then(|c| c.as_array())
        .is_none_or(|c| c.is_empty())
    {
        e.push(
            format!("{field}.job.spec"),
            "needs template.spec.containers (a batch/v1 JobSpec)",
        );
    }
    if let Some(p) = j
        .spec
        .pointer("/template/spec/restartPolicy")
        .and_then(|p| p.as_str())
    {
        if p == "Always" {
            e.push(
                format!("{field}.job.spec"),
                "a Job's pods need restartPolicy Never or OnFailure",
            );
        }
    }
}
