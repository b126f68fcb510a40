//! Benchmark scenarios: what the canary (and the world around it) does.

use serde::Serialize;

/// Baseline error rate of a healthy version.
pub const BASE_ERROR: f64 = 0.005;
/// Default total request rate (requests per second, both arms).
pub const BASE_RATE: f64 = 20.0;

/// An error spike that hits both arms during `[from, to)` seconds (a shared dependency outage).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Spike {
    pub from: u64,
    pub to: u64,
    pub error_rate: f64,
}

/// One scenario.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scenario {
    pub name: String,
    pub description: String,
    /// Total requests per second.
    pub rate: f64,
    /// Stable's error probability per request.
    pub base_error: f64,
    /// Canary error probability = base_error * this.
    pub canary_error_factor: f64,
    /// Canary latencies are stable's times this.
    pub canary_latency_factor: f64,
    pub spike: Option<Spike>,
    /// The canary gets no traffic whatever the weight (broken routing / selector).
    pub canary_unreachable: bool,
    /// Whether the right outcome is a rollback (false: promote).
    pub bad: bool,
    /// Prometheus' scrape interval (seconds) for the policies that read the simulated Prometheus.
    pub scrape: u64,
    /// Bursty errors: per 10 s block a Gamma multiplier of the error rate (mean 1).
    pub burst: Option<Burst>,
    /// The exporter (ingress-nginx controller) restarts at this second: counters from zero.
    pub exporter_restart_at: Option<u64>,
    /// Sluice's analysis interval in seconds, if not its default.
    pub interval: Option<u64>,
    /// Sluice's last (analysed) canary weight, if not its default.
    pub max_weight: Option<i32>,
    /// Sluice's `negligibleBadRate` floor on the error comparison (off unless set).
    pub floor: Option<f64>,
    /// One route (ingress-nginx `path`) with its own canary error rate; the rest is `/`.
    pub hot_route: Option<HotRoute>,
    /// The canary's pods die 20 s after it first serves this weight (percent); from then on
    /// every request routed to it is an error (NGINX answers 502) and it is not ready.
    pub canary_dies_at: Option<i32>,
}

/// A route that carries `share` of the requests and on which the canary's error probability is
/// `canary_error` (stable keeps `base_error` there too).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HotRoute {
    pub path: String,
    pub share: f64,
    pub canary_error: f64,
}

/// Seconds between the canary first serving `canary_dies_at` and its death.
pub const DEATH_DELAY: u64 = 20;

/// Errors in bursts: the per-block multiplier of the error probability has this coefficient of
/// variation; `shared` bursts hit both arms at once (a dependency), others each arm on its own.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Burst {
    pub cv: f64,
    pub shared: bool,
}

impl Scenario {
    fn new(name: &str, description: &str) -> Self {
        Scenario {
            name: name.to_string(),
            description: description.to_string(),
            rate: BASE_RATE,
            base_error: BASE_ERROR,
            canary_error_factor: 1.0,
            canary_latency_factor: 1.0,
            spike: None,
            canary_unreachable: false,
            bad: false,
            scrape: 15,
            burst: None,
            exporter_restart_at: None,
            interval: None,
            max_weight: None,
            floor: None,
            hot_route: None,
            canary_dies_at: None,
        }
    }

    pub fn healthy() -> Self {
        Self::new(
            "healthy",
            "canary identical to stable (0.5% errors, p99 300 ms)",
        )
    }

    pub fn errors(factor: f64) -> Self {
        let mut s = Self::new(
            &format!("errors-{factor}x"),
            &format!(
                "canary error rate {factor}x stable's ({:.1}% vs {:.1}%)",
                100.0 * BASE_ERROR * factor,
                100.0 * BASE_ERROR
            ),
        );
        s.canary_error_factor = factor;
        s.bad = true;
        s
    }

    pub fn latency(factor: f64) -> Self {
        let pct = ((factor - 1.0) * 100.0).round();
        let mut s = Self::new(
            &format!("latency+{pct}%"),
            &format!(
                "canary latencies {factor}x stable's (p99 {:.0} ms vs {:.0} ms)",
                300.0 * factor,
                300.0
            ),
        );
        s.canary_latency_factor = factor;
        s.bad = true;
        s
    }
}

/// All scenarios, in report order.
pub fn all() -> Vec<Scenario> {
    let mut low = Scenario::healthy();
    low.name = "low-traffic".into();
    low.description = "healthy canary, 1 request/s in total".into();
    low.rate = 1.0;
    let mut low_bad = Scenario::errors(5.0);
    low_bad.name = "low-traffic-5x".into();
    low_bad.description = "canary error rate 5x stable's, 1 request/s in total".into();
    low_bad.rate = 1.0;
    let mut spike = Scenario::healthy();
    spike.name = "shared-spike".into();
    spike.description =
        "healthy canary; a dependency outage gives BOTH arms 10% errors from 2:00 to 5:00".into();
    spike.spike = Some(Spike {
        from: 120,
        to: 300,
        error_rate: 0.10,
    });
    let mut dark = Scenario::healthy();
    dark.name = "no-canary-traffic".into();
    dark.description = "healthy canary that receives no traffic at all (routing broken)".into();
    dark.canary_unreachable = true;
    vec![
        Scenario::healthy(),
        Scenario::errors(2.0),
        Scenario::errors(5.0),
        Scenario::errors(20.0),
        Scenario::latency(1.3),
        Scenario::latency(2.0),
        low,
        low_bad,
        spike,
        dark,
    ]
}

/// The fault cells (`sluice bench --suite faults`, issue 17): a regression on one endpoint, a
/// canary that dies while it holds 25%, and a shared incident.
pub fn faults() -> Vec<Scenario> {
    let mut one = Scenario::new(
        "one-endpoint",
        "canary 5% errors on /checkout (a fifth of the traffic), 0.5% elsewhere; stable 0.5% everywhere",
    );
    one.hot_route = Some(HotRoute {
        path: "/checkout".into(),
        share: 0.2,
        canary_error: 0.05,
    });
    one.bad = true;
    let mut healthy = Scenario::new(
        "two-routes-healthy",
        "healthy canary; /checkout a fifth of the traffic; 0.5% errors everywhere on both arms",
    );
    healthy.hot_route = Some(HotRoute {
        path: "/checkout".into(),
        share: 0.2,
        canary_error: BASE_ERROR,
    });
    let mut dies = Scenario::new(
        "canary-dies-at-25",
        "healthy canary whose pods die 20 s after it first serves 25%: every request it gets after that is a 502",
    );
    dies.canary_dies_at = Some(25);
    dies.bad = true;
    let mut incident = Scenario::healthy();
    incident.name = "shared-incident".into();
    incident.description =
        "healthy canary; a dependency outage gives BOTH arms 6% errors for 25 s from 3:10".into();
    incident.spike = Some(Spike {
        from: 190,
        to: 215,
        error_rate: 0.06,
    });
    // The floor's rate() needs two scrapes in its window: at the default 10 s interval and
    // 15 s scrapes it has none; the same incident with a 30 s analysis interval.
    let mut incident30 = incident.clone();
    incident30.name = "shared-incident-int30".into();
    incident30.description = format!("{}; analysis interval 30 s", incident.description);
    incident30.interval = Some(30);
    vec![one, healthy, dies, incident, incident30]
}

/// The validity grid (`sluice bench --suite validity`): conditions under which the guarantees
/// must hold, each for a healthy canary (false rollbacks) or a degraded one (false promotions).
pub fn validity() -> Vec<Scenario> {
    let mut out = Vec::new();
    let named = |mut s: Scenario, name: String, what: &str| {
        s.description = format!("{}; {what}", s.description);
        s.name = name;
        s
    };
    for scrape in [15, 30] {
        for interval in [10, 30, 60] {
            let mut s = Scenario::healthy();
            s.scrape = scrape;
            s.interval = Some(interval);
            out.push(named(
                s,
                format!("healthy-scrape{scrape}-int{interval}"),
                &format!("scrape {scrape} s, analysis interval {interval} s"),
            ));
        }
    }
    for base in [0.001, 0.02] {
        let mut s = Scenario::healthy();
        s.base_error = base;
        out.push(named(
            s,
            format!("healthy-base{}", base * 100.0),
            &format!("stable errors {}%", base * 100.0),
        ));
    }
    for w in [5, 25] {
        let mut s = Scenario::healthy();
        s.max_weight = Some(w);
        out.push(named(
            s,
            format!("healthy-share{w}"),
            &format!("canary share at most {w}%"),
        ));
    }
    for shared in [true, false] {
        let mut s = Scenario::healthy();
        s.burst = Some(Burst { cv: 3.0, shared });
        let who = if shared { "shared" } else { "per-arm" };
        out.push(named(
            s,
            format!("healthy-burst-{who}"),
            &format!("{who} error bursts, per-10 s rate CV 3"),
        ));
    }
    let mut s = Scenario::healthy();
    s.exporter_restart_at = Some(200);
    out.push(named(
        s,
        "healthy-exporter-restart".into(),
        "ingress-nginx restarts at 200 s (every counter from zero)",
    ));
    for base in [0.001, 0.005, 0.02] {
        for floor in [None, Some(0.005)] {
            let mut s = Scenario::errors(2.0);
            s.base_error = base;
            s.floor = floor;
            let f = floor.map_or("off".to_string(), |f| format!("{}%", f * 100.0));
            out.push(named(
                s,
                format!("errors-2x-base{}-floor-{f}", base * 100.0),
                &format!("stable errors {}%, negligibleBadRate {f}", base * 100.0),
            ));
        }
    }
    let mut s = Scenario::errors(2.0);
    s.scrape = 30;
    s.interval = Some(60);
    out.push(named(
        s,
        "errors-2x-scrape30-int60".into(),
        "scrape 30 s, analysis interval 60 s",
    ));
    let mut s = Scenario::latency(1.3);
    s.scrape = 30;
    s.interval = Some(60);
    out.push(named(
        s,
        "latency+30%-scrape30-int60".into(),
        "scrape 30 s, analysis interval 60 s",
    ));
    out.push(Scenario::latency(1.3));
    out.push(Scenario::errors(5.0));
    out
}
