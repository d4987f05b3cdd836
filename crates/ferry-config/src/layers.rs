//! The environment and command-line layers: `FERRY_*` variables and
//! [`Overrides`] are written into the value tree on top of the file, each
//! value tagged with the variable or flag it came from.
//!
//! `FERRY_LOG__FORMAT` sets `log.format` (a double underscore separates
//! nesting levels; names are lower-cased). Every `FERRY_*` variable must name
//! a real key — unknown ones fail deserialization like unknown file keys do —
//! except `FERRY_TEST_*`, the few variables ferry reads itself outside the
//! configuration ([`NOT_SETTINGS`]) and variables that the configuration itself
//! references as a secret (`secret = "env:FERRY_ERP_SECRET"`).

use std::collections::BTreeSet;
use std::path::Path;

use crate::Overrides;
use crate::error::{ConfigError, Layer};
use crate::tree::{Node, Origin, Value};

const PREFIX: &str = "FERRY_";
const IGNORED_PREFIX: &str = "FERRY_TEST_";
/// `FERRY_*` variables that are not settings: the program that runs XSLT transforms (tests point
/// it at the `ferry` binary, since an in-process server's own executable is the test binary),
/// the limits the transform runner hands its worker process, and the client commands' own.
pub(crate) const NOT_SETTINGS: &[&str] = &[
    "FERRY_XSLT_WORKER",
    "FERRY_XSLT_MAX_MEMORY_BYTES",
    "FERRY_XSLT_MAX_OUTPUT_BYTES",
    // The client commands' config file and environment (`ferry-client`).
    "FERRY_CLIENT_CONFIG",
    "FERRY_ENV",
];

/// The dotted config key an environment variable sets (`FERRY_AUTH__CLOCK_SKEW_SECS`
/// → `auth.clock_skew_secs`).
pub(crate) fn env_var_key(var: &str) -> String {
    env_var_path(var).join(".")
}

fn env_var_path(var: &str) -> Vec<String> {
    var.strip_prefix(PREFIX).unwrap_or(var).split("__").map(str::to_lowercase).collect()
}

/// Overlay `FERRY_*` variables from `env` onto `root`.
pub(crate) fn apply_env(root: &mut Node, env: &[(String, String)]) -> Result<(), ConfigError> {
    let referenced = secret_references(root, env);
    for (var, value) in env {
        if !var.starts_with(PREFIX)
            || var.starts_with(IGNORED_PREFIX)
            || NOT_SETTINGS.contains(&var.as_str())
            || referenced.contains(var.as_str())
        {
            continue;
        }
        let path = env_var_path(var);
        let invalid =
            |message: String| ConfigError::Invalid { layer: Layer::Env(var.clone()), key: path.join("."), message };
        if path.iter().any(String::is_empty) {
            return Err(invalid(
                "not a valid setting name (nested keys are separated by a double underscore, \
                 e.g. FERRY_LOG__FORMAT)"
                    .to_owned(),
            ));
        }
        let origin = Origin::Env(var.clone());
        let leaf = if value.trim_start().starts_with('[') {
            Node::parse_value(value, &origin).map_err(|e| invalid(format!("not a valid TOML list: {e}")))?
        } else {
            Node::new(Value::Text(value.clone()), origin)
        };
        root.set(&path, leaf).map_err(invalid)?;
    }
    Ok(())
}

/// Names of `FERRY_*` variables that some setting points at with `env:NAME`;
/// those hold secrets, not settings.
fn secret_references(root: &Node, env: &[(String, String)]) -> BTreeSet<String> {
    let ferry_values = env.iter().filter(|(var, _)| var.starts_with(PREFIX)).map(|(_, value)| value.as_str());
    root.strings()
        .into_iter()
        .chain(ferry_values)
        .filter_map(|s| s.strip_prefix("env:"))
        .filter(|name| name.starts_with(PREFIX))
        .map(str::to_owned)
        .collect()
}

/// Overlay command-line flags onto `root`.
pub(crate) fn apply_overrides(root: &mut Node, overrides: &Overrides) -> Result<(), ConfigError> {
    let Overrides { listen, data_dir, database, public_url, entities_dir, log_format, log_level } = overrides;
    let strings: [(&'static str, &[&str], Option<&str>); 5] = [
        ("--listen", &["listen"], listen.as_deref()),
        ("--database", &["database"], database.as_deref()),
        ("--public-url", &["public_url"], public_url.as_deref()),
        ("--log-format", &["log", "format"], log_format.as_deref()),
        ("--log-level", &["log", "level"], log_level.as_deref()),
    ];
    let paths: [(&'static str, &[&str], Option<&Path>); 2] = [
        ("--data-dir", &["data_dir"], data_dir.as_deref()),
        ("--entities-dir", &["entities_dir"], entities_dir.as_deref()),
    ];
    let path_texts = paths.into_iter().map(|(flag, key, path)| {
        let text = path
            .map(|p| p.to_str().ok_or_else(|| invalid_flag(flag, key, "the path is not valid UTF-8".to_owned())))
            .transpose()?;
        Ok((flag, key, text))
    });
    let all = strings.into_iter().map(Ok).chain(path_texts).collect::<Result<Vec<_>, ConfigError>>()?;
    for (flag, key, text) in all {
        let Some(text) = text else { continue };
        let path: Vec<String> = key.iter().map(|k| (*k).to_owned()).collect();
        root.set(&path, Node::new(Value::Text(text.to_owned()), Origin::Flag(flag)))
            .map_err(|message| invalid_flag(flag, key, message))?;
    }
    Ok(())
}

fn invalid_flag(flag: &str, key: &[&str], message: String) -> ConfigError {
    ConfigError::Invalid { layer: Layer::Flag(flag.to_owned()), key: key.join("."), message }
}
