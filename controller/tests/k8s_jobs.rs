//! Job checks on the in-memory API: a Rollout whose analysis step has a `job` metric gets a Job
//! built from its JobSpec (Sluice's name, labels, owner, deadline, the canary's address in the
//! environment); the Job's success promotes the canary and its failure aborts it with the
//! Job's reason; read Jobs are deleted; a vanished Job is an error. The fake runs no Job
//! controller, so the test writes the Job status a real one would (conditions `Complete` /
//! `Failed` = True).

mod k8s_common;

use std::sync::Arc;

use k8s_openapi::api::batch::v1::Job;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::Client;
use serde_json::json;
use sluice_analysis::FakeMetricsSource;
use sluice_controller::clock::ManualClock;
use sluice_controller::k8s::analysis::BridgeAnalysis;
use sluice_controller::k8s::{reconcile, Context};
use sluice_crds::{AnalysisSpec, CanaryStep, JobCheck, MetricSpec, Rollout};

use k8s_common::*;

fn job_rollout() -> Rollout {
    let mut r = rollout();
    if let Some(c) = r.spec.strategy.canary.as_mut() {
        c.steps = vec![
            CanaryStep::weight(20),
            CanaryStep::analyse(),
            CanaryStep::weight(50),
        ];
    }
    r.spec.analysis = Some(AnalysisSpec {
        interval: "1m".into(),
        failure_limit: 0,
        error_limit: 0,
        metrics: vec![MetricSpec {
            name: "Smoke".into(),
            job: Some(JobCheck {
                spec: json!({
                    "backoffLimit": 0,
                    "template": {"spec": {
                        "restartPolicy": "Never",
                        "containers": [{"name": "smoke", "image": "curlimages/curl:8.11.0",
                            "args": ["-fsS", "http://$(SLUICE_CANARY_ADDRESS)/healthz"],
                            "env": [{"name": "SLUICE_CANARY_ADDRESS", "value": "stale"}]}]
                    }}
                }),
            }),
            ..MetricSpec::default()
        }],
        ..AnalysisSpec::default()
    });
    r
}

async fn jobs(client: &Client) -> Vec<Job> {
    Api::<Job>::namespaced(client.clone(), NS)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
}

struct Bed {
    client: Client,
    ctx: Arc<Context>,
    clock: Arc<ManualClock>,
}

impl Bed {
    async fn new() -> Bed {
        let client = client_with(job_rollout(), None).await;
        let clock = Arc::new(ManualClock::new(start()));
        let analysis = BridgeAnalysis::new(client.clone(), None)
            .with_source(Arc::new(FakeMetricsSource::new()));
        let ctx = Arc::new(
            Context::new(client.clone())
                .with_clock(clock.clone())
                .with_analysis(Arc::new(analysis)),
        );
        Bed { client, ctx, clock }
    }

    async fn tick(&self) {
        kubelet(&self.client).await;
        let r = get_rollout(&self.client).await;
        let _ = reconcile(Arc::new(r), self.ctx.clone()).await;
        self.clock.advance(chrono::Duration::seconds(61));
    }

    /// Tick until a check Job exists; returns it.
    async fn until_job(&self) -> Job {
        for _ in 0..20 {
            self.tick().await;
            if let Some(j) = jobs(&self.client).await.into_iter().next() {
                return j;
            }
        }
        panic!(
            "no Job created: {:?}",
            get_rollout(&self.client).await.status
        );
    }

    async fn finish(&self, name: &str, condition: serde_json::Value) {
        let status = json!({"status": {"conditions": [condition]}});
        Api::<Job>::namespaced(self.client.clone(), NS)
            .patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
            .await
            .unwrap();
    }

    async fn phase(&self) -> String {
        get_rollout(&self.client)
            .await
            .status
            .unwrap_or_default()
            .phase
            .to_string()
    }
}

async fn started() -> (Bed, Job) {
    let bed = Bed::new().await;
    for _ in 0..10 {
        bed.tick().await;
        if bed.phase().await == "Idle" {
            break;
        }
    }
    set_image(&bed.client, "podinfo:2.0").await;
    let job = bed.until_job().await;
    (bed, job)
}

#[tokio::test]
async fn the_job_is_built_from_the_metric_and_its_success_promotes() {
    let (bed, job) = started().await;
    let name = job.metadata.name.clone().unwrap();
    let labels = job.metadata.labels.clone().unwrap_or_default();
    let revision = get_rollout(&bed.client)
        .await
        .status
        .and_then(|s| s.canary_revision)
        .expect("canary revision");
    assert_eq!(name, format!("podinfo-smoke-{}-1", &revision[..8]));
    assert_eq!(labels.get("sluice.dev/revision"), Some(&revision));
    assert_eq!(
        labels.get("sluice.dev/rollout").map(String::as_str),
        Some(APP)
    );
    assert_eq!(
        labels.get("sluice.dev/check").map(String::as_str),
        Some("smoke")
    );
    let owner = job.metadata.owner_references.clone().unwrap_or_default();
    assert_eq!(owner.first().map(|o| o.kind.as_str()), Some("Rollout"));
    let spec = job.spec.clone().unwrap();
    assert_eq!(spec.active_deadline_seconds, Some(600));
    assert_eq!(spec.ttl_seconds_after_finished, Some(3600));
    assert_eq!(spec.backoff_limit, Some(0));
    let env = spec.template.spec.unwrap().containers[0]
        .env
        .clone()
        .unwrap();
    let value = |k: &str| {
        env.iter()
            .filter(|e| e.name == k)
            .map(|e| e.value.clone().unwrap_or_default())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        value("SLUICE_CANARY_ADDRESS"),
        ["podinfo-canary.demo.svc:80"]
    );
    assert_eq!(
        value("SLUICE_STABLE_ADDRESS"),
        ["podinfo-primary.demo.svc:80"]
    );
    assert_eq!(value("SLUICE_ROLLOUT"), [APP]);

    // While it runs, the rollout waits at the analysis step and no second Job starts.
    for _ in 0..3 {
        bed.tick().await;
    }
    assert_eq!(bed.phase().await, "Progressing");
    assert_eq!(jobs(&bed.client).await.len(), 1);

    bed.finish(&name, json!({"type": "Complete", "status": "True"}))
        .await;
    for _ in 0..20 {
        bed.tick().await;
        if bed.phase().await == "Succeeded" {
            break;
        }
    }
    assert_eq!(bed.phase().await, "Succeeded");
    assert!(
        jobs(&bed.client).await.is_empty(),
        "the read Job was not deleted"
    );
}

#[tokio::test]
async fn a_failed_job_aborts_with_its_reason() {
    let (bed, job) = started().await;
    let name = job.metadata.name.clone().unwrap();
    bed.finish(
        &name,
        json!({"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
               "message": "Job has reached the specified backoff limit"}),
    )
    .await;
    for _ in 0..20 {
        bed.tick().await;
        if bed.phase().await == "Failed" {
            break;
        }
    }
    let st = get_rollout(&bed.client).await.status.unwrap_or_default();
    assert_eq!(st.phase.to_string(), "Failed", "{st:?}");
    let reason = st.abort.map(|a| a.reason).unwrap_or_default();
    assert!(
        reason.contains(&format!(
            "Job {name} failed (BackoffLimitExceeded: Job has reached the specified backoff limit)"
        )),
        "{reason}"
    );
    assert!(
        jobs(&bed.client).await.is_empty(),
        "the read Job was not deleted"
    );
}

#[tokio::test]
async fn a_job_that_vanishes_is_an_error_not_a_pass() {
    let (bed, job) = started().await;
    let name = job.metadata.name.clone().unwrap();
    Api::<Job>::namespaced(bed.client.clone(), NS)
        .delete(&name, &DeleteParams::default())
        .await
        .unwrap();
    bed.tick().await;
    let st = get_rollout(&bed.client).await.status.unwrap_or_default();
    let m = st
        .analysis
        .metrics
        .iter()
        .find(|m| m.name == "Smoke")
        .expect("metric status");
    assert_eq!(m.last_verdict.as_deref(), Some("Error"), "{m:?}");
    assert!(
        m.last_reason
            .as_deref()
            .unwrap_or_default()
            .contains("disappeared before it finished"),
        "{m:?}"
    );
}

#[tokio::test]
async fn a_new_revision_gets_its_own_job_not_the_old_ones_result() {
    let (bed, first) = started().await;
    let first_name = first.metadata.name.clone().unwrap();
    // The old revision's Job succeeds only after a newer revision replaced it in the rollout.
    set_image(&bed.client, "podinfo:3.0").await;
    let mut second = None;
    for _ in 0..20 {
        bed.tick().await;
        second = jobs(&bed.client)
            .await
            .into_iter()
            .find(|j| j.metadata.name.as_deref() != Some(first_name.as_str()));
        if second.is_some() {
            break;
        }
    }
    let second = second.expect("a Job for the new revision");
    let revision = get_rollout(&bed.client)
        .await
        .status
        .and_then(|s| s.canary_revision)
        .expect("canary revision");
    let labels = second.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels.get("sluice.dev/revision"), Some(&revision));
    bed.finish(&first_name, json!({"type": "Complete", "status": "True"}))
        .await;
    for _ in 0..3 {
        bed.tick().await;
    }
    assert_eq!(
        bed.phase().await,
        "Progressing",
        "promoted on the old revision's Job"
    );
}
