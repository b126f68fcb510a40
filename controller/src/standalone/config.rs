//! The standalone rollouts file (`sluice run -f rollouts.yaml`): backends, file router, and the
//! same `strategy` / `analysis` / `alerts` as the Rollout resource. Re-read on every tick, so
//! editing `canary.version` starts a rollout (GitOps style) and other edits apply at once.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sluice_crds::{
    AlertMatcher, AnalysisSpec, AnalysisTemplate, AnalysisTemplateSpec, CanaryLossSpec, GatesSpec,
    NginxRouter, RolloutSpec, RouterSpec, ServiceSpec, Strategy, TargetRef, TraefikRouter,
};

pub use super::metric_checks::builtin_names;
use super::metric_checks::{check_builtin, check_placeholders, check_templates};
use crate::notify::config::{check_sinks, NotificationsConfig};
use crate::router::nginx_file::NginxFileSpec;
use crate::router::traefik_file::TraefikFileSpec;

/// Namespace of every standalone rollout (the API addresses them as `standalone/NAME`).
pub const NAMESPACE: &str = "standalone";

/// The whole file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StandaloneConfig {
    /// Default Prometheus for rollouts whose analysis names none, e.g. `http://127.0.0.1:9090`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<String>,
    /// HTTP API address (overridden by `--listen`). Default `127.0.0.1:8080`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    /// Bearer token for the API (read and command). Without one the API is open, which is
    /// allowed only on a loopback address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_token: Option<String>,
    /// Bearer token that may read every rollout but send no command (the dashboard then shows
    /// no command buttons).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_token: Option<String>,
    /// Bearer token Alertmanager sends (default: `apiToken`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_token: Option<String>,
    /// State file (overridden by `--state`). Default: `<file>.state.json` next to this file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_file: Option<PathBuf>,
    /// Analysis templates the rollouts may refer to by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub templates: Vec<TemplateConfig>,
    pub rollouts: Vec<RolloutConfig>,
    /// Outbound notifications: settings and the sinks every rollout notifies
    /// (docs/notifications.md).
    #[serde(default, skip_serializing_if = "NotificationsConfig::is_default")]
    pub notifications: NotificationsConfig,
}

/// An AnalysisTemplate without Kubernetes metadata (`name`, `args`, `metrics`). The fields are
/// spelled out rather than flattened so that unknown fields inside a template are reported too.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TemplateConfig {
    pub name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<sluice_crds::TemplateArg>,
    pub metrics: Vec<sluice_crds::MetricSpec>,
}

impl TemplateConfig {
    pub fn spec(&self) -> AnalysisTemplateSpec {
        AnalysisTemplateSpec {
            args: self.args.clone(),
            metrics: self.metrics.clone(),
        }
    }
}

/// One backend: where it listens and which version it runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackendConfig {
    /// `host:port`.
    pub address: String,
    /// Version it runs. For the canary this is the revision to roll out: when it differs from
    /// the stable revision in the state file, a rollout starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// HTTP path probed for readiness (200..=399); default: a TCP connect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_path: Option<String>,
}

/// Exactly one file router.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouterConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nginx: Option<NginxFileSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traefik: Option<TraefikFileSpec>,
}

/// Commands run on effects the file world cannot do itself (`argv`, no shell). They get
/// `SLUICE_ROLLOUT`, `SLUICE_REVISION` and `SLUICE_STABLE_ADDRESS` / `SLUICE_CANARY_ADDRESS`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HooksConfig {
    /// Run when a revision is promoted: deploy it to the stable backend. Without it, promotion
    /// only records the new stable revision (the stable backend keeps what it runs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub promote: Vec<String>,
    /// Run when an abort inside `postPromotionWatchSeconds` reverts a promotion: put the
    /// previous stable revision (`SLUICE_REVISION`) back on the stable backend; the reverted one
    /// is `SLUICE_REVERTED_REVISION`. Without it, only the recorded stable revision changes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub revert: Vec<String>,
    /// Run to start the canary backend (`SLUICE_SCALE=up`) or stop it (`down`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scale_canary: Vec<String>,
}

/// Values of `{{primary}}` / `{{canary}}` in queries (the arms' metric labels).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricLabels {
    pub primary: String,
    pub canary: String,
}

/// One rollout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RolloutConfig {
    pub name: String,
    pub stable: BackendConfig,
    pub canary: BackendConfig,
    pub router: RouterConfig,
    pub strategy: Strategy,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<AnalysisSpec>,
    /// HTTP gates, as in the Rollout (docs/gates.md); header values from `env`, not Secrets.
    #[serde(default, skip_serializing_if = "GatesSpec::is_empty")]
    pub gates: GatesSpec,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alerts: Vec<AlertMatcher>,
    #[serde(default = "default_deadline")]
    pub progress_deadline_seconds: i64,
    #[serde(default, skip_serializing_if = "CanaryLossSpec::is_default")]
    pub canary_loss: CanaryLossSpec,
    /// Built-in load sent to `canary.address` while the revision is analysed (docs/load.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load: Option<sluice_crds::LoadSpec>,
    #[serde(default)]
    pub post_promotion_watch_seconds: i64,
    #[serde(default)]
    pub paused: bool,
    #[serde(default)]
    pub skip_analysis: bool,
    /// Default: NGINX `stable`/`canary` (the `map $upstream_addr` labels of the mtail recipe);
    /// Traefik: the stable/canary service names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric_labels: Option<MetricLabels>,
    /// `{{interval}}` of threshold queries, e.g. `10s`. Default: the analysis interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_window: Option<String>,
    #[serde(default)]
    pub hooks: HooksConfig,
    /// Programs run at every analysis run, judged by exit status (docs/checks.md).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command_checks: Vec<crate::checks::command::CommandCheck>,
    /// This rollout's own notification sinks, besides the global ones.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notifications: Vec<crate::notify::config::SinkConfig>,
}

fn default_deadline() -> i64 {
    sluice_crds::DEFAULT_PROGRESS_DEADLINE_SECONDS
}

/// A problem with the file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a valid rollouts file: {message}")]
    Parse { path: PathBuf, message: String },
    #[error(
        "{path}: unknown field {fields} (check the spelling; docs: examples/standalone/README.md)"
    )]
    Unknown { path: PathBuf, fields: String },
    #[error("{path}: rollout {name:?}: {message}")]
    Invalid {
        path: PathBuf,
        name: String,
        message: String,
    },
}

/// Whether `address` is a usable `host:port` (a port number after the last colon).
pub fn check_address(address: &str) -> Result<(), String> {
    match address.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0) => {
            Ok(())
        }
        _ => Err(format!("{address:?} is not host:port")),
    }
}

/// Whether `version` can be a revision: 1..=128 printable characters without spaces.
pub fn check_version(version: &str) -> Result<(), String> {
    if version.is_empty() || version.len() > 128 || !version.chars().all(|c| c.is_ascii_graphic()) {
        return Err(format!(
            "version {version:?} must be 1 to 128 printable characters without spaces"
        ));
    }
    Ok(())
}

impl RolloutConfig {
    /// This rollout with a `sluice set-version` override applied, while the file's own
    /// `canary.version` is still the one it was set against (a later file edit wins).
    pub fn with_override(&self, o: Option<&super::state::VersionOverride>) -> RolloutConfig {
        let mut cfg = self.clone();
        if let Some(o) = o.filter(|o| o.file_version == self.canary.version) {
            cfg.canary.version = Some(o.version.clone());
            if let Some(a) = &o.address {
                cfg.canary.address = a.clone();
            }
        }
        cfg
    }

    /// The revision rolled out now: the canary's version, else the stable one.
    pub fn target_version(&self) -> Option<&str> {
        self.canary
            .version
            .as_deref()
            .or(self.stable.version.as_deref())
            .filter(|v| !v.is_empty())
    }

    pub fn metric_labels(&self) -> MetricLabels {
        if let Some(l) = &self.metric_labels {
            return l.clone();
        }
        match &self.router.traefik {
            Some(t) => MetricLabels {
                primary: t.stable_service.split('@').next().unwrap_or("").to_string(),
                canary: t.canary_service.split('@').next().unwrap_or("").to_string(),
            },
            None => MetricLabels {
                primary: "stable".into(),
                canary: "canary".into(),
            },
        }
    }

    /// The Rollout spec the state machine and the API see.
    pub fn rollout_spec(&self) -> RolloutSpec {
        let port = self
            .canary
            .address
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or(80);
        RolloutSpec {
            target_ref: TargetRef {
                api_version: "apps/v1".into(),
                kind: "Deployment".into(),
                name: self.name.clone(),
            },
            service: ServiceSpec {
                port,
                ..ServiceSpec::default()
            },
            strategy: self.strategy.clone(),
            router: self.router_spec(),
            analysis: self.analysis.clone(),
            gates: self.gates.clone(),
            alerts: self.alerts.clone(),
            progress_deadline_seconds: self.progress_deadline_seconds,
            canary_loss: self.canary_loss.clone(),
            load: self.load.clone(),
            post_promotion_watch_seconds: self.post_promotion_watch_seconds,
            paused: self.paused,
            skip_analysis: self.skip_analysis,
        }
    }

    /// The router as the Rollout resource would name it (for validation and the API's view):
    /// NGINX `ingressRef` = `file:<upstream file>`, Traefik `traefikServiceRef` = the service.
    fn router_spec(&self) -> RouterSpec {
        RouterSpec {
            nginx: self.router.nginx.as_ref().map(|n| NginxRouter {
                ingress_ref: format!("file:{}", n.upstream_file.display()),
                ..NginxRouter::default()
            }),
            traefik: self.router.traefik.as_ref().map(|t| TraefikRouter {
                traefik_service_ref: Some(t.service.clone()),
                api_group: None,
            }),
            gateway_api: None,
        }
    }

    fn check(&self, templates: &[String]) -> Result<(), String> {
        let mut problems = Vec::new();
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        {
            problems.push("name must be letters, digits, '-', '_' or '.'".to_string());
        }
        if self.stable.version.as_deref().unwrap_or("").is_empty() {
            problems.push("stable.version is required".to_string());
        }
        for (what, b) in [("stable", &self.stable), ("canary", &self.canary)] {
            if let Err(e) = check_address(&b.address) {
                problems.push(format!("{what}.address: {e}"));
            }
        }
        match (&self.router.nginx, &self.router.traefik) {
            (Some(_), None) | (None, Some(_)) => {}
            _ => problems.push("router: set exactly one of nginx or traefik".to_string()),
        }
        if let Err(e) = sluice_crds::validate(&self.rollout_spec(), Some(templates)) {
            problems.push(e.to_string());
        }
        for m in self.analysis.iter().flat_map(|a| &a.metrics) {
            if let Err(e) = check_builtin(m).and_then(|_| check_placeholders(m, &[])) {
                problems.push(format!("analysis metric {:?}: {e}", m.name));
            }
        }
        for m in self.analysis.iter().flat_map(|a| &a.metrics) {
            if m.job.is_some() {
                problems.push(format!(
                    "analysis metric {:?}: job metrics run only on Kubernetes; use commandChecks",
                    m.name
                ));
            }
        }
        for g in sluice_crds::GateName::ALL {
            for c in self.gates.get(g).iter().flat_map(|x| &x.checks) {
                for h in c.headers.iter().filter(|h| h.secret_key_ref.is_some()) {
                    problems.push(format!(
                        "gates.{g}: check {:?}: header {:?}: secretKeyRef is for Kubernetes; standalone takes env (an environment variable of sluice run)",
                        c.name, h.name
                    ));
                }
            }
        }
        if !self.command_checks.is_empty() && self.analysis.is_none() {
            problems.push(
                "commandChecks run at each analysis: add an analysis section (interval, limits)"
                    .to_string(),
            );
        }
        let mut names: Vec<&str> = self
            .analysis
            .iter()
            .flat_map(|a| &a.metrics)
            .map(|m| m.name.as_str())
            .collect();
        for c in &self.command_checks {
            problems.extend(c.problems());
            if names.contains(&c.name.as_str()) {
                problems.push(format!(
                    "command check {:?}: the name is taken by another metric",
                    c.name
                ));
            }
            names.push(&c.name);
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }
}

impl StandaloneConfig {
    /// Parse and check a file's text; relative paths of routers resolve against `base_dir`.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let mut unknown = Vec::new();
        let parsed: Result<StandaloneConfig, _> =
            serde_saphyr::with_deserializer_from_str(text, |de| {
                serde_ignored::deserialize(de, |p| unknown.push(field_path(&p)))
            });
        if !unknown.is_empty() {
            return Err(ConfigError::Unknown {
                path: path.to_path_buf(),
                fields: unknown.join(", "),
            });
        }
        let mut cfg = parsed.map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        if let Err(message) = check_templates(&cfg.templates) {
            return Err(ConfigError::Invalid {
                path: path.to_path_buf(),
                name: "templates".to_string(),
                message,
            });
        }
        let global_sinks = &cfg.notifications.sinks;
        cfg.notifications
            .check()
            .map_err(|message| ConfigError::Invalid {
                path: path.to_path_buf(),
                name: "notifications".to_string(),
                message,
            })?;
        let base = base_dir(path);
        let names: Vec<String> = cfg.templates.iter().map(|t| t.name.clone()).collect();
        let mut seen = std::collections::BTreeSet::new();
        for r in &mut cfg.rollouts {
            let invalid = |message: String| ConfigError::Invalid {
                path: path.to_path_buf(),
                name: r.name.clone(),
                message,
            };
            r.check(&names).map_err(invalid)?;
            check_sinks(global_sinks, &r.notifications).map_err(invalid)?;
            if !seen.insert(r.name.clone()) {
                return Err(invalid("duplicate rollout name".into()));
            }
            resolve_paths(&mut r.router, &base);
        }
        Ok(cfg)
    }

    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// The templates as `AnalysisTemplate` objects for the analysis bridge.
    pub fn analysis_templates(&self) -> Vec<AnalysisTemplate> {
        self.templates
            .iter()
            .map(|t| {
                let mut a = AnalysisTemplate::new(&t.name, t.spec());
                a.metadata.namespace = Some(NAMESPACE.to_string());
                a
            })
            .collect()
    }

    /// `name -> rollout` for quick lookups.
    pub fn by_name(&self) -> BTreeMap<String, RolloutConfig> {
        self.rollouts
            .iter()
            .map(|r| (r.name.clone(), r.clone()))
            .collect()
    }
}

/// The directory relative paths of a file are resolved against: the file's real directory
/// (symlinks resolved), absolute even for `-f rollouts.yaml`, because NGINX resolves a relative
/// `-c`/`-p` path against its own prefix, not Sluice's working directory.
pub fn base_dir(file: &Path) -> PathBuf {
    let real = std::fs::canonicalize(file)
        .or_else(|_| std::path::absolute(file))
        .unwrap_or_else(|_| file.to_path_buf());
    real.parent().map(Path::to_path_buf).unwrap_or_default()
}

/// `rollouts[0].analysis.intervall` for a serde_ignored path.
fn field_path(p: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path as P;
    match p {
        P::Root => String::new(),
        P::Seq { parent, index } => format!("{}[{index}]", field_path(parent)),
        P::Map { parent, key } => {
            let head = field_path(parent);
            if head.is_empty() {
                key.clone()
            } else {
                format!("{head}.{key}")
            }
        }
        P::Some { parent } | P::NewtypeStruct { parent } | P::NewtypeVariant { parent } => {
            field_path(parent)
        }
    }
}

fn resolve_paths(router: &mut RouterConfig, base: &Path) {
    let fix = |p: &mut PathBuf| {
        if p.is_relative() {
            *p = base.join(&*p);
        }
    };
    if let Some(n) = &mut router.nginx {
        fix(&mut n.conf);
        fix(&mut n.upstream_file);
        if let Some(p) = &mut n.prefix {
            fix(p);
        }
    }
    if let Some(t) = &mut router.traefik {
        fix(&mut t.file);
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
