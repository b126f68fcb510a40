//! Names, labels and owner references of the objects Sluice creates for one Rollout.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::{Resource, ResourceExt};
use sluice_crds::{Rollout, MANAGED_BY, MANAGED_BY_LABEL};

/// Annotation on `NAME-primary`: the target revision (pod-template hash) it was copied from.
pub const REVISION_ANNOTATION: &str = "sluice.dev/revision";
/// On `NAME-primary`: the pod template it ran before its last template change (JSON), and
/// that template's revision; what a post-promotion revert restores.
pub const PREVIOUS_TEMPLATE_ANNOTATION: &str = "sluice.dev/previous-template";
pub const PREVIOUS_REVISION_ANNOTATION: &str = "sluice.dev/previous-revision";
/// Annotation on the target: the user's replicas, recorded when Sluice scales it to zero.
pub const DESIRED_REPLICAS_ANNOTATION: &str = "sluice.dev/desired-replicas";
/// Label on created objects naming the Rollout that owns them.
pub const ROLLOUT_LABEL: &str = "sluice.dev/rollout";

/// Everything the workloads and routers need to name things for one Rollout.
#[derive(Debug, Clone, PartialEq)]
pub struct Names {
    pub namespace: String,
    pub rollout: String,
    /// The user's Deployment (`NAME`, the canary during a rollout).
    pub target: String,
    /// `NAME-primary` Deployment.
    pub primary: String,
    /// Service in front of the primary pods.
    pub primary_service: String,
    /// Service in front of the target (canary) pods.
    pub canary_service: String,
    /// The apex Service `BASE` (selecting the primary pods), when the Rollout asks for one.
    pub apex_service: Option<String>,
    pub port: i32,
    pub target_port: i32,
    pub port_name: String,
    /// Controller owner reference to the Rollout (None when the Rollout has no uid yet).
    pub owner: Option<OwnerReference>,
}

impl Names {
    /// Names for `rollout`; the namespace falls back to `default` only for objects never stored.
    pub fn of(rollout: &Rollout) -> Self {
        let spec = &rollout.spec;
        let target = spec.target_ref.name.clone();
        let base = spec.service.name.clone().unwrap_or_else(|| target.clone());
        Self {
            namespace: rollout.namespace().unwrap_or_else(|| "default".to_string()),
            rollout: rollout.name_any(),
            primary: format!("{target}-primary"),
            target,
            primary_service: format!("{base}-primary"),
            apex_service: spec.service.apex.then(|| base.clone()),
            // Blue/green may name its preview Service; it is the canary Service then.
            canary_service: spec
                .strategy
                .blue_green
                .as_ref()
                .and_then(|b| b.preview_service.clone())
                .unwrap_or_else(|| format!("{base}-canary")),
            port: spec.service.port,
            target_port: spec.service.target_port.unwrap_or(spec.service.port),
            port_name: spec
                .service
                .port_name
                .clone()
                .unwrap_or_else(|| "http".to_string()),
            owner: rollout.controller_owner_ref(&()),
        }
    }

    /// In-cluster `host:port` of the canary Service (cluster DNS `SERVICE.NAMESPACE.svc`).
    pub fn canary_address(&self) -> String {
        format!(
            "{}.{}.svc:{}",
            self.canary_service, self.namespace, self.port
        )
    }

    /// In-cluster `host:port` of the primary (stable) Service.
    pub fn primary_address(&self) -> String {
        format!(
            "{}.{}.svc:{}",
            self.primary_service, self.namespace, self.port
        )
    }

    /// Labels every object Sluice creates carries.
    pub fn managed_labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (MANAGED_BY_LABEL.to_string(), MANAGED_BY.to_string()),
            (ROLLOUT_LABEL.to_string(), self.rollout.clone()),
        ])
    }

    pub fn owner_references(&self) -> Option<Vec<OwnerReference>> {
        self.owner.clone().map(|o| vec![o])
    }
}

/// True when the labels say Sluice created the object.
pub fn is_managed(labels: &BTreeMap<String, String>) -> bool {
    labels.get(MANAGED_BY_LABEL).map(String::as_str) == Some(MANAGED_BY)
}
