//! The install manifests use the image `scripts/image.sh` builds, from one place each
//! (kustomize `images:` in deploy/, the chart's `appVersion`), and every object they produce
//! validates against the upstream Kubernetes JSON schemas (PyPI `kubernetes-validate --strict`,
//! installed by scripts/install-deps.sh) for the oldest supported and the newest Kubernetes
//! release. The chart is rendered by the shared renderer (`chart_support`; helm is not in the
//! registries these machines reach) with its defaults and with every optional value on.
//! Kinds the schemas do not cover: ServiceMonitor is checked against the prometheus-operator
//! API reference's fields (monitoring.coreos.com/v1); the CRDs themselves are covered.
//! examples/: its Kubernetes objects the same way, its Prometheus rules by `promtool check rules`
//! and its Alertmanager configuration by `amtool check-config`.

#[path = "chart_support/mod.rs"]
mod chart;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;
use serde_json::{json, Value};
use sluice_tests::{kubernetes_validate_bin, tool, workspace_root};

/// Oldest Kubernetes the chart declares (`kubeVersion: ">=1.28.0-0"`) and the newest schemas.
const KUBE_VERSIONS: [&str; 2] = ["1.28.0", "1.37.0"];

fn read_yaml(rel: &str) -> Value {
    let text = std::fs::read_to_string(workspace_root().join(rel)).expect(rel);
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn docs_of(text: &str, origin: &str) -> Vec<Value> {
    let docs: Vec<Value> =
        serde_saphyr::from_multiple(text).unwrap_or_else(|e| panic!("{origin}: {e}"));
    docs.into_iter().filter(|d| !d.is_null()).collect()
}

/// `scripts/image.sh --print-ref`: the reference the script builds by default.
fn script_image_ref() -> String {
    let out = Command::new("bash")
        .arg(workspace_root().join("scripts/image.sh"))
        .arg("--print-ref")
        .output()
        .expect("run scripts/image.sh");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn chart_dir() -> PathBuf {
    workspace_root().join("charts/sluice")
}

fn everything_on() -> Value {
    json!({
        "apiToken": {"existingSecret": "sluice-api-token"},
        "webhookToken": {"existingSecret": "sluice-webhook-token", "key": "am"},
        "extraArgs": ["--concurrency=8"],
        "notifications": {"existingSecret": "sluice-notifications"},
        "watchNamespace": "shop",
        "serviceMonitor": {"enabled": true, "interval": "15s", "labels": {"release": "kps"}},
        "podSecurityContext": {"runAsNonRoot": true, "runAsUser": 1000, "runAsGroup": 1000,
            "fsGroup": 1000, "seccompProfile": {"type": "RuntimeDefault"}},
    })
}

fn container(docs: &[Value]) -> Value {
    docs.iter()
        .find(|d| d["kind"] == "Deployment")
        .and_then(|d| d.pointer("/spec/template/spec/containers/0"))
        .cloned()
        .expect("the controller container")
}

#[test]
fn deploy_and_chart_reference_the_image_the_script_builds() {
    let version = env!("CARGO_PKG_VERSION");
    let want = script_image_ref();
    assert_eq!(want, format!("ghcr.io/sluice-dev/sluice:{version}"));

    // Chart: appVersion is the version; values leave the tag empty so appVersion is used.
    let meta = read_yaml("charts/sluice/Chart.yaml");
    assert_eq!(meta["appVersion"], version, "Chart.yaml appVersion");
    let values = read_yaml("charts/sluice/values.yaml");
    assert_eq!(values["image"]["tag"], "", "the tag comes from appVersion");
    let docs: Vec<Value> = chart::render_chart(&chart_dir(), &Value::Null)
        .into_iter()
        .map(|(_, d)| d)
        .collect();
    assert_eq!(container(&docs)["image"], want.as_str());

    // deploy/: the Deployment names the image without a tag; kustomization.yaml sets it.
    let k = read_yaml("deploy/kustomization.yaml");
    let images = k["images"].as_array().expect("kustomization images:");
    assert_eq!(images.len(), 1, "{images:?}");
    let (name, tag) = want.rsplit_once(':').expect("name:tag");
    assert_eq!(images[0]["name"], name);
    assert_eq!(images[0]["newTag"], tag);
    let text = std::fs::read_to_string(workspace_root().join("deploy/deployment.yaml"))
        .expect("deployment.yaml");
    let raw = docs_of(&text, "deploy/deployment.yaml");
    assert_eq!(
        container(&raw)["image"],
        name,
        "untagged in deployment.yaml"
    );

    // With kubectl (its built-in kustomize) the rendered image is the script's.
    match kustomize_build() {
        Some(rendered) => assert_eq!(container(&rendered)["image"], want.as_str()),
        None => eprintln!("SKIP kustomize render: no kubectl on this machine"),
    }
}

/// `kubectl kustomize deploy/` when kubectl is installed.
fn kustomize_build() -> Option<Vec<Value>> {
    let kubectl = tool("kubectl")?;
    let out = Command::new(kubectl)
        .arg("kustomize")
        .arg(workspace_root().join("deploy"))
        .output()
        .ok()?;
    assert!(
        out.status.success(),
        "kubectl kustomize deploy/: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(docs_of(&String::from_utf8_lossy(&out.stdout), "kustomize"))
}

#[test]
fn chart_values_reach_the_pod() {
    let docs: Vec<Value> = chart::render_chart(&chart_dir(), &everything_on())
        .into_iter()
        .map(|(_, d)| d)
        .collect();
    let c = container(&docs);
    let args: Vec<&str> = c["args"]
        .as_array()
        .expect("args")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        args,
        [
            "controller",
            "--leader-election",
            "--json-logs",
            "--namespace=shop",
            "--notifications-file=/etc/sluice/notifications/notifications.yaml",
            "--concurrency=8"
        ]
    );
    assert_eq!(
        c["volumeMounts"][0],
        json!({"name": "notifications", "mountPath": "/etc/sluice/notifications", "readOnly": true})
    );
    let volumes = docs
        .iter()
        .find(|d| d["kind"] == "Deployment")
        .and_then(|d| d.pointer("/spec/template/spec/volumes/0/secret/secretName"))
        .cloned();
    assert_eq!(volumes, Some(json!("sluice-notifications")));
    let env = |name: &str| {
        c["env"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|e| e["name"] == name)
            .cloned()
            .unwrap_or(Value::Null)
    };
    assert_eq!(
        env("SLUICE_API_TOKEN").pointer("/valueFrom/secretKeyRef/name"),
        Some(&json!("sluice-api-token"))
    );
    assert_eq!(
        env("SLUICE_WEBHOOK_TOKEN").pointer("/valueFrom/secretKeyRef/key"),
        Some(&json!("am"))
    );
    let pod = docs
        .iter()
        .find(|d| d["kind"] == "Deployment")
        .and_then(|d| d.pointer("/spec/template/spec/securityContext"))
        .cloned()
        .expect("pod securityContext");
    assert_eq!(pod["fsGroup"], 1000);
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    let sm = docs
        .iter()
        .find(|d| d["kind"] == "ServiceMonitor")
        .expect("a ServiceMonitor when enabled");
    assert_eq!(sm["metadata"]["labels"]["release"], "kps");
    assert_eq!(sm["spec"]["endpoints"][0]["interval"], "15s");
    // Off by default (the monitoring.coreos.com CRDs may be absent).
    let defaults = chart::render_chart(&chart_dir(), &Value::Null);
    assert!(defaults.iter().all(|(_, d)| d["kind"] != "ServiceMonitor"));
}

/// The ServiceMonitor fields the chart writes, as the prometheus-operator API reference
/// (ServiceMonitorSpec, Endpoint) names them; unknown fields fail.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct ServiceMonitor {
    #[serde(rename = "apiVersion")]
    api_version: String,
    kind: String,
    metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    spec: ServiceMonitorSpec,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct ServiceMonitorSpec {
    selector: k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector,
    endpoints: Vec<ServiceMonitorEndpoint>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct ServiceMonitorEndpoint {
    port: String,
    path: String,
    interval: String,
}

/// Writes each document to its own JSON file and runs `kubernetes-validate --strict` on them
/// for every version in [`KUBE_VERSIONS`]; every document must be reported as passed.
fn validate(docs: &[(String, Value)], dir: &Path) {
    let kv = kubernetes_validate_bin().expect("kubernetes-validate (scripts/install-deps.sh)");
    let mut files = Vec::new();
    for (i, (origin, doc)) in docs.iter().enumerate() {
        let f = dir.join(format!("{i:03}.json"));
        std::fs::write(&f, serde_json::to_vec(doc).expect("json")).expect("write");
        files.push((f, origin.clone(), doc));
    }
    for version in KUBE_VERSIONS {
        let out = Command::new(&kv)
            .args(["--strict", "-k", version])
            .args(files.iter().map(|(f, _, _)| f))
            .output()
            .expect("run kubernetes-validate");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success(),
            "schema validation (Kubernetes {version}) failed:\n{text}"
        );
        for (f, origin, doc) in &files {
            let passed = text
                .lines()
                .any(|l| l.contains(&*f.to_string_lossy()) && l.contains("passed"));
            assert!(
                passed,
                "{origin} ({} {}) was not validated against Kubernetes {version}:\n{text}",
                doc["kind"], doc["metadata"]["name"]
            );
        }
    }
}

/// Splits off the kinds the Kubernetes schemas do not know and checks them here.
fn split_custom(docs: Vec<(String, Value)>) -> Vec<(String, Value)> {
    let mut builtin = Vec::new();
    for (origin, doc) in docs {
        match doc["apiVersion"].as_str().unwrap_or_default() {
            "monitoring.coreos.com/v1" => {
                assert_eq!(doc["kind"], "ServiceMonitor", "{origin}");
                if let Err(e) = serde_json::from_value::<ServiceMonitor>(doc.clone()) {
                    panic!("{origin}: ServiceMonitor: {e}");
                }
            }
            _ => builtin.push((origin, doc)),
        }
    }
    builtin
}

#[test]
fn rendered_chart_validates_against_the_upstream_schemas() {
    for overrides in [Value::Null, everything_on()] {
        let mut docs = chart::render_chart(&chart_dir(), &overrides);
        for crd in ["rollout.yaml", "analysistemplate.yaml"] {
            let rel = format!("charts/sluice/crds/{crd}");
            let text = std::fs::read_to_string(workspace_root().join(&rel)).expect("crd");
            docs.extend(docs_of(&text, &rel).into_iter().map(|d| (rel.clone(), d)));
        }
        let dir = tempfile::tempdir().expect("tempdir");
        validate(&split_custom(docs), dir.path());
    }
}

#[test]
fn deploy_manifests_validate_against_the_upstream_schemas() {
    let docs = match kustomize_build() {
        Some(rendered) => rendered
            .into_iter()
            .map(|d| ("kubectl kustomize deploy/".to_string(), d))
            .collect(),
        None => {
            eprintln!("no kubectl: validating the files kustomization.yaml lists");
            let k = read_yaml("deploy/kustomization.yaml");
            let mut docs = Vec::new();
            for r in k["resources"].as_array().expect("resources") {
                let rel = format!("deploy/{}", r.as_str().expect("path"));
                let text = std::fs::read_to_string(workspace_root().join(&rel)).expect(&rel);
                docs.extend(docs_of(&text, &rel).into_iter().map(|d| (rel.clone(), d)));
            }
            docs
        }
    };
    assert!(docs.len() >= 8, "{} objects", docs.len());
    let dir = tempfile::tempdir().expect("tempdir");
    validate(&split_custom(docs), dir.path());
}

#[test]
fn e2e_suite_manifests_validate() {
    let mut docs = Vec::new();
    let mut rollouts = 0;
    for f in ["app.yaml", "loadgen.yaml", "rollout.yaml"] {
        let rel = format!("tests/e2e/{f}");
        let text = std::fs::read_to_string(workspace_root().join(&rel)).expect(&rel);
        for d in docs_of(&text, &rel) {
            if d["kind"] == "Rollout" {
                let r: sluice_crds::Rollout =
                    serde_json::from_value(d).unwrap_or_else(|e| panic!("{rel}: {e}"));
                if let Err(e) = sluice_crds::validate(&r.spec, None) {
                    panic!("{rel}: {e}");
                }
                rollouts += 1;
            } else {
                docs.push((rel.clone(), d));
            }
        }
    }
    assert_eq!(rollouts, 1);
    let dir = tempfile::tempdir().expect("tempdir");
    validate(&docs, dir.path());
}

#[test]
fn the_validator_rejects_a_misspelled_field_and_an_unknown_kind() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut bad = chart::render_chart(&chart_dir(), &Value::Null);
    let dep = bad
        .iter_mut()
        .find(|(_, d)| d["kind"] == "Deployment")
        .expect("Deployment");
    dep.1["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = json!("Always");
    let r = std::panic::catch_unwind(|| validate(&bad, dir.path()));
    assert!(r.is_err(), "a misspelled container field must fail");
    // A kind without a schema is reported, not silently passed.
    let unknown = vec![(
        "inline".to_string(),
        json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}),
    )];
    let r = std::panic::catch_unwind(|| validate(&unknown, dir.path()));
    assert!(
        r.is_err(),
        "an object without a schema must not count as validated"
    );
    let sm = vec![(
        "inline".to_string(),
        json!({"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor",
               "metadata": {"name": "s"},
               "spec": {"selector": {}, "endpoints": [{"port": "http", "path": "/metrics", "intervall": "1m"}]}}),
    )];
    assert!(std::panic::catch_unwind(|| split_custom(sm)).is_err());
}

/// The Kubernetes objects of examples/ (the Rollouts and Traefik's CRDs aside: their schemas are
/// not in kubernetes-validate; controller/tests/k8s_schema.rs checks the Rollouts against the
/// CRD's schema and manifests.rs decodes both) against the upstream schemas, and the Prometheus
/// rules and Alertmanager configuration by Prometheus' and Alertmanager's own checkers.
#[test]
fn examples_validate_against_the_upstream_schemas_and_checkers() {
    let mut docs = Vec::new();
    let mut custom = 0;
    for ex in ["nginx", "traefik"] {
        let dir = workspace_root().join("examples").join(ex);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .expect("examples dir")
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
            .collect();
        files.sort();
        for f in files {
            let rel = f
                .strip_prefix(workspace_root())
                .unwrap_or(&f)
                .display()
                .to_string();
            let text = std::fs::read_to_string(&f).expect(&rel);
            for d in docs_of(&text, &rel) {
                let api = d["apiVersion"].as_str().unwrap_or_default();
                if api.starts_with("sluice.dev/") || api.starts_with("traefik.io/") {
                    custom += 1;
                } else {
                    docs.push((rel.clone(), d));
                }
            }
        }
    }
    assert!(docs.len() >= 5, "{} built-in objects", docs.len());
    assert!(custom >= 4, "{custom} custom objects");
    let dir = tempfile::tempdir().expect("tempdir");
    validate(&docs, dir.path());

    let checks: [(&str, &[&str], &str); 2] = [
        (
            "promtool",
            &["check", "rules"],
            "examples/alertmanager/rules.yml",
        ),
        (
            "amtool",
            &["check-config"],
            "examples/alertmanager/alertmanager.yml",
        ),
    ];
    for (bin, args, rel) in checks {
        let exe = sluice_tests::require_tool(bin).unwrap_or_else(|e| panic!("{bin}: {e}"));
        let out = Command::new(exe)
            .args(args)
            .arg(workspace_root().join(rel))
            .output()
            .unwrap_or_else(|e| panic!("run {bin}: {e}"));
        assert!(
            out.status.success() && String::from_utf8_lossy(&out.stdout).contains("SUCCESS"),
            "{bin} rejects {rel}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
