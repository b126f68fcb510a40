//! Human-readable rendering of rollout status (pure; tested).

use std::fmt::Write as _;

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
    let _ = writeln!(
        s,
        "Rollout {}/{} ({}, target Deployment {})",
        v.namespace, v.name, v.strategy, v.target
    );
    let _ = write!(s, "Phase:    {}", v.phase);
    if v.paused {
        s.push_str(" (spec.paused)");
    }
    if let Some(m) = v.message.as_deref().filter(|m| !m.is_empty()) {
        let _ = write!(s, " - {m}");
    }
    s.push('\n');
    let _ = writeln!(
        s,
        "Step:     {}/{}    Canary weight: {}%",
        v.step, v.total_steps, v.weight
    );
    let _ = writeln!(
        s,
        "Stable:   {}    Canary: {}",
        v.stable_revision.as_deref().unwrap_or("-"),
        v.canary_revision.as_deref().unwrap_or("-")
    );
    if let Some(a) = &v.abort {
        let _ = write!(s, "Aborted:  {} ({})", a.reason, a.source);
        if let Some(alert) = &a.alert_name {
            let _ = write!(s, " alert {alert}");
        }
        s.push('\n');
    }
    if !v.analysis.is_empty() {
        s.push_str("Analysis:\n");
        for m in &v.analysis {
            let value = m
                .last_value
                .map(|x| format!("{x:.4}"))
                .unwrap_or_else(|| "-".to_string());
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

/// One line per rollout for `status` without a name.
pub fn list_text(items: &[RolloutView]) -> String {
    let mut s = format!(
        "{:<16} {:<24} {:<12} {:>6} {:>6}  {}\n",
        "NAMESPACE", "NAME", "PHASE", "WEIGHT", "STEP", "CANARY"
    );
    for v in items {
        let _ = writeln!(
            s,
            "{:<16} {:<24} {:<12} {:>5}% {:>3}/{:<2}  {}",
            v.namespace,
            v.name,
            v.phase.as_str(),
            v.weight,
            v.step,
            v.total_steps,
            v.canary_revision.as_deref().unwrap_or("-")
        );
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
                    .map(|x| format!("({x:.4})"))
                    .unwrap_or_default()
            )
        })
        .collect();
    format!(
        "{} step {}/{} weight {}%{}{}",
        v.phase,
        v.step,
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
