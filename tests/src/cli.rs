//! Running the `sluice` CLI from tests as a user would: the workspace binary, with the
//! `SLUICE_*` variables of the developer's shell removed so they cannot change the outcome.

use std::process::{Command, Output};

use crate::error::{io_err, Result};
use crate::paths::find_bin;

/// Runs `sluice ARGS` to completion.
pub fn run_sluice(args: &[&str]) -> Result<Output> {
    Command::new(find_bin("sluice")?)
        .args(args)
        .env_remove("SLUICE_SERVER")
        .env_remove("SLUICE_TOKEN")
        .env_remove("SLUICE_NAMESPACE")
        .output()
        .map_err(io_err(format!("running sluice {}", args.join(" "))))
}

/// Standard output followed by standard error, as a person at a terminal reads them.
pub fn output_text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}
