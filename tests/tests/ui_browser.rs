//! The dashboard in a real headless Chromium (Debian `chromium` + `chromium-driver`) against
//! the real standalone bed (NGINX, mtail, Prometheus, `sluice run`): sign in, watch a rollout
//! move live, abort it with the button and see the weight go to 0; a read-only token sees no
//! command buttons; a wrong token sees nothing. The two screenshots in docs/ come from here:
//! `UPDATE_SCREENSHOTS=1` writes them there (otherwise into the bed's temp dir).

#[path = "browser_support/mod.rs"]
mod browser;
#[path = "e2e_support/mod.rs"]
mod support;

use std::path::PathBuf;
use std::time::Duration;

use browser::Browser;
use support::*;

const READ_TOKEN: &str = "viewer-token";
const WAIT: Duration = Duration::from_secs(60);

fn screenshot_path(bed: &Bed, name: &str) -> PathBuf {
    if std::env::var("UPDATE_SCREENSHOTS").is_ok_and(|v| v == "1") {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../docs")
            .join(name)
    } else {
        bed.dir.path().join(name)
    }
}

fn save_png(path: &PathBuf, png: &[u8]) {
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000,
        "not a real screenshot ({} bytes)",
        png.len()
    );
    std::fs::write(path, png).unwrap();
}

async fn sign_in(b: &Browser, token: &str) {
    b.wait_until(
        "the login form",
        WAIT,
        "return !document.getElementById('login').hidden",
    )
    .await;
    b.type_into("#token", token).await;
    b.click("#login-form button[type=submit]").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn dashboard_signs_in_follows_a_rollout_live_and_aborts_it() {
    let mut bed = Bed::start(BedOptions {
        steps: "
          - setWeight: 20
          - analysis: {}
          - setWeight: 50
          - pause: {}",
        extra_config: "readToken: viewer-token\n",
        ..BedOptions::default()
    })
    .await;
    bed.ready_for_rollout().await;
    let b = Browser::start(bed.dir.path()).await;
    let ui = format!("{}/ui/", bed.api());

    // A wrong token sees nothing but the login form and an error.
    b.goto(&ui).await;
    sign_in(&b, "not-the-token").await;
    b.wait_until(
        "the login error",
        WAIT,
        "return document.getElementById('login-error').textContent.includes('not accepted')",
    )
    .await;
    let hidden = b
        .eval(
            "return [document.getElementById('list').hidden, document.getElementById('detail').hidden, document.querySelectorAll('#rows tr').length]",
            serde_json::json!([]),
        )
        .await;
    assert_eq!(hidden, serde_json::json!([true, true, 0]));
    assert!(!b.text().await.contains("standalone/web"));

    // The API token: the list, live.
    sign_in(&b, TOKEN).await;
    b.wait_until(
        "the rollout in the list",
        WAIT,
        "const r = document.querySelector('tr[data-rollout=\"standalone/web\"]'); return !!r && r.textContent.includes('Idle')",
    )
    .await;
    // Mark the row's link: live updates must change the row in place, not replace it (a
    // replaced link under the pointer swallows the click).
    b.eval(
        "document.querySelector('tr[data-rollout=\"standalone/web\"] a').dataset.seen = '1'",
        serde_json::json!([]),
    )
    .await;
    // The token never lands in the address bar.
    let url = b.eval("return location.href", serde_json::json!([])).await;
    assert!(!url.to_string().contains(TOKEN), "{url}");
    bed.write_file("v2");
    b.wait_until(
        "the list to show the canary at 20% (live, without reloading)",
        WAIT,
        "const r = document.querySelector('tr[data-rollout=\"standalone/web\"]'); return !!r && r.textContent.includes('20%')",
    )
    .await;
    let kept = b
        .eval(
            "return document.querySelector('tr[data-rollout=\"standalone/web\"] a').dataset.seen === '1'",
            serde_json::json!([]),
        )
        .await;
    assert_eq!(
        kept,
        serde_json::json!(true),
        "the row was replaced by a live update"
    );
    b.wait_until(
        "the list to mark the paused rollout at 50% as needing a person",
        WAIT,
        "const r = document.querySelector('tr[data-rollout=\"standalone/web\"]'); return !!r && r.textContent.includes('50%') && r.textContent.includes('needs you')",
    )
    .await;
    save_png(
        &screenshot_path(&bed, "dashboard-list.png"),
        &b.screenshot().await,
    );

    // One rollout: evidence, conditions, history, buttons.
    b.click("tr[data-rollout=\"standalone/web\"] a").await;
    b.wait_until(
        "the rollout page with its analysis evidence and chart",
        WAIT,
        "return !document.getElementById('detail').hidden && document.getElementById('detail-summary').textContent.includes('50%') && document.getElementById('metric-rows').textContent.includes('success-rate') && !!document.querySelector('#chart polyline.weight')",
    )
    .await;
    let text = b.text().await;
    assert!(text.contains("Pass"), "{text}");
    assert!(text.contains("Paused, waiting for a human"), "{text}");
    b.wait_until(
        "the command buttons",
        WAIT,
        "return !document.getElementById('commands').hidden",
    )
    .await;
    save_png(
        &screenshot_path(&bed, "dashboard-rollout.png"),
        &b.screenshot().await,
    );

    // Abort with the button, a confirmation and a reason.
    b.click("button[data-action=abort]").await;
    b.wait_until(
        "the confirmation dialog",
        WAIT,
        "return document.getElementById('confirm').open",
    )
    .await;
    b.type_into("#reason", "checkout errors in the canary")
        .await;
    b.click("#confirm-ok").await;
    let s = bed
        .wait_state("the abort from the dashboard", WAIT, |s| {
            phase_is(s, "Failed")
        })
        .await;
    assert_eq!(weight(&s), 0, "{s}");
    let reason = s.pointer("/status/abort/reason").and_then(|v| v.as_str());
    assert_eq!(
        reason,
        Some("aborted by api-token: checkout errors in the canary"),
        "{s}"
    );
    assert!(
        bed.upstream_text().contains("down;"),
        "{}",
        bed.upstream_text()
    );
    b.wait_until(
        "the page to show the rollback at 0%",
        WAIT,
        "const t = document.getElementById('detail-summary').textContent; return t.includes('Failed') && t.includes('weight 0%')",
    )
    .await;

    // A read-only token: the same page without any command button.
    b.click("#logout").await;
    sign_in(&b, READ_TOKEN).await;
    b.wait_until(
        "the list for the read-only user",
        WAIT,
        "return !!document.querySelector('tr[data-rollout=\"standalone/web\"]')",
    )
    .await;
    b.click("tr[data-rollout=\"standalone/web\"] a").await;
    b.wait_until(
        "the rollout page for the read-only user",
        WAIT,
        "return document.getElementById('detail-summary').textContent.includes('Failed')",
    )
    .await;
    let visible_buttons = b
        .eval(
            "return [...document.querySelectorAll('#commands button')].filter(b => b.offsetParent !== null).length",
            serde_json::json!([]),
        )
        .await;
    assert_eq!(visible_buttons, serde_json::json!(0));
    assert!(b.text().await.contains("read only"));
    // The token is in neither Sluice's log nor the page's address.
    let log = std::fs::read_dir(bed.dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("sluice-"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect::<String>();
    assert!(!log.contains(READ_TOKEN) && !log.contains(TOKEN), "{log}");
}
