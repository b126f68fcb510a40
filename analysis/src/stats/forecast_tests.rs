//! Forecasts checked against hand-computed evidence counts and against the test itself.

use super::*;
use crate::stats::ratio::update;

fn counts(n_c: f64, x_c: f64, n_s: f64, x_s: f64) -> IntervalCounts {
    IntervalCounts {
        canary_requests: n_c,
        canary_bad: x_c,
        stable_requests: n_s,
        stable_bad: x_s,
    }
}

fn fed(cfg: &SequentialConfig, windows: usize, c: IntervalCounts) -> SequentialState {
    let mut s = SequentialState::new(cfg);
    for _ in 0..windows {
        s = update(cfg, &s, &c).0;
    }
    s
}

#[test]
fn healthy_forecast_matches_walds_count_and_the_test_agrees() {
    // 10 windows of 10 s with 100 requests and 1 bad event per arm: 20 bad events, ratio 1.
    // The point test passes at ln 20 / (0.5·ln 1.125) = 50.87 bad events; each canary
    // request brings 0.02 more (1% on each arm at a 50% share): (50.87 − 20) / 0.02 = 1543.4.
    let cfg = SequentialConfig::default();
    let last = counts(100.0, 1.0, 100.0, 1.0);
    let s = fed(&cfg, 10, last);
    let f = forecast(&cfg, &s, &last, 10.0);
    let want = ((20f64).ln() / (0.5 * 1.125f64.ln()) - 20.0) / 0.02;
    let more = f.more_canary_requests.expect("a number") as f64;
    assert!(
        (more - want).abs() <= 1.5,
        "{more} vs {want}: {}",
        f.message
    );
    assert_eq!(f.heading, Some(Heading::Promote));
    let secs = f.seconds.expect("a time");
    assert!((secs - want / 10.0).abs() < 0.5, "{secs}");
    assert_eq!(
        f.message,
        "about 1,500 more canary requests to promote if traffic stays like this (ratio estimate 1.00), about 3 min at the current 10.0 canary requests/s"
    );
    // The test itself: 15 more windows (1,500 canary requests) are not enough, 16 are.
    assert_eq!(
        evaluate(&cfg, &fed(&cfg, 25, last)).kind,
        VerdictKind::Inconclusive
    );
    assert_eq!(evaluate(&cfg, &fed(&cfg, 26, last)).kind, VerdictKind::Pass);
}

#[test]
fn a_bad_canary_is_forecast_to_roll_back() {
    // 4% vs 0.5%: heading for a rollback within a few hundred canary requests.
    let cfg = SequentialConfig {
        tolerated_ratio: 1.2,
        ..SequentialConfig::default()
    };
    let last = counts(50.0, 2.0, 150.0, 0.75);
    let s = fed(&cfg, 1, last);
    let f = forecast(&cfg, &s, &last, 10.0);
    assert_eq!(f.heading, Some(Heading::RollBack), "{}", f.message);
    let more = f.more_canary_requests.expect("a number");
    assert!(more > 0 && more < 500, "{more}");
    assert!(f.message.contains("to roll back"), "{}", f.message);
}

#[test]
fn no_bad_events_says_why_and_which_knob() {
    let cfg = SequentialConfig::default();
    let last = counts(300.0, 0.0, 300.0, 0.0);
    let f = forecast(&cfg, &fed(&cfg, 3, last), &last, 10.0);
    assert_eq!(f.more_canary_requests, None);
    assert!(f.message.starts_with("cannot decide from bad events yet: neither arm has had one in 900 canary and 900 stable requests"), "{}", f.message);
    assert!(f.message.contains("analysis.slo"), "{}", f.message);
    // With the floor, zero errors can promote: a number again.
    let floor = SequentialConfig {
        negligible_bad_rate: Some(0.005),
        ..cfg
    };
    let f = forecast(&floor, &fed(&floor, 3, last), &last, 10.0);
    assert_eq!(f.heading, Some(Heading::Promote), "{}", f.message);
}

#[test]
fn low_traffic_cannot_decide_in_reasonable_time() {
    // 1 req/s in total, 10% canary: 1 canary and 9 stable requests per 10 s, 0.5% errors.
    let cfg = SequentialConfig::default();
    let last = counts(1.0, 0.0, 9.0, 0.0);
    let mut s = fed(&cfg, 100, last);
    s = update(&cfg, &s, &counts(1.0, 0.0, 9.0, 5.0)).0;
    let f = forecast(&cfg, &s, &last, 10.0);
    assert_eq!(f.heading, Some(Heading::Promote), "{}", f.message);
    assert!(f.seconds.expect("a time") > REASONABLE_SECONDS);
    assert!(
        f.message
            .starts_with("cannot decide in reasonable time: to promote needs about"),
        "{}",
        f.message
    );
    assert!(f.message.contains("canary weight"), "{}", f.message);
}

#[test]
fn no_traffic_gives_no_numbers() {
    let cfg = SequentialConfig::default();
    let f = forecast(
        &cfg,
        &SequentialState::new(&cfg),
        &IntervalCounts::default(),
        10.0,
    );
    assert_eq!((f.more_canary_requests, f.seconds), (None, None));
    assert!(f.message.starts_with("no forecast yet"), "{}", f.message);
}

#[test]
fn numbers_for_people() {
    assert_eq!(about_count(1234.0), "1,200");
    assert_eq!(about_count(1543.4), "1,500");
    assert_eq!(about_count(87.2), "87");
    assert_eq!(about_count(1_250_000.0), "1,300,000");
    assert_eq!(about_duration(240.0), "4 min");
    assert_eq!(about_duration(31.0), "35 s");
    assert_eq!(about_duration(9000.0), "2.5 h");
}
