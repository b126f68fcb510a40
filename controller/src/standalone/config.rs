//! The standalone rollouts file (`sluice run -f rollouts.yaml`): backends, file router, and the
//! same `strategy` / `analysis` / `alerts` as the Rollout resource. Re-read on every tick, so
//! editing `canary.version` starts a rollout (GitOps style) and other edits apply at once.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sluice_crds::{
    AlertMatcher, AnalysisSpec, AnalysisTemplate, AnalysisTemplateSpec, NginxRouter, RolloutSpec,
    RouterSpec, ServiceSpec, Strategy, TargetRef, TraefikRouter,
};

use crate::router::nginx_file::NginxFileSpec;
use crate::router::traefik_file::TraefikFileSpec;

/// Namespace of every standalone rollout (the API addresses them as `standalone/NAME`).
pub const NAMESPACE: &str = "standalone";

/// The whole file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
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
}

/// An AnalysisTemplate without Kubernetes metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TemplateConfig {
    pub name: String,
    #[serde(flatten)]
    pub spec: AnalysisTemplateSpec,
}

/// One backend: where it listens and which version it runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
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
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RouterConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nginx: Option<NginxFileSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traefik: Option<TraefikFileSpec>,
}

/// Commands run on effects the file world cannot do itself (`argv`, no shell). They get
/// `SLUICE_ROLLOUT`, `SLUICE_REVISION` and `SLUICE_STABLE_ADDRESS` / `SLUICE_CANARY_ADDRESS`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
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
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MetricLabels {
    pub primary: String,
    pub canary: String,
}

/// One rollout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RolloutConfig {
    pub name: String,
    pub stable: BackendConfig,
    pub canary: BackendConfig,
    pub router: RouterConfig,
    pub strategy: Strategy,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<AnalysisSpec>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alerts: Vec<AlertMatcher>,
    #[serde(default = "default_deadline")]
    pub progress_deadline_seconds: i64,
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
    #[error("{path}: rollout {name:?}: {message}")]
    Invalid {
        path: PathBuf,
        name: String,
        message: String,
    },
}

impl RolloutConfig {
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
            alerts: self.alerts.clone(),
            progress_deadline_seconds: self.progress_deadline_seconds,
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
            if !b.address.contains(':') {
                problems.push(format!("{what}.address must be host:port"));
            }
        }
        match (&self.router.nginx, &self.router.traefik) {
            (Some(_), None) | (None, Some(_)) => {}
            _ => problems.push("router: set exactly one of nginx or traefik".to_string()),
        }
        if let Err(e) = sluice_crds::validate(&self.rollout_spec(), Some(templates)) {
            problems.push(e.to_string());
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
        let mut cfg: StandaloneConfig =
            serde_saphyr::from_str(text).map_err(|e| ConfigError::Parse {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let names: Vec<String> = cfg.templates.iter().map(|t| t.name.clone()).collect();
        let mut seen = std::collections::BTreeSet::new();
        for r in &mut cfg.rollouts {
            let invalid = |message: String| ConfigError::Invalid {
                path: path.to_path_buf(),
                name: r.name.clone(),
                message,
            };
            r.check(&names).map_err(invalid)?;
            if !seen.insert(r.name.clone()) {
                return Err(invalid("duplicate rollout name".into()));
            }
            resolve_paths(&mut r.router, base);
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
                let mut a = AnalysisTemplate::new(&t.name, t.spec.clone());
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
mod tests {
    use super::*;

    fn example() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/standalone/rollouts.yaml")
    }

    #[test]
    fn example_file_parses_and_validates() {
        let cfg = StandaloneConfig::load(&example()).unwrap();
        assert_eq!(cfg.rollouts.len(), 1);
        let r = &cfg.rollouts[0];
        assert_eq!(r.target_version(), Some("v1"));
        assert_eq!(r.metric_labels().canary, "canary");
        let spec = r.rollout_spec();
        assert_eq!(spec.service.port, 18082);
        assert_eq!(spec.analysis.as_ref().unwrap().metrics.len(), 2);
        assert_eq!(spec.alerts.len(), 1);
    }

    #[test]
    fn bad_files_are_rejected_with_the_rollout_named() {
        let text = std::fs::read_to_string(example()).unwrap();
        let p = Path::new("/tmp/r.yaml");
        let two_routers = text.replace(
            "        upstream: app\n",
            "        upstream: app\n      traefik:\n        file: dyn/app.yml\n",
        );
        let e = StandaloneConfig::parse(&two_routers, p).unwrap_err();
        assert!(e.to_string().contains("exactly one"), "{e}");
        let both = text.replace(
            "      canary:\n        steps:",
            "      blueGreen: {}\n      canary:\n        steps:",
        );
        let e = StandaloneConfig::parse(&both, p).unwrap_err();
        assert!(e.to_string().contains("web"), "{e}");
        let unknown = text.replace("    queryWindow: 10s\n", "    queryWindw: 10s\n");
        assert!(matches!(
            StandaloneConfig::parse(&unknown, p),
            Err(ConfigError::Parse { .. })
        ));
        let rel = text.replace("/etc/nginx/upstream.conf", "up.conf");
        let cfg = StandaloneConfig::parse(&rel, p).unwrap();
        assert_eq!(
            cfg.rollouts[0].router.nginx.as_ref().unwrap().upstream_file,
            PathBuf::from("/tmp/up.conf")
        );
    }
}
