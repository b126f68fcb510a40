//! HTTP API (axum): Alertmanager webhook, rollout status and commands, wait, /metrics, health.
