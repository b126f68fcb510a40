//! Analysis: absorb a run (per-metric records, run counters, limits) and schedule the next one.
//! A run passes only if every metric passes; `Pending` (a sequential test still collecting
//! evidence) changes no counter.

use sluice_crds::{ErrorPolicy, InconclusivePolicy, Phase, Step};

use super::ctx::{add, Ctx};
use super::model::{AnalysisRun, Effect, EventType, VerdictKind};
use super::rollback;

/// The verdict of a whole run: Fail beats Error beats Inconclusive beats Pending beats Pass.
/// A run without metrics is Inconclusive: no data is never a pass.
pub fn run_verdict(run: &AnalysisRun) -> VerdictKind {
    if run.metrics.is_empty() {
        return VerdictKind::Inconclusive;
    }
    let has = |k: VerdictKind| run.metrics.iter().any(|m| m.verdict == k);
    [
        VerdictKind::Fail,
        VerdictKind::Error,
        VerdictKind::Inconclusive,
        VerdictKind::Pending,
    ]
    .into_iter()
    .find(|k| has(*k))
    .unwrap_or(VerdictKind::Pass)
}

/// What absorbing the observed run led to.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Absorbed {
    Nothing,
    Counted,
    Aborted,
}

/// Take the observed run into account once (newer than `last_run_at`, for the canary revision).
pub(crate) fn absorb(cx: &mut Ctx) -> Absorbed {
    let obs = cx.obs;
    let Some(run) = obs.analysis.as_ref() else {
        return Absorbed::Nothing;
    };
    if !cx.plan.analysis_active || cx.st.canary_revision.as_deref() != Some(run.revision.as_str()) {
        return Absorbed::Nothing;
    }
    if cx.st.analysis.last_run_at.is_some_and(|t| run.at <= t) {
        return Absorbed::Nothing;
    }
    let rollout_spec = cx.spec;
    let Some(spec) = rollout_spec.analysis.as_ref() else {
        return Absorbed::Nothing;
    };
    record_metrics(cx, run);
    let a = &mut cx.st.analysis;
    a.last_run_at = Some(run.at);
    a.runs += 1;
    let verdict = run_verdict(run);
    let error_hold = a.consecutive_errors > spec.error_limit;
    if error_hold && verdict != VerdictKind::Error {
        // Queries work again: the hold for errors ends by itself (onErrors: resume, or a
        // human-awaited hold that a good run ends as well: the errors are gone).
        a.error_hold_since = None;
        let msg = format!(
            "queries work again after {} failed runs: analysis resumes",
            a.consecutive_errors
        );
        cx.st.set_condition(
            super::conditions::PAUSED,
            false,
            "AnalysisRecovered",
            &msg,
            run.at,
        );
        cx.event(EventType::Normal, "AnalysisRecovered", msg);
    }
    let a = &mut cx.st.analysis;
    match verdict {
        VerdictKind::Pass => {
            a.consecutive_passes += 1;
            a.consecutive_inconclusive = 0;
            a.consecutive_errors = 0;
        }
        VerdictKind::Fail => {
            a.failed_runs += 1;
            a.consecutive_passes = 0;
            a.consecutive_inconclusive = 0;
            a.consecutive_errors = 0;
            let detail = describe(run, VerdictKind::Fail);
            let (failed, limit) = (a.failed_runs, spec.failure_limit);
            if failed > limit {
                let reason = format!("analysis failed: {detail}");
                rollback::start(cx, "analysis", &reason, None, None);
                return Absorbed::Aborted;
            }
            cx.event(
                EventType::Warning,
                "AnalysisFailed",
                format!("failed run {failed} of {} tolerated: {detail}", limit + 1),
            );
        }
        VerdictKind::Inconclusive => {
            a.consecutive_inconclusive += 1;
            a.consecutive_passes = 0;
            a.consecutive_errors = 0;
            if a.consecutive_inconclusive > spec.inconclusive_limit {
                let reason = format!(
                    "analysis inconclusive: {}",
                    describe(run, VerdictKind::Inconclusive)
                );
                if spec.on_inconclusive == InconclusivePolicy::Fail {
                    rollback::start(cx, "analysis", &reason, None, None);
                    return Absorbed::Aborted;
                }
                cx.event(
                    EventType::Warning,
                    "AnalysisInconclusive",
                    format!("{reason}, waiting for a human"),
                );
            }
        }
        VerdictKind::Error => {
            a.consecutive_errors += 1;
            a.consecutive_passes = 0;
            a.consecutive_inconclusive = 0;
            if a.consecutive_errors == spec.error_limit + 1 {
                a.error_hold_since = Some(run.at);
                let reason = format!("analysis errors: {}", describe(run, VerdictKind::Error));
                let next = match spec.on_errors {
                    ErrorPolicy::Resume => "held until queries work again",
                    ErrorPolicy::Pause => "waiting for a human",
                };
                cx.event(
                    EventType::Warning,
                    "AnalysisErrors",
                    format!("{reason}, {next}"),
                );
            }
        }
        VerdictKind::Pending => {}
    }
    Absorbed::Counted
}

fn record_metrics(cx: &mut Ctx, run: &AnalysisRun) {
    for m in &run.metrics {
        let rec = cx.st.metric_mut(&m.name);
        match m.verdict {
            VerdictKind::Pass => rec.passed += 1,
            VerdictKind::Fail => rec.failed += 1,
            VerdictKind::Inconclusive => rec.inconclusive += 1,
            VerdictKind::Error => rec.errors += 1,
            VerdictKind::Pending => {}
        }
        rec.last_value = m.value;
        rec.last_verdict = Some(m.verdict.as_str().to_string());
        rec.last_reason = Some(m.reason.clone());
        rec.last_time = Some(run.at);
        rec.forecast = m.forecast.clone();
        if m.sequential_state.is_some() {
            rec.sequential_state = m.sequential_state.clone();
        }
    }
}

/// A value for people: four significant digits, no trailing zeros (12.589254 -> "12.59").
fn rounded(v: f64) -> String {
    if !v.is_finite() || v == 0.0 {
        return format!("{v}");
    }
    let digits = (3 - v.abs().log10().floor() as i32).clamp(0, 12) as usize;
    let s = format!("{v:.digits$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// "metric=value (reason)" for every metric with this verdict.
fn describe(run: &AnalysisRun, verdict: VerdictKind) -> String {
    let parts: Vec<String> = run
        .metrics
        .iter()
        .filter(|m| m.verdict == verdict)
        .map(|m| match m.value {
            Some(v) => format!("{}={} ({})", m.name, rounded(v), m.reason),
            None => format!("{} ({})", m.name, m.reason),
        })
        .collect();
    if parts.is_empty() {
        "no metrics in the run".to_string()
    } else {
        parts.join("; ")
    }
}

/// Request a run when one is due: during an analysis step, and in the background while the
/// canary receives traffic. Runs are spaced by the interval from the later of the last run and
/// the start of the current step.
pub(crate) fn schedule(cx: &mut Ctx) {
    if !cx.plan.analysis_active || !matches!(cx.st.phase, Phase::Progressing | Phase::Paused) {
        return;
    }
    let Some(rev) = cx.st.canary_revision.clone() else {
        return;
    };
    let in_analysis_step = matches!(
        cx.plan.steps.get(cx.st.current_step as usize),
        Some(Step::Analysis { .. })
    );
    if !in_analysis_step && cx.router_weight().unwrap_or(0) <= 0 {
        return;
    }
    let base = match (cx.st.analysis.last_run_at, cx.st.step_started_at) {
        (Some(a), Some(b)) => a.max(b),
        (a, b) => a.or(b).unwrap_or(cx.now),
    };
    let due = add(base, cx.plan.interval);
    if cx.now >= due {
        cx.emit(Effect::RunAnalysis { revision: rev });
        // After the run, the next one is an interval away.
        cx.requeue_in(cx.plan.interval);
    } else {
        cx.requeue_at(due);
    }
}

#[cfg(test)]
mod rounding_tests {
    use super::rounded;

    #[test]
    fn values_in_reasons_are_rounded_for_people() {
        assert_eq!(rounded(12.589254117941685), "12.59");
        assert_eq!(rounded(6.309573444801934), "6.31");
        assert_eq!(rounded(0.0012346), "0.001235");
        assert_eq!(rounded(0.25), "0.25");
        assert_eq!(rounded(1234567.0), "1234567");
        assert_eq!(rounded(0.0), "0");
        assert_eq!(rounded(f64::INFINITY), "inf");
    }
}
