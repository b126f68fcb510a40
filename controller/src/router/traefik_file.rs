//! Traefik without Kubernetes: Sluice owns one dynamic-configuration file of Traefik's file
//! provider holding `http.services.NAME.weighted.services` (plus, optionally, the two backend
//! services and a router). Written atomically (dot-temp file, then rename); Traefik's watcher
//! applies it by itself. A member whose weight is 0 is left out rather than written with weight 0,
//! because Traefik drops a weighted service whose member has no live servers (DESIGN.md).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use super::{read_weight_file, RouterError, TrafficRouter};
use crate::standalone::atomic::{read_optional, write_atomic};

/// Where the dynamic file is and what its services are called (the standalone YAML's `router.traefik`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TraefikFileSpec {
    /// The file Sluice owns, inside the directory the file provider watches (e.g. `dyn/app.yml`).
    pub file: PathBuf,
    /// Name of the weighted service. Default `app`.
    #[serde(default = "default_service")]
    pub service: String,
    /// Name of the stable member. Default `stable`.
    #[serde(default = "default_stable")]
    pub stable_service: String,
    /// Name of the canary member. Default `canary`.
    #[serde(default = "default_canary")]
    pub canary_service: String,
    /// Also write the stable and canary `loadBalancer` services from the backend URLs. Default true;
    /// false when they are defined elsewhere (then the member names may carry `@provider`).
    #[serde(default = "default_true")]
    pub write_backends: bool,
    /// Also write a router with this rule to the weighted service, e.g. ``PathPrefix(`/`)``.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// Entry points of that router.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entry_points: Vec<String>,
}

fn default_service() -> String {
    "app".to_string()
}
fn default_stable() -> String {
    "stable".to_string()
}
fn default_canary() -> String {
    "canary".to_string()
}
fn default_true() -> bool {
    true
}

impl TraefikFileSpec {
    pub fn new(file: impl Into<PathBuf>) -> Self {
        Self {
            file: file.into(),
            service: default_service(),
            stable_service: default_stable(),
            canary_service: default_canary(),
            write_backends: true,
            rule: None,
            entry_points: Vec::new(),
        }
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Dynamic {
    #[serde(default)]
    http: Http,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Http {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    routers: BTreeMap<String, Router>,
    #[serde(default)]
    services: BTreeMap<String, Service>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Router {
    rule: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    entry_points: Vec<String>,
    service: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Service {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    weighted: Option<Weighted>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    load_balancer: Option<LoadBalancer>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Weighted {
    #[serde(default)]
    services: Vec<Member>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Member {
    name: String,
    #[serde(default = "one")]
    weight: u32,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LoadBalancer {
    servers: Vec<ServerUrl>,
}

#[derive(Debug, Serialize, Deserialize)]
struct ServerUrl {
    url: String,
}

/// The dynamic file's text for a canary weight (0..=100). Pure.
pub fn render_dynamic(
    spec: &TraefikFileSpec,
    stable_url: &str,
    canary_url: &str,
    weight: i32,
) -> Result<String, String> {
    let mut members = Vec::new();
    if weight < 100 {
        members.push(Member {
            name: spec.stable_service.clone(),
            weight: (100 - weight) as u32,
        });
    }
    if weight > 0 {
        members.push(Member {
            name: spec.canary_service.clone(),
            weight: weight as u32,
        });
    }
    let mut http = Http::default();
    http.services.insert(
        spec.service.clone(),
        Service {
            weighted: Some(Weighted { services: members }),
            load_balancer: None,
        },
    );
    if spec.write_backends {
        for (name, url) in [
            (&spec.stable_service, stable_url),
            (&spec.canary_service, canary_url),
        ] {
            http.services.insert(
                name.clone(),
                Service {
                    weighted: None,
                    load_balancer: Some(LoadBalancer {
                        servers: vec![ServerUrl {
                            url: url.to_string(),
                        }],
                    }),
                },
            );
        }
    }
    if let Some(rule) = &spec.rule {
        http.routers.insert(
            spec.service.clone(),
            Router {
                rule: rule.clone(),
                entry_points: spec.entry_points.clone(),
                service: spec.service.clone(),
            },
        );
    }
    let body = serde_saphyr::to_string(&Dynamic { http }).map_err(|e| e.to_string())?;
    Ok(format!(
        "# Managed by Sluice: rewritten at every weight change, edits are lost.\n# sluice canary-weight: {weight}\n{body}"
    ))
}

fn base_name(name: &str) -> &str {
    name.split('@').next().unwrap_or(name)
}

/// The canary weight (0..=100) of the weighted service in a dynamic file. Pure.
pub fn parse_weight(text: &str, spec: &TraefikFileSpec) -> Result<i32, String> {
    let dynamic: Dynamic =
        serde_saphyr::from_str(text).map_err(|e| format!("not a Traefik dynamic file: {e}"))?;
    let weighted = dynamic
        .http
        .services
        .get(&spec.service)
        .and_then(|s| s.weighted.as_ref())
        .ok_or_else(|| format!("no weighted service {:?} in the file", spec.service))?;
    let sum_of = |name: &str| -> u32 {
        weighted
            .services
            .iter()
            .filter(|m| base_name(&m.name) == base_name(name))
            .map(|m| m.weight)
            .sum()
    };
    let (s, c) = (sum_of(&spec.stable_service), sum_of(&spec.canary_service));
    if s + c == 0 {
        return Err(format!(
            "weighted service {:?} routes nothing to {:?} or {:?}",
            spec.service, spec.stable_service, spec.canary_service
        ));
    }
    Ok(((c as f64) * 100.0 / f64::from(s + c)).round() as i32)
}

/// The Traefik file router for one rollout.
pub struct TraefikFileRouter {
    spec: TraefikFileSpec,
    stable_url: String,
    canary_url: String,
    write_lock: Mutex<()>,
}

impl TraefikFileRouter {
    /// `stable_url` / `canary_url`: backend URLs such as `http://127.0.0.1:18081`.
    pub fn new(
        spec: TraefikFileSpec,
        stable_url: impl Into<String>,
        canary_url: impl Into<String>,
    ) -> Result<Self, RouterError> {
        let names = [&spec.service, &spec.stable_service, &spec.canary_service];
        if names.iter().any(|n| n.is_empty()) {
            return Err(RouterError::Io(
                "Traefik service names must not be empty".into(),
            ));
        }
        if base_name(&spec.stable_service) == base_name(&spec.canary_service) {
            return Err(RouterError::Io(
                "Traefik stable and canary services must differ".into(),
            ));
        }
        Ok(Self {
            spec,
            stable_url: stable_url.into(),
            canary_url: canary_url.into(),
            write_lock: Mutex::new(()),
        })
    }

    pub fn file(&self) -> &Path {
        &self.spec.file
    }

    async fn apply(&self, weight: i32) -> Result<(), RouterError> {
        if !(0..=100).contains(&weight) {
            return Err(RouterError::InvalidWeight(weight));
        }
        let _guard = self.write_lock.lock().await;
        let path = &self.spec.file;
        let text = render_dynamic(&self.spec, &self.stable_url, &self.canary_url, weight)
            .map_err(RouterError::Io)?;
        // Our own reader must accept what we write (Traefik gives no synchronous answer).
        parse_weight(&text, &self.spec).map_err(RouterError::Rejected)?;
        let previous = read_optional(path).map_err(|e| RouterError::file(path, e))?;
        if previous.as_deref() == Some(text.as_str()) {
            return Ok(());
        }
        write_atomic(path, text.as_bytes()).map_err(|e| RouterError::file(path, e))?;
        tracing::info!(path = %path.display(), weight, "traefik dynamic file updated");
        Ok(())
    }

    async fn read(&self) -> Result<Option<i32>, RouterError> {
        let path = &self.spec.file;
        read_weight_file(path, |text| parse_weight(text, &self.spec))
    }
}

impl TrafficRouter for TraefikFileRouter {
    fn set_weight(&self, weight: i32) -> BoxFuture<'_, Result<(), RouterError>> {
        Box::pin(self.apply(weight))
    }

    fn current_weight(&self) -> BoxFuture<'_, Result<Option<i32>, RouterError>> {
        Box::pin(self.read())
    }

    /// The file stays (the router in it may serve traffic); all traffic goes to stable.
    fn cleanup(&self) -> BoxFuture<'_, Result<(), RouterError>> {
        Box::pin(self.apply(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_then_parse_round_trips_every_weight() {
        let spec = TraefikFileSpec::new("/x/app.yml");
        for w in 0..=100 {
            let text = render_dynamic(&spec, "http://a:1", "http://b:2", w).unwrap();
            assert_eq!(parse_weight(&text, &spec), Ok(w), "{text}");
        }
    }

    #[test]
    fn zero_weight_member_is_left_out() {
        let spec = TraefikFileSpec::new("/x/app.yml");
        let text = render_dynamic(&spec, "http://a:1", "http://b:2", 0).unwrap();
        assert!(!text.contains("- name: canary"), "{text}");
        assert!(text.contains("- name: stable"), "{text}");
        assert!(!text.contains("          weight: 0"), "{text}");
        let full = render_dynamic(&spec, "http://a:1", "http://b:2", 100).unwrap();
        assert!(!full.contains("- name: stable"), "{full}");
        assert!(full.contains("- name: canary"), "{full}");
    }

    #[test]
    fn provider_suffixes_are_ignored_when_reading() {
        let mut spec = TraefikFileSpec::new("/x/app.yml");
        spec.stable_service = "stable@docker".into();
        let text = "http:\n  services:\n    app:\n      weighted:\n        services:\n          - name: stable\n            weight: 3\n          - name: canary@file\n            weight: 1\n";
        assert_eq!(parse_weight(text, &spec), Ok(25));
        assert!(parse_weight("http: {}\n", &spec).is_err());
        assert!(parse_weight("::: not yaml [", &spec).is_err());
    }
}
