//! End to end, standalone mode, real NGINX + mtail + Prometheus (issue 17): Prometheus is
//! stopped mid-analysis for longer than `errorLimit` runs and started again. The rollout is
//! held while queries fail and, with the default `onErrors: resume`, the hold ends by itself
//! once queries work again: the rollout is promoted without a human.

#[path = "e2e_support/mod.rs"]
mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::*;

/// Ten passing runs (2 s apart) at 20%: Prometheus goes away in the middle of them.
const LONG_ANALYSIS_STEPS: &str = "
          - setWeight: 20
          - analysis: { iterations: 10 }
          - setWeight: 50
          - analysis: {}";

const ANALYSIS_ERROR_LIMIT_2: &str = "
    analysis:
      interval: 2s
      failureLimit: 0
      inconclusiveLimit: 10
      errorLimit: 2
      metrics:
        - name: success-rate
          builtin: nginx-success-rate
          threshold: { min: 0.95 }";

fn read_state(file: &Path) -> Option<Value> {
    let text = std::fs::read_to_string(file).ok()?;
    let v: Value = serde_json::from_str(&text).ok()?;
    v.pointer("/rollouts/web").cloned()
}

/// The first state that satisfies `ok` within `timeout`, if any.
async fn poll_state(file: &Path, timeout: Duration, ok: impl Fn(&Value) -> bool) -> Option<Value> {
    let t0 = Instant::now();
    while t0.elapsed() < timeout {
        if let Some(s) = read_state(file).filter(|s| ok(s)) {
            return Some(s);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

fn paused_reason(s: &Value) -> Option<String> {
    s.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Paused")
        .and_then(|c| c["reason"].as_str().map(String::from))
}

#[tokio::test(flavor = "multi_thread")]
async fn prometheus_restart_mid_analysis_holds_then_resumes_by_itself() {
    let mut bed = Bed::start(BedOptions {
        steps: LONG_ANALYSIS_STEPS,
        analysis: ANALYSIS_ERROR_LIMIT_2,
        ..BedOptions::default()
    })
    .await;
    bed.ready_for_rollout().await;
    bed.write_file("v2");
    bed.wait_state("20% and analysis running", Duration::from_secs(60), |s| {
        weight(s) == 20 && step(s) == 1
    })
    .await;
    let state_file = bed.state_file();
    // A 14 s outage: at 2 s intervals, more than errorLimit (2) + 1 runs fail.
    let (restarted, held) = tokio::join!(
        bed.prom.restart_after(Duration::from_secs(14)),
        poll_state(&state_file, Duration::from_secs(14), |s| {
            phase_is(s, "Paused") && paused_reason(s).as_deref() == Some("AnalysisErrors")
        })
    );
    restarted.expect("Prometheus restarts");
    let held = held.expect("the rollout is held while Prometheus is down");
    let msg = held["status"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(msg.contains("resuming by itself"), "{msg}");
    assert_eq!(weight(&held), 20, "{held}");
    let s = bed
        .wait_state("promotion after the outage", Duration::from_secs(90), |s| {
            phase_is(s, "Succeeded")
        })
        .await;
    assert!(s.pointer("/status/abort").is_none(), "{s}");
    assert_eq!(s["status"]["analysis"]["consecutiveErrors"], 0, "{s}");
    assert!(
        s.pointer("/status/analysis/errorHoldSince").is_none(),
        "{s}"
    );
    eprintln!("held with: {msg}");
}
