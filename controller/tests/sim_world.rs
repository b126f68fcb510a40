//! The simulator's own parts: world readiness and router lag, scripted oracle rules, timeline.
mod core_support;

use std::time::Duration;

use core_support::*;
use sluice_controller::core::{Effect, VerdictKind};
use sluice_controller::sim::{simulate, AnalysisOracle, Script, ScriptedOracle, When, World};
use sluice_crds::Phase;

#[test]
fn deployments_become_ready_after_their_delay() {
    let mut w = World::new("v1", t0());
    w.primary_ready_delay = Duration::from_secs(7);
    assert!(w.target.state(t0()).ready);
    w.apply(
        &Effect::ApplyPrimary {
            revision: "v1".into(),
        },
        t0(),
    );
    assert!(!w.primary.state(at(6)).ready);
    assert!(w.primary.state(at(7)).ready);
    assert_eq!(w.next_change(t0()), Some(at(7)));
    w.apply(&Effect::ScaleCanary { up: false }, at(8));
    let s = w.target.state(at(9));
    assert_eq!((s.replicas, s.ready), (0, false));
    w.apply(&Effect::ScaleCanary { up: true }, at(10));
    assert!(!w.target.state(at(19)).ready);
    assert!(w.target.state(at(20)).ready);
}

#[test]
fn router_applies_weights_after_its_lag() {
    let mut w = World::new("v1", t0());
    w.router_lag = Duration::from_secs(5);
    w.apply(&Effect::SetWeight { weight: 30 }, t0());
    w.settle(at(4));
    assert_eq!(w.router.weight, None);
    w.settle(at(5));
    assert_eq!(w.router.weight, Some(30));
    assert_eq!(w.observe(at(5)).router_weight, Some(30));
}

#[test]
fn scripted_oracle_rules_last_match_wins() {
    let mut o = ScriptedOracle::with_metrics(&["a", "b"], VerdictKind::Pass)
        .rule(None, When::FromRun(1), VerdictKind::Inconclusive)
        .on_run(2, VerdictKind::Fail)
        .for_revision("v3", VerdictKind::Error);
    let verdicts = |r: sluice_controller::core::AnalysisRun| {
        r.metrics.iter().map(|m| m.verdict).collect::<Vec<_>>()
    };
    assert_eq!(
        verdicts(o.run(t0(), 10, "v2", &Default::default())),
        vec![VerdictKind::Pass; 2]
    );
    assert_eq!(
        verdicts(o.run(t0(), 10, "v2", &Default::default())),
        vec![VerdictKind::Inconclusive; 2]
    );
    assert_eq!(
        verdicts(o.run(t0(), 10, "v2", &Default::default())),
        vec![VerdictKind::Fail; 2]
    );
    assert_eq!(
        verdicts(o.run(t0(), 10, "v3", &Default::default())),
        vec![VerdictKind::Error; 2]
    );
    let r = o.run(at(9), 25, "v2", &Default::default());
    assert_eq!((r.at, r.revision.as_str()), (at(9), "v2"));
}

#[test]
fn simulate_initializes_then_idles_without_a_new_revision() {
    let tl = simulate(
        &canary(vec![w(10)]),
        &Script::new(),
        Duration::from_secs(120),
    );
    assert_eq!(tl.phases(), vec![Phase::Initializing, Phase::Idle]);
    assert_eq!(tl.set_weights(), vec![0]);
    assert_eq!(tl.final_status.stable_revision.as_deref(), Some("v1"));
    // primary ready after 10s; the loop then sleeps at most 5s per tick
    assert_eq!(tl.first_time_in(Phase::Idle), Some(Duration::from_secs(10)));
    assert_eq!(tl.analysis_requests(), 0);
}
