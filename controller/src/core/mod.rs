//! The pure rollout state machine: `step(spec, status, observations, now) -> Decision`.
//! Imports no kube, tokio, reqwest or axum; reads no clock.
//!
//! Layout: `lifecycle` dispatches on the phase; `initialize`, `progress` (canary and
//! blue/green steps, which share one step engine via `plan`), `promotion` and `rollback`
//! handle their phases; `analysis_gate` absorbs analysis runs and schedules the next one;
//! `commands` applies promote/abort/pause/resume once; `conditions` names the conditions.
//! Effects are emitted from what is observed (convergent), so calling `step` again with the
//! same observations repeats only idempotent effects and never an Event.

mod analysis_gate;
mod commands;
pub mod conditions;
mod ctx;
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
