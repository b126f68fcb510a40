//! Leadership as a `watch::Receiver<bool>`: a Lease (kube-lease-manager) when leader election is
//! on, a constant `true` otherwise. Reconciles act only while it reads true; tests flip it.

use futures::Stream;
use kube::Client;
use kube_lease_manager::LeaseManagerBuilder;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Lease validity and renew-ahead time (seconds): a dead leader is replaced within ~15 s.
pub const LEASE_SECONDS: u64 = 15;
pub const LEASE_GRACE_SECONDS: u64 = 5;

/// Who we are in the Lease: the pod name when set by the Downward API, else the host name.
pub fn identity() -> String {
    std::env::var("POD_NAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| format!("sluice-{}", std::process::id()))
}

/// Leadership that never changes (single replica, or leader election off).
pub fn always_leader() -> (watch::Sender<bool>, watch::Receiver<bool>) {
    watch::channel(true)
}

/// Keeps the Lease task alive; dropping the receiver makes the task release the Lease and end.
pub struct Election {
    pub leader: watch::Receiver<bool>,
    pub task:
        JoinHandle<Result<kube_lease_manager::LeaseManager, kube_lease_manager::LeaseManagerError>>,
}

/// Start competing for Lease `name` in `namespace`.
pub async fn elect(client: Client, namespace: &str, name: &str) -> anyhow::Result<Election> {
    let manager = LeaseManagerBuilder::new(client, name)
        .with_namespace(namespace)
        .with_identity(identity())
        .with_duration(LEASE_SECONDS)
        .with_grace(LEASE_GRACE_SECONDS)
        .build()
        .await
        .map_err(|e| anyhow::anyhow!("cannot set up Lease {namespace}/{name}: {e}"))?;
    let (leader, task) = manager.watch().await;
    Ok(Election { leader, task })
}

/// Yields once every time leadership is gained (to reconcile everything at once).
pub fn on_gain(rx: watch::Receiver<bool>) -> impl Stream<Item = ()> + Send + 'static {
    futures::stream::unfold(rx, |mut rx| async move {
        loop {
            if rx.changed().await.is_err() {
                return None;
            }
            if *rx.borrow_and_update() {
                return Some(((), rx));
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    #[tokio::test]
    async fn gains_are_reported_losses_are_not() {
        let (tx, rx) = watch::channel(false);
        let mut gains = Box::pin(on_gain(rx));
        tx.send(true).unwrap();
        assert_eq!(gains.next().await, Some(()));
        tx.send(false).unwrap();
        tx.send(true).unwrap();
        assert_eq!(gains.next().await, Some(()));
        drop(tx);
        assert_eq!(gains.next().await, None);
    }
}
