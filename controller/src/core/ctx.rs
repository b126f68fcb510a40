//! The working state of one `step` call: inputs, the status being edited, effects, requeue.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use sluice_crds::{RolloutSpec, RolloutStatus};

use super::model::{Decision, Effect, EventType, Observations};
use super::plan::{plan, Plan};

pub(crate) struct Ctx<'a> {
    pub spec: &'a RolloutSpec,
    pub obs: &'a Observations,
    pub now: DateTime<Utc>,
    pub st: RolloutStatus,
    pub plan: Plan,
    effects: Vec<Effect>,
    requeue: Option<Duration>,
}

impl<'a> Ctx<'a> {
    pub fn new(
        spec: &'a RolloutSpec,
        status: &RolloutStatus,
        obs: &'a Observations,
        now: DateTime<Utc>,
    ) -> Self {
        let mut st = status.clone();
        if obs.generation.is_some() {
            st.observed_generation = obs.generation;
        }
        Self {
            spec,
            obs,
            now,
            st,
            plan: plan(spec),
            effects: Vec::new(),
            requeue: None,
        }
    }

    pub fn finish(self) -> Decision {
        Decision {
            status: self.st,
            effects: self.effects,
            requeue_after: self.requeue,
        }
    }

    /// Add an effect; an identical non-event effect already in this decision is not repeated.
    pub fn emit(&mut self, e: Effect) {
        if !matches!(e, Effect::Event { .. }) && self.effects.contains(&e) {
            return;
        }
        self.effects.push(e);
    }

    /// Withdraw an effect decided earlier in this call (superseded by a later decision).
    pub fn retract(&mut self, e: &Effect) {
        self.effects.retain(|x| x != e);
    }

    pub fn event(&mut self, type_: EventType, reason: &str, message: impl Into<String>) {
        self.effects.push(Effect::Event {
            type_,
            reason: reason.to_string(),
            message: message.into(),
        });
    }

    /// Ask to be called again after `d` at the latest (the soonest request wins).
    pub fn requeue_in(&mut self, d: Duration) {
        let d = d.max(Duration::from_secs(1));
        self.requeue = Some(self.requeue.map_or(d, |r| r.min(d)));
    }

    /// Ask to be called again at `t` (now or in the past: after the minimum delay).
    pub fn requeue_at(&mut self, t: DateTime<Utc>) {
        self.requeue_in(until(self.now, t));
    }

    pub fn message(&mut self, m: impl Into<String>) {
        self.st.message = Some(m.into());
    }

    pub fn router_weight(&self) -> Option<i32> {
        self.obs.router_weight
    }

    /// The target Deployment's revision, if it exists.
    pub fn target_revision(&self) -> Option<&'a str> {
        if self.obs.target.exists {
            self.obs.target.revision.as_deref()
        } else {
            None
        }
    }

    /// Route `w`% to the canary: record the intent, emit only while the router disagrees.
    pub fn want_weight(&mut self, w: i32) -> bool {
        let w = w.clamp(0, 100);
        self.st.canary_weight = w;
        if self.obs.router_weight == Some(w) {
            true
        } else {
            self.emit(Effect::SetWeight { weight: w });
            false
        }
    }
}

/// `t + d`, saturating.
pub(crate) fn add(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    let delta = TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX);
    t.checked_add_signed(delta)
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Time from `now` to `t`, zero when `t` is past.
pub(crate) fn until(now: DateTime<Utc>, t: DateTime<Utc>) -> Duration {
    (t - now).to_std().unwrap_or(Duration::ZERO)
}
