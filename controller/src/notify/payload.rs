//! The body each sink kind receives. Pure.
//!
//! - webhook: `{"type": "rollout.KIND", "timestamp", "data": Notification}`, the envelope the
//!   Standard Webhooks spec recommends (`spec/standard-webhooks.md`, "Payload structure").
//! - slack: an incoming-webhook message, `text` (the fallback shown in notifications) plus
//!   Block Kit `blocks` (a `section` with `mrkdwn` text and a `context` line); Slack treats
//!   `&`, `<`, `>` as markup, so they are escaped (docs.slack.dev, "Sending messages using
//!   incoming webhooks" and "Formatting text for app surfaces").
//! - teams: the Workflows webhook's message, `{"type": "message", "attachments": [{"contentType":
//!   "application/vnd.microsoft.card.adaptive", "contentUrl": null, "content": AdaptiveCard}]}`
//!   (learn.microsoft.com/microsoftteams/platform/webhooks-and-connectors/how-to/connectors-using:
//!   Workflows take Adaptive Cards only, not the old connectors' MessageCard).

use serde_json::{json, Value};

use super::event::Notification;
use super::sink::SinkKind;
use super::transition::TransitionKind;

/// The body for `kind`.
pub fn body(kind: SinkKind, n: &Notification) -> Value {
    match kind {
        SinkKind::Webhook => webhook(n),
        SinkKind::Slack => slack(n),
        SinkKind::Teams => teams(n),
    }
}

fn webhook(n: &Notification) -> Value {
    json!({
        "type": format!("rollout.{}", n.kind.as_str()),
        "timestamp": n.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "data": n,
    })
}

/// `web (shop): rollout of v2 started`.
fn title(n: &Notification) -> String {
    format!("{}/{}: {}", n.namespace, n.rollout, n.message)
}

/// The facts every format shows, as (label, value) pairs with plain values.
fn facts(n: &Notification) -> Vec<(&'static str, String)> {
    let mut out = vec![
        ("Phase", n.phase.as_str().to_string()),
        ("Canary weight", format!("{}%", n.canary_weight)),
        ("Step", (n.step + 1).to_string()),
    ];
    if let Some(r) = &n.canary_revision {
        out.push(("Canary", r.clone()));
    }
    if let Some(r) = &n.stable_revision {
        out.push(("Stable", r.clone()));
    }
    for m in &n.failed_metrics {
        let value = m
            .value
            .map(crate::cli::format::number)
            .unwrap_or_else(|| "no value".to_string());
        out.push(("Failed metric", format!("{} = {value}", m.name)));
    }
    out
}

fn emoji(kind: TransitionKind) -> &'static str {
    match kind {
        TransitionKind::Started | TransitionKind::Step => ":arrow_forward:",
        TransitionKind::Paused => ":double_vertical_bar:",
        TransitionKind::Promoted => ":white_check_mark:",
        TransitionKind::AnalysisFailed | TransitionKind::RolledBack | TransitionKind::Reverted => {
            ":rotating_light:"
        }
    }
}

/// A section's `text` is at most 3000 characters (api.slack.com/reference/block-kit/blocks
/// #section; longer is refused with HTTP 400): long abort reasons are cut below that.
const SLACK_SECTION_MAX: usize = 2900;

/// At most `max` characters, with `…` when cut.
fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn slack(n: &Notification) -> Value {
    let name = slack_escape(&format!("{}/{}", n.namespace, n.rollout));
    let head = match &n.dashboard_url {
        // `<url|text>` is Slack's link syntax; the URL is ours, the text escaped.
        Some(u) => format!("<{}|{name}>", slack_escape(u)),
        None => format!("*{name}*"),
    };
    let context = facts(n)
        .into_iter()
        .map(|(k, v)| format!("{k}: {}", slack_escape(&v)))
        .collect::<Vec<_>>()
        .join(" · ");
    json!({
        "text": title(n),
        "blocks": [
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": cut(
                        &format!("{} {head}: {}", emoji(n.kind), slack_escape(&n.message)),
                        SLACK_SECTION_MAX,
                    ),
                },
            },
            {
                "type": "context",
                "elements": [{ "type": "mrkdwn", "text": cut(&context, SLACK_SECTION_MAX) }],
            },
        ],
    })
}

fn teams(n: &Notification) -> Value {
    let facts: Vec<Value> = facts(n)
        .into_iter()
        .map(|(k, v)| json!({ "title": k, "value": v }))
        .collect();
    let mut card = json!({
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            {
                "type": "TextBlock",
                "text": format!("{}/{}", n.namespace, n.rollout),
                "weight": "Bolder",
                "size": "Medium",
                "wrap": true,
            },
            { "type": "TextBlock", "text": n.message, "wrap": true },
            { "type": "FactSet", "facts": facts },
        ],
    });
    if let (Some(u), Some(obj)) = (&n.dashboard_url, card.as_object_mut()) {
        obj.insert(
            "actions".into(),
            json!([{ "type": "Action.OpenUrl", "title": "Open in Sluice", "url": u }]),
        );
    }
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": card,
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::event::FailedMetric;
    use chrono::{TimeZone, Utc};
    use sluice_crds::Phase;

    fn note() -> Notification {
        Notification {
            id: "sluice_1".into(),
            key: "v2/analysisFailed/1".into(),
            kind: TransitionKind::AnalysisFailed,
            namespace: "shop".into(),
            rollout: "web".into(),
            phase: Phase::RollingBack,
            canary_weight: 20,
            step: 1,
            stable_revision: Some("v1".into()),
            canary_revision: Some("v2".into()),
            message: "analysis failed: error-rate 0.12 > 0.05 <b>".into(),
            failed_metrics: vec![FailedMetric {
                name: "error-rate".into(),
                value: Some(0.1234),
                reason: None,
            }],
            dashboard_url: Some("https://s.example/ui/#/shop/web".into()),
            at: Utc.with_ymd_and_hms(2026, 12, 4, 3, 0, 0).unwrap(),
        }
    }

    #[test]
    fn webhook_envelope() {
        let b = body(SinkKind::Webhook, &note());
        assert_eq!(b["type"], "rollout.analysisFailed");
        assert_eq!(b["timestamp"], "2026-12-04T03:00:00Z");
        assert_eq!(b["data"]["rollout"], "web");
        assert_eq!(b["data"]["namespace"], "shop");
        assert_eq!(b["data"]["canaryWeight"], 20);
        assert_eq!(b["data"]["failedMetrics"][0]["value"], 0.1234);
        assert_eq!(b["data"]["dashboardUrl"], "https://s.example/ui/#/shop/web");
    }

    #[test]
    fn slack_text_blocks_and_escaping() {
        let b = body(SinkKind::Slack, &note());
        assert!(b["text"]
            .as_str()
            .unwrap()
            .starts_with("shop/web: analysis failed"));
        let section = b["blocks"][0]["text"]["text"].as_str().unwrap();
        assert!(
            section.contains("<https://s.example/ui/#/shop/web|shop/web>"),
            "{section}"
        );
        assert!(section.contains("&lt;b&gt;"), "{section}");
        assert_eq!(b["blocks"][0]["text"]["type"], "mrkdwn");
        let ctx = b["blocks"][1]["elements"][0]["text"].as_str().unwrap();
        assert!(ctx.contains("Canary weight: 20%"), "{ctx}");
        assert!(ctx.contains("Step: 2"), "{ctx}");
        assert!(ctx.contains("Failed metric: error-rate = 0.1234"), "{ctx}");
    }

    #[test]
    fn long_messages_fit_slack_limits() {
        let mut n = note();
        n.message = "x".repeat(10_000);
        let b = body(SinkKind::Slack, &n);
        let section = b["blocks"][0]["text"]["text"].as_str().unwrap();
        assert_eq!(section.chars().count(), SLACK_SECTION_MAX);
        assert!(section.ends_with('…'));
        // The webhook keeps the whole message.
        assert_eq!(
            body(SinkKind::Webhook, &n)["data"]["message"]
                .as_str()
                .unwrap()
                .len(),
            10_000
        );
    }

    #[test]
    fn teams_adaptive_card() {
        let b = body(SinkKind::Teams, &note());
        assert_eq!(b["type"], "message");
        let a = &b["attachments"][0];
        assert_eq!(a["contentType"], "application/vnd.microsoft.card.adaptive");
        assert!(a["contentUrl"].is_null());
        assert_eq!(a["content"]["type"], "AdaptiveCard");
        assert_eq!(a["content"]["body"][1]["text"], note().message);
        assert_eq!(
            a["content"]["actions"][0]["url"],
            "https://s.example/ui/#/shop/web"
        );
        let mut n = note();
        n.dashboard_url = None;
        assert!(body(SinkKind::Teams, &n)["attachments"][0]["content"]
            .get("actions")
            .is_none());
    }
}
