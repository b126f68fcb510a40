//! Per-route counts of a comparison: the same raw answers as the pooled counts, grouped by the
//! value of the route label on each series. No extra query is sent: a raw range selector
//! returns every series with all its labels, so grouping here is exact and cannot disagree
//! with the pooled counts (each series belongs to exactly one route; a series without the
//! label is route "", as Prometheus treats an absent label as the empty value).
//!
//! Route labels of the providers: ingress-nginx's `nginx_ingress_controller_requests` carries
//! `path` (`requestTags` in `internal/ingress/metric/collectors/socket.go`), the Ingress rule's
//! path (`path = ngx.var.location_path` in `rootfs/etc/nginx/lua/monitor.lua`), so its values
//! are bounded by the Ingress's rules, not by request URLs.

use std::collections::BTreeMap;

use crate::counters::{self, CountError, Window};
use crate::prometheus::{QueryResult, RangeSeries};
use crate::stats::IntervalCounts;

/// The series of a matrix answer grouped by the value of `label`.
pub fn split_by(
    result: &QueryResult,
    label: &str,
) -> Result<BTreeMap<String, QueryResult>, CountError> {
    let QueryResult::Matrix(m) = result else {
        return Err(CountError::Shape(result.type_name()));
    };
    let mut out: BTreeMap<String, Vec<RangeSeries>> = BTreeMap::new();
    for s in m {
        let route = s.labels.get(label).cloned().unwrap_or_default();
        out.entry(route).or_default().push(s.clone());
    }
    Ok(out
        .into_iter()
        .map(|(k, v)| (k, QueryResult::Matrix(v)))
        .collect())
}

fn count_of(
    groups: &BTreeMap<String, QueryResult>,
    route: &str,
    w: Window,
) -> Result<f64, CountError> {
    match groups.get(route) {
        Some(r) => Ok(counters::count(r, w)?.value),
        None => Ok(0.0),
    }
}

/// The arms' answers (canary all/bad, stable all/bad).
pub struct Answers<'a> {
    pub canary_all: &'a QueryResult,
    pub canary_bad: &'a QueryResult,
    pub stable_all: &'a QueryResult,
    pub stable_bad: &'a QueryResult,
}

/// Each route's counts in `w`, the busiest routes first (they take the named slots first);
/// routes with no requests on either arm in `w` are left out.
pub fn route_counts(
    a: &Answers<'_>,
    label: &str,
    w: Window,
) -> Result<Vec<(String, IntervalCounts)>, CountError> {
    let ca = split_by(a.canary_all, label)?;
    let cb = split_by(a.canary_bad, label)?;
    let sa = split_by(a.stable_all, label)?;
    let sb = split_by(a.stable_bad, label)?;
    let mut routes: Vec<&String> = ca.keys().chain(sa.keys()).collect();
    routes.sort();
    routes.dedup();
    let mut out = Vec::new();
    for r in routes {
        let c = IntervalCounts {
            canary_requests: count_of(&ca, r, w)?,
            canary_bad: count_of(&cb, r, w)?,
            stable_requests: count_of(&sa, r, w)?,
            stable_bad: count_of(&sb, r, w)?,
        };
        if c.canary_requests + c.stable_requests > 0.0 {
            out.push((r.clone(), c));
        }
    }
    out.sort_by(|x, y| {
        let t = |c: &IntervalCounts| c.canary_requests + c.stable_requests;
        t(&y.1).total_cmp(&t(&x.1)).then_with(|| x.0.cmp(&y.0))
    });
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prometheus::Labels;

    fn series(path: Option<&str>, code: &str, values: &[(f64, f64)]) -> RangeSeries {
        let mut labels = Labels::from([("status".to_string(), code.to_string())]);
        if let Some(p) = path {
            labels.insert("path".to_string(), p.to_string());
        }
        RangeSeries {
            labels,
            values: values.to_vec(),
        }
    }

    #[test]
    fn groups_series_by_route_and_sums_codes() {
        let w = Window {
            start_ms: 10_000,
            end_ms: 30_000,
        };
        let canary_all = QueryResult::Matrix(vec![
            series(Some("/"), "200", &[(10.0, 5.0), (20.0, 15.0), (30.0, 25.0)]),
            series(Some("/checkout"), "200", &[(10.0, 0.0), (30.0, 4.0)]),
            series(Some("/checkout"), "503", &[(20.0, 3.0), (30.0, 6.0)]), // new series
        ]);
        let canary_bad = QueryResult::Matrix(vec![series(
            Some("/checkout"),
            "503",
            &[(20.0, 3.0), (30.0, 6.0)],
        )]);
        let stable_all = QueryResult::Matrix(vec![
            series(Some("/"), "200", &[(10.0, 100.0), (30.0, 180.0)]),
            series(None, "200", &[(10.0, 0.0), (30.0, 7.0)]),
        ]);
        let stable_bad = QueryResult::Matrix(vec![]);
        let got = route_counts(
            &Answers {
                canary_all: &canary_all,
                canary_bad: &canary_bad,
                stable_all: &stable_all,
                stable_bad: &stable_bad,
            },
            "path",
            w,
        )
        .unwrap();
        let names: Vec<&str> = got.iter().map(|(r, _)| r.as_str()).collect();
        assert_eq!(names, vec!["/", "/checkout", ""]);
        assert_eq!(got[0].1.canary_requests, 20.0);
        assert_eq!(got[0].1.stable_requests, 80.0);
        assert_eq!(got[1].1.canary_requests, 10.0);
        assert_eq!(got[1].1.canary_bad, 6.0);
        assert_eq!(got[1].1.stable_requests, 0.0);
        assert_eq!(got[2].1.stable_requests, 7.0);
    }

    #[test]
    fn a_vector_answer_is_a_shape_error() {
        let v = QueryResult::Vector(vec![]);
        assert!(matches!(split_by(&v, "path"), Err(CountError::Shape(_))));
    }
}
