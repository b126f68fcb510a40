//! The `sluice` command line (also `kubectl sluice` via a `kubectl-sluice` symlink): the controller,
//! standalone runner and benchmark, plus client commands to watch, command and wait on rollouts.

pub mod format;
pub mod target;

use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::{Parser, Subcommand};
use sluice_crds::{parse_duration, CommandAction};

use crate::api::{WaitFor, WaitResult, WaitTracker};
pub use target::{ClientOpts, Target};

/// Exit code for any error (bad arguments, unreachable API, unknown rollout).
pub const EXIT_ERROR: i32 = 1;

#[derive(Debug, Parser)]
#[command(
    name = "sluice",
    version,
    about = "Progressive delivery for Kubernetes: canary and blue/green rollouts gated by Prometheus and Alertmanager"
)]
pub struct Cli {
    /// Log as JSON lines (filter with RUST_LOG, e.g. RUST_LOG=sluice_controller=debug).
    #[arg(long, env = "SLUICE_JSON_LOGS")]
    pub json_logs: bool,
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Run the Kubernetes controller (and its HTTP API).
    Controller(crate::k8s::ControllerArgs),
    /// Run rollouts without Kubernetes from a file (NGINX/Traefik file routers, local state file).
    Run(crate::standalone::RunArgs),
    /// Run the seeded rollout benchmark (Sluice vs Flagger/Argo default policies).
    Bench(crate::bench::BenchArgs),
    /// Run your own Rollout spec through the benchmark engine: promotion and rollback rates,
    /// times and canary requests on simulated traffic.
    Simulate(crate::bench::simulate::SimulateArgs),
    /// Print the CustomResourceDefinitions as YAML.
    Crds,
    /// Show a rollout (or all rollouts without NAME).
    Status(StatusArgs),
    /// Advance past the current step, or promote at once with --full.
    Promote(PromoteArgs),
    /// Return all traffic to stable and fail the revision.
    Abort(CommandArgs),
    /// Hold the rollout where it is.
    Pause(CommandArgs),
    /// Continue a paused rollout.
    Resume(CommandArgs),
    /// Set a container image of the rollout's target Deployment (starts a rollout).
    SetImage(SetImageArgs),
    /// Standalone: set the canary's version (and address) of a `sluice run` rollout (starts a rollout).
    SetVersion(SetVersionArgs),
    /// Wait for the outcome; exit 0 promoted/completed, 2 rolled back, 3 paused for a human,
    /// 4 timeout, 5 superseded, 6 blocked (cannot start or move), 1 error.
    Wait(WaitArgs),
    /// Write a working standalone set-up (rollouts file, NGINX, mtail, Prometheus, Alertmanager).
    Init(crate::init::InitArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub struct StatusArgs {
    pub name: Option<String>,
    /// Keep printing changes until the rollout finishes.
    #[arg(short, long)]
    pub watch: bool,
    /// Output format.
    #[arg(short, long, value_parser = ["text", "json"], default_value = "text")]
    pub output: String,
    /// Poll interval of --watch.
    #[arg(long, default_value = "2s", value_parser = parse_dur)]
    pub interval: Duration,
    #[command(flatten)]
    pub client: ClientOpts,
}

#[derive(Debug, Clone, clap::Args)]
pub struct CommandArgs {
    pub name: String,
    /// Why (recorded on the command and in events).
    #[arg(long)]
    pub reason: Option<String>,
    /// Only if this revision is the one in progress.
    #[arg(long)]
    pub revision: Option<String>,
    #[command(flatten)]
    pub client: ClientOpts,
}

#[derive(Debug, Clone, clap::Args)]
pub struct PromoteArgs {
    /// Skip the remaining steps.
    #[arg(long)]
    pub full: bool,
    #[command(flatten)]
    pub args: CommandArgs,
}

#[derive(Debug, Clone, clap::Args)]
pub struct SetImageArgs {
    pub name: String,
    /// CONTAINER=IMAGE
    #[arg(value_parser = parse_assignment)]
    pub assignment: (String, String),
    /// Print only the new revision (for `sluice wait --revision "$(...)"`).
    #[arg(long)]
    pub print_revision: bool,
    #[command(flatten)]
    pub client: ClientOpts,
}

#[derive(Debug, Clone, clap::Args)]
pub struct SetVersionArgs {
    pub name: String,
    /// The version to roll out (becomes the canary revision).
    pub version: String,
    /// New `host:port` of the canary backend (default: the file's `canary.address`).
    #[arg(long)]
    pub address: Option<String>,
    /// Why (recorded in the state file).
    #[arg(long)]
    pub reason: Option<String>,
    #[command(flatten)]
    pub client: ClientOpts,
}

#[derive(Debug, Clone, clap::Args)]
pub struct WaitArgs {
    pub name: String,
    /// promoted (decision made) or completed (primary ready, post-promotion watch over).
    #[arg(long = "for", default_value = "promoted", value_parser = ["promoted", "completed"])]
    pub for_: String,
    /// Give up after this long (exit 4), e.g. 30m.
    #[arg(long, default_value = "30m", value_parser = parse_dur)]
    pub timeout: Duration,
    /// The revision this pipeline deployed (Kubernetes: pod-template hash, standalone: version);
    /// another one means superseded (exit 5). Default: the revision the target has now.
    #[arg(long)]
    pub revision: Option<String>,
    /// End with exit 6 once the rollout has reported that it cannot start or move for this long.
    #[arg(long, default_value = "30s", value_parser = parse_dur)]
    pub blocked_after: Duration,
    /// Poll interval.
    #[arg(long, default_value = "1s", value_parser = parse_dur)]
    pub interval: Duration,
    /// Output format of the result.
    #[arg(short, long, value_parser = ["text", "json"], default_value = "text")]
    pub output: String,
    #[command(flatten)]
    pub client: ClientOpts,
}

fn parse_dur(s: &str) -> Result<Duration, String> {
    parse_duration(s).map_err(|e| e.to_string())
}

/// `CONTAINER=IMAGE`.
pub fn parse_assignment(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((c, i)) if !c.is_empty() && !i.is_empty() => Ok((c.to_string(), i.to_string())),
        _ => Err(format!("expected CONTAINER=IMAGE, got {s:?}")),
    }
}

/// The program name clap shows: `kubectl sluice` when invoked as the kubectl plugin.
pub fn display_name(argv0: &str) -> &'static str {
    let base = std::path::Path::new(argv0)
        .file_name()
        .and_then(|s| s.to_str())
        .unwrap_or("sluice");
    if base.starts_with("kubectl-sluice") {
        "kubectl sluice"
    } else {
        "sluice"
    }
}

/// Colour in plain logs only on a terminal, and never with `NO_COLOR` set (no-color.org: any
/// non-empty value).
pub fn use_colour(stderr_is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    stderr_is_terminal && no_color.is_none_or(|v| v.is_empty())
}

/// Set up tracing: RUST_LOG filter (default `info`), plain or JSON lines on stderr.
pub fn init_logging(json: bool) {
    use std::io::IsTerminal as _;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let colour = use_colour(
        std::io::stderr().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    );
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// Install rustls' ring provider once: some feature combinations (test builds pull reqwest's
/// `rustls-no-provider`) make `reqwest::Client::build` panic without one. Idempotent.
pub fn ensure_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Run a parsed command line; returns the process exit code.
pub async fn run(cli: Cli) -> i32 {
    ensure_crypto_provider();
    // The controller and the runner set up their own logging (they have their own --json-logs).
    if !matches!(cli.command, Cmd::Controller(_) | Cmd::Run(_)) || cli.json_logs {
        init_logging(cli.json_logs);
    }
    match dispatch(cli.command).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", error_text(&e));
            EXIT_ERROR
        }
    }
}

/// An error and its causes on one line, each message once: libraries often repeat their
/// source's text in their own message, which `{:#}` would print again for every level.
pub fn error_text(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let msg = cause.to_string();
        let msg = msg.trim();
        if msg.is_empty() || parts.iter().any(|p| p.contains(msg)) {
            continue;
        }
        parts.push(msg.to_string());
    }
    parts.join(": ")
}

async fn dispatch(cmd: Cmd) -> anyhow::Result<i32> {
    match cmd {
        Cmd::Controller(args) => crate::k8s::run(args).await.map(|()| 0),
        Cmd::Run(args) => crate::standalone::run(args).await.map(|()| 0),
        Cmd::Bench(args) => crate::bench::run(args).await.map(|()| 0),
        Cmd::Simulate(args) => crate::bench::simulate::run(args).await.map(|()| 0),
        Cmd::Crds => {
            let yaml = sluice_crds::crd::all_crds_yaml().context("generating CRD YAML")?;
            print!("{yaml}");
            Ok(0)
        }
        Cmd::Status(a) => status(a).await,
        Cmd::Promote(p) => {
            let action = if p.full {
                CommandAction::PromoteFull
            } else {
                CommandAction::Promote
            };
            command(p.args, action).await
        }
        Cmd::Abort(a) => command(a, CommandAction::Abort).await,
        Cmd::Pause(a) => command(a, CommandAction::Pause).await,
        Cmd::Resume(a) => command(a, CommandAction::Resume).await,
        Cmd::SetImage(a) => {
            let target = Target::connect(&a.client).await?;
            let (container, image) = a.assignment;
            let (d, revision) = target.set_image(&a.name, &container, &image).await?;
            let revision = revision.unwrap_or_else(|| "unknown".to_string());
            if a.print_revision {
                println!("{revision}");
            } else {
                println!(
                    "deployment {}/{d}: container {container} set to {image}; revision {revision}",
                    target.namespace()
                );
            }
            Ok(0)
        }
        Cmd::SetVersion(a) => {
            let target = Target::connect(&a.client).await?;
            target
                .set_version(&a.name, &a.version, a.address.clone(), a.reason)
                .await?;
            let at = a.address.map(|x| format!(" at {x}")).unwrap_or_default();
            println!(
                "rollout {}/{}: version {}{at} set; the rollout starts at the next tick \
                 (follow it with `sluice wait {}`)",
                target.namespace(),
                a.name,
                a.version,
                a.name
            );
            Ok(0)
        }
        Cmd::Wait(a) => wait(a).await,
        Cmd::Init(a) => crate::init::run(a).map(|()| 0),
    }
}

/// What a command asks for, in words.
pub fn requested_words(action: CommandAction) -> &'static str {
    match action {
        CommandAction::Promote => "promotion to the next step",
        CommandAction::PromoteFull => "full promotion (all remaining steps skipped)",
        CommandAction::Abort => "abort",
        CommandAction::Pause => "pause",
        CommandAction::Resume => "resume",
    }
}

async fn command(a: CommandArgs, action: CommandAction) -> anyhow::Result<i32> {
    let target = Target::connect(&a.client).await?;
    let cmd = target
        .command(&a.name, action, a.reason, a.revision)
        .await?;
    println!(
        "{} requested for rollout {}/{} (command {})",
        requested_words(action),
        target.namespace(),
        a.name,
        cmd.id
    );
    Ok(0)
}

async fn status(a: StatusArgs) -> anyhow::Result<i32> {
    let target = Target::connect(&a.client).await?;
    let json = a.output == "json";
    let Some(name) = a.name else {
        let items = target.list().await?;
        if json {
            println!("{}", serde_json::to_string_pretty(&items)?);
        } else {
            print!("{}", format::list_text(&items));
        }
        return Ok(0);
    };
    let v = target.get(&name).await?;
    if json {
        println!("{}", serde_json::to_string(&v)?);
    } else {
        print!("{}", format::status_text(&v));
    }
    if !a.watch {
        return Ok(0);
    }
    // Watch until a rollout that was in flight finishes (or Ctrl-C).
    let render = |v: &crate::api::RolloutView| -> anyhow::Result<String> {
        Ok(if json {
            serde_json::to_string(v)?
        } else {
            format::watch_line(v)
        })
    };
    let mut last = render(&v)?;
    let mut was_in_flight = v_in_flight(&v);
    loop {
        tokio::time::sleep(a.interval).await;
        let v = target.get(&name).await?;
        let line = render(&v)?;
        if line != last {
            if json {
                println!("{line}");
            } else {
                println!("{} {line}", chrono::Utc::now().format("%H:%M:%S"));
            }
            last = line;
        }
        let in_flight = v_in_flight(&v);
        if was_in_flight && !in_flight {
            return Ok(0);
        }
        was_in_flight |= in_flight;
    }
}

/// Still worth watching: a revision is being rolled out or the rollout is starting.
fn v_in_flight(v: &crate::api::RolloutView) -> bool {
    v.phase.in_progress() || v.phase == sluice_crds::Phase::Initializing
}

async fn wait(a: WaitArgs) -> anyhow::Result<i32> {
    let want: WaitFor = a.for_.parse().map_err(anyhow::Error::msg)?;
    let target = Target::connect(&a.client).await?;
    let deadline = tokio::time::Instant::now() + a.timeout;
    let mut tracker =
        WaitTracker::new(want, a.revision.clone()).with_blocked_grace(a.blocked_after);
    // The first read must work: an unknown rollout or a bad token is an error, not a wait.
    let first = target.get(&a.name).await?;
    if a.revision.is_none() && first.desired_revision.is_none() && !first.phase.in_progress() {
        tracing::warn!(
            "cannot tell which revision the target of {} runs now; waiting for one to start \
             (pass --revision to name it)",
            a.name
        );
    }
    let mut view = Some(first);
    let result = loop {
        if let Some(v) = &view {
            if let Some(r) = tracker.observe(v, chrono::Utc::now()) {
                break r;
            }
        }
        if tokio::time::Instant::now() + a.interval > deadline {
            break tracker.timeout(view.as_ref());
        }
        tokio::time::sleep(a.interval).await;
        match target.get(&a.name).await {
            Ok(v) => view = Some(v),
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "reading the rollout failed; retrying");
            }
        }
    };
    print_wait(&result, &a.output)?;
    Ok(result.outcome.exit_code())
}

fn print_wait(r: &WaitResult, output: &str) -> anyhow::Result<()> {
    if output == "json" {
        println!("{}", serde_json::to_string(r)?);
    } else {
        println!("{}: {}", r.outcome.as_str(), r.reason);
    }
    Ok(())
}

/// Parse argv, honouring the `kubectl-sluice` plugin name.
pub fn parse_args(args: Vec<std::ffi::OsString>) -> Result<Cli, clap::Error> {
    use clap::{CommandFactory, FromArgMatches};
    let argv0 = args
        .first()
        .and_then(|a| a.to_str())
        .unwrap_or("sluice")
        .to_string();
    let name = display_name(&argv0);
    let matches = Cli::command()
        .name(name)
        .bin_name(name)
        .try_get_matches_from(args)?;
    Cli::from_arg_matches(&matches)
}

/// Validate the clap definition (used by a test).
pub fn check_definition() -> anyhow::Result<()> {
    use clap::CommandFactory;
    Cli::command().debug_assert();
    if Cli::command().get_subcommands().count() == 0 {
        bail!("no subcommands");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::use_colour;
    use std::ffi::OsStr;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(use_colour(true, None));
        assert!(
            !use_colour(false, None),
            "files and pipes get no ANSI codes"
        );
        assert!(!use_colour(true, Some(OsStr::new("1"))));
        assert!(
            use_colour(true, Some(OsStr::new(""))),
            "an empty NO_COLOR is unset"
        );
    }
}
