//! What a shell does for notifications around its status write, the same in both modes:
//! before the write, [`record`] the transitions from the old to the new status into the
//! outbox (saved in the same write); after the write succeeded, [`offer_pending`] hands every
//! pending entry to the worker (entries already in flight are skipped, so this is also how
//! entries dropped on a full queue, or left by a killed controller, are sent).

use chrono::{DateTime, Utc};
use sluice_crds::RolloutStatus;
use tracing::warn;

use super::event::notifications;
use super::outbox::{Outbox, OutboxOps};
use super::sink::Sink;
use super::transition::transitions;
use super::worker::Notifier;
use crate::telemetry::Telemetry;

/// What a shell needs for one rollout's notifications.
#[derive(Clone, Copy)]
pub struct Feed<'a> {
    pub notifier: &'a Notifier,
    /// The rollout's sinks: the global ones and its own.
    pub sinks: &'a [Sink],
    /// Sluice's external URL, for links to the dashboard.
    pub dashboard_url: Option<&'a str>,
    pub telemetry: &'a Telemetry,
}

/// The revision a status's keys start with (as `transitions` builds them).
pub fn key_revision(status: &RolloutStatus) -> Option<&str> {
    status
        .canary_revision
        .as_deref()
        .or(status.stable_revision.as_deref())
}

/// Record the transitions `old` -> `new` for every sink that wants them.
#[allow(clippy::too_many_arguments)]
pub fn record(
    feed: &Feed<'_>,
    outbox: &mut Outbox,
    old: &RolloutStatus,
    new: &RolloutStatus,
    namespace: &str,
    name: &str,
    now: DateTime<Utc>,
) {
    for p in outbox.forget_sinks_except(feed.sinks) {
        warn!(rollout = name, sink = %p.sink, key = %p.notification.key,
            "notification dropped: its sink is no longer configured");
    }
    let found = transitions(old, new);
    if found.is_empty() {
        return;
    }
    let notes = notifications(&found, new, namespace, name, feed.dashboard_url, now);
    let discarded = outbox.record(&notes, feed.sinks);
    for _ in 0..discarded {
        feed.telemetry.record_notification_drop("outbox_full");
    }
    if discarded > 0 {
        warn!(
            rollout = name,
            discarded, "outbox full: the oldest pending notifications were discarded"
        );
    }
    outbox.trim(key_revision(new));
}

/// Offer every pending entry of a saved outbox to the worker.
pub fn offer_pending(feed: &Feed<'_>, outbox: &Outbox) {
    for p in &outbox.pending {
        if let Some(sink) = feed.sinks.iter().find(|s| s.name == p.sink) {
            feed.notifier.offer(sink, &p.notification);
        }
    }
}
