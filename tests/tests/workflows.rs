//! The GitHub Actions workflows parse, have the shape GitHub requires (`on`, `jobs`, each job
//! with `runs-on` and steps that have exactly one of `uses` / `run`), and contain the steps the
//! project relies on: CI runs the README's test command; the kind workflow builds the image
//! with scripts/image.sh, installs ingress-nginx and Prometheus from upstream manifests and runs
//! the real-cluster suite; the release workflow builds multi-arch images, the chart package,
//! binaries and checksums. Local files they name must exist.

use std::path::PathBuf;

use serde_json::Value;
use sluice_tests::workspace_root;

fn workflow(name: &str) -> (Value, String) {
    let path: PathBuf = workspace_root().join(".github/workflows").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let v: Value = serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
    check_shape(name, &v);
    (v, text)
}

fn check_shape(name: &str, v: &Value) {
    assert!(v["name"].is_string(), "{name}: name");
    // GitHub reads the key `on` as a string (YAML 1.1 readers would make it `true`).
    assert!(v.get("on").is_some_and(|o| !o.is_null()), "{name}: on");
    let jobs = v["jobs"]
        .as_object()
        .unwrap_or_else(|| panic!("{name}: jobs"));
    assert!(!jobs.is_empty(), "{name}: no jobs");
    for (id, job) in jobs {
        assert!(job.get("runs-on").is_some(), "{name}/{id}: runs-on");
        if let Some(needs) = job.get("needs") {
            let needs: Vec<&str> = match needs {
                Value::String(s) => vec![s.as_str()],
                Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
                other => panic!("{name}/{id}: needs {other}"),
            };
            for n in needs {
                assert!(jobs.contains_key(n), "{name}/{id}: needs unknown job {n}");
            }
        }
        let steps = job["steps"]
            .as_array()
            .unwrap_or_else(|| panic!("{name}/{id}: steps"));
        for (i, s) in steps.iter().enumerate() {
            let uses = s.get("uses").is_some();
            let run = s.get("run").is_some();
            assert!(
                uses != run,
                "{name}/{id} step {i}: exactly one of uses/run: {s}"
            );
            if let Some(u) = s["uses"].as_str() {
                assert!(u.contains('@'), "{name}/{id} step {i}: pin a version: {u}");
            }
        }
    }
}

/// Every `run` script of the workflow, joined.
fn runs(v: &Value) -> String {
    let mut out = String::new();
    for job in v["jobs"].as_object().into_iter().flat_map(|j| j.values()) {
        for s in job["steps"].as_array().into_iter().flatten() {
            if let Some(r) = s["run"].as_str() {
                out.push_str(r);
                out.push('\n');
            }
        }
    }
    out
}

fn uses(v: &Value) -> Vec<String> {
    v["jobs"]
        .as_object()
        .into_iter()
        .flat_map(|j| j.values())
        .flat_map(|job| job["steps"].as_array().cloned().unwrap_or_default())
        .filter_map(|s| s["uses"].as_str().map(String::from))
        .collect()
}

#[test]
fn ci_runs_the_readme_test_command() {
    let (v, _) = workflow("ci.yml");
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).expect("README");
    assert!(
        readme.contains("`scripts/test.sh`"),
        "README names the test command"
    );
    let ci = std::fs::read_to_string(workspace_root().join(".ci/run")).expect(".ci/run");
    assert!(ci.contains("scripts/test.sh"));
    let r = runs(&v);
    assert!(r.lines().any(|l| l.trim() == "scripts/test.sh"), "{r}");
    assert!(r.contains("cargo clippy --workspace --all-targets -- -D warnings"));
}

#[test]
fn kind_workflow_runs_the_cluster_suite_on_upstream_components() {
    let (v, text) = workflow("e2e-kind.yml");
    let r = runs(&v);
    assert!(
        r.contains("scripts/image.sh") && r.contains("--docker-archive"),
        "{r}"
    );
    assert!(r.contains("kind load image-archive"), "{r}");
    assert!(
        r.contains("ingress-nginx/${INGRESS_NGINX_REF}/deploy/static/provider/kind/deploy.yaml")
    );
    assert!(
        r.contains("ingress-nginx/deploy/prometheus/"),
        "Prometheus from ingress-nginx"
    );
    assert!(r.contains("--test e2e_cluster"), "{r}");
    assert!(workspace_root()
        .join("tests/tests/e2e_cluster.rs")
        .is_file());
    assert!(text.contains("SLUICE_E2E_CLUSTER: \"1\""));
    assert!(uses(&v).iter().any(|u| u.starts_with("helm/kind-action@")));
    let kind_config = v["jobs"]["e2e"]["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .find_map(|s| s["with"]["config"].as_str())
        .expect("kind config");
    let cfg: Value = serde_saphyr::from_str(
        &std::fs::read_to_string(workspace_root().join(kind_config)).expect("kind config file"),
    )
    .expect("kind config YAML");
    assert_eq!(cfg["kind"], "Cluster");
}

#[test]
fn release_workflow_builds_every_artifact() {
    let (v, text) = workflow("release.yml");
    assert!(v["on"]["push"]["tags"].is_array(), "runs on tags");
    let u = uses(&v);
    for action in [
        "docker/setup-qemu-action@",
        "docker/build-push-action@",
        "azure/setup-helm@",
        "softprops/action-gh-release@",
    ] {
        assert!(u.iter().any(|x| x.starts_with(action)), "{action} in {u:?}");
    }
    assert!(text.contains("platforms: linux/amd64,linux/arm64"));
    assert!(text.contains("file: Containerfile.multistage"));
    assert!(workspace_root().join("Containerfile.multistage").is_file());
    let r = runs(&v);
    for cmd in [
        "helm package charts/sluice",
        "sha256sum",
        "cargo build --release --locked",
        "scripts/image.sh --print-ref",
    ] {
        assert!(r.contains(cmd), "{cmd} in release runs");
    }
    let arches: Vec<&str> = v["jobs"]["binaries"]["strategy"]["matrix"]["include"]
        .as_array()
        .expect("binaries matrix")
        .iter()
        .filter_map(|m| m["arch"].as_str())
        .collect();
    assert_eq!(arches, ["x86_64", "aarch64"]);
}

#[test]
fn a_broken_workflow_is_caught() {
    let bad: Value = serde_saphyr::from_str(
        "name: x\non: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n      - uses: actions/checkout@v4\n        run: echo both\n",
    )
    .expect("yaml");
    assert!(std::panic::catch_unwind(|| check_shape("inline", &bad)).is_err());
    let unknown_need: Value = serde_saphyr::from_str(
        "name: x\non: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    needs: b\n    steps:\n      - run: echo\n",
    )
    .expect("yaml");
    assert!(std::panic::catch_unwind(|| check_shape("inline", &unknown_need)).is_err());
}
