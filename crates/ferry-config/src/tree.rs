//! The layered value tree: the parsed config file with environment variables
//! and flags overlaid on it. Every node remembers its [`Origin`], so an error
//! at any key path can name the file position, variable or flag responsible.

use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::error::{KeyPath, Seg};

/// Which layer a node came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Origin {
    /// The config file, as a byte range of its text.
    File(Range<usize>),
    /// A `FERRY_*` environment variable.
    Env(String),
    /// A command-line flag.
    Flag(&'static str),
    /// Nothing: the empty document used when there is no config file.
    Implicit,
}

/// A configuration value.
#[derive(Debug, Clone)]
pub(crate) enum Value {
    /// A TOML string.
    Str(String),
    /// Untyped text from the environment or a flag: read as whatever the
    /// target field needs (number, boolean, list, string).
    Text(String),
    Int(i128),
    Float(f64),
    Bool(bool),
    Datetime(String),
    Array(Vec<Node>),
    Table(Vec<(String, Node)>),
}

/// A value plus where it came from.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub(crate) value: Value,
    pub(crate) origin: Origin,
}

impl Node {
    pub(crate) fn new(value: Value, origin: Origin) -> Self {
        Self { value, origin }
    }

    pub(crate) fn empty_table(origin: Origin) -> Self {
        Self::new(Value::Table(Vec::new()), origin)
    }

    /// Parse a whole TOML document.
    pub(crate) fn parse_document(text: &str) -> Result<Self, toml::de::Error> {
        let table = DeTable::parse(text)?;
        let span = table.span();
        let entries = convert_table(table.get_ref(), &|span| Origin::File(span));
        Ok(Self::new(Value::Table(entries), Origin::File(span)))
    }

    /// Parse a single TOML value (used for `FERRY_X='[...]'` lists); every
    /// node gets `origin`.
    pub(crate) fn parse_value(text: &str, origin: &Origin) -> Result<Self, toml::de::Error> {
        let value = DeValue::parse(text)?;
        Ok(convert(&value, &|_| origin.clone()))
    }

    /// Set `path` (a chain of table keys) to `leaf`, creating tables on the
    /// way (they share the leaf's origin, so errors about them name its layer).
    pub(crate) fn set(&mut self, path: &[String], leaf: Node) -> Result<(), String> {
        let Some((last, parents)) = path.split_last() else {
            return Err("empty key".to_owned());
        };
        let mut table = self;
        for (depth, key) in parents.iter().enumerate() {
            let Value::Table(entries) = &mut table.value else {
                return Err(not_a_table(path, depth));
            };
            let index = match entries.iter().position(|(k, _)| k == key) {
                Some(index) => index,
                None => {
                    entries.push((key.clone(), Node::empty_table(leaf.origin.clone())));
                    entries.len() - 1
                }
            };
            table = &mut entries[index].1;
        }
        let Value::Table(entries) = &mut table.value else {
            return Err(not_a_table(path, parents.len()));
        };
        match entries.iter_mut().find(|(k, _)| k == last) {
            Some((_, node)) => *node = leaf,
            None => entries.push((last.clone(), leaf)),
        }
        Ok(())
    }

    /// The deepest node along `path` (the node itself if it exists).
    pub(crate) fn locate(&self, path: &KeyPath) -> &Node {
        let mut node = self;
        for seg in &path.0 {
            let next = match (seg, &node.value) {
                (Seg::Key(key), Value::Table(entries)) => entries.iter().find(|(k, _)| k == key).map(|(_, n)| n),
                (Seg::Index(i), Value::Array(items)) => items.get(*i),
                _ => None,
            };
            match next {
                Some(next) => node = next,
                None => break,
            }
        }
        node
    }

    /// Every string value in the tree, depth first.
    pub(crate) fn strings(&self) -> Vec<&str> {
        match &self.value {
            Value::Str(s) | Value::Text(s) => vec![s.as_str()],
            Value::Array(items) => items.iter().flat_map(Node::strings).collect(),
            Value::Table(entries) => entries.iter().flat_map(|(_, n)| n.strings()).collect(),
            Value::Int(_) | Value::Float(_) | Value::Bool(_) | Value::Datetime(_) => Vec::new(),
        }
    }
}

/// `path[..depth]` holds a non-table value, so `path` cannot be set.
fn not_a_table(path: &[String], depth: usize) -> String {
    let blocker = path.get(..depth).map(|p| p.join(".")).unwrap_or_default();
    format!("cannot set `{}` because `{blocker}` is not a table", path.join("."))
}

fn convert_table(table: &DeTable<'_>, origin: &dyn Fn(Range<usize>) -> Origin) -> Vec<(String, Node)> {
    table
        .iter()
        .map(|(key, value)| {
            let mut node = convert(value, origin);
            // Point file errors at the key (`token_lifetime_secs = 5`), not the value.
            if let Origin::File(span) = &mut node.origin {
                span.start = span.start.min(key.span().start);
            }
            (key.get_ref().to_string(), node)
        })
        .collect()
}

fn convert(value: &Spanned<DeValue<'_>>, origin: &dyn Fn(Range<usize>) -> Origin) -> Node {
    let converted = match value.get_ref() {
        DeValue::String(s) => Value::Str(s.to_string()),
        // Out-of-range literals saturate; validation then reports them as too large.
        DeValue::Integer(i) => {
            Value::Int(i128::from_str_radix(i.as_str(), i.radix()).unwrap_or(if i.as_str().starts_with('-') {
                i128::MIN
            } else {
                i128::MAX
            }))
        }
        DeValue::Float(x) => Value::Float(x.as_str().parse().unwrap_or(f64::NAN)),
        DeValue::Boolean(b) => Value::Bool(*b),
        DeValue::Datetime(d) => Value::Datetime(d.to_string()),
        DeValue::Array(items) => Value::Array(items.iter().map(|item| convert(item, origin)).collect()),
        DeValue::Table(table) => Value::Table(convert_table(table, origin)),
    };
    Node::new(converted, origin(value.span()))
}

/// 1-based line and column of byte `offset` in `text`.
pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}
