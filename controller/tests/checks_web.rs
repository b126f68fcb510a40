//! Web metrics end to end: a Rollout's analysis with a `web` metric, run by the product's
//! `analysis_bridge::run_analysis` against a local HTTP server on 127.0.0.1 (started and stopped
//! by each test): the value is read and judged, a template reaches the server, bad answers and
//! an unreachable or slow server give Error verdicts with reasons.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::Router;
use chrono::{TimeZone, Utc};
use sluice_analysis::{FakeMetricsSource, Provider};
use sluice_controller::analysis_bridge::{run_analysis, RunInput, StepVars};
use sluice_controller::core::{AnalysisRun, VerdictKind};
use sluice_crds::{AnalysisSpec, RolloutStatus};

#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<String>>>);

async fn serve(app: Router) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.ok();
    });
    (format!("http://{addr}"), task)
}

fn spec(yaml: &str) -> AnalysisSpec {
    serde_saphyr::from_str(yaml).expect("analysis spec")
}

async fn run(spec: &AnalysisSpec) -> AnalysisRun {
    sluice_tests::init_tls();
    let vars = StepVars {
        namespace: "shop".into(),
        name: "checkout".into(),
        primary: "checkout-primary".into(),
        canary: "checkout-canary".into(),
        interval: "30s".into(),
        ..StepVars::default()
    };
    let status = RolloutStatus::default();
    let fake = FakeMetricsSource::new();
    run_analysis(
        RunInput {
            spec,
            templates: &[],
            status: &status,
            vars: &vars,
            provider: Provider::NginxMtail,
            revision: "v2",
            now: Utc.with_ymd_and_hms(2026, 12, 3, 12, 0, 0).unwrap(),
        },
        &fake,
    )
    .await
}

fn metric_spec(url: &str, extra: &str, threshold: &str) -> AnalysisSpec {
    spec(&format!(
        "metrics:\n  - name: score\n    threshold: {threshold}\n    web: {{url: '{url}', jsonPointer: /result/score{extra}}}\n"
    ))
}

#[tokio::test]
async fn a_web_metric_reads_and_judges_the_value_the_server_answers() {
    let seen = Seen::default();
    let app = Router::new()
        .route(
            "/score/{svc}",
            post(
                |State(seen): State<Seen>,
                 axum::extract::Path(svc): axum::extract::Path<String>,
                 headers: HeaderMap,
                 body: String| async move {
                    let tenant = headers
                        .get("x-tenant")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_string();
                    seen.0
                        .lock()
                        .unwrap()
                        .push(format!("{svc} {tenant} {body}"));
                    r#"{"result": {"score": "0.97"}}"#
                },
            ),
        )
        .with_state(seen.clone());
    let (base, server) = serve(app).await;

    let extra =
        ", method: POST, body: '{\"rollout\": \"{{name}}\"}', headers: {X-Tenant: '{{namespace}}'}";
    let pass = run(&metric_spec(
        &format!("{base}/score/{{{{canary}}}}"),
        extra,
        "{min: 0.9}",
    ))
    .await;
    let m = &pass.metrics[0];
    assert_eq!(
        (m.verdict, m.value),
        (VerdictKind::Pass, Some(0.97)),
        "{}",
        m.reason
    );
    assert_eq!(
        seen.0.lock().unwrap().as_slice(),
        [r#"checkout-canary shop {"rollout": "checkout"}"#]
    );

    let fail = run(&metric_spec(
        &format!("{base}/score/x"),
        extra,
        "{min: 0.99}",
    ))
    .await;
    let m = &fail.metrics[0];
    assert_eq!(m.verdict, VerdictKind::Fail);
    assert!(
        m.reason.contains("0.97 is below the minimum 0.99"),
        "{}",
        m.reason
    );
    server.abort();
}

#[tokio::test]
async fn bad_answers_and_dead_or_slow_servers_are_errors_with_reasons() {
    let app = Router::new()
        .route(
            "/down",
            get(|| async { (StatusCode::SERVICE_UNAVAILABLE, "busy") }),
        )
        .route("/html", get(|| async { "<html>hi</html>" }))
        .route("/missing", get(|| async { r#"{"result": {}}"# }))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                r#"{"result": {"score": 1}}"#
            }),
        );
    let (base, server) = serve(app).await;
    let cases = [
        ("/down", "", VerdictKind::Error, "answered HTTP 503"),
        ("/html", "", VerdictKind::Error, "did not answer JSON"),
        (
            "/missing",
            "",
            VerdictKind::Inconclusive,
            "nothing at JSON pointer",
        ),
        (
            "/slow",
            ", timeout: 1s",
            VerdictKind::Error,
            "did not answer within 1 s",
        ),
    ];
    for (path, extra, kind, reason) in cases {
        let r = run(&metric_spec(&format!("{base}{path}"), extra, "{min: 0.5}")).await;
        let m = &r.metrics[0];
        assert_eq!(m.verdict, kind, "{path}: {}", m.reason);
        assert!(m.reason.contains(reason), "{path}: {}", m.reason);
        assert!(
            m.reason.contains(&format!("GET {base}{path}")),
            "{}",
            m.reason
        );
    }
    server.abort();

    // Nothing listens any more: refused, said plainly.
    let r = run(&metric_spec(&format!("{base}/down"), "", "{min: 0.5}")).await;
    let m = &r.metrics[0];
    assert_eq!(m.verdict, VerdictKind::Error);
    assert!(m.reason.contains("failed"), "{}", m.reason);
}
