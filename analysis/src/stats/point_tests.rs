//! The promotion test's point alternative (`SequentialConfig::pass_point`): hand-computed
//! values, its validity under the composite null r ≥ r_bad checked with exact binomial
//! probabilities from statrs (not the product's code path), and the evidence it needs.

use statrs::distribution::{Binomial, Discrete};

use super::ratio::{update, IntervalCounts, SequentialConfig, SequentialState};
use crate::verdict::VerdictKind;

fn counts(n_c: f64, x_c: f64, n_s: f64, x_s: f64) -> IntervalCounts {
    IntervalCounts {
        canary_requests: n_c,
        canary_bad: x_c,
        stable_requests: n_s,
        stable_bad: x_s,
    }
}

fn e_pass(cfg: &SequentialConfig, c: IntervalCounts) -> f64 {
    let (s, v) = update(cfg, &SequentialState::new(cfg), &c);
    assert_eq!(s.dispersion.phi(), 1.0, "one window: no tempering");
    v.evidence.expect("evidence").e_pass
}

#[test]
fn point_e_value_matches_hand_computation() {
    // n_c = 100, n_s = 900, x_c = x_s = 5: θ(1) = 0.1, θ(2) = 200/1100 = 0.181818.
    // ln E = 5·ln(0.1/0.181818) + 5·ln(0.9/0.818182) = −2.989185 + 0.476551 = −2.512634.
    let cfg = SequentialConfig::default();
    assert_eq!(cfg.pass_alternative(), Some(1.0));
    let e = e_pass(&cfg, counts(100.0, 5.0, 900.0, 5.0));
    assert!((e.ln() + 2.512634).abs() < 1e-5, "{}", e.ln());
    // All 10 bad events on stable: ln E = 10·ln(0.9/0.818182) = 0.953102.
    let e = e_pass(&cfg, counts(100.0, 0.0, 900.0, 10.0));
    assert!((e.ln() - 0.953102).abs() < 1e-5, "{}", e.ln());
}

#[test]
fn point_e_value_is_a_supermartingale_under_every_bad_ratio() {
    // One window with x bad events: E_r[E_pass] = Σ_k Binomial(x, θ(r)).pmf(k) · E_pass(k).
    // Exactly 1 at r = r_bad, below 1 beyond it (monotone likelihood ratio), above 1 for a
    // healthy canary (that is where its evidence grows).
    let cfg = SequentialConfig::default();
    let (n_c, n_s, x) = (300.0, 700.0, 12u64);
    let theta = |r: f64| n_c * r / (n_c * r + n_s);
    let expect = |r: f64| -> f64 {
        let b = Binomial::new(theta(r), x).expect("valid binomial");
        (0..=x)
            .map(|k| {
                let e = e_pass(&cfg, counts(n_c, k as f64, n_s, (x - k) as f64));
                b.pmf(k) * e
            })
            .sum()
    };
    assert!((expect(2.0) - 1.0).abs() < 1e-9, "{}", expect(2.0));
    for r in [2.5, 3.0, 5.0, 20.0] {
        assert!(expect(r) < 1.0, "r = {r}: {}", expect(r));
    }
    assert!(expect(1.0) > 1.0);
}

/// Windows of 100 requests per arm with one bad event each: the ratio is 1 at a 50% share.
fn run_balanced(cfg: &SequentialConfig, windows: usize) -> VerdictKind {
    let mut s = SequentialState::new(cfg);
    let mut kind = VerdictKind::Inconclusive;
    for _ in 0..windows {
        let (next, v) = update(cfg, &s, &counts(100.0, 1.0, 100.0, 1.0));
        s = next;
        kind = v.kind;
    }
    kind
}

#[test]
fn a_healthy_canary_passes_after_walds_number_of_bad_events() {
    // KL(θ(1) ‖ θ(2)) per bad event at a 50% share: 0.5·ln(0.5/(2/3)) + 0.5·ln(0.5/(1/3))
    // = 0.5·ln(1.125) = 0.0588915; ln 20 / 0.0588915 = 50.87 events. Balanced windows hold
    // exactly the expected proportions, so 50 events are not enough and 52 are.
    let cfg = SequentialConfig::default();
    assert_eq!(run_balanced(&cfg, 25), VerdictKind::Inconclusive);
    assert_eq!(run_balanced(&cfg, 26), VerdictKind::Pass);
    // The mixture over [0.5, 1] pays for ratios a healthy canary does not have.
    let mixture = SequentialConfig {
        pass_point: None,
        ..cfg
    };
    assert_eq!(run_balanced(&mixture, 26), VerdictKind::Inconclusive);
    let needed = (26..200)
        .find(|w| run_balanced(&mixture, *w) == VerdictKind::Pass)
        .expect("the mixture passes eventually");
    println!(
        "balanced evidence: point test 52 bad events, mixture {}",
        2 * needed
    );
    assert!(needed > 26);
}

#[test]
fn changing_the_point_alternative_restarts_the_evidence() {
    let cfg = SequentialConfig::default();
    let s = SequentialState::new(&cfg);
    assert!(s.matches(&cfg));
    let mixture = SequentialConfig {
        pass_point: None,
        ..cfg
    };
    assert!(!s.matches(&mixture));
    // A point above pass_grid_max() is clamped there (below r_bad), never used as given.
    let high = SequentialConfig {
        tolerated_ratio: 1.2,
        pass_point: Some(5.0),
        ..cfg
    };
    assert_eq!(high.pass_alternative(), Some(1.2));
    let bad = SequentialConfig {
        pass_point: Some(f64::NAN),
        ..cfg
    };
    assert!(bad.validate().is_err());
}
