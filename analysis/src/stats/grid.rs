//! Log-spaced grids and numerically safe averages of exponentials.

/// `n` points spaced evenly in log scale from `lo` to `hi` (both included).
pub fn log_grid(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    if n < 2 || lo <= 0.0 || hi <= lo {
        return vec![lo];
    }
    let (a, b) = (lo.ln(), hi.ln());
    (0..n)
        .map(|i| (a + (b - a) * i as f64 / (n - 1) as f64).exp())
        .collect()
}

/// `ln(mean(exp(xs)))` without overflow; `-inf` for an empty slice.
pub fn log_mean_exp(xs: impl IntoIterator<Item = f64> + Clone) -> f64 {
    let max = xs.clone().into_iter().fold(f64::NEG_INFINITY, f64::max);
    if max == f64::NEG_INFINITY {
        return f64::NEG_INFINITY;
    }
    let (sum, n) = xs
        .into_iter()
        .fold((0.0, 0usize), |(s, n), x| (s + (x - max).exp(), n + 1));
    max + (sum / n as f64).ln()
}

/// `exp(ln_e)` clamped to a finite number so it survives JSON (which has no infinity).
pub fn finite_exp(ln_e: f64) -> f64 {
    ln_e.min(700.0).exp()
}

/// A number for reason strings: integers plainly, huge values in scientific notation.
pub fn show(x: f64) -> String {
    if !x.is_finite() || x.abs() >= 1e6 {
        format!("{x:.2e}")
    } else if (x - x.round()).abs() < 1e-6 {
        format!("{x:.0}")
    } else {
        format!("{x:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_ends_and_spacing() {
        let g = log_grid(1.0, 100.0, 5);
        let want = [1.0, 10f64.sqrt(), 10.0, 1000f64.sqrt(), 100.0];
        for (a, b) in g.iter().zip(want) {
            assert!((a - b).abs() < 1e-9 * b, "{a} vs {b}");
        }
        assert_eq!(log_grid(2.0, 1.0, 5), vec![2.0]);
    }

    #[test]
    fn log_mean_exp_matches_direct_and_survives_overflow() {
        let xs = [0.0, 1.0, 2.0];
        let direct = ((0f64.exp() + 1f64.exp() + 2f64.exp()) / 3.0).ln();
        assert!((log_mean_exp(xs) - direct).abs() < 1e-12);
        // exp(1000) overflows f64; the log-domain mean is 1000 + ln((1 + e^-1)/2).
        let big = log_mean_exp([1000.0, 999.0]);
        assert!((big - (1000.0 + ((1.0 + (-1f64).exp()) / 2.0).ln())).abs() < 1e-9);
        assert_eq!(log_mean_exp(Vec::<f64>::new()), f64::NEG_INFINITY);
        assert!(finite_exp(1e6).is_finite());
        assert_eq!(
            (show(3.0), show(2.345), show(1.5e300)),
            ("3".into(), "2.35".into(), "1.50e300".into())
        );
    }
}
