//! The ferry client: what the `ferry` commands and the agent use to move files through the
//! recurring-integration and package APIs, against a ferry server or Dynamics 365 itself (both
//! speak the same protocols).
//!
//! - `profile.rs`: the client config file and its named environments; secrets by reference.
//! - `token.rs`: client-credentials tokens, cached per environment, renewed before expiry.
//! - `http.rs`: [`Connection`] and the one retry rule (429 `Retry-After`, 5xx and connection
//!   failures with backoff, bounded).
//! - `connector.rs`: enqueue (streamed), job status, dequeue / download / ack.
//! - `delivery.rs`: one exported file taken end to end (download, unzip, ack), idempotently.
//! - `dmf.rs`: the package API and signed blob URLs (block uploads, downloads).
//! - `status.rs`: where a message or execution stands and what that means ([`Outcome`]).
//! - `remote.rs`: ferry's REST API for messages, rejected rows, projects and jobs.
//! - `package.rs`: a folder of data files wrapped into a data package.
//! - `files.rs`: private files, downloads made durable (temp file, fsync, rename), progress.
//! - `error.rs`: [`ClientError`] and its [`Failure`] kind (unreachable, failed, configuration).

mod connector;
mod delivery;
mod dmf;
mod error;
pub mod files;
mod http;
pub mod package;
mod profile;
mod remote;
mod status;
mod token;

use std::path::{Path, PathBuf};

pub use connector::{Dequeued, EXTERNAL_ID_HEADER, Enqueue, Source, safe_file_name};
pub use delivery::Delivered;
pub use dmf::{BLOCK_BYTES, PackageExport, PackageImport};
pub use error::{ClientError, ClientResult, Failure};
pub use files::{NoProgress, Progress};
pub use http::{Connection, Retry};
pub use profile::{
    Audience, CONFIG_VAR, ClientConfig, ENTRA_AUTHORITY, ENV_VAR, Environment, EnvironmentConfig, Secret, ServerKind,
    default_config_path, token_cache_dir,
};
pub use remote::{ErrorQuery, MessageQuery};
pub use status::{Outcome, Status, execution_outcome, message_outcome};
pub use token::{TokenInfo, TokenSource};

/// Opens a connection to an environment of the client config at `config_path` (else the
/// default path): `name`, else `FERRY_ENV`, else the file's default, else its only one.
pub fn open(
    config_path: Option<&Path>,
    name: Option<&str>,
    env: &[(String, String)],
    retry: Retry,
) -> ClientResult<Connection> {
    let path: PathBuf = match config_path {
        Some(p) => p.to_path_buf(),
        None => default_config_path(env)?,
    };
    let config = ClientConfig::load(&path)?;
    let (name, environment) = config.select(name, env)?;
    let environment = environment.resolve(&name, env)?;
    let retry = Retry { attempts: environment.attempts.unwrap_or(retry.attempts), ..retry };
    Connection::new(environment, Some(token_cache_dir(&path)), ferry_domain::SystemClock::shared(), retry)
}
