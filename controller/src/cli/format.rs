//! Human-readable rendering of rollout status (pure; tested).

use std::fmt::Write as _;

use sluice_crds::Phase;

use crate::api::RolloutView;

/// A number for people: at most 4 significant decimals, no trailing zeros (`0.9523`, `1.2`, `42`).
pub fn number(x: f64) -> String {
    if !x.is_finite() {
        return x.to_string();
    }
    let digits = if x.abs() >= 100.0 { 1 } else { 4 };
    let s = format!("{x:.digits$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    if s == "-0" {
        "0".to_string()
    } else {
        s
    }
}

/// Multi-line status of one rollout.
pub fn status_text(v: &RolloutView) -> String {
    let mut s = String::new();
    if v.target_kind == "Deployment" {
        let _ = writeln!(
            s,
            "Rollout {}/{} ({}, target Deployment {})",
            v.namespace, v.name, v.strategy, v.target
        );
    } else {
        let _ = writeln!(
            s,
            "Rollout {}/{} ({} between the stable and canary backends)",
            v.namespace, v.name, v.strategy
        );
    }
    let _ = write!(s, "Phase:    {}", v.phase);
    if v.paused {
        s.push_str(" (spec.paused)");
    }
    if let Some(m) = v.message.as_deref().filter(|m| !m.is_empty()) {
        let _ = write!(s, " - {m}");
    }
    s.push('\n');
    if let Some(b) = &v.blocked {
        let _ = writeln!(
            s,
            "Blocked:  {} since {}: {}",
            b.reason,
            b.since.format("%H:%M:%S"),
            b.message
        );
    }
    let _ = writeln!(
        s,
        "Step:     {}/{}    Canary weight: {}%",
        v.step_display(),
        v.total_steps,
        v.weight
    );
    let _ = writeln!(
        s,
        "Stable:   {}    Canary: {}",
        v.stable_revision.as_deref().unwrap_or("-"),
        v.canary_revision.as_deref().unwrap_or("-")
    );
    if let Some(d) = v.desired_revision.as_deref().filter(|d| !is_rolled(v, d)) {
        let _ = writeln!(s, "Target:   {d} (not rolled out yet)");
    }
    if let Some(times) = decision_times(v) {
        let _ = writeln!(s, "Times:    {times}");
    }
    if let Some(a) = &v.abort {
        let _ = write!(
            s,
            "Aborted:  {} ({}) at {}",
            a.reason,
            a.source,
            a.at.format("%H:%M:%S")
        );
        // The alert's name, unless the reason already says it ("alert X firing: ...").
        if let Some(alert) = a
            .alert_name
            .as_ref()
            .filter(|n| !a.reason.contains(n.as_str()))
        {
            let _ = write!(s, " alert {alert}");
        }
        s.push('\n');
    }
    if !v.analysis.is_empty() {
        s.push_str("Analysis:\n");
        for m in &v.analysis {
            let value = m.last_value.map(number).unwrap_or_else(|| "-".to_string());
            let _ = writeln!(
                s,
                "  {:<24} {:<13} {:>10}   pass {} fail {} inconclusive {} error {}{}",
                m.name,
                m.last_verdict.as_deref().unwrap_or("-"),
                value,
                m.passed,
                m.failed,
                m.inconclusive,
                m.errors,
                m.last_reason
                    .as_deref()
                    .map(|r| format!("   {r}"))
                    .unwrap_or_default()
            );
            if let Some(f) = &m.forecast {
                let _ = writeln!(s, "  {:<24} forecast: {}", "", f.message);
            }
        }
    }
    if !v.gates.is_empty() {
        s.push_str("Gates:\n");
        for g in &v.gates {
            let name = match g.step {
                Some(i) => format!("{} (step {})", g.gate, i + 1),
                None => g.gate.clone(),
            };
            let mut line = format!("  {name:<32} {:<8}", g.state);
            if let Some(t) = g.since {
                let _ = write!(line, " since {}", t.format("%H:%M:%S"));
            }
            if let (Some(d), false) = (g.deadline_at, g.state == "open") {
                if g.expired {
                    let _ = write!(
                        line,
                        ", deadline passed {} (waiting for a human)",
                        d.format("%H:%M:%S")
                    );
                } else {
                    let _ = write!(
                        line,
                        ", deadline {} ({})",
                        d.format("%H:%M:%S"),
                        g.on_deadline
                    );
                }
            }
            if let Some(r) = &g.reason {
                let _ = write!(line, "   {r}");
            }
            let _ = writeln!(s, "{}", line.trim_end());
        }
    }
    if !v.conditions.is_empty() {
        s.push_str("Conditions:\n");
        for c in &v.conditions {
            let _ = writeln!(
                s,
                "  {:<12} {:<6} {}  {}",
                c.type_, c.status, c.reason, c.message
            );
        }
    }
    if let Some(p) = &v.pending_command {
        let _ = writeln!(
            s,
            "Pending:  {} by {} at {}",
            p.action,
            p.by.as_deref().unwrap_or("?"),
            p.at.format("%H:%M:%S")
        );
    }
    s
}

/// When the rollout, its current step and its promotion began (UTC, for people).
fn decision_times(v: &RolloutView) -> Option<String> {
    let hms = |t: &chrono::DateTime<chrono::Utc>| t.format("%H:%M:%S").to_string();
    let mut parts = Vec::new();
    if let Some(t) = &v.started_at {
        parts.push(format!("started {}", hms(t)));
    }
    if v.phase.in_progress() {
        if let Some(t) = &v.step_started_at {
            parts.push(format!("step since {}", hms(t)));
        }
    }
    if let Some(t) = &v.promotion_started_at {
        let why = v.promotion_reason.as_deref().unwrap_or("promotion");
        parts.push(format!("promoting since {} ({why})", hms(t)));
    }
    if let Some(t) = v
        .promoted_at
        .as_ref()
        .filter(|_| v.phase == Phase::Succeeded)
    {
        parts.push(format!("promoted {}", hms(t)));
    }
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// The revision is the stable one or the one in progress.
fn is_rolled(v: &RolloutView, rev: &str) -> bool {
    v.stable_revision.as_deref() == Some(rev) || v.canary_revision.as_deref() == Some(rev)
}

/// One line per rollout for `status` without a name; a blocked rollout says why.
pub fn list_text(items: &[RolloutView]) -> String {
    let mut s = format!(
        "{:<16} {:<24} {:<12} {:>6} {:>6}  {:<12} {}\n",
        "NAMESPACE", "NAME", "PHASE", "WEIGHT", "STEP", "CANARY", "NOTE"
    );
    for v in items {
        let note = match (&v.blocked, v.desired_revision.as_deref()) {
            (Some(b), _) => format!("{}: {}", b.reason, b.message),
            (None, Some(d)) if !is_rolled(v, d) => format!("{d} not started"),
            _ => String::new(),
        };
        let line = format!(
            "{:<16} {:<24} {:<12} {:>5}% {:>3}/{:<2}  {:<12} {note}",
            v.namespace,
            v.name,
            v.phase.as_str(),
            v.weight,
            v.step_display(),
            v.total_steps,
            v.canary_revision.as_deref().unwrap_or("-")
        );
        let _ = writeln!(s, "{}", line.trim_end());
    }
    s
}

/// One line for `status --watch` when something changed.
pub fn watch_line(v: &RolloutView) -> String {
    let metrics: Vec<String> = v
        .analysis
        .iter()
        .map(|m| {
            format!(
                "{}={}{}",
                m.name,
                m.last_verdict.as_deref().unwrap_or("-"),
                m.last_value
                    .map(|x| format!("({})", number(x)))
                    .unwrap_or_default()
            )
        })
        .collect();
    format!(
        "{} step {}/{} weight {}%{}{}",
        v.phase,
        v.step_display(),
        v.total_steps,
        v.weight,
        if metrics.is_empty() {
            String::new()
        } else {
            format!(" {}", metrics.join(" "))
        },
        v.message
            .as_deref()
            .map(|m| format!(" - {m}"))
            .unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    use super::{number, status_text};
    use crate::api::view::RolloutView;
    use sluice_crds::{MetricForecast, MetricStatus, Rollout, RolloutSpec};

    #[test]
    fn an_alert_abort_names_the_alert_once() {
        let mut r = Rollout::new("web", RolloutSpec::default());
        let abort = |reason: &str| sluice_crds::AbortInfo {
            source: "alert".into(),
            reason: reason.into(),
            alert_name: Some("CanaryOutage".into()),
            at: chrono::Utc::now(),
            ..Default::default()
        };
        r.status = Some(sluice_crds::RolloutStatus {
            abort: Some(abort("alert CanaryOutage firing: canary 5xx above 20%")),
            ..Default::default()
        });
        let text = status_text(&RolloutView::from_rollout(&r));
        assert_eq!(text.matches("CanaryOutage").count(), 1, "{text}");
        r.status = Some(sluice_crds::RolloutStatus {
            abort: Some(abort("paged")),
            ..Default::default()
        });
        let text = status_text(&RolloutView::from_rollout(&r));
        assert!(text.contains("alert CanaryOutage"), "{text}");
    }

    #[test]
    fn status_prints_the_forecast_and_the_api_names_it_forecast_message() {
        let mut r = Rollout::new("web", RolloutSpec::default());
        let mut status = sluice_crds::RolloutStatus::default();
        status.analysis.metrics.push(MetricStatus {
            name: "errors".into(),
            last_verdict: Some("Inconclusive".into()),
            forecast: Some(MetricForecast {
                message: "about 1,200 more canary requests to promote".into(),
                heading: Some("Promote".into()),
                more_canary_requests: Some(1234),
                seconds: Some(240.0),
            }),
            ..MetricStatus::default()
        });
        r.status = Some(status);
        let v = RolloutView::from_rollout(&r);
        let text = status_text(&v);
        assert!(
            text.contains("forecast: about 1,200 more canary requests to promote"),
            "{text}"
        );
        let json = serde_json::to_value(&v).expect("json");
        let f = &json["analysis"][0]["forecast"];
        assert_eq!(f["message"], "about 1,200 more canary requests to promote");
        assert_eq!(f["moreCanaryRequests"], 1234);
        assert_eq!(f["seconds"], 240.0);
    }

    #[test]
    fn status_shows_each_gate_with_its_state_reason_and_since_when() {
        use sluice_crds::{Gate, GateCheck, GateName, GateState, GateStatus};
        let t = |s: i64| chrono::DateTime::<chrono::Utc>::UNIX_EPOCH + chrono::Duration::seconds(s);
        let gate = Gate {
            checks: vec![GateCheck {
                name: "qa".into(),
                url: "http://qa.test/".into(),
                ..GateCheck::default()
            }],
            deadline: Some("30m".into()),
            ..Gate::default()
        };
        let spec = RolloutSpec {
            gates: sluice_crds::GatesSpec {
                pre_rollout: Some(gate.clone()),
                confirm_promotion: Some(gate.clone()),
                post_rollout: Some(gate),
                ..Default::default()
            },
            ..RolloutSpec::default()
        };
        let mut r = Rollout::new("web", spec);
        r.status = Some(sluice_crds::RolloutStatus {
            canary_revision: Some("v2".into()),
            stable_revision: Some("v1".into()),
            gates: vec![
                GateStatus {
                    gate: GateName::PreRollout,
                    revision: "v2".into(),
                    state: GateState::Open,
                    reason: Some("its check answered 2xx".into()),
                    since: t(3600),
                    ..GateStatus::default()
                },
                GateStatus {
                    gate: GateName::ConfirmPromotion,
                    revision: "v2".into(),
                    state: GateState::Closed,
                    reason: Some(
                        "check qa: POST http://qa.test/ answered HTTP 409: not signed off".into(),
                    ),
                    since: t(7200),
                    ..GateStatus::default()
                },
            ],
            ..Default::default()
        });
        let v = RolloutView::from_rollout(&r);
        let text = status_text(&v);
        assert!(text.contains("Gates:\n"), "{text}");
        assert!(
            text.contains("  preRollout                       open     since 01:00:00   its check answered 2xx"),
            "{text}"
        );
        assert!(
            text.contains("  confirmPromotion                 closed   since 02:00:00, deadline 02:30:00 (fail)   check qa: POST http://qa.test/ answered HTTP 409: not signed off"),
            "{text}"
        );
        assert!(
            text.contains("  postRollout                      notAsked"),
            "{text}"
        );
        let json = serde_json::to_value(&v).expect("json");
        assert_eq!(json["gates"][1]["state"], "closed");
        assert_eq!(json["gates"][1]["deadlineAt"], "1970-01-01T02:30:00Z");
        assert_eq!(json["gates"][2]["state"], "notAsked");
    }

    #[test]
    fn numbers_are_rounded_for_people() {
        assert_eq!(number(6.309573444801934), "6.3096");
        assert_eq!(number(1.0), "1");
        assert_eq!(number(0.95), "0.95");
        assert_eq!(number(1234.5678), "1234.6");
        assert_eq!(number(-0.00001), "0");
    }
}
