//! [`Authorizer`] backed by Kubernetes: TokenReview authenticates the bearer token,
//! SubjectAccessReview checks the RBAC verb on `rollouts.sluice.dev` (patch to command, get to read).

use futures::future::BoxFuture;
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec, TokenReviewStatus};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec, SubjectAccessReviewStatus,
};
use kube::api::{Api, PostParams};
use kube::Client;

use super::auth::{AuthDecision, AuthError, Authorizer, Principal, Verb};

/// API group of the Rollout resource.
pub const ROLLOUT_GROUP: &str = "sluice.dev";
/// Plural resource name checked by the SubjectAccessReview.
pub const ROLLOUT_RESOURCE: &str = "rollouts";

/// Uses the controller's own client (which needs `create` on tokenreviews and subjectaccessreviews).
#[derive(Clone)]
pub struct KubeAuthorizer {
    client: Client,
    /// Audiences the token must be valid for (empty: the API server's default).
    audiences: Vec<String>,
}

impl KubeAuthorizer {
    pub fn new(client: Client) -> Self {
        KubeAuthorizer {
            client,
            audiences: Vec::new(),
        }
    }

    pub fn with_audiences(mut self, audiences: Vec<String>) -> Self {
        self.audiences = audiences;
        self
    }
}

/// The TokenReview to create for `token`.
pub fn token_review(token: &str, audiences: &[String]) -> TokenReview {
    TokenReview {
        spec: TokenReviewSpec {
            token: Some(token.to_string()),
            audiences: (!audiences.is_empty()).then(|| audiences.to_vec()),
        },
        ..Default::default()
    }
}

/// The SubjectAccessReview for the user a TokenReview returned.
pub fn access_review(
    review: &TokenReviewStatus,
    verb: Verb,
    namespace: Option<&str>,
    name: Option<&str>,
) -> SubjectAccessReview {
    let user = review.user.clone().unwrap_or_default();
    SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: user.username,
            uid: user.uid,
            groups: user.groups,
            extra: user.extra,
            resource_attributes: Some(ResourceAttributes {
                group: Some(ROLLOUT_GROUP.to_string()),
                resource: Some(ROLLOUT_RESOURCE.to_string()),
                verb: Some(verb.rbac_verb(namespace.is_some()).to_string()),
                namespace: namespace.map(str::to_string),
                name: name.map(str::to_string),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// The user name of an authenticated TokenReview, None if not authenticated.
pub fn authenticated_user(status: Option<&TokenReviewStatus>) -> Option<String> {
    let s = status?;
    if s.authenticated != Some(true) {
        return None;
    }
    Some(
        s.user
            .as_ref()
            .and_then(|u| u.username.clone())
            .unwrap_or_else(|| "unknown".to_string()),
    )
}

/// Decision from the SubjectAccessReview's status.
pub fn access_decision(user: String, status: Option<&SubjectAccessReviewStatus>) -> AuthDecision {
    match status {
        Some(s) if s.allowed && s.denied != Some(true) => {
            AuthDecision::Allowed(Principal { name: user })
        }
        Some(s) => AuthDecision::Denied {
            user,
            reason: s
                .reason
                .clone()
                .or_else(|| s.evaluation_error.clone())
                .unwrap_or_else(|| "not allowed by RBAC".to_string()),
        },
        None => AuthDecision::Denied {
            user,
            reason: "no SubjectAccessReview status".to_string(),
        },
    }
}

impl Authorizer for KubeAuthorizer {
    fn authorize<'a>(
        &'a self,
        token: &'a str,
        verb: Verb,
        namespace: Option<&'a str>,
        name: Option<&'a str>,
    ) -> BoxFuture<'a, Result<AuthDecision, AuthError>> {
        Box::pin(async move {
            let reviews: Api<TokenReview> = Api::all(self.client.clone());
            let tr = reviews
                .create(
                    &PostParams::default(),
                    &token_review(token, &self.audiences),
                )
                .await
                .map_err(|e| AuthError(format!("TokenReview: {e}")))?;
            let Some(user) = authenticated_user(tr.status.as_ref()) else {
                return Ok(AuthDecision::Unauthenticated);
            };
            let status = tr.status.unwrap_or_default();
            let sars: Api<SubjectAccessReview> = Api::all(self.client.clone());
            let sar = sars
                .create(
                    &PostParams::default(),
                    &access_review(&status, verb, namespace, name),
                )
                .await
                .map_err(|e| AuthError(format!("SubjectAccessReview: {e}")))?;
            Ok(access_decision(user, sar.status.as_ref()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::authentication::v1::UserInfo;

    fn authenticated(name: &str) -> TokenReviewStatus {
        TokenReviewStatus {
            authenticated: Some(true),
            user: Some(UserInfo {
                username: Some(name.to_string()),
                groups: Some(vec!["ci".to_string()]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn access_review_asks_patch_on_rollouts_in_namespace() {
        let sar = access_review(
            &authenticated("alice"),
            Verb::Command,
            Some("shop"),
            Some("web"),
        );
        let attrs = sar.spec.resource_attributes.unwrap();
        assert_eq!(attrs.verb.as_deref(), Some("patch"));
        assert_eq!(attrs.group.as_deref(), Some("sluice.dev"));
        assert_eq!(attrs.resource.as_deref(), Some("rollouts"));
        assert_eq!(attrs.namespace.as_deref(), Some("shop"));
        assert_eq!(sar.spec.user.as_deref(), Some("alice"));
        assert_eq!(sar.spec.groups, Some(vec!["ci".to_string()]));
        let read = access_review(&authenticated("bob"), Verb::Read, None, None);
        assert_eq!(
            read.spec.resource_attributes.unwrap().verb.as_deref(),
            Some("list")
        );
    }

    #[test]
    fn decisions() {
        assert_eq!(authenticated_user(None), None);
        assert_eq!(
            authenticated_user(Some(&TokenReviewStatus::default())),
            None
        );
        assert_eq!(
            authenticated_user(Some(&authenticated("alice"))).as_deref(),
            Some("alice")
        );
        let allowed = SubjectAccessReviewStatus {
            allowed: true,
            ..Default::default()
        };
        assert!(matches!(
            access_decision("a".into(), Some(&allowed)),
            AuthDecision::Allowed(p) if p.name == "a"
        ));
        let denied = SubjectAccessReviewStatus {
            allowed: false,
            reason: Some("no binding".into()),
            ..Default::default()
        };
        assert!(matches!(
            access_decision("a".into(), Some(&denied)),
            AuthDecision::Denied { reason, .. } if reason == "no binding"
        ));
        assert!(matches!(
            access_decision("a".into(), None),
            AuthDecision::Denied { .. }
        ));
        let token = token_review("t", &[]);
        assert_eq!(token.spec.token.as_deref(), Some("t"));
        assert_eq!(token.spec.audiences, None);
    }
}
