//! Asking a gate (`Effect::AskGate`, docs/gates.md): every check of the gate gets one HTTP
//! request (through the web checks' client, `checks::web::fetch`), the gate is open when every
//! one answers 2xx — Flagger's rule for its webhooks ("determine from the response status code
//! (HTTP 2xx)", https://docs.flagger.app/usage/webhooks). Both shells call [`ask`]; header
//! values come from a [`HeaderValues`] the shell provides (Secrets on Kubernetes, the
//! environment standalone).
//!
//! The `POST` body is [`GatePayload`] as JSON. Flagger sends `name`, `namespace`, `phase` and
//! `metadata`; Sluice sends its own fields and no free-form metadata.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sluice_crds::{Gate, GateCheck, GateHeader, GateMethod, GateName, RolloutStatus, WebMethod};

use crate::checks::web::{fetch, WebAnswer, WebRequest};
use crate::core::GateAnswer;

/// Request timeout when a check sets none.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Characters of a closed answer's body kept in the reason.
const BODY_IN_REASON: usize = 200;

/// The JSON body of a gate's `POST`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatePayload {
    pub name: String,
    pub namespace: String,
    /// `preRollout`, `confirmTrafficIncrease`, `confirmPromotion`, `postRollout`, `onRollback`.
    pub gate: GateName,
    /// The check within the gate.
    pub check: String,
    /// The revision the gate is asked for (the canary; for `postRollout` the promoted one).
    pub revision: String,
    pub stable_revision: Option<String>,
    pub canary_revision: Option<String>,
    pub phase: String,
    /// Canary weight now (percent).
    pub weight: i32,
    /// The step the rollout is at (0-based; `confirmTrafficIncrease`: the `setWeight` step).
    pub step: u32,
    /// `confirmTrafficIncrease`: the weight the rollout would move to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_weight: Option<i32>,
    pub asked_at: DateTime<Utc>,
}

/// What the shell knows about the rollout when it asks.
pub struct AskContext<'a> {
    pub name: &'a str,
    pub namespace: &'a str,
    pub status: &'a RolloutStatus,
    pub gate: GateName,
    pub revision: &'a str,
    pub step: Option<u32>,
    /// `confirmTrafficIncrease`: the weight of the step it guards.
    pub next_weight: Option<i32>,
    pub now: DateTime<Utc>,
}

impl AskContext<'_> {
    pub fn payload(&self, check: &str) -> GatePayload {
        GatePayload {
            name: self.name.to_string(),
            namespace: self.namespace.to_string(),
            gate: self.gate,
            check: check.to_string(),
            revision: self.revision.to_string(),
            stable_revision: self.status.stable_revision.clone(),
            canary_revision: self.status.canary_revision.clone(),
            phase: self.status.phase.as_str().to_string(),
            weight: self.status.canary_weight,
            step: self.step.unwrap_or(self.status.current_step),
            next_weight: self.next_weight,
            asked_at: self.now,
        }
    }
}

/// Where header values that are not literal come from.
pub trait HeaderValues: Send + Sync {
    /// The value of `header` (a `secretKeyRef` or `env` one), or why there is none.
    fn value<'a>(
        &'a self,
        header: &'a GateHeader,
    ) -> Pin<Box<dyn Future<Output = Result<String, String>> + Send + 'a>>;
}

/// Standalone: `env` headers from the process environment; `secretKeyRef` is refused.
pub struct EnvHeaders;

impl HeaderValues for EnvHeaders {
    fn value<'a>(
        &'a self,
        header: &'a GateHeader,
    ) -> Pin<Box<dyn Future<Output = Result<String, String>> + Send + 'a>> {
        Box::pin(async move {
            if let Some(v) = &header.value {
                return Ok(v.clone());
            }
            match (&header.env, &header.secret_key_ref) {
                (Some(var), _) => std::env::var(var).map_err(|_| {
                    format!(
                        "header {}: environment variable {var} is not set (or not UTF-8) in the sluice process",
                        header.name
                    )
                }),
                (None, Some(_)) => Err(format!(
                    "header {}: secretKeyRef works on Kubernetes only; use env",
                    header.name
                )),
                (None, None) => Err(format!("header {}: no value", header.name)),
            }
        })
    }
}

/// The request of one check, headers resolved.
pub async fn request(
    check: &GateCheck,
    payload: &GatePayload,
    headers: &dyn HeaderValues,
) -> Result<WebRequest, String> {
    let timeout = match &check.timeout {
        None => DEFAULT_TIMEOUT,
        Some(t) => sluice_crds::parse_duration(t).map_err(|e| format!("timeout: {e}"))?,
    };
    let mut hs = Vec::with_capacity(check.headers.len());
    for h in &check.headers {
        let v = match &h.value {
            Some(v) => v.clone(),
            None => headers.value(h).await?,
        };
        hs.push((h.name.clone(), v));
    }
    let (method, body) = match check.method {
        GateMethod::Post => (
            WebMethod::Post,
            Some(serde_json::to_string(payload).map_err(|e| format!("payload: {e}"))?),
        ),
        GateMethod::Get => (WebMethod::Get, None),
    };
    Ok(WebRequest {
        method,
        url: check.url.clone(),
        body,
        headers: hs,
        timeout,
    })
}

/// Judges one check's answer (pure): Ok when 2xx, else why not.
pub fn judge(req: &WebRequest, answer: &Result<WebAnswer, String>) -> Result<(), String> {
    let a = match answer {
        Ok(a) => a,
        Err(e) => return Err(e.clone()),
    };
    if (200..300).contains(&a.status) {
        return Ok(());
    }
    let text = String::from_utf8_lossy(&a.body);
    let text = text.trim();
    let shown: String = text.chars().take(BODY_IN_REASON).collect();
    let more = if text.chars().count() > BODY_IN_REASON {
        "…"
    } else {
        ""
    };
    if shown.is_empty() {
        Err(format!("{} answered HTTP {}", req.describe(), a.status))
    } else {
        Err(format!(
            "{} answered HTTP {}: {shown}{more}",
            req.describe(),
            a.status
        ))
    }
}

/// Asks every check of `gate` (in order; the first closed one decides the reason, the others
/// are still asked so each sees the rollout's state) and returns the answer for `step`.
pub async fn ask(gate: &Gate, cx: &AskContext<'_>, headers: &dyn HeaderValues) -> GateAnswer {
    let mut closed: Vec<String> = Vec::new();
    for check in &gate.checks {
        let payload = cx.payload(&check.name);
        let outcome = match request(check, &payload, headers).await {
            Ok(req) => {
                let answer = fetch(&req).await;
                judge(&req, &answer)
            }
            Err(e) => Err(e),
        };
        if let Err(e) = outcome {
            closed.push(format!("check {}: {e}", check.name));
        }
    }
    let n = gate.checks.len();
    let reason = match closed.as_slice() {
        [] if n == 1 => "its check answered 2xx".to_string(),
        [] => format!("all {n} checks answered 2xx"),
        [one] => one.clone(),
        [first, rest @ ..] => format!("{first} (and {} more closed)", rest.len()),
    };
    GateAnswer {
        gate: cx.gate,
        revision: cx.revision.to_string(),
        step: cx.step,
        asked_at: cx.now,
        open: closed.is_empty(),
        reason,
    }
}

/// Ask every gate an `AskGate` effect in `asks` names (other effects are skipped), logging each
/// answer; both shells call this, each with its own source of header values.
pub async fn ask_effects(
    spec: &sluice_crds::RolloutSpec,
    name: &str,
    namespace: &str,
    status: &RolloutStatus,
    asks: &[crate::core::Effect],
    headers: &dyn HeaderValues,
    now: DateTime<Utc>,
) -> Vec<GateAnswer> {
    let mut answers = Vec::new();
    for e in asks {
        let crate::core::Effect::AskGate {
            gate,
            revision,
            step,
        } = e
        else {
            continue;
        };
        let Some(g) = spec.gates.get(*gate) else {
            continue;
        };
        let cx = AskContext {
            name,
            namespace,
            status,
            gate: *gate,
            revision,
            step: *step,
            next_weight: next_weight(spec, *step),
            now,
        };
        let a = ask(g, &cx, headers).await;
        if a.open {
            tracing::info!(rollout = %name, gate = %gate, "gate open: {}", a.reason);
        } else {
            tracing::warn!(rollout = %name, gate = %gate, "gate closed: {}", a.reason);
        }
        answers.push(a);
    }
    answers
}

/// The weight of the `setWeight` step `step` guards (for the payload's `nextWeight`).
pub fn next_weight(spec: &sluice_crds::RolloutSpec, step: Option<u32>) -> Option<i32> {
    let plan = crate::core::plan::plan(spec);
    match plan.steps.get(step? as usize)? {
        sluice_crds::Step::SetWeight(w) => Some(*w),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
