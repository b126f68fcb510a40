//! `sluice`: the controller, standalone runner and CLI (also usable as `kubectl-sluice`).

fn main() {}
