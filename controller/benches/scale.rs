//! Controller scale bench: N concurrent canary rollouts in one controller against the in-memory
//! Kubernetes API (kube-fake-client). Reports reconcile latency, CPU per reconcile and per rollout
//! step, resident memory and Prometheus queries per analysis run, for each size.
//!
//! `cargo bench -p sluice-controller --bench scale -- [--sizes 1000,5000] [--concurrency 64]
//! [--json FILE]` (or `SLUICE_SCALE_SIZES=20`). Each size runs in its own child process so the
//! memory figures of one size do not include the previous one's.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use futures::future::BoxFuture;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use kube_fake_client::ClientBuilder;
use serde::Serialize;
use serde_json::json;
use sluice_analysis::{MetricsSource, QueryFuture, QueryResponse, QueryResult};
use sluice_controller::clock::ManualClock;
use sluice_controller::core::AnalysisRun;
use sluice_controller::k8s::analysis::{AnalysisRunner, BridgeAnalysis};
use sluice_controller::k8s::{reconcile, Context};
use sluice_crds::{AnalysisTemplate, Rollout};

#[path = "scale/fixtures.rs"]
mod fixtures;

use fixtures::{deployment, ingress, name, rollout, NS};

/// Simulated time between two reconcile rounds.
const ROUND: i64 = 30;

/// What one run measures.
#[derive(Debug, Clone)]
pub struct ScaleConfig {
    pub rollouts: usize,
    /// Reconciles in flight at once (kube-runtime's `concurrency`).
    pub concurrency: usize,
    pub max_rounds: usize,
}

/// The result for one size.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct ScaleResult {
    pub rollouts: usize,
    pub concurrency: usize,
    pub rounds: usize,
    pub succeeded: usize,
    pub reconciles: u64,
    pub reconcile_errors: u64,
    pub reconcile_p50_ms: f64,
    pub reconcile_p99_ms: f64,
    pub reconcile_max_ms: f64,
    /// Wall time of one round (all N reconciles), median.
    pub round_p50_s: f64,
    /// Process CPU (user + system) spent in reconcile rounds, incl. the in-process fake API.
    pub cpu_reconcile_s: f64,
    pub cpu_ms_per_reconcile: f64,
    /// Status transitions (phase, step or weight changed) seen between rounds.
    pub steps: u64,
    pub cpu_ms_per_step: f64,
    pub rss_setup_mb: f64,
    pub rss_end_mb: f64,
    pub rss_peak_mb: f64,
    pub analysis_runs: u64,
    pub prometheus_queries: u64,
    pub queries_per_analysis: f64,
}

/// A Prometheus stand-in that answers every query with a passing success rate and counts.
#[derive(Default)]
struct CountingSource {
    queries: AtomicU64,
}

impl MetricsSource for CountingSource {
    fn query<'a>(&'a self, _promql: &'a str, _at: Option<DateTime<Utc>>) -> QueryFuture<'a> {
        self.queries.fetch_add(1, Ordering::Relaxed);
        Box::pin(async { Ok(QueryResponse::from(QueryResult::single(1.0))) })
    }
}

/// Counts analysis runs around the real bridge.
struct CountingRunner {
    inner: BridgeAnalysis,
    runs: AtomicU64,
}

impl AnalysisRunner for CountingRunner {
    fn run<'a>(
        &'a self,
        rollout: &'a Rollout,
        revision: &'a str,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, AnalysisRun> {
        self.runs.fetch_add(1, Ordering::Relaxed);
        self.inner.run(rollout, revision, now)
    }
}

/// Process CPU time (user + system) from /proc/self/stat, in seconds.
pub fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the ")" that closes the command name: utime is the 12th, stime the 13th.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // CLK_TCK is 100 on Linux builds we run on.
    (ticks(11) + ticks(12)) / 100.0
}

/// A `/proc/self/status` field in MiB (VmRSS, VmHWM).
pub fn proc_status_mb(field: &str) -> f64 {
    let text = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The Deployment controller's part: mark every Deployment whose spec changed as rolled out.
async fn kubelet(client: &Client) {
    let api: Api<Deployment> = Api::namespaced(client.clone(), NS);
    let Ok(list) = api.list(&ListParams::default()).await else {
        return;
    };
    for d in list.items {
        let r = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
        let st = d.status.as_ref();
        let done = st.and_then(|s| s.observed_generation) == d.metadata.generation
            && st.and_then(|s| s.ready_replicas).unwrap_or(0) == r
            && st.and_then(|s| s.replicas).unwrap_or(0) == r;
        if done {
            continue;
        }
        let status = json!({"status": {
            "observedGeneration": d.metadata.generation,
            "replicas": r, "updatedReplicas": r, "availableReplicas": r, "readyReplicas": r
        }});
        let _ = api
            .patch_status(
                &d.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&status),
            )
            .await;
    }
}

type Snapshot = BTreeMap<String, (String, u32, i32)>;

async fn rollouts(client: &Client) -> Vec<Rollout> {
    Api::<Rollout>::namespaced(client.clone(), NS)
        .list(&ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default()
}

fn snapshot(list: &[Rollout]) -> Snapshot {
    list.iter()
        .map(|r| {
            let st = r.status.clone().unwrap_or_default();
            (
                r.name_any(),
                (st.phase.to_string(), st.current_step, st.canary_weight),
            )
        })
        .collect()
}

/// Accumulated over the measured rounds.
#[derive(Default)]
struct Tally {
    durations_ms: Vec<f64>,
    round_s: Vec<f64>,
    cpu_s: f64,
    errors: u64,
    steps: u64,
}

/// One round: every rollout reconciled once, `concurrency` at a time.
async fn round(client: &Client, ctx: &Arc<Context>, conc: usize, tally: Option<&mut Tally>) {
    kubelet(client).await;
    let list = rollouts(client).await;
    let cpu0 = cpu_seconds();
    let t0 = Instant::now();
    let results: Vec<(Duration, bool)> = futures::stream::iter(list)
        .map(|r| {
            let ctx = ctx.clone();
            async move {
                let t = Instant::now();
                let ok = reconcile(Arc::new(r), ctx).await.is_ok();
                (t.elapsed(), ok)
            }
        })
        .buffer_unordered(conc.max(1))
        .collect()
        .await;
    if let Some(t) = tally {
        t.round_s.push(t0.elapsed().as_secs_f64());
        t.cpu_s += cpu_seconds() - cpu0;
        for (d, ok) in results {
            t.durations_ms.push(d.as_secs_f64() * 1000.0);
            t.errors += u64::from(!ok);
        }
    }
}

fn count_phase(list: &[Rollout], phase: &str) -> usize {
    list.iter()
        .filter(|r| {
            r.status
                .as_ref()
                .is_some_and(|s| s.phase.to_string() == phase)
        })
        .count()
}

fn start_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 10, 0, 0)
        .single()
        .unwrap_or_else(Utc::now)
}

/// Runs one size in this process.
pub async fn run_one(cfg: &ScaleConfig) -> ScaleResult {
    let n = cfg.rollouts;
    let mut b = ClientBuilder::new()
        .with_resource::<Rollout>()
        .with_resource::<AnalysisTemplate>()
        .with_status_subresource::<Rollout>()
        .with_status_subresource::<Deployment>();
    for i in 0..n {
        b = b
            .with_object(rollout(i))
            .with_object(deployment(i, "app:1.0"))
            .with_object(ingress(i));
    }
    let client = b.build().await.expect("the fake API server starts");
    let clock = Arc::new(ManualClock::new(start_time()));
    let source = Arc::new(CountingSource::default());
    let runner = Arc::new(CountingRunner {
        inner: BridgeAnalysis::new(client.clone(), None).with_source(source.clone()),
        runs: AtomicU64::new(0),
    });
    let ctx = Arc::new(
        Context::new(client.clone())
            .with_clock(clock.clone())
            .with_analysis(runner.clone()),
    );
    // Unmeasured warm-up: first reconciles create primaries, Services and the canary Ingress.
    for _ in 0..cfg.max_rounds {
        round(&client, &ctx, cfg.concurrency, None).await;
        clock.advance(chrono::Duration::seconds(ROUND));
        if count_phase(&rollouts(&client).await, "Idle") == n {
            break;
        }
    }
    let rss_setup_mb = proc_status_mb("VmRSS");
    let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "app:2.0"}]}}}});
    let api: Api<Deployment> = Api::namespaced(client.clone(), NS);
    for i in 0..n {
        let _ = api
            .patch(&name(i), &PatchParams::default(), &Patch::Merge(&patch))
            .await;
    }
    let (queries0, runs0) = (
        source.queries.load(Ordering::Relaxed),
        runner.runs.load(Ordering::Relaxed),
    );
    let mut tally = Tally::default();
    let mut before = snapshot(&rollouts(&client).await);
    let mut rounds = 0;
    let mut succeeded = 0;
    while rounds < cfg.max_rounds {
        round(&client, &ctx, cfg.concurrency, Some(&mut tally)).await;
        clock.advance(chrono::Duration::seconds(ROUND));
        rounds += 1;
        let list = rollouts(&client).await;
        let after = snapshot(&list);
        tally.steps += after
            .iter()
            .filter(|(k, v)| before.get(*k) != Some(*v))
            .count() as u64;
        before = after;
        succeeded = count_phase(&list, "Succeeded");
        if succeeded == n {
            break;
        }
    }
    let mut d = tally.durations_ms;
    d.sort_by(f64::total_cmp);
    let mut rs = tally.round_s;
    rs.sort_by(f64::total_cmp);
    let reconciles = d.len() as u64;
    let analysis_runs = runner.runs.load(Ordering::Relaxed) - runs0;
    let prometheus_queries = source.queries.load(Ordering::Relaxed) - queries0;
    let rss_end_mb = proc_status_mb("VmRSS");
    let per = |total: f64, k: u64| if k == 0 { 0.0 } else { total / k as f64 };
    ScaleResult {
        rollouts: n,
        concurrency: cfg.concurrency,
        rounds,
        succeeded,
        reconciles,
        reconcile_errors: tally.errors,
        reconcile_p50_ms: percentile(&d, 50.0),
        reconcile_p99_ms: percentile(&d, 99.0),
        reconcile_max_ms: d.last().copied().unwrap_or(0.0),
        round_p50_s: percentile(&rs, 50.0),
        cpu_reconcile_s: tally.cpu_s,
        cpu_ms_per_reconcile: per(tally.cpu_s * 1000.0, reconciles),
        steps: tally.steps,
        cpu_ms_per_step: per(tally.cpu_s * 1000.0, tally.steps),
        rss_setup_mb,
        rss_end_mb,
        // The kernel updates VmHWM lazily; it can trail the VmRSS just read.
        rss_peak_mb: proc_status_mb("VmHWM").max(rss_end_mb),
        analysis_runs,
        prometheus_queries,
        queries_per_analysis: per(prometheus_queries as f64, analysis_runs),
    }
}

/// Renders results as a Markdown table, with growth relative to the first size.
pub fn table(results: &[ScaleResult]) -> String {
    let mut out = String::from(
        "| rollouts | reconciles | p50 ms | p99 ms | round p50 s | CPU ms/reconcile | CPU ms/step | RSS MiB (setup/end/peak) | queries/analysis | succeeded |\n|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in results {
        out.push_str(&format!(
            "| {} | {} | {:.2} | {:.2} | {:.2} | {:.3} | {:.3} | {:.0}/{:.0}/{:.0} | {:.2} | {}/{} |\n",
            r.rollouts,
            r.reconciles,
            r.reconcile_p50_ms,
            r.reconcile_p99_ms,
            r.round_p50_s,
            r.cpu_ms_per_reconcile,
            r.cpu_ms_per_step,
            r.rss_setup_mb,
            r.rss_end_mb,
            r.rss_peak_mb,
            r.queries_per_analysis,
            r.succeeded,
            r.rollouts,
        ));
    }
    if let (Some(a), Some(b)) = (results.first(), results.last()) {
        if results.len() > 1 && a.rollouts > 0 {
            let g = |x: f64, y: f64| if x > 0.0 { y / x } else { 0.0 };
            out.push_str(&format!(
                "\nGrowth {} -> {} rollouts (x{:.1}): p50 x{:.2}, p99 x{:.2}, CPU/reconcile x{:.2}, RSS(end) x{:.2}, queries/analysis x{:.2}\n",
                a.rollouts,
                b.rollouts,
                b.rollouts as f64 / a.rollouts as f64,
                g(a.reconcile_p50_ms, b.reconcile_p50_ms),
                g(a.reconcile_p99_ms, b.reconcile_p99_ms),
                g(a.cpu_ms_per_reconcile, b.cpu_ms_per_reconcile),
                g(a.rss_end_mb, b.rss_end_mb),
                g(a.queries_per_analysis, b.queries_per_analysis),
            ));
        }
    }
    out
}

struct Args {
    sizes: Vec<usize>,
    concurrency: usize,
    json: Option<String>,
    one: Option<usize>,
}

fn parse_args() -> Args {
    let mut a = Args {
        sizes: std::env::var("SLUICE_SCALE_SIZES")
            .ok()
            .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
            .unwrap_or_else(|| vec![1000, 5000]),
        concurrency: 64,
        json: None,
        one: None,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--sizes" => {
                if let Some(v) = it.next() {
                    a.sizes = v.split(',').filter_map(|x| x.trim().parse().ok()).collect();
                }
            }
            "--concurrency" => a.concurrency = it.next().and_then(|v| v.parse().ok()).unwrap_or(64),
            "--json" => a.json = it.next().cloned(),
            "--one" => a.one = it.next().and_then(|v| v.parse().ok()),
            _ => {} // `cargo bench` passes --bench; ignore what we do not know.
        }
    }
    a
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// Runs one size in a child process (fresh memory) and reads its JSON line.
fn run_child(size: usize, concurrency: usize) -> Result<ScaleResult, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let out = std::process::Command::new(exe)
        .args(["--one", &size.to_string()])
        .args(["--concurrency", &concurrency.to_string()])
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .ok_or_else(|| format!("size {size}: no result (exit {})", out.status))?;
    serde_json::from_str(line).map_err(|e| e.to_string())
}

#[allow(dead_code)] // unused when the smoke test includes this file as a module
fn main() {
    let args = parse_args();
    if let Some(n) = args.one {
        let cfg = ScaleConfig {
            rollouts: n,
            concurrency: args.concurrency,
            max_rounds: 40,
        };
        let r = runtime().block_on(run_one(&cfg));
        println!("{}", serde_json::to_string(&r).unwrap_or_default());
        return;
    }
    let mut results = Vec::new();
    for &size in &args.sizes {
        eprintln!("scale: {size} rollouts ...");
        let started = Instant::now();
        match run_child(size, args.concurrency) {
            Ok(r) => {
                eprintln!("scale: {size} rollouts done in {:?}", started.elapsed());
                results.push(r);
            }
            Err(e) => eprintln!("scale: {e}"),
        }
    }
    println!("{}", table(&results));
    if let Some(path) = args.json {
        let body = serde_json::to_string_pretty(&results).unwrap_or_default();
        if let Err(e) = std::fs::write(&path, body) {
            eprintln!("cannot write {path}: {e}");
        }
    }
}
