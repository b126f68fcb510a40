//! Pure builders and readers of the Kubernetes objects behind one Rollout: the `NAME-primary`
//! Deployment, the primary/canary Services, and `WorkloadState` read from a Deployment.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::hash::template_hash;
use super::names::{
    is_managed, Names, DESIRED_REPLICAS_ANNOTATION, REVISION_ANNOTATION, ROLLOUT_LABEL,
};
use crate::core::WorkloadState;
use sluice_crds::{MANAGED_BY, MANAGED_BY_LABEL};

/// Revision of a typed Deployment's pod template. The controller hashes the raw template
/// (`raw::raw_revision`); both agree whenever the template has no field k8s-openapi lacks.
pub fn template_revision(d: &Deployment) -> Option<String> {
    let template = &d.spec.as_ref()?.template;
    serde_json::to_value(template)
        .ok()
        .map(|v| template_hash(&v))
}

/// Revision the primary was copied from (its annotation).
pub fn primary_revision(d: &Deployment) -> Option<String> {
    d.metadata
        .annotations
        .as_ref()?
        .get(REVISION_ANNOTATION)
        .cloned()
}

/// What the state machine needs to know about a Deployment. `revision` comes from the caller
/// because the target's is its template hash and the primary's is the annotation.
pub fn workload_state(d: Option<&Deployment>, revision: Option<String>) -> WorkloadState {
    let Some(d) = d else {
        return WorkloadState::default();
    };
    let replicas = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let status = d.status.clone().unwrap_or_default();
    let generation = d.metadata.generation.unwrap_or(0);
    let observed = status.observed_generation.unwrap_or(-1);
    let updated = status.updated_replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    let total = status.replicas.unwrap_or(0);
    WorkloadState {
        exists: true,
        revision,
        replicas,
        ready_replicas: updated.min(available),
        ready: observed >= generation
            && updated == replicas
            && available == replicas
            && total == replicas,
    }
}

/// The replicas the user wants for the target: its spec, or the recorded value while Sluice holds it at 0.
pub fn desired_replicas(target: &Deployment) -> i32 {
    let current = target.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    if current > 0 {
        return current;
    }
    target
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(DESIRED_REPLICAS_ANNOTATION))
        .and_then(|v| v.trim().parse::<i32>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(1)
}

/// Labels that select the canary pods, as a Service can (equality only): the target's pod
/// template labels for every key its selector names (`matchLabels`, and `matchExpressions` other
/// than `DoesNotExist`). The template's labels satisfy the selector (the API server requires
/// it), so this selects exactly the target's pods even when the selector uses `matchExpressions`.
pub fn target_selector(target: &Deployment) -> BTreeMap<String, String> {
    let Some(spec) = target.spec.as_ref() else {
        return BTreeMap::new();
    };
    let sel = &spec.selector;
    let template_labels = spec
        .template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    let mut keys: Vec<&str> = sel
        .match_labels
        .iter()
        .flatten()
        .map(|(k, _)| k.as_str())
        .collect();
    keys.extend(
        sel.match_expressions
            .iter()
            .flatten()
            .filter(|e| e.operator != "DoesNotExist")
            .map(|e| e.key.as_str()),
    );
    let from_template: BTreeMap<String, String> = keys
        .iter()
        .filter_map(|k| template_labels.get(*k).map(|v| (k.to_string(), v.clone())))
        .collect();
    if from_template.is_empty() {
        sel.match_labels.clone().unwrap_or_default()
    } else {
        from_template
    }
}

/// Why `meta` (an object named like one Sluice creates) is not this Rollout's, or None when it
/// is: Sluice's labels naming this Rollout, or an owner reference to it.
pub fn not_ours(names: &Names, kind: &str, meta: &ObjectMeta) -> Option<String> {
    let labels = meta.labels.clone().unwrap_or_default();
    let labelled = is_managed(&labels)
        && labels.get(ROLLOUT_LABEL).map(String::as_str) == Some(names.rollout.as_str());
    let owned = names.owner.as_ref().is_some_and(|o| {
        meta.owner_references
            .iter()
            .flatten()
            .any(|r| r.uid == o.uid)
    });
    if labelled || owned {
        return None;
    }
    Some(format!(
        "{kind} {}/{} already exists and is not Sluice's for Rollout {} (it has neither the labels \
         {MANAGED_BY_LABEL}={MANAGED_BY}, {ROLLOUT_LABEL}={} nor an owner reference to the \
         Rollout); Sluice does not take it over: rename or delete it, or set spec.service.name \
         (Services) or use another target name",
        names.namespace,
        meta.name.clone().unwrap_or_default(),
        names.rollout,
        names.rollout
    ))
}

/// Why the existing primary cannot be replaced by `next`: a Deployment's selector is
/// immutable, so a target whose selector changed needs its primary recreated by hand.
pub fn selector_changed(names: &Names, existing: &Deployment, next: &Deployment) -> Option<String> {
    let old = existing.spec.as_ref().map(|s| &s.selector);
    let new = next.spec.as_ref().map(|s| &s.selector);
    if old == new {
        return None;
    }
    let show = |s: Option<&LabelSelector>| {
        s.and_then(|s| s.match_labels.clone())
            .unwrap_or_default()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    Some(format!(
        "the selector of Deployment {ns}/{t} changed, so {ns}/{p} would need selector {} instead \
         of {}, and a Deployment's selector cannot change; delete {p} (kubectl -n {ns} delete \
         deployment {p}) and Sluice creates it again from {t}; until then the old primary keeps \
         serving",
        show(new),
        show(old),
        ns = names.namespace,
        t = names.target,
        p = names.primary,
    ))
}

/// The primary's own selector: every target selector value suffixed with `-primary`
/// (`app: NAME` becomes `app: NAME-primary`), so primary and canary pods never overlap.
pub fn primary_selector(target: &Deployment, names: &Names) -> BTreeMap<String, String> {
    let sel = target_selector(target);
    if sel.is_empty() {
        return BTreeMap::from([("app".to_string(), names.primary.clone())]);
    }
    sel.into_iter()
        .map(|(k, v)| (k, format!("{v}-primary")))
        .collect()
}

/// `NAME-primary`: the target's spec with its own selector, the revision annotation, managed-by
/// labels and an owner reference to the Rollout. Replicas: the existing primary's (an HPA may
/// manage them) or the user's desired replicas of the target.
pub fn primary_deployment(
    names: &Names,
    target: &Deployment,
    revision: &str,
    existing: Option<&Deployment>,
) -> Deployment {
    let selector = primary_selector(target, names);
    let mut spec = target.spec.clone().unwrap_or_default();
    spec.selector = LabelSelector {
        match_labels: Some(selector.clone()),
        match_expressions: None,
    };
    let mut tmpl_meta = spec.template.metadata.clone().unwrap_or_default();
    let mut tmpl_labels = tmpl_meta.labels.clone().unwrap_or_default();
    tmpl_labels.extend(selector.clone());
    tmpl_meta.labels = Some(tmpl_labels);
    spec.template.metadata = Some(tmpl_meta);
    let existing_replicas = existing
        .and_then(|e| e.spec.as_ref())
        .and_then(|s| s.replicas)
        .filter(|r| *r > 0);
    spec.replicas = Some(existing_replicas.unwrap_or_else(|| desired_replicas(target)));

    let mut meta = existing.map(|e| e.metadata.clone()).unwrap_or_default();
    meta.name = Some(names.primary.clone());
    meta.namespace = Some(names.namespace.clone());
    let mut labels = meta.labels.clone().unwrap_or_default();
    labels.extend(target.metadata.labels.clone().unwrap_or_default());
    labels.extend(selector);
    labels.extend(names.managed_labels());
    meta.labels = Some(labels);
    let mut annotations = meta.annotations.clone().unwrap_or_default();
    annotations.insert(REVISION_ANNOTATION.to_string(), revision.to_string());
    meta.annotations = Some(annotations);
    meta.owner_references = names.owner_references();
    meta.managed_fields = None;
    Deployment {
        metadata: meta,
        spec: Some(spec),
        status: None,
    }
}

fn service(names: &Names, name: &str, selector: BTreeMap<String, String>) -> Service {
    Service {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(names.namespace.clone()),
            labels: Some(names.managed_labels()),
            owner_references: names.owner_references(),
            ..ObjectMeta::default()
        },
        spec: Some(ServiceSpec {
            selector: Some(selector),
            ports: Some(vec![ServicePort {
                name: Some(names.port_name.clone()),
                port: names.port,
                target_port: Some(IntOrString::Int(names.target_port)),
                protocol: Some("TCP".to_string()),
                ..ServicePort::default()
            }]),
            type_: Some("ClusterIP".to_string()),
            ..ServiceSpec::default()
        }),
        status: None,
    }
}

/// `NAME-primary` Service: selects the primary pods.
pub fn primary_service(names: &Names, target: &Deployment) -> Service {
    service(
        names,
        &names.primary_service,
        primary_selector(target, names),
    )
}

/// The apex Service `BASE` (when asked for): selects the primary (serving) pods.
pub fn apex_service(names: &Names, name: &str, target: &Deployment) -> Service {
    service(names, name, primary_selector(target, names))
}

/// Merge patch that hands the apex Service back on Rollout deletion: it selects the target's
/// pods (which get their replicas back) and loses Sluice's labels and owner reference, so
/// garbage collection leaves it to its callers.
pub fn release_apex_patch(existing: &Service, target: &Deployment) -> serde_json::Value {
    let want = target_selector(target);
    let mut selector = serde_json::Map::new();
    for k in existing
        .spec
        .as_ref()
        .and_then(|s| s.selector.as_ref())
        .into_iter()
        .flatten()
        .map(|(k, _)| k)
    {
        if !want.contains_key(k) {
            selector.insert(k.clone(), serde_json::Value::Null);
        }
    }
    for (k, v) in want {
        selector.insert(k, serde_json::Value::String(v));
    }
    serde_json::json!({
        "metadata": {
            "ownerReferences": null,
            "labels": {MANAGED_BY_LABEL: null, ROLLOUT_LABEL: null}
        },
        "spec": {"selector": selector}
    })
}

/// `NAME-canary` Service: selects the target's pods.
pub fn canary_service(names: &Names, target: &Deployment) -> Service {
    service(names, &names.canary_service, target_selector(target))
}

/// Merge patch that makes `existing` route like `wanted` (selector keys it lacks are removed),
/// or None when it already does.
pub fn service_patch(existing: &Service, wanted: &Service) -> Option<serde_json::Value> {
    let e = existing.spec.clone().unwrap_or_default();
    let w = wanted.spec.clone().unwrap_or_default();
    let e_sel = e.selector.unwrap_or_default();
    let w_sel = w.selector.unwrap_or_default();
    let port_key =
        |ports: &Option<Vec<ServicePort>>| -> Vec<(Option<String>, i32, Option<IntOrString>)> {
            ports
                .iter()
                .flatten()
                .map(|p| (p.name.clone(), p.port, p.target_port.clone()))
                .collect()
        };
    if e_sel == w_sel && port_key(&e.ports) == port_key(&w.ports) {
        return None;
    }
    let mut selector = serde_json::Map::new();
    for k in e_sel.keys() {
        if !w_sel.contains_key(k) {
            selector.insert(k.clone(), serde_json::Value::Null);
        }
    }
    for (k, v) in &w_sel {
        selector.insert(k.clone(), serde_json::Value::String(v.clone()));
    }
    Some(serde_json::json!({"spec": {"selector": selector, "ports": w.ports}}))
}
