//! Built-in canary load (`spec.load`): requests Sluice sends to the canary's own address while
//! the revision is analysed, for canaries that get little or no user traffic.
//!
//! [`plan`] decides (pure) whether load should run and with what; [`generator`] sends it and
//! counts every outcome in Sluice's `/metrics` (`sluice_load_*`), which Prometheus scrapes and
//! the `load-*` built-in metrics judge; [`manager`] keeps one generator per rollout in step
//! with the plan, so an abort, a rollback or a promotion stops it at the next reconcile.

pub mod generator;
pub mod manager;
pub mod plan;

pub use manager::LoadManager;
pub use plan::{desired, LoadPlan};
