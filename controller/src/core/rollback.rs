//! Abort and rollback: traffic back to the primary first; the canary is scaled down only once
//! the router reads 0 (scaling down a weighted canary means 503s).

use sluice_crds::{AbortInfo, Phase};

use super::conditions as cond;
use super::ctx::Ctx;
use super::model::{Effect, EventType};
use super::POLL;

/// Abort the current revision: record why, phase RollingBack, weight 0.
pub(crate) fn start(
    cx: &mut Ctx,
    source: &str,
    reason: &str,
    alert_name: Option<String>,
    fingerprint: Option<String>,
) {
    let rev = cx.st.canary_revision.clone();
    cx.st.abort = Some(AbortInfo {
        source: source.to_string(),
        reason: reason.to_string(),
        alert_name,
        fingerprint,
        revision: rev.clone(),
        at: cx.now,
    });
    cx.st.phase = Phase::RollingBack;
    // Traffic back to the primary is the first effect the shell executes.
    cx.want_weight(0);
    let rev = rev.unwrap_or_default();
    let msg = format!("rolling back revision {rev} ({source}): {reason}");
    cx.st
        .set_condition(cond::PROGRESSING, true, "RollingBack", &msg, cx.now);
    cx.message(msg.clone());
    cx.event(EventType::Warning, "RolloutAborted", msg);
}

/// RollingBack: weight 0 first, then scale the canary down and fail the revision.
pub(crate) fn tick(cx: &mut Ctx) {
    if !cx.want_weight(0) {
        let why = cx
            .st
            .abort
            .as_ref()
            .map(|a| a.reason.clone())
            .unwrap_or_default();
        cx.message(format!(
            "rolling back: waiting for the router to route 0% to the canary ({why})"
        ));
        cx.requeue_in(POLL);
        return;
    }
    let now = cx.now;
    let (source, reason) = cx
        .st
        .abort
        .as_ref()
        .map(|a| (a.source.clone(), a.reason.clone()))
        .unwrap_or_else(|| ("unknown".to_string(), "aborted".to_string()));
    let rev = cx.st.canary_revision.clone().unwrap_or_default();
    let msg = format!("revision {rev} rolled back ({source}): {reason}");
    cx.emit(Effect::ScaleCanary { up: false });
    cx.st.phase = Phase::Failed;
    cx.st
        .set_condition(cond::ABORTED, true, &reason_word(&source), &msg, now);
    cx.st
        .set_condition(cond::PROGRESSING, false, "RolledBack", &msg, now);
    cx.st
        .set_condition(cond::PAUSED, false, "RolledBack", &msg, now);
    cx.message(msg.clone());
    cx.event(EventType::Warning, "RolledBack", msg);
}

/// Condition reasons are CamelCase words.
fn reason_word(source: &str) -> String {
    match source {
        "analysis" => "AnalysisFailed",
        "command" => "AbortCommand",
        "alert" => "AlertFiring",
        "deadline" => "ProgressDeadlineExceeded",
        _ => "Aborted",
    }
    .to_string()
}
