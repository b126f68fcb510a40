//! `sluice controller`: the kube-runtime Controller over Rollouts (owning the Services it creates,
//! watching Deployments through a mapper), Lease leader election, and the HTTP API on `--listen`.
//! [`controller`] is the wiring itself, which tests drive against an in-memory API server.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Api, ApiResource, DynamicObject};
use kube::runtime::controller::{Config as ControllerConfig, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use sluice_crds::{Rollout, MANAGED_BY, MANAGED_BY_LABEL};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::analysis::BridgeAnalysis;
use super::context::Context;
use super::discovery::{self, rollouts_for_httproute, rollouts_for_traefik_service};
use super::fence;
use super::guard::{decoded, error_policy_guarded, reconcile_guarded, GuardedRollout};
use super::leader;
use crate::api::{self, ApiState, AuthConfig, Secret};
use crate::store::kube::KubeStore;
use crate::telemetry::Telemetry;

/// Arguments of `sluice controller`.
#[derive(Debug, Clone, clap::Args)]
pub struct ControllerArgs {
    /// Watch only this namespace (default: all namespaces).
    #[arg(long, short = 'n', env = "SLUICE_NAMESPACE")]
    pub namespace: Option<String>,
    /// Elect one active replica through a Lease (run several replicas safely).
    #[arg(long, env = "SLUICE_LEADER_ELECTION")]
    pub leader_election: bool,
    /// Namespace of the Lease (default: the pod's namespace, else `default`).
    #[arg(long, env = "POD_NAMESPACE")]
    pub lease_namespace: Option<String>,
    /// Name of the Lease.
    #[arg(long, default_value = "sluice-controller")]
    pub lease_name: String,
    /// Address of the HTTP API, /metrics, /healthz and /readyz.
    #[arg(long, env = "SLUICE_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,
    /// Log as JSON lines.
    #[arg(long, env = "SLUICE_JSON_LOGS")]
    pub json_logs: bool,
    /// Prometheus used by Rollouts that name none, e.g. `http://prometheus.monitoring:9090`.
    #[arg(long, env = "SLUICE_PROMETHEUS")]
    pub prometheus: Option<String>,
    /// Rollouts reconciled at once.
    #[arg(long, default_value_t = 4)]
    pub concurrency: u16,
    /// Static bearer token for the API (read and command every rollout).
    #[arg(long, env = "SLUICE_API_TOKEN", hide_env_values = true)]
    pub api_token: Option<String>,
    /// Bearer token Alertmanager sends to the webhook (default: the API token).
    #[arg(long, env = "SLUICE_WEBHOOK_TOKEN", hide_env_values = true)]
    pub webhook_token: Option<String>,
    /// Static bearer token that may read every rollout but send no command (dashboards on a
    /// wall screen, watchers without a Kubernetes identity). Kubernetes tokens keep working.
    #[arg(long, env = "SLUICE_READ_TOKEN", hide_env_values = true)]
    pub read_token: Option<String>,
    /// Outbound notifications: a YAML file with the standalone file's `notifications` section
    /// (sinks every Rollout notifies; secrets through `urlFile`/`signingKeyFile` from a mounted
    /// Secret, or `urlEnv`/`signingKeyEnv`). docs/notifications.md.
    #[arg(long, env = "SLUICE_NOTIFICATIONS_FILE")]
    pub notifications_file: Option<std::path::PathBuf>,
}

/// The API's authentication: the static tokens (empty ones ignored), then `authorizer`
/// (TokenReview + SubjectAccessReview) for every other bearer token.
pub fn auth_config(
    args: &ControllerArgs,
    authorizer: Option<Arc<dyn crate::api::Authorizer>>,
) -> AuthConfig {
    let token = |t: &Option<String>| t.clone().filter(|t| !t.is_empty()).map(Secret::new);
    AuthConfig {
        webhook_token: token(&args.webhook_token),
        api_token: token(&args.api_token),
        read_token: token(&args.read_token),
        authorizer,
        insecure_allow_anonymous: false,
    }
}

/// Rollouts a changed Deployment concerns: the one targeting it, or the one owning `NAME-primary`.
pub fn rollouts_for_deployment(
    rollouts: &[Arc<Rollout>],
    d: &Deployment,
) -> Vec<ObjectRef<Rollout>> {
    let name = d.name_any();
    let ns = d.namespace();
    rollouts
        .iter()
        .filter(|r| r.namespace() == ns)
        .filter(|r| {
            let t = &r.spec.target_ref.name;
            *t == name || format!("{t}-primary") == name
        })
        .map(|r| ObjectRef::from_obj(r.as_ref()))
        .collect()
}

/// The same object as a guarded Rollout.
fn guarded_ref(r: ObjectRef<Rollout>) -> ObjectRef<GuardedRollout> {
    let o = ObjectRef::new(&r.name);
    match &r.namespace {
        Some(ns) => o.within(ns),
        None => o,
    }
}

fn dynamic_api(client: &Client, ns: Option<&str>, ar: &ApiResource) -> Api<DynamicObject> {
    match ns {
        Some(ns) => Api::namespaced_with(client.clone(), ns, ar),
        None => Api::all_with(client.clone(), ar),
    }
}

fn api_for<K>(client: &Client, ns: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match ns {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

async fn shutdown_signal(token: CancellationToken) {
    #[cfg(unix)]
    {
        if let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            token.cancel();
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
    token.cancel();
}

/// How long the start-up probe of the API server may take.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

/// The client, after one request to the API server: `GET /version`, which every client may read
/// by default (ClusterRole `system:public-info-viewer` of Kubernetes' bootstrap RBAC policy,
/// `plugin/pkg/auth/authorizer/rbac/bootstrappolicy/policy.go`). Without
/// it an unreachable server shows up only as endless watch retries; with it the controller exits
/// non-zero at once, naming the address, and the kubelet restarts it with backoff.
async fn connect() -> anyhow::Result<Client> {
    // kube's own message names both places it looked; its source chain only repeats them.
    let config = kube::Config::infer().await.map_err(|e| {
        anyhow::anyhow!(
            "cannot reach the Kubernetes API: no configuration ({e}); run in a Pod with a \
             service account, or set KUBECONFIG"
        )
    })?;
    let url = config.cluster_url.clone();
    let client = Client::try_from(config)
        .with_context(|| format!("cannot reach the Kubernetes API at {url}"))?;
    match tokio::time::timeout(CONNECT_TIMEOUT, client.apiserver_version()).await {
        Ok(Ok(_)) => Ok(client),
        // An answer, even a refusal (a cluster may take /version from that role), proves the
        // server is reachable; the watches report their own permission errors.
        Ok(Err(kube::Error::Api(status))) => {
            warn!(%url, code = status.code, message = %status.message, "GET /version refused");
            Ok(client)
        }
        Ok(Err(e)) => Err(anyhow::anyhow!(
            "cannot reach the Kubernetes API at {url}: {} (check the cluster address, \
             the network path and the credentials)",
            sluice_analysis::causes(&e)
        )),
        Err(_) => Err(anyhow::anyhow!(
            "cannot reach the Kubernetes API at {url}: no answer within {} s",
            CONNECT_TIMEOUT.as_secs()
        )),
    }
}

/// The kube-runtime `Controller` of `sluice controller`: Rollouts (decoded leniently, see
/// `guard`), the Services and canary Ingress it owns, the Deployments mapped to their Rollout,
/// gated by `leader`, stopping when `stop` is cancelled. Returns the Rollout cache (for the HTTP
/// API) and the future that runs the controller.
pub fn controller(
    client: &Client,
    ns: Option<&str>,
    concurrency: u16,
    ctx: Arc<Context>,
    leader: watch::Receiver<bool>,
    stop: CancellationToken,
) -> (
    Store<GuardedRollout>,
    impl Future<Output = ()> + Send + 'static,
) {
    let rollouts: Api<GuardedRollout> = api_for(client, ns);
    let mut controller = Controller::new(rollouts, watcher::Config::default().any_semantic());
    let store = controller.store();
    let mapper_store = store.clone();
    let managed = format!("{MANAGED_BY_LABEL}={MANAGED_BY}");
    // HTTPRoutes and TraefikServices exist only where their CRDs are installed (discovery):
    // watching them means an edit by someone else is repaired at once, not at the next requeue.
    if let Some(ar) = ctx.served.httproute.clone() {
        let s = store.clone();
        controller = controller.watches_with(
            dynamic_api(client, ns, &ar),
            ar,
            watcher::Config::default(),
            move |o: DynamicObject| {
                let rollouts = decoded(&s.state());
                rollouts_for_httproute(&rollouts, o.metadata.namespace.as_deref(), &o.name_any())
                    .map(|r| guarded_ref(ObjectRef::from_obj(r)))
                    .collect::<Vec<_>>()
            },
        );
    }
    for ar in ctx.served.traefik.clone() {
        let s = store.clone();
        controller = controller.watches_with(
            dynamic_api(client, ns, &ar),
            ar,
            watcher::Config::default(),
            move |o: DynamicObject| {
                let rollouts = decoded(&s.state());
                rollouts_for_traefik_service(
                    &rollouts,
                    o.metadata.namespace.as_deref(),
                    &o.name_any(),
                )
                .map(|r| guarded_ref(ObjectRef::from_obj(r)))
                .collect::<Vec<_>>()
            },
        );
    }
    let run = controller
        .owns(
            api_for::<Service>(client, ns),
            watcher::Config::default().labels(&managed),
        )
        // Edits by others to the canary Ingress are seen at once and reverted by the next reconcile.
        .owns(
            api_for::<Ingress>(client, ns),
            watcher::Config::default().labels(&managed),
        )
        .watches(
            api_for::<Deployment>(client, ns),
            watcher::Config::default(),
            move |d| {
                rollouts_for_deployment(&decoded(&mapper_store.state()), &d)
                    .into_iter()
                    .map(guarded_ref)
                    .collect::<Vec<_>>()
            },
        )
        .with_config(ControllerConfig::default().concurrency(concurrency))
        .reconcile_all_on(leader::on_gain(leader))
        .graceful_shutdown_on(async move { stop.cancelled().await })
        .run(reconcile_guarded, error_policy_guarded, ctx)
        .for_each(|res| async move {
            if let Err(e) = res {
                warn!(error = %e, "controller stream error");
            }
        });
    (store, run)
}

/// Run the controller until SIGTERM / Ctrl-C.
pub async fn run(args: ControllerArgs) -> anyhow::Result<()> {
    crate::cli::init_logging(args.json_logs);
    let client = connect().await?;
    let ns = args.namespace.as_deref();
    let telemetry = Telemetry::global();

    let mut _always = None;
    let mut _election = None;
    let leader_rx = if args.leader_election {
        let lease_ns = args
            .lease_namespace
            .clone()
            .or_else(|| args.namespace.clone())
            .unwrap_or_else(|| "default".to_string());
        let e = leader::elect(client.clone(), &lease_ns, &args.lease_name).await?;
        info!(lease = %args.lease_name, namespace = %lease_ns, identity = %leader::identity(), "leader election on");
        // Act only while the Lease's own times allow it, whatever the elector still reports.
        let rx = fence::fenced(
            Api::namespaced(client.clone(), &lease_ns),
            args.lease_name.clone(),
            leader::identity(),
            e.leader.clone(),
            Arc::new(crate::clock::SystemClock),
        );
        _election = Some(e);
        rx
    } else {
        let (tx, rx) = leader::always_leader();
        _always = Some(tx);
        rx
    };

    let served = discovery::served(&client, ns).await;
    info!(
        httproute = ?served.httproute.as_ref().map(|a| a.api_version.clone()),
        traefik = ?served.traefik.iter().map(|a| a.group.clone()).collect::<Vec<_>>(),
        "router resources served by the cluster"
    );
    if served.httproute.is_none() {
        info!("{}", crate::router::gateway::not_served_message());
    }
    let mut ctx = Context::new(client.clone())
        .with_served(served)
        .with_leader(leader_rx.clone())
        .with_telemetry(telemetry.clone())
        .with_analysis(Arc::new(BridgeAnalysis::new(
            client.clone(),
            args.prometheus.clone(),
        )));
    if let Some(path) = &args.notifications_file {
        let n = super::notifications::start(path, &client, ctx.clock.clone(), &telemetry)
            .context("notifications")?;
        info!(file = %path.display(), sinks = n.sinks.len(), "notifications on");
        ctx = ctx.with_notify(Arc::new(n));
    }
    let ctx = Arc::new(ctx);
    let token = CancellationToken::new();
    tokio::spawn(shutdown_signal(token.clone()));

    let auth = auth_config(
        &args,
        Some(Arc::new(crate::api::kube_auth::KubeAuthorizer::new(
            client.clone(),
        ))),
    );
    let (store, controller) =
        controller(&client, ns, args.concurrency, ctx, leader_rx, token.clone());
    // The API reads from the controller's reflector cache, never polling the API server.
    let api_store = KubeStore::new(client.clone())
        .with_namespace(args.namespace.clone())
        .with_cache(store);
    let state = ApiState::new(Arc::new(api_store), telemetry, auth);
    let api_token = token.clone();
    let listen = args.listen;
    let server = tokio::spawn(async move {
        let stop = api_token.clone();
        if let Err(e) = api::serve(state, listen, async move { stop.cancelled().await }).await {
            warn!(error = %e, %listen, "HTTP API stopped");
            api_token.cancel();
        }
    });
    info!(namespace = ?ns, concurrency = args.concurrency, "controller starting");
    controller.await;
    token.cancel();
    let _ = server.await;
    info!("controller stopped");
    Ok(())
}
