//! Rollouts as the API server stores them, which are not always what the types can decode.
//!
//! The API server stores what its schema allows; an object written before a schema tightened (or
//! past rules it does not enforce, such as `format: int32`) still fails to decode. A typed LIST
//! then fails as a whole and kube-runtime's watcher retries it forever, so no Rollout in scope is
//! reconciled. The controller therefore watches [`GuardedRollout`]s (kube's `DeserializeGuard`):
//! an undecodable one gets a log line and one Warning Event per resourceVersion, every other
//! Rollout is reconciled as usual.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::ObjectReference;
use kube::core::error_boundary::InvalidObject;
use kube::core::DeserializeGuard;
use kube::runtime::controller::Action;
use kube::Resource;
use sluice_crds::Rollout;
use tracing::{error, warn};

use super::context::Context;
use super::error::Error;
use super::events::kube_event;
use super::reconcile::{error_policy, reconcile};
use crate::core::EventType;

/// A Rollout, or the metadata and decode error of one that is not readable.
pub type GuardedRollout = DeserializeGuard<Rollout>;

/// Event reason for a Rollout the controller cannot read.
pub const REASON_UNDECODABLE: &str = "Undecodable";

/// The decodable Rollouts of a guarded list or store.
pub fn decoded(items: &[Arc<GuardedRollout>]) -> Vec<Arc<Rollout>> {
    items
        .iter()
        .filter_map(|g| g.0.as_ref().ok().map(|r| Arc::new(r.clone())))
        .collect()
}

/// What a person reads about an undecodable Rollout.
pub fn undecodable_message(invalid: &InvalidObject) -> String {
    format!(
        "cannot read this Rollout ({}); it is not reconciled until it is fixed: correct the field \
         (kubectl edit) or delete and re-apply it against the installed CRD",
        invalid.error
    )
}

/// Remembers which (uid, resourceVersion) were already reported, so one bad version yields one
/// Event however often it is seen (resyncs, leadership changes).
#[derive(Default)]
pub struct Reported(Mutex<HashSet<(String, String)>>);

impl Reported {
    /// True the first time this version is seen.
    pub fn first(&self, invalid: &InvalidObject) -> bool {
        let key = (
            invalid.metadata.uid.clone().unwrap_or_default(),
            invalid
                .metadata
                .resource_version
                .clone()
                .unwrap_or_default(),
        );
        match self.0.lock() {
            Ok(mut seen) => seen.insert(key),
            // A poisoned set only means a panic elsewhere: report again rather than stay silent.
            Err(_) => true,
        }
    }
}

fn object_reference(invalid: &InvalidObject) -> ObjectReference {
    let m = &invalid.metadata;
    ObjectReference {
        api_version: Some(Rollout::api_version(&()).into_owned()),
        kind: Some(Rollout::kind(&()).into_owned()),
        name: m.name.clone(),
        namespace: m.namespace.clone(),
        uid: m.uid.clone(),
        resource_version: m.resource_version.clone(),
        ..ObjectReference::default()
    }
}

/// The controller's reconcile: decodable Rollouts go to [`reconcile`]; an undecodable one is
/// reported and waits for the next change of that object.
pub async fn reconcile_guarded(
    obj: Arc<GuardedRollout>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    match &obj.0 {
        Ok(rollout) => reconcile(Arc::new(rollout.clone()), ctx).await,
        Err(invalid) => {
            report_undecodable(invalid, &ctx).await;
            Ok(Action::await_change())
        }
    }
}

async fn report_undecodable(invalid: &InvalidObject, ctx: &Context) {
    let ns = invalid.metadata.namespace.clone().unwrap_or_default();
    let name = invalid.metadata.name.clone().unwrap_or_default();
    let message = undecodable_message(invalid);
    error!(namespace = %ns, rollout = %name, error = %invalid.error, "{message}");
    if !ctx.is_leader() || !ctx.undecodable.first(invalid) {
        return;
    }
    let ev = kube_event(EventType::Warning, REASON_UNDECODABLE, &message);
    if let Err(e) = ctx.recorder.publish(&ev, &object_reference(invalid)).await {
        warn!(error = %e, "could not publish event");
    }
}

/// `error_policy` for guarded objects (only decodable Rollouts can fail a reconcile).
pub fn error_policy_guarded(obj: Arc<GuardedRollout>, error: &Error, ctx: Arc<Context>) -> Action {
    match &obj.0 {
        Ok(rollout) => error_policy(Arc::new(rollout.clone()), error, ctx),
        Err(invalid) => {
            warn!(rollout = %invalid.metadata.name.clone().unwrap_or_default(), %error, "reconcile error");
            Action::await_change()
        }
    }
}
