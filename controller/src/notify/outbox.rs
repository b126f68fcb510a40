//! The outbox: per rollout, the notifications still to deliver (per sink) and the keys already
//! settled. It is saved with the rollout's status in the same write, so what a status change
//! announces survives a kill between the write and the delivery; the delivery worker settles
//! entries through its own write. Pure.
//!
//! Why an outbox: `transitions()` compares the old and the new status, so a transition whose
//! status was written is never detected again. Without the pending entry a controller killed
//! after the write and before the delivery would lose the notification.

use chrono::{DateTime, Utc};
pub use sluice_crds::{Outbox, Outcome, Pending, Settled};

use super::event::Notification;
use super::sink::Sink;

/// Most pending entries kept per rollout; beyond, the oldest is discarded (and counted).
pub const MAX_PENDING: usize = 64;
/// Most settled keys kept per rollout (on top of keeping the current revision's only).
pub const MAX_SETTLED: usize = 128;

/// The outbox's rules, on the API type.
pub trait OutboxOps {
    /// Add one entry per notification and sink that wants it, unless that (sink, key) is
    /// already pending or settled. Returns how many old entries were discarded for room.
    fn record(&mut self, notes: &[Notification], sinks: &[Sink]) -> usize;
    /// Entries whose sink is no longer configured are dropped (returned, for a log line).
    fn forget_sinks_except(&mut self, sinks: &[Sink]) -> Vec<Pending>;
    /// Mark (sink, key) delivered or failed. False when it was not pending.
    fn settle(&mut self, sink: &str, key: &str, outcome: Outcome, at: DateTime<Utc>) -> bool;
    /// This outbox was computed from an older copy of `stored`; take what was settled in
    /// `stored` since (the worker's writes), so a settled entry never comes back as pending.
    fn merge_settled(&mut self, stored: &Outbox);
    /// Keep the settled keys of `revision` only (a later rollout of the same revision starts
    /// afresh), at most [`MAX_SETTLED`]. Pending entries are kept whatever their revision.
    fn trim(&mut self, revision: Option<&str>);
}

fn known(o: &Outbox, sink: &str, key: &str) -> bool {
    o.pending
        .iter()
        .any(|p| p.sink == sink && p.notification.key == key)
        || o.settled.iter().any(|s| s.sink == sink && s.key == key)
}

impl OutboxOps for Outbox {
    fn record(&mut self, notes: &[Notification], sinks: &[Sink]) -> usize {
        for n in notes {
            for s in sinks.iter().filter(|s| s.wants(n.kind)) {
                if !known(self, &s.name, &n.key) {
                    self.pending.push(Pending {
                        sink: s.name.clone(),
                        notification: n.clone(),
                    });
                }
            }
        }
        let excess = self.pending.len().saturating_sub(MAX_PENDING);
        self.pending.drain(..excess);
        excess
    }

    fn forget_sinks_except(&mut self, sinks: &[Sink]) -> Vec<Pending> {
        let (keep, gone): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|p| sinks.iter().any(|s| s.name == p.sink));
        self.pending = keep;
        gone
    }

    fn settle(&mut self, sink: &str, key: &str, outcome: Outcome, at: DateTime<Utc>) -> bool {
        let before = self.pending.len();
        self.pending
            .retain(|p| !(p.sink == sink && p.notification.key == key));
        if self.pending.len() == before {
            return false;
        }
        self.settled.push(Settled {
            sink: sink.to_string(),
            key: key.to_string(),
            outcome,
            at,
        });
        true
    }

    fn merge_settled(&mut self, stored: &Outbox) {
        for s in &stored.settled {
            if !self
                .settled
                .iter()
                .any(|x| x.sink == s.sink && x.key == s.key)
            {
                self.settled.push(s.clone());
            }
        }
        let settled = &self.settled;
        self.pending.retain(|p| {
            !settled
                .iter()
                .any(|s| s.sink == p.sink && s.key == p.notification.key)
        });
    }

    fn trim(&mut self, revision: Option<&str>) {
        if let Some(rev) = revision {
            let prefix = format!("{rev}/");
            self.settled.retain(|s| s.key.starts_with(&prefix));
        }
        let excess = self.settled.len().saturating_sub(MAX_SETTLED);
        self.settled.drain(..excess);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::sink::SinkKind;
    use crate::notify::transition::TransitionKind;
    use chrono::TimeZone;
    use sluice_crds::Phase;

    fn note(key: &str, kind: TransitionKind) -> Notification {
        Notification {
            id: format!("id-{key}"),
            key: key.into(),
            kind,
            namespace: "ns".into(),
            rollout: "web".into(),
            phase: Phase::Progressing,
            canary_weight: 10,
            step: 0,
            stable_revision: None,
            canary_revision: Some("v2".into()),
            message: "m".into(),
            failed_metrics: vec![],
            dashboard_url: None,
            at: t(0),
        }
    }

    fn t(s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, s).unwrap()
    }

    fn sinks() -> Vec<Sink> {
        vec![
            Sink::new("all", SinkKind::Webhook, "http://a", None, vec![]).unwrap(),
            Sink::new(
                "done",
                SinkKind::Slack,
                "http://b",
                None,
                vec![TransitionKind::Promoted],
            )
            .unwrap(),
        ]
    }

    #[test]
    fn record_once_per_sink_and_filter() {
        let mut o = Outbox::default();
        let n = [
            note("v2/started/0", TransitionKind::Started),
            note("v2/promoted/2", TransitionKind::Promoted),
        ];
        assert_eq!(o.record(&n, &sinks()), 0);
        // started -> all; promoted -> all and done.
        assert_eq!(o.pending.len(), 3);
        // Recording the same again adds nothing.
        o.record(&n, &sinks());
        assert_eq!(o.pending.len(), 3);
        assert!(o.settle("all", "v2/started/0", Outcome::Delivered, t(1)));
        assert!(!o.settle("all", "v2/started/0", Outcome::Delivered, t(2)));
        // Settled keys are not recorded again either.
        o.record(&n, &sinks());
        assert_eq!(o.pending.len(), 2);
    }

    #[test]
    fn a_stale_copy_does_not_resurrect_what_the_worker_settled() {
        let mut stored = Outbox::default();
        stored.record(&[note("v2/started/0", TransitionKind::Started)], &sinks());
        // The tick read this copy ...
        let mut computed = stored.clone();
        // ... the worker delivered meanwhile ...
        stored.settle("all", "v2/started/0", Outcome::Delivered, t(1));
        // ... and the tick adds a new transition to its stale copy and saves.
        computed.record(&[note("v2/step/1", TransitionKind::Step)], &sinks());
        computed.merge_settled(&stored);
        let keys: Vec<_> = computed
            .pending
            .iter()
            .map(|p| p.notification.key.as_str())
            .collect();
        assert_eq!(keys, ["v2/step/1"]);
        assert_eq!(computed.settled.len(), 1);
    }

    #[test]
    fn bounded_and_trimmed_to_the_revision() {
        let mut o = Outbox::default();
        let many: Vec<_> = (0..MAX_PENDING + 5)
            .map(|i| note(&format!("v2/step/{i}"), TransitionKind::Step))
            .collect();
        assert_eq!(o.record(&many, &sinks()[..1]), 5);
        assert_eq!(o.pending.len(), MAX_PENDING);
        assert_eq!(o.pending[0].notification.key, "v2/step/5");
        o.settle("all", "v2/step/5", Outcome::Failed, t(1));
        o.settled.push(Settled {
            sink: "all".into(),
            key: "v1/promoted/3".into(),
            outcome: Outcome::Delivered,
            at: t(0),
        });
        o.trim(Some("v2"));
        assert_eq!(o.settled.len(), 1);
        assert_eq!(o.settled[0].key, "v2/step/5");
        let gone = o.forget_sinks_except(&[]);
        assert_eq!(gone.len(), MAX_PENDING - 1);
        assert!(o.pending.is_empty());
    }
}
