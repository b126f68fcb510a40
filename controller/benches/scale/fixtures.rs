//! Fixtures for the scale bench: one canary Rollout (two analysis steps on a success-rate
//! query), its target Deployment and the user's Ingress, per index.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{Container, PodSpec, PodTemplateSpec};
use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressRule,
    IngressServiceBackend, IngressSpec, ServiceBackendPort,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use sluice_crds::{
    AnalysisSpec, CanaryStep, CanaryStrategy, MetricSpec, NginxRouter, Rollout, RolloutSpec,
    RouterSpec, ServiceSpec, Strategy, TargetRef, Threshold,
};

pub const NS: &str = "bench";
pub const QUERY: &str = "sum(rate(http_ok_total[1m])) / sum(rate(http_total[1m]))";

pub fn name(i: usize) -> String {
    format!("app-{i:05}")
}

pub fn rollout(i: usize) -> Rollout {
    let n = name(i);
    let mut r = Rollout::new(
        &n,
        RolloutSpec {
            target_ref: TargetRef {
                api_version: "apps/v1".into(),
                kind: "Deployment".into(),
                name: n.clone(),
            },
            service: ServiceSpec {
                port: 80,
                target_port: Some(8080),
                ..ServiceSpec::default()
            },
            strategy: Strategy {
                canary: Some(CanaryStrategy {
                    steps: vec![
                        CanaryStep::weight(20),
                        CanaryStep::analyse(),
                        CanaryStep::weight(50),
                        CanaryStep::analyse(),
                    ],
                    ..CanaryStrategy::default()
                }),
                blue_green: None,
            },
            router: RouterSpec {
                nginx: Some(NginxRouter {
                    ingress_ref: n.clone(),
                    ..NginxRouter::default()
                }),
                ..RouterSpec::default()
            },
            analysis: Some(AnalysisSpec {
                interval: "30s".into(),
                failure_limit: 0,
                inconclusive_limit: 3,
                error_limit: 3,
                on_errors: Default::default(),
                metrics: vec![MetricSpec {
                    name: "success".into(),
                    query: Some(QUERY.into()),
                    threshold: Some(Threshold {
                        min: Some(0.99),
                        max: None,
                        unless_stable_fails: None,
                    }),
                    ..MetricSpec::default()
                }],
                ..AnalysisSpec::default()
            }),
            progress_deadline_seconds: 3600,
            canary_loss: Default::default(),
            load: None,
            ..RolloutSpec::default()
        },
    );
    r.metadata.namespace = Some(NS.into());
    r.metadata.uid = Some(format!("00000000-0000-0000-0000-{i:012}"));
    r
}

pub fn deployment(i: usize, image: &str) -> Deployment {
    let labels = BTreeMap::from([("app".to_string(), name(i))]);
    Deployment {
        metadata: ObjectMeta {
            name: Some(name(i)),
            namespace: Some(NS.into()),
            ..ObjectMeta::default()
        },
        spec: Some(DeploymentSpec {
            replicas: Some(2),
            selector: LabelSelector {
                match_labels: Some(labels.clone()),
                match_expressions: None,
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![Container {
                        name: "app".into(),
                        image: Some(image.into()),
                        ..Container::default()
                    }],
                    ..PodSpec::default()
                }),
            },
            ..DeploymentSpec::default()
        }),
        status: None,
    }
}

pub fn ingress(i: usize) -> Ingress {
    let backend = IngressBackend {
        resource: None,
        service: Some(IngressServiceBackend {
            name: format!("{}-primary", name(i)),
            port: Some(ServiceBackendPort {
                number: Some(80),
                name: None,
            }),
        }),
    };
    Ingress {
        metadata: ObjectMeta {
            name: Some(name(i)),
            namespace: Some(NS.into()),
            ..ObjectMeta::default()
        },
        spec: Some(IngressSpec {
            ingress_class_name: Some("nginx".into()),
            rules: Some(vec![IngressRule {
                host: Some(format!("{}.example.com", name(i))),
                http: Some(HTTPIngressRuleValue {
                    paths: vec![HTTPIngressPath {
                        path: Some("/".into()),
                        path_type: "Prefix".into(),
                        backend,
                    }],
                }),
            }]),
            ..IngressSpec::default()
        }),
        status: None,
    }
}
