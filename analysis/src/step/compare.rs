//! The statistical checks of one step: exact window counts (see [`crate::counters`]) fed to
//! the sequential ratio test or the SLO guard, with stable's pre-rollout baseline for the
//! latency boundary and the dispersion estimate.

use crate::builtin::{Arm, CounterSpec};
use crate::counters::{self, Counted, Window};
use crate::prometheus::QueryResult;
use crate::stats::{
    choose_boundary, forecast, latency_counts, slo_update, update, update_routes, IntervalCounts,
    RouteSplit, RouteState, SequentialConfig, SequentialState, SloConfig,
};
use crate::template::Variables;
use crate::verdict::{InconclusiveCause, Verdict};

use super::routes;
use super::window::{self, Calibration};
use super::{Ctx, MetricState, Step};

/// Stable requests needed before a latency boundary is chosen from stable's buckets.
pub const MIN_STABLE_FOR_BOUNDARY: f64 = 100.0;

/// A judged window: the verdict and where the window ended (the next one starts there).
pub struct Judged {
    pub verdict: Verdict,
    pub end_ms: i64,
}

fn with_range(vars: &Variables, range: String) -> Variables {
    let mut v = vars.clone();
    v.insert("range".into(), range);
    v
}

/// The variables of the queries for a window from `start` to now: `range` covers it plus the
/// baseline lookback.
fn window_vars(vars: &Variables, start: i64, now: i64) -> Variables {
    let w = Window {
        start_ms: start,
        end_ms: now,
    };
    with_range(vars, w.range())
}

fn counted(what: &str, r: Result<Counted, counters::CountError>) -> Step<Counted> {
    r.map_err(|e| Verdict::error(format!("{what}: {e}")))
}

/// The window `(start, end]` the arms' answers cover, or why there is none yet.
fn settle(start: i64, now: i64, answers: &[&QueryResult], what: &str) -> Step<Window> {
    match window::window_end(start, now, answers) {
        None => Err(Verdict::inconclusive(
            InconclusiveCause::NoData,
            None,
            format!("no series match the {what} selectors of either arm (check the metric name and labels)"),
        )),
        Some(end) if end <= start => Err(Verdict::inconclusive(
            InconclusiveCause::NotEnoughEvidence,
            None,
            "no new scrape since the last window; waiting (is the scrape interval longer than the analysis interval?)",
        )),
        Some(end) => Ok(Window {
            start_ms: start,
            end_ms: end,
        }),
    }
}

fn resume(saved: &Option<SequentialState>, cfg: &SequentialConfig) -> SequentialState {
    match saved {
        Some(s) if s.matches(cfg) => s.clone(),
        Some(_) => {
            tracing::warn!("comparison settings changed; restarting its evidence");
            SequentialState::new(cfg)
        }
        None => SequentialState::new(cfg),
    }
}

/// Stable's per-interval error counts in the hour before `start`, into the dispersion sums (and,
/// with a route split, into each route slot's, the busiest routes taking the named slots first).
#[allow(clippy::too_many_arguments)]
async fn error_baseline(
    ctx: &mut Ctx<'_>,
    c: &CounterSpec,
    by: Option<(&RouteSplit, &mut RouteState, &SequentialConfig)>,
    vars: &Variables,
    seq: &mut SequentialState,
    start: i64,
    chunk_ms: i64,
) -> Step<()> {
    let v = with_range(vars, window::baseline_range());
    let at = window::to_time(start);
    let all = ctx.run_at(&c.all_query(Arm::Stable), &v, at).await?;
    let bad = ctx.run_at(&c.bad_query(Arm::Stable), &v, at).await?;
    let w = window::baseline(start);
    let err = |e: counters::CountError| Verdict::error(format!("stable baseline: {e}"));
    let n = counters::chunked(&all, w, chunk_ms).map_err(err)?;
    let x = counters::chunked(&bad, w, chunk_ms).map_err(err)?;
    window::add_chunks(&mut seq.dispersion, &n, &x);
    if let Some((split, state, cfg)) = by {
        let empty = QueryResult::Matrix(Vec::new());
        let answers = routes::Answers {
            canary_all: &empty,
            canary_bad: &empty,
            stable_all: &all,
            stable_bad: &bad,
        };
        let groups_all = routes::split_by(&all, &split.label).map_err(err)?;
        let groups_bad = routes::split_by(&bad, &split.label).map_err(err)?;
        for (route, _) in routes::route_counts(&answers, &split.label, w).map_err(err)? {
            let Some(route_all) = groups_all.get(&route) else {
                continue;
            };
            let i = state.slot_for(&route, split, cfg);
            let n = counters::chunked(route_all, w, chunk_ms).map_err(err)?;
            let x = match groups_bad.get(&route) {
                Some(b) => counters::chunked(b, w, chunk_ms).map_err(err)?,
                None => vec![0.0; n.len()],
            };
            window::add_chunks(&mut state.slots[i].state.dispersion, &n, &x);
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
pub async fn errors(
    ctx: &mut Ctx<'_>,
    c: &CounterSpec,
    by: Option<&RouteSplit>,
    settings: &SequentialConfig,
    vars: &Variables,
    st: &mut MetricState,
    start: i64,
    chunk_ms: i64,
) -> Step<Judged> {
    let now = ctx.now.timestamp_millis();
    let v = window_vars(vars, start, now);
    let ca = ctx.run(&c.all_query(Arm::Canary), &v).await?;
    let sa = ctx.run(&c.all_query(Arm::Stable), &v).await?;
    let cb = ctx.run(&c.bad_query(Arm::Canary), &v).await?;
    let sb = ctx.run(&c.bad_query(Arm::Stable), &v).await?;
    let w = settle(start, now, &[&ca, &sa], "request counter")?;
    let counts = IntervalCounts {
        canary_requests: counted("canary requests", counters::count(&ca, w))?.value,
        canary_bad: counted("canary bad events", counters::count(&cb, w))?.value,
        stable_requests: counted("stable requests", counters::count(&sa, w))?.value,
        stable_bad: counted("stable bad events", counters::count(&sb, w))?.value,
    };
    let Some(split) = by else {
        let mut seq = resume(&st.sequential, settings);
        if !st.baseline_read {
            error_baseline(ctx, c, None, vars, &mut seq, start, chunk_ms).await?;
            st.baseline_read = true;
        }
        let (s, verdict) = update(settings, &seq, &counts);
        let verdict = verdict.with_forecast(forecast(settings, &s, &counts, w.seconds()));
        st.sequential = Some(s);
        return Ok(Judged {
            verdict,
            end_ms: w.end_ms,
        });
    };
    let per_route = routes::route_counts(
        &routes::Answers {
            canary_all: &ca,
            canary_bad: &cb,
            stable_all: &sa,
            stable_bad: &sb,
        },
        &split.label,
        w,
    )
    .map_err(|e| Verdict::error(format!("per-route counts: {e}")))?;
    let cfg = split.per_test(settings);
    let mut seq = resume(&st.sequential, &cfg);
    let mut route_state = match &st.routes {
        Some(r) if r.matches(&cfg) => r.clone(),
        Some(_) => {
            tracing::warn!("comparison settings changed; restarting the per-route evidence");
            RouteState::default()
        }
        None => RouteState::default(),
    };
    if !st.baseline_read {
        error_baseline(
            ctx,
            c,
            Some((split, &mut route_state, &cfg)),
            vars,
            &mut seq,
            start,
            chunk_ms,
        )
        .await?;
        st.baseline_read = true;
    }
    let j = update_routes(split, settings, &seq, &route_state, &counts, &per_route);
    let verdict = j
        .verdict
        .with_forecast(forecast(&cfg, &j.pooled, &counts, w.seconds()));
    st.sequential = Some(j.pooled);
    st.routes = Some(j.routes);
    Ok(Judged {
        verdict,
        end_ms: w.end_ms,
    })
}

fn histogram(what: &str, r: &QueryResult, w: Window) -> Step<crate::stats::Histogram> {
    counters::buckets(r, w)
        .map(|(h, _)| h)
        .map_err(|e| Verdict::error(format!("{what}: {e}")))
}

/// Latency boundary from stable's hour before `start` (and its dispersion at that boundary).
async fn latency_baseline(
    ctx: &mut Ctx<'_>,
    h: &CounterSpec,
    vars: &Variables,
    seq: &mut SequentialState,
    quantile: f64,
    start: i64,
    chunk_ms: i64,
) -> Step<()> {
    let v = with_range(vars, window::baseline_range());
    let r = ctx
        .run_at(&h.all_query(Arm::Stable), &v, window::to_time(start))
        .await?;
    let w = window::baseline(start);
    let base = histogram("stable baseline buckets", &r, w)?;
    if seq.boundary.is_none() {
        seq.boundary = choose_boundary(&base, quantile, MIN_STABLE_FOR_BOUNDARY);
    }
    if let Some(b) = seq.boundary {
        let (n, x) = window::latency_chunks(&r, w, chunk_ms, b)
            .map_err(|e| Verdict::error(format!("stable baseline buckets: {e}")))?;
        window::add_chunks(&mut seq.dispersion, &n, &x);
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
pub async fn latency(
    ctx: &mut Ctx<'_>,
    h: &CounterSpec,
    quantile: f64,
    boundary: Option<f64>,
    settings: &SequentialConfig,
    vars: &Variables,
    st: &mut MetricState,
    start: i64,
    chunk_ms: i64,
) -> Step<Judged> {
    if !(quantile > 0.0 && quantile < 1.0) {
        return Err(Verdict::error(format!(
            "latency quantile {quantile} must be in (0, 1)"
        )));
    }
    let now = ctx.now.timestamp_millis();
    let v = window_vars(vars, start, now);
    let sr = ctx.run(&h.all_query(Arm::Stable), &v).await?;
    let cr = ctx.run(&h.all_query(Arm::Canary), &v).await?;
    let w = settle(start, now, &[&cr, &sr], "histogram bucket")?;
    let stable = histogram("stable buckets", &sr, w)?;
    let canary = histogram("canary buckets", &cr, w)?;
    let mut seq = resume(&st.sequential, settings);
    if seq.boundary.is_none() {
        seq.boundary = boundary;
    }
    if !st.baseline_read {
        latency_baseline(ctx, h, vars, &mut seq, quantile, start, chunk_ms).await?;
        st.baseline_read = true;
    }
    let Some(b) = seq.boundary else {
        // Too little stable traffic before the rollout: this window calibrates, it is not judged.
        let cal = st.calibration.get_or_insert_with(Calibration::default);
        cal.add(&stable);
        seq.boundary = choose_boundary(&cal.histogram(), quantile, MIN_STABLE_FOR_BOUNDARY);
        let have = cal.total;
        if seq.boundary.is_some() {
            st.calibration = None;
        }
        st.sequential = Some(seq);
        let cause = if have > 0.0 {
            InconclusiveCause::NotEnoughEvidence
        } else {
            InconclusiveCause::NoTraffic
        };
        return Ok(Judged {
            verdict: Verdict::inconclusive(
                cause,
                None,
                format!(
                    "choosing the latency boundary from stable's traffic: {} of {MIN_STABLE_FOR_BOUNDARY} stable requests (windows used for this are not judged)",
                    have.round()
                ),
            ),
            end_ms: w.end_ms,
        });
    };
    let counts = latency_counts(&stable, &canary, b).ok_or_else(|| {
        Verdict::error(format!(
            "latency boundary {b}s is not a bucket boundary of both arms' histograms"
        ))
    })?;
    let (s, verdict) = update(settings, &seq, &counts);
    let verdict = verdict.with_forecast(forecast(settings, &s, &counts, w.seconds()));
    st.sequential = Some(s);
    Ok(Judged {
        verdict,
        end_ms: w.end_ms,
    })
}

pub async fn slo(
    ctx: &mut Ctx<'_>,
    c: &CounterSpec,
    settings: &SloConfig,
    vars: &Variables,
    st: &mut MetricState,
    start: i64,
) -> Step<Judged> {
    let now = ctx.now.timestamp_millis();
    let v = window_vars(vars, start, now);
    let ca = ctx.run(&c.all_query(Arm::Canary), &v).await?;
    let cb = ctx.run(&c.bad_query(Arm::Canary), &v).await?;
    let w = settle(start, now, &[&ca], "canary request counter")?;
    let n = counted("canary requests", counters::count(&ca, w))?.value;
    let x = counted("canary bad events", counters::count(&cb, w))?.value;
    let (s, verdict) = slo_update(settings, &st.slo.unwrap_or_default(), n, x);
    st.slo = Some(s);
    Ok(Judged {
        verdict,
        end_ms: w.end_ms,
    })
}
