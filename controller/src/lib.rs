//! Sluice controller: the pure rollout state machine (`core`), its simulator (`sim`), traffic
//! routers, the standalone file-driven runner, the Kubernetes controller, the HTTP API and the CLI.

pub mod analysis_bridge;
pub mod api;
pub mod bench;
pub mod checks;
pub mod cli;
pub mod clock;
pub mod core;
pub mod gates;
pub mod init;
pub mod k8s;
pub mod load;
pub mod notify;
pub mod router;
pub mod sim;
pub mod standalone;
pub mod store;
pub mod telemetry;
pub mod ui;
