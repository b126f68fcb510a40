//! Sends one rollout's load: open loop (a request is due every `1 / rate` seconds whether or
//! not the previous ones were answered), at most `concurrency` in flight (a due request beyond
//! that is skipped and counted), every outcome counted in [`Telemetry`]. Stops when cancelled
//! (in-flight requests are dropped with it) or at `until`.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::plan::LoadPlan;
use crate::telemetry::{LoadOutcome, Telemetry};

/// Most of an answer's body that is read (the rest is dropped with the connection).
const MAX_BODY_BYTES: usize = 1 << 20;

/// Run `plan` until `stop` is cancelled or `plan.until` passes.
pub async fn run(
    plan: LoadPlan,
    client: reqwest::Client,
    telemetry: Telemetry,
    stop: CancellationToken,
) {
    let left = (plan.until - chrono::Utc::now())
        .to_std()
        .unwrap_or(Duration::ZERO);
    let deadline = Instant::now() + left;
    // Validation keeps the rate in (0, 1000]; clamp anyway so a bad value cannot spin.
    let period = Duration::from_secs_f64(1.0 / plan.rate.clamp(0.001, 1000.0));
    let mut ticker = tokio::time::interval(period);
    // A late tick is skipped rather than caught up with a burst.
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let slots = Arc::new(Semaphore::new(plan.concurrency.max(1)));
    let plan = Arc::new(plan);
    let mut in_flight = JoinSet::new();
    let mut next_path = 0usize;
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep_until(deadline) => break,
            _ = ticker.tick() => {}
        }
        while in_flight.try_join_next().is_some() {}
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            telemetry.record_load(
                &plan.namespace,
                &plan.name,
                &plan.revision,
                LoadOutcome::Skipped,
            );
            continue;
        };
        let path = plan.paths[next_path % plan.paths.len().max(1)].clone();
        next_path = next_path.wrapping_add(1);
        let (plan, client, telemetry) = (plan.clone(), client.clone(), telemetry.clone());
        in_flight.spawn(async move {
            let outcome = send(&client, &plan, &path).await;
            telemetry.record_load(&plan.namespace, &plan.name, &plan.revision, outcome);
            drop(slot);
        });
    }
    // Dropping the set aborts what is still in flight: no request outlives the load.
    in_flight.abort_all();
}

async fn send(client: &reqwest::Client, plan: &LoadPlan, path: &str) -> LoadOutcome {
    let started = Instant::now();
    let mut req = client
        .get(format!("{}{path}", plan.base))
        .timeout(plan.timeout);
    for (k, v) in &plan.headers {
        req = req.header(k.as_str(), v.as_str());
    }
    let mut resp = match req.send().await {
        Ok(r) => r,
        Err(_) => return LoadOutcome::NoAnswer,
    };
    let code = resp.status().as_u16();
    // The duration ends with the body, as a user's request does.
    let mut read = 0usize;
    loop {
        match resp.chunk().await {
            Ok(Some(c)) => {
                read += c.len();
                if read > MAX_BODY_BYTES {
                    break;
                }
            }
            Ok(None) => break,
            // The status line came but the body broke off: the user got no whole answer.
            Err(_) => return LoadOutcome::NoAnswer,
        }
    }
    LoadOutcome::Answered {
        code,
        seconds: started.elapsed().as_secs_f64(),
    }
}
