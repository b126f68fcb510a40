//! The Kubernetes routers against kube-fake-client: weights written and read back, no write when
//! unchanged, clean-up, and the TraefikService / HTTPRoute objects as stored.

mod k8s_common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Api, DynamicObject};
use kube_fake_client::interceptor;
use serde_json::json;
use sluice_controller::k8s::names::Names;
use sluice_controller::router::gateway::{self, GatewayRouter};
use sluice_controller::router::ingress_nginx::{self, IngressNginxRouter};
use sluice_controller::router::traefik_crd::{self, TraefikCrdRouter};
use sluice_controller::router::{RouterError, TrafficRouter};
use sluice_crds::{NginxRouter, TraefikRouter};

use k8s_common::*;

fn counting_patches() -> (interceptor::Funcs, Arc<AtomicUsize>) {
    let n = Arc::new(AtomicUsize::new(0));
    let c = n.clone();
    let funcs = interceptor::Funcs::new().patch(move |_| {
        c.fetch_add(1, Ordering::SeqCst);
        Ok(None)
    });
    (funcs, n)
}

#[tokio::test]
async fn nginx_creates_patches_only_on_change_and_deletes() {
    let (funcs, patches) = counting_patches();
    let client = builder()
        .with_object(user_ingress())
        .with_interceptor_funcs(funcs)
        .build()
        .await
        .unwrap();
    let cfg = NginxRouter {
        ingress_ref: APP.into(),
        ..NginxRouter::default()
    };
    let router = IngressNginxRouter::new(client.clone(), Names::of(&rollout()), cfg);
    assert_eq!(router.current_weight().await.unwrap(), None);
    router.set_weight(0).await.unwrap();
    assert_eq!(router.current_weight().await.unwrap(), Some(0));
    router.set_weight(0).await.unwrap();
    assert_eq!(
        patches.load(Ordering::SeqCst),
        0,
        "unchanged weight, no write"
    );
    router.set_weight(35).await.unwrap();
    assert_eq!(patches.load(Ordering::SeqCst), 1);
    assert_eq!(router.current_weight().await.unwrap(), Some(35));
    // Another controller's annotation on the canary Ingress survives a weight change.
    let api: Api<Ingress> = Api::namespaced(client.clone(), NS);
    let patch = json!({"metadata": {"annotations": {"other.io/x": "1"}}});
    api.patch(
        "podinfo-canary",
        &Default::default(),
        &kube::api::Patch::Merge(&patch),
    )
    .await
    .unwrap();
    router.set_weight(60).await.unwrap();
    let ing = api.get("podinfo-canary").await.unwrap();
    let a = ing.metadata.annotations.unwrap();
    assert_eq!(a.get("other.io/x").map(String::as_str), Some("1"));
    assert!(matches!(
        router.set_weight(101).await,
        Err(RouterError::InvalidWeight(101))
    ));
    router.cleanup().await.unwrap();
    assert!(api.get_opt("podinfo-canary").await.unwrap().is_none());
    router.cleanup().await.unwrap();
}

#[tokio::test]
async fn nginx_without_the_users_ingress_is_not_found() {
    let client = builder().build().await.unwrap();
    let cfg = NginxRouter {
        ingress_ref: "missing".into(),
        ..NginxRouter::default()
    };
    let router = IngressNginxRouter::new(client, Names::of(&rollout()), cfg);
    assert!(matches!(
        router.set_weight(10).await,
        Err(RouterError::NotFound(_))
    ));
}

#[tokio::test]
async fn traefik_service_generated_and_weights_read_back() {
    let (funcs, patches) = counting_patches();
    let client = builder()
        .with_interceptor_funcs(funcs)
        .build()
        .await
        .unwrap();
    let names = Names::of(&rollout());
    let router = TraefikCrdRouter::new(client.clone(), names.clone(), &TraefikRouter::default());
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), NS, &traefik_crd::api_resource(None));
    assert_eq!(router.current_weight().await.unwrap(), None);
    for w in [0, 10, 10, 100, 0] {
        router.set_weight(w).await.unwrap();
        assert_eq!(router.current_weight().await.unwrap(), Some(w));
        let obj = api.get(APP).await.unwrap();
        let members = obj.data["spec"]["weighted"]["services"]
            .as_array()
            .unwrap()
            .clone();
        assert_eq!(members, traefik_crd::weighted_members(&names, w));
        assert!(
            members.iter().all(|m| m["weight"].as_i64() != Some(0)),
            "{members:?}"
        );
    }
    // 0 -> 10 -> (10 unchanged) -> 100 -> 0: three patches after the create.
    assert_eq!(patches.load(Ordering::SeqCst), 3);
    router.set_weight(40).await.unwrap();
    router.cleanup().await.unwrap();
    assert_eq!(router.current_weight().await.unwrap(), Some(0));
    assert!(
        api.get_opt(APP).await.unwrap().is_some(),
        "kept: IngressRoutes refer to it"
    );
}

#[tokio::test]
async fn traefik_user_service_must_exist_and_keeps_other_members() {
    let mut obj = DynamicObject::new("web", &traefik_crd::api_resource(Some("traefik.io")))
        .within(NS)
        .data(json!({"spec": {"weighted": {"services": [
            {"name": "mirror", "port": 80, "weight": 1},
            {"name": "podinfo-primary", "port": 80, "weight": 1}
        ]}}}));
    obj.types = Some(kube::api::TypeMeta {
        api_version: "traefik.io/v1alpha1".into(),
        kind: "TraefikService".into(),
    });
    let client = builder()
        .with_runtime_objects(vec![serde_json::to_value(&obj).unwrap()])
        .build()
        .await
        .unwrap();
    let names = Names::of(&rollout());
    let cfg = TraefikRouter {
        traefik_service_ref: Some("web".into()),
        api_group: None,
    };
    let router = TraefikCrdRouter::new(client.clone(), names.clone(), &cfg);
    router.set_weight(30).await.unwrap();
    assert_eq!(router.current_weight().await.unwrap(), Some(30));
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), NS, &traefik_crd::api_resource(None));
    let stored = api.get("web").await.unwrap();
    assert_eq!(
        stored.data["spec"]["weighted"]["services"][0]["name"],
        "mirror"
    );
    let missing = TraefikCrdRouter::new(
        client,
        names,
        &TraefikRouter {
            traefik_service_ref: Some("nope".into()),
            api_group: None,
        },
    );
    assert!(matches!(
        missing.set_weight(10).await,
        Err(RouterError::NotFound(_))
    ));
}

#[tokio::test]
async fn httproute_weights_round_trip_and_cleanup() {
    let route = json!({
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "podinfo", "namespace": NS},
        "spec": {
            "parentRefs": [{"name": "gw"}],
            "rules": [{"backendRefs": [{"name": "podinfo-primary", "port": 80}]}]
        }
    });
    let client = builder()
        .with_runtime_objects(vec![route])
        .build()
        .await
        .unwrap();
    let names = Names::of(&rollout());
    let ar = gateway::api_resource();
    let router = GatewayRouter::new(client.clone(), names.clone(), "podinfo".into(), Some(&ar));
    // A primary ref without weight has the default weight 1: all traffic to primary.
    assert_eq!(router.current_weight().await.unwrap(), Some(0));
    for w in [25, 100, 5] {
        router.set_weight(w).await.unwrap();
        assert_eq!(router.current_weight().await.unwrap(), Some(w));
    }
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), NS, &gateway::api_resource());
    let stored = api.get("podinfo").await.unwrap();
    assert_eq!(stored.data["spec"]["parentRefs"][0]["name"], "gw");
    router.cleanup().await.unwrap();
    let stored = api.get("podinfo").await.unwrap();
    let refs = stored.data["spec"]["rules"][0]["backendRefs"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(
        refs,
        vec![json!({"name": "podinfo-primary", "port": 80, "weight": 100})]
    );
}

#[tokio::test]
async fn nginx_compares_only_what_it_owns_and_follows_header_settings() {
    let (funcs, patches) = counting_patches();
    let mut user = user_ingress();
    // Your Ingress has TLS and no class (created before a default IngressClass existed).
    user.spec.as_mut().unwrap().ingress_class_name = None;
    user.spec.as_mut().unwrap().tls = Some(vec![k8s_openapi::api::networking::v1::IngressTLS {
        hosts: Some(vec!["podinfo.example.com".into()]),
        secret_name: Some("podinfo-tls".into()),
    }]);
    let client = builder()
        .with_object(user)
        .with_interceptor_funcs(funcs)
        .build()
        .await
        .unwrap();
    let api: Api<Ingress> = Api::namespaced(client.clone(), NS);
    let names = Names::of(&rollout());
    let mut cfg = NginxRouter {
        ingress_ref: APP.into(),
        ..NginxRouter::default()
    };
    IngressNginxRouter::new(client.clone(), names.clone(), cfg.clone())
        .set_weight(10)
        .await
        .unwrap();
    // An admission controller fills in the class on the canary Ingress.
    let class = json!({"spec": {"ingressClassName": "nginx"}});
    api.patch(
        "podinfo-canary",
        &Default::default(),
        &kube::api::Patch::Merge(&class),
    )
    .await
    .unwrap();
    let before = patches.load(Ordering::SeqCst);
    for _ in 0..3 {
        IngressNginxRouter::new(client.clone(), names.clone(), cfg.clone())
            .set_weight(10)
            .await
            .unwrap();
    }
    assert_eq!(
        patches.load(Ordering::SeqCst),
        before,
        "re-patched an unowned field"
    );

    // Header/cookie settings added later reach the canary Ingress; removed ones leave it.
    cfg.canary_by_header = Some("X-Canary".into());
    cfg.canary_by_cookie = Some("canary".into());
    IngressNginxRouter::new(client.clone(), names.clone(), cfg.clone())
        .set_weight(10)
        .await
        .unwrap();
    let a = api
        .get("podinfo-canary")
        .await
        .unwrap()
        .metadata
        .annotations
        .unwrap();
    assert_eq!(
        a.get(ingress_nginx::CANARY_BY_HEADER).map(String::as_str),
        Some("X-Canary")
    );
    assert_eq!(
        a.get(ingress_nginx::CANARY_BY_COOKIE).map(String::as_str),
        Some("canary")
    );
    cfg.canary_by_cookie = None;
    IngressNginxRouter::new(client.clone(), names.clone(), cfg.clone())
        .set_weight(10)
        .await
        .unwrap();
    let a = api
        .get("podinfo-canary")
        .await
        .unwrap()
        .metadata
        .annotations
        .unwrap();
    assert!(!a.contains_key(ingress_nginx::CANARY_BY_COOKIE), "{a:?}");
    assert!(a.contains_key(ingress_nginx::CANARY_BY_HEADER));

    // TLS removed from your Ingress is removed from the canary Ingress too.
    let no_tls = json!({"spec": {"tls": null}});
    api.patch(APP, &Default::default(), &kube::api::Patch::Merge(&no_tls))
        .await
        .unwrap();
    IngressNginxRouter::new(client.clone(), names.clone(), cfg.clone())
        .set_weight(10)
        .await
        .unwrap();
    let canary = api.get("podinfo-canary").await.unwrap();
    let spec = canary.spec.unwrap();
    assert!(spec.tls.is_none_or(|t| t.is_empty()), "tls kept");
    assert_eq!(spec.ingress_class_name.as_deref(), Some("nginx"));
}

/// A patch interceptor that first changes the object itself (as another writer would between
/// Sluice's read and its write), then lets Sluice's patch through.
fn concurrent_writer(kind: &'static str) -> (interceptor::Funcs, Arc<AtomicUsize>) {
    let n = Arc::new(AtomicUsize::new(0));
    let c = n.clone();
    let funcs = interceptor::Funcs::new().patch(move |ctx| {
        if c.fetch_add(1, Ordering::SeqCst) == 0 {
            let bump = json!({"metadata": {"labels": {"edited-by": "someone-else"}}});
            match kind {
                "Deployment" => {
                    ctx.client
                        .patch::<k8s_openapi::api::apps::v1::Deployment>(
                            ctx.namespace,
                            ctx.name,
                            &bump,
                            ctx.params,
                        )
                        .map(|_| ())?;
                }
                _ => {
                    ctx.client
                        .patch::<k8s_common::crds::TraefikService>(
                            ctx.namespace,
                            ctx.name,
                            &bump,
                            ctx.params,
                        )
                        .map(|_| ())?;
                }
            }
        }
        Ok(None)
    });
    (funcs, n)
}

fn is_conflict(e: &str) -> bool {
    e.contains("409") || e.to_lowercase().contains("conflict")
}

#[tokio::test]
async fn scaling_the_canary_is_guarded_by_the_resource_version_it_read() {
    use sluice_controller::k8s::workloads::{KubeWorkloads, Workloads};
    let (funcs, _) = concurrent_writer("Deployment");
    let client = builder()
        .with_object(target("podinfo:1.0", 3))
        .with_interceptor_funcs(funcs)
        .build()
        .await
        .unwrap();
    let w = KubeWorkloads::new(client.clone(), Names::of(&rollout()));
    let err = w
        .scale_canary(false)
        .await
        .expect_err("a stale write must fail");
    assert!(is_conflict(&err.to_string()), "{err}");
    let d = deployment(&client, APP).await.unwrap();
    assert_eq!(d.spec.unwrap().replicas, Some(3), "stale write applied");
    // The next attempt reads again and succeeds.
    w.scale_canary(false).await.unwrap();
    let d = deployment(&client, APP).await.unwrap();
    assert_eq!(d.spec.unwrap().replicas, Some(0));
    assert_eq!(d.metadata.labels.unwrap()["edited-by"], "someone-else");
}

#[tokio::test]
async fn traefik_weights_are_guarded_by_the_resource_version_they_read() {
    let (funcs, _) = concurrent_writer("TraefikService");
    let client = builder()
        .with_interceptor_funcs(funcs)
        .build()
        .await
        .unwrap();
    let router = TraefikCrdRouter::new(
        client.clone(),
        Names::of(&rollout()),
        &TraefikRouter::default(),
    );
    router.set_weight(0).await.unwrap(); // created: no patch yet
    let err = router
        .set_weight(30)
        .await
        .expect_err("a stale write must fail");
    assert!(is_conflict(&err.to_string()), "{err}");
    assert_eq!(router.current_weight().await.unwrap(), Some(0));
    router.set_weight(30).await.unwrap();
    assert_eq!(router.current_weight().await.unwrap(), Some(30));
}
