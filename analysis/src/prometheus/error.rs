//! Typed errors of a metrics query; none of them is ever turned into a number.

use serde::{Deserialize, Serialize};

/// Why a query produced no result.
#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum QueryError {
    /// Prometheus answered `{"status":"error"}` (e.g. `bad_data` for a PromQL syntax error).
    #[error("prometheus error {error_type} (HTTP {http_status}): {error}")]
    Prometheus {
        error_type: String,
        error: String,
        http_status: u16,
    },
    /// A non-success HTTP status without a Prometheus error body.
    #[error("HTTP {status} from prometheus: {body}")]
    Http { status: u16, body: String },
    /// The request did not finish within the configured timeout.
    #[error("prometheus query timed out: {0}")]
    Timeout(String),
    /// Could not connect (refused, DNS, reset).
    #[error("cannot reach prometheus: {0}")]
    Connect(String),
    /// The body is not a Prometheus API answer.
    #[error("cannot decode prometheus answer: {message} (body starts: {body:?})")]
    Decode { message: String, body: String },
    /// A shape this client does not handle (e.g. native histogram samples).
    #[error("unsupported prometheus answer: {0}")]
    Unsupported(String),
    /// The client configuration is invalid (address, header).
    #[error("invalid prometheus client configuration: {0}")]
    Config(String),
    /// The in-memory fake has no answer for this query.
    #[error("no canned answer for query {0:?}")]
    NoCannedAnswer(String),
}

impl QueryError {
    /// Whether repeating the same read-only query may succeed: connection errors, timeouts
    /// and 5xx. Never for 4xx / `bad_data`.
    pub fn is_retryable(&self) -> bool {
        match self {
            QueryError::Timeout(_) | QueryError::Connect(_) => true,
            QueryError::Http { status, .. } => *status >= 500,
            QueryError::Prometheus { http_status, .. } => *http_status >= 500,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_only_transient_errors() {
        assert!(QueryError::Timeout("x".into()).is_retryable());
        assert!(QueryError::Connect("refused".into()).is_retryable());
        assert!(QueryError::Http {
            status: 503,
            body: String::new()
        }
        .is_retryable());
        assert!(!QueryError::Http {
            status: 404,
            body: String::new()
        }
        .is_retryable());
        let bad = QueryError::Prometheus {
            error_type: "bad_data".into(),
            error: "x".into(),
            http_status: 400,
        };
        assert!(!bad.is_retryable());
        let busy = QueryError::Prometheus {
            error_type: "timeout".into(),
            error: "x".into(),
            http_status: 503,
        };
        assert!(busy.is_retryable());
        assert!(!QueryError::Decode {
            message: "m".into(),
            body: "b".into()
        }
        .is_retryable());
    }
}
