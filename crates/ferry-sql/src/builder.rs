//! [`Sql`]: statement text and its arguments built together, so placeholders always line up,
//! written in one dialect's syntax.

use crate::args::{Arg, Args};
use crate::dialect::{ColType, Dialect};
use ferry_model::Value;

/// SQL text with its bound arguments, in one dialect.
#[derive(Clone, Debug)]
pub struct Sql {
    dialect: Dialect,
    text: String,
    args: Vec<Arg>,
}

impl Sql {
    pub fn new(dialect: Dialect) -> Sql {
        Sql { dialect, text: String::with_capacity(256), args: Vec::new() }
    }

    /// A statement written in the dialect's placeholder syntax by hand, with its arguments.
    pub fn with_args(dialect: Dialect, text: &str, args: impl Into<Args>) -> Sql {
        Sql { dialect, text: text.to_owned(), args: args.into().0 }
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn push(&mut self, text: &str) -> &mut Sql {
        self.text.push_str(text);
        self
    }

    /// A quoted identifier.
    pub fn ident(&mut self, name: &str) -> &mut Sql {
        let quoted = self.dialect.quote(name);
        self.push(&quoted)
    }

    /// A schema-qualified, quoted table name.
    pub fn table(&mut self, schema: &str, table: &str) -> &mut Sql {
        let qualified = self.dialect.qualified(schema, table);
        self.push(&qualified)
    }

    fn placeholder(&mut self, arg: Arg) -> &mut Sql {
        self.args.push(arg);
        self.dialect.push_placeholder(&mut self.text, self.args.len());
        self
    }

    /// A placeholder for `value`; decimals are cast so the database reads them exactly. A NULL
    /// bound here has no type (use [`Sql::param_typed`] for values of a known column).
    pub fn param(&mut self, value: Value) -> &mut Sql {
        let cast = if matches!(value, Value::Decimal(_)) { self.dialect.param_cast(ColType::Decimal) } else { "" };
        self.placeholder(Arg::Value(value, None));
        self.push(cast)
    }

    /// A placeholder for a value of a column of type `ty` (a NULL gets that type).
    pub fn param_typed(&mut self, value: Value, ty: ColType) -> &mut Sql {
        self.placeholder(Arg::Value(value, Some(ty)));
        let cast = self.dialect.param_cast(ty);
        self.push(cast)
    }

    /// A placeholder for a whole column of values of `ty`, bound as one array, with its array
    /// cast (PostgreSQL).
    pub fn param_column(&mut self, ty: ColType, values: Vec<Value>) -> &mut Sql {
        self.placeholder(Arg::Column(ty, values));
        self.push(Dialect::array_cast(ty))
    }

    /// `a, b, c`: the placeholders of `values`.
    pub fn param_list(&mut self, values: impl IntoIterator<Item = Value>) -> &mut Sql {
        for (i, value) in values.into_iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.param(value);
        }
        self
    }

    /// ` IN (a, b, c)` of `values` — on PostgreSQL ` = ANY($n)` of one array of `ty`, one
    /// statement text (prepared once) for any number of values.
    pub fn is_one_of(&mut self, ty: ColType, values: Vec<Value>) -> &mut Sql {
        if self.dialect == Dialect::Postgres {
            self.push(" = ANY(").param_column(ty, values).push(")")
        } else {
            self.push(" IN (").param_list(values).push(")")
        }
    }

    /// The statement text and its arguments.
    pub fn into_parts(self) -> (String, Args) {
        (self.text, Args(self.args))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_follow_the_dialect() {
        let mut pg = Sql::new(Dialect::Postgres);
        pg.push("SELECT ").param(Value::Int(1)).push(", ").param_typed(Value::Null, ColType::Decimal);
        pg.push(" FROM ").table("public", "t");
        assert_eq!(pg.text(), "SELECT $1, $2::numeric FROM \"public\".\"t\"");
        let mut lite = Sql::new(Dialect::Sqlite);
        lite.push("VALUES (").param_list([Value::Int(1), Value::Null]).push(")");
        assert_eq!(lite.text(), "VALUES (?, ?)");
        let (_, args) = lite.into_parts();
        assert!(args.has_untyped_null());
    }

    #[test]
    fn a_list_of_values_is_one_array_on_postgres() {
        let values = || vec![Value::Int(1), Value::Int(2), Value::Int(3)];
        let mut pg = Sql::new(Dialect::Postgres);
        pg.push("x").is_one_of(ColType::Int64, values());
        assert_eq!(pg.text(), "x = ANY($1::bigint[])");
        let mut lite = Sql::new(Dialect::Sqlite);
        lite.push("x").is_one_of(ColType::Int64, values());
        assert_eq!(lite.text(), "x IN (?, ?, ?)");
    }
}
