//! Fencing by the Lease's own times: this replica acts only while the Lease names it and its
//! last renewal is recent enough that no other replica can have taken the Lease over.
//!
//! kube-lease-manager only logs a failed renewal and keeps reporting leadership, so on its own
//! a replica cut off from the API server would go on acting after another one took over. A
//! Lease may be taken over once `renewTime + leaseDurationSeconds` has passed (Kubernetes
//! leader election's rule, `coordination.k8s.io/v1` LeaseSpec), so [`acting_until`] ends
//! leadership a margin before that, and [`fenced`] keeps the leadership signal false from then
//! on until a renewal is seen, whether or not the Lease can still be read.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::clock::Clock;

/// Stop acting this long before the Lease could be taken over (clock skew, a write in flight).
pub const MARGIN: Duration = Duration::from_secs(3);
/// How often the Lease is read.
pub const POLL: Duration = Duration::from_secs(2);

fn to_chrono(
    t: &k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime,
) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(t.0.as_millisecond())
}

/// Until when `me` may act on `lease`: its renewal time plus its duration less `margin`;
/// None when the Lease names someone else or lacks the times.
pub fn acting_until(lease: &Lease, me: &str, margin: Duration) -> Option<DateTime<Utc>> {
    let spec = lease.spec.as_ref()?;
    if spec.holder_identity.as_deref() != Some(me) {
        return None;
    }
    let renewed = to_chrono(spec.renew_time.as_ref().or(spec.acquire_time.as_ref())?)?;
    let duration = chrono::Duration::seconds(i64::from(spec.lease_duration_seconds?));
    let margin = chrono::Duration::from_std(margin).ok()?;
    Some(renewed + duration - margin)
}

/// Leadership as the elector reports it, and only while the Lease's times allow it.
pub fn may_act(elected: bool, until: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    elected && until.is_some_and(|u| now < u)
}

/// A leadership signal that follows `elected` (kube-lease-manager's) but turns false once the
/// Lease `api`/`name` shows no renewal by `me` recent enough, read every [`POLL`].
pub fn fenced(
    api: Api<Lease>,
    name: String,
    me: String,
    mut elected: watch::Receiver<bool>,
    clock: Arc<dyn Clock>,
) -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        let mut until: Option<DateTime<Utc>> = None;
        loop {
            match api.get_opt(&name).await {
                Ok(Some(lease)) => until = acting_until(&lease, &me, MARGIN),
                Ok(None) => until = None,
                // Unreadable: keep the last known times; they run out by themselves.
                Err(e) => warn!(error = %e, lease = %name, "cannot read the Lease"),
            }
            let now_leading = may_act(*elected.borrow(), until, clock.now());
            let changed = tx.send_if_modified(|v| {
                let changed = *v != now_leading;
                *v = now_leading;
                changed
            });
            if changed {
                info!(leading = now_leading, until = ?until, "leadership (fenced by the Lease's times)");
            }
            if tx.is_closed() {
                return;
            }
            tokio::select! {
                r = elected.changed() => if r.is_err() {
                    // The elector is gone: never act again.
                    let _ = tx.send(false);
                    return;
                },
                _ = tokio::time::sleep(POLL) => {}
            }
        }
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::coordination::v1::LeaseSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;

    fn lease(holder: &str, renewed: DateTime<Utc>, secs: i32) -> Lease {
        let ts =
            k8s_openapi::jiff::Timestamp::from_millisecond(renewed.timestamp_millis()).unwrap();
        Lease {
            spec: Some(LeaseSpec {
                holder_identity: Some(holder.into()),
                renew_time: Some(MicroTime(ts)),
                lease_duration_seconds: Some(secs),
                ..LeaseSpec::default()
            }),
            ..Lease::default()
        }
    }

    #[test]
    fn acts_until_the_lease_could_be_taken_over_less_the_margin() {
        let t0 = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let l = lease("me", t0, 15);
        let until = acting_until(&l, "me", MARGIN).unwrap();
        assert_eq!(until, t0 + chrono::Duration::seconds(12));
        assert!(may_act(
            true,
            Some(until),
            t0 + chrono::Duration::seconds(11)
        ));
        assert!(!may_act(
            true,
            Some(until),
            t0 + chrono::Duration::seconds(12)
        ));
        // Elected but the Lease names someone else; or not elected at all.
        assert_eq!(acting_until(&lease("other", t0, 15), "me", MARGIN), None);
        assert!(!may_act(true, None, t0));
        assert!(!may_act(false, Some(until), t0));
    }
}
