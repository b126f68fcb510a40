//! The standalone quick start, as a user runs it: `sluice init standalone` writes the set-up,
//! the commands its README lists start real NGINX, mtail, Prometheus, Alertmanager and
//! `sluice run`; `sluice run --check` passes (and lists every problem of a broken copy);
//! `sluice set-version` starts a rollout and `sluice wait` sees it promoted.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use sluice_tests::{find_bin, free_port, tool, DemoApp, LoadGen, Proc};

const TOKEN: &str = "quickstart-token";

fn sluice_bin() -> PathBuf {
    find_bin("sluice").unwrap()
}

fn sluice(args: &[&str]) -> std::process::Output {
    sluice_tests::run_sluice(args).unwrap()
}

fn text(o: &std::process::Output) -> String {
    sluice_tests::output_text(o)
}

/// The `argv   # name` lines of the README's first `sh` block.
fn readme_commands(readme: &str) -> Vec<(String, Vec<String>)> {
    let block = readme
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .unwrap_or_default();
    block
        .lines()
        .filter_map(|l| {
            let (cmd, name) = l.split_once("   # ")?;
            let argv = cmd.split_whitespace().map(str::to_string).collect();
            Some((name.trim().to_string(), argv))
        })
        .collect()
}

/// The binary a README command names, as installed by scripts/install-deps.sh.
fn resolve(argv0: &str) -> PathBuf {
    if argv0 == "sluice" {
        return sluice_bin();
    }
    if argv0.starts_with('/') {
        return PathBuf::from(argv0);
    }
    tool(argv0).unwrap_or_else(|| panic!("{argv0} is not installed (scripts/install-deps.sh)"))
}

fn ready_url(name: &str, addr: &str) -> String {
    match name {
        "nginx" => format!("http://{addr}/"),
        "mtail" => format!("http://{addr}/metrics"),
        "prometheus" | "alertmanager" => format!("http://{addr}/-/ready"),
        _ => format!("http://{addr}/healthz"),
    }
}

fn addr() -> String {
    format!("127.0.0.1:{}", free_port())
}

#[tokio::test(flavor = "multi_thread")]
async fn quick_start_reaches_a_promoted_rollout_on_real_nginx_and_prometheus() {
    let Some(nginx) = tool("nginx") else {
        panic!("nginx is not installed (scripts/install-deps.sh)");
    };
    let stable = DemoApp::start("v1", 0.0, 5.0).await.unwrap();
    let canary = DemoApp::start("v2", 0.0, 5.0).await.unwrap();
    let (listen, api, mtail, prom, am) = (addr(), addr(), addr(), addr(), addr());
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("qs");
    let dir_s = dir.display().to_string();
    let nginx_s = nginx.display().to_string();
    let o = sluice(&[
        "init",
        "standalone",
        "--dir",
        &dir_s,
        "--stable",
        &stable.addr(),
        "--canary",
        &canary.addr(),
        "--listen",
        &listen,
        "--api",
        &api,
        "--mtail",
        &mtail,
        "--prometheus",
        &prom,
        "--alertmanager",
        &am,
        "--scrape-interval",
        "1s",
        "--analysis-interval",
        "3s",
        "--token",
        TOKEN,
        "--nginx-bin",
        &nginx_s,
    ]);
    assert!(o.status.success(), "{}", text(&o));

    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    let commands = readme_commands(&readme);
    let names: Vec<&str> = commands.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["nginx", "mtail", "prometheus", "alertmanager", "sluice"]
    );
    let addr_of = |n: &str| match n {
        "nginx" => listen.clone(),
        "mtail" => mtail.clone(),
        "prometheus" => prom.clone(),
        "alertmanager" => am.clone(),
        _ => api.clone(),
    };
    let mut procs: Vec<Proc> = Vec::new();
    for (name, argv) in &commands {
        if name == "sluice" {
            // Before Sluice starts: the check passes with everything it looked at.
            let o = sluice(&["run", "--check", "-f", &format!("{dir_s}/rollouts.yaml")]);
            let out = text(&o);
            assert!(o.status.success(), "{out}");
            assert!(out.contains("ok: rollout web: nginx -T includes"), "{out}");
            assert!(out.contains("Prometheus http://"), "{out}");
        }
        let mut cmd = Command::new(resolve(&argv[0]));
        cmd.args(&argv[1..]).current_dir(&dir);
        let log = dir.join(format!("{name}.log"));
        let mut p = Proc::spawn(name, &mut cmd, &log).unwrap();
        p.wait_ready(&ready_url(name, &addr_of(name)), Duration::from_secs(30))
            .await
            .unwrap_or_else(|e| panic!("{name} did not start: {e}"));
        procs.push(p);
    }
    let load = LoadGen::start(&format!("http://{listen}/"), 50.0);

    let server = format!("http://{api}");
    let o = sluice(&[
        "set-version",
        "web",
        "v2",
        "--server",
        &server,
        "--token",
        TOKEN,
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("version v2 set"), "{}", text(&o));
    let o = sluice(&[
        "wait",
        "web",
        "--server",
        &api,
        "--token",
        TOKEN,
        "--timeout",
        "120s",
    ]);
    let sluice_log = procs.last().map(|p| p.log_tail(40)).unwrap_or_default();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}\nsluice log:\n{sluice_log}",
        text(&o)
    );
    assert!(
        text(&o).starts_with("promoted: revision v2 "),
        "{}",
        text(&o)
    );
    let during = load.stop().await;
    assert!(during.version("v2") > 0, "the canary served: {during:?}");

    // A broken copy: every problem is listed, and the exit is non-zero.
    let good = std::fs::read_to_string(dir.join("rollouts.yaml")).unwrap();
    let bad = good
        .replace(
            "upstreamFile: nginx/upstream.conf",
            "upstreamFile: nginx/elsewhere.conf",
        )
        .replace(
            &format!("prometheus: http://{prom}"),
            "prometheus: http://127.0.0.1:9",
        );
    let bad_path = dir.join("broken.yaml");
    std::fs::write(&bad_path, bad).unwrap();
    let o = sluice(&["run", "--check", "-f", &bad_path.display().to_string()]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains("problem: rollout web: Prometheus http://127.0.0.1:9"),
        "{out}"
    );
    assert!(out.contains("does not include the upstream file"), "{out}");
    assert!(out.contains("error: 2 problems in"), "{out}");
    drop(procs);
}
