//! Built-in PromQL templates for ingress-nginx, Traefik (Kubernetes and file provider) and
//! NGINX + mtail (file mode), per arm (stable / canary).
//!
//! Variables used: `namespace`, `ingress`, `canary_ingress` (ingress-nginx: the canary Ingress's
//! requests carry the canary Ingress's name), `primary` / `canary` (Traefik: Service names, the
//! label is `NS-SVC-PORT@kubernetes...`; file modes: the version / file-provider service name),
//! `port` (Traefik on Kubernetes), `interval` (a duration).

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
}

fn names(p: Provider) -> Names {
    match p {
        Provider::NginxIngress => Names {
            requests: "nginx_ingress_controller_requests",
            code: "status",
            duration: "nginx_ingress_controller_request_duration_seconds",
        },
        Provider::Traefik | Provider::TraefikFile => Names {
            requests: "traefik_service_requests_total",
            code: "code",
            duration: "traefik_service_request_duration_seconds",
        },
        Provider::NginxMtail => Names {
            requests: "nginx_upstream_requests_total",
            code: "code",
            duration: "nginx_upstream_request_duration_seconds",
        },
    }
}

/// The label matchers selecting one arm's series.
pub fn selector(p: Provider, arm: Arm) -> &'static str {
    match (p, arm) {
        (Provider::NginxIngress, Arm::Stable) => {
            r#"namespace="{{namespace}}",ingress="{{ingress}}""#
        }
        (Provider::NginxIngress, Arm::Canary) => {
            r#"namespace="{{namespace}}",ingress="{{canary_ingress}}""#
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
    }
}

/// Query template of a threshold metric for one arm; `None` for comparison metrics.
pub fn value_query(p: Provider, metric: BuiltinMetric, arm: Arm) -> Option<String> {
    let n = names(p);
    let sel = selector(p, arm);
    let w = "[{{interval}}]";
    Some(match metric {
        BuiltinMetric::RequestSuccessRate => format!(
            r#"sum(rate({r}{{{sel},{c}!~"5.."}}{w})) / sum(rate({r}{{{sel}}}{w}))"#,
            r = n.requests,
            c = n.code
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

/// Templates of the counts one arm contributes to the statistical judges.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CountQueries {
    /// Requests over `interval` (one sample, or empty when the arm has no series).
    pub requests: String,
    /// 5xx responses over `interval` (`or vector(0)`: no 5xx series yet means 0).
    pub errors: String,
    /// Histogram bucket increases over `interval`, one sample per `le`.
    pub buckets: String,
}

/// The count query templates for one arm.
pub fn count_queries(p: Provider, arm: Arm) -> CountQueries {
    let n = names(p);
    let sel = selector(p, arm);
    let w = "[{{interval}}]";
    CountQueries {
        requests: format!("sum(increase({r}{{{sel}}}{w}))", r = n.requests),
        errors: format!(
            r#"sum(increase({r}{{{sel},{c}=~"5.."}}{w})) or vector(0)"#,
            r = n.requests,
            c = n.code
        ),
        buckets: format!(
            "sum by (le) (increase({d}_bucket{{{sel}}}{w}))",
            d = n.duration
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::{placeholders, render, Variables};

    fn vars() -> Variables {
        [
            ("namespace", "shop"),
            ("ingress", "web"),
            ("canary_ingress", "web-canary"),
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
            r#"sum(rate(nginx_ingress_controller_requests{namespace="shop",ingress="web-canary",status!~"5.."}[1m])) / sum(rate(nginx_ingress_controller_requests{namespace="shop",ingress="web-canary"}[1m]))"#
        );
        let c = count_queries(Provider::NginxIngress, Arm::Stable);
        assert_eq!(
            render(&c.errors, &vars()).unwrap(),
            r#"sum(increase(nginx_ingress_controller_requests{namespace="shop",ingress="web",status=~"5.."}[1m])) or vector(0)"#
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
            r#"histogram_quantile(0.99, sum by (le) (rate(nginx_ingress_controller_request_duration_seconds_bucket{namespace="shop",ingress="web"}[1m])))"#
        );
    }

    #[test]
    fn traefik_service_label_is_built_from_service_name() {
        let c = count_queries(Provider::Traefik, Arm::Canary);
        assert_eq!(
            render(&c.requests, &vars()).unwrap(),
            r#"sum(increase(traefik_service_requests_total{service=~"shop-web-canary-80@kubernetes(crd)?"}[1m]))"#
        );
        let f = count_queries(Provider::TraefikFile, Arm::Stable);
        assert_eq!(
            render(&f.buckets, &vars()).unwrap(),
            r#"sum by (le) (increase(traefik_service_request_duration_seconds_bucket{service="web-primary@file"}[1m]))"#
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
    fn every_template_renders_for_every_provider() {
        for p in [
            Provider::NginxIngress,
            Provider::Traefik,
            Provider::NginxMtail,
            Provider::TraefikFile,
        ] {
            for arm in [Arm::Stable, Arm::Canary] {
                for m in BuiltinMetric::ALL {
                    assert_eq!(value_query(p, m, arm).is_none(), m.is_comparison());
                    if let Some(t) = value_query(p, m, arm) {
                        assert!(placeholders(&t).unwrap().contains(&"interval".to_string()));
                        render(&t, &vars()).unwrap();
                    }
                }
                let c = count_queries(p, arm);
                for t in [c.requests, c.errors, c.buckets] {
                    render(&t, &vars()).unwrap();
                }
            }
        }
    }
}
