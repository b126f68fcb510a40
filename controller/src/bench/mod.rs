//! `sluice bench`: decision quality of rollout policies on simulated traffic. Flagger's
//! defaults and an Argo-style threshold analysis against Sluice's default (the real state
//! machine and the real sequential tests), over many seeds per scenario: time to rollback,
//! blast radius, false rollbacks, time to promote, and Wald's SPRT as the yardstick.

pub mod argo;
pub mod flagger;
pub mod policy;
pub mod promql;
pub mod report;
pub mod run;
pub mod scenario;
pub mod simulate;
pub mod sluice;
pub mod summary;
pub mod svg;
pub mod traffic;

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use report::{PolicyInfo, Report, TraceEntry};
use run::{run_one, PolicySpec, RunResult};
use scenario::Scenario;

/// Options of `sluice bench`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Seeds (independent runs) per policy and scenario.
    #[arg(long, default_value_t = 500)]
    pub seeds: u64,
    /// Directory for results.json, summary.md and one SVG per scenario.
    #[arg(long, default_value = "bench-results")]
    pub out: PathBuf,
    /// Quick look: 50 seeds (unless --seeds is given explicitly lower).
    #[arg(long)]
    pub quick: bool,
    /// Longest simulated rollout, in seconds (undecided after that).
    #[arg(long, default_value_t = 1800)]
    pub horizon: u64,
    /// Worker threads (default: available cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// `decisions`: every policy on the main scenarios; `validity`: Sluice alone on the grid of
    /// conditions its guarantees must hold under (scrape/interval, baselines, shares, bursts,
    /// restarts, floor on and off); `faults`: one-endpoint regression, canary death at 25%,
    /// shared incident (Flagger, Sluice, Sluice per route).
    #[arg(long, value_enum, default_value_t = Suite::Decisions)]
    pub suite: Suite,
}

/// Which set of scenarios and policies to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Suite {
    Decisions,
    Validity,
    /// Issue 17's fault cells: one-endpoint regression, a canary that dies at 25%, a shared
    /// incident; Flagger, Sluice and Sluice per route.
    Faults,
}

/// What to run.
#[derive(Debug, Clone)]
pub struct BenchPlan {
    pub seeds: u64,
    pub horizon: u64,
    pub threads: usize,
    pub policies: Vec<PolicySpec>,
    pub scenarios: Vec<Scenario>,
}

impl BenchPlan {
    pub fn from_args(args: &BenchArgs) -> Self {
        let seeds = if args.quick {
            args.seeds.min(50)
        } else {
            args.seeds
        };
        let threads = args
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        BenchPlan {
            seeds: seeds.max(1),
            horizon: args.horizon.max(60),
            threads: threads.max(1),
            policies: match args.suite {
                Suite::Decisions => run::policies(),
                Suite::Validity => run::policies()
                    .into_iter()
                    .filter(|p| p.name == "sluice")
                    .collect(),
                Suite::Faults => run::fault_policies(),
            },
            scenarios: match args.suite {
                Suite::Decisions => scenario::all(),
                Suite::Validity => scenario::validity(),
                Suite::Faults => scenario::faults(),
            },
        }
    }
}

/// Seed of run `seed` of scenario number `scenario` (the same for every policy).
fn seed_of(scenario: usize, seed: u64) -> u64 {
    (scenario as u64) * 1_000_003 + seed
}

/// Runs every policy on every scenario and seed; seed 0 of each pair is traced for the plots.
pub fn run_plan(plan: &BenchPlan) -> Report {
    let jobs: Vec<(usize, usize, u64)> = (0..plan.scenarios.len())
        .flat_map(|s| {
            (0..plan.policies.len()).flat_map(move |p| (0..plan.seeds).map(move |k| (s, p, k)))
        })
        .collect();
    let workers = plan.threads.min(jobs.len()).max(1);
    let mut results: Vec<Option<RunResult>> = vec![None; jobs.len()];
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                let jobs = &jobs;
                scope.spawn(move || {
                    let mut out = Vec::new();
                    for (i, (s, p, k)) in jobs.iter().enumerate().skip(w).step_by(workers) {
                        let r = run_one(
                            &plan.policies[*p],
                            &plan.scenarios[*s],
                            seed_of(*s, *k),
                            plan.horizon,
                            *k == 0,
                        );
                        out.push((i, r));
                    }
                    out
                })
            })
            .collect();
        for h in handles {
            // A panicking worker is a bug in the bench; report the runs that finished.
            if let Ok(done) = h.join() {
                for (i, r) in done {
                    results[i] = Some(r);
                }
            }
        }
    });
    let mut cells = Vec::new();
    let mut traces = Vec::new();
    for (si, sc) in plan.scenarios.iter().enumerate() {
        for (pi, p) in plan.policies.iter().enumerate() {
            let runs: Vec<RunResult> = jobs
                .iter()
                .zip(&results)
                .filter(|((s, q, _), _)| *s == si && *q == pi)
                .filter_map(|(_, r)| r.clone())
                .collect();
            if let Some(tr) = runs.first().and_then(|r| r.trace.clone()) {
                traces.push(TraceEntry {
                    policy: p.name.clone(),
                    scenario: sc.name.clone(),
                    seed: seed_of(si, 0),
                    trace: tr,
                });
            }
            cells.push(summary::Cell::new(&p.name, &sc.name, &runs));
        }
    }
    Report {
        seeds: plan.seeds,
        horizon_seconds: plan.horizon,
        policies: plan
            .policies
            .iter()
            .map(|p| PolicyInfo {
                name: p.name.clone(),
                description: p.description.clone(),
            })
            .collect(),
        ratios: summary::ratios(&cells, &plan.scenarios),
        theory: summary::theory(&plan.scenarios),
        scenarios: plan.scenarios.clone(),
        cells,
        traces,
    }
}

/// Writes results.json, summary.md and `<scenario>.svg` files into `dir`.
pub fn write_outputs(report: &Report, dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let json = serde_json::to_string_pretty(report).context("serializing the report")?;
    let path = dir.join("results.json");
    std::fs::write(&path, json).with_context(|| format!("writing {}", path.display()))?;
    let path = dir.join("summary.md");
    std::fs::write(&path, report.markdown())
        .with_context(|| format!("writing {}", path.display()))?;
    for sc in &report.scenarios {
        let traces: Vec<&TraceEntry> = report
            .traces
            .iter()
            .filter(|t| t.scenario == sc.name)
            .collect();
        let svg = svg::plot(&sc.name, &sc.description, &traces);
        let path = dir.join(format!("{}.svg", file_name(&sc.name)));
        std::fs::write(&path, svg).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// A scenario name as a file name ("latency+30%" -> "latency-30pct").
pub fn file_name(name: &str) -> String {
    name.replace('+', "-")
        .replace('%', "pct")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `sluice bench`.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let plan = BenchPlan::from_args(&args);
    let started = std::time::Instant::now();
    let report = tokio::task::spawn_blocking(move || run_plan(&plan))
        .await
        .context("bench worker panicked")?;
    println!("{}", report.markdown());
    write_outputs(&report, &args.out)?;
    println!(
        "wrote {}/results.json, summary.md and one SVG per scenario in {:.1} s",
        args.out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
