//! The command line: clap definitions of every command and flag, and the
//! mapping of the global override flags onto [`ferry_config::Overrides`].

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// ferry: a data-integration server that speaks the OData entity API and
/// OAuth 2.0 like Dynamics 365 Finance & Operations / Dataverse.
///
/// Settings come from a TOML file (--config), then FERRY_* environment
/// variables (e.g. FERRY_LISTEN, FERRY_AUTH__TOKEN_LIFETIME_SECS), then the
/// flags below; later layers win. With none of them, ferry runs on embedded
/// defaults: 127.0.0.1:8080, data in ./ferry-data, SQLite.
#[derive(Debug, Parser)]
#[command(name = "ferry", version, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Command,
}

/// Flags accepted by every command.
#[derive(Debug, Args)]
#[command(next_help_heading = "Settings (every command)")]
pub struct GlobalArgs {
    /// Read settings from this TOML file.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Address to listen on, e.g. 127.0.0.1:8080 or 0.0.0.0:443 (port 0 picks a free port).
    #[arg(long, global = true, value_name = "ADDR")]
    pub listen: Option<String>,

    /// Directory for ferry's own files: the SQLite database and the master key.
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Database URL: sqlite://path/ferry.db or postgres://user@host/db (default: SQLite in the data dir).
    #[arg(long, global = true, value_name = "URL")]
    pub database: Option<String>,

    /// URL clients reach ferry at; the issuer of its tokens (default: http://<listen>).
    #[arg(long, global = true, value_name = "URL")]
    pub public_url: Option<String>,

    /// Directory of custom entity definitions (*.toml), added to the standard catalog.
    #[arg(long, global = true, value_name = "DIR")]
    pub entities_dir: Option<PathBuf>,

    /// Log format: text or json.
    #[arg(long, global = true, value_name = "FORMAT")]
    pub log_format: Option<String>,

    /// Log filter, e.g. info or info,ferry_api=debug.
    #[arg(long, global = true, value_name = "FILTER")]
    pub log_level: Option<String>,

    /// The client environment (from the client config) the client commands talk to; with
    /// `messages`, `jobs` or `projects`, read them from that server instead of the database.
    #[arg(long, global = true, value_name = "NAME")]
    pub env: Option<String>,
}

impl GlobalArgs {
    /// The flags that override configuration values.
    pub fn overrides(&self) -> ferry_config::Overrides {
        ferry_config::Overrides {
            listen: self.listen.clone(),
            data_dir: self.data_dir.clone(),
            database: self.database.clone(),
            public_url: self.public_url.clone(),
            entities_dir: self.entities_dir.clone(),
            log_format: self.log_format.clone(),
            log_level: self.log_level.clone(),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server until SIGTERM or Ctrl-C (in-flight requests finish first).
    Serve,
    /// Manage the client apps that may obtain tokens (client-credentials grant).
    #[command(subcommand)]
    Apps(AppsCommand),
    /// Manage token signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Inspect the entity catalog (standard entities plus the entities dir).
    #[command(subcommand)]
    Entities(EntitiesCommand),
    /// Inspect and control replication (data export) profiles; IDs may also be profile names.
    #[command(subcommand)]
    Profiles(ProfilesCommand),
    /// Manage data projects: the entities an import fills, their formats and column mappings.
    #[command(subcommand)]
    Projects(ProjectsCommand),
    /// Manage recurring import jobs: the connector endpoints apps enqueue files to.
    #[command(subcommand)]
    Jobs(JobsCommand),
    /// Inspect enqueued import messages: state, row counts, rejected rows.
    #[command(subcommand)]
    Messages(MessagesCommand),
    /// Print the OpenAPI document of ferry's endpoints as JSON.
    Openapi,
    #[command(flatten)]
    Client(crate::client::ClientCommand),
}

#[derive(Debug, Subcommand)]
pub enum AppsCommand {
    /// Register a new app and print its secret once.
    Add(AddApp),
    /// List the registered apps (secrets are never shown).
    List {
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Delete an app; its tokens stop working once they expire.
    Remove {
        /// The app's client id.
        client_id: String,
    },
    /// Give an app a new secret and print it once; the old secret stops working.
    RotateSecret {
        /// The app's client id.
        client_id: String,
    },
    /// Stop an app from obtaining tokens.
    Disable {
        /// The app's client id.
        client_id: String,
    },
    /// Allow a disabled app to obtain tokens again.
    Enable {
        /// The app's client id.
        client_id: String,
    },
}

#[derive(Debug, Args)]
pub struct AddApp {
    /// Client id: 1 to 100 letters, digits, '.', '_' or '-'.
    #[arg(long, value_name = "ID")]
    pub client_id: String,

    /// Display name (default: the client id).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,

    /// Comma-separated roles: reader, writer, admin.
    #[arg(long, value_name = "ROLES", value_delimiter = ',', default_value = "writer")]
    pub roles: Vec<String>,

    /// The app's company (dataAreaId), e.g. usmf (default: none, so odata.default_company applies).
    #[arg(long, value_name = "COMPANY")]
    pub company: Option<String>,

    /// Print one JSON object (client_id, secret, roles, default_company).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Start signing tokens with a new key; tokens signed with older keys stay valid until they expire.
    Rotate,
}

#[derive(Debug, Subcommand)]
pub enum EntitiesCommand {
    /// Check every entity definition and report problems naming file, entity and field.
    Check,
    /// List the entities: collection, label, key, field count, company-specific.
    List {
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ProfilesCommand {
    /// List the replication profiles (connection strings are never shown).
    List {
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one profile's settings.
    Show {
        /// The profile's id or name.
        id: String,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Per entity: phase, state and why, rows copied, last applied version, lag, failed records.
    Status {
        /// The profile's id or name.
        id: String,
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Start replicating schema and data (a running server picks it up within seconds).
    Activate {
        /// The profile's id or name.
        id: String,
    },
    /// Stop replicating; the target's tables stay.
    Deactivate {
        /// The profile's id or name.
        id: String,
    },
    /// Retry every record in the profile's retry set now.
    Resync {
        /// The profile's id or name.
        id: String,
    },
    /// Print the failure log, newest first (JSON, or the Data Export Service's text lines).
    Failures {
        /// The profile's id or name.
        id: String,
        /// Print `Entity: …, RecordId: …, NotificationTime: …` lines instead of JSON.
        #[arg(long)]
        text: bool,
    },
    /// Check the target: connection, permissions, name collisions, entities (exit code 1 if one fails).
    Test {
        /// The profile's id or name.
        id: String,
    },
    /// Compare source and target per key range; exit code 1 when they differ.
    Verify {
        /// The profile's id or name.
        id: String,
        /// Copy missing and outdated rows and remove extra ones, then compare again.
        #[arg(long)]
        repair: bool,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
}

const PROJECTS_APPLY_HELP: &str = "\
FILE holds one project, a list of them, or [[projects]] tables as in the config file
(TOML, or JSON with a .json name or starting with '{' or '['). An \"origin\" key is ignored,
so the output of `ferry projects show NAME --json` can be edited and applied again. A project
entity's xslt_file is read relative to FILE's directory into its xslt.

Example (customers.toml):
  name = \"Customers\"
  description = \"Customers from the ERP\"
  [[entities]]
  entity = \"Customers V3\"
  format = \"CSV\"
  mapping = { CUSTNO = \"CustomerAccount\" }

  ferry projects apply customers.toml";

const JOBS_APPLY_HELP: &str = "\
FILE holds one job, a list of them, or [[jobs]] tables as in the config file (TOML, or JSON
with a .json name or starting with '{' or '['). An \"origin\" key is ignored, so the output of
`ferry jobs show ID --json` can be edited and applied again. The job's project must exist.

Example (customers-job.toml):
  activity_id = \"6d31e09f-4a4b-4e2b-9c1e-0c5f0a0b1c2d\"
  project = \"Customers\"
  kind = \"file\"                   # or \"package\" (zip data packages)
  apps = [{ client_id = \"erp\" }]  # who may enqueue
  recurrence = \"0 */15 * * * *\"   # optional: process every 15 minutes
  company = \"usmf\"

  ferry jobs apply customers-job.toml
Apps enqueue with POST /api/connector/enqueue/6d31e09f-4a4b-4e2b-9c1e-0c5f0a0b1c2d";

const MESSAGES_ERRORS_HELP: &str = "\
Examples:
  ferry messages errors 0195a3c4-7f1e-7b2a-9c3d-1e2f3a4b5c6d
  ferry messages errors 0195a3c4-7f1e-7b2a-9c3d-1e2f3a4b5c6d --stage staging --limit 1000 --json";

#[derive(Debug, Subcommand)]
pub enum ProjectsCommand {
    /// List the data projects.
    List {
        /// Print a JSON array of definitions (each with its origin) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one project's definition.
    Show {
        /// The project's name (any case).
        name: String,
        /// Print the definition as JSON (which `ferry projects apply` accepts).
        #[arg(long)]
        json: bool,
    },
    /// Create or replace data projects from a TOML or JSON file.
    #[command(after_help = PROJECTS_APPLY_HELP)]
    Apply {
        /// The file with the project(s).
        file: PathBuf,
    },
    /// Delete a project no recurring job uses.
    Delete {
        /// The project's name (any case).
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// List the recurring import jobs.
    List {
        /// Print a JSON array of definitions (each with its origin) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one job's definition.
    Show {
        /// The job's activity id (any case, with or without braces).
        id: String,
        /// Print the definition as JSON (which `ferry jobs apply` accepts).
        #[arg(long)]
        json: bool,
    },
    /// Create or replace recurring jobs from a TOML or JSON file.
    #[command(after_help = JOBS_APPLY_HELP)]
    Apply {
        /// The file with the job(s).
        file: PathBuf,
    },
    /// Accept enqueues for the job again.
    Enable {
        /// The job's activity id.
        id: String,
    },
    /// Refuse new enqueues for the job (messages already enqueued are still imported).
    Disable {
        /// The job's activity id.
        id: String,
    },
    /// Delete the job; its endpoint stops accepting enqueues.
    Delete {
        /// The job's activity id.
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum MessagesCommand {
    /// List the newest messages.
    List {
        /// Only messages of this job (activity id).
        #[arg(long, value_name = "ACTIVITY_ID")]
        job: Option<String>,
        /// Only messages in this state: Enqueued, Processing, Retrying, Processed, ProcessedWithErrors,
        /// PreProcessingError.
        #[arg(long)]
        state: Option<String>,
        /// At most this many, newest first (1 to 1000).
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show a message: state and why, attempts, row counts, and each entity's result.
    Show {
        /// The message id (or execution id).
        id: String,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// List a message's rejected rows: row number, entity, stage, field, reason.
    #[command(after_help = MESSAGES_ERRORS_HELP)]
    Errors {
        /// The message id (or execution id).
        id: String,
        /// Only rows rejected at this stage: parse, staging or target.
        #[arg(long, value_name = "STAGE")]
        stage: Option<String>,
        /// Only rows of this entity.
        #[arg(long)]
        entity: Option<String>,
        /// At most this many rows (1 to 100000).
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
