//! Latency as counts: requests slower than a histogram bucket boundary are the "bad events" of
//! the ratio test. Exact on bucket counts, unlike `histogram_quantile`, which interpolates.

use serde::{Deserialize, Serialize};

use crate::prometheus::{QueryResult, Sample};

use super::ratio::IntervalCounts;

/// Cumulative bucket counts (`le` → requests at or below it), sorted by `le`, ending with +Inf.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Histogram {
    pub buckets: Vec<(f64, f64)>,
}

/// Why bucket samples could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HistogramError {
    #[error("bucket sample without an `le` label (group the query by le)")]
    MissingLe,
    #[error("bucket label le={0:?} is not a number")]
    BadLe(String),
    #[error("bucket count {0} is not a finite non-negative number")]
    BadCount(f64),
    #[error("histogram has no +Inf bucket")]
    NoInf,
    #[error("expected a vector of buckets, got a {0}")]
    Shape(&'static str),
}

impl Histogram {
    /// Builds a histogram from `sum by (le) (increase(..._bucket[...]))` samples.
    /// `le` labels are parsed as numbers, so "1", "1.0" and "1e+00" are the same boundary.
    pub fn from_samples(samples: &[Sample]) -> Result<Self, HistogramError> {
        let mut buckets = Vec::with_capacity(samples.len());
        for s in samples {
            let le = s.labels.get("le").ok_or(HistogramError::MissingLe)?;
            let b: f64 = le.parse().map_err(|_| HistogramError::BadLe(le.clone()))?;
            if !(s.value.is_finite() && s.value >= 0.0) {
                return Err(HistogramError::BadCount(s.value));
            }
            buckets.push((b, s.value));
        }
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        if !buckets.is_empty() && buckets.last().is_some_and(|b| b.0 != f64::INFINITY) {
            return Err(HistogramError::NoInf);
        }
        Ok(Histogram { buckets })
    }

    pub fn from_result(result: &QueryResult) -> Result<Self, HistogramError> {
        match result {
            QueryResult::Vector(v) => Self::from_samples(v),
            other => Err(HistogramError::Shape(other.type_name())),
        }
    }

    /// All requests (the +Inf bucket); 0 for an empty histogram.
    pub fn total(&self) -> f64 {
        self.buckets.last().map_or(0.0, |b| b.1)
    }

    /// Requests slower than `boundary`, which must be one of the bucket boundaries.
    pub fn count_above(&self, boundary: f64) -> Option<f64> {
        let at = self.buckets.iter().find(|b| same_bound(b.0, boundary))?;
        // Extrapolated increases can make a lower bucket exceed +Inf by a hair.
        Some((self.total() - at.1).max(0.0))
    }
}

/// Whether two bucket bounds are the same boundary (`le` labels are parsed, so allow rounding;
/// `+Inf` only equals itself).
pub fn same_bound(a: f64, b: f64) -> bool {
    a == b || (b.is_finite() && (a - b).abs() <= 1e-9 * b.abs().max(1e-12))
}

/// Picks the smallest finite boundary at which stable's share at or below reaches `quantile`
/// (e.g. 0.95 → the bucket holding stable's p95), once stable has `min_requests`.
pub fn choose_boundary(stable: &Histogram, quantile: f64, min_requests: f64) -> Option<f64> {
    let total = stable.total();
    if total < min_requests.max(1.0) {
        return None;
    }
    stable
        .buckets
        .iter()
        .filter(|b| b.0.is_finite())
        .find(|b| b.1 >= quantile * total)
        .map(|b| b.0)
}

/// The ratio test's counts for one interval at `boundary`; `None` when a histogram lacks it.
pub fn latency_counts(
    stable: &Histogram,
    canary: &Histogram,
    boundary: f64,
) -> Option<IntervalCounts> {
    Some(IntervalCounts {
        canary_requests: canary.total(),
        canary_bad: if canary.total() > 0.0 {
            canary.count_above(boundary)?
        } else {
            0.0
        },
        stable_requests: stable.total(),
        stable_bad: if stable.total() > 0.0 {
            stable.count_above(boundary)?
        } else {
            0.0
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prometheus::Labels;

    fn hist(pairs: &[(&str, f64)]) -> Vec<Sample> {
        pairs
            .iter()
            .map(|(le, v)| Sample {
                labels: Labels::from([("le".to_string(), le.to_string())]),
                timestamp: 0.0,
                value: *v,
            })
            .collect()
    }

    #[test]
    fn parses_unsorted_buckets_with_mixed_le_spelling() {
        let h = Histogram::from_samples(&hist(&[
            ("+Inf", 100.0),
            ("0.1", 90.0),
            ("1.0", 99.0),
            ("0.05", 50.0),
        ]))
        .unwrap();
        assert_eq!(
            h.buckets,
            vec![
                (0.05, 50.0),
                (0.1, 90.0),
                (1.0, 99.0),
                (f64::INFINITY, 100.0)
            ]
        );
        assert_eq!(h.total(), 100.0);
        assert_eq!(h.count_above(0.1), Some(10.0));
        assert_eq!(h.count_above(1.0), Some(1.0));
        assert_eq!(h.count_above(0.2), None);
    }

    #[test]
    fn rejects_bad_buckets() {
        assert_eq!(
            Histogram::from_samples(&hist(&[("x", 1.0)])),
            Err(HistogramError::BadLe("x".into()))
        );
        assert_eq!(
            Histogram::from_samples(&hist(&[("0.1", 1.0)])),
            Err(HistogramError::NoInf)
        );
        assert!(matches!(
            Histogram::from_samples(&hist(&[("+Inf", f64::NAN)])),
            Err(HistogramError::BadCount(_))
        ));
        let no_le = vec![Sample {
            labels: Labels::new(),
            timestamp: 0.0,
            value: 1.0,
        }];
        assert_eq!(
            Histogram::from_samples(&no_le),
            Err(HistogramError::MissingLe)
        );
        assert_eq!(
            Histogram::from_result(&QueryResult::Scalar(0.0, 1.0)),
            Err(HistogramError::Shape("scalar"))
        );
        assert_eq!(Histogram::from_samples(&[]).unwrap().total(), 0.0);
    }

    #[test]
    fn boundary_near_stable_p95_and_counts() {
        let stable = Histogram::from_samples(&hist(&[
            ("0.05", 700.0),
            ("0.1", 940.0),
            ("0.25", 990.0),
            ("+Inf", 1000.0),
        ]))
        .unwrap();
        assert_eq!(choose_boundary(&stable, 0.95, 100.0), Some(0.25));
        assert_eq!(choose_boundary(&stable, 0.9, 100.0), Some(0.1));
        assert_eq!(choose_boundary(&stable, 0.95, 5000.0), None);
        let canary = Histogram::from_samples(&hist(&[
            ("0.05", 20.0),
            ("0.1", 50.0),
            ("0.25", 80.0),
            ("+Inf", 100.0),
        ]))
        .unwrap();
        let c = latency_counts(&stable, &canary, 0.25).unwrap();
        assert_eq!(
            (
                c.canary_requests,
                c.canary_bad,
                c.stable_requests,
                c.stable_bad
            ),
            (100.0, 20.0, 1000.0, 10.0)
        );
        // A canary with no traffic yet has no buckets at all: zero counts, not an error.
        let c = latency_counts(&stable, &Histogram::default(), 0.25).unwrap();
        assert_eq!((c.canary_requests, c.canary_bad), (0.0, 0.0));
    }
}
