//! Standalone mode: `sluice run -f rollouts.yaml` drives rollouts between two fixed backends with
//! a file router (NGINX upstream file or Traefik file provider), Prometheus analysis, and a
//! local JSON state file, through the same `core::step` loop as the Kubernetes controller.
//!
//! A rollout starts when the file's `canary.version` differs from the stable revision kept in
//! the state file (edit the file; it is re-read on change). Commands (promote, abort, pause,
//! resume, Alertmanager aborts) come through the HTTP API, which reads this process's state.

pub mod atomic;
pub mod check;
pub mod config;
pub mod metric_checks;
pub mod reconcile;
pub mod run;
pub mod state;
pub mod store;
pub mod workloads;

pub use config::{StandaloneConfig, NAMESPACE};
pub use run::{run, RunArgs};
pub use store::{Shared, StandaloneStore};

#[cfg(test)]
mod tests;
