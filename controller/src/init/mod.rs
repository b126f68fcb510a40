//! `sluice init standalone`: write a working standalone set-up into a directory — the rollouts
//! file, an NGINX config whose `sluice.conf` holds the `map $upstream_addr`, the access-log
//! format and the `include` of the upstream file Sluice owns, the mtail program reading that
//! log, a Prometheus config scraping mtail with an alert rule, and an Alertmanager route to
//! Sluice's webhook — plus a README with the commands that start each piece
//! ([`start_commands`], which the quick-start test runs as written).

pub mod templates;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};

/// Arguments of `sluice init`.
#[derive(Debug, Clone, clap::Args)]
pub struct InitArgs {
    /// What to set up (only `standalone`).
    #[arg(value_parser = ["standalone"])]
    pub mode: String,
    /// Directory to write into (created; existing files are never overwritten).
    #[arg(long, default_value = "sluice-standalone")]
    pub dir: PathBuf,
    /// Rollout name.
    #[arg(long, default_value = "web")]
    pub name: String,
    /// `host:port` of the stable backend.
    #[arg(long, default_value = "127.0.0.1:8081")]
    pub stable: String,
    /// `host:port` of the canary backend.
    #[arg(long, default_value = "127.0.0.1:8082")]
    pub canary: String,
    /// Where NGINX serves the application.
    #[arg(long, default_value = "127.0.0.1:8000")]
    pub listen: String,
    /// Where Sluice's HTTP API (and Alertmanager webhook) listens.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub api: String,
    /// Where mtail serves its metrics.
    #[arg(long, default_value = "127.0.0.1:3903")]
    pub mtail: String,
    /// Where Prometheus listens.
    #[arg(long, default_value = "127.0.0.1:9090")]
    pub prometheus: String,
    /// Where Alertmanager listens.
    #[arg(long, default_value = "127.0.0.1:9093")]
    pub alertmanager: String,
    /// Prometheus scrape and rule evaluation interval.
    #[arg(long, default_value = "5s")]
    pub scrape_interval: String,
    /// Analysis interval of the rollout (its query window is twice as long).
    #[arg(long, default_value = "30s")]
    pub analysis_interval: String,
    /// API and webhook token (default: a random one).
    #[arg(long)]
    pub token: Option<String>,
    /// The NGINX binary Sluice runs for `nginx -t` / `-s reload` (default `nginx` from PATH).
    #[arg(long)]
    pub nginx_bin: Option<PathBuf>,
}

/// Everything the templates need, checked.
#[derive(Debug, Clone)]
pub struct Plan {
    pub dir: PathBuf,
    pub name: String,
    pub stable: String,
    pub canary: String,
    pub listen: String,
    pub api: String,
    pub mtail: String,
    pub prometheus: String,
    pub alertmanager: String,
    pub scrape_interval: String,
    pub analysis_interval: String,
    pub query_window: String,
    pub token: String,
    pub nginx_bin: Option<PathBuf>,
}

impl Plan {
    pub fn from_args(a: &InitArgs) -> anyhow::Result<Plan> {
        use crate::standalone::config::check_address;
        for (what, v) in [
            ("--stable", &a.stable),
            ("--canary", &a.canary),
            ("--listen", &a.listen),
            ("--api", &a.api),
            ("--mtail", &a.mtail),
            ("--prometheus", &a.prometheus),
            ("--alertmanager", &a.alertmanager),
        ] {
            check_address(v).map_err(|e| anyhow::anyhow!("{what}: {e}"))?;
        }
        let name_ok = !a.name.is_empty()
            && a.name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !name_ok {
            bail!("--name must be letters, digits, '-' or '_'");
        }
        let interval = sluice_crds::parse_duration(&a.analysis_interval)
            .map_err(|e| anyhow::anyhow!("--analysis-interval: {e}"))?;
        sluice_crds::parse_duration(&a.scrape_interval)
            .map_err(|e| anyhow::anyhow!("--scrape-interval: {e}"))?;
        let token = match &a.token {
            Some(t)
                if t.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) =>
            {
                t.clone()
            }
            Some(_) => bail!("--token: use letters, digits, '-', '_' or '.'"),
            None => format!("{:032x}", rand::random::<u128>()),
        };
        let dir =
            std::path::absolute(&a.dir).with_context(|| format!("--dir {}", a.dir.display()))?;
        Ok(Plan {
            dir,
            name: a.name.clone(),
            stable: a.stable.clone(),
            canary: a.canary.clone(),
            listen: a.listen.clone(),
            api: a.api.clone(),
            mtail: a.mtail.clone(),
            prometheus: a.prometheus.clone(),
            alertmanager: a.alertmanager.clone(),
            scrape_interval: a.scrape_interval.clone(),
            analysis_interval: a.analysis_interval.clone(),
            query_window: format!("{}s", (interval.as_secs() * 2).max(2)),
            token,
            nginx_bin: a.nginx_bin.clone(),
        })
    }

    fn port(addr: &str) -> &str {
        addr.rsplit_once(':').map_or(addr, |(_, p)| p)
    }

    fn host(addr: &str) -> &str {
        addr.rsplit_once(':').map_or(addr, |(h, _)| h)
    }
}

/// One process of the set-up: its name, argv (binary first, looked up in PATH) and working
/// directory. The README shows these; the quick-start test runs them.
#[derive(Debug, Clone, PartialEq)]
pub struct StartCommand {
    pub name: &'static str,
    pub argv: Vec<String>,
    pub cwd: PathBuf,
}

/// The commands that start NGINX, mtail, Prometheus, Alertmanager and Sluice, in that order
/// (Debian package binary names).
pub fn start_commands(p: &Plan) -> Vec<StartCommand> {
    let d = |rel: &str| p.dir.join(rel).display().to_string();
    let s = |x: &str| x.to_string();
    vec![
        StartCommand {
            name: "nginx",
            argv: vec![
                p.nginx_bin
                    .as_ref()
                    .map_or_else(|| s("nginx"), |b| b.display().to_string()),
                s("-p"),
                d("nginx"),
                s("-c"),
                s("nginx.conf"),
            ],
            cwd: p.dir.clone(),
        },
        StartCommand {
            name: "mtail",
            argv: vec![
                s("mtail"),
                s("--progs"),
                d("mtail"),
                s("--logs"),
                d("nginx/logs/access.log"),
                s("--address"),
                s(Plan::host(&p.mtail)),
                s("--port"),
                s(Plan::port(&p.mtail)),
                s("--logtostderr"),
                s("--emit_prog_label=false"),
            ],
            cwd: p.dir.clone(),
        },
        StartCommand {
            name: "prometheus",
            argv: vec![
                s("prometheus"),
                format!("--config.file={}", d("prometheus/prometheus.yml")),
                format!("--storage.tsdb.path={}", d("prometheus/data")),
                format!("--web.listen-address={}", p.prometheus),
                s("--web.enable-lifecycle"),
            ],
            cwd: p.dir.clone(),
        },
        StartCommand {
            name: "alertmanager",
            argv: vec![
                s("prometheus-alertmanager"),
                format!("--config.file={}", d("alertmanager/alertmanager.yml")),
                format!("--storage.path={}", d("alertmanager/data")),
                format!("--web.listen-address={}", p.alertmanager),
                s("--cluster.listen-address="),
            ],
            cwd: p.dir.clone(),
        },
        StartCommand {
            name: "sluice",
            // Relative on purpose: the README says `cd DIR`, and router paths resolve against
            // the file's real directory whatever the working directory.
            argv: vec![s("sluice"), s("run"), s("-f"), s("rollouts.yaml")],
            cwd: p.dir.clone(),
        },
    ]
}

/// The files to write, relative to the directory, with their text.
pub fn files(p: &Plan) -> Vec<(&'static str, String)> {
    vec![
        ("rollouts.yaml", templates::rollouts(p)),
        ("nginx/nginx.conf", templates::nginx_conf(p)),
        ("nginx/sluice.conf", templates::nginx_sluice_conf(p)),
        ("nginx/upstream.conf", templates::upstream_conf(p)),
        ("mtail/nginx.mtail", templates::MTAIL_PROGRAM.to_string()),
        ("prometheus/prometheus.yml", templates::prometheus_yml(p)),
        ("prometheus/alerts.yml", templates::alerts_yml(p)),
        (
            "alertmanager/alertmanager.yml",
            templates::alertmanager_yml(p),
        ),
        ("README.md", templates::readme(p, &start_commands(p))),
    ]
}

/// Write the set-up. Refuses (writing nothing) when any of the files already exists.
pub fn write(p: &Plan) -> anyhow::Result<Vec<PathBuf>> {
    let files = files(p);
    let existing: Vec<String> = files
        .iter()
        .map(|(rel, _)| p.dir.join(rel))
        .filter(|path| path.exists())
        .map(|path| path.display().to_string())
        .collect();
    if !existing.is_empty() {
        bail!(
            "not overwriting existing files (choose another --dir or move them): {}",
            existing.join(", ")
        );
    }
    for sub in [
        "nginx/logs",
        "nginx/tmp",
        "prometheus/data",
        "alertmanager/data",
    ] {
        let d = p.dir.join(sub);
        std::fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
    }
    let mut written = Vec::new();
    for (rel, text) in files {
        let path = p.dir.join(rel);
        write_new(&path, &text)?;
        written.push(path);
    }
    Ok(written)
}

fn write_new(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

/// `sluice init standalone`.
pub fn run(a: InitArgs) -> anyhow::Result<()> {
    let plan = Plan::from_args(&a)?;
    let written = write(&plan)?;
    println!("wrote a standalone set-up in {}:", plan.dir.display());
    for w in &written {
        println!("  {}", w.display());
    }
    println!(
        "next: read {} (start NGINX, mtail, Prometheus, Alertmanager and `sluice run`), then \
         `sluice set-version {} v2 --server http://{} --token {}`",
        plan.dir.join("README.md").display(),
        plan.name,
        plan.api,
        plan.token
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(dir: &Path) -> InitArgs {
        use clap::Parser;
        #[derive(Parser)]
        struct T {
            #[command(flatten)]
            a: InitArgs,
        }
        let dir = dir.display().to_string();
        T::parse_from(["t", "standalone", "--dir", &dir, "--token", "tok"]).a
    }

    #[test]
    fn writes_a_file_set_that_loads_and_never_overwrites() {
        let tmp = tempfile::tempdir().unwrap();
        let plan = Plan::from_args(&args(&tmp.path().join("qs"))).unwrap();
        let written = write(&plan).unwrap();
        assert_eq!(written.len(), files(&plan).len());
        // The rollouts file is valid and its router paths point into the set-up.
        let cfg =
            crate::standalone::StandaloneConfig::load(&plan.dir.join("rollouts.yaml")).unwrap();
        let n = cfg.rollouts[0].router.nginx.as_ref().unwrap();
        assert_eq!(n.upstream_file, plan.dir.join("nginx/upstream.conf"));
        assert_eq!(cfg.api_token.as_deref(), Some("tok"));
        // The upstream file parses as the router reads it: all traffic on stable.
        let up = std::fs::read_to_string(&n.upstream_file).unwrap();
        let w = crate::router::nginx_file::parse_weight(&up, "app", &plan.stable, &plan.canary);
        assert_eq!(w, Ok(0));
        // A second run refuses and changes nothing.
        let before = std::fs::read_to_string(plan.dir.join("rollouts.yaml")).unwrap();
        let e = write(&plan).unwrap_err().to_string();
        assert!(e.contains("not overwriting"), "{e}");
        let after = std::fs::read_to_string(plan.dir.join("rollouts.yaml")).unwrap();
        assert_eq!(before, after);
    }

    #[test]
    fn bad_addresses_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let mut a = args(tmp.path());
        a.canary = "8082".into();
        let e = Plan::from_args(&a).unwrap_err().to_string();
        assert!(e.starts_with("--canary"), "{e}");
    }
}
