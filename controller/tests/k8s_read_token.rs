//! `sluice controller --read-token` (env `SLUICE_READ_TOKEN`): the static read-only token reads
//! and may not command; other bearer tokens still go to the Kubernetes authorizer.

use std::sync::Arc;

use clap::Parser;
use futures::future::BoxFuture;
use http::HeaderMap;
use sluice_controller::api::auth::AuthError;
use sluice_controller::api::{AuthDecision, Authorizer, Principal, Verb};
use sluice_controller::k8s::run::auth_config;
use sluice_controller::k8s::ControllerArgs;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: ControllerArgs,
}

/// Kubernetes says: `alice` may do anything, every other token is unknown.
struct Alice;

impl Authorizer for Alice {
    fn authorize<'a>(
        &'a self,
        token: &'a str,
        _verb: Verb,
        _namespace: Option<&'a str>,
        _name: Option<&'a str>,
    ) -> BoxFuture<'a, Result<AuthDecision, AuthError>> {
        let d = if token == "alice" {
            AuthDecision::Allowed(Principal {
                name: "alice".into(),
            })
        } else {
            AuthDecision::Unauthenticated
        };
        Box::pin(async move { Ok(d) })
    }
}

fn bearer(t: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("authorization", format!("Bearer {t}").parse().unwrap());
    h
}

#[tokio::test]
async fn the_read_token_flag_reads_only_and_kubernetes_tokens_still_work() {
    let cli = Cli::try_parse_from(["sluice", "--read-token", "viewer"]).unwrap();
    let auth = auth_config(&cli.args, Some(Arc::new(Alice)));
    let p = auth
        .check_api(&bearer("viewer"), Verb::Read, Some("shop"), Some("web"))
        .await
        .unwrap();
    assert_eq!(p.name, "read-token");
    let e = auth
        .check_api(&bearer("viewer"), Verb::Command, Some("shop"), Some("web"))
        .await
        .unwrap_err();
    assert_eq!(e.status, 403);
    let p = auth
        .check_api(&bearer("alice"), Verb::Command, Some("shop"), Some("web"))
        .await
        .unwrap();
    assert_eq!(p.name, "alice");
    let e = auth
        .check_api(&bearer("mallory"), Verb::Read, None, None)
        .await
        .unwrap_err();
    assert_eq!(e.status, 401);
    assert!(!format!("{auth:?}").contains("viewer"));
}

#[test]
fn an_empty_read_token_is_no_token() {
    let cli = Cli::try_parse_from(["sluice", "--read-token", ""]).unwrap();
    assert!(auth_config(&cli.args, None).read_token.is_none());
    let cli = Cli::try_parse_from(["sluice"]).unwrap();
    assert!(auth_config(&cli.args, None).read_token.is_none());
}
