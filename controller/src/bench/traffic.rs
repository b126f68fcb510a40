//! Seeded request streams for stable and canary: Poisson arrivals at a total rate, each request
//! routed to the canary with the current weight, Bernoulli errors, lognormal latency bucketed
//! into a Prometheus-style histogram. One record per simulated second.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::scenario::Scenario;

/// Upper bounds (seconds) of the latency histogram: Prometheus' default buckets, which
/// ingress-nginx uses for `nginx_ingress_controller_request_duration_seconds`; +Inf is implied.
pub const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Histogram slots: the finite buckets plus +Inf.
pub const SLOTS: usize = BUCKETS.len() + 1;

/// Median latency of a healthy version (seconds).
pub const BASE_MEDIAN: f64 = 0.1;
/// Healthy p99 (seconds); with the median it fixes the lognormal spread.
pub const BASE_P99: f64 = 0.3;
/// z of the 0.99 quantile of the standard normal.
const Z99: f64 = 2.326_347_874;

/// Counts of one arm in one second (or summed over a window).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ArmCounts {
    pub requests: u32,
    pub errors: u32,
    /// Requests per latency slot (not cumulative); the last slot is +Inf.
    pub buckets: [u32; SLOTS],
}

impl ArmCounts {
    pub fn add(&mut self, o: &ArmCounts) {
        self.requests += o.requests;
        self.errors += o.errors;
        for (a, b) in self.buckets.iter_mut().zip(o.buckets.iter()) {
            *a += b;
        }
    }

    /// These counts less `o` (a part of them).
    pub fn minus(&self, o: &ArmCounts) -> ArmCounts {
        let mut out = *self;
        out.requests -= o.requests.min(out.requests);
        out.errors -= o.errors.min(out.errors);
        for (a, b) in out.buckets.iter_mut().zip(o.buckets.iter()) {
            *a -= (*b).min(*a);
        }
        out
    }

    /// Requests slower than the bucket bound `le` (which must be one of [`BUCKETS`]).
    pub fn slower_than(&self, le: f64) -> u32 {
        let idx = BUCKETS.iter().position(|b| (*b - le).abs() < 1e-12);
        idx.map_or(0, |i| self.buckets[i + 1..].iter().sum())
    }
}

/// What happened in one simulated second.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Second {
    pub canary: ArmCounts,
    pub stable: ArmCounts,
    /// The scenario's hot route's part of `canary` / `stable` (zero without one).
    pub canary_hot: ArmCounts,
    pub stable_hot: ArmCounts,
    /// The canary's pods are dead during this second (scenario `canary_dies_at`).
    pub canary_dead: bool,
    /// Canary weight (percent) the router served during this second.
    pub weight: i32,
}

/// Per-second history of a run; index = second since the change was seen.
#[derive(Debug, Clone, Default)]
pub struct History {
    pub seconds: Vec<Second>,
}

impl History {
    /// Sums over the seconds `[from, to)` (clamped to what exists).
    pub fn window(&self, from: u64, to: u64) -> (ArmCounts, ArmCounts) {
        let (mut c, mut s) = (ArmCounts::default(), ArmCounts::default());
        let end = (to as usize).min(self.seconds.len());
        let start = (from as usize).min(end);
        for sec in &self.seconds[start..end] {
            c.add(&sec.canary);
            s.add(&sec.stable);
        }
        (c, s)
    }

    pub fn now(&self) -> u64 {
        self.seconds.len() as u64
    }
}

/// Seconds per burst block: the error-rate multiplier is drawn anew every block.
pub const BURST_BLOCK: u64 = 10;

/// Generates seconds for one scenario and seed.
pub struct Traffic {
    rng: StdRng,
    scenario: Scenario,
    sigma: f64,
    /// Current burst block and the (canary, stable) error-rate multipliers in it.
    block: Option<u64>,
    mult: (f64, f64),
    /// When the canary dies (scenario `canary_dies_at`), once it first served that weight.
    death: Option<u64>,
}

impl Traffic {
    pub fn new(scenario: &Scenario, seed: u64) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
            scenario: scenario.clone(),
            sigma: (BASE_P99 / BASE_MEDIAN).ln() / Z99,
            block: None,
            mult: (1.0, 1.0),
            death: None,
        }
    }

    fn burst_multipliers(&mut self, t: u64) -> (f64, f64) {
        let Some(b) = self.scenario.burst else {
            return (1.0, 1.0);
        };
        if self.block != Some(t / BURST_BLOCK) {
            self.block = Some(t / BURST_BLOCK);
            let a = gamma_mean_one(&mut self.rng, b.cv);
            let c = if b.shared {
                a
            } else {
                gamma_mean_one(&mut self.rng, b.cv)
            };
            self.mult = (a, c);
        }
        self.mult
    }

    /// Traffic of second `t` with `weight`% routed to the canary.
    pub fn second(&mut self, t: u64, weight: i32) -> Second {
        let sc = &self.scenario;
        let mut out = Second {
            weight,
            ..Second::default()
        };
        if let Some(w) = sc.canary_dies_at {
            if self.death.is_none() && weight >= w {
                self.death = Some(t + super::scenario::DEATH_DELAY);
            }
        }
        let dead = self.death.is_some_and(|d| t >= d);
        out.canary_dead = dead;
        let n = poisson(&mut self.rng, sc.rate);
        let p_canary = if sc.canary_unreachable {
            0.0
        } else {
            f64::from(weight.clamp(0, 100)) / 100.0
        };
        let spike = sc.spike.filter(|s| t >= s.from && t < s.to);
        let (m_canary, m_stable) = self.burst_multipliers(t);
        let sc = &self.scenario;
        for _ in 0..n {
            let canary = self.rng.random::<f64>() < p_canary;
            // Drawn only with a hot route, so other scenarios keep their random streams.
            let hot = sc
                .hot_route
                .as_ref()
                .filter(|h| self.rng.random::<f64>() < h.share);
            let mut p_err = match hot {
                Some(h) if canary => (h.canary_error * m_canary).min(1.0),
                _ if canary => (sc.base_error * sc.canary_error_factor * m_canary).min(1.0),
                _ => (sc.base_error * m_stable).min(1.0),
            };
            if let Some(s) = spike {
                p_err = p_err.max(s.error_rate);
            }
            if canary && dead {
                p_err = 1.0;
            }
            let scale = if canary {
                sc.canary_latency_factor
            } else {
                1.0
            };
            let latency = scale * BASE_MEDIAN * (self.sigma * normal(&mut self.rng)).exp();
            let error = self.rng.random::<f64>() < p_err;
            let slot = BUCKETS
                .iter()
                .position(|b| latency <= *b)
                .unwrap_or(BUCKETS.len());
            let (arm, arm_hot) = if canary {
                (&mut out.canary, &mut out.canary_hot)
            } else {
                (&mut out.stable, &mut out.stable_hot)
            };
            for a in std::iter::once(arm).chain(hot.map(|_| arm_hot)) {
                a.requests += 1;
                a.errors += u32::from(error);
                a.buckets[slot] += 1;
            }
        }
        out
    }
}

/// Poisson sample by inversion (rates here are small: at most a few hundred per second).
fn poisson(rng: &mut StdRng, lambda: f64) -> u32 {
    if lambda <= 0.0 {
        return 0;
    }
    if lambda > 200.0 {
        // Normal approximation keeps large rates cheap.
        return (lambda + lambda.sqrt() * normal(rng)).round().max(0.0) as u32;
    }
    let u: f64 = rng.random();
    let (mut k, mut p) = (0u32, (-lambda).exp());
    let mut cdf = p;
    while u > cdf && k < 10_000 {
        k += 1;
        p *= lambda / f64::from(k);
        cdf += p;
    }
    k
}

/// A Gamma variate with mean 1 and coefficient of variation `cv` (shape 1/cv², scale cv²), by
/// Marsaglia & Tsang (ACM TOMS 26(3), 2000), with their boost u^(1/k) for shapes below 1.
pub fn gamma_mean_one(rng: &mut StdRng, cv: f64) -> f64 {
    if cv.is_nan() || cv <= 0.0 {
        return 1.0;
    }
    let k = 1.0 / (cv * cv);
    let (shape, boost) = if k < 1.0 {
        let u: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
        (k + 1.0, u.powf(1.0 / k))
    } else {
        (k, 1.0)
    };
    let d = shape - 1.0 / 3.0;
    let c = 1.0 / (9.0 * d).sqrt();
    loop {
        let x = normal(rng);
        let v = (1.0 + c * x).powi(3);
        if v <= 0.0 {
            continue;
        }
        let u: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
        if u.ln() < 0.5 * x * x + d - d * v + d * v.ln() {
            return d * v * boost * cv * cv;
        }
    }
}

/// Standard normal by Box-Muller.
fn normal(rng: &mut StdRng) -> f64 {
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Fraction of a version's requests slower than `le`, with latencies scaled by `factor`.
pub fn fraction_slower(le: f64, factor: f64) -> f64 {
    let sigma = (BASE_P99 / BASE_MEDIAN).ln() / Z99;
    let z = (le / (factor * BASE_MEDIAN)).ln() / sigma;
    1.0 - normal_cdf(z)
}

fn normal_cdf(z: f64) -> f64 {
    use erf_approx as e;
    0.5 * (1.0 + e::erf(z / std::f64::consts::SQRT_2))
}

/// erf without extra dependencies (Abramowitz-Stegun 7.1.26, error < 1.5e-7; enough for a table).
mod erf_approx {
    pub fn erf(x: f64) -> f64 {
        let sign = if x < 0.0 { -1.0 } else { 1.0 };
        let x = x.abs();
        let t = 1.0 / (1.0 + 0.327_591_1 * x);
        let y = 1.0
            - (((((1.061_405_429 * t - 1.453_152_027) * t) + 1.421_413_741) * t - 0.284_496_736)
                * t
                + 0.254_829_592)
                * t
                * (-x * x).exp();
        sign * y
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::scenario::Scenario;

    #[test]
    fn rates_and_routing_match_the_scenario() {
        let mut sc = Scenario::healthy();
        sc.base_error = 0.05;
        let mut tr = Traffic::new(&sc, 1);
        let mut h = History::default();
        for t in 0..2000 {
            h.seconds.push(tr.second(t, 25));
        }
        let (c, s) = h.window(0, 2000);
        let total = f64::from(c.requests + s.requests);
        assert!((total / 2000.0 - sc.rate).abs() < 0.5, "{total}");
        let share = f64::from(c.requests) / total;
        assert!((share - 0.25).abs() < 0.02, "{share}");
        let err = f64::from(s.errors) / f64::from(s.requests);
        assert!((err - 0.05).abs() < 0.01, "{err}");
        let slow = f64::from(s.slower_than(0.25)) / f64::from(s.requests);
        assert!((slow - fraction_slower(0.25, 1.0)).abs() < 0.01, "{slow}");
    }

    #[test]
    fn hot_route_is_a_subset_and_a_dead_canary_errs_on_every_request() {
        let sc = crate::bench::scenario::faults();
        let one = sc.iter().find(|s| s.name == "one-endpoint").unwrap();
        let mut tr = Traffic::new(one, 5);
        let mut h = History::default();
        for t in 0..3000 {
            h.seconds.push(tr.second(t, 50));
        }
        let (hot_c, hot_s) = h.seconds.iter().fold(
            (ArmCounts::default(), ArmCounts::default()),
            |(mut c, mut s), x| {
                c.add(&x.canary_hot);
                s.add(&x.stable_hot);
                (c, s)
            },
        );
        let (c, s) = h.window(0, 3000);
        let share = f64::from(hot_c.requests + hot_s.requests) / f64::from(c.requests + s.requests);
        assert!((share - 0.2).abs() < 0.02, "{share}");
        let hot_err = f64::from(hot_c.errors) / f64::from(hot_c.requests);
        assert!((hot_err - 0.05).abs() < 0.01, "{hot_err}");
        let rest = c.minus(&hot_c);
        let rest_err = f64::from(rest.errors) / f64::from(rest.requests);
        assert!((rest_err - 0.005).abs() < 0.003, "{rest_err}");

        let dies = sc.iter().find(|s| s.name == "canary-dies-at-25").unwrap();
        let mut tr = Traffic::new(dies, 5);
        let secs: Vec<Second> = (0..200)
            .map(|t| tr.second(t, if t < 100 { 10 } else { 25 }))
            .collect();
        let first_dead = secs.iter().position(|s| s.canary_dead);
        assert_eq!(
            first_dead,
            Some(100 + crate::bench::scenario::DEATH_DELAY as usize)
        );
        for s in &secs[120..] {
            assert_eq!(s.canary.errors, s.canary.requests);
        }
        assert!(secs[..120].iter().all(|s| !s.canary_dead));
    }

    #[test]
    fn gamma_multipliers_have_mean_one_and_the_asked_cv() {
        let mut rng = StdRng::seed_from_u64(7);
        for cv in [0.5, 3.0] {
            let xs: Vec<f64> = (0..200_000).map(|_| gamma_mean_one(&mut rng, cv)).collect();
            let mean = xs.iter().sum::<f64>() / xs.len() as f64;
            let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / xs.len() as f64;
            assert!((mean - 1.0).abs() < 0.05, "cv {cv}: mean {mean}");
            assert!(
                (var.sqrt() / mean / cv - 1.0).abs() < 0.1,
                "cv {cv}: sd {}",
                var.sqrt()
            );
        }
    }

    #[test]
    fn erf_is_accurate_enough() {
        assert!((erf_approx::erf(1.0) - 0.842_700_79).abs() < 1e-6);
        assert!((normal_cdf(2.326_347_874) - 0.99).abs() < 1e-6);
    }
}
