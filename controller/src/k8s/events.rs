//! Kubernetes Events of a Rollout, within the API server's limits.
//!
//! events.k8s.io/v1 rejects (422) a `note` over 1 KiB and a `reason`/`action` over 128 bytes
//! (`NoteLengthLimit = 1024`, `ReasonLengthLimit = ActionLengthLimit = 128` in Kubernetes
//! `pkg/apis/core/validation/events.go`), so a long analysis message would lose the whole Event:
//! texts are cut at a character boundary with a marker instead.

use kube::runtime::events::{Event as KubeEvent, EventType as KubeEventType, Recorder};
use kube::Resource;
use sluice_crds::Rollout;
use tracing::warn;

use crate::core::EventType;

/// Longest `note` the API server accepts, in bytes.
pub const NOTE_LIMIT: usize = 1024;
/// Longest `reason` and `action`, in bytes.
pub const REASON_LIMIT: usize = 128;

const MARKER: &str = " …";

fn truncate_to(text: &str, limit: usize) -> String {
    if text.len() <= limit {
        return text.to_string();
    }
    let mut end = limit - MARKER.len();
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{MARKER}", &text[..end])
}

/// `text` if it fits an Event note, else its start and " …" in exactly the limit or less.
pub fn truncate_note(text: &str) -> String {
    truncate_to(text, NOTE_LIMIT)
}

/// An Event of a Rollout (type, reason, message) as the API server accepts it.
pub fn kube_event(type_: EventType, reason: &str, message: &str) -> KubeEvent {
    let reason = truncate_to(reason, REASON_LIMIT);
    KubeEvent {
        type_: match type_ {
            EventType::Normal => KubeEventType::Normal,
            EventType::Warning => KubeEventType::Warning,
        },
        action: reason.clone(),
        reason,
        note: Some(truncate_note(message)),
        secondary: None,
    }
}

/// Publish Events about `rollout`; a failure is logged, never fails the reconcile.
pub async fn publish(
    recorder: &Recorder,
    rollout: &Rollout,
    events: Vec<(EventType, String, String)>,
) {
    let reference = rollout.object_ref(&());
    for (type_, reason, message) in events {
        let ev = kube_event(type_, &reason, &message);
        if let Err(e) = recorder.publish(&ev, &reference).await {
            warn!(error = %e, "could not publish event");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_notes_are_kept_long_ones_cut_at_a_char_boundary() {
        assert_eq!(truncate_note("promoted"), "promoted");
        let exact = "a".repeat(NOTE_LIMIT);
        assert_eq!(truncate_note(&exact), exact);
        // Multi-byte characters straddling the limit.
        let long = "é".repeat(NOTE_LIMIT);
        let cut = truncate_note(&long);
        assert!(cut.len() <= NOTE_LIMIT, "{} bytes", cut.len());
        assert!(cut.ends_with(MARKER));
        assert!(cut.starts_with("éé"));
    }

    #[test]
    fn reason_and_action_fit_their_limit() {
        let ev = kube_event(EventType::Warning, &"R".repeat(300), &"m".repeat(5000));
        assert!(ev.reason.len() <= REASON_LIMIT);
        assert_eq!(ev.action, ev.reason);
        assert!(ev.note.as_deref().is_some_and(|n| n.len() <= NOTE_LIMIT));
    }
}
