//! ingress-nginx router: Sluice owns `INGRESS-canary`, a copy of the user's Ingress whose backends
//! point at `NAME-canary`, with the `canary`/`canary-weight` (and optional header/cookie) annotations.

use std::collections::BTreeMap;

use futures::future::BoxFuture;
use k8s_openapi::api::networking::v1::{
    HTTPIngressRuleValue, Ingress, IngressBackend, IngressServiceBackend, ServiceBackendPort,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::Client;
use serde_json::json;
use sluice_crds::NginxRouter;
use tracing::info;

use super::{RouterError, TrafficRouter};
use crate::k8s::names::{is_managed, Names};

pub const CANARY: &str = "nginx.ingress.kubernetes.io/canary";
pub const CANARY_WEIGHT: &str = "nginx.ingress.kubernetes.io/canary-weight";
pub const CANARY_BY_HEADER: &str = "nginx.ingress.kubernetes.io/canary-by-header";
pub const CANARY_BY_HEADER_VALUE: &str = "nginx.ingress.kubernetes.io/canary-by-header-value";
pub const CANARY_BY_COOKIE: &str = "nginx.ingress.kubernetes.io/canary-by-cookie";
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Name of the canary Ingress for the user's Ingress `ingress`.
pub fn canary_ingress_name(ingress: &str) -> String {
    format!("{ingress}-canary")
}

fn canary_backend(names: &Names) -> IngressBackend {
    IngressBackend {
        resource: None,
        service: Some(IngressServiceBackend {
            name: names.canary_service.clone(),
            port: Some(ServiceBackendPort {
                number: Some(names.port),
                name: None,
            }),
        }),
    }
}

/// The canary Ingress for `user` at `weight` (pure; snapshot-tested).
pub fn canary_ingress(user: &Ingress, names: &Names, cfg: &NginxRouter, weight: i32) -> Ingress {
    let mut annotations: BTreeMap<String, String> = user
        .metadata
        .annotations
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|(k, _)| k != LAST_APPLIED && !k.starts_with("nginx.ingress.kubernetes.io/canary"))
        .collect();
    annotations.extend(cfg.additional_annotations.clone());
    annotations.insert(CANARY.to_string(), "true".to_string());
    annotations.insert(CANARY_WEIGHT.to_string(), weight.to_string());
    if let Some(h) = &cfg.canary_by_header {
        annotations.insert(CANARY_BY_HEADER.to_string(), h.clone());
    }
    if let Some(v) = &cfg.canary_by_header_value {
        annotations.insert(CANARY_BY_HEADER_VALUE.to_string(), v.clone());
    }
    if let Some(c) = &cfg.canary_by_cookie {
        annotations.insert(CANARY_BY_COOKIE.to_string(), c.clone());
    }
    let mut labels = user.metadata.labels.clone().unwrap_or_default();
    labels.extend(names.managed_labels());

    let mut spec = user.spec.clone().unwrap_or_default();
    if spec.default_backend.is_some() {
        spec.default_backend = Some(canary_backend(names));
    }
    for rule in spec.rules.iter_mut().flatten() {
        if let Some(HTTPIngressRuleValue { paths }) = rule.http.as_mut() {
            for p in paths.iter_mut() {
                p.backend = canary_backend(names);
            }
        }
    }
    let user_name = user.metadata.name.clone().unwrap_or_default();
    Ingress {
        metadata: ObjectMeta {
            name: Some(canary_ingress_name(&user_name)),
            namespace: Some(names.namespace.clone()),
            labels: Some(labels),
            annotations: Some(annotations),
            owner_references: names.owner_references(),
            ..ObjectMeta::default()
        },
        spec: Some(spec),
        status: None,
    }
}

/// Annotations Sluice sets only when configured: removed from the canary Ingress when not.
const OPTIONAL_OWNED: [&str; 3] = [CANARY_BY_HEADER, CANARY_BY_HEADER_VALUE, CANARY_BY_COOKIE];

/// The merge patch that makes `existing` (the stored canary Ingress) what Sluice wants, comparing
/// only what Sluice owns; None when nothing it owns differs. Owned: the annotations it sets
/// (weight, header/cookie settings, `additionalAnnotations`, those copied from your Ingress),
/// and the spec's `rules`, `tls` and `defaultBackend` (removed when your Ingress has none).
/// `ingressClassName` is compared only when your Ingress sets it: an admission controller may
/// fill it in on the canary Ingress, and a merge patch of a spec without it cannot remove it
/// anyway, so comparing it would re-patch on every reconcile.
pub fn canary_patch(
    existing: &Ingress,
    wanted: &Ingress,
) -> Result<Option<serde_json::Value>, serde_json::Error> {
    let have = existing.metadata.annotations.clone().unwrap_or_default();
    let want = wanted.metadata.annotations.clone().unwrap_or_default();
    let mut annotations = serde_json::Map::new();
    for (k, v) in &want {
        if have.get(k) != Some(v) {
            annotations.insert(k.clone(), json!(v));
        }
    }
    for k in OPTIONAL_OWNED {
        if have.contains_key(k) && !want.contains_key(k) {
            annotations.insert(k.to_string(), serde_json::Value::Null);
        }
    }
    let e = existing.spec.clone().unwrap_or_default();
    let w = wanted.spec.clone().unwrap_or_default();
    let mut spec = serde_json::Map::new();
    let empty_none = |v: &Option<Vec<k8s_openapi::api::networking::v1::IngressTLS>>| {
        v.clone().filter(|t| !t.is_empty())
    };
    if e.rules != w.rules {
        spec.insert("rules".into(), serde_json::to_value(&w.rules)?);
    }
    if empty_none(&e.tls) != empty_none(&w.tls) {
        spec.insert("tls".into(), serde_json::to_value(empty_none(&w.tls))?);
    }
    if e.default_backend != w.default_backend {
        spec.insert(
            "defaultBackend".into(),
            serde_json::to_value(&w.default_backend)?,
        );
    }
    if w.ingress_class_name.is_some() && e.ingress_class_name != w.ingress_class_name {
        spec.insert(
            "ingressClassName".into(),
            serde_json::to_value(&w.ingress_class_name)?,
        );
    }
    let mut patch = serde_json::Map::new();
    if !annotations.is_empty() {
        patch.insert("metadata".into(), json!({ "annotations": annotations }));
    }
    if !spec.is_empty() {
        patch.insert("spec".into(), serde_json::Value::Object(spec));
    }
    Ok((!patch.is_empty()).then_some(serde_json::Value::Object(patch)))
}

/// Canary weight held by a canary Ingress (None: annotation missing or not a number).
pub fn weight_of(ing: &Ingress) -> Option<i32> {
    let a = ing.metadata.annotations.as_ref()?;
    if a.get(CANARY).map(String::as_str) != Some("true") {
        return None;
    }
    a.get(CANARY_WEIGHT)?.trim().parse().ok()
}

/// Map a kube error into the router's error type.
pub fn kube_err(e: kube::Error) -> RouterError {
    match &e {
        kube::Error::Api(s) if s.code == 404 => RouterError::NotFound(s.message.clone()),
        kube::Error::Api(s) if matches!(s.code, 400 | 403 | 422) => {
            RouterError::Rejected(format!("{} ({})", s.message, s.code))
        }
        _ => RouterError::Kube(e.to_string()),
    }
}

/// The ingress-nginx router of one Rollout.
pub struct IngressNginxRouter {
    api: Api<Ingress>,
    names: Names,
    cfg: NginxRouter,
}

impl IngressNginxRouter {
    pub fn new(client: Client, names: Names, cfg: NginxRouter) -> Self {
        Self {
            api: Api::namespaced(client, &names.namespace),
            names,
            cfg,
        }
    }

    fn canary_name(&self) -> String {
        canary_ingress_name(&self.cfg.ingress_ref)
    }
}

fn pp() -> PatchParams {
    PatchParams {
        field_manager: Some(crate::k8s::workloads::FIELD_MANAGER.to_string()),
        ..PatchParams::default()
    }
}

impl TrafficRouter for IngressNginxRouter {
    fn set_weight(&self, weight: i32) -> BoxFuture<'_, Result<(), RouterError>> {
        Box::pin(async move {
            if !(0..=100).contains(&weight) {
                return Err(RouterError::InvalidWeight(weight));
            }
            let user = self
                .api
                .get(&self.cfg.ingress_ref)
                .await
                .map_err(kube_err)?;
            let wanted = canary_ingress(&user, &self.names, &self.cfg, weight);
            let name = self.canary_name();
            match self.api.get_opt(&name).await.map_err(kube_err)? {
                None => {
                    self.api
                        .create(&PostParams::default(), &wanted)
                        .await
                        .map_err(kube_err)?;
                    info!(ingress = %name, weight, "created canary ingress");
                }
                Some(existing) => {
                    let patch = canary_patch(&existing, &wanted)
                        .map_err(|e| RouterError::Io(e.to_string()))?;
                    if let Some(patch) = patch {
                        self.api
                            .patch(&name, &pp(), &Patch::Merge(&patch))
                            .await
                            .map_err(kube_err)?;
                        info!(ingress = %name, weight, "patched canary ingress");
                    }
                }
            }
            Ok(())
        })
    }

    fn current_weight(&self) -> BoxFuture<'_, Result<Option<i32>, RouterError>> {
        Box::pin(async move {
            let ing = self
                .api
                .get_opt(&self.canary_name())
                .await
                .map_err(kube_err)?;
            Ok(ing.as_ref().and_then(weight_of))
        })
    }

    fn cleanup(&self) -> BoxFuture<'_, Result<(), RouterError>> {
        Box::pin(async move {
            let name = self.canary_name();
            let Some(ing) = self.api.get_opt(&name).await.map_err(kube_err)? else {
                return Ok(());
            };
            if !is_managed(&ing.metadata.labels.clone().unwrap_or_default()) {
                return Ok(());
            }
            match self.api.delete(&name, &Default::default()).await {
                Ok(_) => {
                    info!(ingress = %name, "deleted canary ingress");
                    Ok(())
                }
                Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
                Err(e) => Err(kube_err(e)),
            }
        })
    }
}
