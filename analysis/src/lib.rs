//! Sluice analysis: Prometheus client, PromQL templates, built-in metrics, verdicts and the
//! statistical canary-vs-stable judges. No Kubernetes types here.
//!
//! Entry point for the controller: [`analyse_step`] with a list of [`MetricSpec`], a
//! [`MetricsSource`] (the real [`PrometheusClient`] or [`FakeMetricsSource`]), template variables
//! and the [`AnalysisState`] persisted from the previous step.

pub mod builtin;
pub mod counters;
pub mod error_text;
pub mod prometheus;
pub mod simprom;
pub mod source;
pub mod stats;
pub mod step;
pub mod template;
pub mod verdict;

pub use builtin::{error_counter, latency_histogram, Arm, BuiltinMetric, CounterSpec, Provider};
pub use error_text::causes;
pub use prometheus::{
    Auth, PrometheusClient, PrometheusConfig, QueryError, QueryMethod, QueryResponse, QueryResult,
};
pub use simprom::SimPrometheus;
pub use source::{FakeMetricsSource, MetricsSource, QueryFuture};
pub use stats::{IntervalCounts, SequentialConfig, SequentialState, SloConfig, SloState};
pub use step::{
    analyse_step, AnalysisState, Check, MetricSpec, MetricState, MetricVerdict, StepOutcome,
};
pub use template::{render, render_with, TemplateError, Variables};
pub use verdict::{judge_value, Evidence, InconclusiveCause, Threshold, Verdict, VerdictKind};
