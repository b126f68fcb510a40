//! Seeded simulations of the sequential ratio test: false-rollback rate of healthy canaries and
//! detection of degraded ones, with changing traffic splits. Prints what it measures.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::latency::{choose_boundary, latency_counts, Histogram};
use super::ratio::{update, IntervalCounts, SequentialConfig, SequentialState};
use crate::verdict::VerdictKind;

/// Binomial(n, p) by geometric skips: O(n·p) draws instead of O(n).
fn binomial(rng: &mut StdRng, n: u64, p: f64) -> u64 {
    if p <= 0.0 {
        return 0;
    }
    let lq = (1.0 - p).ln();
    let (mut count, mut pos) = (0, 0u64);
    loop {
        let u: f64 = rng.random();
        pos += ((1.0 - u).ln() / lq).floor() as u64 + 1;
        if pos > n {
            return count;
        }
        count += 1;
    }
}

const WEIGHTS: [f64; 5] = [0.05, 0.1, 0.2, 0.3, 0.5];

struct Outcome {
    failed_at: Option<f64>, // canary requests seen when the first Fail came
    passed_at: Option<f64>,
}

/// One canary over `intervals` intervals of 100..=400 requests with a random split each time.
/// Keeps going after a Pass so that a later false Fail would still be counted.
fn run(
    rng: &mut StdRng,
    cfg: &SequentialConfig,
    p_stable: f64,
    p_canary: f64,
    intervals: usize,
    stop_on_fail: bool,
) -> Outcome {
    let mut s = SequentialState::new(cfg);
    let mut out = Outcome {
        failed_at: None,
        passed_at: None,
    };
    for _ in 0..intervals {
        let total = rng.random_range(100..=400u64);
        let w = WEIGHTS[rng.random_range(0..WEIGHTS.len())];
        let n_c = ((total as f64) * w).round() as u64;
        let n_s = total - n_c;
        let c = IntervalCounts {
            canary_requests: n_c as f64,
            canary_bad: binomial(rng, n_c, p_canary) as f64,
            stable_requests: n_s as f64,
            stable_bad: binomial(rng, n_s, p_stable) as f64,
        };
        let v;
        (s, v) = update(cfg, &s, &c);
        match v.kind {
            VerdictKind::Fail if out.failed_at.is_none() => {
                out.failed_at = Some(s.canary_requests);
                if stop_on_fail {
                    return out;
                }
            }
            VerdictKind::Pass if out.passed_at.is_none() => out.passed_at = Some(s.canary_requests),
            _ => {}
        }
    }
    out
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs.get(xs.len() / 2).copied().unwrap_or(f64::NAN)
}

#[test]
fn binomial_sampler_has_the_right_mean() {
    let mut rng = StdRng::seed_from_u64(1);
    let draws = 20_000;
    let mean = (0..draws)
        .map(|_| binomial(&mut rng, 300, 0.01) as f64)
        .sum::<f64>()
        / draws as f64;
    // Mean 3, sd of the average sqrt(2.97/20000) = 0.012.
    assert!((mean - 3.0).abs() < 0.06, "{mean}");
}

#[test]
fn healthy_canaries_rarely_roll_back_and_bad_ones_are_caught() {
    let cfg = SequentialConfig::default();
    let mut rng = StdRng::seed_from_u64(20261125);
    let runs = 2000;
    let healthy: Vec<Outcome> = (0..runs)
        .map(|_| run(&mut rng, &cfg, 0.01, 0.01, 60, false))
        .collect();
    let false_rollbacks = healthy.iter().filter(|o| o.failed_at.is_some()).count();
    let rate = false_rollbacks as f64 / runs as f64;
    let passes: Vec<f64> = healthy.iter().filter_map(|o| o.passed_at).collect();
    println!(
        "healthy (1% vs 1%, 60 intervals): false rollbacks {false_rollbacks}/{runs} = {rate:.4} (alpha {}); passed {}/{runs}, median canary requests to pass {:.0}",
        cfg.alpha,
        passes.len(),
        median(passes.clone())
    );
    // alpha plus three binomial standard errors.
    let tolerance = 3.0 * (cfg.alpha * (1.0 - cfg.alpha) / runs as f64).sqrt();
    assert!(rate <= cfg.alpha + tolerance, "false rollback rate {rate}");

    let bad: Vec<Outcome> = (0..runs)
        .map(|_| run(&mut rng, &cfg, 0.01, 0.05, 60, true))
        .collect();
    let caught: Vec<f64> = bad.iter().filter_map(|o| o.failed_at).collect();
    let wrongly_passed = bad
        .iter()
        .filter(|o| o.passed_at.is_some() && o.failed_at.is_none())
        .count();
    let share = caught.len() as f64 / runs as f64;
    println!(
        "degraded (5% vs 1%): caught {}/{runs} = {share:.4}, median canary requests needed {:.0}; passed without failing {wrongly_passed}",
        caught.len(),
        median(caught.clone())
    );
    assert!(share >= 0.95, "detection {share}");
    assert!((wrongly_passed as f64 / runs as f64) <= cfg.beta + tolerance);
}

#[test]
fn half_percent_to_five_percent_with_ten_percent_canary_traffic() {
    // The DESIGN's yardstick: 20 req/s, 10% to the canary, 5 s intervals (100 requests each).
    let cfg = SequentialConfig::default();
    let mut rng = StdRng::seed_from_u64(45);
    let runs = 500;
    let mut needed = Vec::new();
    for _ in 0..runs {
        let mut s = SequentialState::new(&cfg);
        for i in 1..=400 {
            let c = IntervalCounts {
                canary_requests: 10.0,
                canary_bad: binomial(&mut rng, 10, 0.05) as f64,
                stable_requests: 90.0,
                stable_bad: binomial(&mut rng, 90, 0.005) as f64,
            };
            let v;
            (s, v) = update(&cfg, &s, &c);
            if v.kind == VerdictKind::Fail {
                needed.push((s.canary_requests, i as f64 * 5.0));
                break;
            }
        }
    }
    let share = needed.len() as f64 / runs as f64;
    let med_req = median(needed.iter().map(|x| x.0).collect());
    let med_secs = median(needed.iter().map(|x| x.1).collect());
    println!("0.5% -> 5% at 10% of 20 req/s: caught {share:.3}, median {med_req:.0} canary requests, median {med_secs:.0} s");
    assert!(share >= 0.95, "{share}");
}

/// Cumulative bucket counts of `n` requests drawn from per-bucket probabilities (last = +Inf).
fn draw_histogram(rng: &mut StdRng, n: u64, probs: &[f64; 5]) -> Histogram {
    const LE: [f64; 5] = [0.05, 0.1, 0.25, 1.0, f64::INFINITY];
    let (mut left, mut mass, mut cum) = (n, 1.0, 0.0);
    let mut buckets = Vec::with_capacity(5);
    for (le, p) in LE.iter().zip(probs) {
        let k = if mass <= *p {
            left
        } else {
            binomial(rng, left, p / mass)
        };
        left -= k;
        mass -= p;
        cum += k as f64;
        buckets.push((*le, cum));
    }
    Histogram { buckets }
}

#[test]
fn latency_comparison_with_a_boundary_chosen_from_stable() {
    const SAME: [f64; 5] = [0.70, 0.20, 0.06, 0.03, 0.01];
    const SLOWER: [f64; 5] = [0.50, 0.25, 0.10, 0.10, 0.05];
    let cfg = SequentialConfig::default();
    let mut rng = StdRng::seed_from_u64(99);
    let runs = 500;
    let mut outcome = |canary: &[f64; 5]| -> Option<f64> {
        let mut s = SequentialState::new(&cfg);
        for _ in 0..40 {
            let total = rng.random_range(100..=400u64);
            let w = WEIGHTS[rng.random_range(0..WEIGHTS.len())];
            let n_c = ((total as f64) * w).round() as u64;
            let stable = draw_histogram(&mut rng, total - n_c, &SAME);
            let canary = draw_histogram(&mut rng, n_c, canary);
            if s.boundary.is_none() {
                s.boundary = choose_boundary(&stable, 0.95, 50.0);
            }
            let Some(b) = s.boundary else { continue };
            let c = latency_counts(&stable, &canary, b).unwrap();
            let v;
            (s, v) = update(&cfg, &s, &c);
            if v.kind == VerdictKind::Fail {
                return Some(s.canary_requests);
            }
        }
        None
    };
    let false_rollbacks = (0..runs).filter(|_| outcome(&SAME).is_some()).count();
    let caught: Vec<f64> = (0..runs).filter_map(|_| outcome(&SLOWER)).collect();
    let rate = false_rollbacks as f64 / runs as f64;
    println!(
        "latency: healthy false rollbacks {false_rollbacks}/{runs} = {rate:.3}; slower canary caught {}/{runs}, median {:.0} canary requests",
        caught.len(),
        median(caught.clone())
    );
    assert!(rate <= cfg.alpha + 3.0 * (cfg.alpha * (1.0 - cfg.alpha) / runs as f64).sqrt());
    assert!(caught.len() as f64 >= 0.95 * runs as f64);
}
