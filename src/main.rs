//! The `realmctl` binary: sets up logging, runs the CLI, maps outcomes to exit codes
//! (0 success, 1 a check failed, 2 bad input, 3 waiting on someone; see the brief).

use std::process::ExitCode;

use clap::Parser;

mod cli;

fn main() -> ExitCode {
    // One crypto provider for every TLS client and server in the binary (docs/decisions.md).
    realmctl::crypto::install_tls_provider();
    let args = cli::Cli::parse();
    let level = match args.verbose {
        0 => tracing::Level::WARN,
        1 => tracing::Level::INFO,
        _ => tracing::Level::DEBUG,
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(level)
        .with_target(false)
        .init();
    match cli::run(args) {
        Ok(cli::Outcome::Success) => ExitCode::SUCCESS,
        Ok(cli::Outcome::Failed) => ExitCode::from(1),
        Ok(cli::Outcome::Waiting) => ExitCode::from(3),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
