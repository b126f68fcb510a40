//! Simulator: in-memory workloads, router, metrics and a simulated clock driving the state machine.
