//! Errors of the Kubernetes shell, split into transient (retry with backoff) and permanent
//! (reported in status, retried slowly) so `error_policy` never hot-loops.

use crate::router::RouterError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("traffic router: {0}")]
    Router(#[from] RouterError),
    #[error("{0}")]
    Invalid(String),
    #[error("cannot encode object: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("status write kept conflicting after {0} attempts")]
    ConflictRetriesExhausted(u32),
    #[error("leadership ended during the reconcile; the leader continues")]
    NotLeader,
}

impl Error {
    /// Worth a status condition: permanent, or a router object the user must create.
    pub fn needs_human(&self) -> bool {
        self.is_permanent() || matches!(self, Error::Router(RouterError::NotFound(_)))
    }

    /// Permanent errors need a human (bad spec, forbidden, rejected object); the rest are retried soon.
    pub fn is_permanent(&self) -> bool {
        match self {
            Error::Invalid(_) | Error::Encode(_) => true,
            Error::Kube(e) => kube_is_permanent(e),
            Error::Router(RouterError::InvalidWeight(_))
            | Error::Router(RouterError::Rejected(_)) => true,
            Error::Router(_) | Error::ConflictRetriesExhausted(_) | Error::NotLeader => false,
        }
    }
}

/// 400/403/422 (bad request, RBAC, validation) will not fix themselves; 404/409/429/5xx and
/// transport errors may.
pub fn kube_is_permanent(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(status) => matches!(status.code, 400 | 401 | 403 | 405 | 422),
        _ => false,
    }
}

/// HTTP status code of an API error, if it is one.
pub fn api_code(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}

/// A 404 from the API server.
pub fn is_not_found(e: &kube::Error) -> bool {
    api_code(e) == Some(404)
}

/// A 409 (stale resourceVersion or already exists).
pub fn is_conflict(e: &kube::Error) -> bool {
    api_code(e) == Some(409)
}
