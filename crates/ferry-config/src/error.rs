//! Errors: the public [`ConfigError`] (which names the key and the layer that
//! supplied the bad value) and the crate-internal [`Problem`] that
//! deserialization and validation raise before the layer is known.

use std::fmt::{self, Display};
use std::path::PathBuf;

use serde::de::{self, Expected, Unexpected};

/// Where a configuration value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layer {
    /// The config file, at a 1-based line and column.
    File { path: PathBuf, line: usize, column: usize },
    /// A `FERRY_*` environment variable (its name).
    Env(String),
    /// A command-line flag such as `--listen`.
    Flag(String),
    /// A built-in default or a value derived from other settings.
    Default,
}

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("could not read config file {}: {source}", path.display())]
    ReadFile { path: PathBuf, source: std::io::Error },
    /// The config file is not valid TOML; the message carries line and column.
    #[error("config file {}: {message}", path.display())]
    Syntax { path: PathBuf, message: String },
    /// A key that ferry does not know (typos are caught, never ignored).
    #[error("{}", render_unknown(.layer, .key, .expected))]
    UnknownKey { layer: Layer, key: String, expected: Vec<&'static str> },
    /// A value that is present but wrong.
    #[error("{}", render_invalid(.layer, .key, .message))]
    Invalid { layer: Layer, key: String, message: String },
}

impl ConfigError {
    /// The dotted key (e.g. `apps[1].roles[0]`) the error is about, if any.
    pub fn key(&self) -> Option<&str> {
        match self {
            Self::UnknownKey { key, .. } | Self::Invalid { key, .. } => Some(key),
            Self::ReadFile { .. } | Self::Syntax { .. } => None,
        }
    }
}

fn render_unknown(layer: &Layer, key: &str, expected: &[&str]) -> String {
    let mut text = format!("unknown key `{key}` (expected one of: {})", expected.join(", "));
    if let Layer::Env(var) = layer {
        // `FERRY_LOG_FORMAT` instead of `FERRY_LOG__FORMAT`: point at the fix.
        if let Some((section, rest)) = key.split_once('_')
            && !key.contains('.')
            && expected.contains(&section)
        {
            text.push_str(&format!(
                "; nested keys use a double underscore, e.g. FERRY_{}__{}",
                section.to_uppercase(),
                rest.to_uppercase()
            ));
        }
        return format!("{var}: {text}");
    }
    with_layer(layer, None, &text)
}

fn render_invalid(layer: &Layer, key: &str, message: &str) -> String {
    with_layer(layer, Some(key), message)
}

fn with_layer(layer: &Layer, key: Option<&str>, message: &str) -> String {
    let key = key.filter(|k| !k.is_empty());
    match (layer, key) {
        (Layer::File { path, line, column }, Some(key)) => {
            format!("config file {}: {key}: {message} at line {line}, column {column}", path.display())
        }
        (Layer::File { path, line, column }, None) => {
            format!("config file {}: {message} at line {line}, column {column}", path.display())
        }
        (Layer::Env(var), Some(key)) if crate::layers::env_var_key(var) != key => {
            format!("{var}: {key}: {message}")
        }
        (Layer::Env(name) | Layer::Flag(name), _) => format!("{name}: {message}"),
        (Layer::Default, Some(key)) => format!("{key}: {message}"),
        (Layer::Default, None) => message.to_owned(),
    }
}

/// One step of a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seg {
    Key(String),
    Index(usize),
}

/// A path to a value, displayed as `apps[1].roles[0]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct KeyPath(pub(crate) Vec<Seg>);

impl KeyPath {
    pub(crate) fn root() -> Self {
        Self::default()
    }

    pub(crate) fn key(&self, key: &str) -> Self {
        let mut segs = self.0.clone();
        segs.push(Seg::Key(key.to_owned()));
        Self(segs)
    }

    pub(crate) fn index(&self, index: usize) -> Self {
        let mut segs = self.0.clone();
        segs.push(Seg::Index(index));
        Self(segs)
    }
}

impl Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(key) if i == 0 => f.write_str(key)?,
                Seg::Key(key) => write!(f, ".{key}")?,
                Seg::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

/// What went wrong, before it is tied to a layer.
#[derive(Debug)]
pub(crate) enum ProblemKind {
    UnknownKey(Vec<&'static str>),
    Message(String),
}

/// A deserialization or validation failure at a key path; the loader turns it
/// into a [`ConfigError`] by finding which layer supplied the value.
#[derive(Debug)]
pub(crate) struct Problem {
    pub(crate) path: KeyPath,
    pub(crate) kind: ProblemKind,
}

impl Problem {
    pub(crate) fn new(at: &KeyPath, message: impl Into<String>) -> Self {
        Self { path: at.clone(), kind: ProblemKind::Message(message.into()) }
    }

    fn message(message: impl Into<String>) -> Self {
        Self::new(&KeyPath::root(), message)
    }

    /// Prefix the path with the segment the error bubbled up through.
    pub(crate) fn within(mut self, seg: Seg) -> Self {
        self.path.0.insert(0, seg);
        self
    }
}

impl Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ProblemKind::UnknownKey(_) => write!(f, "unknown key `{}`", self.path),
            ProblemKind::Message(message) => write!(f, "{}: {message}", self.path),
        }
    }
}

impl std::error::Error for Problem {}

fn is_integer_type(name: &str) -> bool {
    matches!(name, "i8" | "i16" | "i32" | "i64" | "i128" | "isize" | "u8" | "u16" | "u32" | "u64" | "u128" | "usize")
}

/// Describe what serde expected in words a config author understands.
fn expected_text(exp: &dyn Expected) -> String {
    let raw = exp.to_string();
    match raw.as_str() {
        name if is_integer_type(name) => "a whole number".to_owned(),
        "f32" | "f64" => "a number".to_owned(),
        "a sequence" => "a list".to_owned(),
        "a map" => "a table".to_owned(),
        "path string" => "a path".to_owned(),
        name if name.starts_with("struct ") => "a table".to_owned(),
        _ => raw,
    }
}

fn unexpected_text(unexp: &Unexpected<'_>) -> String {
    match unexp {
        Unexpected::Bool(b) => format!("boolean {b}"),
        Unexpected::Signed(n) => format!("integer {n}"),
        Unexpected::Unsigned(n) => format!("integer {n}"),
        Unexpected::Float(x) => format!("number {x}"),
        Unexpected::Str(s) => format!("string '{s}'"),
        Unexpected::Seq => "a list".to_owned(),
        Unexpected::Map => "a table".to_owned(),
        other => other.to_string(),
    }
}

impl de::Error for Problem {
    fn custom<T: Display>(msg: T) -> Self {
        Self::message(msg.to_string())
    }

    fn invalid_type(unexp: Unexpected<'_>, exp: &dyn Expected) -> Self {
        Self::message(format!("expected {}, found {}", expected_text(exp), unexpected_text(&unexp)))
    }

    fn invalid_value(unexp: Unexpected<'_>, exp: &dyn Expected) -> Self {
        let wanted = exp.to_string();
        let message = match unexp {
            Unexpected::Signed(n) if n < 0 && wanted.starts_with('u') && is_integer_type(&wanted) => {
                format!("{n} is negative; expected a whole number of at least 0")
            }
            Unexpected::Signed(_) | Unexpected::Unsigned(_) if is_integer_type(&wanted) => {
                format!("{} is too large", unexpected_text(&unexp).trim_start_matches("integer "))
            }
            _ => format!("invalid value {}, expected {}", unexpected_text(&unexp), expected_text(exp)),
        };
        Self::message(message)
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        Self::message(format!("unknown value '{variant}' (expected one of: {})", expected.join(", ")))
    }

    fn unknown_field(_field: &str, expected: &'static [&'static str]) -> Self {
        // The key itself is appended to the path by the map access it came from.
        Self { path: KeyPath::root(), kind: ProblemKind::UnknownKey(expected.to_vec()) }
    }

    fn missing_field(field: &'static str) -> Self {
        Self::message(format!("missing required key `{field}`"))
    }
}
