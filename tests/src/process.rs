//! A child-process guard: spawn with output to a log file, wait for readiness, stop in Drop.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::error::{io_err, Result, TestbedError};

/// How long a stopped process gets between SIGTERM and SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(3);

/// Default time a component gets to become ready.
pub const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// A running child process. Dropping it sends SIGTERM, waits up to 3 s, then SIGKILLs.
#[derive(Debug)]
pub struct Proc {
    name: String,
    child: Option<Child>,
    logs: Vec<PathBuf>,
}

impl Proc {
    /// Spawns `cmd` with stdin closed and stdout+stderr appended to `log`.
    pub fn spawn(name: &str, cmd: &mut Command, log: &Path) -> Result<Proc> {
        let out = File::create(log).map_err(io_err(format!("creating {}", log.display())))?;
        let err = out
            .try_clone()
            .map_err(io_err(format!("cloning {}", log.display())))?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(io_err(format!("spawning {name} ({cmd:?})")))?;
        Ok(Proc {
            name: name.to_string(),
            child: Some(child),
            logs: vec![log.to_path_buf()],
        })
    }

    /// Also shows `log` (e.g. NGINX's error.log) in error messages.
    pub fn add_log(&mut self, log: &Path) {
        self.logs.push(log.to_path_buf());
    }

    /// The component's name as given to [`Proc::spawn`].
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The OS process id (0 once stopped).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// The last `lines` lines of every log of this process.
    pub fn log_tail(&self, lines: usize) -> String {
        let mut out = String::new();
        for log in &self.logs {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            let all: Vec<&str> = text.lines().collect();
            let start = all.len().saturating_sub(lines);
            out.push_str(&format!("[{}]\n", log.display()));
            for l in &all[start..] {
                out.push_str(l);
                out.push('\n');
            }
        }
        out
    }

    /// Polls `url` every 20 ms until it answers 2xx. Fails early if the process exits,
    /// and with the log tail on timeout.
    pub async fn wait_ready(&mut self, url: &str, timeout: Duration) -> Result<()> {
        let client = crate::http_client();
        let start = Instant::now();
        loop {
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    return Err(TestbedError::Exited {
                        name: self.name.clone(),
                        status: status.to_string(),
                        tail: self.log_tail(40),
                    });
                }
            }
            let last = match client
                .get(url)
                .timeout(Duration::from_millis(800))
                .send()
                .await
            {
                Ok(r) if r.status().is_success() => return Ok(()),
                Ok(r) => format!("HTTP {}", r.status()),
                Err(e) => e.to_string(),
            };
            if start.elapsed() > timeout {
                return Err(TestbedError::NotReady {
                    name: self.name.clone(),
                    url: url.to_string(),
                    waited: start.elapsed(),
                    last,
                    tail: self.log_tail(40),
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Sends `sig` to the process (no-op once stopped).
    pub fn signal(&self, sig: Signal) -> Result<()> {
        if let Some(c) = self.child.as_ref() {
            let pid = i32::try_from(c.id()).unwrap_or(i32::MAX);
            kill(Pid::from_raw(pid), sig).map_err(|e| TestbedError::Io {
                context: format!("sending {sig} to {}", self.name),
                source: std::io::Error::from(e),
            })?;
        }
        Ok(())
    }

    /// SIGTERM, wait up to 3 s, then SIGKILL; reaps the child. Idempotent.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        let pid = i32::try_from(child.id()).unwrap_or(i32::MAX);
        let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        let deadline = Instant::now() + STOP_GRACE;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}
