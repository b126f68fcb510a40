//! Samples, percentiles and the Markdown table of the alert-latency bench.

use std::time::Instant;

use serde::Serialize;

/// One measured abort, in milliseconds from webhook receipt unless named otherwise.
#[derive(Debug, Clone, Serialize)]
pub struct AbortSample {
    /// Alertmanager: alert posted -> webhook received by Sluice.
    pub alertmanager_ms: f64,
    /// Webhook answered (abort command stored).
    pub webhook_ms: f64,
    /// Sluice: receipt -> router set_weight(0) starts (store, wake, observe, core::step).
    pub sluice_ms: f64,
    /// Router set_weight(0) duration (file write, `nginx -t`, `nginx -s reload`).
    pub router_ms: f64,
    pub nginx_test_ms: f64,
    pub nginx_reload_ms: f64,
    /// set_weight returned -> NGINX serves only stable (negative: before `nginx -s reload` exited).
    pub nginx_apply_ms: f64,
    /// Receipt -> router reports 0% canary (set_weight returned).
    pub to_router_zero_ms: f64,
    /// Receipt -> NGINX serves 0% canary.
    pub to_served_zero_ms: f64,
}

/// Signed: NGINX's new workers may already answer before `nginx -s reload` has exited.
pub fn ms(a: Option<Instant>, b: Option<Instant>) -> Option<f64> {
    let (a, b) = (a?, b?);
    Some(if b >= a {
        (b - a).as_secs_f64() * 1000.0
    } else {
        -((a - b).as_secs_f64() * 1000.0)
    })
}

/// Percentiles of one column.
#[derive(Debug, Clone, Serialize)]
pub struct Dist {
    pub name: &'static str,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub mean_ms: f64,
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct AlertReport {
    pub requested: usize,
    pub failed: usize,
    pub samples: Vec<AbortSample>,
    pub dists: Vec<Dist>,
    /// Share of receipt -> served-0% spent in Sluice before the router call (mean over aborts).
    pub sluice_share: f64,
    /// Share spent in set_weight (file write + `nginx -t` + reload signal).
    pub router_share: f64,
    /// Share spent waiting for NGINX's new workers after the reload signal.
    pub nginx_apply_share: f64,
}

/// Nearest-rank percentile.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub fn dist(name: &'static str, samples: &[AbortSample], f: fn(&AbortSample) -> f64) -> Dist {
    let mut v: Vec<f64> = samples.iter().map(f).collect();
    v.sort_by(f64::total_cmp);
    let mean = if v.is_empty() {
        0.0
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    };
    Dist {
        name,
        p50_ms: percentile(&v, 50.0),
        p99_ms: percentile(&v, 99.0),
        mean_ms: mean,
    }
}

/// A named column of the samples.
pub type Column = (&'static str, fn(&AbortSample) -> f64);

pub fn report(requested: usize, failed: usize, samples: Vec<AbortSample>) -> AlertReport {
    let cols: [Column; 9] = [
        ("alert posted -> webhook received (Alertmanager)", |s| {
            s.alertmanager_ms
        }),
        ("webhook received -> answered (command stored)", |s| {
            s.webhook_ms
        }),
        ("received -> set_weight(0) starts (Sluice)", |s| s.sluice_ms),
        ("set_weight(0) (write + nginx -t + reload)", |s| s.router_ms),
        ("  of which nginx -t", |s| s.nginx_test_ms),
        ("  of which nginx -s reload", |s| s.nginx_reload_ms),
        ("set_weight returned -> NGINX serves stable", |s| {
            s.nginx_apply_ms
        }),
        ("received -> router reports 0% canary", |s| {
            s.to_router_zero_ms
        }),
        ("received -> NGINX serves 0% canary", |s| {
            s.to_served_zero_ms
        }),
    ];
    let dists = cols.iter().map(|(n, f)| dist(n, &samples, *f)).collect();
    let total: f64 = samples.iter().map(|s| s.to_served_zero_ms).sum();
    let share = |f: fn(&AbortSample) -> f64| {
        if total > 0.0 {
            samples.iter().map(f).sum::<f64>() / total
        } else {
            0.0
        }
    };
    AlertReport {
        requested,
        failed,
        sluice_share: share(|s| s.sluice_ms),
        router_share: share(|s| s.router_ms),
        nginx_apply_share: share(|s| s.nginx_apply_ms),
        samples,
        dists,
    }
}

/// Markdown table of a report.
pub fn table(r: &AlertReport) -> String {
    let mut out = format!(
        "{} aborts measured ({} requested, {} failed)\n\n| interval | p50 ms | p99 ms | mean ms |\n|---|---|---|---|\n",
        r.samples.len(),
        r.requested,
        r.failed
    );
    for d in &r.dists {
        out.push_str(&format!(
            "| {} | {:.2} | {:.2} | {:.2} |\n",
            d.name, d.p50_ms, d.p99_ms, d.mean_ms
        ));
    }
    out.push_str(&format!(
        "\nShare of received -> NGINX serves 0%: Sluice {:.1}%, set_weight (nginx -t + reload) {:.1}%, NGINX applying the reload {:.1}%\n",
        r.sluice_share * 100.0,
        r.router_share * 100.0,
        r.nginx_apply_share * 100.0
    ));
    out
}
