//! Keeps `sluice bench` working: a tiny run (few seeds, all scenarios and policies) must produce
//! a complete, self-consistent report and its files. Structure and sanity only, no timings.

use sluice_controller::bench::{self, policy::Outcome, run, scenario, BenchArgs, BenchPlan};

fn tiny_plan(seeds: u64) -> BenchPlan {
    let args = BenchArgs {
        seeds,
        out: "unused".into(),
        quick: true,
        horizon: 1200,
        threads: Some(2),
        suite: sluice_controller::bench::Suite::Decisions,
    };
    BenchPlan::from_args(&args)
}

#[test]
fn tiny_bench_produces_a_complete_report_and_files() {
    let plan = tiny_plan(3);
    let report = bench::run_plan(&plan);
    let (np, ns) = (plan.policies.len(), plan.scenarios.len());
    assert!(np >= 3 && ns >= 8);
    assert_eq!(report.cells.len(), np * ns);
    for c in &report.cells {
        assert_eq!(c.runs, 3, "{} {}", c.policy, c.scenario);
        assert_eq!(c.promoted + c.rolled_back + c.undecided, c.runs);
        if let Some(d) = c.canary_errors {
            assert!(d.mean <= c.canary_requests.unwrap().mean);
        }
        if let Some(d) = c.time_to_rollback {
            assert!(d.median <= plan.horizon as f64 && d.median <= d.p90);
        }
    }
    // Every policy is traced on every scenario, and theory covers the scenarios with traffic.
    assert_eq!(report.traces.len(), np * ns);
    assert!(report.theory.iter().all(|t| t.requests > 0.0 && t.p1 > 0.0));
    let md = report.markdown();
    assert!(md.contains("| errors-5x | flagger |"), "{md}");

    let dir = tempfile::tempdir().unwrap();
    bench::write_outputs(&report, dir.path()).unwrap();
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("results.json")).unwrap())
            .unwrap();
    assert_eq!(json["cells"].as_array().unwrap().len(), np * ns);
    for sc in &plan.scenarios {
        let svg = std::fs::read_to_string(
            dir.path()
                .join(format!("{}.svg", bench::file_name(&sc.name))),
        )
        .unwrap();
        assert!(
            svg.starts_with("<svg") && svg.contains("polyline"),
            "{}",
            sc.name
        );
    }
}

#[test]
fn each_policy_rolls_back_a_20x_canary_and_flagger_keeps_its_timing() {
    let scenarios = scenario::all();
    let bad = scenarios.iter().find(|s| s.name == "errors-20x").unwrap();
    for p in run::policies() {
        let r = run::run_one(&p, bad, 11, 1800, false);
        assert_eq!(r.outcome, Outcome::RolledBack, "{}", p.name);
        assert!(r.canary_errors > 0 && r.canary_requests >= r.canary_errors);
        if p.name == "flagger" {
            // Weight 10 at 1m, five failed checks at 2m..6m, rollback at the 7m tick.
            assert_eq!(r.decided_at, Some(420), "{r:?}");
        }
    }
}

#[test]
fn no_canary_traffic_is_never_promoted() {
    let scenarios = scenario::all();
    let dark = scenarios
        .iter()
        .find(|s| s.name == "no-canary-traffic")
        .unwrap();
    for p in run::policies() {
        let r = run::run_one(&p, dark, 5, 1200, false);
        assert_ne!(r.outcome, Outcome::Promoted, "{}", p.name);
        assert_eq!(r.canary_requests, 0);
    }
}

/// Not a check: `BENCH_SEEDS=50 cargo test --release -p sluice-controller --test bench_smoke -- --ignored --nocapture`
/// prints the tables without going through the CLI.
#[test]
#[ignore]
fn print_tables() {
    let seeds = std::env::var("BENCH_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let mut plan = tiny_plan(seeds);
    plan.seeds = seeds;
    plan.horizon = 1800;
    let report = bench::run_plan(&plan);
    println!("{}", report.markdown());
}
