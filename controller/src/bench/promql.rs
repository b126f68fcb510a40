//! What the baselines' PromQL would return on simulated counts: a success-rate percentage and
//! `histogram_quantile` with Prometheus' linear interpolation inside a bucket.

use super::traffic::{ArmCounts, BUCKETS};

/// `sum(rate(non-5xx)) / sum(rate(all)) * 100`; NaN without traffic (0/0), as Prometheus gives.
pub fn success_rate_percent(c: &ArmCounts) -> f64 {
    if c.requests == 0 {
        return f64::NAN;
    }
    100.0 * f64::from(c.requests - c.errors) / f64::from(c.requests)
}

/// `histogram_quantile(q, sum by (le) (rate(..._bucket[w])))` in seconds. NaN without
/// observations; the highest finite bound when the rank falls into +Inf.
pub fn histogram_quantile(q: f64, c: &ArmCounts) -> f64 {
    let total: u32 = c.buckets.iter().sum();
    if total == 0 {
        return f64::NAN;
    }
    let rank = q * f64::from(total);
    let mut below = 0.0;
    for (i, le) in BUCKETS.iter().enumerate() {
        let count = f64::from(c.buckets[i]);
        if below + count >= rank {
            let start = if i == 0 { 0.0 } else { BUCKETS[i - 1] };
            if count == 0.0 {
                return *le;
            }
            return start + (le - start) * (rank - below) / count;
        }
        below += count;
    }
    BUCKETS[BUCKETS.len() - 1]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::traffic::SLOTS;

    fn counts(slots: &[(usize, u32)]) -> ArmCounts {
        let mut b = [0u32; SLOTS];
        for (i, n) in slots {
            b[*i] = *n;
        }
        let requests = b.iter().sum();
        ArmCounts {
            requests,
            errors: 0,
            buckets: b,
        }
    }

    #[test]
    fn interpolates_inside_the_bucket() {
        // 100 requests: 90 in (0.05,0.1], 10 in (0.25,0.5]. Rank 99 is 9/10 into the last one.
        let c = counts(&[(4, 90), (6, 10)]);
        let q = histogram_quantile(0.99, &c);
        assert!((q - (0.25 + 0.25 * 0.9)).abs() < 1e-12, "{q}");
    }

    #[test]
    fn inf_bucket_and_empty() {
        let c = counts(&[(4, 50), (SLOTS - 1, 50)]);
        assert_eq!(histogram_quantile(0.99, &c), 10.0);
        assert!(histogram_quantile(0.99, &ArmCounts::default()).is_nan());
        assert!(success_rate_percent(&ArmCounts::default()).is_nan());
    }
}
