//! Sending one notification to one sink: one attempt (HTTP POST), what its answer means, and
//! the retry schedule. Retried: connection errors, timeouts, 408, 429 and 5xx; given up: any
//! other status that is not 2xx (a 4xx will not get better by repeating it). This follows the
//! Standard Webhooks spec's "Delivery success and failure" (2xx is success) and Slack's rate
//! limiting of incoming webhooks (HTTP 429 with `Retry-After` in seconds, docs.slack.dev "Rate
//! limits").

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::event::Notification;
use super::payload::body;
use super::signature::{sign, ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use super::sink::{Sink, SinkKind};

/// When to try again and when to stop.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Wait after the first failure; doubled after each further one.
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// Give up on a notification this long after its transition.
    pub max_age: Duration,
    /// One attempt's timeout (connect + answer).
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            max_age: Duration::from_secs(3600),
            timeout: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// The wait after `failures` failed attempts (1: the first failure).
    pub fn backoff(&self, failures: u32) -> Duration {
        let factor = 2u32.saturating_pow(failures.saturating_sub(1).min(20));
        self.initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }
}

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Attempt {
    Delivered,
    /// Try again (after at least `after`, when the receiver said so).
    Retry {
        reason: String,
        after: Option<Duration>,
    },
    GiveUp {
        reason: String,
    },
}

/// The meaning of an HTTP answer. `retry_after`: the `Retry-After` header, if any (seconds;
/// the HTTP-date form is ignored and the backoff used instead).
pub fn judge_status(status: u16, retry_after: Option<&str>) -> Attempt {
    match status {
        200..=299 => Attempt::Delivered,
        408 | 429 | 500..=599 => Attempt::Retry {
            reason: format!("HTTP {status}"),
            after: retry_after
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs),
        },
        _ => Attempt::GiveUp {
            reason: format!("HTTP {status}"),
        },
    }
}

/// The HTTP client for sinks: no redirects (a webhook URL that moved should be updated, and a
/// redirect would carry the body elsewhere).
/// HTTPS sinks (Slack, Teams) need rustls' crypto provider, installed here as the CLI does.
pub fn client(policy: &RetryPolicy) -> Result<reqwest::Client, reqwest::Error> {
    crate::cli::ensure_crypto_provider();
    reqwest::Client::builder()
        .timeout(policy.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
}

/// One POST. `now` is the attempt's time (the signature's timestamp).
pub async fn send_once(
    client: &reqwest::Client,
    sink: &Sink,
    n: &Notification,
    now: DateTime<Utc>,
) -> Attempt {
    let bytes = match serde_json::to_vec(&body(sink.kind, n)) {
        Ok(b) => b,
        Err(e) => {
            return Attempt::GiveUp {
                reason: format!("cannot encode the body: {e}"),
            }
        }
    };
    let mut req = client
        .post(sink.url())
        .header(http::header::CONTENT_TYPE, "application/json");
    if sink.kind == SinkKind::Webhook {
        let ts = now.timestamp();
        req = req
            .header(ID_HEADER, &n.id)
            .header(TIMESTAMP_HEADER, ts.to_string());
        if let Some(key) = &sink.signing_key {
            req = req.header(SIGNATURE_HEADER, sign(key, &n.id, ts, &bytes));
        }
    }
    match req.body(bytes).send().await {
        Ok(resp) => {
            let retry_after = resp
                .headers()
                .get(http::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            judge_status(resp.status().as_u16(), retry_after.as_deref())
        }
        // `without_url`: Slack and Teams URLs carry their token; never in a message.
        Err(e) => {
            let e = e.without_url();
            let reason = if e.is_timeout() {
                "timed out".to_string()
            } else if e.is_connect() {
                "cannot connect".to_string()
            } else if e.is_builder() {
                return Attempt::GiveUp {
                    reason: "the URL is not valid".to_string(),
                };
            } else {
                sluice_analysis::causes(&e)
            };
            Attempt::Retry {
                reason,
                after: None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_backoff() {
        assert_eq!(judge_status(204, None), Attempt::Delivered);
        assert!(matches!(
            judge_status(503, None),
            Attempt::Retry { after: None, .. }
        ));
        assert!(matches!(
            judge_status(429, Some("7")),
            Attempt::Retry { after: Some(d), .. } if d == Duration::from_secs(7)
        ));
        assert!(matches!(judge_status(408, None), Attempt::Retry { .. }));
        assert!(matches!(judge_status(400, None), Attempt::GiveUp { .. }));
        assert!(matches!(judge_status(404, None), Attempt::GiveUp { .. }));
        assert!(matches!(judge_status(301, None), Attempt::GiveUp { .. }));
        let p = RetryPolicy::default();
        let waits: Vec<u64> = (1..=8).map(|f| p.backoff(f).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(p.backoff(1000).as_secs(), 60);
    }
}
