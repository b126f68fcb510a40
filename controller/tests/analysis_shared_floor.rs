//! `threshold.unlessStableFails`: on by default for built-in floors, off on request, refused
//! for custom queries (issue 17).

use sluice_analysis::{Check, Provider};
use sluice_controller::analysis_bridge::to_check;
use sluice_crds::{MetricSpec, Threshold};

fn metric(builtin: Option<&str>, query: Option<&str>, shared: Option<bool>) -> MetricSpec {
    MetricSpec {
        name: "success-rate".into(),
        builtin: builtin.map(str::to_string),
        query: query.map(str::to_string),
        threshold: Some(Threshold {
            min: Some(0.95),
            max: None,
            unless_stable_fails: shared,
        }),
        ..MetricSpec::default()
    }
}

#[test]
fn builtin_floors_are_judged_against_stable_by_default() {
    let c = to_check(
        &metric(Some("nginx-success-rate"), None, None),
        Provider::NginxIngress,
    );
    assert!(matches!(c, Ok(Check::SharedThreshold { .. })), "{c:?}");
    let c = to_check(
        &metric(Some("nginx-success-rate"), None, Some(false)),
        Provider::NginxIngress,
    );
    assert!(matches!(c, Ok(Check::BuiltinThreshold { .. })), "{c:?}");
}

#[test]
fn custom_queries_cannot_ask_for_it() {
    let e = to_check(
        &metric(None, Some("sum(rate(x[1m]))"), Some(true)),
        Provider::NginxIngress,
    )
    .unwrap_err();
    assert!(
        e.contains("unlessStableFails needs a built-in metric"),
        "{e}"
    );
    let c = to_check(
        &metric(None, Some("sum(rate(x[1m]))"), None),
        Provider::NginxIngress,
    );
    assert!(matches!(c, Ok(Check::Threshold { .. })), "{c:?}");
}
