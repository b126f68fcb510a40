//! What the spec asks for, normalized: the step list (canary steps, or blue/green expressed as
//! steps), whether analysis is active, its interval, and the deadlines.

use std::time::Duration;

use sluice_crds::{effective_steps, parse_duration, CanaryStrategy, RolloutSpec, Step};

/// The normalized plan of a rollout.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Steps walked by the step engine. Blue/green is `[Analysis{n}, Pause(None) unless
    /// autoPromote, SetWeight(100)]`.
    pub steps: Vec<Step>,
    pub blue_green: bool,
    /// Analysis configured and not skipped.
    pub analysis_active: bool,
    pub interval: Duration,
}

/// Default analysis interval when the spec's cannot be parsed (validation reports it).
const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);

pub fn plan(spec: &RolloutSpec) -> Plan {
    let analysis_active = !spec.skip_analysis
        && spec
            .analysis
            .as_ref()
            .is_some_and(|a| !a.metrics.is_empty() || !a.templates.is_empty());
    let interval = spec
        .analysis
        .as_ref()
        .and_then(|a| parse_duration(&a.interval).ok())
        .unwrap_or(DEFAULT_INTERVAL)
        .max(Duration::from_secs(1));
    let (steps, blue_green) = match (&spec.strategy.canary, &spec.strategy.blue_green) {
        (Some(c), _) => (effective_steps(c), false),
        (None, Some(bg)) => {
            let mut s = vec![Step::Analysis {
                iterations: bg.analysis_iterations.unwrap_or(1).max(1),
            }];
            if !bg.auto_promote {
                s.push(Step::Pause(None));
            }
            s.push(Step::SetWeight(100));
            (s, true)
        }
        // Rejected by validation; behave like the default canary.
        (None, None) => (effective_steps(&CanaryStrategy::default()), false),
    };
    Plan {
        steps,
        blue_green,
        analysis_active,
        interval,
    }
}

/// How long the canary (or primary during promotion) may take to become ready.
pub fn progress_deadline(spec: &RolloutSpec) -> Duration {
    Duration::from_secs(spec.progress_deadline_seconds.max(1) as u64)
}

/// Window after promotion in which an abort is treated as a revert request.
pub fn post_promotion_watch(spec: &RolloutSpec) -> Duration {
    Duration::from_secs(spec.post_promotion_watch_seconds.max(0) as u64)
}
