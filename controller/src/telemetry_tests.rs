//! Tests of the metrics registry and its exposition format.

use super::*;

fn line_value(text: &str, prefix: &str) -> Option<String> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .map(str::to_string)
}

#[test]
fn status_is_one_hot_with_weight_and_step() {
    let t = Telemetry::new();
    let status = RolloutStatus {
        phase: Phase::Progressing,
        canary_weight: 20,
        current_step: 3,
        ..Default::default()
    };
    t.record_status("default", "app", &status);
    let text = t.render();
    let ones: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("sluice_rollout_phase{") && l.ends_with(" 1"))
        .collect();
    assert_eq!(ones.len(), 1, "{text}");
    assert!(ones[0].contains("phase=\"Progressing\""));
    assert_eq!(
        text.lines()
            .filter(|l| l.starts_with("sluice_rollout_phase{"))
            .count(),
        ALL_PHASES.len()
    );
    assert_eq!(
        line_value(
            &text,
            "sluice_rollout_canary_weight{namespace=\"default\",name=\"app\"}"
        )
        .as_deref(),
        Some("20")
    );
    assert_eq!(
        line_value(
            &text,
            "sluice_rollout_step{namespace=\"default\",name=\"app\"}"
        )
        .as_deref(),
        Some("3")
    );
    t.remove_rollout("default", "app");
    assert!(!t.render().contains("name=\"app\""));
}

#[test]
fn histogram_is_cumulative_and_errors_counted() {
    let t = Telemetry::new();
    t.record_reconcile(0.003, true);
    t.record_reconcile(0.2, false);
    t.record_reconcile(100.0, true);
    t.record_reconcile(f64::NAN, true);
    let text = t.render();
    let b = |le: &str| {
        line_value(
            &text,
            &format!("sluice_reconcile_duration_seconds_bucket{{le=\"{le}\"}}"),
        )
    };
    // NaN is clamped to 0, so two observations are <= 0.005.
    assert_eq!(b("0.005").as_deref(), Some("2"));
    assert_eq!(b("0.25").as_deref(), Some("3"));
    assert_eq!(b("10").as_deref(), Some("3"));
    assert_eq!(b("+Inf").as_deref(), Some("4"));
    assert_eq!(
        line_value(&text, "sluice_reconcile_duration_seconds_count").as_deref(),
        Some("4")
    );
    assert_eq!(
        line_value(&text, "sluice_reconcile_errors_total ").as_deref(),
        Some("1")
    );
}

#[test]
fn verdicts_webhooks_and_commands_count_and_escape() {
    let t = Telemetry::new();
    let t2 = t.clone();
    t.record_verdict("ns", "a\"b", "err\nrate", VerdictKind::Fail);
    t2.record_verdict("ns", "a\"b", "err\nrate", "Fail");
    t.record_webhook("aborted");
    t.record_command("abort", "alertmanager");
    let text = t.render();
    assert!(text.contains(
        "sluice_analysis_verdicts_total{namespace=\"ns\",name=\"a\\\"b\",metric=\"err\\nrate\",verdict=\"Fail\"} 2"
    ), "{text}");
    assert!(text.contains("sluice_webhook_requests_total{outcome=\"aborted\"} 1"));
    assert!(text.contains("sluice_commands_total{action=\"abort\",source=\"alertmanager\"} 1"));
    assert!(text.contains("# TYPE sluice_reconcile_duration_seconds histogram"));
    assert!(Arc::ptr_eq(
        &Telemetry::global().inner,
        &Telemetry::global().inner
    ));
}
