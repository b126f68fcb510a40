//! Prometheus HTTP client (reqwest) with bounded retries for transient failures.

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};

use super::{parse_response, QueryError, QueryResponse};
use crate::source::{MetricsSource, QueryFuture};

/// Credentials sent with every query. `Debug` hides the secrets.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Auth {
    Bearer(String),
    Basic { username: String, password: String },
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::Bearer(_) => f.write_str("Bearer(<redacted>)"),
            Auth::Basic { username, .. } => write!(f, "Basic({username}, <redacted>)"),
        }
    }
}

/// HTTP method of instant queries. POST (form body) avoids URL length limits for long PromQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum QueryMethod {
    #[default]
    Get,
    Post,
}

/// Where and how to reach Prometheus.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrometheusConfig {
    /// Base URL, e.g. `http://127.0.0.1:9090` (a path prefix such as `/prometheus` is kept).
    pub address: String,
    /// Client-side limit per attempt; also sent as the server-side `timeout` parameter.
    pub timeout: Duration,
    pub auth: Option<Auth>,
    /// Extra headers (e.g. `X-Scope-OrgID` for Thanos/Mimir tenants).
    pub headers: Vec<(String, String)>,
    pub method: QueryMethod,
    /// Extra attempts after a transient failure (connect error, timeout, 5xx).
    pub retries: u32,
    /// First pause before a retry; doubles on each further retry.
    pub retry_backoff: Duration,
    /// Extra CA certificate(s) (PEM) trusted for `https://` addresses, besides the system roots.
    pub ca_pem: Option<Vec<u8>>,
}

impl PrometheusConfig {
    /// Defaults: 10 s timeout, GET, 2 retries starting at 200 ms.
    pub fn new(address: impl Into<String>) -> Self {
        PrometheusConfig {
            address: address.into(),
            timeout: Duration::from_secs(10),
            auth: None,
            headers: Vec::new(),
            method: QueryMethod::Get,
            retries: 2,
            retry_backoff: Duration::from_millis(200),
            ca_pem: None,
        }
    }
}

/// Client of `/api/v1/query` and `/api/v1/query_range`.
#[derive(Debug, Clone)]
pub struct PrometheusClient {
    http: reqwest::Client,
    base: String,
    config: PrometheusConfig,
}

/// A reqwest error for people: without the request URL (it carries the whole URL-encoded
/// query) and with its causes as plain text, e.g. "error sending request: client error
/// (Connect): tcp connect error: Connection refused".
fn plain(e: reqwest::Error) -> String {
    crate::error_text::causes(&e.without_url())
}

fn classify(e: reqwest::Error) -> QueryError {
    if e.is_timeout() {
        QueryError::Timeout(plain(e))
    } else if e.is_decode() {
        QueryError::Decode {
            message: plain(e),
            body: String::new(),
        }
    } else {
        // Connect, reset, body read errors: all transport-level.
        QueryError::Connect(plain(e))
    }
}

fn seconds(d: Duration) -> String {
    format!("{}", d.as_secs_f64())
}

fn unix(t: DateTime<Utc>) -> String {
    format!("{:.3}", t.timestamp_millis() as f64 / 1000.0)
}

impl PrometheusClient {
    pub fn new(config: PrometheusConfig) -> Result<Self, QueryError> {
        let url = reqwest::Url::parse(&config.address)
            .map_err(|e| QueryError::Config(format!("address {:?}: {e}", config.address)))?;
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err(QueryError::Config(format!(
                "address {:?}: only http:// and https:// are supported",
                config.address
            )));
        }
        let mut headers = HeaderMap::new();
        for (k, v) in &config.headers {
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|e| QueryError::Config(format!("header name {k:?}: {e}")))?;
            let value = HeaderValue::from_str(v)
                .map_err(|e| QueryError::Config(format!("header {k:?} value: {e}")))?;
            headers.insert(name, value);
        }
        // In workspace builds reqwest gets rustls without a provider (feature unification via
        // kube-fake-client); building a client would then panic. Installing ring is idempotent.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::Client::builder()
            .timeout(config.timeout)
            .default_headers(headers);
        if let Some(pem) = &config.ca_pem {
            for cert in reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| QueryError::Config(format!("CA certificate: {e}")))?
            {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder
            .build()
            .map_err(|e| QueryError::Config(e.to_string()))?;
        let base = config.address.trim_end_matches('/').to_string();
        Ok(PrometheusClient { http, base, config })
    }

    pub fn config(&self) -> &PrometheusConfig {
        &self.config
    }

    /// Instant query at `at` (server time "now" when `None`).
    pub async fn query(
        &self,
        promql: &str,
        at: Option<DateTime<Utc>>,
    ) -> Result<QueryResponse, QueryError> {
        let mut params = vec![
            ("query", promql.to_string()),
            ("timeout", seconds(self.config.timeout)),
        ];
        if let Some(t) = at {
            params.push(("time", unix(t)));
        }
        self.with_retries("/api/v1/query", &params).await
    }

    /// Range query from `start` to `end` every `step`.
    pub async fn query_range(
        &self,
        promql: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        step: Duration,
    ) -> Result<QueryResponse, QueryError> {
        if step.is_zero() {
            return Err(QueryError::Config("query_range step must be > 0".into()));
        }
        let params = vec![
            ("query", promql.to_string()),
            ("start", unix(start)),
            ("end", unix(end)),
            ("step", seconds(step)),
            ("timeout", seconds(self.config.timeout)),
        ];
        self.with_retries("/api/v1/query_range", &params).await
    }

    async fn with_retries(
        &self,
        path: &str,
        params: &[(&str, String)],
    ) -> Result<QueryResponse, QueryError> {
        let mut pause = self.config.retry_backoff;
        let mut attempt = 0;
        loop {
            match self.once(path, params).await {
                Err(e) if e.is_retryable() && attempt < self.config.retries => {
                    tracing::debug!(error = %e, attempt, "retrying prometheus query");
                    attempt += 1;
                    tokio::time::sleep(pause).await;
                    pause = pause.saturating_mul(2);
                }
                Ok(r) => {
                    for w in &r.warnings {
                        tracing::warn!(warning = %w, "prometheus query warning");
                    }
                    return Ok(r);
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn once(
        &self,
        path: &str,
        params: &[(&str, String)],
    ) -> Result<QueryResponse, QueryError> {
        let url = format!("{}{}", self.base, path);
        let req = match self.config.method {
            QueryMethod::Get => self.http.get(url).query(params),
            QueryMethod::Post => self.http.post(url).form(params),
        };
        let req = match &self.config.auth {
            Some(Auth::Bearer(t)) => req.bearer_auth(t),
            Some(Auth::Basic { username, password }) => req.basic_auth(username, Some(password)),
            None => req,
        };
        let resp = req.send().await.map_err(classify)?;
        let status = resp.status().as_u16();
        let body = resp.text().await.map_err(classify)?;
        parse_response(&body, status)
    }
}

impl MetricsSource for PrometheusClient {
    fn query<'a>(&'a self, promql: &'a str, at: Option<DateTime<Utc>>) -> QueryFuture<'a> {
        Box::pin(PrometheusClient::query(self, promql, at))
    }
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;
