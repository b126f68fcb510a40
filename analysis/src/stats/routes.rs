//! Per-route comparison: the sequential ratio test run on each route's own counts (a route is
//! one value of a label such as ingress-nginx's `path`), next to the pooled test.
//!
//! Why: a regression confined to one route is diluted in the pooled counts (5% errors on a
//! route with a fifth of the traffic is 1.25% overall against stable's 0.6%, a ratio of 2),
//! while on its own counts it is a ratio of about 9, which the test sees far sooner.
//!
//! Alpha: the comparison's alpha is split evenly (Bonferroni) over `1 + max_routes` tests, the
//! pooled one and `max_routes` route slots, a number fixed in the Rollout and not the number of
//! routes seen so far. Routes take slots in the order they are first seen (the pre-rollout
//! baseline first, largest stable traffic first); once `max_routes - 1` named slots are taken,
//! every further route joins the last slot, "other routes", judged on their summed counts. A
//! route that appears mid-rollout starts a test with no evidence (e-value 1): an e-process that
//! starts at a stopping time is still a nonnegative supermartingale under its null, and the
//! number of tests never exceeds `1 + max_routes`, so the chance that a canary no worse than
//! `toleratedRatio` on every route is ever rolled back stays <= alpha whenever routes appear.
//! Summing routes (pooled, "other") keeps the test valid when each route gives the canary the
//! same share of its requests, which a weighted split does (the router picks the arm without
//! looking at the path); the pooled test rests on the same premise.
//!
//! Verdict: Fail when the pooled test or any route slot fails (the reason names the route).
//! Otherwise Pass per [`RoutePromotion`]: `Pooled` (default) when the pooled test passes and no
//! route is failing, so a Pass bounds false promotions of a canary `degradedRatio` times worse
//! overall by beta, and a regression on one route is caught only if its route test fails
//! first; `EveryRoute` when every slot that has seen canary traffic passes its own test (each
//! at beta: a canary `degradedRatio` times worse on any one route then passes with chance at
//! most beta), which promotes slowly when small routes have few errors. Else Inconclusive
//! with the pooled evidence and the routes nearest to a rollback in the reason.

use serde::{Deserialize, Serialize};

use super::grid::show;
use super::ratio::{update, IntervalCounts, SequentialConfig, SequentialState};
use crate::verdict::{InconclusiveCause, Verdict, VerdictKind};

/// What a per-route comparison's Pass needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RoutePromotion {
    /// The pooled test passes and no route fails.
    #[default]
    Pooled,
    /// Every route slot with canary traffic passes its own test.
    EveryRoute,
}

/// How an error comparison is split by route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteSplit {
    /// The series label that names the route (`path` for ingress-nginx).
    pub label: String,
    /// Route slots, the last one for "other routes"; alpha is split over `1 + max_routes`.
    pub max_routes: usize,
    #[serde(default)]
    pub promote: RoutePromotion,
}

/// Largest `max_routes` accepted (each slot costs alpha and status space).
pub const MAX_ROUTE_SLOTS: usize = 50;

impl RouteSplit {
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=MAX_ROUTE_SLOTS).contains(&self.max_routes) {
            return Err(format!(
                "maxRoutes {} must be in 1..={MAX_ROUTE_SLOTS}",
                self.max_routes
            ));
        }
        if !is_label_name(&self.label) {
            return Err(format!(
                "{:?} is not a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*)",
                self.label
            ));
        }
        Ok(())
    }

    /// The settings of each of the `1 + max_routes` tests.
    pub fn per_test(&self, settings: &SequentialConfig) -> SequentialConfig {
        SequentialConfig {
            alpha: settings.alpha / (1 + self.max_routes) as f64,
            ..*settings
        }
    }
}

/// Prometheus' label name rule (docs/concepts/data_model.md).
pub fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// One route slot's test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteSlot {
    /// The route's label value; `None` for the "other routes" slot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    pub state: SequentialState,
}

impl RouteSlot {
    pub fn name(&self) -> String {
        match &self.route {
            Some(r) if r.is_empty() => "(no route label)".to_string(),
            Some(r) => r.clone(),
            None => "other routes".to_string(),
        }
    }
}

/// The route slots of one comparison, in the order routes were first seen.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteState {
    pub slots: Vec<RouteSlot>,
}

impl RouteState {
    /// The slot that judges `route`, created when new (a fresh test, no evidence).
    pub fn slot_for(&mut self, route: &str, split: &RouteSplit, cfg: &SequentialConfig) -> usize {
        if let Some(i) = self
            .slots
            .iter()
            .position(|s| s.route.as_deref() == Some(route))
        {
            return i;
        }
        let named = self.slots.iter().filter(|s| s.route.is_some()).count();
        if named + 1 < split.max_routes {
            self.slots.push(RouteSlot {
                route: Some(route.to_string()),
                state: SequentialState::new(cfg),
            });
            return self.slots.len() - 1;
        }
        if let Some(i) = self.slots.iter().position(|s| s.route.is_none()) {
            return i;
        }
        self.slots.push(RouteSlot {
            route: None,
            state: SequentialState::new(cfg),
        });
        self.slots.len() - 1
    }

    /// Whether every slot's state was built for `cfg`'s ratios.
    pub fn matches(&self, cfg: &SequentialConfig) -> bool {
        self.slots.iter().all(|s| s.state.matches(cfg))
    }
}

/// Adds `per_route` (each route's counts in this window) to the slots, summing the routes that
/// share a slot. Routes are taken in the order given.
fn slot_counts(
    routes: &mut RouteState,
    split: &RouteSplit,
    cfg: &SequentialConfig,
    per_route: &[(String, IntervalCounts)],
) -> Vec<Option<IntervalCounts>> {
    let mut sums: Vec<Option<IntervalCounts>> = vec![None; routes.slots.len()];
    for (route, c) in per_route {
        let i = routes.slot_for(route, split, cfg);
        if sums.len() <= i {
            sums.resize(i + 1, None);
        }
        let s = sums[i].get_or_insert_with(IntervalCounts::default);
        s.canary_requests += c.canary_requests;
        s.canary_bad += c.canary_bad;
        s.stable_requests += c.stable_requests;
        s.stable_bad += c.stable_bad;
    }
    sums
}

/// Result of one window of a per-route comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteJudgement {
    pub pooled: SequentialState,
    pub routes: RouteState,
    pub verdict: Verdict,
}

/// Adds one window to the pooled test and to every route slot, and judges (module docs).
/// `settings.alpha` is the comparison's whole alpha; each test runs at [`RouteSplit::per_test`].
pub fn update_routes(
    split: &RouteSplit,
    settings: &SequentialConfig,
    pooled: &SequentialState,
    routes: &RouteState,
    pooled_counts: &IntervalCounts,
    per_route: &[(String, IntervalCounts)],
) -> RouteJudgement {
    let cfg = split.per_test(settings);
    let unchanged = |verdict: Verdict| RouteJudgement {
        pooled: pooled.clone(),
        routes: routes.clone(),
        verdict,
    };
    if let Err(e) = split.validate() {
        return unchanged(Verdict::error(format!("invalid route split: {e}")));
    }
    let (pooled_state, pooled_verdict) = update(&cfg, pooled, pooled_counts);
    match pooled_verdict.kind {
        VerdictKind::Error => return unchanged(pooled_verdict),
        // No canary (or stable) requests at all: no route has any either.
        VerdictKind::Inconclusive
            if pooled_verdict.cause != Some(InconclusiveCause::NotEnoughEvidence) =>
        {
            return unchanged(pooled_verdict)
        }
        _ => {}
    }
    if !routes.matches(&cfg) {
        return unchanged(Verdict::error(
            "stored per-route state was built for other ratios; reset it",
        ));
    }
    let mut next = routes.clone();
    let sums = slot_counts(&mut next, split, &cfg, per_route);
    let mut verdicts: Vec<(String, Verdict)> = Vec::new();
    for (slot, counts) in next.slots.iter_mut().zip(sums) {
        let Some(c) = counts else { continue };
        let (s, v) = update(&cfg, &slot.state, &c);
        if v.kind == VerdictKind::Error {
            return unchanged(v);
        }
        slot.state = s;
        verdicts.push((slot.name(), v));
    }
    let verdict = combine(split, &cfg, &next, pooled_verdict, &verdicts);
    RouteJudgement {
        pooled: pooled_state,
        routes: next,
        verdict,
    }
}

fn e_fail(v: &Verdict) -> f64 {
    v.evidence.as_ref().map_or(0.0, |e| e.e_fail)
}

fn combine(
    split: &RouteSplit,
    cfg: &SequentialConfig,
    routes: &RouteState,
    pooled: Verdict,
    verdicts: &[(String, Verdict)],
) -> Verdict {
    let tests = format!(
        "{} of {} route slots used, alpha {:.2}% per test",
        routes.slots.len(),
        split.max_routes,
        100.0 * cfg.alpha
    );
    if let Some((name, v)) = verdicts
        .iter()
        .filter(|(_, v)| v.kind == VerdictKind::Fail)
        .max_by(|a, b| e_fail(&a.1).total_cmp(&e_fail(&b.1)))
    {
        let mut f = v.clone();
        f.reason = format!("route {name}: {} ({tests})", v.reason);
        return f;
    }
    if pooled.kind == VerdictKind::Fail {
        let mut f = pooled;
        f.reason = format!("all routes: {} ({tests})", f.reason);
        return f;
    }
    let worst = worst_routes(verdicts);
    match split.promote {
        RoutePromotion::Pooled if pooled.kind == VerdictKind::Pass => {
            let mut p = pooled;
            p.reason = format!("all routes: {}; no route worse ({tests})", p.reason);
            p
        }
        RoutePromotion::EveryRoute
            if !routes.slots.is_empty()
                && routes
                    .slots
                    .iter()
                    .all(|s| s.state.canary_requests == 0.0 || passes(cfg, &s.state)) =>
        {
            let mut p = pooled.clone();
            p.kind = VerdictKind::Pass;
            p.cause = None;
            p.forecast = None;
            p.reason = format!(
                "every route passed its own test ({} routes; {tests})",
                routes.slots.len()
            );
            p
        }
        _ => {
            let mut i = pooled.clone();
            if i.kind == VerdictKind::Pass {
                // EveryRoute: pooled passed, some route has not yet.
                i.kind = VerdictKind::Inconclusive;
                i.cause = Some(InconclusiveCause::NotEnoughEvidence);
                i.reason = format!(
                    "all routes pass together; waiting for every route to pass its own test: {worst} ({tests})"
                );
            } else {
                i.reason = format!("all routes: {}; by route: {worst} ({tests})", i.reason);
            }
            i
        }
    }
}

fn passes(cfg: &SequentialConfig, s: &SequentialState) -> bool {
    super::ratio::evaluate(cfg, s).kind == VerdictKind::Pass
}

/// The three routes nearest to a rollback, for the reason.
fn worst_routes(verdicts: &[(String, Verdict)]) -> String {
    let mut v: Vec<&(String, Verdict)> = verdicts.iter().collect();
    v.sort_by(|a, b| e_fail(&b.1).total_cmp(&e_fail(&a.1)));
    let shown: Vec<String> = v
        .iter()
        .take(3)
        .map(|(name, v)| {
            let ev = v.evidence.as_ref();
            format!(
                "{name} ratio {} e-value {}/{}",
                v.value.map_or("n/a".to_string(), |r| format!("{r:.2}")),
                show(ev.map_or(0.0, |e| e.e_fail)),
                show(ev.map_or(0.0, |e| e.fail_threshold)),
            )
        })
        .collect();
    if shown.is_empty() {
        "no route traffic yet".to_string()
    } else {
        shown.join(", ")
    }
}

#[cfg(test)]
#[path = "routes_tests.rs"]
mod tests;
