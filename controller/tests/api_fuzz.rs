//! Property test: mangled Alertmanager and command bodies never crash the API, never get a 5xx,
//! and a refused body writes nothing.

mod api_support;

use api_support::*;
use proptest::prelude::*;
use sluice_controller::store::MemoryStore;
use sluice_crds::Phase;

fn valid_payload() -> Vec<u8> {
    am_payload(&[(
        &[
            ("alertname", "CanaryHighErrorRate"),
            ("rollout", "web"),
            ("namespace", "shop"),
        ],
        "firing",
        "bb010712e3c4b2d7",
    )])
    .to_string()
    .into_bytes()
}

/// Truncate at `cut`, then overwrite a few positions with chosen bytes.
fn mangle(mut body: Vec<u8>, cut: usize, edits: &[(usize, u8)]) -> Vec<u8> {
    let len = body.len();
    body.truncate(cut.min(len));
    let len = body.len();
    if len > 0 {
        for (pos, byte) in edits {
            body[pos % len] = *byte;
        }
    }
    body
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn mangled_bodies_are_handled(
        cut in 0usize..2000,
        edits in proptest::collection::vec((0usize..2000, any::<u8>()), 0..4),
        command_route in any::<bool>(),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let store = MemoryStore::new();
        store.insert(rollout("shop", "web", Phase::Progressing, Some("rev2")));
        let st = state(&store);
        let (uri, token, body) = if command_route {
            let b = br#"{"reason":"fuzz","revision":"rev2"}"#.to_vec();
            ("/api/v1/namespaces/shop/rollouts/web/abort", API_TOKEN, mangle(b, cut % 40, &edits))
        } else {
            ("/webhooks/alertmanager", HOOK_TOKEN, mangle(valid_payload(), cut, &edits))
        };
        let r = rt.block_on(call(&st, "POST", uri, Some(token), body));
        prop_assert!(!r.status.is_server_error(), "{} {}", r.status, r.text);
        if !r.status.is_success() {
            prop_assert!(r.status.is_client_error());
            prop_assert!(r.json["error"].is_string(), "{}", r.text);
            prop_assert_eq!(store.writes(), 0);
        }
    }
}
