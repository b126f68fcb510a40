//! The pure rollout state machine: `step(spec, status, observations, now) -> Decision`.
//! Imports no kube, tokio, reqwest or axum; reads no clock.
//!
//! Lifecycle (phase in status):
//! `Initializing` (ApplyPrimary + SetWeight 0; once the primary is ready and the router reads 0:
//! ScaleCanary down) → `Idle` → new target revision → `Progressing` (ScaleCanary up, wait for
//! the canary under progressDeadlineSeconds, walk the steps; `Paused` on holds and indefinite
//! pauses) → `Promoting` (ApplyPrimary, wait, SetWeight 0, ScaleCanary down) → `Succeeded`.
//! Abort (command, alert, analysis, deadline): SetWeight 0 first → `RollingBack` → once the
//! router reads 0: ScaleCanary down → `Failed`. A failed revision is not retried.
//! Abort within postPromotionWatchSeconds after a promotion: `RollingBack` (RevertPrimary to the
//! previous stable revision, wait until it is ready) → `Failed` with the previous one stable.
//! Blue/green runs on the same step engine as `[Analysis, Pause(None) unless autoPromote,
//! SetWeight(100)]` (see [`plan`]).
//!
//! Everything needed to resume lives in the status: sub-states are derived from it and from the
//! observations (e.g. the pause command is the `Paused` condition with reason `Command`, the
//! readiness deadline starts at the `CanaryReady` condition's transition time).
//! Effects are emitted from what is observed (convergent), so calling `step` again with the
//! same observations repeats only idempotent effects and never an Event.
//!
//! Layout: `lifecycle` dispatches on the phase; `initialize`, `progress`, `promotion` and
//! `rollback` handle their phases; `analysis_gate` absorbs runs and schedules the next one;
//! `commands` applies promote/promoteFull/abort/pause/resume once; `holds` derives holds;
//! `canary_loss` takes the weight off a canary that stops serving while it holds traffic;
//! `gates` asks `spec.gates` and holds at closed ones.

mod analysis_gate;
pub mod canary_loss;
mod commands;
pub mod conditions;
mod ctx;
pub mod gates;
mod holds;
mod initialize;
mod lifecycle;
pub mod model;
pub mod plan;
mod progress;
mod promotion;
mod rollback;

use chrono::{DateTime, Utc};
use sluice_crds::{RolloutSpec, RolloutStatus};

pub use analysis_gate::run_verdict;
pub use model::*;

/// Short poll while waiting for readiness or router weights.
pub const POLL: std::time::Duration = std::time::Duration::from_secs(5);

/// Decide what to do next. Pure: same inputs, same decision.
pub fn step(
    spec: &RolloutSpec,
    status: &RolloutStatus,
    obs: &Observations,
    now: DateTime<Utc>,
) -> Decision {
    let mut cx = ctx::Ctx::new(spec, status, obs, now);
    lifecycle::run(&mut cx);
    cx.finish()
}
