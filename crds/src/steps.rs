//! The canary steps as the state machine walks them: explicit steps, or the
//! `stepWeight`/`maxWeight` shorthand expanded to "set weight, then analyse" pairs.

use std::time::Duration;

use crate::duration::parse_duration;
use crate::rollout::{CanaryStep, CanaryStrategy};

/// One normalized step.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    SetWeight(i32),
    /// `None`: until promoted.
    Pause(Option<Duration>),
    /// Wait for this many consecutive passing analysis runs.
    Analysis {
        iterations: u32,
    },
}

/// Normalize the canary strategy. Invalid entries (already reported by validation) are skipped.
pub fn effective_steps(c: &CanaryStrategy) -> Vec<Step> {
    if !c.steps.is_empty() {
        return c.steps.iter().filter_map(normalize).collect();
    }
    let step = c.step_weight.unwrap_or(10).clamp(1, 100);
    let max = c.max_weight.unwrap_or(50).clamp(1, 100);
    let mut out = Vec::new();
    let mut w = step;
    while w <= max {
        out.push(Step::SetWeight(w));
        out.push(Step::Analysis { iterations: 1 });
        w += step;
    }
    out
}

fn normalize(s: &CanaryStep) -> Option<Step> {
    if let Some(w) = s.set_weight {
        return Some(Step::SetWeight(w.clamp(0, 100)));
    }
    if let Some(p) = &s.pause {
        return match &p.duration {
            None => Some(Step::Pause(None)),
            Some(d) => parse_duration(d).ok().map(|d| Step::Pause(Some(d))),
        };
    }
    s.analysis.as_ref().map(|a| Step::Analysis {
        iterations: a.iterations.unwrap_or(1).max(1),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shorthand_expands_to_weight_and_analysis_pairs() {
        let c = CanaryStrategy {
            step_weight: Some(20),
            max_weight: Some(50),
            ..Default::default()
        };
        assert_eq!(
            effective_steps(&c),
            vec![
                Step::SetWeight(20),
                Step::Analysis { iterations: 1 },
                Step::SetWeight(40),
                Step::Analysis { iterations: 1 },
            ]
        );
    }

    #[test]
    fn explicit_steps_are_normalized() {
        let c = CanaryStrategy {
            steps: vec![
                CanaryStep::weight(10),
                CanaryStep::pause_for("30s"),
                CanaryStep::analyse(),
                CanaryStep::pause_until_promoted(),
            ],
            ..Default::default()
        };
        assert_eq!(
            effective_steps(&c),
            vec![
                Step::SetWeight(10),
                Step::Pause(Some(Duration::from_secs(30))),
                Step::Analysis { iterations: 1 },
                Step::Pause(None),
            ]
        );
    }
}
