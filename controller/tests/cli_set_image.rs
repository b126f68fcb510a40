//! `set-image` against kube-fake-client: patches the rollout's target Deployment and reports the
//! revision Sluice will roll out; an unknown container is refused.

mod api_support;

use api_support::rollout;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{Container, PodSpec, PodTemplateSpec};
use kube::api::Api;
use kube_fake_client::ClientBuilder;
use sluice_controller::cli::target::{set_image_patch, Target};
use sluice_controller::store::KubeStore;
use sluice_crds::{Phase, Rollout};

fn deployment() -> Deployment {
    Deployment {
        metadata: kube::api::ObjectMeta {
            name: Some("web".into()),
            namespace: Some("shop".into()),
            ..Default::default()
        },
        spec: Some(DeploymentSpec {
            template: PodTemplateSpec {
                spec: Some(PodSpec {
                    containers: vec![Container {
                        name: "app".into(),
                        image: Some("img:1".into()),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[tokio::test]
async fn set_image_patches_the_target_and_reports_the_revision() {
    let client = ClientBuilder::new()
        .with_resource::<Rollout>()
        .with_resource::<Deployment>()
        .with_object(rollout("shop", "web", Phase::Idle, None))
        .with_object(deployment())
        .build()
        .await
        .unwrap();
    let target = Target::Kube {
        store: KubeStore::new(client.clone()),
        namespace: "shop".into(),
    };
    let (name, revision) = target.set_image("web", "app", "img:2").await.unwrap();
    assert_eq!(name, "web");
    let d = Api::<Deployment>::namespaced(client, "shop")
        .get("web")
        .await
        .unwrap();
    let image = d
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers[0]
        .image
        .clone();
    assert_eq!(image.as_deref(), Some("img:2"));
    assert_eq!(
        revision,
        sluice_controller::k8s::objects::template_revision(&d)
    );
    assert!(revision.is_some());

    let err = target.set_image("web", "sidecar", "x:1").await.unwrap_err();
    assert!(
        format!("{err:#}").contains("no container \"sidecar\""),
        "{err:#}"
    );
    assert!(target.set_image("ghost", "app", "x:1").await.is_err());
    assert_eq!(
        set_image_patch("app", "i:3")["spec"]["template"]["spec"]["containers"][0]["name"],
        "app"
    );
}

/// Right after `set image`, before the controller saw the new template: the rollout is Idle on
/// the old revision. The old `wait` said "promoted: nothing to roll out" here.
#[tokio::test]
async fn wait_after_set_image_waits_for_the_new_template_not_the_old_stable() {
    use sluice_controller::api::{WaitFor, WaitOutcome, WaitTracker};
    let client = ClientBuilder::new()
        .with_resource::<Rollout>()
        .with_resource::<Deployment>()
        .with_object(rollout("shop", "web", Phase::Idle, None))
        .with_object(deployment())
        .build()
        .await
        .unwrap();
    let target = Target::Kube {
        store: KubeStore::new(client.clone()),
        namespace: "shop".into(),
    };
    let (_, revision) = target.set_image("web", "app", "img:2").await.unwrap();
    let view = target.get("web").await.unwrap();
    assert_eq!(
        view.desired_revision, revision,
        "the CLI reads the target's template hash"
    );
    assert_ne!(view.stable_revision, revision);
    let now = chrono::Utc::now();
    let mut t = WaitTracker::new(WaitFor::Promoted, None);
    assert_eq!(
        t.observe(&view, now),
        None,
        "keep waiting for the new revision"
    );
    let r = t.timeout(Some(&view));
    assert_eq!(r.outcome, WaitOutcome::Timeout);
    assert_eq!(r.revision, revision);
}
