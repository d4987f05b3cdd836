//! What differs between the SQL dialects at the level of statement text: identifier quoting,
//! placeholders, the casts some values need, and the result column types values decode from.

use ferry_model::FieldType;

/// Which SQL dialect a connection speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dialect {
    Postgres,
    /// MySQL or MariaDB.
    MySql,
    Sqlite,
}

impl Dialect {
    /// Quotes an identifier, doubling the quote character inside it so no name can ever close
    /// the identifier.
    pub fn quote(self, ident: &str) -> String {
        let quote = if self == Dialect::MySql { '`' } else { '"' };
        let mut out = String::with_capacity(ident.len() + 2);
        out.push(quote);
        for c in ident.chars() {
            if c == quote {
                out.push(quote);
            }
            out.push(c);
        }
        out.push(quote);
        out
    }

    /// `"schema"."table"`.
    pub fn qualified(self, schema: &str, table: &str) -> String {
        format!("{}.{}", self.quote(schema), self.quote(table))
    }

    /// The placeholder of the `n`-th (1-based) argument. SQLite's is anonymous: statements bind in
    /// order, and numbered `?n` would make SQLite look every parameter up by name (a linear
    /// search per parameter, quadratic for a 30,000-parameter batch).
    pub fn placeholder(self, n: usize) -> String {
        let mut out = String::new();
        self.push_placeholder(&mut out, n);
        out
    }

    /// [`Dialect::placeholder`] appended to `out` (a large batch has tens of thousands).
    pub fn push_placeholder(self, out: &mut String, n: usize) {
        match self {
            Dialect::Postgres => {
                use std::fmt::Write as _;
                write!(out, "${n}").expect("writing to a String");
            }
            Dialect::MySql | Dialect::Sqlite => out.push('?'),
        }
    }

    /// What follows a placeholder of a value of `ty` so the database reads it right: decimals
    /// travel as exact text, and PostgreSQL has no implicit cast from text to numeric.
    pub fn param_cast(self, ty: ColType) -> &'static str {
        if self == Dialect::Postgres && ty == ColType::Decimal { "::numeric" } else { "" }
    }

    /// PostgreSQL's array cast for a whole column of `ty` bound as one parameter (`UNNEST`).
    pub fn array_cast(ty: ColType) -> &'static str {
        match ty {
            ColType::Text => "::text[]",
            ColType::Int32 | ColType::Int64 => "::bigint[]",
            ColType::Real => "::float8[]",
            ColType::Bool => "::bool[]",
            ColType::Decimal => "::numeric[]",
            ColType::Date => "::date[]",
            ColType::DateTime => "::timestamptz[]",
            ColType::Guid => "::uuid[]",
        }
    }
}

/// How a value is typed for the driver: how to decode a result column into a
/// [`ferry_model::Value`], and the type of a NULL or an array parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ColType {
    Text,
    Int32,
    Int64,
    Real,
    Bool,
    /// Exact decimals, kept as canonical text where the database has no exact type.
    Decimal,
    Date,
    DateTime,
    Guid,
}

impl ColType {
    /// The type a field's values are stored as (enums store their integer codes).
    pub fn of(ty: &FieldType) -> ColType {
        match ty {
            FieldType::String { .. } => ColType::Text,
            FieldType::Int | FieldType::Enum(_) => ColType::Int32,
            FieldType::Int64 => ColType::Int64,
            FieldType::Decimal { .. } => ColType::Decimal,
            FieldType::Real => ColType::Real,
            FieldType::Bool => ColType::Bool,
            FieldType::Date => ColType::Date,
            FieldType::DateTime => ColType::DateTime,
            FieldType::Guid => ColType::Guid,
        }
    }
}

/// Appends `sql` to `out`, each `$n` outside `'…'` string literals replaced by what `place`
/// writes for `n`.
pub(crate) fn rewrite_placeholders(
    sql: &str,
    out: &mut String,
    mut place: impl FnMut(&mut String, usize) -> Result<(), crate::SqlError>,
) -> Result<(), crate::SqlError> {
    let mut chars = sql.chars().peekable();
    let mut in_string = false;
    while let Some(c) = chars.next() {
        if c == '\'' {
            in_string = !in_string;
        } else if c == '$' && !in_string && chars.peek().is_some_and(char::is_ascii_digit) {
            let mut number = 0usize;
            while let Some(d) = chars.next_if(char::is_ascii_digit) {
                number = number.saturating_mul(10).saturating_add(d as usize - '0' as usize);
            }
            place(out, number)?;
            continue;
        }
        out.push(c);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_doubles_the_quote_character() {
        assert_eq!(Dialect::Postgres.quote("plain"), "\"plain\"");
        assert_eq!(Dialect::Sqlite.quote("a\"b"), "\"a\"\"b\"");
        assert_eq!(Dialect::MySql.quote("a`b"), "`a``b`");
        assert_eq!(Dialect::Postgres.quote("x; DROP TABLE y"), "\"x; DROP TABLE y\"");
        assert_eq!(Dialect::MySql.qualified("db", "t"), "`db`.`t`");
    }

    #[test]
    fn placeholders_and_casts() {
        assert_eq!(Dialect::Postgres.placeholder(3), "$3");
        assert_eq!(Dialect::Sqlite.placeholder(3), "?");
        assert_eq!(Dialect::MySql.placeholder(3), "?");
        assert_eq!(Dialect::Postgres.param_cast(ColType::Decimal), "::numeric");
        assert_eq!(Dialect::Sqlite.param_cast(ColType::Decimal), "");
        assert_eq!(Dialect::array_cast(ColType::Int32), "::bigint[]");
    }
}
