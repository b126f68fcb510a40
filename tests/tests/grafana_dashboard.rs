//! examples/grafana/sluice-dashboard.json: every metric name its queries use is one Sluice
//! really exports (scraped from `/metrics` of a running API server after the product's own
//! telemetry recorded one of everything) or a traffic series Sluice's own built-in analysis
//! queries read (`sluice_analysis::error_counter` / `latency_histogram`).

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::Value;
use sluice_analysis::{error_counter, latency_histogram, Provider};
use sluice_controller::api::{self, ApiState, AuthConfig};
use sluice_controller::store::memory::MemoryStore;
use sluice_controller::telemetry::Telemetry;

/// Metric names in a PromQL expression: after dropping quoted strings, `{...}` matchers and
/// `by (...)` / `without (...)` label lists, the identifiers with a `_` that are not calls.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut plain = String::new();
    let (mut quote, mut brace) = (false, false);
    for c in expr.chars() {
        match c {
            '"' if !brace => quote = !quote,
            '{' if !quote => brace = true,
            '}' if !quote => brace = false,
            _ if quote || brace => {}
            _ => plain.push(c),
        }
    }
    for kw in ["by (", "without ("] {
        while let Some(p) = plain.find(kw) {
            let close = plain[p..].find(')').map_or(plain.len(), |q| p + q + 1);
            plain.replace_range(p..close, " ");
        }
    }
    let mut out = BTreeSet::new();
    let mut rest = plain.as_str();
    while let Some(start) = rest.find(|c: char| c.is_ascii_alphabetic() || c == '_') {
        let tail = &rest[start..];
        let len = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(tail.len());
        let word = &tail[..len];
        let call = tail[len..].trim_start().starts_with('(');
        if word.contains('_') && !call {
            out.insert(word.to_string());
        }
        rest = &tail[len..];
    }
    out
}

#[tokio::test]
async fn every_dashboard_query_uses_metrics_sluice_exports() {
    // One of everything, recorded through the product's telemetry.
    let telemetry = Telemetry::new();
    let status = sluice_crds::RolloutStatus {
        canary_weight: 20,
        ..Default::default()
    };
    telemetry.record_status("shop", "web", &status);
    telemetry.record_reconcile(0.01, true);
    telemetry.record_reconcile(0.02, false);
    telemetry.record_verdict(
        "shop",
        "web",
        "errors",
        sluice_controller::core::model::VerdictKind::Pass,
    );
    telemetry.record_webhook("aborted");
    telemetry.record_command("abort", "api");
    telemetry.record_notification("ops", "delivered");
    telemetry.record_notification_drop("queue_full");
    let state = ApiState::new(
        Arc::new(MemoryStore::new()),
        telemetry,
        AuthConfig::default(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(api::serve_on(state, listener, async {
        let _ = stopped.await;
    }));
    let text = sluice_tests::http_client()
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let _ = stop.send(());
    let _ = server.await;
    let exported: BTreeSet<String> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split(['{', ' ']).next().map(str::to_string))
        .collect();
    assert!(exported.contains("sluice_rollout_canary_weight"), "{text}");

    let mut traffic = BTreeSet::new();
    for p in [
        Provider::NginxIngress,
        Provider::Traefik,
        Provider::NginxMtail,
    ] {
        traffic.insert(error_counter(p).metric);
        traffic.insert(latency_histogram(p).metric);
    }

    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/grafana/sluice-dashboard.json"
    );
    let dash: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut exprs: Vec<String> = Vec::new();
    for p in dash["panels"].as_array().expect("panels") {
        let targets = p["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "panel without query: {}", p["title"]);
        exprs.extend(
            targets
                .iter()
                .map(|t| t["expr"].as_str().expect("expr").to_string()),
        );
    }
    for v in dash["templating"]["list"].as_array().expect("templating") {
        if let Some(q) = v["query"].as_str().filter(|q| q.contains('(')) {
            exprs.push(q.to_string());
        }
    }
    let mut checked = 0;
    for e in &exprs {
        let names = metric_names(e);
        assert!(!names.is_empty(), "no metric found in {e}");
        for n in names {
            assert!(
                exported.contains(&n) || traffic.contains(&n),
                "{n} (in {e}) is neither exported by Sluice nor read by its built-in queries;\nexported: {exported:?}"
            );
            checked += 1;
        }
    }
    // A name the export lacks is caught (the check can fail).
    assert!(!exported.contains("sluice_rollout_weight"));
    assert!(checked >= 10, "{checked}");
}

#[test]
fn metric_names_finds_names_not_labels_or_functions() {
    let got = metric_names(
        r#"histogram_quantile(0.99, sum by (canary, le) (rate(x_bucket{namespace=~"$namespace",a_b="c_d"}[1m]))) / sum(rate(y_total[5m]))"#,
    );
    assert_eq!(
        got,
        BTreeSet::from(["x_bucket".to_string(), "y_total".to_string()])
    );
}
