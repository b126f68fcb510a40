//! Authentication and authorization: static bearer tokens (constant-time compare) for Alertmanager
//! and the API, plus an optional Kubernetes TokenReview + SubjectAccessReview [`Authorizer`].

use std::fmt;
use std::sync::Arc;

use axum::http::{header, HeaderMap};
use futures::future::BoxFuture;

use super::error::ApiError;

/// What a request wants to do with rollouts (maps to the RBAC verb on `rollouts.sluice.dev`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    /// Read status (`get` / `list`).
    Read,
    /// Send a command (`patch`).
    Command,
}

impl Verb {
    /// The RBAC verb checked by a SubjectAccessReview.
    pub fn rbac_verb(&self, namespaced: bool) -> &'static str {
        match (self, namespaced) {
            (Verb::Read, true) => "get",
            (Verb::Read, false) => "list",
            (Verb::Command, _) => "patch",
        }
    }
}

/// Who made an allowed request (recorded as the command's `by`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub name: String,
}

/// Answer of an [`Authorizer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthDecision {
    Allowed(Principal),
    /// The token is valid but the user may not do this.
    Denied {
        user: String,
        reason: String,
    },
    /// The token is not valid.
    Unauthenticated,
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("authorization backend failed: {0}")]
pub struct AuthError(pub String);

/// Checks a bearer token for `verb` on rollouts in `namespace` (None: all namespaces).
pub trait Authorizer: Send + Sync {
    fn authorize<'a>(
        &'a self,
        token: &'a str,
        verb: Verb,
        namespace: Option<&'a str>,
        name: Option<&'a str>,
    ) -> BoxFuture<'a, Result<AuthDecision, AuthError>>;
}

/// A secret string that never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    /// Constant-time comparison (length differences leak only the length).
    pub fn matches(&self, candidate: &str) -> bool {
        constant_time_eq(self.0.as_bytes(), candidate.as_bytes())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Byte comparison whose time does not depend on where the inputs differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut diff = 0u8;
    for (x, y) in a.iter().zip(b) {
        diff |= x ^ y;
    }
    diff == 0
}

/// Authentication settings of the API.
#[derive(Clone, Default)]
pub struct AuthConfig {
    /// Token Alertmanager sends (`Authorization: Bearer ...`). Falls back to `api_token` when unset.
    pub webhook_token: Option<Secret>,
    /// Static token allowed to read and command every rollout.
    pub api_token: Option<Secret>,
    /// Static token allowed to read every rollout and nothing else (dashboards for watchers).
    pub read_token: Option<Secret>,
    /// Kubernetes TokenReview + SubjectAccessReview for people and pipelines.
    pub authorizer: Option<Arc<dyn Authorizer>>,
    /// No authentication at all (local development only; never the default).
    pub insecure_allow_anonymous: bool,
}

impl fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthConfig")
            .field("webhook_token", &self.webhook_token)
            .field("api_token", &self.api_token)
            .field("read_token", &self.read_token)
            .field("authorizer", &self.authorizer.is_some())
            .field("insecure_allow_anonymous", &self.insecure_allow_anonymous)
            .finish()
    }
}

/// The bearer token of a request, if it has a well-formed `Authorization: Bearer` header.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = token.trim();
    (!token.is_empty()).then_some(token)
}

impl AuthConfig {
    /// Alertmanager's webhook: only the webhook token (or the API token if no webhook token is set).
    pub fn check_webhook(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        if self.insecure_allow_anonymous {
            return Ok(());
        }
        let Some(expected) = self.webhook_token.as_ref().or(self.api_token.as_ref()) else {
            return Err(ApiError::unauthorized(
                "no webhook token configured; the webhook is disabled",
            ));
        };
        match bearer_token(headers) {
            Some(t) if expected.matches(t) => Ok(()),
            Some(_) => Err(ApiError::unauthorized("wrong bearer token")),
            None => Err(ApiError::unauthorized("missing bearer token")),
        }
    }

    /// The API: the static token, else the Kubernetes authorizer.
    pub async fn check_api(
        &self,
        headers: &HeaderMap,
        verb: Verb,
        namespace: Option<&str>,
        name: Option<&str>,
    ) -> Result<Principal, ApiError> {
        let token = bearer_token(headers);
        if self.insecure_allow_anonymous && token.is_none() {
            return Ok(Principal {
                name: "anonymous".to_string(),
            });
        }
        let Some(token) = token else {
            return Err(ApiError::unauthorized("missing bearer token"));
        };
        if let Some(expected) = &self.api_token {
            if expected.matches(token) {
                return Ok(Principal {
                    name: "api-token".to_string(),
                });
            }
        }
        if let Some(expected) = &self.read_token {
            if expected.matches(token) {
                return match verb {
                    Verb::Read => Ok(Principal {
                        name: "read-token".to_string(),
                    }),
                    Verb::Command => Err(ApiError::forbidden(
                        "the read-only token may not send commands; use the API token",
                    )),
                };
            }
        }
        if self.insecure_allow_anonymous {
            return Ok(Principal {
                name: "anonymous".to_string(),
            });
        }
        let Some(authorizer) = &self.authorizer else {
            return Err(ApiError::unauthorized("wrong bearer token"));
        };
        match authorizer.authorize(token, verb, namespace, name).await {
            Ok(AuthDecision::Allowed(p)) => Ok(p),
            Ok(AuthDecision::Denied { user, reason }) => Err(ApiError::forbidden(format!(
                "user {user:?} may not {} rollouts.sluice.dev{}: {reason}",
                verb.rbac_verb(namespace.is_some()),
                namespace
                    .map(|n| format!(" in namespace {n}"))
                    .unwrap_or_default()
            ))),
            Ok(AuthDecision::Unauthenticated) => {
                Err(ApiError::unauthorized("token not accepted by Kubernetes"))
            }
            Err(e) => Err(ApiError::unavailable(e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, v.parse().unwrap());
        h
    }

    #[test]
    fn constant_time_eq_compares_bytes() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn bearer_parsing() {
        assert_eq!(bearer_token(&headers("Bearer xyz")), Some("xyz"));
        assert_eq!(bearer_token(&headers("bearer  xyz ")), Some("xyz"));
        assert_eq!(bearer_token(&headers("Basic xyz")), None);
        assert_eq!(bearer_token(&headers("Bearer ")), None);
        assert_eq!(bearer_token(&HeaderMap::new()), None);
    }

    #[test]
    fn webhook_token_checked() {
        let cfg = AuthConfig {
            webhook_token: Some(Secret::new("s3cret")),
            ..Default::default()
        };
        assert!(cfg.check_webhook(&headers("Bearer s3cret")).is_ok());
        assert_eq!(
            cfg.check_webhook(&headers("Bearer nope"))
                .unwrap_err()
                .status,
            401
        );
        assert_eq!(
            cfg.check_webhook(&HeaderMap::new()).unwrap_err().status,
            401
        );
        // Nothing configured: closed, not open.
        let none = AuthConfig::default();
        assert_eq!(
            none.check_webhook(&headers("Bearer x")).unwrap_err().status,
            401
        );
        assert!(!format!("{cfg:?}").contains("s3cret"));
    }

    #[tokio::test]
    async fn read_token_reads_but_may_not_command() {
        let cfg = AuthConfig {
            api_token: Some(Secret::new("admin")),
            read_token: Some(Secret::new("viewer")),
            ..Default::default()
        };
        let h = headers("Bearer viewer");
        let p = cfg.check_api(&h, Verb::Read, None, None).await.unwrap();
        assert_eq!(p.name, "read-token");
        let e = cfg
            .check_api(&h, Verb::Command, Some("ns"), Some("a"))
            .await
            .unwrap_err();
        assert_eq!(e.status, 403);
        let admin = headers("Bearer admin");
        assert!(cfg
            .check_api(&admin, Verb::Command, Some("ns"), Some("a"))
            .await
            .is_ok());
        let wrong = headers("Bearer nobody");
        let e = cfg
            .check_api(&wrong, Verb::Read, None, None)
            .await
            .unwrap_err();
        assert_eq!(e.status, 401);
        assert!(!format!("{cfg:?}").contains("viewer"));
    }
}
