//! The controller image in tests: built by `scripts/image.sh` from the workspace's `sluice`
//! binary into an OCI archive, unpacked with umoci (root filesystem plus the OCI runtime
//! `config.json` it derives from the image config), and run the way the Deployment runs it:
//! as the image's numeric user, on a read-only root filesystem, without capabilities.
//!
//! Containers cannot run on the project's machines (podman's crun fails with "setrlimit
//! RLIMIT_NOFILE: Operation not permitted": no CAP_SYS_RESOURCE), so [`ImageBundle::command`]
//! runs the entrypoint in a chroot of exactly the image's files instead: a private mount
//! namespace (`unshare --mount`), the root filesystem bind-mounted read-only, one writable
//! scratch directory mounted on the image's empty `/tmp` (what an emptyDir volume is in a Pod),
//! `setpriv --no-new-privs` and coreutils `chroot --userspec=UID:GID`, whose setuid clears every
//! capability before the entrypoint runs. The host's network is shared (`--network=host`).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;

use crate::error::{io_err, Result, TestbedError};
use crate::paths::{find_bin, target_dir, workspace_root};

/// What the image says to run: from the runtime config umoci generates out of the image config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageProcess {
    /// Entrypoint followed by the default command.
    pub args: Vec<String>,
    /// `KEY=VALUE` pairs.
    pub env: Vec<String>,
    pub uid: u32,
    pub gid: u32,
    pub cwd: String,
}

#[derive(Deserialize)]
struct RuntimeConfig {
    process: RuntimeProcess,
    #[serde(default)]
    annotations: std::collections::BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct RuntimeProcess {
    args: Vec<String>,
    #[serde(default)]
    env: Vec<String>,
    user: RuntimeUser,
    cwd: String,
}

#[derive(Deserialize)]
struct RuntimeUser {
    uid: u32,
    gid: u32,
}

/// An unpacked image: its root filesystem, what it runs, and its annotations (the OCI labels).
#[derive(Debug)]
pub struct ImageBundle {
    rootfs: PathBuf,
    archive: PathBuf,
    process: ImageProcess,
    annotations: std::collections::BTreeMap<String, String>,
}

/// Exit code of `scripts/image.sh` when buildah/umoci are missing and cannot be installed.
const IMAGE_TOOLS_MISSING: i32 = 3;

impl ImageBundle {
    /// Builds the image from the workspace's (debug) `sluice` binary with `scripts/image.sh` and
    /// unpacks it. `Ok(Err(reason))` when the image tools are not available here (a skip).
    pub fn build_and_unpack(tag: &str) -> Result<std::result::Result<ImageBundle, String>> {
        // buildah and umoci (image.sh would also install them itself).
        if let Err(e) = crate::paths::ensure_installed() {
            tracing::warn!(error = %e, "install-deps failed; image.sh decides");
        }
        // The sandbox needs a private mount namespace (not granted in unprivileged containers).
        let probe = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "true"])
            .output();
        match probe {
            Ok(o) if o.status.success() => {}
            Ok(o) => {
                let why = String::from_utf8_lossy(&o.stderr).trim().to_string();
                return Ok(Err(format!(
                    "no private mount namespace here (unshare: {why})"
                )));
            }
            Err(e) => return Ok(Err(format!("unshare (util-linux) not runnable: {e}"))),
        }
        let bin = find_bin("sluice")?;
        let out_dir = target_dir().join("image");
        let archive = out_dir.join(format!("sluice-{tag}.oci.tar"));
        let context = out_dir.join(format!("context-{tag}"));
        let script = workspace_root().join("scripts/image.sh");
        let out = Command::new("bash")
            .arg(&script)
            .arg("--binary")
            .arg(&bin)
            .args(["--tag", tag])
            .arg("--output")
            .arg(&archive)
            .arg("--context")
            .arg(&context)
            .output()
            .map_err(io_err(format!("running {}", script.display())))?;
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        if out.status.code() == Some(IMAGE_TOOLS_MISSING) {
            return Ok(Err(format!("image tools missing: {}", stderr.trim())));
        }
        if !out.status.success() {
            return Err(TestbedError::Command {
                cmd: format!("scripts/image.sh --binary {} --tag {tag}", bin.display()),
                output: stderr,
            });
        }
        let name = format!("ghcr.io/sluice-dev/sluice:{tag}");
        Self::unpack(&archive, &name).map(Ok)
    }

    /// Unpacks the OCI archive `archive` (image reference `name` inside it) with umoci.
    pub fn unpack(archive: &Path, name: &str) -> Result<ImageBundle> {
        // One fixed place per archive, replaced on every unpack (a process-wide image is never
        // dropped, so a temp dir would be left behind by every run).
        let stem = archive
            .file_name()
            .map(|n| n.to_string_lossy().replace(".oci.tar", ""))
            .unwrap_or_else(|| "image".into());
        let dir = target_dir().join("image").join(format!("unpacked-{stem}"));
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(io_err(format!("removing {}", dir.display())))?;
        }
        let layout = dir.join("layout");
        let bundle = dir.join("bundle");
        std::fs::create_dir_all(&layout).map_err(io_err("creating the layout directory"))?;
        run(Command::new("tar")
            .arg("-xf")
            .arg(archive)
            .arg("-C")
            .arg(&layout))?;
        run(Command::new("umoci")
            .arg("unpack")
            .arg("--image")
            .arg(format!("{}:{name}", layout.display()))
            .arg(&bundle))?;
        let config_path = bundle.join("config.json");
        let text = std::fs::read_to_string(&config_path)
            .map_err(io_err(format!("reading {}", config_path.display())))?;
        let config: RuntimeConfig =
            serde_json::from_str(&text).map_err(|e| TestbedError::BadResponse {
                url: config_path.display().to_string(),
                detail: e.to_string(),
            })?;
        let p = config.process;
        Ok(ImageBundle {
            rootfs: bundle.join("rootfs"),
            archive: archive.to_path_buf(),
            process: ImageProcess {
                args: p.args,
                env: p.env,
                uid: p.user.uid,
                gid: p.user.gid,
                cwd: p.cwd,
            },
            annotations: config.annotations,
        })
    }

    /// The unpacked root filesystem.
    pub fn rootfs(&self) -> &Path {
        &self.rootfs
    }

    /// The OCI archive it came from.
    pub fn archive(&self) -> &Path {
        &self.archive
    }

    /// What the image runs, as which user.
    pub fn process(&self) -> &ImageProcess {
        &self.process
    }

    /// Image annotations (`org.opencontainers.image.*` labels among them).
    pub fn annotations(&self) -> &std::collections::BTreeMap<String, String> {
        &self.annotations
    }

    /// A command that runs the image's entrypoint with `args` (replacing the default command,
    /// as a Pod's `args` do) in the sandbox described in the module docs. `scratch` (made
    /// world-writable, as an emptyDir is) is mounted on `/tmp`; `extra_env` is added to the
    /// image's environment, which is all the process gets.
    pub fn command(&self, args: &[&str], scratch: &Path, extra_env: &[(&str, &str)]) -> Command {
        let p = &self.process;
        let mut cmd = Command::new("unshare");
        // $1 root, $2 scratch; the rest is the argv of `env -i`.
        cmd.args([
            "--mount",
            "--propagation",
            "private",
            "--",
            "/bin/sh",
            "-ec",
        ])
        .arg(concat!(
            "root=$1; scratch=$2; shift 2\n",
            "mount --bind \"$root\" \"$root\"\n",
            "mount -o remount,bind,ro \"$root\"\n",
            "mount --bind \"$scratch\" \"$root/tmp\"\n",
            "exec /usr/bin/env -i \"$@\"\n",
        ))
        .arg("sandbox")
        .arg(&self.rootfs)
        .arg(scratch);
        cmd.args(&p.env);
        cmd.args(extra_env.iter().map(|(k, v)| format!("{k}={v}")));
        cmd.args([
            "/usr/bin/setpriv",
            "--no-new-privs",
            "--inh-caps=-all",
            // chroot itself needs these three; its setuid then clears them all.
            "--bounding-set=-all,+sys_chroot,+setuid,+setgid",
            "--",
            "/usr/sbin/chroot",
        ])
        .arg(format!("--userspec={}:{}", p.uid, p.gid))
        .arg(format!("--groups={}", p.gid))
        .arg(&self.rootfs);
        let entrypoint = p.args.first().map(String::as_str).unwrap_or_default();
        cmd.arg(entrypoint).args(args);
        cmd
    }

    /// Every file of the root filesystem with its size, for checking that a run changed nothing.
    pub fn listing(&self) -> Result<Vec<(PathBuf, u64)>> {
        let mut out = Vec::new();
        walk(&self.rootfs, &self.rootfs, &mut out)?;
        out.sort();
        Ok(out)
    }
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<(PathBuf, u64)>) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(io_err(format!("listing {}", dir.display())))?;
    for e in entries {
        let e = e.map_err(io_err(format!("listing {}", dir.display())))?;
        let meta = std::fs::symlink_metadata(e.path()).map_err(io_err("stat"))?;
        let rel = e
            .path()
            .strip_prefix(root)
            .unwrap_or(&e.path())
            .to_path_buf();
        out.push((rel, meta.len()));
        if meta.is_dir() {
            walk(root, &e.path(), out)?;
        }
    }
    Ok(())
}

fn run(cmd: &mut Command) -> Result<()> {
    let out = cmd.output().map_err(io_err(format!("running {cmd:?}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(TestbedError::Command {
            cmd: format!("{cmd:?}"),
            output: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }
}
