//! `sluice`: the controller, standalone runner and CLI (also usable as `kubectl-sluice`).

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = match sluice_controller::cli::parse_args(std::env::args_os().collect()) {
        Ok(cli) => cli,
        Err(e) => {
            // --help / --version print and exit 0; usage errors exit 1 (not clap's 2, which means "rolled back").
            let code = if e.use_stderr() { 1 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let code = sluice_controller::cli::run(cli).await;
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
