//! Shared state of all reconciles: the client, the clock, leadership, analysis, events, metrics.

use std::sync::Arc;

use kube::runtime::events::{Recorder, Reporter};
use kube::Client;
use tokio::sync::watch;

use super::analysis::{AnalysisRunner, BridgeAnalysis};
use super::discovery::Served;
use super::guard::Reported;
use crate::clock::{Clock, SystemClock};
use crate::load::LoadManager;
use crate::telemetry::Telemetry;

/// Name the controller reports Events and field ownership under.
pub const CONTROLLER_NAME: &str = "sluice-controller";

pub struct Context {
    pub client: Client,
    pub clock: Arc<dyn Clock>,
    /// Reconciles act only while this reads true (Lease leader election; tests flip it).
    pub leader: watch::Receiver<bool>,
    pub analysis: Arc<dyn AnalysisRunner>,
    pub recorder: Recorder,
    pub telemetry: Telemetry,
    /// Undecodable Rollout versions already reported by an Event.
    pub undecodable: Reported,
    /// Router resources the cluster serves (found at start).
    pub served: Served,
    /// Built-in canary load generators (`spec.load`), counted in `telemetry`.
    pub load: LoadManager,
    /// Outbound notifications (`--notifications-file`); None: none configured.
    pub notify: Option<Arc<super::notifications::KubeNotify>>,
}

impl Context {
    /// A context with the system clock, always leader, and analysis through the bridge
    /// (Prometheus from each Rollout's spec).
    pub fn new(client: Client) -> Self {
        let (_tx, rx) = watch::channel(true);
        let telemetry = Telemetry::new();
        Self {
            recorder: Recorder::new(
                client.clone(),
                Reporter {
                    controller: CONTROLLER_NAME.to_string(),
                    instance: std::env::var("POD_NAME").ok(),
                },
            ),
            analysis: Arc::new(BridgeAnalysis::new(client.clone(), None)),
            client,
            clock: Arc::new(SystemClock),
            leader: rx,
            telemetry: telemetry.clone(),
            undecodable: Reported::default(),
            served: Served::default(),
            load: LoadManager::new(telemetry),
            notify: None,
        }
    }

    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    pub fn with_leader(mut self, leader: watch::Receiver<bool>) -> Self {
        self.leader = leader;
        self
    }

    pub fn with_analysis(mut self, analysis: Arc<dyn AnalysisRunner>) -> Self {
        self.analysis = analysis;
        self
    }

    pub fn with_served(mut self, served: Served) -> Self {
        self.served = served;
        self
    }

    pub fn with_telemetry(mut self, telemetry: Telemetry) -> Self {
        self.load = LoadManager::new(telemetry.clone());
        self.telemetry = telemetry;
        self
    }

    pub fn with_notify(mut self, notify: Arc<super::notifications::KubeNotify>) -> Self {
        self.notify = Some(notify);
        self
    }

    pub fn is_leader(&self) -> bool {
        *self.leader.borrow()
    }
}
