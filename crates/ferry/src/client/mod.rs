//! The client commands of the binary, over `ferry-client`: `login` (`login.rs`), `enqueue`,
//! `status`, `errors` (`messages.rs`), `dequeue` (`delivery.rs`), `import-package` and
//! `export-package` (`packages.rs`), `messages|jobs|projects list/show` against a remote
//! environment (`remote.rs`) and `agent` (`agent.rs`). Each command answers its output and,
//! when it did not simply succeed, an [`Exit`] code: the library's error kinds and outcomes
//! become the documented exit codes here. Progress bars (`progress.rs`) are drawn on a terminal
//! only.

mod agent;
pub mod args;
mod delivery;
mod login;
mod messages;
mod packages;
mod progress;
mod remote;

use std::fmt;
use std::sync::Arc;

use ferry_client::{ClientError, Connection, Failure, Outcome, Retry};

use crate::cli::GlobalArgs;
pub use args::ClientCommand;

/// Exit codes of the client commands (documented in `args::EXIT_CODES`).
pub mod code {
    pub const FAILED: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const UNREACHABLE: u8 = 3;
    pub const RECORD_ERRORS: u8 = 4;
    pub const TIMED_OUT: u8 = 5;
}

/// A command's end other than success: `main` prints the message and exits with the code.
#[derive(Debug)]
pub struct Exit {
    pub code: u8,
    pub message: String,
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Exit {}

impl Exit {
    pub(crate) fn new(code: u8, message: impl Into<String>) -> Exit {
        Exit { code, message: message.into() }
    }
}

/// The exit of a library error.
pub(crate) fn exit_of(e: ClientError) -> Exit {
    let code = match e.failure() {
        Failure::Unreachable => code::UNREACHABLE,
        Failure::Config => code::USAGE,
        Failure::Failed => code::FAILED,
    };
    Exit::new(code, e.to_string())
}

/// The exit of a finished message or execution (`None` when it succeeded).
pub(crate) fn exit_of_outcome(outcome: Outcome, what: &str) -> Option<Exit> {
    match outcome {
        Outcome::Succeeded => None,
        Outcome::RecordErrors => Some(Exit::new(code::RECORD_ERRORS, format!("{what} finished with rejected records"))),
        Outcome::Failed => Some(Exit::new(code::FAILED, format!("{what} failed"))),
        Outcome::Pending => Some(Exit::new(code::TIMED_OUT, format!("{what} has not finished"))),
    }
}

/// What a command printed, and how it ended.
pub(crate) struct Done {
    pub output: String,
    pub exit: Option<Exit>,
}

impl Done {
    pub(crate) fn ok(output: String) -> Done {
        Done { output, exit: None }
    }
}

pub(crate) type CommandResult = Result<Done, Exit>;

/// Runs a client command: its output on stdout, then its exit.
pub async fn run(command: ClientCommand, global: &GlobalArgs, env: &[(String, String)]) -> anyhow::Result<()> {
    let agent = matches!(command, ClientCommand::Agent);
    init_logging(global, if agent { "info" } else { "warn" })?;
    let result = match command {
        ClientCommand::Login(a) => login::login(a, global, env).await,
        ClientCommand::Enqueue(a) => messages::enqueue(a, global, env).await,
        ClientCommand::Status(a) => messages::status(a, global, env).await,
        ClientCommand::Errors(a) => messages::errors(a, global, env).await,
        ClientCommand::Dequeue(a) => delivery::dequeue(a, global, env).await,
        ClientCommand::ImportPackage(a) => packages::import(a, global, env).await,
        ClientCommand::ExportPackage(a) => packages::export(a, global, env).await,
        ClientCommand::Agent => agent::run(global, env).await,
    };
    finish(result)
}

/// `ferry messages|jobs|projects …` against the environment named by `--env`.
pub async fn run_remote(
    command: crate::cli::Command,
    global: &GlobalArgs,
    env: &[(String, String)],
) -> anyhow::Result<()> {
    init_logging(global, "warn")?;
    finish(remote::run(command, global, env).await)
}

fn finish(result: CommandResult) -> anyhow::Result<()> {
    match result {
        Ok(done) => {
            crate::print(&done.output)?;
            match done.exit {
                Some(exit) => Err(exit.into()),
                None => Ok(()),
            }
        }
        Err(exit) => Err(exit.into()),
    }
}

fn init_logging(global: &GlobalArgs, default_level: &str) -> anyhow::Result<()> {
    let format = match global.log_format.as_deref() {
        Some("json") => ferry_config::LogFormat::Json,
        Some("text") | None => ferry_config::LogFormat::Text,
        Some(other) => anyhow::bail!("--log-format must be text or json, not '{other}'"),
    };
    let level = global.log_level.clone().unwrap_or_else(|| default_level.to_owned());
    crate::logging::init(&ferry_config::LogConfig { format, level }, crate::logging::LogTarget::Stderr)
}

/// The connection to the environment the flags and variables name.
pub(crate) fn connect(global: &GlobalArgs, env: &[(String, String)]) -> Result<Connection, Exit> {
    ferry_client::open(None, global.env.as_deref(), env, Retry::default()).map_err(exit_of)
}

/// A progress display: a bar on a terminal, nothing otherwise.
pub(crate) fn progress() -> Arc<dyn ferry_client::Progress> {
    progress::for_stderr()
}

/// The company a command uses: its flag, else the environment's.
pub(crate) fn company(flag: Option<String>, connection: &Connection) -> Option<String> {
    flag.or_else(|| connection.environment().company.clone())
}

/// `value` as pretty JSON with a newline.
pub(crate) fn json_text(value: &serde_json::Value) -> String {
    format!("{value:#}\n")
}
