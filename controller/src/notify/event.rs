//! What one notification says, built from a transition and the status it led to. Pure: the
//! time comes in as an argument. Stored as is in the outbox, so a notification re-sent after a
//! restart says exactly what the first attempt said.

use chrono::{DateTime, Utc};
use sluice_crds::RolloutStatus;
pub use sluice_crds::{FailedMetric, Notification};

use super::transition::{Transition, TransitionKind};

/// Where a rollout's dashboard page is: `BASE/ui/#/NAMESPACE/NAME` (the route `ui/app.js`
/// reads from the hash).
pub fn dashboard_link(base: &str, namespace: &str, name: &str) -> String {
    format!(
        "{}/ui/#/{}/{}",
        base.trim_end_matches('/'),
        percent(namespace),
        percent(name)
    )
}

/// Percent-encoding for a path segment (what `encodeURIComponent` leaves alone stays).
fn percent(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A stable id without dots: `sluice_` and 32 hex digits of SHA-256 over `NS/NAME/KEY`.
pub fn notification_id(namespace: &str, name: &str, key: &str) -> String {
    let d = ring::digest::digest(
        &ring::digest::SHA256,
        format!("{namespace}/{name}/{key}").as_bytes(),
    );
    let hex: String = d.as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sluice_{hex}")
}

/// Round for people: 4 significant digits, no float noise (0.8234567 -> 0.8235).
fn round(v: f64) -> f64 {
    if v == 0.0 || !v.is_finite() {
        return v;
    }
    let digits = 4 - 1 - v.abs().log10().floor() as i32;
    if !(0..=12).contains(&digits) {
        return v;
    }
    let f = 10f64.powi(digits);
    (v * f).round() / f
}

/// The notifications for `transitions` into `status` (one per transition).
pub fn notifications(
    transitions: &[Transition],
    status: &RolloutStatus,
    namespace: &str,
    name: &str,
    dashboard: Option<&str>,
    at: DateTime<Utc>,
) -> Vec<Notification> {
    transitions
        .iter()
        .map(|t| {
            let failed_metrics = if t.kind == TransitionKind::AnalysisFailed {
                status
                    .analysis
                    .metrics
                    .iter()
                    .filter(|m| m.last_verdict.as_deref() == Some("Fail"))
                    .map(|m| FailedMetric {
                        name: m.name.clone(),
                        value: m.last_value.map(round),
                        reason: m.last_reason.clone(),
                    })
                    .collect()
            } else {
                Vec::new()
            };
            Notification {
                id: notification_id(namespace, name, &t.key),
                key: t.key.clone(),
                kind: t.kind,
                namespace: namespace.to_string(),
                rollout: name.to_string(),
                phase: status.phase,
                canary_weight: status.canary_weight,
                step: status.current_step,
                stable_revision: status.stable_revision.clone(),
                canary_revision: status.canary_revision.clone(),
                message: t.message.clone(),
                failed_metrics,
                dashboard_url: dashboard.map(|b| dashboard_link(b, namespace, name)),
                at,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::transitions;
    use chrono::TimeZone;
    use sluice_crds::{AbortInfo, MetricStatus, Phase};

    #[test]
    fn analysis_failure_carries_metric_and_rounded_value() {
        let old = RolloutStatus {
            phase: Phase::Progressing,
            canary_revision: Some("v2".into()),
            stable_revision: Some("v1".into()),
            current_step: 1,
            canary_weight: 20,
            ..Default::default()
        };
        let mut new = old.clone();
        new.phase = Phase::RollingBack;
        new.abort = Some(AbortInfo {
            source: "analysis".into(),
            reason: "success-rate 0.8234567 below 0.95".into(),
            alert_name: None,
            fingerprint: None,
            revision: Some("v2".into()),
            at: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
        });
        new.analysis.metrics = vec![
            MetricStatus {
                name: "success-rate".into(),
                last_value: Some(0.8234567),
                last_verdict: Some("Fail".into()),
                ..Default::default()
            },
            MetricStatus {
                name: "latency".into(),
                last_value: Some(0.2),
                last_verdict: Some("Pass".into()),
                ..Default::default()
            },
        ];
        let at = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 5).unwrap();
        let n = notifications(
            &transitions(&old, &new),
            &new,
            "shop",
            "web",
            Some("https://sluice.example.com/"),
            at,
        );
        assert_eq!(n.len(), 2);
        assert_eq!(n[0].kind, TransitionKind::AnalysisFailed);
        assert_eq!(n[0].failed_metrics.len(), 1);
        assert_eq!(n[0].failed_metrics[0].name, "success-rate");
        assert_eq!(n[0].failed_metrics[0].value, Some(0.8235));
        assert!(n[1].failed_metrics.is_empty());
        assert_eq!(
            n[0].dashboard_url.as_deref(),
            Some("https://sluice.example.com/ui/#/shop/web")
        );
        assert_ne!(n[0].id, n[1].id);
        assert!(!n[0].id.contains('.'));
        // The id depends only on rollout and key: the same after a restart.
        assert_eq!(
            n[0].id,
            notification_id("shop", "web", "v2/analysisFailed/1")
        );
    }

    #[test]
    fn link_segments_are_encoded() {
        assert_eq!(
            dashboard_link("http://h:8080", "a b", "x/y"),
            "http://h:8080/ui/#/a%20b/x%2Fy"
        );
        assert_eq!(round(1234.5678), 1235.0);
        assert_eq!(round(0.0001234567), 0.0001235);
    }
}
