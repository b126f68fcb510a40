//! Status writes: a JSON merge patch on the status subresource computed as the difference
//! between the stored and the new status (removed fields become `null`), guarded by
//! `resourceVersion`; a 409 is retried against a fresh read.

use kube::api::{Api, Patch, PatchParams};
use serde_json::{Map, Value};
use sluice_crds::{Rollout, RolloutStatus};
use tracing::debug;

use super::error::{is_conflict, Error};
use super::workloads::FIELD_MANAGER;
use crate::notify::OutboxOps;

/// Attempts before a status write gives up (the reconcile is then retried with backoff).
pub const STATUS_ATTEMPTS: u32 = 3;

/// RFC 7386 merge patch turning `old` into `new` (None when equal).
pub fn merge_diff(old: &Value, new: &Value) -> Option<Value> {
    if old == new {
        return None;
    }
    match (old, new) {
        (Value::Object(o), Value::Object(n)) => {
            let mut out = Map::new();
            for k in o.keys() {
                if !n.contains_key(k) {
                    out.insert(k.clone(), Value::Null);
                }
            }
            for (k, nv) in n {
                match o.get(k) {
                    Some(ov) => {
                        if let Some(d) = merge_diff(ov, nv) {
                            out.insert(k.clone(), d);
                        }
                    }
                    None => {
                        out.insert(k.clone(), nv.clone());
                    }
                }
            }
            Some(Value::Object(out))
        }
        _ => Some(new.clone()),
    }
}

fn status_value(s: Option<&RolloutStatus>) -> Result<Value, Error> {
    Ok(match s {
        Some(s) => serde_json::to_value(s)?,
        None => Value::Object(Map::new()),
    })
}

/// Write `new` as the status of `rollout`. Returns false when nothing had to be written.
pub async fn write_status(
    api: &Api<Rollout>,
    rollout: &Rollout,
    new: &RolloutStatus,
) -> Result<bool, Error> {
    write_status_merged(api, rollout, new)
        .await
        .map(|(written, _)| written)
}

/// As [`write_status`], and returns the status written: after a conflict, entries the
/// notification worker settled meanwhile stay settled (`Outbox::merge_settled`), so a stale
/// copy never puts them back as pending.
pub async fn write_status_merged(
    api: &Api<Rollout>,
    rollout: &Rollout,
    new: &RolloutStatus,
) -> Result<(bool, RolloutStatus), Error> {
    let name = rollout.metadata.name.clone().unwrap_or_default();
    let mut base_status = rollout.status.clone();
    let mut rv = rollout.metadata.resource_version.clone();
    let mut new = new.clone();
    for attempt in 1..=STATUS_ATTEMPTS {
        let new_v = status_value(Some(&new))?;
        let Some(diff) = merge_diff(&status_value(base_status.as_ref())?, &new_v) else {
            return Ok((false, new));
        };
        let patch = serde_json::json!({
            "metadata": {"resourceVersion": rv},
            "status": diff,
        });
        let pp = PatchParams {
            field_manager: Some(FIELD_MANAGER.to_string()),
            ..PatchParams::default()
        };
        match api.patch_status(&name, &pp, &Patch::Merge(&patch)).await {
            Ok(_) => return Ok((true, new)),
            Err(e) if is_conflict(&e) => {
                debug!(attempt, "status write conflicted; re-reading");
                let fresh = api.get_status(&name).await?;
                if let Some(f) = &fresh.status {
                    new.notifications.merge_settled(&f.notifications);
                }
                base_status = fresh.status;
                rv = fresh.metadata.resource_version;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(Error::ConflictRetriesExhausted(STATUS_ATTEMPTS))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn diff_nulls_removed_keys_and_recurses() {
        let old = json!({"phase": "Progressing", "abort": {"reason": "x"}, "analysis": {"runs": 2, "lastRunAt": "t"}});
        let new = json!({"phase": "Idle", "analysis": {"runs": 0}});
        assert_eq!(
            merge_diff(&old, &new),
            Some(
                json!({"phase": "Idle", "abort": null, "analysis": {"runs": 0, "lastRunAt": null}})
            )
        );
        assert_eq!(merge_diff(&new, &new), None);
    }

    #[test]
    fn arrays_are_replaced_whole() {
        let old = json!({"conditions": [{"type": "Ready"}]});
        let new = json!({"conditions": [{"type": "Ready"}, {"type": "Promoted"}]});
        assert_eq!(merge_diff(&old, &new), Some(new.clone()));
    }
}
