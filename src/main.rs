//! The `realmctl` binary: sets up logging, runs the CLI, maps outcomes to exit codes
//! (0 success, 1 a check failed, 2 bad input, 3 waiting on someone; see the brief).

use std::process::ExitCode;

use clap::Parser;

mod cli;

/// mimalloc instead of the system allocator: an HTTP admission allocates a few dozen small
/// blocks across threads (the request, its future, the answer), and glibc's malloc and free were
/// about a fifth of `quota serve`'s instructions (issue #21; docs/decisions.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // One crypto provider for every TLS client and server in the binary (docs/decisions.md).
    realmctl::crypto::install_tls_provider();
    let args = cli::Cli::parse();
    let level = match args.verbose {
        0 => tracing::Level::WARN,
        1 => tracing::Level::INFO,
        _ => tracing::Level::DEBUG,
    };
    // realmctl's own logs at the chosen level; the SDKs' only from -vv on (their warnings about,
    // say, an absent shared config file are noise to an operator).
    let others = if args.verbose >= 2 {
        tracing::level_filters::LevelFilter::DEBUG
    } else {
        tracing::level_filters::LevelFilter::ERROR
    };
    let filter = tracing_subscriber::filter::Targets::new()
        .with_target("realmctl", level)
        .with_default(others);
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_target(false),
        )
        .with(filter)
        .init();
    match cli::run(args) {
        Ok(cli::Outcome::Success) => ExitCode::SUCCESS,
        Ok(cli::Outcome::Failed) => ExitCode::from(1),
        Ok(cli::Outcome::Waiting) => ExitCode::from(3),
        Err(e) => {
            eprintln!("error: {}", realmctl::text::terminal(&e.to_string()));
            // The environment's failures are not bad input: exit 1, like any failed command.
            ExitCode::from(if cli::is_environment(&e.0) { 1 } else { 2 })
        }
    }
}
