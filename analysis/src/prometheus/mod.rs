//! Prometheus HTTP API: client, typed results and errors.

mod client;
mod error;
mod result;

pub use client::{Auth, PrometheusClient, PrometheusConfig, QueryMethod};
pub use error::QueryError;
pub use result::{
    parse_response, parse_value, Labels, QueryResponse, QueryResult, RangeSeries, Sample,
};
