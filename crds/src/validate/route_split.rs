//! Validation of a per-route comparison (`comparison.by`, `maxRoutes`, `promoteWhen`).

use super::Errors;
use crate::MetricSpec;

pub(super) fn validate_route_split(
    m: &MetricSpec,
    c: &crate::ComparisonSpec,
    field: &str,
    e: &mut Errors,
) {
    let f = |k: &str| format!("{field}.comparison.{k}");
    let Some(label) = &c.by else {
        for (k, set) in [
            ("maxRoutes", c.max_routes.is_some()),
            ("promoteWhen", c.promote_when.is_some()),
        ] {
            if set {
                e.push(f(k), "needs comparison.by (the route label)");
            }
        }
        return;
    };
    let mut chars = label.chars();
    let label_ok = matches!(chars.next(), Some(ch) if ch.is_ascii_alphabetic() || ch == '_')
        && chars.all(|ch| ch.is_ascii_alphanumeric() || ch == '_');
    if !label_ok {
        e.push(
            f("by"),
            format!("{label:?} is not a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*)"),
        );
    }
    let latency = c.histogram.is_some()
        || m.builtin
            .as_deref()
            .is_some_and(|b| b.ends_with("latency-vs-stable") || b == "latency-comparison");
    if latency {
        e.push(
            f("by"),
            "per-route comparison is for error comparisons only (not latency)",
        );
    }
    if let Some(n) = c.max_routes {
        if !(1..=50).contains(&n) {
            e.push(f("maxRoutes"), format!("must be in 1..=50, got {n}"));
        }
    }
}
