//! Fixtures for the Kubernetes tests: a demo Rollout and its objects, a kube-fake-client with
//! the needed resources registered, a stand-in "kubelet" that marks Deployments rolled out, and a
//! driver that calls `reconcile` in a loop on a `ManualClock` (the fake has no watch).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{TimeZone, Utc};
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{Container, PodSpec, PodTemplateSpec};
use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressRule,
    IngressServiceBackend, IngressSpec, ServiceBackendPort,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::{Client, CustomResource, ResourceExt};
use kube_fake_client::{interceptor, ClientBuilder};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sluice_controller::clock::ManualClock;
use sluice_controller::k8s::{reconcile, Context};
use sluice_crds::{
    AnalysisTemplate, CanaryStep, CanaryStrategy, NginxRouter, Rollout, RolloutSpec, RouterSpec,
    ServiceSpec, Strategy, TargetRef,
};

pub const NS: &str = "demo";
pub const APP: &str = "podinfo";

/// Stand-in CRD types so the fake client knows the resources the routers use dynamically.
pub mod crds {
    use super::*;

    #[derive(CustomResource, Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
    #[kube(
        group = "traefik.io",
        version = "v1alpha1",
        kind = "TraefikService",
        plural = "traefikservices",
        namespaced,
        derive = "Default",
        schema = "disabled"
    )]
    pub struct TraefikServiceSpec {
        #[serde(flatten)]
        pub rest: serde_json::Map<String, serde_json::Value>,
    }

    #[derive(CustomResource, Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
    #[kube(
        group = "gateway.networking.k8s.io",
        version = "v1",
        kind = "HTTPRoute",
        plural = "httproutes",
        namespaced,
        schema = "disabled"
    )]
    pub struct HTTPRouteSpec {
        #[serde(flatten)]
        pub rest: serde_json::Map<String, serde_json::Value>,
    }
}

pub fn steps() -> Vec<CanaryStep> {
    vec![
        CanaryStep::weight(20),
        CanaryStep::pause_for("1m"),
        CanaryStep::weight(50),
        CanaryStep::pause_for("1m"),
    ]
}

pub fn rollout() -> Rollout {
    let mut r = Rollout::new(
        APP,
        RolloutSpec {
            target_ref: TargetRef {
                api_version: "apps/v1".into(),
                kind: "Deployment".into(),
                name: APP.into(),
            },
            service: ServiceSpec {
                port: 80,
                target_port: Some(9898),
                ..ServiceSpec::default()
            },
            strategy: Strategy {
                canary: Some(CanaryStrategy {
                    steps: steps(),
                    ..CanaryStrategy::default()
                }),
                blue_green: None,
            },
            router: RouterSpec {
                nginx: Some(NginxRouter {
                    ingress_ref: APP.into(),
                    ..NginxRouter::default()
                }),
                ..RouterSpec::default()
            },
            progress_deadline_seconds: 600,
            canary_loss: Default::default(),
            load: None,
            ..RolloutSpec::default()
        },
    );
    r.metadata.namespace = Some(NS.into());
    r.metadata.uid = Some("0b6e8d5c-1111-2222-3333-444455556666".into());
    r
}

pub fn target(image: &str, replicas: i32) -> Deployment {
    let labels = BTreeMap::from([("app".to_string(), APP.to_string())]);
    Deployment {
        metadata: ObjectMeta {
            name: Some(APP.into()),
            namespace: Some(NS.into()),
            labels: Some(BTreeMap::from([("team".to_string(), "web".to_string())])),
            ..ObjectMeta::default()
        },
        spec: Some(DeploymentSpec {
            replicas: Some(replicas),
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

pub fn user_ingress() -> Ingress {
    Ingress {
        metadata: ObjectMeta {
            name: Some(APP.into()),
            namespace: Some(NS.into()),
            annotations: Some(BTreeMap::from([
                (
                    "nginx.ingress.kubernetes.io/proxy-body-size".to_string(),
                    "1m".to_string(),
                ),
                (
                    "kubectl.kubernetes.io/last-applied-configuration".to_string(),
                    "{}".to_string(),
                ),
            ])),
            ..ObjectMeta::default()
        },
        spec: Some(IngressSpec {
            ingress_class_name: Some("nginx".into()),
            rules: Some(vec![IngressRule {
                host: Some("podinfo.example.com".into()),
                http: Some(HTTPIngressRuleValue {
                    paths: vec![HTTPIngressPath {
                        path: Some("/".into()),
                        path_type: "Prefix".into(),
                        backend: IngressBackend {
                            resource: None,
                            service: Some(IngressServiceBackend {
                                name: format!("{APP}-primary"),
                                port: Some(ServiceBackendPort {
                                    number: Some(80),
                                    name: None,
                                }),
                            }),
                        },
                    }],
                }),
            }]),
            ..IngressSpec::default()
        }),
        status: None,
    }
}

pub fn builder() -> ClientBuilder {
    ClientBuilder::new()
        .with_resource::<Rollout>()
        .with_resource::<AnalysisTemplate>()
        .with_resource::<crds::TraefikService>()
        .with_resource::<crds::HTTPRoute>()
        .with_status_subresource::<Rollout>()
        .with_status_subresource::<Deployment>()
}

pub async fn client_with(r: Rollout, interceptors: Option<interceptor::Funcs>) -> Client {
    let mut b = builder()
        .with_object(r)
        .with_object(target("podinfo:1.0", 3))
        .with_object(user_ingress());
    if let Some(i) = interceptors {
        b = b.with_interceptor_funcs(i);
    }
    b.build().await.unwrap()
}

pub fn start() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 10, 0, 0).unwrap()
}

pub fn context(client: &Client, clock: &Arc<ManualClock>) -> Arc<Context> {
    Arc::new(Context::new(client.clone()).with_clock(clock.clone()))
}

/// What the cluster's Deployment controller would do: every Deployment fully rolled out.
pub async fn kubelet(client: &Client) {
    let api: Api<Deployment> = Api::namespaced(client.clone(), NS);
    for d in api.list(&ListParams::default()).await.unwrap().items {
        let r = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
        let status = json!({"status": {
            "observedGeneration": d.metadata.generation,
            "replicas": r, "updatedReplicas": r, "availableReplicas": r, "readyReplicas": r
        }});
        api.patch_status(
            &d.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&status),
        )
        .await
        .unwrap();
    }
}

pub async fn get_rollout(client: &Client) -> Rollout {
    Api::<Rollout>::namespaced(client.clone(), NS)
        .get(APP)
        .await
        .unwrap()
}

pub async fn deployment(client: &Client, name: &str) -> Option<Deployment> {
    Api::<Deployment>::namespaced(client.clone(), NS)
        .get_opt(name)
        .await
        .unwrap()
}

pub async fn canary_weight(client: &Client) -> Option<i32> {
    let ing = Api::<Ingress>::namespaced(client.clone(), NS)
        .get_opt(&format!("{APP}-canary"))
        .await
        .unwrap()?;
    ing.annotations()
        .get("nginx.ingress.kubernetes.io/canary-weight")
        .and_then(|w| w.parse().ok())
}

/// One observed point after a reconcile.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub phase: String,
    pub step: u32,
    pub weight: Option<i32>,
    pub target_replicas: i32,
}

/// Kubelet, reconcile once, advance the clock by `tick`, and report where things are.
pub async fn tick(
    client: &Client,
    ctx: &Arc<Context>,
    clock: &ManualClock,
    tick: chrono::Duration,
) -> Point {
    kubelet(client).await;
    let r = get_rollout(client).await;
    reconcile(Arc::new(r), ctx.clone()).await.unwrap();
    clock.advance(tick);
    let r = get_rollout(client).await;
    let st = r.status.clone().unwrap_or_default();
    Point {
        phase: st.phase.to_string(),
        step: st.current_step,
        weight: canary_weight(client).await,
        target_replicas: deployment(client, APP)
            .await
            .and_then(|d| d.spec.and_then(|s| s.replicas))
            .unwrap_or(-1),
    }
}

/// Tick until the phase is `phase` (at most `max` ticks); returns the trace.
pub async fn run_until(
    client: &Client,
    ctx: &Arc<Context>,
    clock: &ManualClock,
    phase: &str,
    max: usize,
) -> Vec<Point> {
    let mut trace = Vec::new();
    for _ in 0..max {
        let p = tick(client, ctx, clock, chrono::Duration::seconds(30)).await;
        let done = p.phase == phase;
        trace.push(p);
        if done {
            return trace;
        }
    }
    panic!("phase {phase} not reached in {max} ticks: {trace:#?}");
}

/// Change the target's image (what a user or GitOps does to start a rollout).
pub async fn set_image(client: &Client, image: &str) {
    let patch =
        json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": image}]}}}});
    Api::<Deployment>::namespaced(client.clone(), NS)
        .patch(APP, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
}

/// A command as the API writes it (by and reason `test`, at [`start`]).
pub fn command(action: sluice_crds::CommandAction, id: &str) -> sluice_crds::Command {
    sluice_crds::Command {
        id: id.into(),
        action,
        by: Some("test".into()),
        reason: Some("test".into()),
        alert_name: None,
        fingerprint: None,
        revision: None,
        at: start(),
    }
}

/// Write `c` to the Rollout's command annotation, as the HTTP API does.
pub async fn send_command(client: &Client, c: &sluice_crds::Command) {
    let patch = serde_json::json!({"metadata": {"annotations": {
        sluice_crds::COMMAND_ANNOTATION: c.to_annotation()
    }}});
    Api::<Rollout>::namespaced(client.clone(), NS)
        .patch(APP, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
}
