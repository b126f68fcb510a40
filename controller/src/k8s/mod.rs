//! Kubernetes controller: reconcile, workloads, Kubernetes routers, status, leader election.
//!
//! Layout: `reconcile` (the controller-rs shaped loop body and `error_policy`), `workloads`
//! (Deployments/Services behind a trait) built from the pure `objects` and `raw` (pod templates
//! as the API server returned them), `status` (merge-patch
//! writes with conflict retry), `finalizer`, `routers` (which `TrafficRouter`), `discovery` (which router
//! CRDs the cluster serves), `analysis`, `jobs` (Job checks),
//! `guard` (Rollouts that do not decode), `events` (Events within the API
//! server's limits), `fence` (leadership ends by the Lease's own times), `leader` (Lease election as a `watch::Receiver<bool>`), `run` (the `sluice controller` command).

pub mod analysis;
pub mod context;
pub mod discovery;
pub mod error;
pub mod events;
pub mod fence;
pub mod finalizer;
pub mod gates;
pub mod guard;
pub mod hash;
pub mod jobs;
pub mod leader;
pub mod names;
pub mod notifications;
pub mod objects;
pub mod raw;
pub mod reconcile;
pub mod routers;
pub mod run;
pub mod status;
pub mod workloads;

pub use context::Context;
pub use error::Error;
pub use reconcile::{error_policy, reconcile};
pub use run::{run, ControllerArgs};
