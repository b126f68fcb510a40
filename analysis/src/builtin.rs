//! Built-in PromQL templates for ingress-nginx, Traefik (Kubernetes and file provider) and
//! NGINX + mtail (file mode), per arm (stable / canary).
//!
//! Variables used: `namespace`, `ingress` (ingress-nginx: the user's main Ingress), `primary` /
//! `canary` (Traefik: Service names, the label is `NS-SVC-PORT@kubernetes...`; file modes: the
//! version / file-provider service name), `port` (Traefik on Kubernetes), `interval` (threshold
//! metrics' rate range) and `range` (comparison metrics: window plus baseline lookback, see
//! [`crate::counters`]).
//!
//! ingress-nginx merges a canary Ingress into the main Ingress's server, so every request of
//! both arms carries `ingress="<main Ingress>"`; a request served by the canary backend carries
//! `canary="<namespace>-<canary Service>-<port>"` (the alternative upstream's name), the main
//! backend's `canary=""` (ingress-nginx `internal/ingress/controller/controller.go` skips canary
//! Ingresses when building servers and merges them as alternative backends;
//! `rootfs/etc/nginx/lua/monitor.lua` reports `canary = ngx.var.proxy_alternative_upstream_name`).
//! So stable is `canary=""` and canary is `canary!=""`, as Flagger's built-ins select too.

use serde::{Deserialize, Serialize};

/// Where the request metrics come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Provider {
    /// ingress-nginx: `nginx_ingress_controller_requests{namespace,ingress,status}`.
    NginxIngress,
    /// Traefik on Kubernetes: `traefik_service_requests_total{service="NS-SVC-PORT@kubernetes(crd)",code}`.
    Traefik,
    /// NGINX without Kubernetes, metrics from mtail on the access log: `nginx_upstream_requests_total{version,code}`.
    NginxMtail,
    /// Traefik file provider: `traefik_service_requests_total{service="NAME@file",code}`.
    TraefikFile,
    /// Sluice's built-in canary load, as Sluice exports it on `/metrics`:
    /// `sluice_load_requests_total{namespace,rollout,revision,code}` (`code="error"` for a
    /// request that got no answer) and `sluice_load_request_duration_seconds`. Canary only:
    /// the load never reaches stable, so there is nothing to compare with.
    SluiceLoad,
}

impl Provider {
    /// Whether the provider has a stable arm to compare with or to check for a shared incident.
    pub fn has_stable_arm(self) -> bool {
        !matches!(self, Provider::SluiceLoad)
    }
}

/// Which side of the rollout a query measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Arm {
    Stable,
    Canary,
}

/// Built-in metrics, each with a stable kebab-case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BuiltinMetric {
    /// Fraction (0..1) of requests that were not 5xx over `interval`. Threshold metric.
    RequestSuccessRate,
    /// p99 request duration in seconds from histogram buckets (interpolated). Threshold metric.
    RequestDurationP99,
    /// Mean request duration in seconds (`_sum / _count`), not a percentile. Threshold metric.
    RequestDurationMean,
    /// Comparison metric: per arm, requests and 5xx responses over `interval`.
    ErrorRateComparison,
    /// Comparison metric: per arm, histogram bucket counts over `interval`, judged at a boundary.
    LatencyComparison,
}

impl BuiltinMetric {
    pub const ALL: [BuiltinMetric; 5] = [
        BuiltinMetric::RequestSuccessRate,
        BuiltinMetric::RequestDurationP99,
        BuiltinMetric::RequestDurationMean,
        BuiltinMetric::ErrorRateComparison,
        BuiltinMetric::LatencyComparison,
    ];

    /// The stable kebab-case name (same as the serde name).
    pub fn name(self) -> &'static str {
        match self {
            BuiltinMetric::RequestSuccessRate => "request-success-rate",
            BuiltinMetric::RequestDurationP99 => "request-duration-p99",
            BuiltinMetric::RequestDurationMean => "request-duration-mean",
            BuiltinMetric::ErrorRateComparison => "error-rate-comparison",
            BuiltinMetric::LatencyComparison => "latency-comparison",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }

    /// Whether this metric compares canary with stable (else it is a threshold metric).
    pub fn is_comparison(self) -> bool {
        matches!(
            self,
            BuiltinMetric::ErrorRateComparison | BuiltinMetric::LatencyComparison
        )
    }
}

struct Names {
    requests: &'static str,
    code: &'static str,
    duration: &'static str,
    /// Values of `code` that are bad events (a regex).
    bad_codes: &'static str,
}

fn names(p: Provider) -> Names {
    match p {
        Provider::NginxIngress => Names {
            requests: "nginx_ingress_controller_requests",
            code: "status",
            duration: "nginx_ingress_controller_request_duration_seconds",
            bad_codes: "5..",
        },
        Provider::Traefik | Provider::TraefikFile => Names {
            requests: "traefik_service_requests_total",
            code: "code",
            duration: "traefik_service_request_duration_seconds",
            bad_codes: "5..",
        },
        Provider::NginxMtail => Names {
            requests: "nginx_upstream_requests_total",
            code: "code",
            duration: "nginx_upstream_request_duration_seconds",
            bad_codes: "5..",
        },
        Provider::SluiceLoad => Names {
            requests: "sluice_load_requests_total",
            code: "code",
            duration: "sluice_load_request_duration_seconds",
            bad_codes: "5..|error",
        },
    }
}

/// The label matchers selecting one arm's series.
pub fn selector(p: Provider, arm: Arm) -> &'static str {
    match (p, arm) {
        (Provider::NginxIngress, Arm::Stable) => {
            r#"namespace="{{namespace}}",ingress="{{ingress}}",canary="""#
        }
        (Provider::NginxIngress, Arm::Canary) => {
            r#"namespace="{{namespace}}",ingress="{{ingress}}",canary!="""#
        }
        (Provider::Traefik, Arm::Stable) => {
            r#"service=~"{{namespace}}-{{primary}}-{{port}}@kubernetes(crd)?""#
        }
        (Provider::Traefik, Arm::Canary) => {
            r#"service=~"{{namespace}}-{{canary}}-{{port}}@kubernetes(crd)?""#
        }
        (Provider::NginxMtail, Arm::Stable) => r#"version="{{primary}}""#,
        (Provider::NginxMtail, Arm::Canary) => r#"version="{{canary}}""#,
        (Provider::TraefikFile, Arm::Stable) => r#"service="{{primary}}@file""#,
        (Provider::TraefikFile, Arm::Canary) => r#"service="{{canary}}@file""#,
        // No load series has `arm="stable"`: were stable ever asked, it would be "no data".
        (Provider::SluiceLoad, Arm::Stable) => {
            r#"namespace="{{namespace}}",rollout="{{name}}",arm="stable""#
        }
        (Provider::SluiceLoad, Arm::Canary) => r#"namespace="{{namespace}}",rollout="{{name}}""#,
    }
}

/// Query template of a threshold metric for one arm; `None` for comparison metrics.
pub fn value_query(p: Provider, metric: BuiltinMetric, arm: Arm) -> Option<String> {
    let n = names(p);
    let sel = selector(p, arm);
    let w = "[{{interval}}]";
    Some(match metric {
        BuiltinMetric::RequestSuccessRate => format!(
            r#"sum(rate({r}{{{sel},{c}!~"{b}"}}{w})) / sum(rate({r}{{{sel}}}{w}))"#,
            r = n.requests,
            c = n.code,
            b = n.bad_codes
        ),
        BuiltinMetric::RequestDurationP99 => {
            format!(
                "histogram_quantile(0.99, sum by (le) (rate({d}_bucket{{{sel}}}{w})))",
                d = n.duration
            )
        }
        BuiltinMetric::RequestDurationMean => {
            format!(
                "sum(rate({d}_sum{{{sel}}}{w})) / sum(rate({d}_count{{{sel}}}{w}))",
                d = n.duration
            )
        }
        BuiltinMetric::ErrorRateComparison | BuiltinMetric::LatencyComparison => return None,
    })
}

/// A counter (or a histogram's `_bucket` counter) read as raw samples per arm: what a
/// comparison counts. Selectors are label-matcher templates without braces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CounterSpec {
    /// The counter's metric name, e.g. `http_requests_total` or `..._bucket`.
    pub metric: String,
    pub stable: String,
    pub canary: String,
    /// Extra matchers that make a request a bad event, e.g. `code=~"5.."` (unused for buckets).
    pub bad: String,
}

impl CounterSpec {
    fn selector(&self, arm: Arm) -> &str {
        match arm {
            Arm::Stable => &self.stable,
            Arm::Canary => &self.canary,
        }
    }

    /// `metric{arm selector}[{{range}}]`: every series of the arm, raw samples.
    pub fn all_query(&self, arm: Arm) -> String {
        raw(&self.metric, &[self.selector(arm)])
    }

    /// `metric{arm selector, bad}[{{range}}]`: the bad events' series, a subset of the above.
    pub fn bad_query(&self, arm: Arm) -> String {
        raw(&self.metric, &[self.selector(arm), &self.bad])
    }
}

fn raw(metric: &str, selectors: &[&str]) -> String {
    let sel: Vec<&str> = selectors
        .iter()
        .map(|s| s.trim().trim_matches(','))
        .filter(|s| !s.is_empty())
        .collect();
    format!("{metric}{{{}}}[{{{{range}}}}]", sel.join(","))
}

/// Requests and 5xx responses of a provider, as a counter per arm.
pub fn error_counter(p: Provider) -> CounterSpec {
    let n = names(p);
    CounterSpec {
        metric: n.requests.to_string(),
        stable: selector(p, Arm::Stable).to_string(),
        canary: selector(p, Arm::Canary).to_string(),
        bad: format!(r#"{}=~"{}""#, n.code, n.bad_codes),
    }
}

/// The request-duration histogram's buckets of a provider, per arm.
pub fn latency_histogram(p: Provider) -> CounterSpec {
    let n = names(p);
    CounterSpec {
        metric: format!("{}_bucket", n.duration),
        stable: selector(p, Arm::Stable).to_string(),
        canary: selector(p, Arm::Canary).to_string(),
        bad: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::{placeholders, render, Variables};

    fn vars() -> Variables {
        [
            ("namespace", "shop"),
            ("name", "web"),
            ("ingress", "web"),
            ("range", "310000ms"),
            ("primary", "web-primary"),
            ("canary", "web-canary"),
            ("port", "80"),
            ("interval", "1m"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    #[test]
    fn names_round_trip_and_match_serde() {
        for m in BuiltinMetric::ALL {
            assert_eq!(BuiltinMetric::from_name(m.name()), Some(m));
            assert_eq!(
                serde_json::to_string(&m).unwrap(),
                format!("\"{}\"", m.name())
            );
        }
        assert_eq!(BuiltinMetric::from_name("nope"), None);
    }

    #[test]
    fn nginx_ingress_queries() {
        let q = render(
            &value_query(
                Provider::NginxIngress,
                BuiltinMetric::RequestSuccessRate,
                Arm::Canary,
            )
            .unwrap(),
            &vars(),
        )
        .unwrap();
        assert_eq!(
            q,
            r#"sum(rate(nginx_ingress_controller_requests{namespace="shop",ingress="web",canary!="",status!~"5.."}[1m])) / sum(rate(nginx_ingress_controller_requests{namespace="shop",ingress="web",canary!=""}[1m]))"#
        );
        let c = error_counter(Provider::NginxIngress);
        assert_eq!(
            render(&c.bad_query(Arm::Stable), &vars()).unwrap(),
            r#"nginx_ingress_controller_requests{namespace="shop",ingress="web",canary="",status=~"5.."}[310000ms]"#
        );
        assert_eq!(
            render(&c.all_query(Arm::Canary), &vars()).unwrap(),
            r#"nginx_ingress_controller_requests{namespace="shop",ingress="web",canary!=""}[310000ms]"#
        );
        let p99 = render(
            &value_query(
                Provider::NginxIngress,
                BuiltinMetric::RequestDurationP99,
                Arm::Stable,
            )
            .unwrap(),
            &vars(),
        )
        .unwrap();
        assert_eq!(
            p99,
            r#"histogram_quantile(0.99, sum by (le) (rate(nginx_ingress_controller_request_duration_seconds_bucket{namespace="shop",ingress="web",canary=""}[1m])))"#
        );
    }

    #[test]
    fn traefik_service_label_is_built_from_service_name() {
        let c = error_counter(Provider::Traefik);
        assert_eq!(
            render(&c.all_query(Arm::Canary), &vars()).unwrap(),
            r#"traefik_service_requests_total{service=~"shop-web-canary-80@kubernetes(crd)?"}[310000ms]"#
        );
        let f = latency_histogram(Provider::TraefikFile);
        assert_eq!(
            render(&f.all_query(Arm::Stable), &vars()).unwrap(),
            r#"traefik_service_request_duration_seconds_bucket{service="web-primary@file"}[310000ms]"#
        );
    }

    #[test]
    fn mtail_queries_use_version_label() {
        let mean = value_query(
            Provider::NginxMtail,
            BuiltinMetric::RequestDurationMean,
            Arm::Canary,
        )
        .unwrap();
        assert_eq!(
            render(&mean, &vars()).unwrap(),
            r#"sum(rate(nginx_upstream_request_duration_seconds_sum{version="web-canary"}[1m])) / sum(rate(nginx_upstream_request_duration_seconds_count{version="web-canary"}[1m]))"#
        );
    }

    #[test]
    fn load_queries_count_unanswered_requests_as_errors() {
        assert_eq!(
            render(
                &value_query(
                    Provider::SluiceLoad,
                    BuiltinMetric::RequestSuccessRate,
                    Arm::Canary
                )
                .unwrap(),
                &vars()
            )
            .unwrap(),
            r#"sum(rate(sluice_load_requests_total{namespace="shop",rollout="web",code!~"5..|error"}[1m])) / sum(rate(sluice_load_requests_total{namespace="shop",rollout="web"}[1m]))"#
        );
        let c = error_counter(Provider::SluiceLoad);
        assert_eq!(c.bad, r#"code=~"5..|error""#);
        assert!(!Provider::SluiceLoad.has_stable_arm());
        assert!(Provider::NginxMtail.has_stable_arm());
    }

    #[test]
    fn every_template_renders_for_every_provider() {
        for p in [
            Provider::NginxIngress,
            Provider::Traefik,
            Provider::NginxMtail,
            Provider::TraefikFile,
            Provider::SluiceLoad,
        ] {
            for arm in [Arm::Stable, Arm::Canary] {
                for m in BuiltinMetric::ALL {
                    assert_eq!(value_query(p, m, arm).is_none(), m.is_comparison());
                    if let Some(t) = value_query(p, m, arm) {
                        assert!(placeholders(&t).unwrap().contains(&"interval".to_string()));
                        render(&t, &vars()).unwrap();
                    }
                }
                for c in [error_counter(p), latency_histogram(p)] {
                    for t in [c.all_query(arm), c.bad_query(arm)] {
                        assert!(placeholders(&t).unwrap().contains(&"range".to_string()));
                        render(&t, &vars()).unwrap();
                    }
                }
            }
        }
    }
}
