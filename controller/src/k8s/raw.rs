//! Deployments as the API server returned them (raw JSON), so pod-template fields newer than the
//! compiled k8s-openapi version survive.
//!
//! A typed `Deployment` drops every field its Rust struct lacks: a pod-template field that a
//! newer cluster supports would vanish from `NAME-primary` and not change the revision. So the
//! target's `spec.template` is hashed and copied as raw JSON; the typed structs build only what
//! Sluice itself decides (selector, labels, replicas, annotations, owner) around it.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{ApiResource, DynamicObject};
use serde_json::Value;

use super::hash::template_hash;
use super::names::{
    PREVIOUS_REVISION_ANNOTATION, PREVIOUS_TEMPLATE_ANNOTATION, REVISION_ANNOTATION,
};

/// The Deployment resource, for `Api<DynamicObject>`.
pub fn deployment_resource() -> ApiResource {
    ApiResource::erase::<Deployment>(&())
}

/// A raw object as JSON (what the API server sent).
pub fn to_json(obj: &DynamicObject) -> Result<Value, serde_json::Error> {
    serde_json::to_value(obj)
}

/// The typed view of a raw Deployment (status, replicas, selector).
pub fn typed(raw: &Value) -> Result<Deployment, serde_json::Error> {
    serde_json::from_value(raw.clone())
}

/// Revision of a raw Deployment: the hash of its `spec.template` exactly as stored.
pub fn raw_revision(raw: &Value) -> Option<String> {
    raw.get("spec")?.get("template").map(template_hash)
}

fn annotation<'a>(raw: &'a Value, key: &str) -> Option<&'a str> {
    raw.get("metadata")?.get("annotations")?.get(key)?.as_str()
}

fn set_annotation(raw: &mut Value, key: &str, value: &str) {
    let meta = &mut raw["metadata"];
    if !meta["annotations"].is_object() {
        meta["annotations"] = Value::Object(Default::default());
    }
    meta["annotations"][key] = Value::from(value);
}

/// `primary` (built from the typed target) with the target's raw pod template, keeping the
/// template labels the primary needs (its own selector).
pub fn with_raw_template(primary: &Deployment, raw_target: &Value) -> Result<Value, String> {
    let mut out = serde_json::to_value(primary)
        .map_err(|e| format!("cannot encode the primary Deployment: {e}"))?;
    let Some(template) = raw_target.get("spec").and_then(|s| s.get("template")) else {
        return Err("the target Deployment has no spec.template".to_string());
    };
    let labels: BTreeMap<String, String> = primary
        .spec
        .as_ref()
        .and_then(|s| s.template.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    let mut template = template.clone();
    if !template["metadata"].is_object() {
        template["metadata"] = Value::Object(Default::default());
    }
    template["metadata"]["labels"] =
        serde_json::to_value(labels).map_err(|e| format!("cannot encode template labels: {e}"))?;
    out["spec"]["template"] = template;
    out["apiVersion"] = Value::from("apps/v1");
    out["kind"] = Value::from("Deployment");
    Ok(out)
}

/// Record `existing`'s raw pod template and revision on `next` (which replaces it), so a
/// post-promotion revert restores it exactly, unknown fields included. No-op when the revision
/// does not change.
pub fn keep_previous_template(next: &mut Value, existing: &Value) -> Result<(), String> {
    let Some(old_rev) = annotation(existing, REVISION_ANNOTATION).map(str::to_string) else {
        return Ok(());
    };
    if annotation(next, REVISION_ANNOTATION) == Some(old_rev.as_str()) {
        return Ok(());
    }
    let Some(old) = existing.get("spec").and_then(|s| s.get("template")) else {
        return Ok(());
    };
    let json = serde_json::to_string(old)
        .map_err(|e| format!("cannot encode the primary's pod template: {e}"))?;
    set_annotation(next, PREVIOUS_TEMPLATE_ANNOTATION, &json);
    set_annotation(next, PREVIOUS_REVISION_ANNOTATION, &old_rev);
    Ok(())
}

/// `existing` (the raw primary) put back on the pod template kept for `revision`; the template
/// it runs now becomes the kept one. Errors when no template for `revision` was kept.
pub fn reverted_primary(existing: &Value, revision: &str) -> Result<Value, String> {
    let kept = annotation(existing, PREVIOUS_REVISION_ANNOTATION);
    if kept != Some(revision) {
        return Err(format!(
            "cannot revert the primary to revision {revision}: it keeps {} (annotation {PREVIOUS_REVISION_ANNOTATION}); re-apply the previous version to roll it out",
            kept.map_or("no previous template".to_string(), |k| format!("the template of {k}"))
        ));
    }
    let raw = annotation(existing, PREVIOUS_TEMPLATE_ANNOTATION)
        .ok_or_else(|| format!("annotation {PREVIOUS_TEMPLATE_ANNOTATION} is missing"))?;
    let template: Value = serde_json::from_str(raw).map_err(|e| {
        format!("annotation {PREVIOUS_TEMPLATE_ANNOTATION} is not a pod template: {e}")
    })?;
    if !template.is_object() {
        return Err(format!(
            "annotation {PREVIOUS_TEMPLATE_ANNOTATION} is not a pod template: not an object"
        ));
    }
    let mut next = existing.clone();
    if let Some(m) = next["metadata"].as_object_mut() {
        m.remove("managedFields");
    }
    if let Some(o) = next.as_object_mut() {
        o.remove("status");
    }
    set_annotation(&mut next, REVISION_ANNOTATION, revision);
    next["spec"]["template"] = template;
    keep_previous_template(&mut next, existing)?;
    Ok(next)
}

/// A raw Deployment as the object `Api<DynamicObject>` writes.
pub fn to_dynamic(raw: Value) -> Result<DynamicObject, serde_json::Error> {
    serde_json::from_value(raw)
}
