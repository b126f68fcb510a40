//! Windows of a comparison: where one ends, and what stable did before the rollout.
//!
//! A window runs from the previous counted window's end (or `now - interval` the first time) to
//! the newest scrape that every arm's answer has: the smallest, over the arms' "all requests"
//! answers that have series, of their latest sample time. Series of one scrape are committed
//! together, and the arms' queries are sent one after another, so a scrape landing between two
//! queries is left to the next window rather than seen by one arm only.

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};

use crate::counters::{self, Window, LOOKBACK_MS};
use crate::prometheus::{QueryResult, RangeSeries};
use crate::stats::latency::same_bound;
use crate::stats::{Dispersion, Histogram};

/// How much of stable's history before the first window is read for the latency boundary and
/// the dispersion estimate.
pub const BASELINE_MS: i64 = 60 * 60 * 1000;

pub fn to_time(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

fn latest_ms(result: &QueryResult, not_after: i64) -> Option<i64> {
    let QueryResult::Matrix(m) = result else {
        return None;
    };
    m.iter()
        .filter_map(|s| {
            s.values
                .iter()
                .rev()
                .map(|(t, _)| (t * 1000.0).round() as i64)
                .find(|t| *t <= not_after)
        })
        .max()
}

/// Where a window that starts at `start` ends, given the arms' "all" answers at `now`:
/// `None` when no answer has series at all; `Some(end)` with `end <= start` when nothing new
/// was scraped.
pub fn window_end(start: i64, now: i64, answers: &[&QueryResult]) -> Option<i64> {
    answers
        .iter()
        .filter_map(|a| latest_ms(a, now))
        .min()
        .map(|e| e.max(start))
}

/// The baseline window: the hour before `start`.
pub fn baseline(start: i64) -> Window {
    Window {
        start_ms: start - BASELINE_MS,
        end_ms: start,
    }
}

/// The PromQL range of the baseline query evaluated at the baseline's end.
pub fn baseline_range() -> String {
    format!("{}ms", BASELINE_MS + LOOKBACK_MS)
}

/// Adds stable's per-chunk counts from before the rollout to `d`.
pub fn add_chunks(d: &mut Dispersion, requests: &[f64], bad: &[f64]) {
    for (n, x) in requests.iter().zip(bad) {
        d.add(*n, *x);
    }
}

/// The subset of bucket series whose `le` equals `le` (numerically).
pub fn bucket_series(result: &QueryResult, le: f64) -> QueryResult {
    let QueryResult::Matrix(m) = result else {
        return QueryResult::Matrix(Vec::new());
    };
    let keep: Vec<RangeSeries> = m
        .iter()
        .filter(|s| {
            s.labels
                .get("le")
                .and_then(|v| v.parse::<f64>().ok())
                .is_some_and(|v| same_bound(v, le))
        })
        .cloned()
        .collect();
    QueryResult::Matrix(keep)
}

/// Per-chunk (requests, requests slower than `le`) of stable's baseline buckets.
pub fn latency_chunks(
    result: &QueryResult,
    w: Window,
    chunk_ms: i64,
    le: f64,
) -> Result<(Vec<f64>, Vec<f64>), counters::CountError> {
    let all = counters::chunked(&bucket_series(result, f64::INFINITY), w, chunk_ms)?;
    let fast = counters::chunked(&bucket_series(result, le), w, chunk_ms)?;
    let slow = all
        .iter()
        .zip(&fast)
        .map(|(a, f)| (a - f).max(0.0))
        .collect();
    Ok((all, slow))
}

/// Stable's bucket counts collected to choose a latency boundary when the baseline had too few
/// (finite bounds only: JSON has no infinity).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Calibration {
    /// `(le, cumulative count)` of the finite buckets.
    pub finite: Vec<(f64, f64)>,
    pub total: f64,
}

impl Calibration {
    pub fn add(&mut self, h: &Histogram) {
        for &(le, c) in h.buckets.iter().filter(|b| b.0.is_finite()) {
            match self.finite.iter_mut().find(|b| b.0 == le) {
                Some(b) => b.1 += c,
                None => self.finite.push((le, c)),
            }
        }
        self.finite.sort_by(|a, b| a.0.total_cmp(&b.0));
        self.total += h.total();
    }

    pub fn histogram(&self) -> Histogram {
        let mut buckets = self.finite.clone();
        buckets.push((f64::INFINITY, self.total));
        Histogram { buckets }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prometheus::Labels;

    fn matrix(series: &[(&str, &[(f64, f64)])]) -> QueryResult {
        QueryResult::Matrix(
            series
                .iter()
                .map(|(le, v)| RangeSeries {
                    labels: Labels::from([("le".to_string(), le.to_string())]),
                    values: v.to_vec(),
                })
                .collect(),
        )
    }

    #[test]
    fn window_ends_at_the_scrape_every_arm_has() {
        let a = matrix(&[("1", &[(100.0, 1.0), (130.0, 2.0)])]);
        let b = matrix(&[("1", &[(100.0, 1.0), (115.0, 2.0)])]);
        let empty = QueryResult::Matrix(vec![]);
        assert_eq!(
            window_end(90_000, 140_000, &[&a, &b, &empty]),
            Some(115_000)
        );
        // Samples after `now` (clock skew) are not used; nothing new gives end == start.
        assert_eq!(window_end(120_000, 125_000, &[&a]), Some(120_000));
        assert_eq!(window_end(0, 1, &[&empty]), None);
    }

    #[test]
    fn latency_chunks_split_slow_requests() {
        let r = matrix(&[
            ("0.25", &[(0.0, 0.0), (10.0, 8.0), (20.0, 15.0)]),
            ("+Inf", &[(0.0, 0.0), (10.0, 10.0), (20.0, 20.0)]),
        ]);
        let w = Window {
            start_ms: 0,
            end_ms: 20_000,
        };
        let (all, slow) = latency_chunks(&r, w, 10_000, 0.25).unwrap();
        assert_eq!(all, vec![10.0, 10.0]);
        assert_eq!(slow, vec![2.0, 3.0]);
    }

    #[test]
    fn calibration_merges_and_round_trips_json() {
        let mut c = Calibration::default();
        c.add(&Histogram {
            buckets: vec![(0.1, 5.0), (0.5, 9.0), (f64::INFINITY, 10.0)],
        });
        c.add(&Histogram {
            buckets: vec![(0.1, 1.0), (0.5, 1.0), (f64::INFINITY, 2.0)],
        });
        assert_eq!(
            c.histogram().buckets,
            vec![(0.1, 6.0), (0.5, 10.0), (f64::INFINITY, 12.0)]
        );
        let back: Calibration = serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(back, c);
    }
}
