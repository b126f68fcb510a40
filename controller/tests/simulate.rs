//! `sluice simulate` runs a user's Rollout through the bench engine: fed the bench's own Sluice
//! spec (as a Rollout file), it must give the bench's numbers for the same seeds; bad files and
//! out-of-range options are refused with a clear message.

use std::path::{Path, PathBuf};

use sluice_controller::bench::simulate::{self, SimulateArgs};
use sluice_controller::bench::sluice::SluiceConfig;
use sluice_controller::bench::{run, run_plan, scenario::Scenario, BenchPlan};
use sluice_crds::Rollout;

fn args(file: &Path) -> SimulateArgs {
    SimulateArgs {
        file: file.to_path_buf(),
        rollout: None,
        rps: 20.0,
        error_rate: 0.005,
        worse: vec![5.0],
        seeds: 3,
        horizon: 1200,
        out: PathBuf::from("unused"),
    }
}

/// A cell without its policy name, for comparing two policies' numbers.
fn numbers(c: &sluice_controller::bench::summary::Cell) -> serde_json::Value {
    let mut v = serde_json::to_value(c).unwrap();
    v.as_object_mut().unwrap().remove("policy");
    v
}

#[test]
fn the_bench_spec_gives_the_bench_numbers() {
    // The bench's default Sluice policy, written out as the Rollout a user would apply.
    let spec = SluiceConfig::default().rollout_spec();
    let mut rollout = Rollout::new("app", spec);
    rollout.metadata.namespace = Some("default".into());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rollout.yaml");
    // JSON is YAML.
    std::fs::write(&file, serde_json::to_string_pretty(&rollout).unwrap()).unwrap();

    let text = std::fs::read_to_string(&file).unwrap();
    let loaded = simulate::load_spec(&text, &file, None).unwrap();
    assert_eq!(simulate::interval_seconds(&loaded), 10);
    assert!(simulate::unsimulated(&loaded).is_empty());
    let sim = run_plan(&simulate::plan(loaded, &args(&file)).unwrap());

    let bench = BenchPlan {
        seeds: 3,
        horizon: 1200,
        threads: 2,
        policies: run::policies()
            .into_iter()
            .filter(|p| p.name == "sluice")
            .collect(),
        scenarios: vec![Scenario::healthy(), Scenario::errors(5.0)],
    };
    let bench = run_plan(&bench);
    assert_eq!(sim.cells.len(), 2);
    for (s, b) in sim.cells.iter().zip(&bench.cells) {
        assert_eq!(numbers(s), numbers(b), "{}", s.scenario);
    }
    // Not vacuous: the healthy runs promoted and the 5x-worse ones rolled back.
    assert!(sim.cells[0].promoted > 0, "{:?}", sim.cells[0]);
    assert!(sim.cells[1].rolled_back > 0, "{:?}", sim.cells[1]);
}

#[test]
fn a_standalone_file_is_read_too() {
    let file =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/standalone/rollouts.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    let spec = simulate::load_spec(&text, &file, Some("web")).unwrap();
    assert_eq!(simulate::interval_seconds(&spec), 5);
    let err = simulate::load_spec(&text, &file, Some("nope")).unwrap_err();
    assert!(
        format!("{err:#}").contains("no rollout named \"nope\""),
        "{err:#}"
    );
}

#[test]
fn bad_files_and_options_are_refused() {
    let p = Path::new("/tmp/x.yaml");
    for (text, want) in [
        ("kind: [unclosed", "not YAML"),
        ("kind: Deployment\nspec: {}\n", "neither a Rollout"),
        (
            "apiVersion: sluice.dev/v1alpha1\nkind: Rollout\nmetadata: {name: a}\nspec: {targetRef: {name: a}}\n",
            "not a valid Rollout",
        ),
    ] {
        let err = simulate::load_spec(text, p, None).unwrap_err();
        assert!(format!("{err:#}").contains(want), "{text}: {err:#}");
    }
    let spec = SluiceConfig::default().rollout_spec();
    for (change, want) in [
        (
            (|a: &mut SimulateArgs| a.rps = f64::NAN) as fn(&mut SimulateArgs),
            "--rps",
        ),
        (|a: &mut SimulateArgs| a.error_rate = 0.7, "--error-rate"),
        (|a: &mut SimulateArgs| a.worse = vec![0.5], "--worse"),
        (|a: &mut SimulateArgs| a.worse = vec![300.0], "below 1"),
    ] {
        let mut a = args(p);
        change(&mut a);
        let err = simulate::plan(spec.clone(), &a).unwrap_err();
        assert!(err.to_string().contains(want), "{err}");
    }
}

#[test]
fn what_cannot_be_simulated_is_named_and_left_out() {
    let mut spec = SluiceConfig::default().rollout_spec();
    let a = spec.analysis.as_mut().unwrap();
    a.metrics.push(sluice_crds::MetricSpec {
        name: "smoke".into(),
        web: Some(sluice_crds::WebCheck {
            url: "http://127.0.0.1:9/score".into(),
            ..Default::default()
        }),
        threshold: Some(sluice_crds::Threshold {
            min: Some(1.0),
            ..Default::default()
        }),
        ..Default::default()
    });
    a.metrics.push(sluice_crds::MetricSpec {
        name: "p99".into(),
        builtin: Some("traefik-latency-p99".into()),
        ..Default::default()
    });
    let notes = simulate::unsimulated(&spec);
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert!(notes[0].starts_with("smoke: a web check"), "{notes:?}");
    assert!(
        notes[1].starts_with("p99: a built-in of another family"),
        "{notes:?}"
    );
    let kept: Vec<String> = simulate::simulated_part(spec)
        .analysis
        .unwrap()
        .metrics
        .into_iter()
        .map(|m| m.name)
        .collect();
    assert_eq!(kept, vec!["errors", "latency"]);
}
