//! What happened during a simulation, one entry per `step` call, with helpers for assertions.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sluice_crds::{Phase, RolloutStatus};

use crate::core::{Effect, VerdictKind};

/// One `step` call: when, the resulting phase/weights/step, its effects, and the verdicts of the
/// analysis run it absorbed (if any).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimelineEntry {
    pub at: DateTime<Utc>,
    /// Time since the start of the simulation.
    pub offset: Duration,
    pub phase: Phase,
    /// Router weight the state machine observed for this call.
    pub observed_weight: Option<i32>,
    /// Router weight after this entry's effects were applied.
    pub router_weight: Option<i32>,
    /// The weight the state machine wants (status.canaryWeight).
    pub canary_weight: i32,
    pub step: u32,
    pub effects: Vec<Effect>,
    pub verdicts: Vec<(String, VerdictKind)>,
    pub message: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Timeline {
    pub entries: Vec<TimelineEntry>,
    pub final_status: RolloutStatus,
}

impl Timeline {
    pub fn final_phase(&self) -> Phase {
        self.final_status.phase
    }

    /// Every effect with its offset, in order.
    pub fn effects(&self) -> impl Iterator<Item = (Duration, &Effect)> {
        self.entries
            .iter()
            .flat_map(|e| e.effects.iter().map(move |x| (e.offset, x)))
    }

    /// The weights of every `SetWeight` effect, in order, consecutive repeats merged.
    pub fn set_weights(&self) -> Vec<i32> {
        let mut v: Vec<i32> = self
            .effects()
            .filter_map(|(_, e)| match e {
                Effect::SetWeight { weight } => Some(*weight),
                _ => None,
            })
            .collect();
        v.dedup();
        v
    }

    /// The weights the router actually served, in order, consecutive repeats merged.
    pub fn router_weights(&self) -> Vec<i32> {
        let mut v: Vec<i32> = self
            .entries
            .iter()
            .filter_map(|e| e.router_weight)
            .collect();
        v.dedup();
        v
    }

    /// Phases in order, consecutive repeats merged.
    pub fn phases(&self) -> Vec<Phase> {
        let mut v: Vec<Phase> = self.entries.iter().map(|e| e.phase).collect();
        v.dedup();
        v
    }

    /// Reasons of all events, in order.
    pub fn events(&self) -> Vec<String> {
        self.effects()
            .filter_map(|(_, e)| match e {
                Effect::Event { reason, .. } => Some(reason.clone()),
                _ => None,
            })
            .collect()
    }

    /// Number of analysis runs requested.
    pub fn analysis_requests(&self) -> usize {
        self.effects()
            .filter(|(_, e)| matches!(e, Effect::RunAnalysis { .. }))
            .count()
    }

    /// First time the rollout was in `phase`.
    pub fn first_time_in(&self, phase: Phase) -> Option<Duration> {
        self.entries
            .iter()
            .find(|e| e.phase == phase)
            .map(|e| e.offset)
    }

    /// Position of the first effect equal to `e`, counting all effects in order.
    pub fn position(&self, e: &Effect) -> Option<usize> {
        self.effects().position(|(_, x)| x == e)
    }
}
