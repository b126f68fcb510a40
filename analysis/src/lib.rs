//! Sluice analysis: Prometheus client, PromQL templates, built-in metrics, verdicts and the
//! statistical canary-vs-stable judges. No Kubernetes types here.

pub mod builtin;
pub mod prometheus;
pub mod source;
pub mod stats;
pub mod template;
pub mod verdict;

pub use prometheus::{PrometheusClient, PrometheusConfig, QueryError, QueryResponse, QueryResult};
pub use source::{FakeMetricsSource, MetricsSource, QueryFuture};
