//! Every shipped manifest parses, so examples and install files cannot rot: deploy/ (plain
//! manifests and kustomization), examples/ (Kubernetes kinds), and the Helm chart (Chart.yaml,
//! values, crds/, and templates rendered by a small renderer for the template subset the chart
//! uses). Known kinds are decoded into their typed form and must round-trip without losing a
//! field (catches misspelled keys); Rollouts must also pass `sluice_crds::validate`.

use std::path::{Path, PathBuf};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use sluice_crds::{validate, AnalysisTemplate, Rollout};

#[path = "chart_support/mod.rs"]
mod chart;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(yaml_files(&p));
        } else if matches!(p.extension().and_then(|x| x.to_str()), Some("yaml" | "yml")) {
            out.push(p);
        }
    }
    out.sort();
    out
}

fn parse_docs(text: &str, origin: &str) -> Vec<Value> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(text)
        .unwrap_or_else(|e| panic!("{origin}: not valid YAML: {e}"));
    docs.into_iter().filter(|d| !d.is_null()).collect()
}

/// Every key of `a` is in `b` with an equal value (b may have more: defaults).
fn subset(a: &Value, b: &Value, path: &str) -> Result<(), String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, v) in x {
                match y.get(k) {
                    Some(w) => subset(v, w, &format!("{path}.{k}"))?,
                    None if v.is_null() => {}
                    None => return Err(format!("{path}.{k} is not a known field")),
                }
            }
            Ok(())
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .try_for_each(|(i, (v, w))| subset(v, w, &format!("{path}[{i}]"))),
        (Value::Number(x), Value::Number(y)) if x.as_f64() == y.as_f64() => Ok(()),
        _ if a == b => Ok(()),
        _ => Err(format!("{path}: {a} became {b}")),
    }
}

fn typed<T: DeserializeOwned + Serialize>(doc: &Value, origin: &str) -> T {
    let t: T = serde_json::from_value(doc.clone())
        .unwrap_or_else(|e| panic!("{origin}: does not decode: {e}"));
    let back = serde_json::to_value(&t).expect("serialize");
    if let Err(e) = subset(doc, &back, "") {
        panic!("{origin}: {e}");
    }
    t
}

/// What was found, for assertions about coverage.
#[derive(Default)]
struct Seen {
    kinds: Vec<String>,
    rollouts: Vec<Rollout>,
    deployments: Vec<Deployment>,
    cluster_roles: Vec<ClusterRole>,
}

fn check_doc(doc: &Value, origin: &str, seen: &mut Seen) {
    let api = doc["apiVersion"].as_str().unwrap_or_default();
    let kind = doc["kind"].as_str().unwrap_or_default();
    assert!(
        !api.is_empty() && !kind.is_empty(),
        "{origin}: apiVersion and kind required"
    );
    seen.kinds.push(kind.to_string());
    if kind == "Kustomization" {
        return;
    }
    let name = doc.pointer("/metadata/name").and_then(Value::as_str);
    assert!(
        name.is_some_and(|n| !n.is_empty()),
        "{origin}: metadata.name required"
    );
    let origin = &format!("{origin} ({kind} {})", name.unwrap_or_default());
    match (api, kind) {
        ("v1", "Namespace") => drop(typed::<Namespace>(doc, origin)),
        ("v1", "Service") => drop(typed::<Service>(doc, origin)),
        ("v1", "ServiceAccount") => drop(typed::<ServiceAccount>(doc, origin)),
        ("apps/v1", "Deployment") => seen.deployments.push(typed(doc, origin)),
        ("networking.k8s.io/v1", "Ingress") => drop(typed::<Ingress>(doc, origin)),
        ("rbac.authorization.k8s.io/v1", "ClusterRole") => {
            seen.cluster_roles.push(typed(doc, origin))
        }
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => {
            drop(typed::<ClusterRoleBinding>(doc, origin))
        }
        ("rbac.authorization.k8s.io/v1", "Role") => drop(typed::<Role>(doc, origin)),
        ("rbac.authorization.k8s.io/v1", "RoleBinding") => drop(typed::<RoleBinding>(doc, origin)),
        ("apiextensions.k8s.io/v1", "CustomResourceDefinition") => {
            drop(typed::<CustomResourceDefinition>(doc, origin))
        }
        ("sluice.dev/v1alpha1", "Rollout") => {
            let r: Rollout = typed(doc, origin);
            if let Err(e) = validate(&r.spec, None) {
                panic!("{origin}: {e}");
            }
            seen.rollouts.push(r);
        }
        ("sluice.dev/v1alpha1", "AnalysisTemplate") => drop(typed::<AnalysisTemplate>(doc, origin)),
        // Third-party kinds (TraefikService, IngressRoute, HTTPRoute): shape only.
        (a, _) if a.contains("traefik") || a.starts_with("gateway.networking.k8s.io") => {
            assert!(
                doc.get("spec").is_some_and(Value::is_object),
                "{origin}: spec required"
            );
        }
        _ => panic!("{origin}: unexpected kind {api} {kind}; teach this test about it"),
    }
}

fn check_dir(dir: &Path, seen: &mut Seen) -> usize {
    let files = yaml_files(dir);
    for f in &files {
        let text = std::fs::read_to_string(f).expect("read");
        let origin = f.strip_prefix(root()).unwrap_or(f).display().to_string();
        for doc in parse_docs(&text, &origin) {
            check_doc(&doc, &origin, seen);
        }
    }
    files.len()
}

#[test]
fn deploy_manifests_parse_and_are_locked_down() {
    let mut seen = Seen::default();
    assert!(check_dir(&root().join("deploy"), &mut seen) >= 5);
    for k in [
        "Namespace",
        "CustomResourceDefinition",
        "ClusterRole",
        "Deployment",
        "Service",
    ] {
        assert!(seen.kinds.iter().any(|x| x == k), "deploy/ lacks a {k}");
    }
    assert_locked_down(&seen);
    // kustomization lists files that exist.
    let k: Value = serde_saphyr::from_str(
        &std::fs::read_to_string(root().join("deploy/kustomization.yaml")).expect("read"),
    )
    .expect("yaml");
    for r in k["resources"].as_array().expect("resources") {
        let p = root().join("deploy").join(r.as_str().expect("path"));
        assert!(p.exists(), "kustomization names missing {}", p.display());
    }
}

fn assert_locked_down(seen: &Seen) {
    let d = seen
        .deployments
        .iter()
        .find(|d| {
            d.metadata
                .name
                .as_deref()
                .is_some_and(|n| n.starts_with("sluice"))
        })
        .expect("the controller Deployment");
    let pod = d
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .expect("pod spec");
    assert_eq!(
        pod.security_context
            .as_ref()
            .and_then(|s| s.run_as_non_root),
        Some(true)
    );
    for c in &pod.containers {
        let sc = c
            .security_context
            .as_ref()
            .expect("container securityContext");
        assert_eq!(sc.read_only_root_filesystem, Some(true), "{}", c.name);
        assert_eq!(sc.allow_privilege_escalation, Some(false), "{}", c.name);
    }
    let role = seen.cluster_roles.first().expect("a ClusterRole");
    for rule in role.rules.iter().flatten() {
        let all = rule.verbs.iter().chain(rule.resources.iter().flatten());
        assert!(all.clone().all(|v| v != "*"), "wildcard in {rule:?}");
        let secrets = rule.resources.iter().flatten().any(|r| r == "secrets");
        assert!(!secrets, "the controller needs no Secrets access");
    }
}

#[test]
fn crds_in_deploy_and_chart_match_the_generated_ones() {
    for name in ["rollout.yaml", "analysistemplate.yaml"] {
        let want = std::fs::read_to_string(root().join("crds/yaml").join(name)).expect("crd");
        for dir in ["deploy/crds", "charts/sluice/crds"] {
            let got = std::fs::read_to_string(root().join(dir).join(name)).expect("copy");
            assert!(
                got == want,
                "{dir}/{name} differs from crds/yaml/{name}: copy it again"
            );
        }
    }
}

#[test]
fn examples_parse_and_their_rollouts_validate() {
    let mut seen = Seen::default();
    for ex in ["nginx", "traefik"] {
        let before = seen.rollouts.len();
        assert!(check_dir(&root().join("examples").join(ex), &mut seen) >= 3);
        assert_eq!(
            seen.rollouts.len(),
            before + 1,
            "examples/{ex} has one Rollout"
        );
    }
    let nginx = &seen.rollouts[0];
    assert!(nginx.spec.router.nginx.is_some());
    let traefik = &seen.rollouts[1];
    assert!(traefik.spec.router.traefik.is_some());
    for k in ["Deployment", "Ingress", "TraefikService", "IngressRoute"] {
        assert!(seen.kinds.iter().any(|x| x == k), "examples lack a {k}");
    }
}

#[test]
fn an_invalid_rollout_is_caught() {
    // The checker itself must be able to fail.
    let bad = "apiVersion: sluice.dev/v1alpha1\nkind: Rollout\nmetadata: {name: x}\nspec:\n  targetRef: {name: x}\n  service: {port: 80}\n  strategy: {}\n  router: {nginx: {ingressRef: x}}\n";
    let doc = &parse_docs(bad, "inline")[0];
    let r = std::panic::catch_unwind(|| check_doc(doc, "inline", &mut Seen::default()));
    assert!(r.is_err());
    let typo = "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {selectr: {app: x}}\n";
    let doc = &parse_docs(typo, "inline")[0];
    let r = std::panic::catch_unwind(|| check_doc(doc, "inline", &mut Seen::default()));
    assert!(r.is_err(), "a misspelled field must fail the round trip");
}

// ---- Helm chart: rendered by the shared renderer (chart_support). ----

fn render_chart(overrides: Value) -> Seen {
    let dir = root().join("charts/sluice");
    let meta: Value = serde_saphyr::from_str(
        &std::fs::read_to_string(dir.join("Chart.yaml")).expect("Chart.yaml"),
    )
    .expect("Chart.yaml");
    assert_eq!(meta["apiVersion"], "v2");
    assert_eq!(meta["name"], "sluice");
    assert!(chart::templates(&dir.join("templates")).len() >= 4);
    let mut seen = Seen::default();
    for (origin, doc) in chart::render_chart(&dir, &overrides) {
        check_doc(&doc, &origin, &mut seen);
    }
    check_dir(&dir.join("crds"), &mut seen);
    seen
}

fn container_args(seen: &Seen) -> (Vec<String>, Vec<String>) {
    let pod = seen.deployments[0]
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.clone())
        .expect("pod");
    let c = &pod.containers[0];
    let env = c.env.iter().flatten().map(|e| e.name.clone()).collect();
    (c.args.clone().unwrap_or_default(), env)
}

#[test]
fn helm_chart_renders_with_defaults_and_overrides() {
    let seen = render_chart(Value::Null);
    assert_locked_down(&seen);
    let (args, env) = container_args(&seen);
    assert_eq!(args, vec!["controller", "--leader-election", "--json-logs"]);
    assert!(env.contains(&"SLUICE_PROMETHEUS".to_string()));
    assert!(!env.contains(&"SLUICE_API_TOKEN".to_string()));
    let res = seen.deployments[0]
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.clone())
        .expect("pod")
        .containers[0]
        .resources
        .clone()
        .expect("resources");
    assert!(res.requests.is_some_and(|r| r.contains_key("cpu")));

    let seen = render_chart(serde_json::json!({
        "leaderElection": {"enabled": false},
        "watchNamespace": "shop",
        "apiToken": {"existingSecret": "sluice-token"},
        "image": {"tag": "9.9.9"},
    }));
    let (args, env) = container_args(&seen);
    assert_eq!(args, vec!["controller", "--json-logs", "--namespace=shop"]);
    assert!(env.contains(&"SLUICE_API_TOKEN".to_string()));
    let pod = seen.deployments[0]
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.clone())
        .expect("pod");
    assert_eq!(
        pod.containers[0].image.as_deref(),
        Some("ghcr.io/sluice-dev/sluice:9.9.9")
    );
}
