//! Command checks (standalone mode, `rollouts[].commandChecks`): a program run at every analysis
//! run, judged by its exit status, the standalone counterpart of a Kubernetes Job check. The
//! program gets no shell and no stdin, and the same environment as hooks (`SLUICE_ROLLOUT`,
//! `SLUICE_REVISION`, `SLUICE_STABLE_ADDRESS`, `SLUICE_CANARY_ADDRESS`).
//!
//! Exit 0 is Pass; another exit status is Fail (the reason carries the last line of its output);
//! a program that cannot start, is killed by a signal or outlives its timeout (it is killed) is
//! Error.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sluice_analysis::Verdict;

/// Timeout when the check sets none.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// The longest timeout accepted.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(600);

/// One command check of a standalone rollout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommandCheck {
    /// Reported like a metric name (unique among the rollout's metrics).
    pub name: String,
    /// Program and arguments (no shell).
    pub command: Vec<String>,
    /// e.g. `30s`; default 60 s, at most 10 min.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
}

impl CommandCheck {
    /// Problems with the check, for the file's load-time validation.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.name.trim().is_empty() {
            out.push("a command check needs a name".to_string());
        }
        if self.command.first().is_none_or(|p| p.trim().is_empty()) {
            out.push(format!("command check {:?} needs a command", self.name));
        }
        if let Err(e) = self.timeout() {
            out.push(format!("command check {:?}: {e}", self.name));
        }
        out
    }

    /// The timeout to use.
    pub fn timeout(&self) -> Result<Duration, String> {
        let Some(t) = &self.timeout else {
            return Ok(DEFAULT_TIMEOUT);
        };
        let d = sluice_crds::parse_duration(t).map_err(|e| format!("timeout: {e}"))?;
        if d.is_zero() || d > MAX_TIMEOUT {
            return Err(format!(
                "timeout {t} must be more than 0 and at most {} min",
                MAX_TIMEOUT.as_secs() / 60
            ));
        }
        Ok(d)
    }
}

/// Judges how the program ended (pure): `code` is `None` when a signal ended it.
pub fn judge_exit(program: &str, code: Option<i32>, output: &str) -> Verdict {
    let last = last_line(output);
    let tail = if last.is_empty() {
        String::new()
    } else {
        format!(": {last}")
    };
    match code {
        Some(0) => Verdict::pass(Some(0.0), format!("{program} exited with 0")),
        Some(c) => Verdict::fail(
            Some(f64::from(c)),
            format!("{program} exited with {c}{tail}"),
        ),
        None => Verdict::error(format!("{program} was ended by a signal{tail}")),
    }
}

/// The last non-empty line of the output, at most 200 characters.
fn last_line(output: &str) -> String {
    let line = output
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or_default();
    if line.chars().count() > 200 {
        format!("{}…", line.chars().take(200).collect::<String>())
    } else {
        line.to_string()
    }
}

/// Runs the check with `env` added to Sluice's environment.
pub async fn run(check: &CommandCheck, env: &[(&str, &str)]) -> Verdict {
    let Some((program, args)) = check.command.split_first() else {
        return Verdict::error(format!("command check {:?} has no command", check.name));
    };
    let timeout = match check.timeout() {
        Ok(t) => t,
        Err(e) => return Verdict::error(e),
    };
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let out = match tokio::time::timeout(timeout, cmd.output()).await {
        Err(_) => {
            return Verdict::error(format!(
                "{program} did not finish within {} s and was killed (timeout)",
                timeout.as_secs_f64()
            ))
        }
        Ok(Err(e)) => return Verdict::error(format!("cannot run {program}: {e}")),
        Ok(Ok(out)) => out,
    };
    // stderr says why a check failed more often than stdout; fall back to stdout.
    let stderr = String::from_utf8_lossy(&out.stderr);
    let shown = if stderr.trim().is_empty() {
        String::from_utf8_lossy(&out.stdout).into_owned()
    } else {
        stderr.into_owned()
    };
    judge_exit(program, out.status.code(), &shown)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_analysis::VerdictKind as K;

    fn check(argv: &[&str], timeout: Option<&str>) -> CommandCheck {
        CommandCheck {
            name: "smoke".into(),
            command: argv.iter().map(|s| s.to_string()).collect(),
            timeout: timeout.map(str::to_string),
        }
    }

    #[tokio::test]
    async fn exit_status_decides_and_the_output_says_why() {
        let v = run(&check(&["sh", "-c", "exit 0"], None), &[]).await;
        assert_eq!(v.kind, K::Pass);
        let v = run(
            &check(
                &["sh", "-c", "echo checking; echo 'cart: 500' >&2; exit 3"],
                None,
            ),
            &[],
        )
        .await;
        assert_eq!((v.kind, v.value), (K::Fail, Some(3.0)));
        assert_eq!(v.reason, "sh exited with 3: cart: 500");
        let v = run(
            &check(
                &["sh", "-c", "test \"$SLUICE_CANARY_ADDRESS\" = 127.0.0.1:81"],
                None,
            ),
            &[("SLUICE_CANARY_ADDRESS", "127.0.0.1:81")],
        )
        .await;
        assert_eq!(v.kind, K::Pass, "{}", v.reason);
    }

    #[tokio::test]
    async fn a_missing_program_a_timeout_and_a_signal_are_errors() {
        let v = run(&check(&["/nonexistent/smoke"], None), &[]).await;
        assert_eq!(v.kind, K::Error);
        assert!(
            v.reason.contains("cannot run /nonexistent/smoke"),
            "{}",
            v.reason
        );
        let v = run(&check(&["sleep", "5"], Some("200ms")), &[]).await;
        assert_eq!(v.kind, K::Error);
        assert!(
            v.reason.contains("did not finish within 0.2 s"),
            "{}",
            v.reason
        );
        let v = run(&check(&["sh", "-c", "kill -9 $$"], None), &[]).await;
        assert_eq!(v.kind, K::Error);
        assert!(v.reason.contains("ended by a signal"), "{}", v.reason);
    }

    #[test]
    fn bad_checks_are_described() {
        assert!(check(&["x"], None).problems().is_empty());
        assert_eq!(
            check(&[], None).problems(),
            ["command check \"smoke\" needs a command"]
        );
        assert!(check(&["x"], Some("0s")).problems()[0].contains("more than 0"));
        assert!(check(&["x"], Some("1h")).problems()[0].contains("at most 10 min"));
    }
}
