//! Snapshot tests of the objects Sluice generates: primary Deployment, Services, canary Ingress,
//! TraefikService members and HTTPRoute rules at several weights; plus readiness/revision reading.

mod k8s_common;

use k8s_common::*;
use serde_json::json;
use sluice_controller::k8s::names::Names;
use sluice_controller::k8s::objects::{
    canary_service, desired_replicas, primary_deployment, primary_service, template_revision,
    workload_state,
};
use sluice_controller::router::{gateway, ingress_nginx, traefik_crd};
use sluice_crds::NginxRouter;

fn names() -> Names {
    Names::of(&rollout())
}

#[test]
fn primary_deployment_is_a_relabelled_copy() {
    let t = target("podinfo:1.0", 3);
    let rev = template_revision(&t).unwrap();
    let p = primary_deployment(&names(), &t, &rev, None);
    insta::assert_yaml_snapshot!(p);
    // The primary's pods must not match the target's selector, or canary and stable would mix.
    let labels = p.spec.unwrap().template.metadata.unwrap().labels.unwrap();
    assert_eq!(
        labels.get("app").map(String::as_str),
        Some("podinfo-primary")
    );
}

#[test]
fn services_select_primary_and_target_pods() {
    let t = target("podinfo:1.0", 3);
    insta::assert_yaml_snapshot!("primary_service", primary_service(&names(), &t));
    insta::assert_yaml_snapshot!("canary_service", canary_service(&names(), &t));
}

#[test]
fn revision_changes_with_the_template_only() {
    let a = target("podinfo:1.0", 3);
    let b = target("podinfo:1.0", 5);
    let c = target("podinfo:2.0", 3);
    assert_eq!(template_revision(&a), template_revision(&b));
    assert_ne!(template_revision(&a), template_revision(&c));
}

#[test]
fn readiness_needs_observed_generation_and_all_replicas() {
    let mut d = target("podinfo:1.0", 3);
    d.metadata.generation = Some(2);
    let mut status: k8s_openapi::api::apps::v1::DeploymentStatus = serde_json::from_value(
        json!({"observedGeneration": 1, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 3}),
    )
    .unwrap();
    d.status = Some(status.clone());
    assert!(
        !workload_state(Some(&d), None).ready,
        "stale observedGeneration"
    );
    status.observed_generation = Some(2);
    status.available_replicas = Some(2);
    d.status = Some(status.clone());
    let s = workload_state(Some(&d), Some("r".into()));
    assert!(!s.ready);
    assert_eq!(s.ready_replicas, 2);
    status.available_replicas = Some(3);
    d.status = Some(status);
    assert!(workload_state(Some(&d), None).ready);
    assert!(!workload_state(None, None).exists);
}

#[test]
fn desired_replicas_come_back_from_the_annotation() {
    let mut d = target("podinfo:1.0", 0);
    assert_eq!(desired_replicas(&d), 1);
    d.metadata.annotations = Some(
        [("sluice.dev/desired-replicas".to_string(), "4".to_string())]
            .into_iter()
            .collect(),
    );
    assert_eq!(desired_replicas(&d), 4);
}

#[test]
fn canary_ingress_at_several_weights() {
    let cfg = NginxRouter {
        ingress_ref: APP.into(),
        ..NginxRouter::default()
    };
    for w in [0, 20, 100] {
        let ing = ingress_nginx::canary_ingress(&user_ingress(), &names(), &cfg, w);
        assert_eq!(ingress_nginx::weight_of(&ing), Some(w));
        insta::assert_yaml_snapshot!(format!("canary_ingress_{w}"), ing);
    }
}

#[test]
fn canary_ingress_with_header_and_cookie() {
    let cfg = NginxRouter {
        ingress_ref: APP.into(),
        canary_by_header: Some("X-Canary".into()),
        canary_by_header_value: Some("yes".into()),
        canary_by_cookie: Some("canary".into()),
        additional_annotations: [("example.com/team".to_string(), "web".to_string())]
            .into_iter()
            .collect(),
    };
    let ing = ingress_nginx::canary_ingress(&user_ingress(), &names(), &cfg, 10);
    insta::assert_yaml_snapshot!(ing.metadata.annotations);
}

#[test]
fn traefik_members_leave_zero_weights_out() {
    let n = names();
    for w in [0, 30, 100] {
        let members = traefik_crd::weighted_members(&n, w);
        let data = json!({"spec": {"weighted": {"services": members}}});
        assert_eq!(traefik_crd::weight_of(&data, &n), Some(w));
        insta::assert_yaml_snapshot!(format!("traefik_members_{w}"), members);
    }
    let ar = traefik_crd::api_resource(Some("traefik.containo.us"));
    let obj = traefik_crd::traefik_service(&ar, APP, &n, 25);
    insta::assert_yaml_snapshot!("traefik_service_containo_25", obj);
}

#[test]
fn traefik_keeps_foreign_members() {
    let n = names();
    let existing = json!({"spec": {"weighted": {"services": [
        {"name": "mirror", "port": 80, "weight": 1},
        {"name": "podinfo-primary", "port": 80, "weight": 100}
    ]}}});
    let merged = traefik_crd::merged_members(Some(&existing), &n, 40);
    insta::assert_yaml_snapshot!(merged);
}

#[test]
fn httproute_rules_at_several_weights() {
    let n = names();
    let spec = json!({
        "parentRefs": [{"name": "gw"}],
        "rules": [
            {"matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
             "backendRefs": [{"name": "podinfo-primary", "port": 80}]},
            {"backendRefs": [{"name": "other", "port": 8080}]}
        ]
    });
    for w in [0, 25, 100] {
        let rules = gateway::rules_with_weight(&spec, &n, Some(w));
        assert_eq!(
            gateway::weight_of(&json!({"rules": rules.clone()}), &n),
            Some(w)
        );
        insta::assert_yaml_snapshot!(format!("httproute_rules_{w}"), rules);
    }
    let at25 = json!({"rules": gateway::rules_with_weight(&spec, &n, Some(25))});
    let cleaned = gateway::rules_with_weight(&at25, &n, None);
    assert_eq!(
        gateway::weight_of(&json!({"rules": cleaned.clone()}), &n),
        Some(0)
    );
    assert!(!cleaned.to_string().contains("podinfo-canary"));
}

#[test]
fn deployment_changes_map_to_their_rollout() {
    use sluice_controller::k8s::run::rollouts_for_deployment;
    use std::sync::Arc;
    let mut other = rollout();
    other.metadata.name = Some("other".into());
    other.spec.target_ref.name = "other".into();
    let rollouts = vec![Arc::new(rollout()), Arc::new(other)];
    let mut d = target("podinfo:1.0", 1);
    let hit = |d: &k8s_openapi::api::apps::v1::Deployment| {
        rollouts_for_deployment(&rollouts, d)
            .into_iter()
            .map(|r| r.name)
            .collect::<Vec<_>>()
    };
    assert_eq!(hit(&d), vec!["podinfo"]);
    d.metadata.name = Some("podinfo-primary".into());
    assert_eq!(hit(&d), vec!["podinfo"]);
    d.metadata.namespace = Some("elsewhere".into());
    assert!(hit(&d).is_empty());
    d.metadata.namespace = Some(NS.into());
    d.metadata.name = Some("unrelated".into());
    assert!(hit(&d).is_empty());
}
