//! `sluice run --check -f FILE`: everything a start would trip over, listed at once — the file
//! (strict fields, built-in names, validation), each rollout's Prometheus (a query of
//! `vector(1)`), its NGINX (`nginx -t`, and `nginx -T` showing the upstream file is really
//! included) or the Traefik file's directory, and that each notification sink's secrets can
//! be read.

use std::path::Path;

use super::config::{RolloutConfig, StandaloneConfig};
use crate::router::nginx_file::{NginxControl, NginxFileRouter};

/// What the check found: lines that passed and problems.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct CheckReport {
    pub ok: Vec<String>,
    pub problems: Vec<String>,
}

impl CheckReport {
    fn result(&mut self, what: String, r: Result<(), String>) {
        match r {
            Ok(()) => self.ok.push(what),
            Err(e) => self.problems.push(format!("{what}: {e}")),
        }
    }

    /// The report as printed: `ok:` lines, then `problem:` lines.
    pub fn text(&self) -> String {
        let mut s = String::new();
        for o in &self.ok {
            s.push_str(&format!("ok: {o}\n"));
        }
        for p in &self.problems {
            s.push_str(&format!("problem: {p}\n"));
        }
        s
    }
}

async fn check_prometheus(cfg: &RolloutConfig, default: Option<&str>) -> Result<(), String> {
    let metrics = super::run::build_metrics(cfg, default).map_err(|e| format!("{e:#}"))?;
    metrics
        .query("vector(1)", None)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

async fn check_router(cfg: &RolloutConfig, report: &mut CheckReport) {
    let name = &cfg.name;
    if let Some(n) = &cfg.router.nginx {
        let cli = crate::router::nginx_file::NginxCli::from_spec(n);
        let tested = cli.test().await;
        let passed = tested.is_ok();
        report.result(
            format!("rollout {name}: nginx -t -c {}", n.conf.display()),
            tested,
        );
        if !passed {
            return;
        }
        let included =
            match NginxFileRouter::new(n.clone(), &cfg.stable.address, &cfg.canary.address) {
                Ok(r) => r.check_included().await.map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
        report.result(
            format!(
                "rollout {name}: nginx -T includes {}",
                n.upstream_file.display()
            ),
            included,
        );
    }
    if let Some(t) = &cfg.router.traefik {
        let dir = t.file.parent().unwrap_or(Path::new("/"));
        let r = if dir.is_dir() {
            Ok(())
        } else {
            Err(format!("directory {} does not exist", dir.display()))
        };
        report.result(
            format!("rollout {name}: Traefik file directory {}", dir.display()),
            r,
        );
    }
}

/// Check the file at `path` and everything it points to.
pub async fn check(path: &Path) -> CheckReport {
    let mut report = CheckReport::default();
    let cfg = match StandaloneConfig::load(path) {
        Ok(c) => c,
        Err(e) => {
            report.problems.push(e.to_string());
            return report;
        }
    };
    report.ok.push(format!(
        "{} is valid ({} rollout{})",
        path.display(),
        cfg.rollouts.len(),
        if cfg.rollouts.len() == 1 { "" } else { "s" }
    ));
    for r in &cfg.rollouts {
        if r.analysis.as_ref().is_some_and(|a| !a.metrics.is_empty()) || !cfg.templates.is_empty() {
            let where_ = r
                .analysis
                .as_ref()
                .and_then(|a| a.prometheus.as_ref())
                .map(|p| p.address.clone())
                .or_else(|| cfg.prometheus.clone())
                .unwrap_or_else(|| "(none configured)".to_string());
            report.result(
                format!("rollout {}: Prometheus {where_} answers", r.name),
                check_prometheus(r, cfg.prometheus.as_deref()).await,
            );
        }
        check_router(r, &mut report).await;
        // Secrets readable and the sink buildable; nothing is sent (a check must not post to
        // a team's channel).
        let base = super::config::base_dir(path);
        for sink in cfg.notifications.sinks.iter().chain(&r.notifications) {
            report.result(
                format!("rollout {}: notification sink {}", r.name, sink.name),
                sink.resolve(&base).map(|_| ()),
            );
        }
    }
    report
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn unreadable_sink_secrets_are_listed() {
        let example = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../examples/standalone/rollouts.yaml");
        let text = std::fs::read_to_string(example).unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("hook-url"), "http://127.0.0.1:9/h\n").unwrap();
        let sinks = "notifications:\n  sinks:\n    - { name: good, kind: webhook, urlFile: hook-url }\n    - { name: gone, kind: slack, urlFile: missing }\n";
        let file = dir.path().join("rollouts.yaml");
        std::fs::write(&file, format!("{sinks}{text}")).unwrap();
        let report = super::check(&file).await;
        assert!(
            report
                .ok
                .iter()
                .any(|l| l == "rollout web: notification sink good"),
            "{report:?}"
        );
        let gone: Vec<_> = report
            .problems
            .iter()
            .filter(|p| p.contains("notification sink gone"))
            .collect();
        assert_eq!(gone.len(), 1, "{report:?}");
        assert!(gone[0].contains("cannot read URL file"), "{gone:?}");
    }
}
