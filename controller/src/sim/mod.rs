//! Simulator: in-memory workloads, router, scripted analysis and commands, and a simulated
//! clock driving the pure state machine (`core::step`) exactly as a shell would:
//! observe → step → apply effects → run analysis when asked and step again → sleep.
//! The benchmark reuses it with its own [`AnalysisOracle`].

pub mod oracle;
pub mod runner;
pub mod script;
pub mod timeline;
pub mod world;

pub use oracle::{AnalysisOracle, Rule, ScriptedOracle, When};
pub use runner::{simulate, SimConfig, Simulator};
pub use script::{Script, ScriptAction, ScriptEvent};
pub use timeline::{Timeline, TimelineEntry};
pub use world::{SimDeployment, SimRouter, World};
