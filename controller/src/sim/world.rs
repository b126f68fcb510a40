//! The simulated world: target and primary Deployments that become ready after a delay, and a
//! router whose weight changes immediately or after a lag. Like the shells, the primary keeps
//! the template it ran before its last change, so a post-promotion revert can restore it.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use sluice_crds::Command;

use crate::core::{Effect, GateAnswer, Observations, WorkloadState};

/// A Deployment: revision, desired replicas, and when its current template is ready.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SimDeployment {
    pub exists: bool,
    pub revision: Option<String>,
    pub replicas: i32,
    /// Ready from this time on (None: not ready).
    pub ready_at: Option<DateTime<Utc>>,
}

impl SimDeployment {
    pub fn state(&self, now: DateTime<Utc>) -> WorkloadState {
        let ready = self.exists && self.replicas > 0 && self.ready_at.is_some_and(|t| now >= t);
        WorkloadState {
            exists: self.exists,
            revision: self.revision.clone(),
            replicas: self.replicas,
            ready_replicas: if ready { self.replicas } else { 0 },
            ready,
        }
    }
}

/// The router: the weight it serves, and weights still being applied.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SimRouter {
    pub weight: Option<i32>,
    pub pending: Vec<(DateTime<Utc>, i32)>,
}

/// Everything the simulated shell can observe and change.
#[derive(Debug, Clone)]
pub struct World {
    pub target: SimDeployment,
    pub primary: SimDeployment,
    /// The revision the primary ran before its template last changed (the shells keep that
    /// template: an annotation on the k8s primary, the state file in standalone).
    pub primary_previous: Option<String>,
    /// `RevertPrimary` effects that found no kept template (a shell would report an error).
    pub revert_errors: u32,
    pub router: SimRouter,
    /// The latest command (like the command annotation: it stays until replaced).
    pub command: Option<Command>,
    pub generation: i64,
    pub replicas: i32,
    pub canary_ready_delay: Duration,
    pub primary_ready_delay: Duration,
    pub router_lag: Duration,
    /// Scripted gate answers (`open`, reason); a gate not listed answers open.
    pub gates: std::collections::BTreeMap<String, (bool, String)>,
    /// Every gate asked: when, which, for which step.
    pub gate_asks: Vec<(DateTime<Utc>, sluice_crds::GateName, Option<u32>)>,
}

impl World {
    /// A target Deployment running `revision`, ready; no primary, no router object yet.
    pub fn new(revision: &str, now: DateTime<Utc>) -> Self {
        Self {
            target: SimDeployment {
                exists: true,
                revision: Some(revision.to_string()),
                replicas: 2,
                ready_at: Some(now),
            },
            primary: SimDeployment::default(),
            primary_previous: None,
            revert_errors: 0,
            router: SimRouter::default(),
            command: None,
            generation: 1,
            replicas: 2,
            canary_ready_delay: Duration::from_secs(10),
            primary_ready_delay: Duration::from_secs(10),
            router_lag: Duration::ZERO,
            gates: Default::default(),
            gate_asks: Vec::new(),
        }
    }

    /// A scripted gate answers an `AskGate` effect (None for other effects).
    pub fn answer(&mut self, effect: &Effect, now: DateTime<Utc>) -> Option<GateAnswer> {
        let Effect::AskGate {
            gate,
            revision,
            step,
        } = effect
        else {
            return None;
        };
        self.gate_asks.push((now, *gate, *step));
        let (open, reason) = self
            .gates
            .get(gate.as_str())
            .cloned()
            .unwrap_or((true, "open".to_string()));
        Some(GateAnswer {
            gate: *gate,
            revision: revision.clone(),
            step: *step,
            asked_at: now,
            open,
            reason,
        })
    }

    /// The user applies a new template to the target.
    pub fn set_target_revision(&mut self, revision: &str, now: DateTime<Utc>) {
        self.target.exists = true;
        self.target.revision = Some(revision.to_string());
        self.target.ready_at = Some(add(now, self.canary_ready_delay));
    }

    /// Router weights whose lag has passed take effect.
    pub fn settle(&mut self, now: DateTime<Utc>) {
        let (due, later): (Vec<_>, Vec<_>) =
            self.router.pending.iter().partition(|(t, _)| *t <= now);
        if let Some((_, w)) = due.last() {
            self.router.weight = Some(*w);
        }
        self.router.pending = later;
    }

    pub fn observe(&self, now: DateTime<Utc>) -> Observations {
        Observations {
            generation: Some(self.generation),
            target: self.target.state(now),
            primary: self.primary.state(now),
            router_weight: self.router.weight,
            analysis: None,
            command: self.command.clone(),
            gates: Vec::new(),
        }
    }

    /// Execute one effect (events and analysis requests are the runner's business).
    pub fn apply(&mut self, effect: &Effect, now: DateTime<Utc>) {
        match effect {
            Effect::ApplyPrimary { revision } => {
                self.primary.exists = true;
                self.primary.replicas = self.replicas;
                self.set_primary_revision(revision, now);
            }
            Effect::RevertPrimary { revision } => {
                let current = self.primary.revision.as_deref() == Some(revision.as_str());
                if current {
                    return;
                }
                if self.primary.exists && self.primary_previous.as_deref() == Some(revision) {
                    self.set_primary_revision(revision, now);
                } else {
                    self.revert_errors += 1;
                }
            }
            Effect::ScaleCanary { up: true } => {
                if self.target.replicas == 0 {
                    self.target.replicas = self.replicas;
                    self.target.ready_at = Some(add(now, self.canary_ready_delay));
                }
            }
            Effect::ScaleCanary { up: false } => {
                self.target.replicas = 0;
                self.target.ready_at = None;
            }
            Effect::SetWeight { weight } => {
                if self.router_lag.is_zero() {
                    self.router.weight = Some(*weight);
                    self.router.pending.clear();
                } else {
                    self.router
                        .pending
                        .push((add(now, self.router_lag), *weight));
                }
            }
            Effect::RunAnalysis { .. } | Effect::AskGate { .. } | Effect::Event { .. } => {}
        }
    }

    /// Change the primary's template (a no-op when it already runs `revision`).
    fn set_primary_revision(&mut self, revision: &str, now: DateTime<Utc>) {
        if self.primary.revision.as_deref() != Some(revision) {
            self.primary_previous = self.primary.revision.replace(revision.to_string());
            self.primary.ready_at = Some(add(now, self.primary_ready_delay));
        }
    }

    /// The next time something changes by itself (readiness, router lag), if any.
    pub fn next_change(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        [
            self.target.ready_at,
            self.primary.ready_at,
            self.router.pending.first().map(|p| p.0),
        ]
        .into_iter()
        .flatten()
        .filter(|t| *t > now)
        .min()
    }
}

/// `t + d`, saturating (a delay of `Duration::MAX` means never).
pub fn add(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    let delta = TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX);
    t.checked_add_signed(delta)
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}
