//! `sluice init standalone DIR`: write a working standalone set-up.

use std::path::PathBuf;

/// Arguments of `sluice init`.
#[derive(Debug, Clone, clap::Args)]
pub struct InitArgs {
    /// What to set up (only `standalone`).
    #[arg(value_parser = ["standalone"])]
    pub mode: String,
    /// Directory to write into (created; existing files are never overwritten).
    #[arg(long, default_value = "sluice-standalone")]
    pub dir: PathBuf,
}

pub fn run(_a: InitArgs) -> anyhow::Result<()> {
    anyhow::bail!("not yet")
}
