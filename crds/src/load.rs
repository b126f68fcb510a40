//! Built-in canary load: requests Sluice itself sends to the canary's own address while the
//! revision is analysed, for canaries that get little or no user traffic.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Most requests per second the built-in load may send.
pub const MAX_LOAD_RATE: f64 = 1000.0;
/// Most requests in flight at once.
pub const MAX_LOAD_CONCURRENCY: i32 = 100;
/// Longest the load may run for one revision (a day).
pub const MAX_LOAD_DURATION_SECONDS: i64 = 86_400;
/// Default `load.durationSeconds`.
pub const DEFAULT_LOAD_DURATION_SECONDS: i64 = 3_600;
/// Default `load.concurrency`.
pub const DEFAULT_LOAD_CONCURRENCY: i32 = 8;
/// Default per-request timeout, seconds.
pub const DEFAULT_LOAD_TIMEOUT_SECONDS: i64 = 5;

/// Requests to the canary's own address (its Service on Kubernetes, `canary.address`
/// standalone), never anywhere else. They run while the rollout is `Progressing` and the canary
/// is ready, and stop at once when it leaves `Progressing` (an abort, a rollback, a promotion, a
/// pause) or after `durationSeconds`. They bypass the router, so the router's request metrics
/// do not see them: judge them with the `load-*` built-in metrics (Sluice's own
/// `sluice_load_requests_total`), see docs/load.md.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = crate::schema::k8s_integers)]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "self.rate > 0.0 && self.rate <= 1000.0", "message": "rate must be more than 0 and at most 1000"}
]))]
pub struct LoadSpec {
    /// Requests per second (open loop: sent on a fixed schedule, not after the previous
    /// answer), more than 0 and at most 1000.
    pub rate: f64,
    /// Paths requested in turn, each starting with `/`. Default `["/"]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub paths: Vec<String>,
    /// Request headers, e.g. `Host` for a virtual host.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Most requests in flight; a request due while that many are in flight is skipped and
    /// counted in `sluice_load_skipped_total`. Default 8, at most 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100))]
    pub concurrency: Option<i32>,
    /// Seconds after the rollout started after which no more load is sent. Default 3600, at
    /// most 86400.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 86400))]
    pub duration_seconds: Option<i64>,
    /// Per-request timeout, seconds (a timeout counts as an error). Default 5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 60))]
    pub timeout_seconds: Option<i64>,
}

impl LoadSpec {
    pub fn concurrency(&self) -> i32 {
        self.concurrency.unwrap_or(DEFAULT_LOAD_CONCURRENCY)
    }

    pub fn duration_seconds(&self) -> i64 {
        self.duration_seconds
            .unwrap_or(DEFAULT_LOAD_DURATION_SECONDS)
    }

    pub fn timeout_seconds(&self) -> i64 {
        self.timeout_seconds.unwrap_or(DEFAULT_LOAD_TIMEOUT_SECONDS)
    }

    /// The paths to request (`/` when none are given).
    pub fn paths(&self) -> Vec<String> {
        if self.paths.is_empty() {
            vec!["/".to_string()]
        } else {
            self.paths.clone()
        }
    }

    /// Every problem, as (field under `load`, message).
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if !(self.rate.is_finite() && self.rate > 0.0 && self.rate <= MAX_LOAD_RATE) {
            out.push((
                "rate".to_string(),
                format!(
                    "must be more than 0 and at most {MAX_LOAD_RATE}, got {}",
                    self.rate
                ),
            ));
        }
        if !(1..=MAX_LOAD_CONCURRENCY).contains(&self.concurrency()) {
            out.push((
                "concurrency".to_string(),
                format!(
                    "must be 1..={MAX_LOAD_CONCURRENCY}, got {}",
                    self.concurrency()
                ),
            ));
        }
        if !(1..=MAX_LOAD_DURATION_SECONDS).contains(&self.duration_seconds()) {
            out.push((
                "durationSeconds".to_string(),
                format!(
                    "must be 1..={MAX_LOAD_DURATION_SECONDS}, got {}",
                    self.duration_seconds()
                ),
            ));
        }
        if !(1..=60).contains(&self.timeout_seconds()) {
            out.push((
                "timeoutSeconds".to_string(),
                format!("must be 1..=60, got {}", self.timeout_seconds()),
            ));
        }
        if self.paths.len() > 32 {
            out.push(("paths".to_string(), "at most 32 paths".to_string()));
        }
        for (i, p) in self.paths.iter().enumerate() {
            // Only a path: the host is always the canary's, so load cannot be aimed elsewhere.
            let ok = p.starts_with('/')
                && !p.starts_with("//")
                && p.len() <= 2048
                && p.chars().all(|c| c.is_ascii_graphic());
            if !ok {
                out.push((
                    format!("paths[{i}]"),
                    format!("{p:?} must be a path starting with a single / (no host, no spaces)"),
                ));
            }
        }
        for (k, v) in &self.headers {
            let name_ok = !k.is_empty()
                && k.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
            if !name_ok {
                out.push((
                    format!("headers.{k}"),
                    "is not a valid HTTP header name".to_string(),
                ));
            }
            if v.chars().any(|c| c.is_control()) {
                out.push((
                    format!("headers.{k}"),
                    "value must not contain control characters".to_string(),
                ));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(rate: f64) -> LoadSpec {
        LoadSpec {
            rate,
            ..LoadSpec::default()
        }
    }

    #[test]
    fn defaults_and_a_valid_spec() {
        let s = spec(10.0);
        assert!(s.problems().is_empty());
        assert_eq!(s.paths(), vec!["/"]);
        assert_eq!(s.concurrency(), 8);
        assert_eq!(s.duration_seconds(), 3600);
        assert_eq!(s.timeout_seconds(), 5);
    }

    #[test]
    fn out_of_range_numbers_and_nan_are_refused() {
        for rate in [0.0, -1.0, f64::NAN, f64::INFINITY, 1000.5] {
            let p = spec(rate).problems();
            assert_eq!(p.len(), 1, "{rate}: {p:?}");
            assert_eq!(p[0].0, "rate");
        }
        let s = LoadSpec {
            concurrency: Some(0),
            duration_seconds: Some(86_401),
            timeout_seconds: Some(61),
            ..spec(1.0)
        };
        let fields: Vec<String> = s.problems().into_iter().map(|(f, _)| f).collect();
        assert_eq!(
            fields,
            vec!["concurrency", "durationSeconds", "timeoutSeconds"]
        );
    }

    #[test]
    fn paths_cannot_name_another_host() {
        for bad in ["http://evil/", "//evil/x", "x", "/a b", ""] {
            let s = LoadSpec {
                paths: vec![bad.to_string()],
                ..spec(1.0)
            };
            assert_eq!(s.problems().len(), 1, "{bad:?}");
        }
        let ok = LoadSpec {
            paths: vec!["/checkout?id=1".into(), "/".into()],
            ..spec(1.0)
        };
        assert!(ok.problems().is_empty());
    }

    #[test]
    fn header_names_and_values_are_checked() {
        let s = LoadSpec {
            headers: [
                ("Host".to_string(), "shop.example".to_string()),
                ("bad name".to_string(), "x".to_string()),
                ("X-Ok".to_string(), "a\nb".to_string()),
            ]
            .into(),
            ..spec(1.0)
        };
        let fields: Vec<String> = s.problems().into_iter().map(|(f, _)| f).collect();
        assert_eq!(fields, vec!["headers.X-Ok", "headers.bad name"]);
    }
}
