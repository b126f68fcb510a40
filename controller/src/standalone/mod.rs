//! Standalone mode: `sluice run -f rollout.yaml` with file routers and a local state file.

pub mod atomic;
