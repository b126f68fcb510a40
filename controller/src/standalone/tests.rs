//! The standalone tick against an in-memory router, the analysis crate's fake metrics source
//! and two listening sockets as backends: initialization, a promoted rollout, an abort command
//! through the `RolloutStore`, resuming from the state file, and a revert after promotion.

use std::sync::Mutex;

use chrono::{Duration as ChronoDuration, TimeZone, Utc};
use futures::future::BoxFuture;
use sluice_analysis::FakeMetricsSource;
use sluice_crds::{Command, CommandAction, Phase};

use super::config::StandaloneConfig;
use super::reconcile::{tick, TickContext};
use super::state::StateFile;
use super::store::Shared;
use crate::router::{RouterError, TrafficRouter};
use crate::store::RolloutStore;
use crate::telemetry::Telemetry;

#[derive(Default)]
struct MemRouter {
    weight: Mutex<Option<i32>>,
    writes: Mutex<Vec<i32>>,
}

impl TrafficRouter for MemRouter {
    fn set_weight(&self, weight: i32) -> BoxFuture<'_, Result<(), RouterError>> {
        let mut w = self.weight.lock().unwrap();
        if *w != Some(weight) {
            *w = Some(weight);
            self.writes.lock().unwrap().push(weight);
        }
        Box::pin(async { Ok(()) })
    }
    fn current_weight(&self) -> BoxFuture<'_, Result<Option<i32>, RouterError>> {
        let w = *self.weight.lock().unwrap();
        Box::pin(async move { Ok(w) })
    }
    fn cleanup(&self) -> BoxFuture<'_, Result<(), RouterError>> {
        self.set_weight(0)
    }
}

fn config(
    stable: &str,
    canary: &str,
    version: &str,
    hook_log: &std::path::Path,
) -> StandaloneConfig {
    config_with(stable, canary, version, hook_log, "")
}

/// `config` with `extra` (YAML lines of the rollout, indented 4) appended to the rollout.
fn config_with(
    stable: &str,
    canary: &str,
    version: &str,
    hook_log: &std::path::Path,
    extra: &str,
) -> StandaloneConfig {
    let log = hook_log.display();
    let text = format!(
        r#"rollouts:
  - name: web
    stable: {{ address: "{stable}", version: v1 }}
    canary: {{ address: "{canary}", version: {version} }}
    router:
      nginx: {{ conf: /x/nginx.conf, upstreamFile: /x/up.conf }}
    strategy:
      canary:
        steps:
          - setWeight: 20
          - analysis: {{}}
          - setWeight: 60
    analysis:
      interval: 10s
      metrics:
        - name: errors
          query: 'sum(rate(x{{v="{{{{canary}}}}"}}[{{{{interval}}}}]))'
          threshold: {{ max: 1 }}
    queryWindow: 30s
    hooks:
      scaleCanary: ["sh", "-c", "echo $SLUICE_SCALE $SLUICE_REVISION >> {log}"]
      promote: ["sh", "-c", "echo promote $SLUICE_REVISION >> {log}"]
      revert: ["sh", "-c", "echo revert $SLUICE_REVISION from $SLUICE_REVERTED_REVISION >> {log}"]
    postPromotionWatchSeconds: 600
{extra}"#
    );
    StandaloneConfig::parse(&text, std::path::Path::new("/x/rollouts.yaml")).unwrap()
}

struct World {
    _dir: tempfile::TempDir,
    state_path: std::path::PathBuf,
    shared: Shared,
    router: MemRouter,
    metrics: FakeMetricsSource,
    addrs: (String, String),
    _listeners: (std::net::TcpListener, std::net::TcpListener),
    now: chrono::DateTime<Utc>,
}

impl World {
    fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let l1 = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let l2 = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addrs = (
            l1.local_addr().unwrap().to_string(),
            l2.local_addr().unwrap().to_string(),
        );
        let state_path = dir.path().join("state.json");
        let shared = Shared::new(
            config(&addrs.0, &addrs.1, "v1", &dir.path().join("hooks.log")),
            StateFile::load(&state_path).unwrap(),
            state_path.clone(),
        );
        let metrics = FakeMetricsSource::new();
        metrics.set_value(r#"sum(rate(x{v="canary"}[30s]))"#, 0.0);
        World {
            _dir: dir,
            state_path,
            shared,
            router: MemRouter::default(),
            metrics,
            addrs,
            _listeners: (l1, l2),
            now: Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap(),
        }
    }

    fn set_version(&self, v: &str) {
        let log = self._dir.path().join("hooks.log");
        self.shared
            .set_config(config(&self.addrs.0, &self.addrs.1, v, &log));
    }

    /// Tick `n` times, 11 s apart (past the analysis interval).
    async fn ticks(&mut self, n: usize) {
        let telemetry = Telemetry::new();
        let load = crate::load::LoadManager::new(telemetry.clone());
        for _ in 0..n {
            let cfg = self.shared.config().rollouts[0].clone();
            let cx = TickContext {
                shared: &self.shared,
                router: &self.router,
                metrics: &self.metrics,
                templates: &[],
                telemetry: &telemetry,
                load: &load,
                now: self.now,
                notify: None,
            };
            tick(&cfg, &cx).await;
            self.now += ChronoDuration::seconds(11);
        }
    }

    fn phase(&self) -> Phase {
        self.shared.rollout_state("web").status.phase
    }
}

#[tokio::test]
async fn initializes_then_promotes_a_new_canary_version() {
    let mut w = World::new();
    w.ticks(3).await;
    assert_eq!(w.phase(), Phase::Idle);
    let st = w.shared.rollout_state("web");
    assert_eq!(st.primary_revision.as_deref(), Some("v1"));
    assert_eq!(st.status.stable_revision.as_deref(), Some("v1"));
    assert_eq!(*w.router.weight.lock().unwrap(), Some(0));
    w.set_version("v2");
    w.ticks(8).await;
    assert_eq!(
        w.phase(),
        Phase::Succeeded,
        "{:?}",
        w.shared.rollout_state("web").status
    );
    assert_eq!(*w.router.writes.lock().unwrap(), vec![0, 20, 60, 0]);
    let st = w.shared.rollout_state("web");
    assert_eq!(st.primary_revision.as_deref(), Some("v2"));
    assert!(!w.metrics.calls().is_empty(), "analysis ran");
    // Hooks ran once per change, not at every tick that repeats the effect.
    let hooks = std::fs::read_to_string(w._dir.path().join("hooks.log")).unwrap();
    assert_eq!(hooks, "down\nup v2\npromote v2\ndown v2\n");
    // The state file holds the same.
    let saved = StateFile::load(&w.state_path).unwrap();
    assert_eq!(saved.rollouts["web"], st);
}

#[tokio::test]
async fn abort_through_the_store_rolls_back_and_survives_a_restart() {
    let mut w = World::new();
    w.ticks(3).await;
    w.set_version("v2");
    w.metrics.set(
        r#"sum(rate(x{v="canary"}[30s]))"#,
        Ok(sluice_analysis::QueryResult::Vector(vec![])),
    );
    w.ticks(2).await;
    assert_eq!(w.phase(), Phase::Progressing);
    assert_eq!(*w.router.weight.lock().unwrap(), Some(20));
    let store = w.shared.store();
    let listed = store.list().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].metadata.namespace.as_deref(), Some("standalone"));
    assert!(store.get("default", "web").await.is_err());
    let cmd = Command {
        id: "c1".into(),
        action: CommandAction::Abort,
        by: Some("test".into()),
        reason: Some("manual".into()),
        alert_name: None,
        fingerprint: None,
        revision: None,
        at: w.now,
    };
    store.command("standalone", "web", cmd).await.unwrap();
    assert!(store
        .command(
            "standalone",
            "nope",
            sluice_crds::Command {
                id: "c2".into(),
                action: CommandAction::Abort,
                by: None,
                reason: None,
                alert_name: None,
                fingerprint: None,
                revision: None,
                at: w.now,
            }
        )
        .await
        .is_err());
    // A restart: a fresh Shared from the state file sees the command and acts on it.
    let cfg = w.shared.config();
    w.shared = Shared::new(
        cfg,
        StateFile::load(&w.state_path).unwrap(),
        w.state_path.clone(),
    );
    assert_eq!(w.phase(), Phase::Progressing);
    w.ticks(2).await;
    let st = w.shared.rollout_state("web");
    assert_eq!(st.status.phase, Phase::Failed, "{:?}", st.status);
    assert_eq!(
        st.status.abort.as_ref().map(|a| a.source.as_str()),
        Some("command")
    );
    assert_eq!(*w.router.weight.lock().unwrap(), Some(0));
    let got = w.shared.store().get("standalone", "web").await.unwrap();
    assert!(got
        .metadata
        .annotations
        .unwrap()
        .contains_key(sluice_crds::COMMAND_ANNOTATION));
}

#[tokio::test]
async fn abort_after_promotion_runs_the_revert_hook_and_fails_the_revision() {
    let mut w = World::new();
    w.ticks(3).await;
    w.set_version("v2");
    w.ticks(8).await;
    assert_eq!(w.phase(), Phase::Succeeded);
    let cmd = Command {
        id: "am".into(),
        action: CommandAction::Abort,
        by: Some("alertmanager".into()),
        reason: None,
        alert_name: Some("HighErrorRate".into()),
        fingerprint: None,
        revision: None,
        at: w.now,
    };
    w.shared
        .store()
        .command("standalone", "web", cmd)
        .await
        .unwrap();
    w.ticks(3).await;
    let st = w.shared.rollout_state("web");
    assert_eq!(st.status.phase, Phase::Failed, "{:?}", st.status);
    assert_eq!(st.primary_revision.as_deref(), Some("v1"));
    assert_eq!(st.status.stable_revision.as_deref(), Some("v1"));
    let abort = st.status.abort.clone().unwrap();
    assert_eq!(abort.revision.as_deref(), Some("v2"));
    assert_eq!(
        abort.reason,
        "reverted to v1 after promotion: alert HighErrorRate firing"
    );
    assert_eq!(*w.router.weight.lock().unwrap(), Some(0));
    let hooks = std::fs::read_to_string(w._dir.path().join("hooks.log")).unwrap();
    assert_eq!(
        hooks,
        "down\nup v2\npromote v2\ndown v2\nrevert v1 from v2\n"
    );
    // Failed v2 is not retried while the config still names it.
    w.ticks(2).await;
    assert_eq!(w.phase(), Phase::Failed);
    assert_eq!(
        std::fs::read_to_string(w._dir.path().join("hooks.log"))
            .unwrap()
            .lines()
            .count(),
        5
    );
}

/// A command check runs at each analysis with the rollout's environment: passing, the rollout
/// promotes; failing, its exit status and last output line abort it (failureLimit 0).
#[tokio::test]
async fn command_checks_pass_or_abort_the_rollout_with_their_output() {
    for broken in [false, true] {
        let mut w = World::new();
        w.ticks(3).await;
        let dir = w._dir.path().to_path_buf();
        if broken {
            std::fs::write(dir.join("broken"), "").unwrap();
        }
        let extra = format!(
            "    commandChecks:\n      - name: smoke\n        timeout: 5s\n        command: [sh, -c, 'echo \"$SLUICE_REVISION $SLUICE_CANARY_ADDRESS\" >> {d}/smoke.log; test ! -e {d}/broken || {{ echo \"cart: HTTP 500\" >&2; exit 2; }}']\n",
            d = dir.display()
        );
        let cfg = config_with(&w.addrs.0, &w.addrs.1, "v2", &dir.join("hooks.log"), &extra);
        w.shared.set_config(cfg);
        w.ticks(8).await;
        let st = w.shared.rollout_state("web").status;
        let ran = std::fs::read_to_string(dir.join("smoke.log")).unwrap_or_default();
        assert!(ran.starts_with(&format!("v2 {}\n", w.addrs.1)), "{ran:?}");
        if broken {
            assert_eq!(st.phase, Phase::Failed, "{st:?}");
            let reason = st.abort.map(|a| a.reason).unwrap_or_default();
            assert!(
                reason.contains("sh exited with 2: cart: HTTP 500"),
                "{reason}"
            );
        } else {
            assert_eq!(st.phase, Phase::Succeeded, "{st:?}");
        }
    }
}
