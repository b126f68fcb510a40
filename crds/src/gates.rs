//! Gates (`spec.gates`): HTTP checks asked at fixed points of a rollout. A gate is open when
//! every one of its checks answers 2xx; a closed gate holds the rollout (never a rollback or
//! an abort) until it opens or its deadline passes (docs/gates.md).
//!
//! The points follow Flagger's webhooks (https://docs.flagger.app/usage/webhooks:
//! pre-rollout, confirm-traffic-increase, confirm-promotion, post-rollout, rollback), with a
//! deadline per gate and the gate's state kept in the Rollout's status.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Where in a rollout a gate is asked.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq, Hash)]
#[serde(rename_all = "camelCase")]
pub enum GateName {
    /// Before the canary gets any traffic (the canary runs and is ready).
    #[default]
    PreRollout,
    /// Before each increase of the canary's weight.
    ConfirmTrafficIncrease,
    /// Before promotion (after the last step); analysis keeps running while it is closed.
    ConfirmPromotion,
    /// After a promotion completed: a closed answer is reported, nothing is undone.
    PostRollout,
    /// When a rollback starts: asked once, best effort, never delays the rollback.
    OnRollback,
}

impl GateName {
    pub const ALL: [GateName; 5] = [
        GateName::PreRollout,
        GateName::ConfirmTrafficIncrease,
        GateName::ConfirmPromotion,
        GateName::PostRollout,
        GateName::OnRollback,
    ];

    /// The field name in `spec.gates`.
    pub fn as_str(&self) -> &'static str {
        match self {
            GateName::PreRollout => "preRollout",
            GateName::ConfirmTrafficIncrease => "confirmTrafficIncrease",
            GateName::ConfirmPromotion => "confirmPromotion",
            GateName::PostRollout => "postRollout",
            GateName::OnRollback => "onRollback",
        }
    }

    /// The gate holds the rollout while closed (the other two only report).
    pub fn holds(&self) -> bool {
        matches!(
            self,
            GateName::PreRollout | GateName::ConfirmTrafficIncrease | GateName::ConfirmPromotion
        )
    }
}

impl std::fmt::Display for GateName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The gates of a rollout; each is optional.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GatesSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_rollout: Option<Gate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirm_traffic_increase: Option<Gate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirm_promotion: Option<Gate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_rollout: Option<Gate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_rollback: Option<Gate>,
}

impl GatesSpec {
    pub fn is_empty(&self) -> bool {
        GateName::ALL.iter().all(|g| self.get(*g).is_none())
    }

    /// The gate at this point, if it has checks.
    pub fn get(&self, name: GateName) -> Option<&Gate> {
        match name {
            GateName::PreRollout => self.pre_rollout.as_ref(),
            GateName::ConfirmTrafficIncrease => self.confirm_traffic_increase.as_ref(),
            GateName::ConfirmPromotion => self.confirm_promotion.as_ref(),
            GateName::PostRollout => self.post_rollout.as_ref(),
            GateName::OnRollback => self.on_rollback.as_ref(),
        }
        .filter(|g| !g.checks.is_empty())
    }
}

/// Default `deadline` of a gate.
pub const DEFAULT_GATE_DEADLINE: &str = "10m";
/// Default `interval` between two asks of a closed gate.
pub const DEFAULT_GATE_INTERVAL: &str = "15s";

/// One gate: checks asked together, re-asked every `interval` while closed, for at most
/// `deadline` from the first ask.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Gate {
    /// HTTP checks; the gate is open when every one answers 2xx. At most 10.
    #[schemars(length(min = 1, max = 10))]
    pub checks: Vec<GateCheck>,
    /// How long the gate may stay closed, from its first ask, e.g. `30m`. Default `10m`.
    /// `0s`: the first closed answer decides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<String>,
    /// What a gate still closed at its deadline does. Default `fail`.
    #[serde(default, skip_serializing_if = "GateDeadlinePolicy::is_default")]
    pub on_deadline: GateDeadlinePolicy,
    /// Time between two asks while the gate is closed, e.g. `30s`. Default `15s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
}

/// What a closed gate does at its deadline.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum GateDeadlinePolicy {
    /// Roll the revision back (abort source `gate`), with the gate's last reason.
    #[default]
    Fail,
    /// Stop asking and wait for a human: `resume` asks again with a new deadline, `promote`
    /// passes the gate, `abort` rolls back.
    Hold,
}

impl GateDeadlinePolicy {
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

/// HTTP method of a gate check.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
pub enum GateMethod {
    #[default]
    #[serde(rename = "POST")]
    Post,
    #[serde(rename = "GET")]
    Get,
}

impl GateMethod {
    pub fn as_str(&self) -> &'static str {
        match self {
            GateMethod::Post => "POST",
            GateMethod::Get => "GET",
        }
    }
}

/// One HTTP request. With `POST` (the default) the body is JSON naming the rollout, its
/// revisions, phase, weight, step and the gate (docs/gates.md).
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "self.url.startsWith('http://')", "message": "url must be an http:// URL (Sluice's HTTP client has no TLS)"}
]))]
pub struct GateCheck {
    /// Unique within the gate; names the check in reasons.
    #[schemars(length(min = 1, max = 63))]
    pub name: String,
    /// `http://` URL (Sluice's HTTP client is built without TLS).
    #[schemars(length(min = 8, max = 2048))]
    pub url: String,
    /// `POST` (default, with the JSON body) or `GET` (no body).
    #[serde(default)]
    pub method: GateMethod,
    /// Request timeout, e.g. `5s`. Default `10s`; at most `1m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// Request headers; values literal, from a Secret (Kubernetes) or from the environment
    /// (standalone).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20))]
    pub headers: Vec<GateHeader>,
}

/// One request header: exactly one of `value`, `secretKeyRef` (Kubernetes) and `env`
/// (standalone).
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "(has(self.value) ? 1 : 0) + (has(self.secretKeyRef) ? 1 : 0) + (has(self.env) ? 1 : 0) == 1",
        "message": "set exactly one of value, secretKeyRef, env"
    }
]))]
pub struct GateHeader {
    #[schemars(length(min = 1, max = 256))]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Kubernetes: a key of a Secret in the Rollout's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key_ref: Option<SecretKeyRef>,
    /// Standalone: the name of an environment variable of the `sluice run` process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
}

/// A key of a Secret in the Rollout's namespace.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

/// A gate's state in status.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
pub enum GateState {
    /// Asked, no answer yet.
    #[default]
    Pending,
    /// Every check answered 2xx (or a `promote` command passed it).
    Open,
    /// A check answered otherwise, or did not answer.
    Closed,
}

impl GateState {
    pub fn as_str(&self) -> &'static str {
        match self {
            GateState::Pending => "Pending",
            GateState::Open => "Open",
            GateState::Closed => "Closed",
        }
    }
}

/// One gate's record for the revision in progress (or, for `postRollout`, the promoted one).
/// `confirmTrafficIncrease` has one per step it guards.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GateStatus {
    pub gate: GateName,
    pub revision: String,
    /// The step index the gate guards (`confirmTrafficIncrease`: the `setWeight` step).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<u32>,
    pub state: GateState,
    /// The last answer, for people (the first closed check and what it answered).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When the gate was first asked: its deadline counts from here.
    pub since: DateTime<Utc>,
    /// When it was last asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asked_at: Option<DateTime<Utc>>,
    /// When the last answer was taken into account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answered_at: Option<DateTime<Utc>>,
    /// The deadline passed with the gate closed (`onDeadline: hold`: no more asks).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub expired: bool,
}

/// Problems of `spec.gates` as (field, message): checks with http:// URLs and unique names, durations that parse, header names that
/// are tokens with exactly one value source.
pub fn problems(gates: &GatesSpec) -> Vec<(String, String)> {
    let mut e = Problems(Vec::new());
    for name in GateName::ALL {
        let raw = match name {
            GateName::PreRollout => gates.pre_rollout.as_ref(),
            GateName::ConfirmTrafficIncrease => gates.confirm_traffic_increase.as_ref(),
            GateName::ConfirmPromotion => gates.confirm_promotion.as_ref(),
            GateName::PostRollout => gates.post_rollout.as_ref(),
            GateName::OnRollback => gates.on_rollback.as_ref(),
        };
        let Some(g) = raw else { continue };
        let field = format!("spec.gates.{name}");
        if g.checks.is_empty() || g.checks.len() > 10 {
            e.push(format!("{field}.checks"), "needs 1 to 10 checks");
        }
        for (what, v, max) in [
            ("deadline", &g.deadline, 7 * 24 * 3600),
            ("interval", &g.interval, 3600),
        ] {
            if let Some(t) = v {
                match crate::parse_duration(t) {
                    Ok(d) if what == "interval" && d.as_secs() < 1 => {
                        e.push(format!("{field}.{what}"), "must be at least 1s")
                    }
                    Ok(d) if d.as_secs() > max => e.push(
                        format!("{field}.{what}"),
                        format!(
                            "must be at most {}",
                            crate::format_duration(std::time::Duration::from_secs(max))
                        ),
                    ),
                    Ok(_) => {}
                    Err(err) => e.push(format!("{field}.{what}"), err.to_string()),
                }
            }
        }
        if !name.holds() && g.on_deadline == GateDeadlinePolicy::Hold {
            e.push(
                format!("{field}.onDeadline"),
                "hold applies to gates that hold the rollout (preRollout, confirmTrafficIncrease, confirmPromotion)",
            );
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, c) in g.checks.iter().enumerate() {
            let f = format!("{field}.checks[{i}]");
            if c.name.trim().is_empty() {
                e.push(format!("{f}.name"), "must not be empty");
            } else if !seen.insert(c.name.as_str()) {
                e.push(
                    format!("{f}.name"),
                    format!("{:?} is used twice in this gate", c.name),
                );
            }
            let url = c.url.trim();
            if url.starts_with("https://") {
                e.push(
                    format!("{f}.url"),
                    "https is not supported (Sluice's HTTP client has no TLS): use an http:// address",
                );
            } else if !url.starts_with("http://") || url.len() <= "http://".len() {
                e.push(format!("{f}.url"), format!("{url:?} is not an http:// URL"));
            }
            if let Some(t) = &c.timeout {
                match crate::parse_duration(t) {
                    Ok(d) if d.is_zero() || d.as_secs() > 60 => {
                        e.push(format!("{f}.timeout"), "must be more than 0 and at most 1m")
                    }
                    Ok(_) => {}
                    Err(err) => e.push(format!("{f}.timeout"), err.to_string()),
                }
            }
            for (j, h) in c.headers.iter().enumerate() {
                let hf = format!("{f}.headers[{j}]");
                let token = !h.name.is_empty()
                    && h.name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
                if !token {
                    e.push(
                        format!("{hf}.name"),
                        format!("{:?} is not an HTTP header name", h.name),
                    );
                }
                let sources = [
                    h.value.is_some(),
                    h.secret_key_ref.is_some(),
                    h.env.is_some(),
                ]
                .iter()
                .filter(|b| **b)
                .count();
                if sources != 1 {
                    e.push(hf, "set exactly one of value, secretKeyRef, env");
                }
            }
        }
    }
    e.0
}

struct Problems(Vec<(String, String)>);

impl Problems {
    fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push((field.into(), message.into()));
    }
}
