//! Analysis settings of a Rollout, metric definitions, and the `AnalysisTemplate` resource.

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How analysis runs and what its verdicts do.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "(has(self.metrics) && size(self.metrics) > 0) || (has(self.templates) && size(self.templates) > 0)",
        "message": "analysis needs at least one metric or template"
    }
]))]
pub struct AnalysisSpec {
    /// Time between analysis runs, e.g. `30s`, `1m`. Default `1m`.
    #[serde(default = "default_interval")]
    pub interval: String,
    /// Failed runs tolerated before rollback: the rollout fails on run number `failureLimit + 1`. Default 0.
    #[serde(default)]
    pub failure_limit: u32,
    /// Consecutive inconclusive runs (no data, NaN, no traffic) tolerated before `onInconclusive`. Default 3.
    #[serde(default = "default_inconclusive_limit")]
    pub inconclusive_limit: u32,
    /// What happens past the inconclusive limit. Default `pause` (a human decides).
    #[serde(default)]
    pub on_inconclusive: InconclusivePolicy,
    /// Consecutive query errors (Prometheus down, bad query) tolerated before the rollout is held. Default 3.
    #[serde(default = "default_inconclusive_limit")]
    pub error_limit: u32,
    /// How a hold for query errors ends. Default `resume`: analysis keeps querying and the hold
    /// ends by itself at the first run without errors (within `progressDeadlineSeconds` from the
    /// hold's start; after that a human decides). `pause`: a human decides at once.
    #[serde(default, skip_serializing_if = "ErrorPolicy::is_default")]
    pub on_errors: ErrorPolicy,
    /// Prometheus to query.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<PrometheusSpec>,
    /// Metrics checked at every run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<MetricSpec>,
    /// Metrics taken from AnalysisTemplates in the same namespace.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub templates: Vec<TemplateRef>,
}

fn default_interval() -> String {
    "1m".to_string()
}
fn default_inconclusive_limit() -> u32 {
    3
}

/// What to do when analysis stays inconclusive past its limit.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum InconclusivePolicy {
    /// Pause and wait for a human (promote or abort).
    #[default]
    Pause,
    /// Roll back.
    Fail,
}

/// How a hold for analysis errors ends.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum ErrorPolicy {
    /// Keep querying; resume by itself once a run has no errors.
    #[default]
    Resume,
    /// Pause and wait for a human (resume, promote or abort).
    Pause,
}

impl ErrorPolicy {
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

/// Where Prometheus is.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PrometheusSpec {
    /// Base URL, e.g. `http://prometheus.monitoring:9090`.
    pub address: String,
    /// Query timeout, e.g. `10s`. Default `10s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// Secret (same namespace) whose key `token` holds a bearer token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token_secret: Option<String>,
}

/// Reference to an AnalysisTemplate plus argument values.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TemplateRef {
    pub name: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub args: BTreeMap<String, String>,
}

/// One metric: a query (custom PromQL template or a built-in) judged by a threshold or by
/// a statistical comparison of canary against stable.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "!(has(self.builtin) && has(self.query))", "message": "builtin and query are exclusive"},
    {"rule": "!(has(self.threshold) && has(self.comparison))", "message": "threshold and comparison are exclusive"},
    {"rule": "!has(self.web) || (!has(self.builtin) && !has(self.query) && !has(self.comparison) && has(self.threshold))", "message": "a web metric needs a threshold and no builtin, query or comparison"},
    {"rule": "!has(self.job) || (!has(self.builtin) && !has(self.query) && !has(self.comparison) && !has(self.threshold) && !has(self.web))", "message": "a job metric is judged by the Job's success: no builtin, query, comparison, threshold or web"}
]))]
pub struct MetricSpec {
    /// Unique within the rollout.
    pub name: String,
    /// Built-in metric name, e.g. `nginx-success-rate`, `nginx-latency-p99`, `nginx-errors-vs-stable`,
    /// `traefik-latency-vs-stable` (see docs/analysis.md). Exclusive with `query`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub builtin: Option<String>,
    /// PromQL template with `{{variables}}` (namespace, name, primary, canary, interval, ingress,
    /// service, and `args`). Exclusive with `builtin`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// Threshold check on the query's value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<Threshold>,
    /// Statistical canary-vs-stable comparison (for `*-vs-stable` built-ins or custom count queries).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comparison: Option<ComparisonSpec>,
    /// A number read from an HTTP endpoint's JSON answer, judged by `threshold` (instead of a
    /// Prometheus query). Exclusive with `builtin`, `query` and `comparison`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web: Option<WebCheck>,
    /// Kubernetes only: run a Job at every analysis run; its success passes, its failure fails
    /// (docs/checks.md). Exclusive with every other kind of metric and with `threshold`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<JobCheck>,
    /// Template arguments.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub args: BTreeMap<String, String>,
}

/// A Job run as a check. Sluice names it, labels it, owns it (it goes with the Rollout), adds the
/// canary's address to every container's environment (`SLUICE_CANARY_ADDRESS`,
/// `SLUICE_STABLE_ADDRESS`, `SLUICE_ROLLOUT`, `SLUICE_REVISION`), and deletes it once read.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct JobCheck {
    /// A `batch/v1` JobSpec, as in a Job's `spec` (`template` with the pod, `backoffLimit`, ...).
    /// Without `activeDeadlineSeconds` Sluice sets 600, so a hung check cannot hold a rollout.
    #[schemars(schema_with = "crate::schema::preserve_unknown")]
    pub spec: serde_json::Value,
}

/// HTTP method of a web check.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
pub enum WebMethod {
    #[default]
    #[serde(rename = "GET")]
    Get,
    #[serde(rename = "POST")]
    Post,
}

/// One HTTP request whose JSON answer holds the metric's value. `url`, `body` and header values
/// are templates with the same `{{variables}}` as queries.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WebCheck {
    /// `http://` URL (Sluice's HTTP client is built without TLS: use an in-cluster or local
    /// address).
    #[schemars(length(min = 8, max = 2048))]
    pub url: String,
    /// `GET` (default) or `POST`.
    #[serde(default)]
    pub method: WebMethod,
    /// Request body for `POST`, sent as `application/json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 65536))]
    pub body: Option<String>,
    /// Extra request headers.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// RFC 6901 JSON Pointer to the value in the answer, e.g. `/data/errorRate`; empty for a
    /// document that is just the number. The value may be a JSON number or a string holding one.
    #[serde(default)]
    #[schemars(length(max = 1024))]
    pub json_pointer: String,
    /// Request timeout, e.g. `5s`. Default `10s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
}

/// Pass when `min <= value <= max` (either bound optional, at least one present).
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "has(self.min) || has(self.max)", "message": "set min or max"},
    {"rule": "!has(self.min) || !has(self.max) || self.min <= self.max", "message": "min must not exceed max"}
]))]
pub struct Threshold {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// A failure is Inconclusive when stable fails the same threshold over the same window (a
    /// shared incident, not the canary). Default true for built-in metrics; custom queries
    /// cannot use it (Sluice does not know stable's query).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unless_stable_fails: Option<bool>,
}

/// Sequential, anytime-valid test of the canary's bad-event rate against stable's.
///
/// Counts are exact: Sluice reads the raw samples of a counter (`metric{selector}[range]`) and
/// takes each series' increase over the window itself, because `increase()` extrapolates. A
/// custom comparison therefore names a counter and label selectors, not a query.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "!has(self.alpha) || (self.alpha > 0.0 && self.alpha < 1.0)", "message": "alpha must be in (0, 1)"},
    {"rule": "!has(self.beta) || (self.beta > 0.0 && self.beta < 1.0)", "message": "beta must be in (0, 1)"},
    {"rule": "!has(self.toleratedRatio) || self.toleratedRatio >= 1.0", "message": "toleratedRatio must be >= 1"},
    {
        "rule": "(has(self.degradedRatio) ? self.degradedRatio : 2.0) > (has(self.toleratedRatio) ? self.toleratedRatio : 1.2)",
        "message": "degradedRatio (default 2) must exceed toleratedRatio (default 1.2)"
    },
    {"rule": "!has(self.latencyBoundarySeconds) || self.latencyBoundarySeconds > 0.0", "message": "latencyBoundarySeconds must be > 0"}
]))]
pub struct ComparisonSpec {
    /// Custom error comparison: the request counter's metric name, e.g. `http_requests_total`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counter: Option<String>,
    /// Custom latency comparison: the histogram's base name, e.g. `http_request_duration_seconds`
    /// (its `_bucket` series are read). Exclusive with `counter`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub histogram: Option<String>,
    /// Label matchers of one arm, with `{{arm}}` for the arm's name (primary|canary), e.g.
    /// `app="{{arm}}"`. Required with `counter` or `histogram`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// Matchers that make a counted request a bad event, e.g. `code=~"5.."`. Required with `counter`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bad_selector: Option<String>,
    /// Not supported (refused by validation): `increase()`-style queries cannot be windowed
    /// exactly. Use `counter`, `selector` and `badSelector`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_query: Option<String>,
    /// Not supported (refused by validation); see `requestsQuery`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bad_query: Option<String>,
    /// Error comparisons only, off unless set: a canary whose bad rate is shown to be below this
    /// (e.g. 0.005) may pass even when the ratio to stable is not yet bounded. A Pass then
    /// guarantees only that a canary both `degradedRatio` times worse and at or above this rate is
    /// promoted with chance at most beta (docs/analysis.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub negligible_bad_rate: Option<f64>,
    /// Latency built-ins: histogram bucket boundary (seconds) above which a request counts as bad.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_boundary_seconds: Option<f64>,
    /// False-rollback rate bound (0 < alpha < 1). Default 0.05.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alpha: Option<f64>,
    /// False-promotion rate bound (0 < beta < 1). Default 0.05.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beta: Option<f64>,
    /// Canary/stable bad-rate ratio still tolerated (>= 1). Default 1.2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerated_ratio: Option<f64>,
    /// Ratio considered a real degradation, the smallest worth detecting (> toleratedRatio). Default 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub degraded_ratio: Option<f64>,
    /// Canary requests required before a Pass. Default 200.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_canary_requests: Option<u64>,
    /// Error comparisons only: the series label that names a route (e.g. `path` on
    /// ingress-nginx's request counter). The test then also runs on each route's own counts, so
    /// a regression on one route is judged on that route; alpha is split over the pooled test
    /// and `maxRoutes` route slots (docs/analysis.md, "Per-route comparison").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// With `by`: route slots, the last one for all further routes together. Default 10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 50))]
    pub max_routes: Option<u32>,
    /// With `by`: what a Pass needs. `pooled` (default): the test on all routes together
    /// passes and no route fails; `everyRoute`: every route with canary traffic passes its own
    /// test (slower; bounds false promotions of a canary worse on any one route).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promote_when: Option<RoutePromotion>,
}

/// What a per-route comparison's Pass needs (`comparison.promoteWhen`).
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum RoutePromotion {
    /// The test on all routes together passes and no route fails.
    #[default]
    Pooled,
    /// Every route with canary traffic passes its own test.
    EveryRoute,
}

/// Reusable metrics with PromQL templates and declared arguments.
#[derive(CustomResource, Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[kube(
    group = "sluice.dev",
    version = "v1alpha1",
    kind = "AnalysisTemplate",
    plural = "analysistemplates",
    namespaced,
    derive = "Default",
    derive = "PartialEq"
)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = crate::schema::k8s_integers)]
pub struct AnalysisTemplateSpec {
    /// Arguments the metrics use, with optional defaults.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<TemplateArg>,
    pub metrics: Vec<MetricSpec>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TemplateArg {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}
