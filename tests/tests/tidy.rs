//! Tidy checks run inside `cargo test`: module docs, file size, and the purity of the core.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

fn sources(rel: &[&str]) -> Vec<(PathBuf, String)> {
    let mut files = Vec::new();
    for r in rel {
        rust_files(&root().join(r), &mut files);
    }
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap_or_default();
            (p, text)
        })
        .collect()
}

const SRC_DIRS: &[&str] = &[
    "crds/src",
    "analysis/src",
    "controller/src",
    "tests/src",
    "examples/demo-app/src",
];

#[test]
fn every_module_starts_with_a_doc_comment() {
    let bad: Vec<_> = sources(SRC_DIRS)
        .into_iter()
        .filter(|(_, t)| !t.trim_start().starts_with("//!"))
        .map(|(p, _)| p.display().to_string())
        .collect();
    assert!(bad.is_empty(), "modules without a //! doc line: {bad:#?}");
}

#[test]
fn no_source_file_is_over_600_lines() {
    let big: Vec<_> = sources(SRC_DIRS)
        .into_iter()
        .filter(|(_, t)| t.lines().count() > 600)
        .map(|(p, t)| format!("{} ({} lines)", p.display(), t.lines().count()))
        .collect();
    assert!(big.is_empty(), "split these files: {big:#?}");
}

#[test]
fn the_state_machine_core_does_no_io_and_reads_no_clock() {
    let forbidden = [
        "kube::",
        "use kube",
        "tokio::",
        "use tokio",
        "reqwest::",
        "use reqwest",
        "axum::",
        "use axum",
        "std::fs",
        "std::net",
        "Utc::now",
        "SystemTime::now",
        "Instant::now",
    ];
    let mut bad = Vec::new();
    for (p, t) in sources(&["controller/src/core"]) {
        for f in forbidden {
            if t.contains(f) {
                bad.push(format!("{} uses {f}", p.display()));
            }
        }
    }
    assert!(bad.is_empty(), "impure core: {bad:#?}");
}

#[test]
fn the_analysis_crate_knows_nothing_of_kubernetes() {
    let bad: Vec<_> = sources(&["analysis/src"])
        .into_iter()
        .filter(|(_, t)| {
            t.contains("kube::") || t.contains("use kube") || t.contains("k8s_openapi")
        })
        .map(|(p, _)| p.display().to_string())
        .collect();
    assert!(bad.is_empty(), "analysis must not import kube: {bad:#?}");
    let manifest = std::fs::read_to_string(root().join("analysis/Cargo.toml")).unwrap_or_default();
    assert!(
        !manifest.lines().any(|l| l.trim_start().starts_with("kube")),
        "analysis/Cargo.toml depends on kube"
    );
}

#[test]
fn only_the_clock_module_reads_the_wall_clock_in_the_simulator() {
    let bad: Vec<_> = sources(&["controller/src/sim"])
        .into_iter()
        .filter(|(_, t)| t.contains("Utc::now") || t.contains("SystemTime::now"))
        .map(|(p, _)| p.display().to_string())
        .collect();
    assert!(bad.is_empty(), "simulator reads the wall clock: {bad:#?}");
}
