//! The pure rollout state machine: `step(spec, status, observations, now) -> Decision`.
//! Imports no kube, tokio, reqwest or axum; reads no clock.

pub mod model;

pub use model::*;
