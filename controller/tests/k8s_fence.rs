//! Fencing by the Lease's own times against kube-fake-client: the elector (kube-lease-manager)
//! keeps saying "leader" when renewals fail, but the fenced signal turns false once the Lease
//! shows no renewal recent enough, and true again after one.

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, Patch, PatchParams};
use kube_fake_client::ClientBuilder;
use serde_json::json;
use sluice_controller::clock::{Clock, ManualClock};
use sluice_controller::k8s::fence::{fenced, POLL};
use tokio::sync::watch;

fn micro(t: chrono::DateTime<Utc>) -> MicroTime {
    MicroTime(k8s_openapi::jiff::Timestamp::from_millisecond(t.timestamp_millis()).unwrap())
}

async fn settle() {
    tokio::time::sleep(POLL * 2).await;
}

#[tokio::test(start_paused = true)]
async fn leadership_ends_when_the_lease_could_have_been_taken_over() {
    let t0 = Utc.with_ymd_and_hms(2026, 11, 25, 10, 0, 0).unwrap();
    let clock = Arc::new(ManualClock::new(t0));
    let lease = Lease {
        metadata: ObjectMeta {
            name: Some("sluice-controller".into()),
            namespace: Some("sluice".into()),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some("pod-a".into()),
            renew_time: Some(micro(t0)),
            lease_duration_seconds: Some(15),
            ..LeaseSpec::default()
        }),
    };
    let client = ClientBuilder::new()
        .with_object(lease)
        .build()
        .await
        .unwrap();
    let api: Api<Lease> = Api::namespaced(client.clone(), "sluice");
    let (elected_tx, elected) = watch::channel(true);
    let leading = fenced(
        api.clone(),
        "sluice-controller".into(),
        "pod-a".into(),
        elected,
        clock.clone(),
    );
    settle().await;
    assert!(*leading.borrow(), "renewed just now: leading");

    // Renewals fail (the elector still says leader): 13 s later the Lease could be taken over
    // within the margin, so this replica stops.
    clock.advance(chrono::Duration::seconds(13));
    settle().await;
    assert!(*elected_tx.borrow(), "the elector still claims leadership");
    assert!(!*leading.borrow(), "still acting on an expiring Lease");

    // A renewal: acting again.
    let renew = json!({"spec": {"renewTime": micro(clock.now())}});
    api.patch(
        "sluice-controller",
        &PatchParams::default(),
        &Patch::Merge(&renew),
    )
    .await
    .unwrap();
    settle().await;
    assert!(*leading.borrow());

    // Someone else holds the Lease: not leading, whatever the elector says.
    let other = json!({"spec": {"holderIdentity": "pod-b"}});
    api.patch(
        "sluice-controller",
        &PatchParams::default(),
        &Patch::Merge(&other),
    )
    .await
    .unwrap();
    settle().await;
    assert!(!*leading.borrow());

    // The elector reports the loss itself: false at once.
    let renew = json!({"spec": {"holderIdentity": "pod-a", "renewTime": micro(clock.now())}});
    api.patch(
        "sluice-controller",
        &PatchParams::default(),
        &Patch::Merge(&renew),
    )
    .await
    .unwrap();
    settle().await;
    assert!(*leading.borrow());
    elected_tx.send(false).unwrap();
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert!(!*leading.borrow());
}
