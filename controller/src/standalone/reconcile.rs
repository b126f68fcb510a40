//! One standalone tick for one rollout, the same shell loop as the Kubernetes controller:
//! observe (backends, router file, command) -> `core::step` -> effects in order -> analysis if
//! asked (and `step` again with its result) -> persist the status in the state file.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sluice_analysis::{MetricsSource, Provider};
use sluice_crds::{AnalysisTemplate, Phase};

use super::config::{RolloutConfig, NAMESPACE};
use super::state::RolloutState;
use super::store::Shared;
use super::workloads::{probe, run_hook};
use crate::analysis_bridge::{promql_interval, run_analysis, RunInput, StepVars};
use crate::core::{self, Decision, Effect, EventType, Observations, WorkloadState};
use crate::router::TrafficRouter;
use crate::telemetry::Telemetry;

/// What a tick needs besides the rollout's config.
pub struct TickContext<'a> {
    pub shared: &'a Shared,
    pub router: &'a dyn TrafficRouter,
    pub metrics: &'a dyn MetricsSource,
    pub templates: &'a [AnalysisTemplate],
    pub telemetry: &'a Telemetry,
    /// Built-in load generators (`load` in the file).
    pub load: &'a crate::load::LoadManager,
    pub now: DateTime<Utc>,
    /// Outbound notifications of this rollout (None: none configured).
    pub notify: Option<crate::notify::Feed<'a>>,
}

/// Which built-in flavour the rollout's router implies.
pub fn provider_of(cfg: &RolloutConfig) -> Provider {
    if cfg.router.traefik.is_some() {
        Provider::TraefikFile
    } else {
        Provider::NginxMtail
    }
}

fn workload(exists: bool, revision: Option<String>, ready: bool) -> WorkloadState {
    WorkloadState {
        exists,
        revision,
        replicas: 1,
        ready_replicas: i32::from(ready),
        ready,
    }
}

/// The revision the target "runs": the stable version until the first initialization is done
/// (so a file that already names a canary version does not skip its rollout), then the canary's.
fn target_revision(cfg: &RolloutConfig, st: &RolloutState) -> Option<String> {
    let initialized = st.status.stable_revision.is_some() && st.status.phase != Phase::Initializing;
    if initialized {
        cfg.target_version().map(str::to_string)
    } else {
        cfg.stable.version.clone()
    }
}

/// What the shell saw, plus why the canary is not ready (for the status message).
async fn observe(
    cfg: &RolloutConfig,
    st: &RolloutState,
    router: &dyn TrafficRouter,
) -> (Observations, Option<String>) {
    let (stable, canary) = tokio::join!(probe(&cfg.stable), probe(&cfg.canary));
    let (stable_ok, canary_ok) = (stable.is_ok(), canary.is_ok());
    let obs = Observations {
        generation: None,
        target: workload(true, target_revision(cfg, st), canary_ok),
        primary: workload(
            st.primary_revision.is_some(),
            st.primary_revision.clone(),
            stable_ok && st.primary_revision.is_some(),
        ),
        router_weight: read_weight(cfg, router).await,
        analysis: None,
        command: st.command.clone(),
        gates: Vec::new(),
    };
    (obs, canary.err())
}

/// A canary that is not ready: name its address and the probe's error in the message (the
/// state machine only knows "not ready").
pub fn explain_canary(st: &mut sluice_crds::RolloutStatus, canary_error: Option<&str>) {
    let Some(err) = canary_error else { return };
    let waiting = st.phase.in_progress()
        && st
            .condition(core::conditions::CANARY_READY)
            .is_some_and(|c| c.status == "False");
    if let (true, Some(m)) = (waiting, st.message.as_mut()) {
        if !m.contains(err) {
            *m = format!("{m}: {err}");
        }
    }
}

async fn read_weight(cfg: &RolloutConfig, router: &dyn TrafficRouter) -> Option<i32> {
    match router.current_weight().await {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(rollout = %cfg.name, error = %e, "cannot read the router's weight");
            None
        }
    }
}

/// What the effects asked the shell to find out before stepping again.
#[derive(Default)]
struct Asked {
    analyse: Option<String>,
    gates: Vec<Effect>,
}

/// Run the effects in order; returns the analysis and gates asked for.
async fn execute(
    cfg: &RolloutConfig,
    st: &mut RolloutState,
    decision: &Decision,
    router: &dyn TrafficRouter,
) -> Result<Asked, String> {
    let mut asked = Asked::default();
    for effect in &decision.effects {
        match effect {
            Effect::ApplyPrimary { revision } => {
                if st.primary_revision.as_deref() != Some(revision.as_str()) {
                    // The first apply records what the stable backend already runs; later ones deploy.
                    if st.primary_revision.is_some() {
                        run_hook(&cfg.hooks.promote, cfg, revision, &[]).await?;
                    }
                    st.primary_revision = Some(revision.clone());
                }
            }
            Effect::RevertPrimary { revision } => {
                if st.primary_revision.as_deref() != Some(revision.as_str()) {
                    let from = st.primary_revision.clone().unwrap_or_default();
                    let env = [("SLUICE_REVERTED_REVISION", from.as_str())];
                    run_hook(&cfg.hooks.revert, cfg, revision, &env).await?;
                    st.primary_revision = Some(revision.clone());
                }
            }
            Effect::ScaleCanary { up } => {
                // The state machine repeats idempotent effects every tick; a hook runs on a change.
                if st.canary_up != Some(*up) {
                    let rev = decision.status.canary_revision.clone().unwrap_or_default();
                    let scale = if *up { "up" } else { "down" };
                    let env = [("SLUICE_SCALE", scale)];
                    run_hook(&cfg.hooks.scale_canary, cfg, &rev, &env).await?;
                    st.canary_up = Some(*up);
                }
            }
            Effect::SetWeight { weight } => router
                .set_weight(*weight)
                .await
                .map_err(|e| format!("router: {e}"))?,
            Effect::RunAnalysis { revision } => asked.analyse = Some(revision.clone()),
            // Asked after every other effect: traffic moves (e.g. back to stable) first.
            Effect::AskGate { .. } => asked.gates.push(effect.clone()),
            Effect::Event {
                type_,
                reason,
                message,
            } => match type_ {
                EventType::Normal => {
                    tracing::info!(rollout = %cfg.name, reason = %reason, "{message}")
                }
                EventType::Warning => {
                    tracing::warn!(rollout = %cfg.name, reason = %reason, "{message}")
                }
            },
        }
    }
    Ok(asked)
}

/// One metric's verdict in the log: Error verdicts at WARN, the value as a plain rounded number.
fn log_verdict(rollout: &str, m: &core::MetricOutcome) {
    let value = m
        .value
        .map(crate::cli::format::number)
        .unwrap_or_else(|| "-".to_string());
    let verdict = m.verdict.as_str();
    if m.verdict == core::VerdictKind::Error {
        tracing::warn!(rollout, metric = %m.name, verdict, value = %value, "{}", m.reason);
    } else {
        tracing::info!(rollout, metric = %m.name, verdict, value = %value, "{}", m.reason);
    }
}

fn step_vars(cfg: &RolloutConfig) -> StepVars {
    let labels = cfg.metric_labels();
    let interval = cfg
        .query_window
        .clone()
        .or_else(|| cfg.analysis.as_ref().map(promql_interval))
        .unwrap_or_else(|| "1m".to_string());
    StepVars {
        namespace: NAMESPACE.to_string(),
        name: cfg.name.clone(),
        primary: labels.primary,
        canary: labels.canary,
        interval,
        ingress: cfg.name.clone(),
        service: cfg.name.clone(),
        port: cfg.rollout_spec().service.port.to_string(),
    }
}

/// The rollout's command checks, run after the metrics and added to the same analysis run.
async fn with_command_checks(
    cfg: &RolloutConfig,
    revision: &str,
    mut run: core::AnalysisRun,
) -> core::AnalysisRun {
    let env = [
        ("SLUICE_ROLLOUT", cfg.name.as_str()),
        ("SLUICE_REVISION", revision),
        ("SLUICE_STABLE_ADDRESS", cfg.stable.address.as_str()),
        ("SLUICE_CANARY_ADDRESS", cfg.canary.address.as_str()),
    ];
    for c in &cfg.command_checks {
        let v = crate::checks::command::run(c, &env).await;
        run.metrics.push(core::MetricOutcome {
            name: c.name.clone(),
            verdict: crate::analysis_bridge::map_verdict(&v),
            value: v.value.filter(|x| x.is_finite()),
            reason: v.reason,
            sequential_state: None,
            forecast: None,
        });
    }
    run
}

/// One tick. Returns when to come back at the latest.
pub async fn tick(cfg: &RolloutConfig, cx: &TickContext<'_>) -> Option<Duration> {
    let spec = cfg.rollout_spec();
    let mut st = cx.shared.rollout_state(&cfg.name);
    let seen_command = st.command.clone();
    let old_status = st.status.clone();
    let (obs, canary_error) = observe(cfg, &st, cx.router).await;
    let first = core::step(&spec, &st.status, &obs, cx.now);
    let mut last = first.clone();
    let result = async {
        let mut asked = execute(cfg, &mut st, &first, cx.router).await?;
        if let Some(revision) = asked.analyse.take() {
            let empty = sluice_crds::AnalysisSpec::default();
            let vars = step_vars(cfg);
            let run = run_analysis(
                RunInput {
                    spec: cfg.analysis.as_ref().unwrap_or(&empty),
                    templates: cx.templates,
                    status: &first.status,
                    vars: &vars,
                    provider: provider_of(cfg),
                    revision: &revision,
                    now: cx.now,
                },
                cx.metrics,
            )
            .await;
            let run = with_command_checks(cfg, &revision, run).await;
            for m in &run.metrics {
                cx.telemetry
                    .record_verdict(NAMESPACE, &cfg.name, &m.name, m.verdict);
                log_verdict(&cfg.name, m);
            }
            let gates = crate::gates::ask_effects(
                &spec,
                &cfg.name,
                NAMESPACE,
                &first.status,
                &asked.gates,
                &crate::gates::EnvHeaders,
                cx.now,
            )
            .await;
            let obs2 = Observations {
                analysis: Some(run),
                router_weight: read_weight(cfg, cx.router).await,
                gates,
                ..obs.clone()
            };
            let second = core::step(&spec, &first.status, &obs2, cx.now);
            // One analysis per tick: a second RunAnalysis waits for the next tick.
            asked = execute(cfg, &mut st, &second, cx.router).await?;
            last = second;
        }
        // Gates asked, answers fed back, until no decision asks again (an opened gate lets
        // the next point ask its own at once). Bounded: each gate point asks once per call.
        for _ in 0..4 {
            if asked.gates.is_empty() {
                break;
            }
            let gates = crate::gates::ask_effects(
                &spec,
                &cfg.name,
                NAMESPACE,
                &last.status,
                &asked.gates,
                &crate::gates::EnvHeaders,
                cx.now,
            )
            .await;
            let obs2 = Observations {
                router_weight: read_weight(cfg, cx.router).await,
                gates,
                ..obs.clone()
            };
            let next = core::step(&spec, &last.status, &obs2, cx.now);
            asked = execute(cfg, &mut st, &next, cx.router).await?;
            last = next;
        }
        Ok::<(), String>(())
    }
    .await;
    match &result {
        Ok(()) => {
            st.status = last.status.clone();
            if core::conditions::clear_blocked(&mut st.status, cx.now) {
                tracing::info!(rollout = %cfg.name, "unblocked: the failing action succeeded");
            }
            explain_canary(&mut st.status, canary_error.as_deref());
        }
        Err(e) => {
            // Keep the previous status (effects are idempotent; the next tick retries) but say
            // why, as `Ready=False` reason `Blocked` that the API, `status` and `wait` report.
            tracing::warn!(rollout = %cfg.name, error = %e, "effect failed; will retry");
            st.status.message = Some(format!("retrying: {e}"));
            core::conditions::set_blocked(
                &mut st.status,
                core::conditions::REASON_BLOCKED,
                e,
                cx.now,
            );
        }
    }
    if let Some(feed) = &cx.notify {
        let (old, new) = (&old_status, &st.status.clone());
        crate::notify::feed::record(
            feed,
            &mut st.notifications,
            old,
            new,
            NAMESPACE,
            &cfg.name,
            cx.now,
        );
    }
    match cx
        .shared
        .save_rollout(&cfg.name, st.clone(), seen_command.as_ref())
    {
        Ok(()) => {
            if let Some(feed) = &cx.notify {
                let saved = cx.shared.rollout_state(&cfg.name);
                crate::notify::feed::offer_pending(feed, &saved.notifications);
            }
        }
        Err(e) => tracing::error!(rollout = %cfg.name, error = %e, "cannot persist state"),
    }
    cx.telemetry.record_status(NAMESPACE, &cfg.name, &st.status);
    cx.load.apply(
        &cfg.name,
        crate::load::desired(crate::load::plan::LoadInput {
            namespace: NAMESPACE,
            name: &cfg.name,
            spec: cfg.load.as_ref(),
            status: &st.status,
            canary_ready: obs.target.ready,
            canary_address: &cfg.canary.address,
            now: cx.now,
        }),
    );
    if result.is_err() {
        return Some(Duration::from_secs(1));
    }
    last.requeue_after
}
