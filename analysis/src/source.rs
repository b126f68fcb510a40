//! The `MetricsSource` boundary: the real Prometheus client and an in-memory fake implement it.
//!
//! The method returns a boxed future (not `async fn` in a trait) so that the trait stays
//! dyn-compatible: callers hold an `Arc<dyn MetricsSource>`.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;

use chrono::{DateTime, Utc};

use crate::prometheus::{QueryError, QueryResponse, QueryResult};

/// The future returned by [`MetricsSource::query`].
pub type QueryFuture<'a> =
    Pin<Box<dyn Future<Output = Result<QueryResponse, QueryError>> + Send + 'a>>;

/// Something that answers instant PromQL queries.
pub trait MetricsSource: Send + Sync {
    /// Evaluates `promql` at `at` (the source's "now" when `None`).
    fn query<'a>(&'a self, promql: &'a str, at: Option<DateTime<Utc>>) -> QueryFuture<'a>;
}

/// In-memory source: a map from the exact query text to a canned answer. Records every query.
#[derive(Debug, Default)]
pub struct FakeMetricsSource {
    answers: Mutex<HashMap<String, Result<QueryResponse, QueryError>>>,
    calls: Mutex<Vec<String>>,
}

impl FakeMetricsSource {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets (or replaces) the answer to `query`.
    pub fn set(&self, query: impl Into<String>, answer: Result<QueryResult, QueryError>) {
        let answer = answer.map(QueryResponse::from);
        lock(&self.answers).insert(query.into(), answer);
    }

    /// Shorthand for a single-sample vector answer.
    pub fn set_value(&self, query: impl Into<String>, value: f64) {
        self.set(query, Ok(QueryResult::single(value)));
    }

    /// Every query asked so far, in order.
    pub fn calls(&self) -> Vec<String> {
        lock(&self.calls).clone()
    }
}

// A poisoned lock only means another test thread panicked; the map itself is still usable.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl MetricsSource for FakeMetricsSource {
    fn query<'a>(&'a self, promql: &'a str, _at: Option<DateTime<Utc>>) -> QueryFuture<'a> {
        lock(&self.calls).push(promql.to_string());
        let answer = lock(&self.answers)
            .get(promql)
            .cloned()
            .unwrap_or_else(|| Err(QueryError::NoCannedAnswer(promql.to_string())));
        Box::pin(async move { answer })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[tokio::test]
    async fn fake_answers_and_records() {
        let fake = Arc::new(FakeMetricsSource::new());
        fake.set_value("up", 1.0);
        fake.set(
            "bad(",
            Err(QueryError::Prometheus {
                error_type: "bad_data".into(),
                error: "parse".into(),
                http_status: 400,
            }),
        );
        let src: Arc<dyn MetricsSource> = fake.clone();
        assert_eq!(
            src.query("up", None).await.unwrap().result,
            QueryResult::single(1.0)
        );
        assert!(matches!(
            src.query("bad(", None).await,
            Err(QueryError::Prometheus { .. })
        ));
        assert!(
            matches!(src.query("other", None).await, Err(QueryError::NoCannedAnswer(q)) if q == "other")
        );
        assert_eq!(fake.calls(), vec!["up", "bad(", "other"]);
    }
}
