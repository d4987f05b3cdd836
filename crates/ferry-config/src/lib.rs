//! ferry's configuration: a TOML file, overlaid by `FERRY_*` environment
//! variables, overlaid by command-line flags — then validated.
//!
//! [`load`] builds a value tree from the file, writes environment variables
//! (`FERRY_LISTEN`, `FERRY_AUTH__TOKEN_LIFETIME_SECS`, …) and [`Overrides`]
//! into it, deserializes the result (unknown keys are errors everywhere) and
//! validates it into a [`Config`]. Every value remembers its layer, so a
//! [`ConfigError`] names the key *and* the file position, variable or flag
//! that supplied the bad value:
//!
//! ```text
//! config file ferry.toml: apps[1].roles[0]: unknown role 'raeder' (known: reader, writer, admin) at line 9, column 10
//! FERRY_AUTH__TOKEN_LIFETIME_SECS: 'abc' is not a whole number
//! --listen: 'abc' is not an address like 127.0.0.1:8080
//! ```
//!
//! Environment values are untyped text read as whatever the field needs; a
//! list can be given as a TOML array (`'["a", "b"]'`) or comma-separated, and
//! an empty value for an optional key means "use the default".
//!
//! Sections that configure a service resolve into that service's own settings type
//! (`ferry_domain::ImportSettings`, `ThrottleSettings`, `BlobStoreConfig`, `Project`, `Job`,
//! `DeclaredProfile`):
//! the file form with its defaults lives here once, the types and their defaults in the domain.
//! Adding a section: one file-form struct (see `sections.rs`, `import.rs`) plus one field each in
//! `Document` and `Config` (`config.rs`).

mod apps;
mod blobs;
mod config;
mod de;
mod error;
mod export;
mod import;
mod jobs;
mod layers;
mod profiles;
mod projects;
mod secret;
mod sections;
mod throttle;
mod tree;
mod validate;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

pub use apps::{AppDecl, KNOWN_ROLES};
pub use config::Config;
pub use error::{ConfigError, Layer};
pub use secret::{AppSecret, SecretRef};
pub use sections::{AuthConfig, LogConfig, LogFormat, ODataConfig, TrustedIssuer};

use config::Document;
use error::{Problem, ProblemKind};
use tree::{Node, Origin};

/// Command-line flags; each one set wins over the file and the environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `--listen`
    pub listen: Option<String>,
    /// `--data-dir`
    pub data_dir: Option<PathBuf>,
    /// `--database`
    pub database: Option<String>,
    /// `--public-url`
    pub public_url: Option<String>,
    /// `--entities-dir`
    pub entities_dir: Option<PathBuf>,
    /// `--log-format`
    pub log_format: Option<String>,
    /// `--log-level`
    pub log_level: Option<String>,
}

/// Load the configuration: `file` (if any) < `env` (`FERRY_*` entries) <
/// `overrides`. `env` is the only environment consulted — also for `env:VAR`
/// app secrets, profile connection strings and the S3 secret key — so pass
/// `std::env::vars().collect::<Vec<_>>()`.
pub fn load(file: Option<&Path>, env: &[(String, String)], overrides: &Overrides) -> Result<Config, ConfigError> {
    let text = match file {
        Some(path) => Some(
            std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile { path: path.to_owned(), source })?,
        ),
        None => None,
    };
    let mut root = match (file, &text) {
        (Some(path), Some(text)) => Node::parse_document(text)
            .map_err(|e| ConfigError::Syntax { path: path.to_owned(), message: e.to_string().trim_end().to_owned() })?,
        _ => Node::empty_table(Origin::Implicit),
    };
    layers::apply_env(&mut root, env)?;
    layers::apply_overrides(&mut root, overrides)?;

    // Relative `xslt_file` paths start at the config file's directory.
    let base_dir = file.and_then(Path::parent).filter(|dir| !dir.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let file = file.zip(text.as_deref());
    let located = |problem: Problem| locate(problem, &root, file);
    let document: Document = de::from_node(&root).map_err(located)?;
    document.resolve(env, base_dir).map_err(located)
}

/// Turn a [`Problem`] into a [`ConfigError`] naming the layer whose value
/// sits at (or nearest above) the problem's key path.
fn locate(problem: Problem, root: &Node, file: Option<(&Path, &str)>) -> ConfigError {
    let node = root.locate(&problem.path);
    let layer = match (&node.origin, file) {
        (Origin::File(span), Some((path, text))) => {
            let (line, column) = tree::line_column(text, span.start);
            Layer::File { path: path.to_owned(), line, column }
        }
        (Origin::Env(var), _) => Layer::Env(var.clone()),
        (Origin::Flag(flag), _) => Layer::Flag((*flag).to_owned()),
        (Origin::File(_) | Origin::Implicit, _) => Layer::Default,
    };
    let key = problem.path.to_string();
    match problem.kind {
        ProblemKind::UnknownKey(expected) => ConfigError::UnknownKey { layer, key, expected },
        ProblemKind::Message(message) => ConfigError::Invalid { layer, key, message },
    }
}
