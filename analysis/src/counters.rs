//! Exact per-window counts from raw counter samples.
//!
//! `increase()` / `rate()` extrapolate: Prometheus takes the first and last sample inside the
//! range and scales their difference towards the range's ends (`extrapolatedRate` in
//! prometheus/promql/functions.go), so with k samples a window's count is inflated by about
//! `window / ((k-1)·scrape)`, and the first increment of a new series is lost. A statistical test
//! fed those numbers counts evidence it never saw. Sluice instead asks for the raw samples
//! (`metric{selector}[range]`, a matrix) and takes, per series, the increments whose sample
//! timestamps fall in the window `(start, end]`:
//! - the baseline is the series' last sample at or before `start` (the range reaches
//!   [`LOOKBACK`] further back for it);
//! - a drop in value is a counter reset and the new value counts from zero, the rule of
//!   Prometheus' own `extrapolatedRate` ("if currPoint.F < prevPoint.F { result += prevPoint.F }");
//! - a series without a sample at or before `start` is new and counts from zero (a series whose
//!   last sample is older than the lookback is stale by Prometheus' rule too).
//!
//! Consecutive windows partition the sample timeline, so nothing is counted twice or lost. The
//! residual error: events after the last scrape before `end` are counted in the next window
//! (at most one scrape interval late), and events of a new series before its first scrape are
//! counted in the window of that scrape.

use std::collections::BTreeMap;

use crate::prometheus::{Labels, QueryResult, RangeSeries, Sample};
use crate::stats::{Histogram, HistogramError};

/// How far before a window's start the query reaches for each series' baseline sample:
/// Prometheus' default lookback delta (docs/querying/basics.md, "Staleness"), beyond which a
/// series counts as stale anyway.
pub const LOOKBACK_MS: i64 = 5 * 60 * 1000;

/// The half-open window `(start, end]` in Unix milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start_ms: i64,
    pub end_ms: i64,
}

impl Window {
    /// The PromQL range that covers the window plus the baseline lookback, in ms (`123456ms`).
    pub fn range(&self) -> String {
        format!("{}ms", (self.end_ms - self.start_ms).max(1) + LOOKBACK_MS)
    }
    /// The window's length in seconds.
    pub fn seconds(&self) -> f64 {
        (self.end_ms - self.start_ms) as f64 / 1000.0
    }
}

/// One count taken from raw samples.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Counted {
    /// Sum over series of the increments inside the window.
    pub value: f64,
    /// Series in the answer.
    pub series: usize,
    /// Samples with a timestamp inside the window (0: nothing was scraped in it).
    pub samples_in_window: usize,
}

/// Why raw samples could not be counted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CountError {
    #[error("expected raw samples (a matrix from `metric{{...}}[range]`), got a {0}")]
    Shape(&'static str),
    #[error("sample value {0} is not a finite non-negative counter value")]
    BadValue(f64),
    #[error(transparent)]
    Histogram(#[from] HistogramError),
}

fn ms(t: f64) -> i64 {
    (t * 1000.0).round() as i64
}

/// Calls `each(t_ms, increment)` for every sample of one series inside `w`, with the counting
/// rules of the module docs (baseline at or before `start`, resets, new series from zero).
fn increments(
    values: &[(f64, f64)],
    w: Window,
    mut each: impl FnMut(i64, f64),
) -> Result<(), CountError> {
    let mut prev: Option<f64> = None;
    for &(t, v) in values {
        if !(v.is_finite() && v >= 0.0) {
            return Err(CountError::BadValue(v));
        }
        let t = ms(t);
        if t > w.end_ms {
            break;
        }
        if t > w.start_ms {
            let base = prev.unwrap_or(0.0);
            each(t, if v < base { v } else { v - base });
        }
        prev = Some(v);
    }
    Ok(())
}

/// The increase of one series inside `w`, and how many of its samples fall inside.
pub fn series_increase(values: &[(f64, f64)], w: Window) -> Result<(f64, usize), CountError> {
    let (mut total, mut inside) = (0.0, 0);
    increments(values, w, |_, inc| {
        total += inc;
        inside += 1;
    })?;
    Ok((total, inside))
}

fn matrix(result: &QueryResult) -> Result<&[RangeSeries], CountError> {
    match result {
        QueryResult::Matrix(m) => Ok(m),
        other => Err(CountError::Shape(other.type_name())),
    }
}

/// Sum of the window increases of every series in a matrix answer.
pub fn count(result: &QueryResult, w: Window) -> Result<Counted, CountError> {
    let m = matrix(result)?;
    let mut c = Counted {
        series: m.len(),
        ..Counted::default()
    };
    for s in m {
        let (v, n) = series_increase(&s.values, w)?;
        c.value += v;
        c.samples_in_window += n;
    }
    Ok(c)
}

/// Histogram of the window increases of `_bucket` series, summed by `le`.
pub fn buckets(result: &QueryResult, w: Window) -> Result<(Histogram, Counted), CountError> {
    let m = matrix(result)?;
    let mut by_le: BTreeMap<String, f64> = BTreeMap::new();
    let mut c = Counted {
        series: m.len(),
        ..Counted::default()
    };
    for s in m {
        let le = s
            .labels
            .get("le")
            .ok_or(CountError::Histogram(HistogramError::MissingLe))?;
        // "1", "1.0" and "1e+00" are the same boundary: group by the parsed number.
        let key: f64 = le
            .parse()
            .map_err(|_| CountError::Histogram(HistogramError::BadLe(le.clone())))?;
        let (v, n) = series_increase(&s.values, w)?;
        *by_le.entry(format!("{key:e}")).or_default() += v;
        c.samples_in_window += n;
    }
    let samples: Vec<Sample> = by_le
        .into_iter()
        .map(|(le, value)| Sample {
            labels: Labels::from([("le".to_string(), le)]),
            timestamp: 0.0,
            value,
        })
        .collect();
    let h = Histogram::from_samples(&samples)?;
    c.value = h.total();
    Ok((h, c))
}

/// Per-chunk increments of the summed series over `w`, chunks of `chunk_ms` from `w.start_ms`:
/// each increment goes to the chunk holding its sample's timestamp. Used for stable's
/// interval-to-interval variation before the rollout.
pub fn chunked(result: &QueryResult, w: Window, chunk_ms: i64) -> Result<Vec<f64>, CountError> {
    let m = matrix(result)?;
    let chunk_ms = chunk_ms.max(1);
    let n = ((w.end_ms - w.start_ms).max(0) + chunk_ms - 1) / chunk_ms;
    let mut out = vec![0.0; n as usize];
    for s in m {
        increments(&s.values, w, |t, inc| {
            let i = ((t - w.start_ms - 1) / chunk_ms) as usize;
            if let Some(slot) = out.get_mut(i) {
                *slot += inc;
            }
        })?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(labels: &[(&str, &str)], values: &[(f64, f64)]) -> RangeSeries {
        RangeSeries {
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            values: values.to_vec(),
        }
    }

    const W: Window = Window {
        start_ms: 100_000,
        end_ms: 160_000,
    };

    #[test]
    fn exact_increase_from_the_baseline_before_the_window() {
        // Scrapes every 15 s; 10 requests per scrape. Baseline 40 at t=90 s, last 80 at t=150 s.
        let v = [
            (75.0, 30.0),
            (90.0, 40.0),
            (105.0, 50.0),
            (120.0, 60.0),
            (135.0, 70.0),
            (150.0, 80.0),
            (165.0, 90.0),
        ];
        assert_eq!(series_increase(&v, W).unwrap(), (40.0, 4));
    }

    #[test]
    fn reset_counts_the_new_value_from_zero() {
        // 40 at the start, 55 at 105 s, then the process restarts: 3 at 120 s, 9 at 135 s.
        let v = [(90.0, 40.0), (105.0, 55.0), (120.0, 3.0), (135.0, 9.0)];
        assert_eq!(series_increase(&v, W).unwrap(), (15.0 + 3.0 + 6.0, 3));
    }

    #[test]
    fn a_new_series_counts_from_zero_and_boundaries_are_half_open() {
        // First sample inside the window: its whole value happened in the window.
        assert_eq!(
            series_increase(&[(120.0, 7.0), (135.0, 9.0)], W).unwrap(),
            (9.0, 2)
        );
        // A sample exactly at start is the baseline; one exactly at end is inside.
        let v = [(100.0, 5.0), (160.0, 8.0), (160.001, 100.0)];
        assert_eq!(series_increase(&v, W).unwrap(), (3.0, 1));
        // Nothing scraped inside: zero with no samples (the caller tells "not scraped yet").
        assert_eq!(series_increase(&[(90.0, 5.0)], W).unwrap(), (0.0, 0));
    }

    #[test]
    fn consecutive_windows_partition_the_samples() {
        let v: Vec<(f64, f64)> = (0..40)
            .map(|i| (60.0 + 7.0 * i as f64, (i * i) as f64))
            .collect();
        let mut total = 0.0;
        for k in 0..5 {
            let w = Window {
                start_ms: 60_000 + k * 50_000,
                end_ms: 60_000 + (k + 1) * 50_000,
            };
            total += series_increase(&v, w).unwrap().0;
        }
        // Samples at 60 s (value 0) .. 333 s (value 39² = 1521) are all within 60..310 s or later;
        // the five windows end at 310 s: last sample <= 310 is i = 35 (305 s, 1225).
        assert_eq!(total, 1225.0);
    }

    #[test]
    fn sums_series_and_groups_buckets_by_numeric_le() {
        let m = QueryResult::Matrix(vec![
            series(&[("le", "0.5")], &[(90.0, 10.0), (150.0, 14.0)]),
            series(&[("le", "0.50")], &[(130.0, 2.0)]),
            series(&[("le", "+Inf")], &[(90.0, 11.0), (150.0, 20.0)]),
        ]);
        let (h, c) = buckets(&m, W).unwrap();
        assert_eq!(h.buckets, vec![(0.5, 6.0), (f64::INFINITY, 9.0)]);
        assert_eq!((c.value, c.series, c.samples_in_window), (9.0, 3, 3));
        let total = count(&m, W).unwrap();
        assert_eq!(total.value, 4.0 + 2.0 + 9.0);
    }

    #[test]
    fn rejects_other_shapes_and_bad_values() {
        assert!(matches!(
            count(&QueryResult::single(1.0), W),
            Err(CountError::Shape("vector"))
        ));
        let m = QueryResult::Matrix(vec![series(&[], &[(120.0, f64::NAN)])]);
        assert!(matches!(count(&m, W), Err(CountError::BadValue(_))));
        let m = QueryResult::Matrix(vec![series(&[("x", "y")], &[(120.0, 1.0)])]);
        assert!(buckets(&m, W).is_err());
    }

    #[test]
    fn chunks_follow_sample_timestamps() {
        let m = QueryResult::Matrix(vec![series(
            &[],
            &[
                (95.0, 0.0),
                (105.0, 2.0),
                (115.0, 5.0),
                (125.0, 5.0),
                (135.0, 1.0),
            ],
        )]);
        let w = Window {
            start_ms: 100_000,
            end_ms: 140_000,
        };
        // Chunks (100,120], (120,140]: 2+3, then 0 and a reset to 1.
        assert_eq!(chunked(&m, w, 20_000).unwrap(), vec![5.0, 1.0]);
        assert_eq!(w.range(), format!("{}ms", 40_000 + LOOKBACK_MS));
    }
}
