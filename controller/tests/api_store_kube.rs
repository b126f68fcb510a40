//! `KubeStore` against kube-fake-client: list, get, 404, and the command annotation patch.

mod api_support;

use api_support::rollout;
use kube::core::DeserializeGuard;
use kube_fake_client::ClientBuilder;
use sluice_controller::k8s::guard::GuardedRollout;
use sluice_controller::store::kube::command_patch;
use sluice_controller::store::{command_already_sent, KubeStore, RolloutStore, StoreError};
use sluice_crds::{Command, CommandAction, Phase, Rollout, COMMAND_ANNOTATION};

async fn store() -> KubeStore {
    let mut a = rollout("shop", "web", Phase::Progressing, Some("rev2"));
    a.metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert("keep.me/too".into(), "yes".into());
    let b = rollout("other", "api", Phase::Idle, None);
    let client = ClientBuilder::new()
        .with_resource::<Rollout>()
        .with_status_subresource::<Rollout>()
        .with_object(a)
        .with_object(b)
        .build()
        .await
        .unwrap();
    KubeStore::new(client)
}

fn abort(id: &str) -> Command {
    Command {
        id: id.into(),
        action: CommandAction::Abort,
        by: Some("test".into()),
        reason: Some("because".into()),
        alert_name: None,
        fingerprint: None,
        revision: Some("rev2".into()),
        at: chrono::Utc::now(),
    }
}

#[tokio::test]
async fn list_get_and_not_found() {
    let s = store().await;
    let mut names: Vec<String> = s
        .list()
        .await
        .unwrap()
        .into_iter()
        .filter_map(|r| r.metadata.name)
        .collect();
    names.sort();
    assert_eq!(names, ["api", "web"]);
    let web = s.get("shop", "web").await.unwrap();
    assert_eq!(web.status.unwrap().canary_revision.as_deref(), Some("rev2"));
    assert!(matches!(
        s.get("shop", "ghost").await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        s.command("shop", "ghost", abort("x")).await,
        Err(StoreError::NotFound { .. })
    ));
    let ns_only = s.clone().with_namespace(Some("other".into()));
    assert_eq!(ns_only.list().await.unwrap().len(), 1);
}

#[tokio::test]
async fn command_patches_the_annotation_and_keeps_others() {
    let s = store().await;
    let before = s.get("shop", "web").await.unwrap();
    s.command("shop", "web", abort("cmd-1")).await.unwrap();
    let after = s.get("shop", "web").await.unwrap();
    let ann = after.metadata.annotations.clone().unwrap();
    let cmd = Command::parse(&ann[COMMAND_ANNOTATION]).unwrap();
    assert_eq!(cmd.id, "cmd-1");
    assert_eq!(cmd.action, CommandAction::Abort);
    assert_eq!(ann["keep.me/too"], "yes");
    assert!(command_already_sent(&after, "cmd-1"));
    assert!(!command_already_sent(&after, "cmd-2"));
    // Status is untouched by the metadata patch.
    assert_eq!(after.status, before.status);
    assert_ne!(
        after.metadata.resource_version,
        before.metadata.resource_version
    );
}

#[test]
fn patch_carries_resource_version_for_optimistic_concurrency() {
    let p = command_patch(&abort("a"), Some("42"));
    assert_eq!(p["metadata"]["resourceVersion"], "42");
    let ann = p["metadata"]["annotations"][COMMAND_ANNOTATION]
        .as_str()
        .unwrap();
    assert_eq!(Command::parse(ann).unwrap().id, "a");
    assert!(command_patch(&abort("a"), None)["metadata"]
        .get("resourceVersion")
        .is_none());
}

#[tokio::test]
async fn reads_come_from_a_ready_reflector_cache() {
    use kube::runtime::reflector::store::Writer;
    use kube::runtime::watcher::Event;

    let s = store().await;
    let mut writer: Writer<GuardedRollout> = Writer::default();
    let cached_store = s.clone().with_cache(writer.as_reader());
    // Not ready yet: reads go to the API server.
    assert_eq!(cached_store.list().await.unwrap().len(), 2);
    // Populate the cache with a rollout the API server does not have.
    let only_cached = rollout("cache", "only", Phase::Paused, Some("c1"));
    writer.apply_watcher_event(&Event::Init);
    writer.apply_watcher_event(&Event::InitApply(DeserializeGuard(Ok(only_cached))));
    writer.apply_watcher_event(&Event::InitDone);
    let listed = cached_store.list().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].metadata.name.as_deref(), Some("only"));
    assert_eq!(
        cached_store
            .get("cache", "only")
            .await
            .unwrap()
            .status
            .unwrap()
            .phase,
        Phase::Paused
    );
    // A cache miss falls back to the API server.
    assert!(cached_store.get("shop", "web").await.is_ok());
}
