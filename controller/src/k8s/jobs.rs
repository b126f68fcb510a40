//! Job checks (`metrics[].job`, Kubernetes only): a `batch/v1` Job run from the metric's
//! JobSpec, judged by how it ends. One Job at a time per metric; its name and the count of Jobs
//! run so far live in the metric's persisted state (`status.analysis.metrics[].sequentialState`),
//! so a restarted controller reads the same Job instead of starting another.
//!
//! A run with no Job in flight creates one (outcome Pending: no counter moves). Later runs read
//! it: still running → Pending; condition `Complete=True` → Pass, and the pass holds for the rest
//! of this canary revision (no second Job); `Failed=True` → Fail, with the Job's condition
//! message and the last lines of its newest pod's log; the next run starts a new Job, so
//! `failureLimit` retries. A Job that disappeared is an Error. Read Jobs are deleted (pods with
//! them, propagation Background); the owner reference to the Rollout removes any left over.
//!
//! Kubernetes facts relied on (batch/v1 Job API reference, and "Jobs" in the Kubernetes docs):
//! a finished Job has condition `Complete` or `Failed` with status `True`; the Job controller
//! labels its pods `batch.kubernetes.io/job-name` with the Job's name (k8s.io/api batch/v1
//! `JobNameLabel`, set since Kubernetes 1.27; the chart's minimum is 1.28), beside the legacy
//! `job-name`; `activeDeadlineSeconds` makes a Job fail with reason `DeadlineExceeded`.

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams, LogParams, PostParams, PropagationPolicy};
use kube::Client;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sluice_crds::JobCheck;

use super::error::{is_conflict, is_not_found};
use super::names::Names;
use crate::core::{MetricOutcome, VerdictKind};

/// `activeDeadlineSeconds` when the JobSpec sets none.
pub const DEFAULT_DEADLINE_SECONDS: i64 = 600;
/// Label on check Jobs naming the metric.
pub const CHECK_LABEL: &str = "sluice.dev/check";
/// Label on check Jobs naming the canary revision they check.
pub const CHECK_REVISION_LABEL: &str = "sluice.dev/revision";
/// Seconds a finished check Job may outlive its reading (Kubernetes' TTL-after-finished
/// controller deletes it), for a Job whose rollout moved on before reading it.
pub const TTL_AFTER_FINISHED_SECONDS: i64 = 3600;
/// Log lines of a failed Job's pod quoted in the reason.
const LOG_LINES: i64 = 5;

/// What a job metric remembers between runs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobState {
    /// The Job in flight, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
    /// Jobs started so far for this revision.
    #[serde(default)]
    pub runs: u32,
    /// The revision a Job passed for (a pass holds for that revision).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passed: Option<String>,
}

/// How a Job stands, from its status (pure).
#[derive(Debug, Clone, PartialEq)]
pub enum JobResult {
    Running { active: i64 },
    Succeeded,
    Failed { why: String },
}

/// Reads the `Complete` / `Failed` conditions of a Job's status.
pub fn job_result(status: Option<&Value>) -> JobResult {
    let conditions = status
        .and_then(|s| s.get("conditions"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let is_true = |c: &Value, t: &str| c["type"] == t && c["status"] == "True";
    if conditions.iter().any(|c| is_true(c, "Complete")) {
        return JobResult::Succeeded;
    }
    if let Some(c) = conditions.iter().find(|c| is_true(c, "Failed")) {
        let reason = c["reason"].as_str().unwrap_or("Failed");
        let message = c["message"].as_str().unwrap_or_default();
        let why = if message.is_empty() {
            reason.to_string()
        } else {
            format!("{reason}: {message}")
        };
        return JobResult::Failed { why };
    }
    JobResult::Running {
        active: status
            .and_then(|s| s["active"].as_i64())
            .unwrap_or_default(),
    }
}

/// A DNS-1123 label for the `n`th Job of `metric` for `revision`: `ROLLOUT-METRIC-REV-N` (the
/// first 8 characters of the revision), shortened to 63. The revision is in the name so that a
/// Job of an earlier canary revision is never taken for this one's.
pub fn job_name(rollout: &str, metric: &str, revision: &str, n: u32) -> String {
    let rev: String = dns_part(revision).chars().take(8).collect();
    let suffix = format!("-{rev}-{n}");
    let mut base = format!("{rollout}-{}", dns_part(metric));
    base.truncate(63 - suffix.len());
    format!("{}{suffix}", base.trim_end_matches('-'))
}

/// Lower-case letters, digits and `-`, at most 63, no `-` at either end.
fn dns_part(s: &str) -> String {
    let mut clean: String = s
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    clean.truncate(63);
    clean.trim_matches('-').to_string()
}

/// The Job object for a check (pure): the user's JobSpec with Sluice's names, labels, owner,
/// a default deadline and the rollout's addresses in every container's environment.
pub fn build_job(
    names: &Names,
    metric: &str,
    check: &JobCheck,
    name: &str,
    revision: &str,
) -> Result<Value, String> {
    let mut spec = check.spec.clone();
    if !spec.is_object() {
        return Err("job.spec must be a JobSpec object".into());
    }
    if spec.get("activeDeadlineSeconds").is_none() {
        spec["activeDeadlineSeconds"] = json!(DEFAULT_DEADLINE_SECONDS);
    }
    if spec.get("ttlSecondsAfterFinished").is_none() {
        spec["ttlSecondsAfterFinished"] = json!(TTL_AFTER_FINISHED_SECONDS);
    }
    let env = [
        ("SLUICE_ROLLOUT", names.rollout.clone()),
        ("SLUICE_REVISION", revision.to_string()),
        ("SLUICE_CANARY_ADDRESS", names.canary_address()),
        ("SLUICE_STABLE_ADDRESS", names.primary_address()),
    ];
    let containers = spec
        .pointer_mut("/template/spec/containers")
        .and_then(Value::as_array_mut)
        .filter(|c| !c.is_empty())
        .ok_or("job.spec needs template.spec.containers")?;
    for c in containers.iter_mut() {
        let list = c
            .as_object_mut()
            .ok_or("a container of job.spec is not an object")?
            .entry("env")
            .or_insert_with(|| json!([]));
        let list = list
            .as_array_mut()
            .ok_or("a container's env is not a list")?;
        list.retain(|e| !env.iter().any(|(k, _)| e["name"] == *k));
        list.extend(env.iter().map(|(k, v)| json!({"name": k, "value": v})));
    }
    let mut labels = serde_json::Map::new();
    for (k, v) in names.managed_labels() {
        labels.insert(k, json!(v));
    }
    labels.insert(CHECK_LABEL.into(), json!(dns_part(metric)));
    labels.insert(CHECK_REVISION_LABEL.into(), json!(dns_part(revision)));
    Ok(json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": names.namespace,
            "labels": labels,
            "ownerReferences": names.owner_references(),
        },
        "spec": spec,
    }))
}

fn outcome(
    name: &str,
    verdict: VerdictKind,
    value: Option<f64>,
    reason: String,
    st: &JobState,
) -> MetricOutcome {
    MetricOutcome {
        name: name.to_string(),
        verdict,
        value,
        reason,
        sequential_state: serde_json::to_value(st).ok(),
        forecast: None,
    }
}

/// Whether an existing Job is the one this check would create (labels of this Rollout and
/// revision).
fn is_this_check(j: &Job, names: &Names, revision: &str) -> bool {
    let labels = j.metadata.labels.clone().unwrap_or_default();
    labels.get(super::names::ROLLOUT_LABEL) == Some(&names.rollout)
        && labels.get(CHECK_REVISION_LABEL).map(String::as_str) == Some(dns_part(revision).as_str())
}

fn started(metric: &str, mut st: JobState, name: &str) -> MetricOutcome {
    st.job = Some(name.to_string());
    st.runs += 1;
    let reason = format!("started Job {name}");
    outcome(metric, VerdictKind::Pending, None, reason, &st)
}

/// Runs one step of a job check (see the module docs).
pub async fn run_job_check(
    client: &Client,
    names: &Names,
    metric: &str,
    check: &JobCheck,
    revision: &str,
    saved: Option<&Value>,
) -> MetricOutcome {
    let mut st: JobState = saved
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default();
    if st.passed.as_deref() == Some(revision) {
        return outcome(
            metric,
            VerdictKind::Pass,
            Some(1.0),
            format!("a Job passed for {revision}"),
            &st,
        );
    }
    let api: Api<Job> = Api::namespaced(client.clone(), &names.namespace);
    let Some(name) = st.job.clone() else {
        let name = job_name(&names.rollout, metric, revision, st.runs + 1);
        let job = match build_job(names, metric, check, &name, revision)
            .and_then(|v| serde_json::from_value::<Job>(v).map_err(|e| format!("job.spec: {e}")))
        {
            Ok(j) => j,
            Err(e) => return outcome(metric, VerdictKind::Error, None, e, &st),
        };
        // 409: a Job of this name exists, created by an earlier run whose status write was
        // lost; it is read from the next run on.
        return match api.create(&PostParams::default(), &job).await {
            Ok(_) => started(metric, st, &name),
            Err(e) if is_conflict(&e) => match api.get_opt(&name).await {
                Ok(Some(j)) if is_this_check(&j, names, revision) => started(metric, st, &name),
                _ => outcome(
                    metric,
                    VerdictKind::Error,
                    None,
                    format!(
                        "a Job {}/{name} exists that is not this check's: delete or rename it",
                        names.namespace
                    ),
                    &st,
                ),
            },
            Err(e) => outcome(
                metric,
                VerdictKind::Error,
                None,
                format!("cannot create Job {name}: {e}"),
                &st,
            ),
        };
    };
    let job = match api.get_opt(&name).await {
        Ok(Some(j)) => j,
        Ok(None) => {
            st.job = None;
            let why = format!(
                "Job {}/{name} disappeared before it finished",
                names.namespace
            );
            return outcome(metric, VerdictKind::Error, None, why, &st);
        }
        Err(e) => {
            return outcome(
                metric,
                VerdictKind::Error,
                None,
                format!("cannot read Job {name}: {e}"),
                &st,
            )
        }
    };
    let status = job
        .status
        .as_ref()
        .and_then(|s| serde_json::to_value(s).ok());
    let result = job_result(status.as_ref());
    let (verdict, value, reason) = match &result {
        JobResult::Running { active } => {
            let r = format!("Job {name} running ({active} active pods)");
            return outcome(metric, VerdictKind::Pending, None, r, &st);
        }
        JobResult::Succeeded => {
            st.passed = Some(revision.to_string());
            (
                VerdictKind::Pass,
                Some(1.0),
                format!("Job {name} succeeded"),
            )
        }
        JobResult::Failed { why } => {
            let logs = last_log_lines(client, names, &name).await;
            (
                VerdictKind::Fail,
                Some(0.0),
                format!("Job {name} failed ({why}){logs}"),
            )
        }
    };
    st.job = None;
    let dp = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        ..DeleteParams::default()
    };
    if let Err(e) = api.delete(&name, &dp).await {
        if !is_not_found(&e) {
            tracing::warn!(job = %name, error = %e, "cannot delete a finished check Job");
        }
    }
    outcome(metric, verdict, value, reason, &st)
}

/// `; log: …` with the last lines of the Job's newest pod, or why there are none.
async fn last_log_lines(client: &Client, names: &Names, job: &str) -> String {
    let pods: Api<Pod> = Api::namespaced(client.clone(), &names.namespace);
    let lp = ListParams::default().labels(&format!("batch.kubernetes.io/job-name={job}"));
    let newest = match pods.list(&lp).await {
        Ok(l) => l
            .items
            .into_iter()
            .max_by_key(|p| p.metadata.creation_timestamp.clone().map(|t| t.0)),
        Err(e) => return format!("; no log ({e})"),
    };
    let Some(pod) = newest.and_then(|p| p.metadata.name) else {
        return "; no pod left to read a log from".to_string();
    };
    let params = LogParams {
        tail_lines: Some(LOG_LINES),
        ..LogParams::default()
    };
    match pods.logs(&pod, &params).await {
        Ok(text) => {
            let lines: Vec<&str> = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect();
            if lines.is_empty() {
                format!("; pod {pod} logged nothing")
            } else {
                format!("; log of {pod}: {}", lines.join(" | "))
            }
        }
        Err(e) => format!("; no log of {pod} ({e})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_dns_labels_of_at_most_63() {
        assert_eq!(
            job_name("web", "Smoke Test", "9f3A1c77d2e4b5a0", 1),
            "web-smoke-test-9f3a1c77-1"
        );
        let long = job_name(&"r".repeat(50), &"m".repeat(50), "v2", 12);
        assert_eq!(long.len(), 63);
        assert!(long.ends_with("-v2-12"));
    }

    #[test]
    fn status_conditions_decide() {
        assert_eq!(job_result(None), JobResult::Running { active: 0 });
        let running = json!({"active": 1});
        assert_eq!(job_result(Some(&running)), JobResult::Running { active: 1 });
        let done = json!({"conditions": [{"type": "Complete", "status": "True"}]});
        assert_eq!(job_result(Some(&done)), JobResult::Succeeded);
        let failed = json!({"conditions": [{"type": "Failed", "status": "True",
            "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"}]});
        assert_eq!(
            job_result(Some(&failed)),
            JobResult::Failed {
                why: "BackoffLimitExceeded: Job has reached the specified backoff limit".into()
            }
        );
        let suspended = json!({"conditions": [{"type": "Failed", "status": "False"}]});
        assert_eq!(
            job_result(Some(&suspended)),
            JobResult::Running { active: 0 }
        );
    }
}
