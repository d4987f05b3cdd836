//! The `ferry` binary's logic, as a library so the end-to-end tests can start
//! a server in-process: configuration loading, start-up wiring of the
//! catalog, store, token service, import service and HTTP edge
//! ([`RunningServer`]), and the admin commands. `main.rs` only parses the
//! command line (or runs the hidden `xslt-worker`) and calls [`run`].

mod admin;
mod apps;
mod boot;
pub mod cli;
pub mod client;
mod imports;
mod logging;
mod messages;
mod profiles;
mod server;
mod table;

use std::io::Write;

use anyhow::anyhow;

pub use server::RunningServer;

/// The hidden subcommand that runs one XSLT transform: the import service starts
/// `ferry xslt-worker <stylesheet> <input> <output>` per transform, so a crash in
/// libxslt only ends that child. `main.rs` dispatches it before anything else.
pub const XSLT_WORKER_COMMAND: &str = "xslt-worker";

use cli::{Cli, Command};
use logging::LogTarget;

/// Runs one command line. Errors carry their cause chain; print them with `{:#}`.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let env = process_env();
    // The client commands read the client config, not the server's.
    let command = match cli.command {
        Command::Client(command) => return client::run(command, &cli.global, &env).await,
        command @ (Command::Messages(_) | Command::Jobs(_) | Command::Projects(_)) if cli.global.env.is_some() => {
            return client::run_remote(command, &cli.global, &env).await;
        }
        command => command,
    };
    let config = ferry_config::load(cli.global.config.as_deref(), &env, &cli.global.overrides())
        // The message already names the key, layer and cause.
        .map_err(|e| anyhow!("{e}"))?;
    let output = match command {
        Command::Serve => {
            logging::init(&config.log, LogTarget::Stdout)?;
            // Before start-up, so a signal right after "listening" is not missed.
            let signals = server::ShutdownSignals::install()?;
            let server = RunningServer::start(config, env).await?;
            server.run_until(signals).await?;
            return Ok(());
        }
        Command::Apps(command) => {
            logging::init(&config.log, LogTarget::Stderr)?;
            apps::run(&config, command).await?
        }
        Command::Keys(command) => {
            logging::init(&config.log, LogTarget::Stderr)?;
            admin::keys(&config, &env, command).await?
        }
        Command::Entities(command) => admin::entities(&config, command)?,
        Command::Profiles(command) => {
            logging::init(&config.log, LogTarget::Stderr)?;
            let outcome = profiles::run(&config, &env, command).await?;
            print(&outcome.output)?;
            // Printed first: e.g. `verify` shows what differs, then exits with code 1.
            return match outcome.failure {
                Some(failure) => Err(anyhow!(failure)),
                None => Ok(()),
            };
        }
        Command::Projects(command) => {
            logging::init(&config.log, LogTarget::Stderr)?;
            imports::projects(&config, &env, command).await?
        }
        Command::Jobs(command) => {
            logging::init(&config.log, LogTarget::Stderr)?;
            imports::jobs(&config, &env, command).await?
        }
        Command::Messages(command) => {
            logging::init(&config.log, LogTarget::Stderr)?;
            messages::messages(&config, &env, command).await?
        }
        Command::Openapi => {
            logging::init(&config.log, LogTarget::Stderr)?;
            admin::openapi(&config, &env).await?
        }
        Command::Client(_) => unreachable!("dispatched above"),
    };
    print(&output)
}

/// The process environment; variables that are not valid UTF-8 are skipped
/// (ferry reads none of those).
fn process_env() -> Vec<(String, String)> {
    std::env::vars_os()
        .filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?)))
        .collect()
}

/// Writes command output to stdout; a closed pipe (`ferry apps list | head`) is not an error.
pub(crate) fn print(text: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(anyhow!("cannot write to stdout: {e}")),
        _ => Ok(()),
    }
}
