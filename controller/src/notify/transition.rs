//! Transitions between two statuses of one rollout, as notifications would announce them.
//! Pure: no I/O, no clock.

pub use sluice_crds::TransitionKind;
use sluice_crds::{Phase, RolloutStatus};

/// One transition and a message for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub kind: TransitionKind,
    /// The same transition always gets the same key: `REVISION/KIND/STEP`.
    pub key: String,
    pub message: String,
}

fn make(kind: TransitionKind, revision: &str, step: u32, message: String) -> Transition {
    Transition {
        kind,
        key: format!("{revision}/{}/{step}", kind.as_str()),
        message,
    }
}

/// What changed from `old` to `new` (in the order a reader would tell it).
pub fn transitions(old: &RolloutStatus, new: &RolloutStatus) -> Vec<Transition> {
    let mut out = Vec::new();
    let rev = new
        .canary_revision
        .as_deref()
        .or(new.stable_revision.as_deref())
        .unwrap_or("unknown");
    let step = new.current_step;
    let revision_changed = old.canary_revision != new.canary_revision;
    if new.canary_revision.is_some() && revision_changed && new.phase.in_progress() {
        out.push(make(
            TransitionKind::Started,
            rev,
            0,
            format!("rollout of {rev} started"),
        ));
    } else if new.phase.in_progress() && old.current_step != step && !revision_changed {
        out.push(make(
            TransitionKind::Step,
            rev,
            step,
            format!("step {} at canary weight {}%", step + 1, new.canary_weight),
        ));
    }
    if old.phase == new.phase {
        return out;
    }
    match new.phase {
        Phase::Paused => out.push(make(
            TransitionKind::Paused,
            rev,
            step,
            format!(
                "paused, waiting for a human: {}",
                new.message.as_deref().unwrap_or("no reason given")
            ),
        )),
        Phase::Succeeded => out.push(make(
            TransitionKind::Promoted,
            rev,
            step,
            format!("{rev} promoted"),
        )),
        Phase::Failed | Phase::RollingBack if old.phase != Phase::RollingBack => {
            let abort = new.abort.as_ref();
            let reason = abort
                .map(|a| a.reason.as_str())
                .unwrap_or("no reason given");
            if abort.is_some_and(|a| a.source == "analysis") {
                out.push(make(
                    TransitionKind::AnalysisFailed,
                    rev,
                    step,
                    format!("analysis failed: {reason}"),
                ));
            }
            // A revert after promotion: the aborted revision is the stable one (ARCHITECTURE.md,
            // "Revert after promotion").
            let reverted = old.phase == Phase::Succeeded
                || reason.starts_with("reverted")
                || abort.and_then(|a| a.revision.as_deref()) == new.stable_revision.as_deref();
            let kind = if reverted {
                TransitionKind::Reverted
            } else {
                TransitionKind::RolledBack
            };
            out.push(make(
                kind,
                rev,
                step,
                format!(
                    "{rev} {}: {reason}",
                    if reverted { "reverted" } else { "rolled back" }
                ),
            ));
        }
        _ => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use sluice_crds::AbortInfo;

    fn st(phase: Phase, rev: Option<&str>, step: u32) -> RolloutStatus {
        RolloutStatus {
            phase,
            canary_revision: rev.map(String::from),
            stable_revision: Some("v1".into()),
            current_step: step,
            ..Default::default()
        }
    }

    fn kinds(t: &[Transition]) -> Vec<TransitionKind> {
        t.iter().map(|t| t.kind).collect()
    }

    #[test]
    fn start_step_pause_promote() {
        let idle = st(Phase::Idle, None, 0);
        let started = st(Phase::Progressing, Some("v2"), 0);
        let t = transitions(&idle, &started);
        assert_eq!(kinds(&t), [TransitionKind::Started]);
        assert_eq!(t[0].key, "v2/started/0");
        let step = st(Phase::Progressing, Some("v2"), 1);
        assert_eq!(kinds(&transitions(&started, &step)), [TransitionKind::Step]);
        // The same status twice: nothing to say.
        assert!(transitions(&step, &step).is_empty());
        let paused = st(Phase::Paused, Some("v2"), 1);
        assert_eq!(
            kinds(&transitions(&step, &paused)),
            [TransitionKind::Paused]
        );
        let done = st(Phase::Succeeded, Some("v2"), 2);
        let t = transitions(&paused, &done);
        assert_eq!(kinds(&t), [TransitionKind::Promoted]);
        assert_eq!(t[0].message, "v2 promoted");
    }

    #[test]
    fn analysis_failure_names_the_reason_once() {
        let run = st(Phase::Progressing, Some("v2"), 1);
        let mut back = st(Phase::RollingBack, Some("v2"), 1);
        back.abort = Some(AbortInfo {
            source: "analysis".into(),
            reason: "success-rate 0.82 below 0.95".into(),
            alert_name: None,
            fingerprint: None,
            revision: Some("v2".into()),
            at: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
        });
        let t = transitions(&run, &back);
        assert_eq!(
            kinds(&t),
            [TransitionKind::AnalysisFailed, TransitionKind::RolledBack]
        );
        assert!(t[0].message.contains("0.82"), "{}", t[0].message);
        // RollingBack -> Failed is the same rollback: no second notification.
        let mut failed = back.clone();
        failed.phase = Phase::Failed;
        assert!(transitions(&back, &failed).is_empty());
    }

    #[test]
    fn abort_after_promotion_is_a_revert() {
        let mut done = st(Phase::Succeeded, Some("v2"), 2);
        done.stable_revision = Some("v2".into());
        let mut back = done.clone();
        back.phase = Phase::RollingBack;
        back.abort = Some(AbortInfo {
            source: "alert".into(),
            reason: "CanaryHighErrorRate firing".into(),
            alert_name: None,
            fingerprint: None,
            revision: Some("v2".into()),
            at: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
        });
        let t = transitions(&done, &back);
        assert_eq!(kinds(&t), [TransitionKind::Reverted]);
        assert_eq!(t[0].key, "v2/reverted/2");
    }
}
