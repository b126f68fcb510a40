//! `sluice run -f rollouts.yaml`: load the file and the state file, serve the HTTP API, and tick
//! every rollout until SIGTERM / Ctrl-C. The file is re-read when it changes (a bad edit is
//! logged and the last good version kept).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use sluice_analysis::{MetricsSource, PrometheusClient, PrometheusConfig, QueryError, QueryFuture};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::config::{RolloutConfig, StandaloneConfig};
use super::reconcile::{tick, TickContext};
use super::state::StateFile;
use super::store::Shared;
use crate::api::{self, ApiState, AuthConfig, Secret};
use crate::clock::{Clock, SystemClock};
use crate::notify::config::{SinkConfig, DEFAULT_QUEUE_CAPACITY};
use crate::notify::{Feed, Notifier, Sink};
use crate::router::nginx_file::NginxFileRouter;
use crate::router::traefik_file::TraefikFileRouter;
use crate::router::TrafficRouter;
use crate::telemetry::Telemetry;

/// Arguments of `sluice run`.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// The rollouts file (YAML).
    #[arg(short = 'f', long = "file")]
    pub file: PathBuf,
    /// State file (JSON). Default: the file's `stateFile`, else `<file>.state.json`.
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// HTTP API address. Default: the file's `listen`, else 127.0.0.1:8080.
    #[arg(long, env = "SLUICE_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Log as JSON lines.
    #[arg(long, env = "SLUICE_JSON_LOGS")]
    pub json_logs: bool,
    /// Longest pause between two ticks of a rollout, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    pub poll_ms: u64,
    /// Check the file, Prometheus, `nginx -t` and the upstream include, list every problem,
    /// and exit (non-zero on any problem) instead of running.
    #[arg(long)]
    pub check: bool,
}

/// Used when no Prometheus address is configured: every query is an Error verdict.
struct NoPrometheus;

impl MetricsSource for NoPrometheus {
    fn query<'a>(
        &'a self,
        _promql: &'a str,
        _at: Option<chrono::DateTime<chrono::Utc>>,
    ) -> QueryFuture<'a> {
        Box::pin(async {
            Err(QueryError::Config(
                "no Prometheus address (set `prometheus` or analysis.prometheus.address)".into(),
            ))
        })
    }
}

/// A rollout's live objects, rebuilt when its config changes.
struct Runtime {
    cfg: RolloutConfig,
    /// Global sinks and the rollout's own, secrets read.
    sinks: Vec<Sink>,
    /// The file's global sinks these were built from (a change rebuilds the runtime).
    global_sinks: Vec<SinkConfig>,
    router: Arc<dyn TrafficRouter>,
    metrics: Arc<dyn MetricsSource>,
    due: Instant,
}

fn build_router(cfg: &RolloutConfig) -> anyhow::Result<Arc<dyn TrafficRouter>> {
    if let Some(n) = &cfg.router.nginx {
        let r = NginxFileRouter::new(n.clone(), &cfg.stable.address, &cfg.canary.address)?;
        return Ok(Arc::new(r));
    }
    if let Some(t) = &cfg.router.traefik {
        let url = |a: &str| {
            if a.contains("://") {
                a.to_string()
            } else {
                format!("http://{a}")
            }
        };
        let r = TraefikFileRouter::new(
            t.clone(),
            url(&cfg.stable.address),
            url(&cfg.canary.address),
        )?;
        return Ok(Arc::new(r));
    }
    bail!("rollout {}: no router", cfg.name)
}

pub(crate) fn build_metrics(
    cfg: &RolloutConfig,
    default: Option<&str>,
) -> anyhow::Result<Arc<dyn MetricsSource>> {
    let spec = cfg.analysis.as_ref().and_then(|a| a.prometheus.as_ref());
    let Some(address) = spec.map(|p| p.address.as_str()).or(default) else {
        return Ok(Arc::new(NoPrometheus));
    };
    let mut pc = PrometheusConfig::new(address);
    if let Some(t) = spec.and_then(|p| p.timeout.as_deref()) {
        pc.timeout = sluice_crds::parse_duration(t)
            .with_context(|| format!("rollout {}: prometheus timeout", cfg.name))?;
    }
    let client = PrometheusClient::new(pc)
        .with_context(|| format!("rollout {}: prometheus client", cfg.name))?;
    Ok(Arc::new(client))
}

fn resolve_sinks(
    cfg: &RolloutConfig,
    config: &StandaloneConfig,
    base: &Path,
) -> anyhow::Result<Vec<Sink>> {
    let all = config.notifications.sinks.iter().chain(&cfg.notifications);
    all.map(|s| s.resolve(base).map_err(anyhow::Error::msg))
        .collect::<anyhow::Result<Vec<_>>>()
        .with_context(|| format!("rollout {}", cfg.name))
}

fn sync_runtimes(
    runtimes: &mut BTreeMap<String, Runtime>,
    config: &StandaloneConfig,
    base: &Path,
) -> anyhow::Result<()> {
    let mut next = BTreeMap::new();
    let global_changed = runtimes
        .values()
        .next()
        .is_some_and(|rt| rt.global_sinks != config.notifications.sinks);
    for cfg in &config.rollouts {
        match runtimes.remove(&cfg.name) {
            Some(rt) if rt.cfg == *cfg && !global_changed => {
                next.insert(cfg.name.clone(), rt);
            }
            old => {
                let rt = Runtime {
                    cfg: cfg.clone(),
                    sinks: resolve_sinks(cfg, config, base)?,
                    global_sinks: config.notifications.sinks.clone(),
                    router: build_router(cfg)?,
                    metrics: build_metrics(cfg, config.prometheus.as_deref())?,
                    due: old.map(|o| o.due).unwrap_or_else(Instant::now),
                };
                next.insert(cfg.name.clone(), rt);
            }
        }
    }
    *runtimes = next;
    Ok(())
}

fn state_path(args: &RunArgs, cfg: &StandaloneConfig) -> PathBuf {
    if let Some(p) = &args.state {
        return p.clone();
    }
    let base = super::config::base_dir(&args.file);
    match &cfg.state_file {
        Some(p) if p.is_relative() => base.join(p),
        Some(p) => p.clone(),
        None => {
            let mut name = args.file.as_os_str().to_os_string();
            name.push(".state.json");
            PathBuf::from(name)
        }
    }
}

fn auth(cfg: &StandaloneConfig, listen: SocketAddr) -> anyhow::Result<AuthConfig> {
    let api_token = cfg
        .api_token
        .clone()
        .or_else(|| std::env::var("SLUICE_API_TOKEN").ok())
        .filter(|t| !t.is_empty());
    let open = api_token.is_none();
    if open && !listen.ip().is_loopback() {
        bail!("the API on {listen} needs a token: set apiToken in the file or SLUICE_API_TOKEN");
    }
    if open {
        warn!(%listen, "no API token: the API is open to anyone who can reach {listen}");
    }
    Ok(AuthConfig {
        webhook_token: cfg.webhook_token.clone().map(Secret::new),
        api_token: api_token.map(Secret::new),
        read_token: cfg
            .read_token
            .clone()
            .filter(|t| !t.is_empty())
            .map(Secret::new),
        authorizer: None,
        insecure_allow_anonymous: open,
    })
}

async fn shutdown_signal(token: CancellationToken) {
    if let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
    {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    } else {
        let _ = tokio::signal::ctrl_c().await;
    }
    token.cancel();
}

/// Re-read the file when its text changed; keep the last good config on errors.
fn reload(path: &Path, last_text: &mut String, shared: &Shared) -> Option<StandaloneConfig> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            warn!(file = %path.display(), error = %e, "cannot read the rollouts file; keeping the last one");
            return None;
        }
    };
    if text == *last_text {
        return None;
    }
    *last_text = text.clone();
    match StandaloneConfig::parse(&text, path) {
        Ok(cfg) => {
            info!(file = %path.display(), rollouts = cfg.rollouts.len(), "rollouts file loaded");
            shared.set_config(cfg.clone());
            Some(cfg)
        }
        Err(e) => {
            warn!(error = %e, "rollouts file rejected; keeping the last good one");
            shared.set_file_error(e.to_string());
            None
        }
    }
}

/// Run until SIGTERM / Ctrl-C.
pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    crate::cli::init_logging(args.json_logs);
    if args.check {
        let report = super::check::check(&args.file).await;
        print!("{}", report.text());
        if !report.problems.is_empty() {
            bail!(
                "{} problem{} in {}",
                report.problems.len(),
                if report.problems.len() == 1 { "" } else { "s" },
                args.file.display()
            );
        }
        return Ok(());
    }
    let mut last_text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let config = StandaloneConfig::parse(&last_text, &args.file)?;
    let state_file = state_path(&args, &config);
    let state = StateFile::load(&state_file)?;
    info!(file = %args.file.display(), state = %state_file.display(), rollouts = config.rollouts.len(), "standalone mode");
    let listen: SocketAddr = match (args.listen, &config.listen) {
        (Some(l), _) => l,
        (None, Some(l)) => l.parse().with_context(|| format!("listen address {l:?}"))?,
        (None, None) => SocketAddr::from(([127, 0, 0, 1], 8080)),
    };
    let auth = auth(&config, listen)?;
    let shared = Shared::new(config.clone(), state, state_file).with_file(args.file.clone());
    let telemetry = Telemetry::global();
    let mut runtimes = BTreeMap::new();
    let base = super::config::base_dir(&args.file);
    sync_runtimes(&mut runtimes, &shared.effective_config(), &base)?;
    // The worker settles deliveries in the state file; queue and retry settings are read once.
    let notifier = Notifier::start(
        config
            .notifications
            .queue_capacity
            .unwrap_or(DEFAULT_QUEUE_CAPACITY),
        config.notifications.retry.policy(),
        Arc::new(shared.clone()),
        Arc::new(SystemClock),
        telemetry.clone(),
    )
    .context("cannot start the notification worker")?;
    let load = crate::load::LoadManager::new(telemetry.clone());

    let token = CancellationToken::new();
    tokio::spawn(shutdown_signal(token.clone()));
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    info!(%listen, "HTTP API listening");
    let api_state = ApiState::new(Arc::new(shared.store()), telemetry.clone(), auth)
        .with_info(api::ServerInfo::standalone(super::NAMESPACE));
    let api_stop = token.clone();
    let server = tokio::spawn(async move {
        let stop = api_stop.clone();
        if let Err(e) =
            api::serve_on(api_state, listener, async move { stop.cancelled().await }).await
        {
            warn!(error = %e, "HTTP API stopped");
            api_stop.cancel();
        }
    });

    let poll = Duration::from_millis(args.poll_ms.max(50));
    let clock = SystemClock;
    let mut templates = config.analysis_templates();
    while !token.is_cancelled() {
        if let Some(cfg) = reload(&args.file, &mut last_text, &shared) {
            templates = cfg.analysis_templates();
        }
        // The file plus `set-version` overrides; a changed rollout gets new router/metrics.
        let effective = shared.effective_config();
        if let Err(e) = sync_runtimes(&mut runtimes, &effective, &base) {
            warn!(error = %format!("{e:#}"), "cannot apply the rollouts file");
        }
        load.retain(&runtimes.keys().cloned().collect::<Vec<_>>());
        let now = clock.now();
        let started = Instant::now();
        let due: Vec<&Runtime> = runtimes.values().filter(|rt| rt.due <= started).collect();
        let ticks = due.iter().map(|rt| {
            let cx = TickContext {
                shared: &shared,
                router: rt.router.as_ref(),
                metrics: rt.metrics.as_ref(),
                templates: &templates,
                telemetry: &telemetry,
                load: &load,
                now,
                notify: Some(Feed {
                    notifier: &notifier,
                    sinks: &rt.sinks,
                    dashboard_url: effective.notifications.dashboard_url.as_deref(),
                    telemetry: &telemetry,
                }),
            };
            let cfg = rt.cfg.clone();
            async move {
                let t0 = Instant::now();
                let requeue = tick(&cfg, &cx).await;
                (cfg.name, requeue, t0.elapsed())
            }
        });
        let results = futures::future::join_all(ticks).await;
        for (name, requeue, took) in results {
            telemetry.record_reconcile(took.as_secs_f64(), true);
            if let Some(rt) = runtimes.get_mut(&name) {
                rt.due = started + requeue.unwrap_or(poll).min(poll);
            }
        }
        let next = runtimes
            .values()
            .map(|rt| rt.due)
            .min()
            .unwrap_or(started + poll);
        let wait = next.saturating_duration_since(Instant::now()).min(poll);
        tokio::select! {
            woken = shared.sleep(wait) => {
                if woken {
                    // A command arrived: act on it now.
                    for rt in runtimes.values_mut() { rt.due = Instant::now(); }
                }
            }
            _ = token.cancelled() => {}
        }
    }
    info!("stopping");
    let _ = server.await;
    Ok(())
}
