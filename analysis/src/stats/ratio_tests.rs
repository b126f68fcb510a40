//! Unit tests of the sequential ratio test with hand-computed values.

use super::*;
use crate::verdict::VerdictKind;

fn counts(n_c: f64, x_c: f64, n_s: f64, x_s: f64) -> IntervalCounts {
    IntervalCounts {
        canary_requests: n_c,
        canary_bad: x_c,
        stable_requests: n_s,
        stable_bad: x_s,
    }
}

#[test]
fn log_likelihood_ratio_matches_hand_computation() {
    // n_c = 100, n_s = 900, x_c = x_s = 5: θ(1) = 0.1, θ(2) = 200/1100.
    // l(2) = 5·ln(0.181818/0.1) + 5·ln(0.818182/0.9) = 2.989185 − 0.476551 = 2.512634.
    let cfg = SequentialConfig::default();
    let (s, _) = update(
        &cfg,
        &SequentialState::new(&cfg),
        &counts(100.0, 5.0, 900.0, 5.0),
    );
    let l2 = s.loglik_bad - s.loglik_tolerated;
    assert!((l2 - 2.512634).abs() < 1e-5, "{l2}");
    // A grid point: r = 10 is on the grid (20 points per decade from 0.01). θ(10) = 1000/1900.
    let i = s.grid.iter().position(|r| (r - 10.0).abs() < 1e-9).unwrap();
    let want = 5.0 * ((1000.0f64 / 1900.0) / 0.1).ln() + 5.0 * ((900.0f64 / 1900.0) / 0.9).ln();
    assert!((s.loglik[i] - s.loglik_tolerated - want).abs() < 1e-9);
}

#[test]
fn fails_on_strong_evidence_with_anytime_p_value() {
    let cfg = SequentialConfig::default();
    // 20 of 200 canary requests bad vs 10 of 1800 stable: ratio 18.
    let (_, v) = update(
        &cfg,
        &SequentialState::new(&cfg),
        &counts(200.0, 20.0, 1800.0, 10.0),
    );
    assert_eq!(v.kind, VerdictKind::Fail, "{}", v.reason);
    let ev = v.evidence.unwrap();
    assert!(ev.e_fail >= 20.0 && (ev.p_fail - 1.0 / ev.e_fail).abs() < 1e-12);
    let (est, low, high) = (ev.estimate.unwrap(), ev.low.unwrap(), ev.high.unwrap());
    assert!(low > 1.0 && low < est && est < high, "{low} {est} {high}");
    assert!((est / 18.0 - 1.0).abs() < 0.1, "{est}");
}

#[test]
fn no_bad_events_gives_no_ratio_evidence() {
    let cfg = SequentialConfig {
        negligible_bad_rate: None,
        ..SequentialConfig::default()
    };
    let (s, v) = update(
        &cfg,
        &SequentialState::new(&cfg),
        &counts(500.0, 0.0, 500.0, 0.0),
    );
    assert_eq!(v.cause, Some(InconclusiveCause::NotEnoughEvidence));
    let ev = v.evidence.clone().unwrap();
    assert!((ev.e_fail - 1.0).abs() < 1e-12 && (ev.e_pass - 1.0).abs() < 1e-12);
    assert_eq!(ev.estimate, None);
    // With the negligible-rate option (off by default) a long error-free canary can pass.
    let cfg = SequentialConfig {
        negligible_bad_rate: Some(0.005),
        ..SequentialConfig::default()
    };
    let mut st = SequentialState::new(&cfg);
    let mut v = v;
    for _ in 0..10 {
        (st, v) = update(&cfg, &st, &counts(500.0, 0.0, 500.0, 0.0));
    }
    assert_eq!(v.kind, VerdictKind::Pass, "{}", v.reason);
    assert_eq!(s.intervals, 1);
}

#[test]
fn equal_rates_pass_eventually_and_min_requests_hold_it_back() {
    let cfg = SequentialConfig {
        min_canary_requests: 1e9,
        negligible_bad_rate: None,
        ..SequentialConfig::default()
    };
    let mut s = SequentialState::new(&cfg);
    let mut v = Verdict::error("");
    for _ in 0..50 {
        (s, v) = update(&cfg, &s, &counts(500.0, 5.0, 500.0, 5.0));
    }
    assert_eq!(
        v.cause,
        Some(InconclusiveCause::NotEnoughEvidence),
        "min requests not reached"
    );
    assert!(v.evidence.as_ref().unwrap().e_pass >= 20.0);
    let cfg = SequentialConfig {
        min_canary_requests: 1000.0,
        ..cfg
    };
    assert_eq!(evaluate(&cfg, &s).kind, VerdictKind::Pass);
}

#[test]
fn incident_on_both_arms_cancels_out() {
    // Both arms jump from 1% to 30% errors for one interval: the ratio stays 1.
    let cfg = SequentialConfig::default();
    let mut s = SequentialState::new(&cfg);
    for (n_c, n_s, p) in [
        (50.0, 450.0, 0.01),
        (100.0, 400.0, 0.30),
        (250.0, 250.0, 0.01),
    ] {
        let v;
        (s, v) = update(&cfg, &s, &counts(n_c, n_c * p, n_s, n_s * p));
        assert_ne!(v.kind, VerdictKind::Fail, "{}", v.reason);
    }
    let ev = evaluate(&cfg, &s).evidence.unwrap();
    assert!(ev.low.unwrap() < 1.0 && ev.high.unwrap() > 1.0, "{ev:?}");
}

#[test]
fn state_survives_serialization_midway() {
    let cfg = SequentialConfig::default();
    let data = [
        counts(30.0, 1.0, 270.0, 2.0),
        counts(60.0, 4.0, 240.0, 1.0),
        counts(150.0, 9.0, 150.0, 2.0),
    ];
    let mut straight = SequentialState::new(&cfg);
    for c in &data {
        straight = update(&cfg, &straight, c).0;
    }
    let mut resumed = SequentialState::new(&cfg);
    for c in &data {
        let json = serde_json::to_string(&resumed).unwrap();
        resumed = update(&cfg, &serde_json::from_str(&json).unwrap(), c).0;
    }
    assert_eq!(straight, resumed);
    assert_eq!(evaluate(&cfg, &straight), evaluate(&cfg, &resumed));
}

#[test]
fn no_traffic_and_bad_input() {
    let cfg = SequentialConfig::default();
    let s = SequentialState::new(&cfg);
    let (s2, v) = update(&cfg, &s, &counts(0.0, 0.0, 100.0, 1.0));
    assert_eq!(
        (v.kind, v.cause),
        (
            VerdictKind::Inconclusive,
            Some(InconclusiveCause::NoTraffic)
        )
    );
    assert_eq!(s2, s);
    assert_eq!(
        update(&cfg, &s, &counts(10.0, 0.0, 0.0, 0.0)).1.cause,
        Some(InconclusiveCause::NoTraffic)
    );
    assert_eq!(
        update(&cfg, &s, &counts(10.0, f64::NAN, 10.0, 0.0)).1.kind,
        VerdictKind::Error
    );
    assert_eq!(
        update(&cfg, &s, &counts(10.0, -1.0, 10.0, 0.0)).1.kind,
        VerdictKind::Error
    );
    let bad = SequentialConfig {
        bad_ratio: 0.5,
        ..cfg
    };
    assert!(bad.validate().is_err());
    assert_eq!(
        update(&bad, &s, &counts(10.0, 0.0, 10.0, 0.0)).1.kind,
        VerdictKind::Error
    );
    let other = SequentialConfig {
        tolerated_ratio: 1.2,
        ..cfg
    };
    assert!(!s.matches(&other));
    assert_eq!(
        update(&other, &s, &counts(10.0, 0.0, 10.0, 0.0)).1.kind,
        VerdictKind::Error
    );
    // Extrapolated counts may put bad above total; it is capped.
    let (s3, _) = update(&cfg, &s, &counts(10.0, 10.4, 10.0, 0.0));
    assert_eq!(s3.canary_bad, 10.0);
}

#[test]
fn tolerated_ratio_moves_the_fail_grid() {
    let cfg = SequentialConfig {
        tolerated_ratio: 1.6,
        bad_ratio: 3.0,
        ..SequentialConfig::default()
    };
    assert_eq!(cfg.fail_grid_min(), 2.0);
    assert_eq!(cfg.pass_grid_max(), 1.6);
    // A canary 1.5x worse is tolerated: plenty of data, no Fail.
    let mut s = SequentialState::new(&cfg);
    for _ in 0..40 {
        let v;
        (s, v) = update(&cfg, &s, &counts(1000.0, 15.0, 1000.0, 10.0));
        assert_ne!(v.kind, VerdictKind::Fail);
    }
}

#[test]
fn error_free_canary_passes_after_about_1070_requests() {
    // Closed form: E_abs(n) = ((1 − (1−p0)^(n+1)) / ((n+1)·p0)) / (1−p0)^n with p0 = 0.005, averaged
    // with a ratio e-value of 1; (1 + E_abs)/2 first reaches 20 at n = 1070. Without the floor
    // (the default) no number of error-free requests passes while stable has no errors either:
    // there is no evidence about the ratio.
    let cfg = SequentialConfig::default();
    let mut s = SequentialState::new(&cfg);
    for _ in 0..500 {
        let v;
        (s, v) = update(&cfg, &s, &counts(10.0, 0.0, 90.0, 0.0));
        assert_eq!(v.cause, Some(InconclusiveCause::NotEnoughEvidence));
    }
    let cfg = SequentialConfig {
        negligible_bad_rate: Some(0.005),
        ..SequentialConfig::default()
    };
    let mut s = SequentialState::new(&cfg);
    let mut v = Verdict::error("");
    while v.kind != VerdictKind::Pass && s.canary_requests < 5000.0 {
        (s, v) = update(&cfg, &s, &counts(10.0, 0.0, 90.0, 0.0));
        assert_ne!(v.kind, VerdictKind::Fail);
    }
    assert_eq!(s.canary_requests, 1070.0, "{}", v.reason);
}

#[test]
fn a_fail_needs_five_canary_bad_events() {
    // 4 of 20 canary requests bad vs 1 of 2000 stable: e-value far above 1/alpha, but only 4
    // canary bad events, so the default holds the Fail back; without the minimum it fails.
    let cfg = SequentialConfig::default();
    assert_eq!(cfg.min_canary_bad_to_fail, 5.0);
    let (s, v) = update(
        &cfg,
        &SequentialState::new(&cfg),
        &counts(20.0, 4.0, 2000.0, 1.0),
    );
    assert_eq!(
        v.cause,
        Some(InconclusiveCause::NotEnoughEvidence),
        "{}",
        v.reason
    );
    assert!(v.evidence.unwrap().e_fail >= 20.0);
    let eager = SequentialConfig {
        min_canary_bad_to_fail: 0.0,
        ..cfg
    };
    assert_eq!(evaluate(&eager, &s).kind, VerdictKind::Fail);
    // One more bad canary request reaches the minimum.
    let (_, v) = update(&cfg, &s, &counts(5.0, 1.0, 500.0, 0.0));
    assert_eq!(v.kind, VerdictKind::Fail, "{}", v.reason);
    assert!(SequentialConfig {
        min_canary_bad_to_fail: f64::NAN,
        ..cfg
    }
    .validate()
    .is_err());
}
