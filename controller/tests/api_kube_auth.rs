//! `KubeAuthorizer` against a mocked API server (tower-test): the TokenReview and
//! SubjectAccessReview it sends, and the decisions it draws from the answers.

use http::{Request, Response};
use kube::client::Body;
use kube::Client;
use sluice_controller::api::kube_auth::KubeAuthorizer;
use sluice_controller::api::{AuthDecision, Authorizer, Verb};
use tower_test::mock;

type Handle = mock::Handle<Request<Body>, Response<Body>>;

async fn body_json(req: Request<Body>) -> serde_json::Value {
    let bytes = req.into_body().collect_bytes().await.unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn reply(json: serde_json::Value) -> Response<Body> {
    Response::builder()
        .status(201)
        .body(Body::from(serde_json::to_vec(&json).unwrap()))
        .unwrap()
}

/// Answers one TokenReview (authenticated as `user` or not) and, if authenticated, one
/// SubjectAccessReview with `allowed`; returns the SAR's resourceAttributes.
async fn apiserver(
    mut handle: Handle,
    user: Option<&str>,
    allowed: bool,
) -> Option<serde_json::Value> {
    let (req, send) = handle.next_request().await.unwrap();
    assert_eq!(req.method(), "POST");
    assert_eq!(
        req.uri().path(),
        "/apis/authentication.k8s.io/v1/tokenreviews"
    );
    let mut tr = body_json(req).await;
    assert_eq!(tr["spec"]["token"], "tok");
    tr["status"] = match user {
        Some(u) => {
            serde_json::json!({"authenticated": true, "user": {"username": u, "groups": ["devs"]}})
        }
        None => serde_json::json!({"authenticated": false}),
    };
    send.send_response(reply(tr));
    user?;
    let (req, send) = handle.next_request().await.unwrap();
    assert_eq!(
        req.uri().path(),
        "/apis/authorization.k8s.io/v1/subjectaccessreviews"
    );
    let mut sar = body_json(req).await;
    assert_eq!(sar["spec"]["user"], user.unwrap());
    assert_eq!(sar["spec"]["groups"], serde_json::json!(["devs"]));
    let attrs = sar["spec"]["resourceAttributes"].clone();
    sar["status"] =
        serde_json::json!({"allowed": allowed, "reason": if allowed { "" } else { "no binding" }});
    send.send_response(reply(sar));
    Some(attrs)
}

#[tokio::test]
async fn patch_allowed_means_may_command() {
    let (svc, handle) = mock::pair::<Request<Body>, Response<Body>>();
    let auth = KubeAuthorizer::new(Client::new(svc, "default"));
    let server = tokio::spawn(apiserver(handle, Some("alice"), true));
    let d = auth
        .authorize("tok", Verb::Command, Some("shop"), Some("web"))
        .await
        .unwrap();
    assert!(
        matches!(d, AuthDecision::Allowed(ref p) if p.name == "alice"),
        "{d:?}"
    );
    let attrs = server.await.unwrap().unwrap();
    assert_eq!(attrs["verb"], "patch");
    assert_eq!(attrs["group"], "sluice.dev");
    assert_eq!(attrs["resource"], "rollouts");
    assert_eq!(attrs["namespace"], "shop");
    assert_eq!(attrs["name"], "web");
}

#[tokio::test]
async fn denied_and_unauthenticated() {
    let (svc, handle) = mock::pair::<Request<Body>, Response<Body>>();
    let auth = KubeAuthorizer::new(Client::new(svc, "default"));
    let server = tokio::spawn(apiserver(handle, Some("bob"), false));
    let d = auth
        .authorize("tok", Verb::Read, Some("shop"), None)
        .await
        .unwrap();
    assert!(
        matches!(d, AuthDecision::Denied { ref reason, .. } if reason == "no binding"),
        "{d:?}"
    );
    assert_eq!(server.await.unwrap().unwrap()["verb"], "get");

    let (svc, handle) = mock::pair::<Request<Body>, Response<Body>>();
    let auth = KubeAuthorizer::new(Client::new(svc, "default"));
    let server = tokio::spawn(apiserver(handle, None, false));
    let d = auth
        .authorize("tok", Verb::Command, Some("shop"), None)
        .await
        .unwrap();
    assert_eq!(d, AuthDecision::Unauthenticated);
    assert!(server.await.unwrap().is_none());
}
