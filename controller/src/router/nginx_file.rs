//! NGINX without Kubernetes: Sluice owns one file holding an `upstream` block with the stable and
//! canary servers and their weights; the user's `nginx.conf` includes it. Each change is written
//! atomically, checked with `nginx -t` (rolled back to the previous file if NGINX refuses it) and
//! applied with a reload. NGINX forbids `weight=0`, so 0% / 100% mark the other server `down`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use super::{read_weight_file, RouterError, TrafficRouter};
use crate::standalone::atomic::{read_optional, write_atomic};

/// How the router asks NGINX to load a new file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum NginxReload {
    /// `nginx -s reload -c CONF [-p PREFIX]` (HUP to the master named in the pid file).
    #[default]
    Signal,
    /// Run this program with these arguments (e.g. `["systemctl", "reload", "nginx"]`).
    Command(Vec<String>),
    /// Write and validate only; someone else reloads.
    None,
}

/// Where the NGINX files are and how to reach NGINX (the standalone YAML's `router.nginx`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NginxFileSpec {
    /// Main config, passed to `nginx -t -c` and `nginx -s reload -c`.
    pub conf: PathBuf,
    /// NGINX prefix (`-p`); relative paths in `conf` resolve against it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<PathBuf>,
    /// The file Sluice owns and rewrites (included by `conf`), e.g. `upstream.conf`.
    pub upstream_file: PathBuf,
    /// Name of the upstream block. Default `app`.
    #[serde(default = "default_upstream")]
    pub upstream: String,
    /// `keepalive N` connections to the backends. Default 16; 0 leaves it out.
    #[serde(default = "default_keepalive")]
    pub keepalive: u32,
    /// NGINX binary. Default `nginx`.
    #[serde(default = "default_bin")]
    pub nginx_bin: PathBuf,
    #[serde(default)]
    pub reload: NginxReload,
}

fn default_upstream() -> String {
    "app".to_string()
}
fn default_keepalive() -> u32 {
    16
}
fn default_bin() -> PathBuf {
    PathBuf::from("nginx")
}

impl NginxFileSpec {
    /// A spec with defaults for everything but the paths.
    pub fn new(conf: impl Into<PathBuf>, upstream_file: impl Into<PathBuf>) -> Self {
        Self {
            conf: conf.into(),
            prefix: None,
            upstream_file: upstream_file.into(),
            upstream: default_upstream(),
            keepalive: default_keepalive(),
            nginx_bin: default_bin(),
            reload: NginxReload::default(),
        }
    }
}

/// Checks and reloads NGINX. The real one runs the `nginx` binary; tests may count calls.
pub trait NginxControl: Send + Sync {
    /// Validate the whole configuration; `Err` carries NGINX's message.
    fn test(&self) -> BoxFuture<'_, Result<(), String>>;
    /// Make the running NGINX load the configuration.
    fn reload(&self) -> BoxFuture<'_, Result<(), String>>;
    /// Every file the configuration is read from (`nginx -T`); None when this control cannot
    /// tell, in which case the include check is skipped.
    fn config_files(&self) -> BoxFuture<'_, Result<Option<Vec<PathBuf>>, String>> {
        Box::pin(async { Ok(None) })
    }
}

/// The files named in `nginx -T` output. NGINX writes each parsed file (the main one and every
/// `include`) as a line `# configuration file NAME:` followed by its text (src/core/nginx.c,
/// the `ngx_dump_config` loop). Pure.
pub fn dumped_files(dump: &str) -> Vec<PathBuf> {
    dump.lines()
        .filter_map(|l| l.strip_prefix("# configuration file "))
        .filter_map(|l| l.strip_suffix(':'))
        .map(PathBuf::from)
        .collect()
}

/// Whether `file` is among `files` (compared as given and with symlinks resolved).
pub fn is_included(file: &Path, files: &[PathBuf]) -> bool {
    let real = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let want = real(file);
    files.iter().any(|f| f == file || real(f) == want)
}

/// Runs the `nginx` binary.
#[derive(Debug, Clone)]
pub struct NginxCli {
    bin: PathBuf,
    conf: PathBuf,
    prefix: Option<PathBuf>,
    reload: NginxReload,
}

impl NginxCli {
    pub fn from_spec(spec: &NginxFileSpec) -> Self {
        Self {
            bin: spec.nginx_bin.clone(),
            conf: spec.conf.clone(),
            prefix: spec.prefix.clone(),
            reload: spec.reload.clone(),
        }
    }

    fn nginx(&self, extra: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(&self.bin);
        cmd.args(extra).arg("-c").arg(&self.conf);
        if let Some(p) = &self.prefix {
            cmd.arg("-p").arg(p);
        }
        cmd
    }
}

async fn run(mut cmd: tokio::process::Command) -> Result<(), String> {
    cmd.stdin(std::process::Stdio::null()).kill_on_drop(true);
    let out = cmd
        .output()
        .await
        .map_err(|e| format!("cannot run {:?}: {e}", cmd.as_std().get_program()))?;
    if out.status.success() {
        Ok(())
    } else {
        let mut msg = String::from_utf8_lossy(&out.stderr).trim().to_string();
        if msg.is_empty() {
            msg = String::from_utf8_lossy(&out.stdout).trim().to_string();
        }
        Err(format!("{} ({})", msg, out.status))
    }
}

impl NginxControl for NginxCli {
    fn test(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(run(self.nginx(&["-t", "-q"])))
    }

    fn config_files(&self) -> BoxFuture<'_, Result<Option<Vec<PathBuf>>, String>> {
        Box::pin(async move {
            let mut cmd = self.nginx(&["-T", "-q"]);
            cmd.stdin(std::process::Stdio::null()).kill_on_drop(true);
            let out = cmd
                .output()
                .await
                .map_err(|e| format!("cannot run {}: {e}", self.bin.display()))?;
            if !out.status.success() {
                return Err(format!(
                    "{} ({})",
                    String::from_utf8_lossy(&out.stderr).trim(),
                    out.status
                ));
            }
            Ok(Some(dumped_files(&String::from_utf8_lossy(&out.stdout))))
        })
    }

    fn reload(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            match &self.reload {
                NginxReload::Signal => run(self.nginx(&["-s", "reload"])).await,
                NginxReload::Command(argv) => {
                    let Some((prog, args)) = argv.split_first() else {
                        return Err("empty reload command".to_string());
                    };
                    let mut cmd = tokio::process::Command::new(prog);
                    cmd.args(args);
                    run(cmd).await
                }
                NginxReload::None => Ok(()),
            }
        })
    }
}

/// The upstream file's text for a canary weight (0..=100). Pure.
pub fn render_upstream(
    upstream: &str,
    stable: &str,
    canary: &str,
    weight: i32,
    keepalive: u32,
) -> String {
    let line = |addr: &str, w: i32| {
        if w <= 0 {
            // weight=0 is invalid in NGINX; `down` keeps the server listed but sends it nothing.
            format!("    server {addr} down;\n")
        } else {
            // max_fails=0: no passive health check, so a failing canary keeps its share and stays visible.
            format!("    server {addr} weight={w} max_fails=0;\n")
        }
    };
    let mut out = String::new();
    out.push_str("# Managed by Sluice: rewritten at every weight change, edits are lost.\n");
    out.push_str(&format!("# sluice canary-weight: {weight}\n"));
    out.push_str(&format!("upstream {upstream} {{\n"));
    out.push_str(&line(stable, 100 - weight));
    out.push_str(&line(canary, weight));
    if keepalive > 0 {
        out.push_str(&format!("    keepalive {keepalive};\n"));
    }
    out.push_str("}\n");
    out
}

/// One `server` line of an upstream block.
#[derive(Debug, Clone, PartialEq)]
struct Server {
    addr: String,
    weight: u32,
    down: bool,
}

fn parse_servers(text: &str, upstream: &str) -> Vec<Server> {
    let mut inside = false;
    let mut servers = Vec::new();
    for raw in text.lines() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let toks: Vec<&str> = line
            .split_whitespace()
            .map(|t| t.trim_end_matches(';'))
            .filter(|t| !t.is_empty())
            .collect();
        match toks.as_slice() {
            ["upstream", name, "{"] | ["upstream", name, "{", ..] => inside = *name == upstream,
            ["}"] | ["}", ..] => inside = false,
            ["server", addr, flags @ ..] if inside => {
                let mut s = Server {
                    addr: addr.to_string(),
                    weight: 1, // NGINX's default
                    down: false,
                };
                for f in flags {
                    if *f == "down" {
                        s.down = true;
                    } else if let Some(w) = f.strip_prefix("weight=") {
                        s.weight = w.parse().unwrap_or(1);
                    }
                }
                servers.push(s);
            }
            _ => {}
        }
    }
    servers
}

/// The canary weight (0..=100) an upstream file routes, read from its `server` lines. Pure.
pub fn parse_weight(text: &str, upstream: &str, stable: &str, canary: &str) -> Result<i32, String> {
    let servers = parse_servers(text, upstream);
    let live = |addr: &str| -> u32 {
        servers
            .iter()
            .filter(|s| s.addr == addr && !s.down)
            .map(|s| s.weight)
            .sum()
    };
    let (s, c) = (live(stable), live(canary));
    if s + c == 0 {
        return Err(format!(
            "upstream {upstream} has no live server for {stable} or {canary}"
        ));
    }
    Ok(((c as f64) * 100.0 / f64::from(s + c)).round() as i32)
}

/// Reject values that would break out of the NGINX syntax.
fn check_token(what: &str, v: &str) -> Result<(), RouterError> {
    let bad = v.is_empty()
        || v.chars()
            .any(|c| c.is_whitespace() || matches!(c, ';' | '{' | '}' | '#' | '"' | '\'' | '$'));
    if bad {
        Err(RouterError::Io(format!("invalid {what} {v:?} for NGINX")))
    } else {
        Ok(())
    }
}

struct State {
    /// The last reload failed: retry it even when the file is unchanged.
    reload_pending: bool,
    /// `nginx -T` showed the upstream file among the files NGINX reads (checked until true).
    include_checked: bool,
}

/// The NGINX file router for one rollout.
pub struct NginxFileRouter {
    spec: NginxFileSpec,
    stable: String,
    canary: String,
    control: Arc<dyn NginxControl>,
    state: Mutex<State>,
}

impl NginxFileRouter {
    /// `stable` / `canary` are `host:port` of the two backends.
    pub fn new(
        spec: NginxFileSpec,
        stable: impl Into<String>,
        canary: impl Into<String>,
    ) -> Result<Self, RouterError> {
        let control = Arc::new(NginxCli::from_spec(&spec));
        Self::with_control(spec, stable, canary, control)
    }

    /// As `new`, with another way of checking and reloading NGINX (tests).
    pub fn with_control(
        spec: NginxFileSpec,
        stable: impl Into<String>,
        canary: impl Into<String>,
        control: Arc<dyn NginxControl>,
    ) -> Result<Self, RouterError> {
        let (stable, canary) = (stable.into(), canary.into());
        check_token("upstream name", &spec.upstream)?;
        check_token("stable address", &stable)?;
        check_token("canary address", &canary)?;
        if stable == canary {
            return Err(RouterError::Io(format!(
                "stable and canary are the same address {stable}"
            )));
        }
        Ok(Self {
            spec,
            stable,
            canary,
            control,
            state: Mutex::new(State {
                reload_pending: false,
                include_checked: false,
            }),
        })
    }

    pub fn upstream_file(&self) -> &Path {
        &self.spec.upstream_file
    }

    async fn apply(&self, weight: i32) -> Result<(), RouterError> {
        if !(0..=100).contains(&weight) {
            return Err(RouterError::InvalidWeight(weight));
        }
        let mut state = self.state.lock().await;
        let path = &self.spec.upstream_file;
        let text = render_upstream(
            &self.spec.upstream,
            &self.stable,
            &self.canary,
            weight,
            self.spec.keepalive,
        );
        let previous = read_optional(path).map_err(|e| RouterError::file(path, e))?;
        if previous.as_deref() == Some(text.as_str()) && !state.reload_pending {
            return Ok(());
        }
        if previous.as_deref() != Some(text.as_str()) {
            write_atomic(path, text.as_bytes()).map_err(|e| RouterError::file(path, e))?;
            if let Err(msg) = self.control.test().await {
                // Put the previous file back so a later reload (ours or anyone's) cannot load the bad one.
                let restored = match &previous {
                    Some(old) => write_atomic(path, old.as_bytes()),
                    None => std::fs::remove_file(path),
                };
                if let Err(e) = restored {
                    tracing::error!(path = %path.display(), error = %e, "could not restore previous NGINX upstream file");
                }
                return Err(RouterError::Rejected(msg));
            }
        }
        if !state.include_checked {
            self.check_included().await?;
            state.include_checked = true;
        }
        state.reload_pending = true;
        self.control
            .reload()
            .await
            .map_err(|m| RouterError::Io(format!("nginx reload failed: {m}")))?;
        state.reload_pending = false;
        tracing::info!(path = %path.display(), weight, "nginx upstream updated and reloaded");
        Ok(())
    }

    /// An upstream file NGINX never reads would make every weight change a no-op that looks
    /// applied: refuse it until `conf` includes the file.
    pub async fn check_included(&self) -> Result<(), RouterError> {
        let files = self
            .control
            .config_files()
            .await
            .map_err(|m| RouterError::Rejected(format!("nginx -T failed: {m}")))?;
        let Some(files) = files else {
            return Ok(());
        };
        let path = &self.spec.upstream_file;
        if is_included(path, &files) {
            return Ok(());
        }
        Err(RouterError::Io(format!(
            "{} does not include the upstream file {}: add `include {};` inside `http {{ }}` \
             (nginx -T lists {})",
            self.spec.conf.display(),
            path.display(),
            path.display(),
            files
                .iter()
                .map(|f| f.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )))
    }

    async fn read(&self) -> Result<Option<i32>, RouterError> {
        let path = &self.spec.upstream_file;
        read_weight_file(path, |text| {
            parse_weight(text, &self.spec.upstream, &self.stable, &self.canary)
        })
    }
}

impl TrafficRouter for NginxFileRouter {
    fn set_weight(&self, weight: i32) -> BoxFuture<'_, Result<(), RouterError>> {
        Box::pin(self.apply(weight))
    }

    fn current_weight(&self) -> BoxFuture<'_, Result<Option<i32>, RouterError>> {
        Box::pin(self.read())
    }

    /// The file stays (the user's config includes it); all traffic goes to stable.
    fn cleanup(&self) -> BoxFuture<'_, Result<(), RouterError>> {
        Box::pin(self.apply(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: &str = "127.0.0.1:18081";
    const C: &str = "127.0.0.1:18082";

    #[test]
    fn render_then_parse_round_trips_every_weight() {
        for w in 0..=100 {
            let text = render_upstream("app", S, C, w, 16);
            assert_eq!(parse_weight(&text, "app", S, C), Ok(w), "{text}");
        }
    }

    #[test]
    fn zero_and_hundred_use_down_never_weight_zero() {
        let zero = render_upstream("app", S, C, 0, 0);
        assert!(zero.contains(&format!("server {C} down;")));
        assert!(zero.contains(&format!("server {S} weight=100 max_fails=0;")));
        assert!(!zero.contains("weight=0"));
        let full = render_upstream("app", S, C, 100, 0);
        assert!(full.contains(&format!("server {S} down;")));
        assert!(!full.contains("keepalive"));
    }

    #[test]
    fn parse_handles_foreign_upstreams_defaults_and_comments() {
        let text = format!(
            "upstream other {{ server {C} weight=50; }}\nupstream app {{\n  server {S};  # w=1\n  server {C} weight=3 max_fails=0;\n}}\n"
        );
        assert_eq!(parse_weight(&text, "app", S, C), Ok(75));
        assert!(parse_weight("upstream app {\n}\n", "app", S, C).is_err());
    }

    #[test]
    fn dumped_files_are_read_from_nginx_t_output() {
        let dump = "# configuration file /etc/nginx/nginx.conf:\nhttp {\n include up.conf;\n}\n\n# configuration file /etc/nginx/up.conf:\nupstream app {}\n";
        let files = dumped_files(dump);
        assert_eq!(
            files,
            [
                PathBuf::from("/etc/nginx/nginx.conf"),
                PathBuf::from("/etc/nginx/up.conf")
            ]
        );
        assert!(is_included(Path::new("/etc/nginx/up.conf"), &files));
        assert!(!is_included(Path::new("/etc/nginx/other.conf"), &files));
    }

    #[test]
    fn rejects_addresses_that_would_inject_config() {
        let spec = NginxFileSpec::new("/x/nginx.conf", "/x/up.conf");
        assert!(NginxFileRouter::new(spec.clone(), "1.2.3.4:80; }", C).is_err());
        assert!(NginxFileRouter::new(spec.clone(), S, S).is_err());
        assert!(NginxFileRouter::new(spec, S, C).is_ok());
    }
}
