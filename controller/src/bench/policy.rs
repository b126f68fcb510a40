//! The interface every benchmarked policy implements: called once per simulated second with
//! the traffic so far, it answers the canary weight to serve next and whether it has decided.

use serde::Serialize;

use super::traffic::History;

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Promoted,
    RolledBack,
    /// No decision within the horizon (paused for a human, or still collecting evidence).
    Undecided,
}

/// A policy's answer for the next second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Control {
    /// Canary weight (percent) the router serves during the next second.
    pub weight: i32,
    /// Set once the policy decided (promotion started or rollback done).
    pub decided: Option<Outcome>,
}

impl Control {
    pub fn weight(weight: i32) -> Self {
        Control {
            weight,
            decided: None,
        }
    }
    pub fn decided(outcome: Outcome) -> Self {
        Control {
            weight: 0,
            decided: Some(outcome),
        }
    }
}

/// A rollout policy under test.
pub trait Policy {
    /// Second `t` (since the new revision was seen) begins; `history` holds seconds `0..t`.
    fn control(&mut self, t: u64, history: &History) -> Control;
}
