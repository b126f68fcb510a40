//! Wald's sequential probability ratio test for one Bernoulli stream: a planning yardstick
//! (how many canary requests any sequential test roughly needs), not a judge.

/// Wald's approximation of the expected sample size under H1 of the SPRT of p0 against p1
/// with error bounds alpha (false alarm) and beta (miss):
/// E1[N] ≈ ((1−β)·ln((1−β)/α) + β·ln(β/(1−α))) / KL(p1 ‖ p0)   (Wald 1945, overshoot ignored,
/// so it is a lower bound for the real test).
pub fn wald_expected_samples(p0: f64, p1: f64, alpha: f64, beta: f64) -> f64 {
    let kl = p1 * (p1 / p0).ln() + (1.0 - p1) * ((1.0 - p1) / (1.0 - p0)).ln();
    let a = ((1.0 - beta) / alpha).ln();
    let b = (beta / (1.0 - alpha)).ln();
    ((1.0 - beta) * a + beta * b) / kl
}

/// ln of Wald's boundaries `(ln B, ln A)`: accept H0 below the first, H1 above the second.
pub fn wald_bounds(alpha: f64, beta: f64) -> (f64, f64) {
    ((beta / (1.0 - alpha)).ln(), ((1.0 - beta) / alpha).ln())
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};

    use super::*;

    #[test]
    fn expected_samples_for_half_percent_to_five_percent() {
        // KL(0.05‖0.005) = 0.05·ln 10 + 0.95·ln(0.95/0.995) = 0.071162; numerator 0.95·ln 19 + 0.05·ln(0.05/0.95) = 2.6500.
        let n = wald_expected_samples(0.005, 0.05, 0.05, 0.05);
        assert!((n - 2.6500 / 0.071162).abs() < 0.05, "{n}");
        assert!((37.0..38.0).contains(&n));
    }

    #[test]
    fn simulated_sprt_needs_more_than_walds_bound() {
        // The real SPRT overshoots its boundary, so its mean sample size exceeds the approximation.
        let (lo, hi) = wald_bounds(0.05, 0.05);
        let (up, down) = ((0.05f64 / 0.005).ln(), (0.95f64 / 0.995).ln());
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let (runs, mut total, mut detected) = (4000, 0u64, 0);
        for _ in 0..runs {
            let (mut llr, mut n) = (0.0, 0u64);
            while llr > lo && llr < hi {
                llr += if rng.random::<f64>() < 0.05 { up } else { down };
                n += 1;
            }
            total += n;
            detected += usize::from(llr >= hi);
        }
        let mean = total as f64 / runs as f64;
        println!(
            "Wald SPRT 0.5% -> 5%: mean {mean:.1} requests (approximation {:.1}), power {:.3}",
            wald_expected_samples(0.005, 0.05, 0.05, 0.05),
            detected as f64 / runs as f64
        );
        assert!(mean > 37.0 && mean < 70.0, "{mean}");
        assert!(detected as f64 / runs as f64 >= 0.93);
    }
}
