//! Demo backend for Sluice tests and examples: `/` answers 200 or 500 with a configurable
//! error rate and latency, `/metrics` exposes per-version counters and a latency histogram,
//! `/admin` changes the behaviour at run time. Binds 127.0.0.1 only.

mod metrics;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::extract::{Query, State};
use axum::http::{header, HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::serve::ListenerExt;
use axum::Router;
use clap::Parser;
use rand::Rng;
use serde::Deserialize;

use metrics::Metrics;

/// Command line.
#[derive(Debug, Parser)]
#[command(about = "Demo HTTP backend with configurable error rate and latency")]
struct Args {
    /// Port on 127.0.0.1.
    #[arg(long)]
    port: u16,
    /// Version label (e.g. stable, canary), sent as `X-Version` and in metrics.
    #[arg(long)]
    version: String,
    /// Probability in [0, 1] that `/` answers 500.
    #[arg(long, default_value_t = 0.0)]
    error_rate: f64,
    /// Base latency of `/` in milliseconds.
    #[arg(long, default_value_t = 5.0)]
    latency_ms: f64,
    /// Extra uniform random latency in [0, jitter] milliseconds.
    #[arg(long, default_value_t = 0.0)]
    jitter_ms: f64,
}

/// Behaviour that `/admin` can change.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Behaviour {
    error_rate: f64,
    latency_ms: f64,
    jitter_ms: f64,
}

/// Query of `/admin`; absent fields stay unchanged.
#[derive(Debug, Default, Deserialize)]
struct AdminParams {
    error_rate: Option<f64>,
    latency_ms: Option<f64>,
    jitter_ms: Option<f64>,
}

impl Behaviour {
    /// Applies `/admin` parameters, rejecting out-of-range values.
    fn apply(self, p: &AdminParams) -> Result<Behaviour, String> {
        let next = Behaviour {
            error_rate: p.error_rate.unwrap_or(self.error_rate),
            latency_ms: p.latency_ms.unwrap_or(self.latency_ms),
            jitter_ms: p.jitter_ms.unwrap_or(self.jitter_ms),
        };
        next.validate()?;
        Ok(next)
    }

    fn validate(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.error_rate) {
            return Err(format!("error_rate {} not in [0, 1]", self.error_rate));
        }
        for (name, v) in [
            ("latency_ms", self.latency_ms),
            ("jitter_ms", self.jitter_ms),
        ] {
            if !(0.0..=600_000.0).contains(&v) {
                return Err(format!("{name} {v} not in [0, 600000]"));
            }
        }
        Ok(())
    }

    fn describe(&self, version: &str) -> String {
        format!(
            "{{\"version\":\"{version}\",\"error_rate\":{},\"latency_ms\":{},\"jitter_ms\":{}}}\n",
            self.error_rate, self.latency_ms, self.jitter_ms
        )
    }
}

struct App {
    version: String,
    behaviour: Mutex<Behaviour>,
    metrics: Mutex<Metrics>,
}

type Shared = Arc<App>;

const X_VERSION: HeaderName = HeaderName::from_static("x-version");

fn reply(app: &App, code: StatusCode, ctype: &'static str, body: String) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, ctype)],
        [(X_VERSION, app.version.clone())],
        body,
    )
        .into_response()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

async fn root(State(app): State<Shared>) -> Response {
    let start = Instant::now();
    let b = *lock(&app.behaviour);
    let (delay_ms, fail) = {
        let mut rng = rand::rng();
        let jitter = if b.jitter_ms > 0.0 {
            rng.random_range(0.0..b.jitter_ms)
        } else {
            0.0
        };
        (b.latency_ms + jitter, rng.random::<f64>() < b.error_rate)
    };
    if delay_ms > 0.0 {
        tokio::time::sleep(Duration::from_secs_f64(delay_ms / 1000.0)).await;
    }
    let code = if fail {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    };
    lock(&app.metrics).observe(code.as_u16(), start.elapsed().as_secs_f64());
    let body = format!("{} {}\n", app.version, code.as_u16());
    reply(&app, code, "text/plain", body)
}

async fn metrics(State(app): State<Shared>) -> Response {
    let text = lock(&app.metrics).render(&app.version);
    reply(&app, StatusCode::OK, "text/plain; version=0.0.4", text)
}

async fn admin(State(app): State<Shared>, Query(p): Query<AdminParams>) -> Response {
    let mut b = lock(&app.behaviour);
    match b.apply(&p) {
        Ok(next) => {
            *b = next;
            let text = next.describe(&app.version);
            drop(b);
            reply(&app, StatusCode::OK, "application/json", text)
        }
        Err(msg) => {
            drop(b);
            reply(&app, StatusCode::BAD_REQUEST, "text/plain", msg + "\n")
        }
    }
}

async fn healthz(State(app): State<Shared>) -> Response {
    reply(&app, StatusCode::OK, "text/plain", "ok\n".to_string())
}

fn router(app: Shared) -> Router {
    Router::new()
        .route("/", get(root))
        .route("/metrics", get(metrics))
        .route("/admin", get(admin).post(admin))
        .route("/healthz", get(healthz))
        .with_state(app)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let behaviour = Behaviour {
        error_rate: args.error_rate,
        latency_ms: args.latency_ms,
        jitter_ms: args.jitter_ms,
    };
    behaviour
        .validate()
        .map_err(anyhow::Error::msg)
        .context("invalid command line")?;
    let app = Arc::new(App {
        version: args.version,
        behaviour: Mutex::new(behaviour),
        metrics: Mutex::new(Metrics::default()),
    });
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port))
        .await
        .with_context(|| format!("binding 127.0.0.1:{}", args.port))?
        // Without TCP_NODELAY keepalive requests through NGINX stall on Nagle + delayed ACK.
        .tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
    axum::serve(listener, router(app))
        .await
        .context("serving HTTP")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Behaviour {
        Behaviour {
            error_rate: 0.0,
            latency_ms: 5.0,
            jitter_ms: 0.0,
        }
    }

    #[test]
    fn admin_changes_only_given_fields() {
        let p = AdminParams {
            error_rate: Some(0.3),
            ..Default::default()
        };
        let next = base().apply(&p).unwrap();
        assert_eq!(next.error_rate, 0.3);
        assert_eq!(next.latency_ms, 5.0);
    }

    #[test]
    fn admin_rejects_out_of_range() {
        let p = AdminParams {
            error_rate: Some(1.5),
            ..Default::default()
        };
        assert!(base().apply(&p).is_err());
        let p = AdminParams {
            latency_ms: Some(-1.0),
            ..Default::default()
        };
        assert!(base().apply(&p).is_err());
    }
}
