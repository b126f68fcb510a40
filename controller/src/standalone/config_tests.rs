//! Tests of the standalone rollouts file: strict fields, built-in names, paths.

use super::*;
use crate::notify::TransitionKind;

fn example() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/standalone/rollouts.yaml")
}

#[test]
fn example_file_parses_and_validates() {
    let cfg = StandaloneConfig::load(&example()).unwrap();
    assert_eq!(cfg.rollouts.len(), 1);
    let r = &cfg.rollouts[0];
    assert_eq!(r.target_version(), Some("v1"));
    assert_eq!(r.metric_labels().canary, "canary");
    let spec = r.rollout_spec();
    assert_eq!(spec.service.port, 18082);
    assert_eq!(spec.analysis.as_ref().unwrap().metrics.len(), 3);
    assert_eq!(spec.alerts.len(), 1);
}

#[test]
fn bad_files_are_rejected_with_the_rollout_named() {
    let text = std::fs::read_to_string(example()).unwrap();
    let p = Path::new("/tmp/r.yaml");
    let two_routers = text.replace(
        "        upstream: app\n",
        "        upstream: app\n      traefik:\n        file: dyn/app.yml\n",
    );
    let e = StandaloneConfig::parse(&two_routers, p).unwrap_err();
    assert!(e.to_string().contains("exactly one"), "{e}");
    let both = text.replace(
        "      canary:\n        steps:",
        "      blueGreen: {}\n      canary:\n        steps:",
    );
    let e = StandaloneConfig::parse(&both, p).unwrap_err();
    assert!(e.to_string().contains("web"), "{e}");
    let unknown = text.replace("    queryWindow: 10s\n", "    queryWindw: 10s\n");
    let e = StandaloneConfig::parse(&unknown, p).unwrap_err();
    assert!(matches!(e, ConfigError::Unknown { .. }), "{e}");
    assert!(e.to_string().contains("rollouts[0].queryWindw"), "{e}");
    let rel = text.replace("/etc/nginx/upstream.conf", "up.conf");
    let cfg = StandaloneConfig::parse(&rel, p).unwrap();
    assert_eq!(
        cfg.rollouts[0].router.nginx.as_ref().unwrap().upstream_file,
        PathBuf::from("/tmp/up.conf")
    );
}

#[test]
fn unknown_fields_are_refused_in_every_section_with_their_path() {
    let text = std::fs::read_to_string(example()).unwrap();
    let p = Path::new("/tmp/r.yaml");
    let cases = [
        (
            "      interval: 5s\n",
            "      intervall: 5s\n",
            "rollouts[0].analysis.intervall",
        ),
        (
            "      failureLimit: 0\n",
            "      failureLimt: 0\n",
            "rollouts[0].analysis.failureLimt",
        ),
        (
            "          - setWeight: 10\n",
            "          - setWeigth: 10\n",
            "rollouts[0].strategy.canary.steps[0].setWeigth",
        ),
        (
            "        upstream: app\n",
            "        upstrem: app\n",
            "rollouts[0].router.nginx.upstrem",
        ),
        (
            "      version: v1\n",
            "      versoin: v1\n",
            "rollouts[0].stable.versoin",
        ),
        (
            "listen: 127.0.0.1:8080\n",
            "listn: 127.0.0.1:8080\n",
            "listn",
        ),
        (
            "          threshold: { min: 0.95 }\n",
            "          threshold: { mni: 0.95 }\n",
            "rollouts[0].analysis.metrics[2].threshold.mni",
        ),
    ];
    for (from, to, path) in cases {
        assert!(text.contains(from), "example lacks {from:?}");
        let bad = text.replacen(from, to, 1);
        let e = StandaloneConfig::parse(&bad, p).unwrap_err();
        assert!(matches!(e, ConfigError::Unknown { .. }), "{path}: {e}");
        assert!(e.to_string().contains(path), "{path}: {e}");
    }
    // Inside templates too (they were flattened, where unknown fields vanish).
    let with_template = format!(
        "{text}templates:\n  - name: t\n    metrics:\n      - name: m\n        query: up\n        treshold: {{ max: 1 }}\n"
    );
    let e = StandaloneConfig::parse(&with_template, p).unwrap_err();
    assert!(
        e.to_string().contains("templates[0].metrics[0].treshold"),
        "{e}"
    );
}

#[test]
fn builtin_names_are_checked_at_load() {
    let text = std::fs::read_to_string(example()).unwrap();
    let p = Path::new("/tmp/r.yaml");
    let typo = text.replace(
        "builtin: request-success-rate",
        "builtin: nginx-sucess-rate",
    );
    let e = StandaloneConfig::parse(&typo, p).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("nginx-sucess-rate") && msg.contains("success-rate"),
        "{msg}"
    );
    assert!(msg.contains("known: "), "{msg}");
    // Every name the message offers is one the analysis bridge accepts.
    for n in builtin_names() {
        crate::analysis_bridge::parse_builtin(&n, sluice_analysis::Provider::NginxMtail)
            .unwrap_or_else(|e| panic!("{n}: {e}"));
    }
}

#[test]
fn unknown_query_variables_are_refused_at_load() {
    let text = std::fs::read_to_string(example()).unwrap();
    let p = Path::new("/tmp/r.yaml");
    let good = format!(
        "{text}templates:\n  - name: t\n    args: [{{ name: route }}]\n    metrics:\n      - name: m\n        query: 'sum(rate(x{{v=\"{{{{canary}}}}\",r=\"{{{{route}}}}\"}}[{{{{interval}}}}]))'\n        threshold: {{ max: 1 }}\n"
    );
    StandaloneConfig::parse(&good, p).unwrap_or_else(|e| panic!("{e}"));
    let typo = good.replace("{{canary}}", "{{canry}}");
    let e = StandaloneConfig::parse(&typo, p).unwrap_err().to_string();
    assert!(e.contains("unknown variable(s) canry"), "{e}");
    assert!(e.contains("known: ") && e.contains("route"), "{e}");
}

#[test]
fn relative_paths_of_a_relative_file_become_absolute() {
    // `sluice run -f rollouts.yaml`: the file's directory is "", which left `conf:
    // nginx/nginx.conf` relative, and NGINX resolves that against its own prefix.
    let text = std::fs::read_to_string(example())
        .unwrap()
        .replace("/etc/nginx/nginx.conf", "nginx/nginx.conf");
    let cfg = StandaloneConfig::parse(&text, Path::new("rollouts.yaml")).unwrap();
    let conf = &cfg.rollouts[0].router.nginx.as_ref().unwrap().conf;
    assert!(conf.is_absolute(), "{}", conf.display());
    let cwd = std::env::current_dir().unwrap();
    assert_eq!(conf, &cwd.join("nginx/nginx.conf"));
    // An existing file resolves through symlinks to its real directory.
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real");
    std::fs::create_dir(&real).unwrap();
    std::fs::write(real.join("rollouts.yaml"), &text).unwrap();
    std::os::unix::fs::symlink(real.join("rollouts.yaml"), dir.path().join("link.yaml")).unwrap();
    let cfg = StandaloneConfig::load(&dir.path().join("link.yaml")).unwrap();
    let conf = &cfg.rollouts[0].router.nginx.as_ref().unwrap().conf;
    assert_eq!(conf, &real.canonicalize().unwrap().join("nginx/nginx.conf"));
}

#[test]
fn web_metrics_load_and_their_unknown_variables_are_refused() {
    let text = std::fs::read_to_string(example()).unwrap();
    let p = Path::new("/tmp/r.yaml");
    let good = format!(
        "{text}templates:\n  - name: w\n    metrics:\n      - name: smoke\n        threshold: {{ min: 0.99 }}\n        web: {{ url: 'http://127.0.0.1:9000/score/{{{{canary}}}}', method: POST, body: '{{\"r\": \"{{{{name}}}}\"}}', jsonPointer: /score }}\n"
    );
    StandaloneConfig::parse(&good, p).unwrap_or_else(|e| panic!("{e}"));
    let typo = good.replace("{{name}}", "{{nmae}}");
    let e = StandaloneConfig::parse(&typo, p).unwrap_err().to_string();
    assert!(e.contains("web.body uses unknown variable(s) nmae"), "{e}");
    let field = good.replace("jsonPointer", "jsonPath");
    let e = StandaloneConfig::parse(&field, p).unwrap_err().to_string();
    assert!(e.contains("jsonPath"), "{e}");
}

#[test]
fn command_checks_are_checked_at_load() {
    let text = std::fs::read_to_string(example()).unwrap();
    let p = Path::new("/tmp/r.yaml");
    // Appended to the example's last rollout, which has an analysis section.
    let with = |checks: &str| format!("{text}    commandChecks:\n{checks}");
    let good =
        with("      - { name: smoke, command: [/usr/local/bin/smoke, --fast], timeout: 30s }\n");
    let cfg = StandaloneConfig::parse(&good, p).unwrap_or_else(|e| panic!("{e}"));
    let last = cfg.rollouts.last().unwrap();
    assert_eq!(
        last.command_checks[0].command,
        ["/usr/local/bin/smoke", "--fast"]
    );
    for (checks, says) in [
        ("      - { name: smoke, command: [] }\n", "needs a command"),
        (
            "      - { name: smoke, command: [x], timeout: 2h }\n",
            "at most 10 min",
        ),
        (
            "      - { name: smoke, command: [x], timout: 2s }\n",
            "timout",
        ),
    ] {
        let e = StandaloneConfig::parse(&with(checks), p)
            .unwrap_err()
            .to_string();
        assert!(e.contains(says), "{checks}: {e}");
    }
    let metric = cfg
        .rollouts
        .last()
        .unwrap()
        .analysis
        .as_ref()
        .unwrap()
        .metrics[0]
        .name
        .clone();
    let clash = with(&format!("      - {{ name: {metric}, command: [x] }}\n"));
    let e = StandaloneConfig::parse(&clash, p).unwrap_err().to_string();
    assert!(e.contains("the name is taken by another metric"), "{e}");
}

#[test]
fn load_is_read_checked_and_judged_by_load_builtins() {
    let text = std::fs::read_to_string(example()).unwrap();
    let p = Path::new("/tmp/r.yaml");
    let with = |load: &str, builtin: &str| {
        text.replace(
            "    queryWindow: 10s\n",
            &format!("    queryWindow: 10s\n{load}"),
        )
        .replace("builtin: request-success-rate", builtin)
    };
    let ok = with(
        "    load: { rate: 5, paths: [/, /cart], headers: { Host: shop } }\n",
        "builtin: load-success-rate",
    );
    let cfg = StandaloneConfig::parse(&ok, p).unwrap();
    let load = cfg.rollouts[0].load.as_ref().expect("load");
    assert_eq!(load.rate, 5.0);
    assert_eq!(load.paths, vec!["/", "/cart"]);
    assert_eq!(cfg.rollouts[0].rollout_spec().load.as_ref(), Some(load));

    // Out of range, a host in a path, an unknown field: refused with the field named.
    for (bad, field) in [
        ("    load: { rate: 0 }\n", "load.rate"),
        ("    load: { rate: .nan }\n", "load.rate"),
        (
            "    load: { rate: 5, concurrency: 1000 }\n",
            "load.concurrency",
        ),
        (
            "    load: { rate: 5, paths: [\"http://other/\"] }\n",
            "load.paths[0]",
        ),
        ("    load: { rate: 5, rps: 3 }\n", "load.rps"),
    ] {
        let e = StandaloneConfig::parse(&with(bad, "builtin: request-success-rate"), p)
            .unwrap_err()
            .to_string();
        assert!(e.contains(field), "{bad}: {e}");
    }
    // A load comparison with stable cannot be judged: stable never gets load.
    let cmp = with("    load: { rate: 5 }\n", "builtin: request-success-rate").replace(
        "builtin: error-rate-comparison",
        "builtin: load-errors-vs-stable",
    );
    let e = StandaloneConfig::parse(&cmp, p).unwrap_err().to_string();
    assert!(e.contains("only the canary"), "{e}");
}

#[test]
fn gates_parse_in_the_file_and_secret_refs_are_refused_standalone() {
    let text = std::fs::read_to_string(example()).unwrap();
    let p = Path::new("/tmp/r.yaml");
    let gated = text.replace(
        "    queryWindow: 10s\n",
        "    queryWindow: 10s\n    gates:\n      confirmPromotion:\n        deadline: 30m\n        onDeadline: hold\n        checks:\n          - name: qa\n            url: http://127.0.0.1:9000/qa\n            headers:\n              - { name: Authorization, env: QA_TOKEN }\n",
    );
    let cfg = StandaloneConfig::parse(&gated, p).unwrap();
    let spec = cfg.rollouts[0].rollout_spec();
    let g = spec
        .gates
        .get(sluice_crds::GateName::ConfirmPromotion)
        .unwrap();
    assert_eq!(g.on_deadline, sluice_crds::GateDeadlinePolicy::Hold);
    assert_eq!(g.checks[0].headers[0].env.as_deref(), Some("QA_TOKEN"));
    let secret = gated.replace(
        "{ name: Authorization, env: QA_TOKEN }",
        "{ name: Authorization, secretKeyRef: { name: s, key: k } }",
    );
    let e = StandaloneConfig::parse(&secret, p).unwrap_err().to_string();
    assert!(
        e.contains("gates.confirmPromotion: check \"qa\": header \"Authorization\": secretKeyRef is for Kubernetes"),
        "{e}"
    );
    let typo = gated.replace("onDeadline: hold", "onDeadlin: hold");
    let e = StandaloneConfig::parse(&typo, p).unwrap_err();
    assert!(
        e.to_string().contains("gates.confirmPromotion.onDeadlin"),
        "{e}"
    );
}

#[test]
fn notification_sinks_are_checked_at_load() {
    let text = std::fs::read_to_string(example()).unwrap();
    let p = Path::new("/tmp/r.yaml");
    let global = |sinks: &str| format!("notifications:\n  sinks:\n{sinks}{text}");
    let ok = global(
        "    - { name: ops, kind: webhook, urlEnv: OPS_URL, signingKeyFile: k, on: [promoted] }\n",
    );
    let cfg = StandaloneConfig::parse(&ok, p).unwrap();
    assert_eq!(cfg.notifications.sinks[0].on, [TransitionKind::Promoted]);
    let typo = global("    - { name: ops, kind: webhook, url: http://h, onn: [promoted] }\n");
    let e = StandaloneConfig::parse(&typo, p).unwrap_err();
    assert!(e.to_string().contains("notifications.sinks[0].onn"), "{e}");
    let kind = global("    - { name: ops, kind: email, url: http://h }\n");
    assert!(StandaloneConfig::parse(&kind, p).is_err());
    let event = global("    - { name: ops, kind: slack, url: http://h, on: [exploded] }\n");
    assert!(StandaloneConfig::parse(&event, p).is_err());
    let two = global("    - { name: ops, kind: slack, url: http://h, urlEnv: X }\n");
    let e = StandaloneConfig::parse(&two, p).unwrap_err().to_string();
    assert!(e.contains("exactly one of url, urlFile, urlEnv"), "{e}");
    // A rollout's own sink may not reuse a global sink's name.
    let dup = ok.replace(
        "    queryWindow: 10s\n",
        "    queryWindow: 10s\n    notifications:\n      - { name: ops, kind: teams, url: http://t }\n",
    );
    let e = StandaloneConfig::parse(&dup, p).unwrap_err().to_string();
    assert!(e.contains("web") && e.contains("defined twice"), "{e}");
}
