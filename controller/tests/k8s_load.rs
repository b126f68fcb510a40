//! The Kubernetes shell runs the built-in load (`spec.load`) only while the rollout is
//! Progressing with a ready canary, aimed at the canary Service, and stops it on an abort and
//! on deletion (kube-fake-client, ManualClock).

mod k8s_common;

use std::sync::Arc;

use sluice_controller::clock::ManualClock;
use sluice_crds::{CommandAction, LoadSpec};

use k8s_common::*;

fn with_load() -> sluice_crds::Rollout {
    let mut r = rollout();
    r.spec.load = Some(LoadSpec {
        rate: 2.0,
        ..LoadSpec::default()
    });
    r
}

#[tokio::test]
async fn load_runs_while_progressing_and_stops_on_abort() {
    let client = client_with(with_load(), None).await;
    let clock = Arc::new(ManualClock::new(start()));
    let ctx = context(&client, &clock);
    let key = format!("{NS}/{APP}");
    run_until(&client, &ctx, &clock, "Idle", 10).await;
    assert!(ctx.load.running().is_empty(), "no load while Idle");

    set_image(&client, "podinfo:2.0").await;
    let mut progressing = false;
    for _ in 0..10 {
        let p = tick(&client, &ctx, &clock, chrono::Duration::seconds(5)).await;
        if p.phase == "Progressing" && p.weight == Some(20) {
            progressing = true;
            break;
        }
    }
    assert!(progressing, "the rollout reached 20%");
    assert_eq!(ctx.load.running(), vec![key.clone()]);

    send_command(&client, &command(CommandAction::Abort, "abort-1")).await;
    run_until(&client, &ctx, &clock, "Failed", 10).await;
    assert!(ctx.load.running().is_empty(), "load stopped by the abort");
}

#[tokio::test]
async fn load_stops_when_the_rollout_is_promoted() {
    let client = client_with(with_load(), None).await;
    let clock = Arc::new(ManualClock::new(start()));
    let ctx = context(&client, &clock);
    run_until(&client, &ctx, &clock, "Idle", 10).await;
    set_image(&client, "podinfo:2.0").await;
    let trace = run_until(&client, &ctx, &clock, "Succeeded", 20).await;
    assert!(trace.iter().any(|p| p.phase == "Progressing"), "{trace:#?}");
    assert!(ctx.load.running().is_empty());
}

#[tokio::test]
async fn a_load_comparison_with_stable_is_refused_with_the_metric_named() {
    let mut r = with_load();
    r.spec.analysis = Some(sluice_crds::AnalysisSpec {
        interval: "30s".into(),
        metrics: vec![sluice_crds::MetricSpec {
            name: "load-errors".into(),
            builtin: Some("load-errors-vs-stable".into()),
            ..Default::default()
        }],
        ..Default::default()
    });
    let client = client_with(r, None).await;
    let clock = Arc::new(ManualClock::new(start()));
    let ctx = context(&client, &clock);
    for _ in 0..2 {
        sluice_controller::k8s::reconcile(Arc::new(get_rollout(&client).await), ctx.clone())
            .await
            .unwrap();
    }
    let st = get_rollout(&client).await.status.unwrap();
    let ready = st.condition("Ready").unwrap();
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "InvalidSpec")
    );
    assert!(
        ready.message.contains("metrics[0] (load-errors)")
            && ready.message.contains("only the canary"),
        "{}",
        ready.message
    );
    assert!(ctx.load.running().is_empty());
}
