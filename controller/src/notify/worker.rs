//! The delivery worker. Shells offer the outbox's pending entries after each status write
//! ([`Notifier::offer`], never waits); a dispatcher hands each to the lane of its (rollout,
//! sink), which delivers in order with retries and backoff, then settles the entry through the
//! [`OutboxStore`] (the state file or the Rollout's status). A sink that is down holds up only
//! its own lane.
//!
//! Bound: at most `capacity` notifications are queued or being delivered at once. An offer
//! beyond that is dropped and counted (`sluice_notifications_dropped_total{reason="queue_full"}`),
//! and stays in the outbox: the next tick offers it again.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use futures::future::BoxFuture;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::deliver::{client, send_once, Attempt, RetryPolicy};
use super::event::Notification;
use super::outbox::Outcome;
use super::sink::Sink;
use crate::clock::Clock;
use crate::telemetry::Telemetry;

/// Where the worker records how a delivery ended.
pub trait OutboxStore: Send + Sync {
    fn settle<'a>(
        &'a self,
        namespace: &'a str,
        rollout: &'a str,
        sink: &'a str,
        key: &'a str,
        outcome: Outcome,
    ) -> BoxFuture<'a, Result<(), String>>;
}

/// One notification for one sink.
#[derive(Debug, Clone)]
pub struct Job {
    pub sink: Sink,
    pub notification: Notification,
}

/// (namespace, rollout, sink, key): one entry of an outbox.
type EntryId = (String, String, String, String);

fn entry_id(job: &Job) -> EntryId {
    (
        job.notification.namespace.clone(),
        job.notification.rollout.clone(),
        job.sink.name.clone(),
        job.notification.key.clone(),
    )
}

/// Entries this process settled, remembered so that an offer from a copy of the outbox read
/// before the settle (a reconcile's read, seconds old) does not send them again.
const REMEMBER_SETTLED: usize = 4096;

/// Entries queued or being delivered, and those recently settled.
#[derive(Default)]
struct Tracker {
    inflight: HashSet<EntryId>,
    settled: HashSet<EntryId>,
    order: VecDeque<EntryId>,
}

impl Tracker {
    fn finish(&mut self, id: EntryId) {
        self.inflight.remove(&id);
        if self.settled.insert(id.clone()) {
            self.order.push_back(id);
        }
        while self.order.len() > REMEMBER_SETTLED {
            if let Some(old) = self.order.pop_front() {
                self.settled.remove(&old);
            }
        }
    }
}

/// What became of an offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    Queued,
    /// Already queued or being delivered.
    InFlight,
    /// Already delivered or given up by this process (the offer came from a stale copy).
    Settled,
    /// The queue is full (or the worker stopped): the entry stays pending in the outbox.
    Dropped,
}

/// The shells' handle. Cheap to clone.
#[derive(Clone)]
pub struct Notifier {
    tx: mpsc::Sender<Job>,
    inflight: Arc<Mutex<Tracker>>,
    capacity: usize,
    telemetry: Telemetry,
    stop: CancellationToken,
}

fn lock(m: &Mutex<Tracker>) -> MutexGuard<'_, Tracker> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

struct Lanes {
    client: reqwest::Client,
    policy: RetryPolicy,
    store: Arc<dyn OutboxStore>,
    clock: Arc<dyn Clock>,
    telemetry: Telemetry,
    inflight: Arc<Mutex<Tracker>>,
    stop: CancellationToken,
}

impl Notifier {
    /// Start the worker on the current tokio runtime.
    pub fn start(
        capacity: usize,
        policy: RetryPolicy,
        store: Arc<dyn OutboxStore>,
        clock: Arc<dyn Clock>,
        telemetry: Telemetry,
    ) -> Result<Notifier, reqwest::Error> {
        let capacity = capacity.max(1);
        let (tx, rx) = mpsc::channel(capacity);
        let inflight = Arc::new(Mutex::new(Tracker::default()));
        let stop = CancellationToken::new();
        let lanes = Arc::new(Lanes {
            client: client(&policy)?,
            policy,
            store,
            clock,
            telemetry: telemetry.clone(),
            inflight: inflight.clone(),
            stop: stop.clone(),
        });
        tokio::spawn(dispatch(rx, lanes));
        Ok(Notifier {
            tx,
            inflight,
            capacity,
            telemetry,
            stop,
        })
    }

    /// Stop delivering at once, as a killed process would: what is not settled stays pending
    /// in the outbox. Later offers are dropped (`reason="stopped"`).
    pub fn stop(&self) {
        self.stop.cancel();
    }

    /// Queue a pending entry without waiting.
    pub fn offer(&self, sink: &Sink, notification: &Notification) -> Offer {
        let job = Job {
            sink: sink.clone(),
            notification: notification.clone(),
        };
        let id = entry_id(&job);
        let mut inflight = lock(&self.inflight);
        if inflight.inflight.contains(&id) {
            return Offer::InFlight;
        }
        if inflight.settled.contains(&id) {
            return Offer::Settled;
        }
        if inflight.inflight.len() >= self.capacity {
            drop(inflight);
            self.dropped(&job, "queue_full");
            return Offer::Dropped;
        }
        match self.tx.try_send(job) {
            Ok(()) => {
                inflight.inflight.insert(id);
                Offer::Queued
            }
            Err(e) => {
                drop(inflight);
                let (job, reason) = match e {
                    mpsc::error::TrySendError::Full(j) => (j, "queue_full"),
                    mpsc::error::TrySendError::Closed(j) => (j, "stopped"),
                };
                self.dropped(&job, reason);
                Offer::Dropped
            }
        }
    }

    fn dropped(&self, job: &Job, reason: &str) {
        self.telemetry.record_notification_drop(reason);
        warn!(
            rollout = %job.notification.rollout,
            sink = %job.sink.name,
            key = %job.notification.key,
            reason,
            "notification not queued; it stays in the outbox and is offered again at the next tick"
        );
    }
}

async fn dispatch(mut rx: mpsc::Receiver<Job>, lanes: Arc<Lanes>) {
    let mut senders: HashMap<(String, String, String), mpsc::UnboundedSender<Job>> = HashMap::new();
    while let Some(job) = rx.recv().await {
        let lane = (
            job.notification.namespace.clone(),
            job.notification.rollout.clone(),
            job.sink.name.clone(),
        );
        let tx = senders.entry(lane).or_insert_with(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(run_lane(rx, lanes.clone()));
            tx
        });
        // Unbounded is safe here: entries get in only while the in-flight set has room.
        if let Err(e) = tx.send(job) {
            lock(&lanes.inflight).inflight.remove(&entry_id(&e.0));
        }
    }
}

async fn run_lane(mut rx: mpsc::UnboundedReceiver<Job>, lanes: Arc<Lanes>) {
    while let Some(job) = rx.recv().await {
        let outcome = tokio::select! {
            o = deliver(&lanes, &job) => o,
            _ = lanes.stop.cancelled() => return,
        };
        let n = &job.notification;
        lanes
            .telemetry
            .record_notification(&job.sink.name, outcome.as_str());
        if let Err(e) = lanes
            .store
            .settle(&n.namespace, &n.rollout, &job.sink.name, &n.key, outcome)
            .await
        {
            // Still pending in the outbox: sent again later (the receiver sees the same
            // webhook-id and can drop the repeat).
            warn!(rollout = %n.rollout, sink = %job.sink.name, key = %n.key, error = %e,
                "cannot record the delivery");
        }
        lock(&lanes.inflight).finish(entry_id(&job));
    }
}

/// Attempts until delivered, given up, or older than the policy's `max_age`.
async fn deliver(lanes: &Lanes, job: &Job) -> Outcome {
    let n = &job.notification;
    let max_age = chrono::Duration::from_std(lanes.policy.max_age).unwrap_or(chrono::Duration::MAX);
    let mut failures = 0u32;
    loop {
        let now = lanes.clock.now();
        match send_once(&lanes.client, &job.sink, n, now).await {
            Attempt::Delivered => {
                info!(rollout = %n.rollout, sink = %job.sink.name, key = %n.key,
                    attempts = failures + 1, "notification delivered");
                return Outcome::Delivered;
            }
            Attempt::GiveUp { reason } => {
                warn!(rollout = %n.rollout, sink = %job.sink.name, key = %n.key, %reason,
                    "notification refused by the receiver; not retried (check the sink's URL and format)");
                return Outcome::Failed;
            }
            Attempt::Retry { reason, after } => {
                failures += 1;
                let wait = after
                    .unwrap_or_else(|| lanes.policy.backoff(failures))
                    .min(lanes.policy.max_backoff);
                let wait_c = chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX);
                if now - n.at + wait_c > max_age {
                    warn!(rollout = %n.rollout, sink = %job.sink.name, key = %n.key, %reason,
                        attempts = failures, "notification given up: the receiver did not take it within the maximum age");
                    return Outcome::Failed;
                }
                warn!(rollout = %n.rollout, sink = %job.sink.name, key = %n.key, %reason,
                    retry_in_ms = wait.as_millis() as u64, "notification not delivered; will retry");
                tokio::time::sleep(wait).await;
            }
        }
    }
}
