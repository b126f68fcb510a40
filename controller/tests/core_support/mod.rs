//! Shared builders for the state machine and simulator tests.
#![allow(dead_code)]

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use sluice_controller::core::{
    AnalysisRun, Effect, MetricOutcome, Observations, VerdictKind, WorkloadState,
};
use sluice_controller::sim::{Script, ScriptedOracle, SimConfig, Simulator, Timeline};
use sluice_crds::{
    AnalysisSpec, BlueGreenStrategy, CanaryStep, CanaryStrategy, Command, CommandAction,
    InconclusivePolicy, MetricSpec, NginxRouter, RolloutSpec, RouterSpec, ServiceSpec, Strategy,
    TargetRef, Threshold,
};

pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
}

pub fn at(secs: i64) -> DateTime<Utc> {
    t0() + chrono::Duration::seconds(secs)
}

/// Analysis with one threshold metric, interval 30s, failureLimit 0, limits 3.
pub fn analysis() -> AnalysisSpec {
    AnalysisSpec {
        interval: "30s".to_string(),
        failure_limit: 0,
        inconclusive_limit: 3,
        on_inconclusive: InconclusivePolicy::Pause,
        error_limit: 3,
        on_errors: Default::default(),
        prometheus: None,
        metrics: vec![MetricSpec {
            name: "error-rate".to_string(),
            query: Some("rate(x[1m])".to_string()),
            threshold: Some(Threshold {
                min: None,
                max: Some(0.01),
                unless_stable_fails: None,
            }),
            ..MetricSpec::default()
        }],
        templates: vec![],
    }
}

fn base(strategy: Strategy) -> RolloutSpec {
    RolloutSpec {
        target_ref: TargetRef {
            api_version: "apps/v1".to_string(),
            kind: "Deployment".to_string(),
            name: "app".to_string(),
        },
        service: ServiceSpec {
            port: 80,
            ..ServiceSpec::default()
        },
        strategy,
        router: RouterSpec {
            nginx: Some(NginxRouter {
                ingress_ref: "app".to_string(),
                ..NginxRouter::default()
            }),
            ..RouterSpec::default()
        },
        analysis: Some(analysis()),
        gates: Default::default(),
        alerts: vec![],
        progress_deadline_seconds: 120,
        canary_loss: Default::default(),
        load: None,
        post_promotion_watch_seconds: 0,
        paused: false,
        skip_analysis: false,
    }
}

pub fn canary(steps: Vec<CanaryStep>) -> RolloutSpec {
    base(Strategy {
        canary: Some(CanaryStrategy {
            steps,
            ..CanaryStrategy::default()
        }),
        blue_green: None,
    })
}

pub fn shorthand(step_weight: i32, max_weight: i32) -> RolloutSpec {
    base(Strategy {
        canary: Some(CanaryStrategy {
            steps: vec![],
            step_weight: Some(step_weight),
            max_weight: Some(max_weight),
        }),
        blue_green: None,
    })
}

pub fn blue_green(iterations: u32, auto_promote: bool) -> RolloutSpec {
    base(Strategy {
        canary: None,
        blue_green: Some(BlueGreenStrategy {
            analysis_iterations: Some(iterations),
            auto_promote,
            preview_service: None,
        }),
    })
}

pub fn w(x: i32) -> CanaryStep {
    CanaryStep::weight(x)
}

pub fn cmd(id: &str, action: CommandAction) -> Command {
    sluice_controller::sim::script::command(id, action)
}

/// A simulator whose rollout of v1 is initialized (Idle) before `script` starts at t=0;
/// new revisions are expected from t>=30s.
pub fn sim(spec: &RolloutSpec, oracle: ScriptedOracle) -> Simulator {
    Simulator::new(spec.clone(), SimConfig::default()).with_oracle(oracle)
}

pub fn run(spec: &RolloutSpec, oracle: ScriptedOracle, script: Script, secs: u64) -> Timeline {
    sim(spec, oracle).run(&script, Duration::from_secs(secs))
}

pub fn pass() -> ScriptedOracle {
    ScriptedOracle::new(VerdictKind::Pass)
}

pub fn ready(rev: &str) -> WorkloadState {
    WorkloadState {
        exists: true,
        revision: Some(rev.to_string()),
        replicas: 2,
        ready_replicas: 2,
        ready: true,
    }
}

pub fn scaled_down(rev: &str) -> WorkloadState {
    WorkloadState {
        exists: true,
        revision: Some(rev.to_string()),
        replicas: 0,
        ready_replicas: 0,
        ready: false,
    }
}

pub fn obs(target: WorkloadState, primary: WorkloadState, weight: Option<i32>) -> Observations {
    Observations {
        generation: Some(1),
        target,
        primary,
        router_weight: weight,
        analysis: None,
        command: None,
        gates: Vec::new(),
    }
}

pub fn run_of(rev: &str, at_: DateTime<Utc>, verdicts: &[VerdictKind]) -> AnalysisRun {
    AnalysisRun {
        at: at_,
        revision: rev.to_string(),
        metrics: verdicts
            .iter()
            .enumerate()
            .map(|(i, v)| MetricOutcome {
                name: format!("m{i}"),
                verdict: *v,
                value: Some(i as f64),
                reason: format!("{v:?}"),
                sequential_state: None,
                forecast: None,
            })
            .collect(),
    }
}

pub fn event_reasons(effects: &[Effect]) -> Vec<String> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Event { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .collect()
}
