//! One reconcile of one Rollout (controller-rs shape): validate, observe, `core::step`, execute
//! the effects (running an analysis when asked and stepping again), write status, publish Events.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use kube::api::{Api, ListParams};
use kube::runtime::controller::Action;
use kube::ResourceExt;
use sluice_crds::{
    validate, AnalysisTemplate, Command, Rollout, RolloutStatus, COMMAND_ANNOTATION,
};
use tracing::{info, instrument, warn, Span};

use super::context::Context;
use super::error::{is_not_found, Error};
use super::finalizer;
use super::names::Names;
use super::routers::router_for;
use super::status::{write_status, write_status_merged};
use super::workloads::{KubeWorkloads, Workloads};
use crate::core::{self, Decision, Effect, EventType, Observations};
use crate::router::TrafficRouter;

/// While not the leader, check again this often.
pub const NOT_LEADER_RECHECK: Duration = Duration::from_secs(10);
/// Requeue when the state machine asks for none (a safety resync).
pub const RESYNC: Duration = Duration::from_secs(300);
/// Retry delay after a transient error.
pub const TRANSIENT_RETRY: Duration = Duration::from_secs(15);
/// Retry delay after a permanent error (a human must act; do not hot-loop).
pub const PERMANENT_RETRY: Duration = Duration::from_secs(300);
/// Condition reasons shared with the standalone shell (spec fails validation; an object the
/// rollout needs is missing or a write is refused).
pub use crate::core::conditions::{REASON_BLOCKED, REASON_INVALID};

/// An Event to publish once the status that records its transition is stored.
type PendingEvent = (EventType, String, String);

#[instrument(skip_all, fields(namespace, name))]
pub async fn reconcile(rollout: Arc<Rollout>, ctx: Arc<Context>) -> Result<Action, Error> {
    let span = Span::current();
    span.record("namespace", rollout.namespace().unwrap_or_default());
    span.record("name", rollout.name_any());
    let started = Instant::now();
    let result = reconcile_inner(&rollout, &ctx).await;
    if *ctx.leader.borrow() {
        ctx.telemetry
            .record_reconcile(started.elapsed().as_secs_f64(), result.is_ok());
    }
    result
}

/// Transient errors back off briefly; permanent ones wait long (status already says why).
pub fn error_policy(rollout: Arc<Rollout>, error: &Error, _ctx: Arc<Context>) -> Action {
    let name = rollout.name_any();
    if error.is_permanent() {
        warn!(rollout = %name, %error, "permanent reconcile error");
        Action::requeue(PERMANENT_RETRY)
    } else {
        warn!(rollout = %name, %error, "transient reconcile error, retrying");
        Action::requeue(TRANSIENT_RETRY)
    }
}

async fn reconcile_inner(rollout: &Rollout, ctx: &Context) -> Result<Action, Error> {
    let ns = rollout
        .namespace()
        .ok_or_else(|| Error::Invalid("Rollout has no namespace".to_string()))?;
    let load_key = format!("{ns}/{}", rollout.name_any());
    if !ctx.is_leader() {
        // The leader sends the load; a replica that is not must not add its own.
        ctx.load.apply(&load_key, None);
        return Ok(Action::requeue(NOT_LEADER_RECHECK));
    }
    let api: Api<Rollout> = Api::namespaced(ctx.client.clone(), &ns);
    let names = Names::of(rollout);
    let workloads = KubeWorkloads::new(ctx.client.clone(), names.clone());
    let router = router_for(&ctx.client, rollout, &names, &ctx.served);

    if rollout.metadata.deletion_timestamp.is_some() {
        ctx.load.apply(&load_key, None);
        if finalizer::has_finalizer(rollout) {
            finalizer::cleanup(&api, rollout, router.as_deref(), &workloads).await?;
            ctx.telemetry.remove_rollout(&ns, &rollout.name_any());
        }
        return Ok(Action::await_change());
    }
    finalizer::ensure(&api, rollout).await?;

    let now = ctx.clock.now();
    let status = rollout.status.clone().unwrap_or_default();
    let known = known_templates(ctx, rollout, &ns).await?;
    if let Err(e) = validate(&rollout.spec, known.as_deref()) {
        ctx.load.apply(&load_key, None);
        return report_invalid(&api, rollout, ctx, status, e.to_string(), now).await;
    }
    if let Err(e) = unusable_metrics(rollout) {
        ctx.load.apply(&load_key, None);
        return report_invalid(&api, rollout, ctx, status, e, now).await;
    }
    let Some(router) = router else {
        return report_invalid(&api, rollout, ctx, status, "no router".into(), now).await;
    };

    let (mut last, events, canary_ready) =
        match decide_and_act(rollout, ctx, &workloads, router.as_ref(), &status, now).await {
            Ok(x) => x,
            Err(e) if e.needs_human() => {
                report_blocked(&api, rollout, ctx, status, e.to_string(), now).await?;
                return Err(e);
            }
            Err(e) => return Err(e),
        };
    if !ctx.is_leader() {
        return Err(Error::NotLeader);
    }
    // Every effect went through and the spec is valid: a block recorded earlier is over.
    if core::conditions::clear_blocked(&mut last.status, now) {
        info!(rollout = %rollout.name_any(), "unblocked: the failing action succeeded");
    }
    if let Some(n) = &ctx.notify {
        let new = last.status.clone();
        let name = rollout.name_any();
        let feed = n.feed(&ctx.telemetry);
        crate::notify::feed::record(
            &feed,
            &mut last.status.notifications,
            &status,
            &new,
            &ns,
            &name,
            now,
        );
    }
    let (_, written) = write_status_merged(&api, rollout, &last.status).await?;
    if let Some(n) = &ctx.notify {
        crate::notify::feed::offer_pending(&n.feed(&ctx.telemetry), &written.notifications);
    }
    publish(ctx, rollout, events).await;
    ctx.telemetry
        .record_status(&ns, &rollout.name_any(), &last.status);
    let canary_address = names.canary_address();
    ctx.load.apply(
        &load_key,
        crate::load::desired(crate::load::plan::LoadInput {
            namespace: &ns,
            name: &rollout.name_any(),
            spec: rollout.spec.load.as_ref(),
            status: &last.status,
            canary_ready,
            canary_address: &canary_address,
            now,
        }),
    );
    Ok(Action::requeue(last.requeue_after.unwrap_or(RESYNC)))
}

/// Observe, step, execute (with at most one analysis and a second step); nothing persisted yet.
async fn decide_and_act(
    rollout: &Rollout,
    ctx: &Context,
    workloads: &dyn Workloads,
    router: &dyn TrafficRouter,
    status: &RolloutStatus,
    now: DateTime<Utc>,
) -> Result<(Decision, Vec<PendingEvent>, bool), Error> {
    let ns = rollout.namespace().unwrap_or_default();
    let obs = observe(rollout, workloads, router).await?;
    let canary_ready = obs.target.ready;
    let decision = core::step(&rollout.spec, status, &obs, now);
    let mut events = Vec::new();
    let (analysis_rev, mut asks) = execute(ctx, &decision, workloads, router, &mut events).await?;
    let mut last = decision;
    let headers = super::gates::SecretHeaders {
        client: ctx.client.clone(),
        namespace: ns.clone(),
    };
    if let Some(revision) = analysis_rev {
        let mut current = rollout.clone();
        current.status = Some(last.status.clone());
        let run = ctx.analysis.run(&current, &revision, now).await;
        for m in &run.metrics {
            ctx.telemetry
                .record_verdict(&ns, &rollout.name_any(), &m.name, m.verdict);
        }
        let gates = crate::gates::ask_effects(
            &rollout.spec,
            &rollout.name_any(),
            &headers.namespace,
            &last.status,
            &asks,
            &headers,
            now,
        )
        .await;
        let obs2 = Observations {
            analysis: Some(run),
            gates,
            ..obs.clone()
        };
        let second = core::step(&rollout.spec, &last.status, &obs2, now);
        // One analysis per reconcile: a second RunAnalysis waits for the next requeue.
        asks = execute(ctx, &second, workloads, router, &mut events)
            .await?
            .1;
        last = second;
    }
    // Gates asked and answers fed back until no decision asks again (bounded).
    for _ in 0..4 {
        if asks.is_empty() {
            break;
        }
        let gates = crate::gates::ask_effects(
            &rollout.spec,
            &rollout.name_any(),
            &headers.namespace,
            &last.status,
            &asks,
            &headers,
            now,
        )
        .await;
        let obs2 = Observations {
            gates,
            ..obs.clone()
        };
        let next = core::step(&rollout.spec, &last.status, &obs2, now);
        asks = execute(ctx, &next, workloads, router, &mut events).await?.1;
        last = next;
    }

    Ok((last, events, canary_ready))
}

/// Inline metrics the analysis bridge cannot translate (an unknown built-in, a threshold built-in
/// without a threshold, a `load-` comparison): refused now, with the metric named, instead of
/// failing every analysis run. Template metrics are checked when the template is resolved.
fn unusable_metrics(rollout: &Rollout) -> Result<(), String> {
    let Some(analysis) = &rollout.spec.analysis else {
        return Ok(());
    };
    let provider = super::analysis::provider_of(rollout);
    let problems: Vec<String> = analysis
        .metrics
        .iter()
        .enumerate()
        .filter(|(_, m)| m.job.is_none() && m.web.is_none())
        .filter_map(|(i, m)| {
            crate::analysis_bridge::to_check(m, provider)
                .err()
                .map(|e| format!("spec.analysis.metrics[{i}] ({}): {e}", m.name))
        })
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("invalid Rollout: {}", problems.join("; ")))
    }
}

/// Names of the AnalysisTemplates in the namespace, when the Rollout refers to any.
async fn known_templates(
    ctx: &Context,
    rollout: &Rollout,
    ns: &str,
) -> Result<Option<Vec<String>>, Error> {
    let uses = rollout
        .spec
        .analysis
        .as_ref()
        .is_some_and(|a| !a.templates.is_empty());
    if !uses {
        return Ok(None);
    }
    let api: Api<AnalysisTemplate> = Api::namespaced(ctx.client.clone(), ns);
    match api.list(&ListParams::default()).await {
        Ok(list) => Ok(Some(list.items.iter().map(|t| t.name_any()).collect())),
        Err(e) if is_not_found(&e) => Ok(Some(Vec::new())),
        Err(e) => Err(e.into()),
    }
}

async fn observe(
    rollout: &Rollout,
    workloads: &dyn Workloads,
    router: &dyn TrafficRouter,
) -> Result<Observations, Error> {
    let (target, primary) = workloads.observe().await?;
    if primary.exists {
        workloads.ensure_services().await?;
    }
    let router_weight = router.current_weight().await?;
    let command =
        rollout
            .annotations()
            .get(COMMAND_ANNOTATION)
            .and_then(|raw| match Command::parse(raw) {
                Ok(c) => Some(c),
                Err(e) => {
                    warn!(error = %e, "ignoring unreadable command annotation");
                    None
                }
            });
    Ok(Observations {
        generation: rollout.metadata.generation,
        target,
        primary,
        router_weight,
        analysis: None,
        command,
        gates: Vec::new(),
    })
}

/// Run the decision's effects in order; Events are collected; returns the revision to analyse
/// and the gates to ask (asked after every other effect, so traffic moves first).
async fn execute(
    leader: &Context,
    decision: &Decision,
    workloads: &dyn Workloads,
    router: &dyn TrafficRouter,
    events: &mut Vec<PendingEvent>,
) -> Result<(Option<String>, Vec<Effect>), Error> {
    let mut analysis = None;
    let mut asks = Vec::new();
    for effect in &decision.effects {
        // Leadership can end mid-reconcile (fenced by the Lease's times): no write after that.
        if !leader.is_leader() {
            return Err(Error::NotLeader);
        }
        match effect {
            Effect::ApplyPrimary { revision } => {
                workloads.apply_primary(revision).await?;
            }
            Effect::RevertPrimary { revision } => {
                workloads.revert_primary(revision).await?;
            }
            Effect::ScaleCanary { up } => workloads.scale_canary(*up).await?,
            Effect::SetWeight { weight } => router.set_weight(*weight).await?,
            Effect::RunAnalysis { revision } => analysis = Some(revision.clone()),
            Effect::AskGate { .. } => asks.push(effect.clone()),
            Effect::Event {
                type_,
                reason,
                message,
            } => events.push((*type_, reason.clone(), message.clone())),
        }
    }
    Ok((analysis, asks))
}

/// An invalid spec: record it and wait for an edit (a spec change triggers the next reconcile).
async fn report_invalid(
    api: &Api<Rollout>,
    rollout: &Rollout,
    ctx: &Context,
    mut status: RolloutStatus,
    message: String,
    now: DateTime<Utc>,
) -> Result<Action, Error> {
    status.observed_generation = rollout.metadata.generation;
    report_not_ready(api, rollout, ctx, status, REASON_INVALID, message, now).await?;
    Ok(Action::await_change())
}

/// Keep the stored progress, but say in status why the rollout cannot move (once per message).
async fn report_blocked(
    api: &Api<Rollout>,
    rollout: &Rollout,
    ctx: &Context,
    status: RolloutStatus,
    message: String,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    report_not_ready(api, rollout, ctx, status, REASON_BLOCKED, message, now).await
}

/// `Ready=False` with `reason` and `message` in status; a Warning Event only when they are new.
async fn report_not_ready(
    api: &Api<Rollout>,
    rollout: &Rollout,
    ctx: &Context,
    mut status: RolloutStatus,
    reason: &str,
    message: String,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    let known = status
        .condition("Ready")
        .is_some_and(|c| c.reason == reason && c.message == message);
    status.message = Some(message.clone());
    status.set_condition("Ready", false, reason, &message, now);
    write_status(api, rollout, &status).await?;
    if !known {
        publish(
            ctx,
            rollout,
            vec![(EventType::Warning, reason.to_string(), message)],
        )
        .await;
    }
    Ok(())
}

async fn publish(ctx: &Context, rollout: &Rollout, events: Vec<PendingEvent>) {
    super::events::publish(&ctx.recorder, rollout, events).await;
}
