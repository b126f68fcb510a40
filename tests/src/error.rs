//! Errors of the test-bed harness.

use std::time::Duration;

/// Everything that can go wrong while starting, driving or stopping a test-bed component.
#[derive(Debug, thiserror::Error)]
pub enum TestbedError {
    /// A file-system or process-spawn operation failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// A component did not answer its readiness URL in time.
    #[error("{name} not ready at {url} after {waited:?} (last: {last})\n--- {name} log tail ---\n{tail}")]
    NotReady {
        name: String,
        url: String,
        waited: Duration,
        last: String,
        tail: String,
    },
    /// A component exited before it became ready.
    #[error("{name} exited early ({status})\n--- {name} log tail ---\n{tail}")]
    Exited {
        name: String,
        status: String,
        tail: String,
    },
    /// A needed binary is not installed or could not be built.
    #[error("binary not found: {0}")]
    BinaryNotFound(String),
    /// An external command (nginx -s reload, cargo build, install-deps.sh) failed.
    #[error("command `{cmd}` failed: {output}")]
    Command { cmd: String, output: String },
    /// An HTTP request failed at the transport level.
    #[error("http request to {url} failed: {source}")]
    Http {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// An HTTP answer had an unexpected status or body.
    #[error("unexpected answer from {url}: {detail}")]
    BadResponse { url: String, detail: String },
    /// A wait helper gave up.
    #[error("timed out after {waited:?} waiting for {what} (last: {last})")]
    Timeout {
        what: String,
        waited: Duration,
        last: String,
    },
}

/// Result alias of the harness.
pub type Result<T> = std::result::Result<T, TestbedError>;

pub(crate) fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> TestbedError {
    let context = context.into();
    move |source| TestbedError::Io { context, source }
}

pub(crate) fn http_err(url: &str) -> impl FnOnce(reqwest::Error) -> TestbedError + '_ {
    move |source| TestbedError::Http {
        url: url.to_string(),
        source,
    }
}
