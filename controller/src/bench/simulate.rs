//! `sluice simulate -f ROLLOUT.yaml`: the user's own Rollout spec through the benchmark engine
//! (the product's state machine and analysis against simulated ingress-nginx traffic in a
//! simulated Prometheus), over many seeds: how often and how fast it promotes a healthy canary,
//! how often it rolls back a worse one, and how many canary requests that costs.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use sluice_crds::{Rollout, RolloutSpec};

use super::run::{PolicyKind, PolicySpec};
use super::scenario::Scenario;
use super::{run_plan, write_outputs, BenchPlan};

/// Options of `sluice simulate`.
#[derive(Debug, Clone, clap::Args)]
pub struct SimulateArgs {
    /// A Rollout (`kind: Rollout`) or a standalone rollouts file (`rollouts:`; the first
    /// rollout, or the one named by --rollout).
    #[arg(short = 'f', long = "file")]
    pub file: PathBuf,
    /// Which rollout of a standalone file.
    #[arg(long)]
    pub rollout: Option<String>,
    /// Requests per second through the router, both versions together.
    #[arg(long, default_value_t = 20.0)]
    pub rps: f64,
    /// Stable's error rate (a fraction, e.g. 0.005 for 0.5%).
    #[arg(long, default_value_t = 0.005)]
    pub error_rate: f64,
    /// How many times worse the degraded canaries are (error rate multipliers).
    #[arg(long, value_delimiter = ',', default_value = "2,3,5,20")]
    pub worse: Vec<f64>,
    /// Seeds (independent runs) per scenario.
    #[arg(long, default_value_t = 100)]
    pub seeds: u64,
    /// Longest simulated rollout, in seconds (undecided after that).
    #[arg(long, default_value_t = 1800)]
    pub horizon: u64,
    /// Directory for results.json, summary.md and an SVG per scenario (one run each).
    #[arg(long, default_value = "simulate-results")]
    pub out: PathBuf,
}

/// The Rollout spec in `text`: a `Rollout` resource, or one rollout of a standalone file.
pub fn load_spec(text: &str, path: &Path, rollout: Option<&str>) -> anyhow::Result<RolloutSpec> {
    let doc: serde_json::Value =
        serde_saphyr::from_str(text).with_context(|| format!("{} is not YAML", path.display()))?;
    let spec = if doc.get("kind").and_then(|k| k.as_str()) == Some("Rollout") {
        let r: Rollout = serde_json::from_value(doc)
            .with_context(|| format!("{} is not a valid Rollout", path.display()))?;
        r.spec
    } else if doc.get("rollouts").is_some() {
        let cfg = crate::standalone::StandaloneConfig::parse(text, path)?;
        let r = match rollout {
            Some(name) => cfg
                .rollouts
                .iter()
                .find(|r| r.name == name)
                .with_context(|| format!("{} has no rollout named {name:?}", path.display()))?,
            None => cfg
                .rollouts
                .first()
                .with_context(|| format!("{} has no rollouts", path.display()))?,
        };
        r.rollout_spec()
    } else {
        bail!(
            "{}: neither a Rollout (kind: Rollout) nor a standalone file (rollouts:)",
            path.display()
        );
    };
    sluice_crds::validate(&spec, None).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok(spec)
}

/// Why the simulated world cannot answer metric `m`, if it cannot.
fn not_simulated(m: &sluice_crds::MetricSpec) -> Option<&'static str> {
    if m.web.is_some() {
        Some("a web check")
    } else if m.job.is_some() {
        Some("a Job check")
    } else if m.query.is_some() {
        Some("a custom query")
    } else if m
        .builtin
        .as_deref()
        .is_some_and(|b| b.starts_with("traefik-") || b.starts_with("load-"))
    {
        Some("a built-in of another family (the simulation exports ingress-nginx series)")
    } else {
        None
    }
}

/// What the simulation leaves out of `spec`, so the user knows which parts were not exercised.
pub fn unsimulated(spec: &RolloutSpec) -> Vec<String> {
    let Some(a) = &spec.analysis else {
        return vec![];
    };
    let mut out = Vec::new();
    if !a.templates.is_empty() {
        out.push("analysis templates are left out (only the Rollout's own metrics run)".into());
    }
    for m in &a.metrics {
        if let Some(why) = not_simulated(m) {
            out.push(format!("{}: {why}, left out of the simulation", m.name));
        }
    }
    out
}

/// `spec` without what the simulation cannot run (no request leaves the process).
pub fn simulated_part(mut spec: RolloutSpec) -> RolloutSpec {
    if let Some(a) = &mut spec.analysis {
        a.templates.clear();
        a.metrics.retain(|m| not_simulated(m).is_none());
    }
    spec
}

/// The analysis interval in seconds (the CRD default 1m when unset or unparsable).
pub fn interval_seconds(spec: &RolloutSpec) -> u64 {
    spec.analysis
        .as_ref()
        .and_then(|a| sluice_crds::parse_duration(&a.interval).ok())
        .map_or(60, |d| d.as_secs().max(1))
}

/// Healthy, then one degraded canary per `worse` factor, at `rps` and `error_rate`.
pub fn scenarios(rps: f64, error_rate: f64, worse: &[f64]) -> Vec<Scenario> {
    let mut out = vec![Scenario::healthy()];
    out.extend(worse.iter().map(|f| Scenario::errors(*f)));
    for s in &mut out {
        s.rate = rps;
        s.base_error = error_rate;
        s.description = format!(
            "{rps} req/s, stable {:.2}% errors, canary {:.2}%",
            100.0 * error_rate,
            100.0 * error_rate * s.canary_error_factor
        );
    }
    out
}

/// The plan that runs `spec` on the scenarios.
pub fn plan(spec: RolloutSpec, args: &SimulateArgs) -> anyhow::Result<BenchPlan> {
    if !(args.rps.is_finite() && args.rps > 0.0 && args.rps <= 10_000.0) {
        bail!(
            "--rps must be more than 0 and at most 10000, got {}",
            args.rps
        );
    }
    if !(args.error_rate.is_finite() && (0.0..0.5).contains(&args.error_rate)) {
        bail!(
            "--error-rate is a fraction in [0, 0.5), got {}",
            args.error_rate
        );
    }
    if let Some(f) = args.worse.iter().find(|f| !(f.is_finite() && **f > 1.0)) {
        bail!("--worse factors must be more than 1, got {f}");
    }
    if args.worse.iter().any(|f| f * args.error_rate >= 1.0) {
        bail!("--worse times --error-rate must stay below 1");
    }
    let interval = interval_seconds(&spec);
    Ok(BenchPlan {
        seeds: args.seeds.clamp(1, 10_000),
        horizon: args.horizon.clamp(60, 86_400),
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        policies: vec![PolicySpec {
            name: "your-rollout".into(),
            description: format!("the Rollout in {}", args.file.display()),
            kind: PolicyKind::Spec {
                spec: Box::new(simulated_part(spec)),
                interval,
            },
        }],
        scenarios: scenarios(args.rps, args.error_rate, &args.worse),
    })
}

/// `sluice simulate`.
pub async fn run(args: SimulateArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let spec = load_spec(&text, &args.file, args.rollout.as_deref())?;
    for w in unsimulated(&spec) {
        eprintln!("note: {w}");
    }
    let plan = plan(spec, &args)?;
    let report = tokio::task::spawn_blocking(move || run_plan(&plan))
        .await
        .context("simulation worker panicked")?;
    println!("{}", report.outcomes_table());
    write_outputs(&report, &args.out)?;
    println!(
        "{} seeds per scenario; results and one plotted run per scenario in {}",
        report.seeds,
        args.out.display()
    );
    Ok(())
}
