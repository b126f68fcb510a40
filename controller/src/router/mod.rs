//! Traffic routers behind one trait: file-based NGINX and Traefik (standalone mode), and the
//! Kubernetes ones (ingress-nginx canary Ingress, TraefikService, Gateway API HTTPRoute).

use futures::future::BoxFuture;

pub mod gateway;
pub mod ingress_nginx;
pub mod nginx_file;
pub mod traefik_crd;
pub mod traefik_file;

/// Errors of any router.
#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    #[error("weight {0} is outside 0..=100")]
    InvalidWeight(i32),
    #[error("router config rejected by validation, previous config kept: {0}")]
    Rejected(String),
    #[error("router I/O failed: {0}")]
    Io(String),
    #[error("Kubernetes API error: {0}")]
    Kube(String),
    #[error("router object not found: {0}")]
    NotFound(String),
}

impl RouterError {
    /// An I/O error on a file a router owns, naming the file.
    pub fn file(path: &std::path::Path, e: std::io::Error) -> Self {
        RouterError::Io(format!("{}: {e}", path.display()))
    }
}

/// Read a router-owned file back into a canary weight; `None` while the file does not exist yet.
pub(crate) fn read_weight_file(
    path: &std::path::Path,
    parse: impl FnOnce(&str) -> Result<i32, String>,
) -> Result<Option<i32>, RouterError> {
    match crate::standalone::atomic::read_optional(path).map_err(|e| RouterError::file(path, e))? {
        None => Ok(None),
        Some(text) => parse(&text).map(Some).map_err(RouterError::Io),
    }
}

/// Shifts traffic between primary (stable) and canary for one rollout.
pub trait TrafficRouter: Send + Sync {
    /// Route `weight`% to the canary and the rest to primary. Idempotent: no write when unchanged.
    fn set_weight(&self, weight: i32) -> BoxFuture<'_, Result<(), RouterError>>;
    /// Read the canary weight back from what the router really holds (None: not set up yet).
    fn current_weight(&self) -> BoxFuture<'_, Result<Option<i32>, RouterError>>;
    /// Return all traffic to primary and remove what this router created.
    fn cleanup(&self) -> BoxFuture<'_, Result<(), RouterError>>;
}
