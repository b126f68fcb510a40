//! Where CLI commands go: the cluster through kubeconfig (Rollout objects, annotation patch) or a
//! Sluice HTTP API (`--server URL --token T`, e.g. standalone mode).

use anyhow::{anyhow, bail, Context as _};
use chrono::Utc;
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, Patch, PatchParams};
use sluice_crds::{Command, CommandAction};

use crate::api::error::ErrorBody;
use crate::api::outcome::check_command;
use crate::api::rollouts::{CommandBody, CommandResponse};
use crate::api::{RolloutList, RolloutView};
use crate::store::{KubeStore, RolloutStore, StoreError};

/// Connection options shared by the client commands.
#[derive(Debug, Clone, clap::Args)]
pub struct ClientOpts {
    /// Namespace of the rollout (default: the kubeconfig's namespace; with --server the server's
    /// own default, `standalone` for `sluice run`) [env: SLUICE_NAMESPACE].
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    /// Talk to a Sluice HTTP API instead of the cluster, e.g. `http://127.0.0.1:8080`
    /// [env: SLUICE_SERVER].
    #[arg(long)]
    pub server: Option<String>,
    /// Bearer token for --server (a static API token or a Kubernetes token) [env: SLUICE_TOKEN].
    #[arg(long)]
    pub token: Option<String>,
}

impl ClientOpts {
    /// Flags first, then `SLUICE_NAMESPACE` / `SLUICE_SERVER` / `SLUICE_TOKEN`. Read here rather
    /// than through clap's `env`, which lists every set variable in the usage line as if it
    /// were a required flag.
    pub fn with_env(&self, env: impl Fn(&str) -> Option<String>) -> ClientOpts {
        let pick = |flag: &Option<String>, var: &str| {
            flag.clone().or_else(|| env(var).filter(|v| !v.is_empty()))
        };
        ClientOpts {
            namespace: pick(&self.namespace, "SLUICE_NAMESPACE"),
            server: pick(&self.server, "SLUICE_SERVER"),
            token: pick(&self.token, "SLUICE_TOKEN"),
        }
    }
}

/// A connected target.
pub enum Target {
    Kube {
        store: KubeStore,
        namespace: String,
    },
    Http {
        client: reqwest::Client,
        base: String,
        token: Option<String>,
        namespace: String,
    },
}

impl Target {
    pub async fn connect(opts: &ClientOpts) -> anyhow::Result<Target> {
        let opts = &opts.with_env(|v| std::env::var(v).ok());
        if let Some(server) = &opts.server {
            let base = server_base(server)?;
            let client = reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(30))
                .build()
                .context("building the HTTP client")?;
            let namespace = match &opts.namespace {
                Some(ns) => ns.clone(),
                None => server_default_namespace(&client, &base, &opts.token).await,
            };
            return Ok(Target::Http {
                client,
                base,
                token: opts.token.clone(),
                namespace,
            });
        }
        let client = kube::Client::try_default().await.context(
            "cannot reach the Kubernetes API (set KUBECONFIG, or use --server URL for a Sluice API)",
        )?;
        let namespace = opts
            .namespace
            .clone()
            .unwrap_or_else(|| client.default_namespace().to_string());
        Ok(Target::Kube {
            // `-n` also scopes `status` without a name; without it, list every namespace.
            store: KubeStore::new(client).with_namespace(opts.namespace.clone()),
            namespace,
        })
    }

    pub fn namespace(&self) -> &str {
        match self {
            Target::Kube { namespace, .. } | Target::Http { namespace, .. } => namespace,
        }
    }

    fn url(base: &str, ns: &str, name: &str, suffix: &str) -> String {
        format!("{base}/api/v1/namespaces/{ns}/rollouts/{name}{suffix}")
    }

    async fn http_json<T: serde::de::DeserializeOwned>(
        req: reqwest::RequestBuilder,
        token: &Option<String>,
    ) -> anyhow::Result<T> {
        let req = match token {
            Some(t) => req.bearer_auth(t),
            None => req,
        };
        let resp = req
            .send()
            .await
            .context("HTTP request to the Sluice API failed")?;
        let status = resp.status();
        let bytes = resp.bytes().await.context("reading the API's answer")?;
        if !status.is_success() {
            let msg = serde_json::from_slice::<ErrorBody>(&bytes)
                .map(|e| format!("{} ({})", e.message, e.error))
                .unwrap_or_else(|_| String::from_utf8_lossy(&bytes).into_owned());
            bail!("API answered {status}: {msg}");
        }
        serde_json::from_slice(&bytes).context("unexpected answer from the Sluice API")
    }

    /// The rollout's status view (with the revision its target has now).
    pub async fn get(&self, name: &str) -> anyhow::Result<RolloutView> {
        match self {
            Target::Kube { store, namespace } => {
                let r = store.get(namespace, name).await.map_err(store_err)?;
                // The target Deployment's template hash, as the controller computes it.
                let desired = match store.desired_revision(&r).await {
                    Ok(d) => d,
                    Err(e) => {
                        tracing::debug!(error = %e, "cannot read the target Deployment");
                        None
                    }
                };
                Ok(RolloutView::from_rollout(&r).with_desired(desired))
            }
            Target::Http {
                client,
                base,
                token,
                namespace,
            } => Self::http_json(client.get(Self::url(base, namespace, name, "")), token).await,
        }
    }

    /// All rollouts (of the namespace for the cluster target when `-n` was given).
    pub async fn list(&self) -> anyhow::Result<Vec<RolloutView>> {
        match self {
            Target::Kube { store, .. } => {
                let items = store.list().await.map_err(store_err)?;
                Ok(items.iter().map(RolloutView::from_rollout).collect())
            }
            Target::Http {
                client,
                base,
                token,
                ..
            } => {
                let list: RolloutList =
                    Self::http_json(client.get(format!("{base}/api/v1/rollouts")), token).await?;
                Ok(list.items)
            }
        }
    }

    /// Send a command; returns the written command.
    pub async fn command(
        &self,
        name: &str,
        action: CommandAction,
        reason: Option<String>,
        revision: Option<String>,
    ) -> anyhow::Result<Command> {
        match self {
            Target::Kube { store, namespace } => {
                let now = Utc::now();
                let view = self.get(name).await?;
                check_command(&view, action, revision.as_deref(), now)
                    .map_err(|(_, msg)| anyhow!(msg))?;
                let who = std::env::var("USER").unwrap_or_else(|_| "cli".to_string());
                let cmd = Command {
                    id: format!("cli-{:016x}", rand::random::<u64>()),
                    action,
                    by: Some(format!("cli:{who}")),
                    reason,
                    alert_name: None,
                    fingerprint: None,
                    revision,
                    at: now,
                };
                store
                    .command(namespace, name, cmd.clone())
                    .await
                    .map_err(store_err)?;
                Ok(cmd)
            }
            Target::Http {
                client,
                base,
                token,
                namespace,
            } => {
                let path = match action {
                    CommandAction::Promote => "/promote",
                    CommandAction::PromoteFull => "/promote?full=true",
                    CommandAction::Abort => "/abort",
                    CommandAction::Pause => "/pause",
                    CommandAction::Resume => "/resume",
                };
                let body = CommandBody { reason, revision };
                let resp: CommandResponse = Self::http_json(
                    client
                        .post(Self::url(base, namespace, name, path))
                        .json(&body),
                    token,
                )
                .await?;
                Ok(resp.command)
            }
        }
    }

    /// Standalone: give the rollout's canary a new version (and address); starts a rollout.
    pub async fn set_version(
        &self,
        name: &str,
        version: &str,
        address: Option<String>,
        reason: Option<String>,
    ) -> anyhow::Result<()> {
        let Target::Http {
            client,
            base,
            token,
            namespace,
        } = self
        else {
            bail!(
                "set-version is for standalone mode (--server URL of `sluice run`); on Kubernetes \
                 use `sluice set-image` or `kubectl set image`"
            );
        };
        let body = crate::api::rollouts::SetVersionBody {
            version: version.to_string(),
            address,
            reason,
        };
        let _: crate::api::rollouts::SetVersionResponse = Self::http_json(
            client
                .post(Self::url(base, namespace, name, "/set-version"))
                .json(&body),
            token,
        )
        .await?;
        Ok(())
    }

    /// Point `container` of the rollout's target Deployment at `image` (starts a rollout).
    /// Returns the Deployment's name and the revision (template hash) Sluice will roll out.
    pub async fn set_image(
        &self,
        name: &str,
        container: &str,
        image: &str,
    ) -> anyhow::Result<(String, Option<String>)> {
        let Target::Kube { store, namespace } = self else {
            bail!("set-image changes a Deployment and needs cluster access (kubeconfig), not --server");
        };
        let rollout = store.get(namespace, name).await.map_err(store_err)?;
        let deployment = rollout.spec.target_ref.name.clone();
        let api: Api<Deployment> = Api::namespaced(store.client().clone(), namespace);
        let d = api
            .get(&deployment)
            .await
            .with_context(|| format!("reading Deployment {namespace}/{deployment}"))?;
        let names: Vec<String> = d
            .spec
            .and_then(|s| s.template.spec)
            .map(|p| p.containers.into_iter().map(|c| c.name).collect())
            .unwrap_or_default();
        if !names.iter().any(|n| n == container) {
            bail!(
                "Deployment {namespace}/{deployment} has no container {container:?} (containers: {})",
                names.join(", ")
            );
        }
        // Raw, so the revision is the controller's: the hash of the template as stored.
        let raw: Api<kube::api::DynamicObject> = Api::namespaced_with(
            store.client().clone(),
            namespace,
            &crate::k8s::raw::deployment_resource(),
        );
        let patched = raw
            .patch(
                &deployment,
                &PatchParams::default(),
                &Patch::Strategic(set_image_patch(container, image)),
            )
            .await
            .with_context(|| format!("patching Deployment {namespace}/{deployment}"))?;
        let revision = crate::k8s::raw::to_json(&patched)
            .ok()
            .and_then(|v| crate::k8s::raw::raw_revision(&v));
        Ok((deployment, revision))
    }
}

/// Strategic merge patch setting one container's image (containers merge by name).
pub fn set_image_patch(container: &str, image: &str) -> serde_json::Value {
    serde_json::json!({
        "spec": {"template": {"spec": {"containers": [{"name": container, "image": image}]}}}
    })
}

fn store_err(e: StoreError) -> anyhow::Error {
    anyhow!(e)
}

/// The API's base URL from `--server`: `host:port` gets `http://`; anything else must be an
/// http(s) URL.
pub fn server_base(server: &str) -> anyhow::Result<String> {
    let s = server.trim();
    let with_scheme = if s.contains("://") {
        s.to_string()
    } else {
        format!("http://{s}")
    };
    let url = reqwest::Url::parse(&with_scheme).map_err(|e| {
        anyhow!("--server {server:?} is not a URL ({e}); use e.g. http://127.0.0.1:8080")
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        bail!("--server {server:?} must be an http:// or https:// URL, e.g. http://127.0.0.1:8080");
    }
    Ok(with_scheme.trim_end_matches('/').to_string())
}

/// The namespace a server suggests (`GET /api/v1/info`): `standalone` for `sluice run`;
/// `default` when it does not say (an older server or one that cannot be reached yet, in which
/// case the real request reports the error).
async fn server_default_namespace(
    client: &reqwest::Client,
    base: &str,
    token: &Option<String>,
) -> String {
    let req = client
        .get(format!("{base}/api/v1/info"))
        .timeout(std::time::Duration::from_secs(5));
    match Target::http_json::<crate::api::ServerInfo>(req, token).await {
        Ok(info) => info
            .default_namespace
            .unwrap_or_else(|| "default".to_string()),
        Err(e) => {
            tracing::debug!(error = %format!("{e:#}"), "no server info; namespace default");
            "default".to_string()
        }
    }
}
