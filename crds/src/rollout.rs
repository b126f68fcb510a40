//! The `Rollout` custom resource: spec (what the user wants) and status (where the rollout is).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::analysis::AnalysisSpec;
use crate::gates::GatesSpec;
use crate::status::RolloutStatus;

/// A progressive rollout of one Deployment: canary steps or a blue/green switch, gated by analysis.
#[derive(CustomResource, Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[kube(
    group = "sluice.dev",
    version = "v1alpha1",
    kind = "Rollout",
    plural = "rollouts",
    shortname = "sro",
    namespaced,
    status = "RolloutStatus",
    derive = "Default",
    derive = "PartialEq",
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"Weight","type":"integer","jsonPath":".status.canaryWeight"}"#,
    printcolumn = r#"{"name":"Step","type":"integer","jsonPath":".status.currentStep"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = crate::schema::k8s_integers)]
pub struct RolloutSpec {
    /// The workload that is rolled out. Sluice copies it to `NAME-primary` (stable).
    pub target_ref: TargetRef,
    /// Services Sluice creates in front of the primary and the canary.
    pub service: ServiceSpec,
    /// Exactly one of `canary` or `blueGreen`.
    pub strategy: Strategy,
    /// How traffic is shifted. Exactly one router.
    pub router: RouterSpec,
    /// Analysis run while the canary receives traffic (or during blue/green preview).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<AnalysisSpec>,
    /// HTTP checks asked before traffic, before each weight increase, before promotion, after
    /// promotion and on rollback (docs/gates.md).
    #[serde(default, skip_serializing_if = "GatesSpec::is_empty")]
    pub gates: GatesSpec,
    /// Alertmanager matchers: a firing alert whose labels match any entry aborts the rollout.
    /// Alerts labelled `rollout=<name>` and `namespace=<ns>` always match.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alerts: Vec<AlertMatcher>,
    /// Seconds the canary may take to become ready before the rollout fails. Default 600.
    #[serde(default = "default_progress_deadline")]
    #[schemars(range(min = 1))]
    pub progress_deadline_seconds: i64,
    /// What happens when a canary that was ready stops serving while it holds traffic.
    #[serde(default, skip_serializing_if = "CanaryLossSpec::is_default")]
    pub canary_loss: CanaryLossSpec,
    /// Built-in load sent to the canary's own address while it is analysed (docs/load.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load: Option<crate::load::LoadSpec>,
    /// After promotion, seconds during which a firing alert reverts to the previous stable. Default 0.
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub post_promotion_watch_seconds: i64,
    /// Pause the rollout where it is (no weight change, no promotion).
    #[serde(default)]
    pub paused: bool,
    /// Skip analysis: steps advance on weights and pauses only.
    #[serde(default)]
    pub skip_analysis: bool,
}

/// Default `progressDeadlineSeconds`.
pub const DEFAULT_PROGRESS_DEADLINE_SECONDS: i64 = 600;

fn default_progress_deadline() -> i64 {
    DEFAULT_PROGRESS_DEADLINE_SECONDS
}

/// A canary that was ready and has no ready pod any more while it holds traffic: every request
/// routed to it fails. Its weight goes to 0 after `graceSeconds` (analysis keeps running until
/// then, so its errors are evidence), then `policy` decides.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CanaryLossSpec {
    /// Seconds a weighted canary may have no ready pod before its weight goes to 0. Default 10.
    #[serde(default = "default_canary_loss_grace")]
    #[schemars(range(min = 0, max = 3600))]
    pub grace_seconds: i64,
    /// After the weight went to 0: `rollback` (default) or `hold` (wait for the canary to be
    /// ready again within `progressDeadlineSeconds`, then restore the step's weight).
    #[serde(default)]
    pub policy: CanaryLossPolicy,
}

/// Default `canaryLoss.graceSeconds`.
pub const DEFAULT_CANARY_LOSS_GRACE_SECONDS: i64 = 10;

fn default_canary_loss_grace() -> i64 {
    DEFAULT_CANARY_LOSS_GRACE_SECONDS
}

impl Default for CanaryLossSpec {
    fn default() -> Self {
        Self {
            grace_seconds: DEFAULT_CANARY_LOSS_GRACE_SECONDS,
            policy: CanaryLossPolicy::default(),
        }
    }
}

impl CanaryLossSpec {
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

/// What follows a lost canary's weight going to 0.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum CanaryLossPolicy {
    /// Roll the revision back (abort source `canaryLost`).
    #[default]
    Rollback,
    /// Keep the rollout at weight 0 until the canary is ready again (bounded by
    /// `progressDeadlineSeconds` from the loss), then restore the step's weight.
    Hold,
}

/// Reference to the rolled-out workload.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "self.kind == 'Deployment'", "message": "only kind Deployment is supported"}
]))]
pub struct TargetRef {
    /// API version of the target, `apps/v1`.
    #[serde(default = "default_api_version")]
    pub api_version: String,
    /// Kind of the target; only `Deployment` is supported.
    #[serde(default = "default_kind")]
    pub kind: String,
    /// Name of the Deployment in the Rollout's namespace.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

fn default_api_version() -> String {
    "apps/v1".to_string()
}
fn default_kind() -> String {
    "Deployment".to_string()
}

/// Services in front of primary and canary.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ServiceSpec {
    /// Service port.
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
    /// Container port; defaults to `port`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub target_port: Option<i32>,
    /// Base name of the services; defaults to the target's name (`NAME-primary`, `NAME-canary`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Port name, default `http`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_name: Option<String>,
    /// Manage the apex Service (`name`, default the target's name) too: it selects the serving
    /// (primary) pods, so in-cluster callers of that name reach the stable version before,
    /// during and after a rollout. Sluice creates it (one of that name that is not Sluice's
    /// blocks the Rollout) and on Rollout deletion hands it back selecting the target's pods.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub apex: bool,
}

/// Rollout strategy: exactly one of the two.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "has(self.canary) != has(self.blueGreen)", "message": "set exactly one of canary or blueGreen"}
]))]
pub struct Strategy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<CanaryStrategy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blue_green: Option<BlueGreenStrategy>,
}

/// Canary: explicit `steps`, or the `stepWeight`/`maxWeight` shorthand (an analysis at each weight).
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "(has(self.steps) && size(self.steps) > 0) != (has(self.stepWeight) || has(self.maxWeight))",
        "message": "set steps, or stepWeight (with optional maxWeight), not both"
    },
    {
        "rule": "!has(self.steps) || self.steps.filter(s, has(s.setWeight)).map(s, s.setWeight).isSorted()",
        "message": "setWeight must not decrease from one step to the next"
    },
    {
        "rule": "!has(self.stepWeight) || self.stepWeight <= (has(self.maxWeight) ? self.maxWeight : 50)",
        "message": "stepWeight must not exceed maxWeight (default 50)"
    }
]))]
pub struct CanaryStrategy {
    /// At most 100 steps (bounds the cost of the validation rules).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = crate::validate::MAX_STEPS))]
    pub steps: Vec<CanaryStep>,
    /// Shorthand: weight increment per step (1..=100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100))]
    pub step_weight: Option<i32>,
    /// Shorthand: last weight before promotion (1..=100). Default 50.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100))]
    pub max_weight: Option<i32>,
}

/// One canary step: exactly one of `setWeight`, `pause`, `analysis`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "(has(self.setWeight) ? 1 : 0) + (has(self.pause) ? 1 : 0) + (has(self.analysis) ? 1 : 0) == 1",
        "message": "set exactly one of setWeight, pause, analysis"
    }
]))]
pub struct CanaryStep {
    /// Route this percentage (0..=100) of traffic to the canary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100))]
    pub set_weight: Option<i32>,
    /// Wait: for `duration`, or until promoted when no duration is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause: Option<PauseStep>,
    /// Wait until the rollout's analysis passes at the current weight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<AnalysisStep>,
}

impl CanaryStep {
    pub fn weight(w: i32) -> Self {
        Self {
            set_weight: Some(w),
            ..Self::default()
        }
    }
    pub fn pause_for(duration: &str) -> Self {
        Self {
            pause: Some(PauseStep {
                duration: Some(duration.to_string()),
            }),
            ..Self::default()
        }
    }
    pub fn pause_until_promoted() -> Self {
        Self {
            pause: Some(PauseStep { duration: None }),
            ..Self::default()
        }
    }
    pub fn analyse() -> Self {
        Self {
            analysis: Some(AnalysisStep::default()),
            ..Self::default()
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PauseStep {
    /// Duration such as `30s`, `5m`, `1h30m`; absent = until promoted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisStep {
    /// Consecutive passing analysis runs required (threshold metrics). Default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub iterations: Option<u32>,
}

/// Blue/green: the canary gets full replicas, is analysed on its preview service, then 0 -> 100.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BlueGreenStrategy {
    /// Passing analysis runs required before the switch. Default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub analysis_iterations: Option<u32>,
    /// Switch automatically after analysis; otherwise wait for a promote command. Default true.
    #[serde(default = "default_true")]
    pub auto_promote: bool,
    /// Name of the preview service (default `NAME-canary`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview_service: Option<String>,
}

fn default_true() -> bool {
    true
}

/// Traffic router: exactly one.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "(has(self.nginx) ? 1 : 0) + (has(self.traefik) ? 1 : 0) + (has(self.gatewayApi) ? 1 : 0) == 1",
        "message": "set exactly one of nginx, traefik, gatewayApi"
    }
]))]
pub struct RouterSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nginx: Option<NginxRouter>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traefik: Option<TraefikRouter>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway_api: Option<GatewayApiRouter>,
}

/// ingress-nginx: Sluice owns a canary Ingress copied from `ingressRef`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "!has(self.canaryByHeaderValue) || has(self.canaryByHeader)",
        "message": "canaryByHeaderValue needs canaryByHeader"
    }
]))]
pub struct NginxRouter {
    /// The user's Ingress (routing to the target's service).
    #[schemars(length(min = 1, max = 253))]
    pub ingress_ref: String,
    /// Extra annotations put on the canary Ingress.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub additional_annotations: BTreeMap<String, String>,
    /// A/B: requests with this header go to the canary (`canary-by-header`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary_by_header: Option<String>,
    /// Header value for `canary-by-header-value`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary_by_header_value: Option<String>,
    /// A/B: requests with this cookie set to `always` go to the canary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary_by_cookie: Option<String>,
}

/// Traefik: a TraefikService with weighted primary/canary members.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "!has(self.apiGroup) || self.apiGroup in ['traefik.io', 'traefik.containo.us']",
        "message": "apiGroup must be traefik.io or traefik.containo.us"
    }
]))]
pub struct TraefikRouter {
    /// Existing TraefikService to manage; default: Sluice generates `NAME` itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traefik_service_ref: Option<String>,
    /// `traefik.io` (default) or `traefik.containo.us`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_group: Option<String>,
}

/// Gateway API: weights of the HTTPRoute's backendRefs.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GatewayApiRouter {
    #[schemars(length(min = 1, max = 253))]
    pub http_route_ref: String,
}

/// Labels an Alertmanager alert must carry (all of them, equal values) to abort this rollout.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AlertMatcher {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[schemars(extend("minProperties" = 1))]
    pub labels: BTreeMap<String, String>,
}

impl AlertMatcher {
    /// True when every label of the matcher is present with the same value.
    pub fn matches(&self, alert_labels: &BTreeMap<String, String>) -> bool {
        !self.labels.is_empty()
            && self
                .labels
                .iter()
                .all(|(k, v)| alert_labels.get(k) == Some(v))
    }
}

/// Timestamp helper used by status and commands.
pub type Time = DateTime<Utc>;
