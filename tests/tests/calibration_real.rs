//! Calibration of the simulated Prometheus against the real one.
//!
//! Simulated rollouts (ingress-nginx-shaped counters: both arms under the main Ingress, the
//! canary arm with `canary="<ns>-<svc>-<port>"`, a 15 s scrape, canary series appearing
//! mid-window, the ingress-nginx controller restarting mid-rollout) are written as OpenMetrics,
//! backfilled into a real Prometheus with `promtool tsdb create-blocks-from openmetrics`, and
//! the product's analysis path (the bridge's built-in metrics and `analyse_step`) is run at
//! historical evaluation times twice: with the real HTTP client against that Prometheus, and
//! against the simulated Prometheus holding the same samples. Counts and verdicts must agree.
//!
//! `SLUICE_CALIBRATION_ROLLOUTS=N` runs N seeds (default 2) for a longer calibration.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use sluice_analysis::{
    analyse_step, AnalysisState, PrometheusClient, PrometheusConfig, Provider, SimPrometheus,
    VerdictKind,
};
use sluice_controller::analysis_bridge::{resolve_metrics, StepVars};
use sluice_crds::{AnalysisSpec, MetricSpec};
use sluice_tests::{openmetrics, Prometheus};

/// xorshift64*: deterministic and dependency-free.
struct Rng(u64);

impl Rng {
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }
}

const LE: [&str; 6] = ["0.05", "0.1", "0.25", "0.5", "1", "+Inf"];
const SCRAPE_S: i64 = 15;
const HISTORY_S: i64 = 900;
const ROLLOUT_S: i64 = 900;
const RESTART_AT_S: i64 = 420;

/// One arm's behaviour: error probability and the chance of landing in each latency bucket.
struct Arm {
    err: f64,
    /// Probability of each bucket slot (non-cumulative), summing to 1.
    slots: [f64; 6],
}

const FAST: [f64; 6] = [0.6, 0.3, 0.07, 0.02, 0.01, 0.0];
const SLOW: [f64; 6] = [0.2, 0.3, 0.2, 0.15, 0.1, 0.05];

fn serve(p: &SimPrometheus, rng: &mut Rng, ingress: &str, canary: &str, arm: &Arm, n: u32) {
    let labels = |status: &'static str| {
        [
            ("namespace", "shop"),
            ("ingress", ingress),
            ("canary", canary),
            ("status", status),
        ]
    };
    let mut slots = [0u32; 6];
    let mut errors = 0;
    for _ in 0..n {
        if rng.unit() < arm.err {
            errors += 1;
        }
        let (mut u, mut i) = (rng.unit(), 0);
        while i < 5 && u >= arm.slots[i] {
            u -= arm.slots[i];
            i += 1;
        }
        slots[i] += 1;
    }
    if n > errors {
        p.add(
            "nginx_ingress_controller_requests",
            &labels("200"),
            f64::from(n - errors),
        );
    }
    if errors > 0 {
        p.add(
            "nginx_ingress_controller_requests",
            &labels("500"),
            f64::from(errors),
        );
    }
    let mut acc = 0u32;
    for (le, k) in LE.iter().zip(slots) {
        acc += k;
        if n > 0 {
            p.add(
                "nginx_ingress_controller_request_duration_seconds_bucket",
                &[
                    ("namespace", "shop"),
                    ("ingress", ingress),
                    ("canary", canary),
                    ("le", le),
                ],
                f64::from(acc),
            );
        }
    }
}

/// Fills `p` with two rollouts ending at `end`: Ingress `good` (healthy canary) and `bad`
/// (5x errors, slower), 25% of traffic to the canary during the rollout.
fn simulate(p: &SimPrometheus, seed: u64, rollout_start: DateTime<Utc>) {
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let start = rollout_start.timestamp_millis() - HISTORY_S * 1000;
    let phase = (seed as i64) % SCRAPE_S;
    let stable = Arm {
        err: 0.01,
        slots: FAST,
    };
    let good = Arm {
        err: 0.01,
        slots: FAST,
    };
    let bad = Arm {
        err: 0.05,
        slots: SLOW,
    };
    for s in 0..HISTORY_S + ROLLOUT_S {
        let t = start + s * 1000;
        let in_rollout = s >= HISTORY_S;
        if s == HISTORY_S + RESTART_AT_S {
            p.restart();
        }
        for (ingress, canary_arm) in [("good", &good), ("bad", &bad)] {
            let total = 16 + (rng.unit() * 8.0) as u32;
            let to_canary = if in_rollout { total / 4 } else { 0 };
            serve(p, &mut rng, ingress, "", &stable, total - to_canary);
            if to_canary > 0 {
                serve(
                    p,
                    &mut rng,
                    ingress,
                    "shop-web-canary-80",
                    canary_arm,
                    to_canary,
                );
            }
        }
        if (s + phase) % SCRAPE_S == 0 {
            p.scrape(t + 1000);
        }
    }
}

fn metrics() -> Vec<sluice_analysis::MetricSpec> {
    let spec = AnalysisSpec {
        interval: "30s".into(),
        metrics: ["nginx-errors-vs-stable", "nginx-latency-vs-stable"]
            .iter()
            .map(|b| MetricSpec {
                name: b.to_string(),
                builtin: Some(b.to_string()),
                ..MetricSpec::default()
            })
            .collect(),
        ..AnalysisSpec::default()
    };
    let (ok, bad) = resolve_metrics(&spec, &[], Provider::NginxIngress);
    assert!(bad.is_empty(), "{bad:?}");
    ok
}

fn vars(ingress: &str) -> sluice_analysis::Variables {
    StepVars {
        namespace: "shop".into(),
        name: "web".into(),
        primary: "web-primary".into(),
        canary: "web-canary".into(),
        interval: "30s".into(),
        ingress: ingress.into(),
        service: "web".into(),
        port: "80".into(),
    }
    .to_variables()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_and_simulated_prometheus_give_the_same_counts_and_verdicts() {
    let rollouts: u64 = std::env::var("SLUICE_CALIBRATION_ROLLOUTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    // Two hours back, on a whole minute: inside the default retention, clear of the head block.
    let now = Utc::now().timestamp() / 60 * 60;
    let rollout_start = Utc
        .timestamp_opt(now - 2 * 3600 - ROLLOUT_S, 0)
        .single()
        .expect("a valid time");
    let specs = metrics();
    let mut compared = 0;
    for seed in 1..=rollouts {
        let sim = SimPrometheus::new();
        simulate(&sim, seed, rollout_start);
        let prom = Prometheus::builder()
            .backfill(openmetrics(&sim.dump()))
            .start()
            .await
            .expect("prometheus with the backfilled TSDB");
        let client = PrometheusClient::new(PrometheusConfig::new(prom.url())).unwrap();
        for ingress in ["good", "bad"] {
            let v = vars(ingress);
            let (mut real_state, mut sim_state) =
                (AnalysisState::default(), AnalysisState::default());
            let mut verdicts = Vec::new();
            for k in 1..=ROLLOUT_S / 30 {
                let at = rollout_start + chrono::Duration::seconds(30 * k);
                let real = analyse_step(&specs, &client, &v, &real_state, at).await;
                let simd = analyse_step(&specs, &sim, &v, &sim_state, at).await;
                for (r, s) in real.verdicts.iter().zip(&simd.verdicts) {
                    assert_ne!(
                        r.verdict.kind,
                        VerdictKind::Error,
                        "{}: {}",
                        r.name,
                        r.verdict.reason
                    );
                    assert_eq!(r.queries, s.queries, "same queries");
                    assert_eq!(
                        (r.verdict.kind, r.verdict.cause),
                        (s.verdict.kind, s.verdict.cause),
                        "seed {seed} {ingress} t+{}s {}: real {} / simulated {}",
                        30 * k,
                        r.name,
                        r.verdict.reason,
                        s.verdict.reason
                    );
                    let (re, se) = (r.verdict.evidence.as_ref(), s.verdict.evidence.as_ref());
                    if let (Some(re), Some(se)) = (re, se) {
                        for (a, b, what) in [
                            (re.canary_requests, se.canary_requests, "canary requests"),
                            (re.canary_bad, se.canary_bad, "canary bad"),
                            (re.stable_requests, se.stable_requests, "stable requests"),
                            (re.stable_bad, se.stable_bad, "stable bad"),
                        ] {
                            assert_eq!(
                                a,
                                b,
                                "seed {seed} {ingress} t+{}s {}: {what}",
                                30 * k,
                                r.name
                            );
                        }
                        compared += 1;
                    }
                }
                assert_eq!(
                    real.state.metrics.keys().collect::<Vec<_>>(),
                    simd.state.metrics.keys().collect::<Vec<_>>()
                );
                verdicts.push(real.summary.kind);
                if matches!(real.summary.kind, VerdictKind::Fail | VerdictKind::Pass) {
                    break;
                }
                real_state = real.state;
                sim_state = simd.state;
            }
            println!("seed {seed} {ingress}: {verdicts:?}");
            let last = verdicts.last().copied();
            if ingress == "bad" {
                assert_eq!(
                    last,
                    Some(VerdictKind::Fail),
                    "seed {seed}: the bad canary is caught"
                );
            } else {
                assert_ne!(
                    last,
                    Some(VerdictKind::Fail),
                    "seed {seed}: the healthy canary stands"
                );
            }
        }
        drop(prom);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    println!("compared {compared} judged windows: identical counts and verdicts");
    assert!(compared > 0);
}
