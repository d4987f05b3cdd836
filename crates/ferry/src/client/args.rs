//! The client commands' clap definitions, flattened into `ferry`'s command list by `cli.rs`:
//! `login`, `enqueue`, `status`, `errors`, `dequeue`, `import-package`, `export-package` and
//! `agent`.

use std::path::PathBuf;

use clap::{Args, Subcommand};

pub(crate) const EXIT_CODES: &str = "\
Exit codes: 0 done; 1 failed (the server refused, the message or execution failed, a local
file could not be read or written); 2 usage or client configuration; 3 could not reach the
server (no answer, or 429/5xx until the retries ran out); 4 finished with rejected records;
5 --wait gave up before the message finished.

The environment comes from --env, else FERRY_ENV, else the client config's default; the
client config is FERRY_CLIENT_CONFIG, else ~/.config/ferry/client.toml (Linux),
~/Library/Application Support/ferry/client.toml (macOS), %APPDATA%\\ferry\\client.toml (Windows).";

const LOGIN_HELP: &str = "\
Examples:
  # ferry's own token endpoint (<url>/oauth2/token), secret from an environment variable
  ferry login --env dev --url https://ferry.example.com --client-id erp --secret-env ERP_SECRET
  # Dynamics 365 with Entra ID (scope <url>/.default)
  ferry login --env prod --url https://usmf.operations.dynamics.com --tenant contoso.onmicrosoft.com \\
    --client-id 00000000-0000-0000-0000-000000000000 --secret-env D365_SECRET --company usmf
  # log in again with what the config holds
  ferry login --env prod

The profile is written to the client config (mode 0600); a secret given with --secret-stdin is
stored in it, --secret-env and --secret-file store only the reference. Tokens are cached beside
the config (tokens/<env>.json, mode 0600) and renewed before they expire.";

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Add or update a client environment (base URL, token endpoint, credentials) and get a token.
    #[command(after_help = format!("{LOGIN_HELP}\n\n{EXIT_CODES}"))]
    Login(LoginArgs),
    /// Enqueue files to a recurring import job (streamed; external identifier = file name).
    #[command(after_help = EXIT_CODES)]
    Enqueue(EnqueueArgs),
    /// Show a message's (or execution's) state, reason and counters; --wait until it finishes.
    #[command(after_help = EXIT_CODES)]
    Status(StatusArgs),
    /// List a message's rejected rows, or download them as a file in the input's format.
    #[command(after_help = EXIT_CODES)]
    Errors(ErrorsArgs),
    /// Take every exported file of a recurring export job: dequeue, download, ack.
    #[command(after_help = EXIT_CODES)]
    Dequeue(DequeueArgs),
    /// Import a data package (a zip, or a folder of data files wrapped into one) through the package API.
    #[command(after_help = EXIT_CODES)]
    ImportPackage(ImportPackageArgs),
    /// Export a data project to a package through the package API and download it.
    #[command(after_help = EXIT_CODES)]
    ExportPackage(ExportPackageArgs),
    /// Run the scheduling agent: upload, monitor, download and package jobs from an agent.toml
    /// (give it with --config).
    Agent,
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The environment's base URL (ferry's, or https://<env>.operations.dynamics.com).
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// The app's client id.
    #[arg(long, value_name = "ID")]
    pub client_id: Option<String>,
    /// Entra ID tenant: tokens from <authority>/<tenant>/oauth2/v2.0/token.
    #[arg(long, value_name = "TENANT")]
    pub tenant: Option<String>,
    /// The authority used with --tenant (default https://login.microsoftonline.com).
    #[arg(long, value_name = "URL")]
    pub authority: Option<String>,
    /// The token endpoint itself (default: <url>/oauth2/token, or Entra ID's with --tenant).
    #[arg(long, value_name = "URL")]
    pub token_url: Option<String>,
    /// Read the secret from this environment variable whenever it is needed.
    #[arg(long, value_name = "VAR", conflicts_with_all = ["secret_file", "secret_stdin"])]
    pub secret_env: Option<String>,
    /// Read the secret from this file whenever it is needed.
    #[arg(long, value_name = "PATH", conflicts_with = "secret_stdin")]
    pub secret_file: Option<PathBuf>,
    /// Read the secret from standard input and store it in the client config (mode 0600).
    #[arg(long)]
    pub secret_stdin: bool,
    /// The scope requested (default <url>/.default).
    #[arg(long, value_name = "SCOPE", conflicts_with = "resource")]
    pub scope: Option<String>,
    /// Request a resource instead of a scope (Entra ID v1 endpoint).
    #[arg(long, value_name = "URL")]
    pub resource: Option<String>,
    /// The company used when a command names none.
    #[arg(long, value_name = "COMPANY")]
    pub company: Option<String>,
    /// Which server it is: ferry or dynamics (default: dynamics for *.dynamics.com, else ferry).
    #[arg(long, value_name = "KIND")]
    pub server: Option<String>,
    /// Make this the default environment.
    #[arg(long)]
    pub default: bool,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct EnqueueArgs {
    /// The recurring job's activity id.
    #[arg(long, value_name = "ACTIVITY_ID")]
    pub job: String,
    /// The entity the files hold (file jobs; leave out for package jobs).
    #[arg(long, value_name = "NAME")]
    pub entity: Option<String>,
    /// The company (default: the environment's).
    #[arg(long, value_name = "COMPANY")]
    pub company: Option<String>,
    /// The external identifier (default: each file's name; an enqueue repeated with the same
    /// identifier and content answers the same message).
    #[arg(long, value_name = "ID")]
    pub external_id: Option<String>,
    /// Wait until every message finished; the exit code tells how.
    #[arg(long)]
    pub wait: bool,
    /// With --wait: give up after this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = 3600)]
    pub timeout: u64,
    /// Print a JSON array of {file, message_id, external_id} (with --wait, each with its state).
    #[arg(long)]
    pub json: bool,
    /// The files (`-` for standard input).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<String>,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The message id (or execution id).
    pub id: String,
    /// Wait until it finishes, showing its state on the terminal meanwhile.
    #[arg(long)]
    pub wait: bool,
    /// With --wait: give up after this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = 3600)]
    pub timeout: u64,
    /// With --wait: seconds between looks.
    #[arg(long, value_name = "SECS", default_value_t = 1.0)]
    pub interval: f64,
    /// Print the message document as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ErrorsArgs {
    /// The message id (or execution id).
    pub id: String,
    /// Only rows rejected at this stage: parse, staging or target.
    #[arg(long, value_name = "STAGE")]
    pub stage: Option<String>,
    /// Only rows of this entity.
    #[arg(long)]
    pub entity: Option<String>,
    /// At most this many rows.
    #[arg(long, default_value_t = 1000)]
    pub limit: u32,
    /// Download the rejected rows in the input's format, ready to fix and enqueue again: to this
    /// file, or into this directory when several entities have rejected rows.
    #[arg(long, value_name = "PATH")]
    pub download: Option<PathBuf>,
    /// Print a JSON array of rows (or, with --download, of the files written).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DequeueArgs {
    /// The recurring export job's activity id.
    #[arg(long, value_name = "ACTIVITY_ID")]
    pub job: String,
    /// The directory the files are saved in (`<correlation id>-<file name>`).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Extract each zip into a directory of the same name and remove the zip.
    #[arg(long)]
    pub unzip: bool,
    /// Do not acknowledge: the files are offered again after the visibility timeout.
    #[arg(long)]
    pub no_ack: bool,
    /// Take at most this many files.
    #[arg(long, value_name = "N")]
    pub max: Option<u32>,
    /// Print a JSON array of {correlation_id, path, files, acked}.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ImportPackageArgs {
    /// The data project (definition group) to import into.
    #[arg(long, value_name = "PROJECT")]
    pub project: String,
    /// The company (legal entity; default: the environment's).
    #[arg(long, value_name = "COMPANY")]
    pub company: Option<String>,
    /// The execution id (default: a new one).
    #[arg(long, value_name = "ID")]
    pub execution_id: Option<String>,
    /// Stage and validate only; write nothing.
    #[arg(long)]
    pub no_execute: bool,
    /// Do not wait for the import to finish.
    #[arg(long)]
    pub no_wait: bool,
    /// Give up waiting after this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = 3600)]
    pub timeout: u64,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    /// A data package (.zip), or a folder of data files (one per entity, named after it).
    #[arg(value_name = "FILE_OR_FOLDER")]
    pub source: PathBuf,
}

#[derive(Debug, Args)]
pub struct ExportPackageArgs {
    /// The export data project.
    #[arg(long, value_name = "PROJECT")]
    pub project: String,
    /// The company (legal entity; default: the environment's).
    #[arg(long, value_name = "COMPANY")]
    pub company: Option<String>,
    /// The directory the package is saved in (`<project>-<execution id>.zip`).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Extract the package into a directory of the same name and remove the zip.
    #[arg(long)]
    pub unzip: bool,
    /// The execution id (default: a new one).
    #[arg(long, value_name = "ID")]
    pub execution_id: Option<String>,
    /// Give up waiting after this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = 3600)]
    pub timeout: u64,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}
