//! End to end, standalone mode, the cases where a new revision cannot roll out (issue 13):
//! NGINX refuses the config, an edit of the rollouts file is rejected, the canary is down.
//! `sluice wait` must never say "promoted" for them, and status, the API and `sluice status`
//! say why.

#[path = "e2e_support/mod.rs"]
mod support;

use std::time::Duration;

use support::*;

const TIMEOUT: Duration = Duration::from_secs(60);

fn sluice(args: &[&str]) -> std::process::Output {
    sluice_tests::run_sluice(args).unwrap()
}

fn text(o: &std::process::Output) -> String {
    sluice_tests::output_text(o)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_revision_nginx_refuses_is_blocked_not_promoted() {
    let mut bed = Bed::start(BedOptions {
        steps: "
          - setWeight: 20
          - pause: { duration: 1s }",
        analysis: "",
        ..BedOptions::default()
    })
    .await;
    bed.start_sluice().await;
    bed.wait_state("initialization", TIMEOUT, |s| phase_is(s, "Idle"))
        .await;
    let conf = bed.nginx.conf_path();
    let good = std::fs::read_to_string(&conf).unwrap();
    std::fs::write(&conf, format!("{good}\nthis_is_not_a_directive on;\n")).unwrap();
    bed.write_file("v2");
    let api = bed.api().trim_start_matches("http://").to_string();
    // Host:port without a scheme and no -n: the CLI finds the standalone namespace itself.
    let o = sluice(&[
        "wait",
        "web",
        "--server",
        &api,
        "--token",
        TOKEN,
        "--blocked-after",
        "2s",
        "--timeout",
        "60s",
    ]);
    // The old wait printed "promoted: nothing to roll out; stable revision v1" and exited 0.
    assert_eq!(
        o.status.code(),
        Some(6),
        "{}\n{}",
        text(&o),
        bed.sluice_log()
    );
    assert!(
        text(&o).starts_with("blocked: revision v2 cannot be rolled out"),
        "{}",
        text(&o)
    );
    let view = bed
        .api_get("/api/v1/namespaces/standalone/rollouts/web")
        .await;
    assert_eq!(view["blocked"]["reason"], "Blocked", "{view}");
    assert_eq!(view["desiredRevision"], "v2", "{view}");
    let o = sluice(&["status", "--server", &api, "--token", TOKEN]);
    assert!(text(&o).contains("Blocked: router:"), "{}", text(&o));
    // Fixed config: the block clears and v2 is promoted; the same wait now says so.
    std::fs::write(&conf, good).unwrap();
    let o = sluice(&[
        "wait",
        "web",
        "--server",
        &api,
        "--token",
        TOKEN,
        "--timeout",
        "60s",
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}\n{}",
        text(&o),
        bed.sluice_log()
    );
    let s = bed.state().unwrap();
    let ready = s
        .pointer("/status/conditions")
        .and_then(|c| c.as_array())
        .and_then(|c| c.iter().find(|c| c["type"] == "Ready"))
        .cloned()
        .unwrap_or_default();
    assert_ne!(ready["reason"], "Blocked", "{s}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rejected_file_edit_and_a_down_canary_are_visible() {
    let mut bed = Bed::start(BedOptions {
        steps: "
          - setWeight: 20
          - pause: { duration: 1s }",
        analysis: "",
        ..BedOptions::default()
    })
    .await;
    bed.start_sluice().await;
    bed.wait_state("initialization", TIMEOUT, |s| phase_is(s, "Idle"))
        .await;
    // A bad edit (v3 with weight 150): the last good file stays in force, and the API says so.
    let good = std::fs::read_to_string(bed.file()).unwrap();
    let bad = good
        .replace("setWeight: 20", "setWeight: 150")
        .replace("version: v1 }\n    router", "version: v3 }\n    router");
    assert_ne!(bad.matches("v3").count(), 0, "{bad}");
    std::fs::write(bed.file(), bad).unwrap();
    let t0 = std::time::Instant::now();
    let view = loop {
        let v = bed
            .api_get("/api/v1/namespaces/standalone/rollouts/web")
            .await;
        if v["blocked"]["reason"] == "InvalidSpec" || t0.elapsed() > TIMEOUT {
            break v;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(view["blocked"]["reason"], "InvalidSpec", "{view}");
    let msg = view["blocked"]["message"].as_str().unwrap_or_default();
    assert!(msg.contains("rollouts file rejected"), "{msg}");
    let o = sluice(&[
        "wait",
        "web",
        "--server",
        &bed.api(),
        "--token",
        TOKEN,
        "--timeout",
        "20s",
    ]);
    assert_eq!(o.status.code(), Some(6), "{}", text(&o));
    // A down canary: the message names its address and the error.
    let canary = bed.canary.addr();
    bed.canary.kill();
    bed.write_file("v2");
    let s = bed
        .wait_state("a canary readiness message", TIMEOUT, |s| {
            s.pointer("/status/message")
                .and_then(|m| m.as_str())
                .is_some_and(|m| m.contains("cannot connect"))
        })
        .await;
    let m = s["status"]["message"].as_str().unwrap_or_default();
    assert!(m.contains("waiting for canary v2 to be ready"), "{m}");
    assert!(m.contains(&canary), "{m}");
}
