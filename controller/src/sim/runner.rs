//! The simulation loop, as a shell runs it: observe → step → apply effects → analysis when
//! asked (step again with the run) → advance the clock to the requeue time (at most `max_tick`,
//! and no later than the next scripted or self-driven change).

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use sluice_crds::{RolloutSpec, RolloutStatus};

use super::oracle::{AnalysisOracle, ScriptedOracle};
use super::script::{Script, ScriptAction};
use super::timeline::{Timeline, TimelineEntry};
use super::world::{add, World};
use crate::clock::{Clock, ManualClock};
use crate::core::{self, Decision, Effect, Observations, VerdictKind};

/// Timing of the simulated world.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub start: DateTime<Utc>,
    /// Revision the target runs at the start.
    pub initial_revision: String,
    pub canary_ready_delay: Duration,
    pub primary_ready_delay: Duration,
    pub router_lag: Duration,
    /// Longest sleep between two `step` calls.
    pub max_tick: Duration,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            start: Utc
                .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
                .single()
                .unwrap_or_default(),
            initial_revision: "v1".to_string(),
            canary_ready_delay: Duration::from_secs(10),
            primary_ready_delay: Duration::from_secs(10),
            router_lag: Duration::ZERO,
            max_tick: Duration::from_secs(5),
        }
    }
}

/// A simulated shell around `core::step`.
pub struct Simulator {
    pub spec: RolloutSpec,
    pub status: RolloutStatus,
    pub world: World,
    pub clock: ManualClock,
    pub config: SimConfig,
    oracle: Box<dyn AnalysisOracle>,
}

/// Run `spec` with default timing and always-passing analysis for `until`.
pub fn simulate(spec: &RolloutSpec, script: &Script, until: Duration) -> Timeline {
    Simulator::new(spec.clone(), SimConfig::default()).run(script, until)
}

impl Simulator {
    pub fn new(spec: RolloutSpec, config: SimConfig) -> Self {
        let mut world = World::new(&config.initial_revision, config.start);
        world.canary_ready_delay = config.canary_ready_delay;
        world.primary_ready_delay = config.primary_ready_delay;
        world.router_lag = config.router_lag;
        Self {
            spec,
            status: RolloutStatus::default(),
            world,
            clock: ManualClock::new(config.start),
            config,
            oracle: Box::new(ScriptedOracle::new(VerdictKind::Pass)),
        }
    }

    pub fn with_oracle(mut self, oracle: impl AnalysisOracle + 'static) -> Self {
        self.oracle = Box::new(oracle);
        self
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Run the script for `until` (from the simulator's start time).
    pub fn run(&mut self, script: &Script, until: Duration) -> Timeline {
        let start = self.config.start;
        let end = add(start, until);
        let mut next_event = 0;
        let mut entries = Vec::new();
        loop {
            let now = self.clock.now();
            if now > end {
                break;
            }
            while let Some(ev) = script.events.get(next_event) {
                if add(start, ev.at) > now {
                    break;
                }
                self.apply_script(&ev.action, now);
                next_event += 1;
            }
            let requeue = self.tick(&mut entries);
            let mut wake = add(
                now,
                requeue
                    .unwrap_or(self.config.max_tick)
                    .min(self.config.max_tick),
            );
            if let Some(ev) = script.events.get(next_event) {
                wake = wake.min(add(start, ev.at));
            }
            if let Some(t) = self.world.next_change(now) {
                wake = wake.min(t);
            }
            // At least one second per loop, so the simulation always moves on.
            let wake = wake.max(add(now, Duration::from_secs(1)));
            self.clock.set(wake);
        }
        Timeline {
            entries,
            final_status: self.status.clone(),
        }
    }

    /// One reconcile at the current time: step, apply, analysis when asked. Returns the
    /// last decision's requeue.
    pub fn tick(&mut self, entries: &mut Vec<TimelineEntry>) -> Option<Duration> {
        let now = self.clock.now();
        self.world.settle(now);
        let obs = self.world.observe(now);
        let mut d = self.step_and_apply(&obs, now, entries);
        // The shell runs the analysis and asks the gates, then steps again; a few rounds at most.
        for _ in 0..3 {
            let rev = d.effects.iter().find_map(|e| match e {
                Effect::RunAnalysis { revision } => Some(revision.clone()),
                _ => None,
            });
            let answers: Vec<_> = d
                .effects
                .iter()
                .filter_map(|e| self.world.answer(e, now))
                .collect();
            if rev.is_none() && answers.is_empty() {
                break;
            }
            let mut obs = self.world.observe(now);
            if let Some(rev) = rev {
                let weight = self.world.router.weight.unwrap_or(0);
                obs.analysis = Some(self.oracle.run(now, weight, &rev, &self.status));
            }
            obs.gates = answers;
            d = self.step_and_apply(&obs, now, entries);
        }
        d.requeue_after
    }

    fn step_and_apply(
        &mut self,
        obs: &Observations,
        now: DateTime<Utc>,
        entries: &mut Vec<TimelineEntry>,
    ) -> Decision {
        let d = core::step(&self.spec, &self.status, obs, now);
        for e in &d.effects {
            self.world.apply(e, now);
        }
        self.status = d.status.clone();
        let verdicts = obs
            .analysis
            .as_ref()
            .map(|r| {
                r.metrics
                    .iter()
                    .map(|m| (m.name.clone(), m.verdict))
                    .collect()
            })
            .unwrap_or_default();
        entries.push(TimelineEntry {
            at: now,
            offset: (now - self.config.start).to_std().unwrap_or_default(),
            phase: d.status.phase,
            observed_weight: obs.router_weight,
            router_weight: self.world.router.weight,
            canary_weight: d.status.canary_weight,
            step: d.status.current_step,
            effects: d.effects.clone(),
            verdicts,
            message: d.status.message.clone(),
        });
        d
    }

    fn apply_script(&mut self, action: &ScriptAction, now: DateTime<Utc>) {
        match action {
            ScriptAction::NewRevision(rev) => self.world.set_target_revision(rev, now),
            ScriptAction::Command(c) => {
                let mut c = c.clone();
                c.at = now;
                self.world.command = Some(c);
            }
            ScriptAction::SetPaused(p) => {
                self.spec.paused = *p;
                self.world.generation += 1;
            }
            ScriptAction::CanaryReadyDelay(d) => {
                self.world.canary_ready_delay = *d;
                if self.world.target.replicas > 0 && !self.world.target.state(now).ready {
                    self.world.target.ready_at = Some(add(now, *d));
                }
            }
            ScriptAction::RouterLag(d) => self.world.router_lag = *d,
            ScriptAction::Gate(gate, open, reason) => {
                self.world
                    .gates
                    .insert(gate.as_str().to_string(), (*open, reason.clone()));
            }
            ScriptAction::CanaryDies(back_after) => {
                if self.world.target.replicas > 0 {
                    self.world.target.ready_at = Some(add(now, *back_after));
                }
            }
        }
    }
}
