//! Holds: reasons a rollout in progress stops moving (no weight change). Most wait for a
//! human; a hold for query errors under `onErrors: resume` keeps analysis running and ends by
//! itself at the first run without errors, within the progress deadline from its start.
//! Derived from status and spec each call, so they survive restarts.

use sluice_crds::{ErrorPolicy, InconclusivePolicy, Phase, RolloutStatus};

use super::conditions as cond;
use super::ctx::{add, Ctx};
use super::plan::progress_deadline;

/// Why the rollout is held.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Hold {
    pub reason: &'static str,
    pub message: String,
    /// Analysis keeps running, and a run without errors ends the hold.
    pub analysing: bool,
}

/// The hold in force, highest priority first.
pub(crate) fn current(cx: &Ctx) -> Option<Hold> {
    if cond::is_true_with(&cx.st, cond::PAUSED, cond::REASON_COMMAND) {
        let by = cx
            .st
            .acknowledged_command
            .as_ref()
            .map(|a| a.id.as_str())
            .unwrap_or("?");
        return Some(Hold {
            reason: cond::REASON_COMMAND,
            message: format!("paused by command {by}, waiting for resume, promote or abort"),
            analysing: false,
        });
    }
    if cx.spec.paused {
        return Some(Hold {
            reason: "SpecPaused",
            message: "paused by spec.paused".to_string(),
            analysing: false,
        });
    }
    let a = cx.spec.analysis.as_ref()?;
    if !cx.plan.analysis_active {
        return None;
    }
    if cx.st.analysis.consecutive_errors > a.error_limit {
        let errors = last_reasons(&cx.st, "Error");
        let since = cx.st.analysis.error_hold_since.unwrap_or(cx.now);
        let until = add(since, progress_deadline(cx.spec));
        if a.on_errors == ErrorPolicy::Resume && cx.now < until {
            return Some(Hold {
                reason: "AnalysisErrors",
                message: format!(
                    "analysis errors: {errors}; held, resuming by itself once queries work again (until {}, then waiting for a human)",
                    until.format("%H:%M:%S")
                ),
                analysing: true,
            });
        }
        let why = if a.on_errors == ErrorPolicy::Pause {
            "onErrors: pause"
        } else {
            "still failing after progressDeadlineSeconds"
        };
        return Some(Hold {
            reason: "AnalysisErrors",
            message: format!("analysis errors: {errors} ({why}), waiting for a human"),
            analysing: false,
        });
    }
    if a.on_inconclusive == InconclusivePolicy::Pause
        && cx.st.analysis.consecutive_inconclusive > a.inconclusive_limit
    {
        return Some(Hold {
            reason: "AnalysisInconclusive",
            message: format!(
                "analysis inconclusive: {}, waiting for a human",
                last_reasons(&cx.st, "Inconclusive")
            ),
            analysing: false,
        });
    }
    None
}

/// Apply the hold in force, if any: phase Paused, message, Paused condition. True when held.
pub(crate) fn apply(cx: &mut Ctx) -> bool {
    let Some(h) = current(cx) else {
        return false;
    };
    cx.st.phase = Phase::Paused;
    cx.st
        .set_condition(cond::PAUSED, true, h.reason, &h.message, cx.now);
    cx.message(h.message);
    true
}

/// Release every hold a human can release (pause command, inconclusive or error hold).
pub(crate) fn release(cx: &mut Ctx, by: &str) {
    cx.st.analysis.consecutive_inconclusive = 0;
    cx.st.analysis.consecutive_errors = 0;
    cx.st.analysis.error_hold_since = None;
    if cond::is_true(&cx.st, cond::PAUSED) {
        let msg = format!("released by {by}");
        cx.st
            .set_condition(cond::PAUSED, false, "Released", &msg, cx.now);
    }
}

/// "metric: reason" of the metrics whose last verdict is `verdict`.
pub(crate) fn last_reasons(st: &RolloutStatus, verdict: &str) -> String {
    let v: Vec<String> = st
        .analysis
        .metrics
        .iter()
        .filter(|m| m.last_verdict.as_deref() == Some(verdict))
        .map(|m| format!("{}: {}", m.name, m.last_reason.as_deref().unwrap_or("")))
        .collect();
    if v.is_empty() {
        "no detail".to_string()
    } else {
        v.join("; ")
    }
}
