//! The arguments of a statement: values, typed where the driver needs a type (a NULL bound to a
//! column of some type), or whole columns bound as one array.

use crate::dialect::ColType;
use ferry_model::Value;

/// One bound argument.
#[derive(Clone, Debug, PartialEq)]
pub enum Arg {
    /// A value; with its column's type when known, so a NULL is sent with the type the
    /// column's other values are sent with (PostgreSQL caches a statement's parameter types by
    /// its text).
    Value(Value, Option<ColType>),
    /// A whole column of values bound as one typed array (PostgreSQL `UNNEST`): a batch of any
    /// size is one statement with a constant text.
    Column(ColType, Vec<Value>),
}

impl From<Value> for Arg {
    fn from(value: Value) -> Arg {
        Arg::Value(value, None)
    }
}

/// The arguments of one statement, in placeholder order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Args(pub Vec<Arg>);

impl Args {
    /// `values`, every NULL among them sent as text — for a statement whose nullable parameters
    /// are all text columns: PostgreSQL then prepares it once and keeps it, where a NULL of no
    /// known type would have it parsed and planned at every use.
    pub fn nulls_as_text(values: Vec<Value>) -> Args {
        Args(
            values
                .into_iter()
                .map(|v| match v {
                    Value::Null => Arg::Value(Value::Null, Some(ColType::Text)),
                    v => Arg::Value(v, None),
                })
                .collect(),
        )
    }

    /// Whether a NULL of no known type is among them: PostgreSQL then infers parameter types
    /// from the statement, which could clash with the types a cached statement was prepared
    /// with, so such statements are not cached.
    pub(crate) fn has_untyped_null(&self) -> bool {
        self.0.iter().any(|a| matches!(a, Arg::Value(Value::Null, None)))
    }
}

impl From<Vec<Arg>> for Args {
    fn from(args: Vec<Arg>) -> Args {
        Args(args)
    }
}

impl From<Vec<Value>> for Args {
    fn from(values: Vec<Value>) -> Args {
        Args(values.into_iter().map(Arg::from).collect())
    }
}

impl From<()> for Args {
    fn from((): ()) -> Args {
        Args::default()
    }
}
