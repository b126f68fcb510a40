//! Tests of the per-route comparison (`stats::routes`): slots, alpha split, verdicts checked
//! against the binomial likelihood computed directly, and a seeded false-rollback simulation.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;

fn split(max_routes: usize, promote: RoutePromotion) -> RouteSplit {
    RouteSplit {
        label: "path".into(),
        max_routes,
        promote,
    }
}

fn counts(n_c: f64, x_c: f64, n_s: f64, x_s: f64) -> IntervalCounts {
    IntervalCounts {
        canary_requests: n_c,
        canary_bad: x_c,
        stable_requests: n_s,
        stable_bad: x_s,
    }
}

fn sum(per_route: &[(String, IntervalCounts)]) -> IntervalCounts {
    per_route
        .iter()
        .fold(IntervalCounts::default(), |a, (_, c)| {
            counts(
                a.canary_requests + c.canary_requests,
                a.canary_bad + c.canary_bad,
                a.stable_requests + c.stable_requests,
                a.stable_bad + c.stable_bad,
            )
        })
}

/// The rollback mixture e-value computed directly from the binomial likelihood of the canary's
/// share of the bad events (no code of `ratio.rs` but its grid points).
fn e_fail_by_hand(grid: &[f64], cfg: &SequentialConfig, c: &IntervalCounts) -> f64 {
    let theta = |r: f64| c.canary_requests * r / (c.canary_requests * r + c.stable_requests);
    let lik = |r: f64| theta(r).powf(c.canary_bad) * (1.0 - theta(r)).powf(c.stable_bad);
    let (lo, hi) = (cfg.fail_grid_min(), cfg.fail_grid_max);
    let pts: Vec<f64> = grid
        .iter()
        .copied()
        .filter(|r| *r >= lo * (1.0 - 1e-9) && *r <= hi * (1.0 + 1e-9))
        .collect();
    pts.iter()
        .map(|r| lik(*r) / lik(cfg.tolerated_ratio))
        .sum::<f64>()
        / pts.len() as f64
}

#[test]
fn routes_take_slots_in_order_and_overflow_into_other() {
    let sp = split(3, RoutePromotion::Pooled);
    let cfg = SequentialConfig::default();
    let mut st = RouteState::default();
    assert_eq!(st.slot_for("/a", &sp, &cfg), 0);
    assert_eq!(st.slot_for("/b", &sp, &cfg), 1);
    assert_eq!(st.slot_for("/c", &sp, &cfg), 2);
    assert_eq!(st.slot_for("/d", &sp, &cfg), 2);
    assert_eq!(st.slot_for("/a", &sp, &cfg), 0);
    assert_eq!(st.slots.len(), 3);
    assert_eq!(st.slots[2].name(), "other routes");
    // 1 pooled + 3 slots share alpha.
    assert!((sp.per_test(&cfg).alpha - 0.05 / 4.0).abs() < 1e-12);
}

#[test]
fn one_route_slot_is_the_pooled_test_under_another_name() {
    let sp = split(1, RoutePromotion::Pooled);
    let mut st = RouteState::default();
    assert_eq!(st.slot_for("/x", &sp, &SequentialConfig::default()), 0);
    assert_eq!(st.slots[0].route, None);
}

#[test]
fn validation_names_the_problem() {
    assert!(split(0, RoutePromotion::Pooled)
        .validate()
        .unwrap_err()
        .contains("maxRoutes"));
    assert!(split(51, RoutePromotion::Pooled).validate().is_err());
    let mut s = split(5, RoutePromotion::Pooled);
    s.label = "9path".into();
    assert!(s.validate().unwrap_err().contains("label name"));
    s.label = "path-x".into();
    assert!(s.validate().is_err());
    s.label = "_path2".into();
    assert!(s.validate().is_ok());
}

#[test]
fn regression_on_one_route_fails_on_its_own_counts_before_the_pooled_test() {
    // 5% errors on /checkout (a fifth of the traffic) against stable's 0.5%; the other routes
    // are healthy. One window of 1,000 canary and 4,000 stable requests.
    let per_route = vec![
        ("/".to_string(), counts(800.0, 4.0, 3200.0, 16.0)),
        ("/checkout".to_string(), counts(200.0, 10.0, 800.0, 4.0)),
    ];
    let pooled = sum(&per_route);
    let sp = split(10, RoutePromotion::Pooled);
    let settings = SequentialConfig::default();
    let cfg = sp.per_test(&settings);
    let j = update_routes(
        &sp,
        &settings,
        &SequentialState::new(&cfg),
        &RouteState::default(),
        &pooled,
        &per_route,
    );
    assert_eq!(j.verdict.kind, VerdictKind::Fail, "{}", j.verdict.reason);
    assert!(
        j.verdict.reason.starts_with("route /checkout:"),
        "{}",
        j.verdict.reason
    );
    let grid = &j.routes.slots[0].state.grid;
    // Independent arithmetic: the route's e-value clears 1/(alpha/11), the pooled one does not.
    let e_route = e_fail_by_hand(grid, &cfg, &per_route[1].1);
    let e_pooled = e_fail_by_hand(grid, &cfg, &pooled);
    assert!(e_route >= 1.0 / cfg.alpha, "route e {e_route}");
    assert!(e_pooled < 1.0 / cfg.alpha, "pooled e {e_pooled}");
    let reported = j.verdict.evidence.as_ref().unwrap().e_fail;
    assert!(
        (reported.ln() - e_route.ln()).abs() < 1e-6,
        "reported {reported}, by hand {e_route}"
    );
    // The pooled test alone at the whole alpha would not have failed on this window.
    let (_, alone) = update(&settings, &SequentialState::new(&settings), &pooled);
    assert_ne!(alone.kind, VerdictKind::Fail, "{}", alone.reason);
}

#[test]
fn healthy_routes_pass_pooled_but_every_route_waits_for_each() {
    // Equal error rates everywhere, a small route with few errors.
    let per_route = vec![
        ("/".to_string(), counts(5000.0, 50.0, 5000.0, 50.0)),
        ("/admin".to_string(), counts(50.0, 0.0, 50.0, 1.0)),
    ];
    let pooled = sum(&per_route);
    let settings = SequentialConfig::default();
    for (promote, want) in [
        (RoutePromotion::Pooled, VerdictKind::Pass),
        (RoutePromotion::EveryRoute, VerdictKind::Inconclusive),
    ] {
        let sp = split(10, promote);
        let cfg = sp.per_test(&settings);
        let j = update_routes(
            &sp,
            &settings,
            &SequentialState::new(&cfg),
            &RouteState::default(),
            &pooled,
            &per_route,
        );
        assert_eq!(j.verdict.kind, want, "{promote:?}: {}", j.verdict.reason);
        if want == VerdictKind::Inconclusive {
            assert!(
                j.verdict.reason.contains("every route"),
                "{}",
                j.verdict.reason
            );
        }
    }
}

#[test]
fn every_route_passes_once_each_route_has_ruled_out_the_bad_ratio() {
    let per_route = vec![
        ("/".to_string(), counts(5000.0, 50.0, 5000.0, 50.0)),
        ("/b".to_string(), counts(5000.0, 50.0, 5000.0, 50.0)),
    ];
    let sp = split(4, RoutePromotion::EveryRoute);
    let settings = SequentialConfig::default();
    let cfg = sp.per_test(&settings);
    let j = update_routes(
        &sp,
        &settings,
        &SequentialState::new(&cfg),
        &RouteState::default(),
        &sum(&per_route),
        &per_route,
    );
    assert_eq!(j.verdict.kind, VerdictKind::Pass, "{}", j.verdict.reason);
}

#[test]
fn no_canary_traffic_changes_nothing() {
    let per_route = vec![("/".to_string(), counts(0.0, 0.0, 100.0, 1.0))];
    let sp = split(4, RoutePromotion::Pooled);
    let settings = SequentialConfig::default();
    let pooled = SequentialState::new(&sp.per_test(&settings));
    let j = update_routes(
        &sp,
        &settings,
        &pooled,
        &RouteState::default(),
        &sum(&per_route),
        &per_route,
    );
    assert_eq!(j.verdict.cause, Some(InconclusiveCause::NoTraffic));
    assert_eq!(j.pooled, pooled);
    assert!(j.routes.slots.is_empty());
}

#[test]
fn state_for_other_ratios_is_an_error() {
    let sp = split(4, RoutePromotion::Pooled);
    let settings = SequentialConfig::default();
    let other = SequentialConfig {
        bad_ratio: 3.0,
        ..settings
    };
    let mut routes = RouteState::default();
    routes.slot_for("/", &sp, &other);
    let per_route = vec![("/".to_string(), counts(100.0, 1.0, 100.0, 1.0))];
    let j = update_routes(
        &sp,
        &settings,
        &SequentialState::new(&sp.per_test(&settings)),
        &routes,
        &sum(&per_route),
        &per_route,
    );
    assert_eq!(j.verdict.kind, VerdictKind::Error);
}

fn binomial(rng: &mut StdRng, n: u64, p: f64) -> f64 {
    (0..n).filter(|_| rng.random::<f64>() < p).count() as f64
}

/// Healthy canaries on six routes of unequal size and error rate, two of which appear only
/// half-way through: the chance that any test (pooled or a route) ever rolls back stays within
/// alpha. 400 seeded canaries, 40 windows each.
#[test]
fn healthy_canaries_with_routes_appearing_mid_rollout_stay_within_alpha() {
    let mut rng = StdRng::seed_from_u64(17);
    let sp = split(4, RoutePromotion::Pooled); // 6 routes > 4 slots: "other" is used too
    let settings = SequentialConfig::default();
    let cfg = sp.per_test(&settings);
    let routes: [(&str, f64, f64, usize); 6] = [
        ("/", 0.4, 0.005, 0),
        ("/checkout", 0.2, 0.02, 0),
        ("/search", 0.2, 0.01, 0),
        ("/cart", 0.1, 0.03, 0),
        ("/new", 0.05, 0.05, 20),
        ("/late", 0.05, 0.002, 20),
    ];
    let (runs, windows) = (400, 40);
    let mut rolled_back = 0;
    for _ in 0..runs {
        let mut pooled = SequentialState::new(&cfg);
        let mut st = RouteState::default();
        for w in 0..windows {
            let total = 400.0;
            let share = [0.05, 0.1, 0.25, 0.5][w * 4 / windows];
            let per_route: Vec<(String, IntervalCounts)> = routes
                .iter()
                .filter(|r| w >= r.3)
                .map(|&(name, frac, p, _)| {
                    let n = (total * frac) as u64;
                    let n_c = ((n as f64) * share).round() as u64;
                    let n_s = n - n_c;
                    (
                        name.to_string(),
                        counts(
                            n_c as f64,
                            binomial(&mut rng, n_c, p),
                            n_s as f64,
                            binomial(&mut rng, n_s, p),
                        ),
                    )
                })
                .collect();
            let j = update_routes(&sp, &settings, &pooled, &st, &sum(&per_route), &per_route);
            if j.verdict.kind == VerdictKind::Fail {
                rolled_back += 1;
                break;
            }
            pooled = j.pooled;
            st = j.routes;
        }
    }
    let rate = rolled_back as f64 / runs as f64;
    println!(
        "per-route healthy false rollbacks: {rolled_back}/{runs} ({:.1}%)",
        rate * 100.0
    );
    // alpha 5% plus three binomial standard errors of the estimate (1.1%).
    assert!(
        rate <= 0.05 + 3.0 * (0.05f64 * 0.95 / runs as f64).sqrt(),
        "{rate}"
    );
}
