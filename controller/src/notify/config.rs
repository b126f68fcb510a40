//! The `notifications` section: top level of the standalone rollouts file (settings and global
//! sinks; per rollout: more sinks), and the whole of `--notifications-file` on Kubernetes.
//! Secrets can sit in the file, or come from a file (`urlFile`, `signingKeyFile`, e.g. a
//! mounted Secret) or an environment variable (`urlEnv`, `signingKeyEnv`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::deliver::RetryPolicy;
use super::sink::{Sink, SinkKind};
use super::transition::TransitionKind;

/// Default bound of the delivery queue.
pub const DEFAULT_QUEUE_CAPACITY: usize = 256;

/// Top level `notifications:`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotificationsConfig {
    /// Sluice's URL as people reach it (e.g. `https://sluice.example.com`): notifications link
    /// to `URL/ui/#/standalone/NAME`. No link without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dashboard_url: Option<String>,
    /// Most notifications queued or being delivered at once. Default 256. Read at start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_capacity: Option<usize>,
    #[serde(default, skip_serializing_if = "RetryConfig::is_default")]
    pub retry: RetryConfig,
    /// Sinks every rollout notifies.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sinks: Vec<SinkConfig>,
}

impl NotificationsConfig {
    pub fn is_default(&self) -> bool {
        *self == NotificationsConfig::default()
    }

    /// The global sinks' problems, all at once.
    pub fn check(&self) -> Result<(), String> {
        let mut problems: Vec<String> = self.sinks.iter().flat_map(|s| s.problems()).collect();
        problems.extend(sink_problems(&self.sinks, &[]));
        join(problems)
    }
}

fn join(problems: Vec<String>) -> Result<(), String> {
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// `notifications.retry` (read at start).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetryConfig {
    /// Wait after the first failed attempt, doubled after each further one. Default 1000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_backoff_ms: Option<u64>,
    /// Longest wait between attempts. Default 60000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_backoff_ms: Option<u64>,
    /// Give up this long after the transition. Default 3600.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age_seconds: Option<u64>,
    /// One attempt's timeout. Default 10000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

impl RetryConfig {
    fn is_default(&self) -> bool {
        *self == RetryConfig::default()
    }

    pub fn policy(&self) -> RetryPolicy {
        let d = RetryPolicy::default();
        let ms = Duration::from_millis;
        RetryPolicy {
            initial_backoff: self.initial_backoff_ms.map_or(d.initial_backoff, ms),
            max_backoff: self.max_backoff_ms.map_or(d.max_backoff, ms),
            max_age: self.max_age_seconds.map_or(d.max_age, Duration::from_secs),
            timeout: self.timeout_ms.map_or(d.timeout, ms),
        }
    }
}

/// One sink in the file.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SinkConfig {
    pub name: String,
    pub kind: Option<SinkKind>,
    /// The URL (Slack and Teams URLs carry a token: prefer `urlFile` or `urlEnv`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_file: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_env: Option<String>,
    /// HMAC key of a `webhook` sink: `whsec_` + base64, or any text of 24 bytes or more.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_key_file: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_key_env: Option<String>,
    /// Transitions to send (`started`, `step`, `paused`, `analysisFailed`, `rolledBack`,
    /// `promoted`, `reverted`). Default: all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on: Vec<TransitionKind>,
}

impl std::fmt::Debug for SinkConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SinkConfig")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("url", &self.url.as_ref().map(|_| "***"))
            .field("url_file", &self.url_file)
            .field("url_env", &self.url_env)
            .field("signing_key", &self.signing_key.as_ref().map(|_| "***"))
            .field("signing_key_file", &self.signing_key_file)
            .field("signing_key_env", &self.signing_key_env)
            .field("on", &self.on)
            .finish()
    }
}

fn count(xs: &[bool]) -> usize {
    xs.iter().filter(|x| **x).count()
}

impl SinkConfig {
    /// Problems a reader can fix in the file (no secret is read here).
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        let who = format!("notification sink {:?}", self.name);
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            out.push(format!(
                "{who}: name must be letters, digits, '-', '_' or '.'"
            ));
        }
        if self.kind.is_none() {
            out.push(format!("{who}: kind is required (webhook, slack or teams)"));
        }
        let urls = [
            self.url.is_some(),
            self.url_file.is_some(),
            self.url_env.is_some(),
        ];
        if count(&urls) != 1 {
            out.push(format!("{who}: set exactly one of url, urlFile, urlEnv"));
        }
        let keys = [
            self.signing_key.is_some(),
            self.signing_key_file.is_some(),
            self.signing_key_env.is_some(),
        ];
        if count(&keys) > 1 {
            out.push(format!(
                "{who}: set at most one of signingKey, signingKeyFile, signingKeyEnv"
            ));
        }
        if count(&keys) == 1 && self.kind.is_some_and(|k| k != SinkKind::Webhook) {
            out.push(format!("{who}: a signing key applies to kind webhook only"));
        }
        out
    }

    /// Read the secrets and build the sink; relative files resolve against `base`.
    pub fn resolve(&self, base: &Path) -> Result<Sink, String> {
        let who = format!("notification sink {:?}", self.name);
        let read = |inline: &Option<String>,
                    file: &Option<PathBuf>,
                    env: &Option<String>,
                    what: &str|
         -> Result<Option<String>, String> {
            if let Some(v) = inline {
                return Ok(Some(v.clone()));
            }
            if let Some(f) = file {
                let p = if f.is_relative() {
                    base.join(f)
                } else {
                    f.clone()
                };
                return std::fs::read_to_string(&p)
                    .map(|t| Some(t.trim().to_string()))
                    .map_err(|e| format!("{who}: cannot read {what} file {}: {e}", p.display()));
            }
            if let Some(var) = env {
                return std::env::var(var)
                    .map(|t| Some(t.trim().to_string()))
                    .map_err(|_| format!("{who}: environment variable {var} is not set"));
            }
            Ok(None)
        };
        let url = read(&self.url, &self.url_file, &self.url_env, "URL")?
            .ok_or_else(|| format!("{who}: no URL"))?;
        let key = read(
            &self.signing_key,
            &self.signing_key_file,
            &self.signing_key_env,
            "signing key",
        )?;
        let kind = self.kind.ok_or_else(|| format!("{who}: no kind"))?;
        Sink::new(&self.name, kind, &url, key.as_deref(), self.on.clone())
            .map_err(|e| e.to_string())
    }
}

/// Read `--notifications-file` (YAML, the standalone file's `notifications` section), strictly:
/// unknown fields are refused with their path, every sink is checked and its secrets read.
pub fn load_file(path: &Path) -> Result<(NotificationsConfig, Vec<Sink>), String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut unknown = Vec::new();
    let parsed: Result<NotificationsConfig, _> =
        serde_saphyr::with_deserializer_from_str(&text, |de| {
            serde_ignored::deserialize(de, |p| unknown.push(p.to_string()))
        });
    if !unknown.is_empty() {
        return Err(format!(
            "{}: unknown field {} (docs/notifications.md)",
            path.display(),
            unknown.join(", ")
        ));
    }
    let cfg =
        parsed.map_err(|e| format!("{} is not a valid notifications file: {e}", path.display()))?;
    cfg.check()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let sinks = cfg
        .sinks
        .iter()
        .map(|s| s.resolve(base))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((cfg, sinks))
}

/// The sinks of one rollout: the global ones (checked by [`NotificationsConfig::check`]), then
/// its own (names must not repeat).
pub fn check_sinks(global: &[SinkConfig], own: &[SinkConfig]) -> Result<(), String> {
    join(sink_problems(global, own))
}

fn sink_problems(global: &[SinkConfig], own: &[SinkConfig]) -> Vec<String> {
    let mut out: Vec<String> = own.iter().flat_map(|s| s.problems()).collect();
    let mut seen = std::collections::BTreeSet::new();
    for s in global.iter().chain(own) {
        if !seen.insert(s.name.as_str()) {
            out.push(format!(
                "notification sink {:?} is defined twice (names are shared with the global sinks)",
                s.name
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sink(name: &str) -> SinkConfig {
        SinkConfig {
            name: name.into(),
            kind: Some(SinkKind::Webhook),
            url: Some("http://127.0.0.1:1/hook".into()),
            ..Default::default()
        }
    }

    #[test]
    fn problems_are_named_and_secrets_hidden() {
        assert!(sink("a").problems().is_empty());
        let mut s = sink("a");
        s.url_env = Some("X".into());
        s.kind = Some(SinkKind::Slack);
        s.signing_key = Some("k".repeat(30));
        let p = s.problems().join("; ");
        assert!(p.contains("exactly one of url"), "{p}");
        assert!(p.contains("webhook only"), "{p}");
        let d = format!("{s:?}");
        assert!(!d.contains("127.0.0.1") && !d.contains("kkkk"), "{d}");
        let dup = check_sinks(&[sink("a")], &[sink("a")]).unwrap_err();
        assert!(dup.contains("defined twice"), "{dup}");
    }

    #[test]
    fn notifications_file_is_strict() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("n.yaml");
        std::fs::write(dir.path().join("url"), "https://hooks.example/x\n").unwrap();
        std::fs::write(
            &p,
            "dashboardUrl: https://s.example\nsinks:\n  - { name: a, kind: slack, urlFile: url }\n",
        )
        .unwrap();
        let (cfg, sinks) = load_file(&p).unwrap();
        assert_eq!(cfg.dashboard_url.as_deref(), Some("https://s.example"));
        assert_eq!(sinks[0].url(), "https://hooks.example/x");
        std::fs::write(
            &p,
            "sinks:\n  - { name: a, kind: slack, urlFile: url, onn: [] }\n",
        )
        .unwrap();
        let e = load_file(&p).unwrap_err();
        assert!(e.contains("unknown field") && e.contains("onn"), "{e}");
        std::fs::write(&p, "sinks:\n  - { name: a, kind: slack }\n").unwrap();
        assert!(load_file(&p).unwrap_err().contains("exactly one of url"));
        assert!(load_file(&dir.path().join("missing"))
            .unwrap_err()
            .contains("cannot read"));
    }

    #[test]
    fn resolve_from_file_and_env() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("url"), "https://hooks.example/x\n").unwrap();
        let mut s = sink("f");
        s.url = None;
        s.url_file = Some("url".into());
        let r = s.resolve(dir.path()).unwrap();
        assert_eq!(r.url(), "https://hooks.example/x");
        s.url_file = Some("missing".into());
        assert!(s
            .resolve(dir.path())
            .unwrap_err()
            .contains("cannot read URL file"));
        s.url_file = None;
        s.url_env = Some("SLUICE_TEST_SURELY_UNSET_VAR".into());
        assert!(s.resolve(dir.path()).unwrap_err().contains("is not set"));
    }
}
