//! [`Batch`]: several statements sent to the database as one request where the driver allows
//! it ([`crate::Conn::fetch_batch`]). sqlx runs every SQLite statement on its connection's worker
//! thread, so each statement costs two thread hand-offs — more than most small statements take
//! to run; a batch joined by `;` costs them once. Other drivers run the statements one after the
//! other on the same connection.
//!
//! Each statement is written with its own `$1, $2, …` (the numbers may repeat or leave gaps).
//! For SQLite they are rewritten into one positional list across the whole batch: sqlx binds a
//! numbered parameter of a later statement by its absolute number, and binds the gaps below a
//! statement's largest number from the positional arguments, so numbered parameters cannot be
//! shared safely between joined statements.

use crate::args::{Arg, Args};

/// Statements run in order on one connection, as one request where the driver allows.
#[derive(Debug, Default)]
pub struct Batch {
    statements: Vec<(String, Args)>,
}

impl Batch {
    pub fn new() -> Batch {
        Batch::default()
    }

    /// Adds a statement with its own arguments (`$1` is its first).
    pub fn push(&mut self, sql: impl Into<String>, args: impl Into<Args>) -> &mut Batch {
        self.statements.push((sql.into(), args.into()));
        self
    }

    pub fn is_empty(&self) -> bool {
        self.statements.is_empty()
    }

    pub(crate) fn into_statements(self) -> Vec<(String, Args)> {
        self.statements
    }

    /// One text of every statement joined by `;`, each `$n` outside string literals replaced by
    /// `?` and its argument put in that place of one positional list.
    pub(crate) fn joined(self) -> Result<(String, Args), crate::SqlError> {
        let mut text = String::new();
        let mut args = Vec::new();
        for (sql, Args(own)) in self.statements {
            if !text.is_empty() {
                text.push_str(";\n");
            }
            positional(&sql, &own, &mut text, &mut args)?;
        }
        Ok((text, Args(args)))
    }
}

/// Appends `sql` to `out` with each `$n` (outside `'…'`) as `?`, and `own[n - 1]` to `args`.
fn positional(sql: &str, own: &[Arg], out: &mut String, args: &mut Vec<Arg>) -> Result<(), crate::SqlError> {
    crate::sqlite::rewrite_placeholders(sql, out, |out, number| {
        let arg = number
            .checked_sub(1)
            .and_then(|i| own.get(i))
            .ok_or_else(|| crate::SqlError::other(format!("statement refers to ${number} beyond its arguments")))?;
        args.push(arg.clone());
        out.push('?');
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::Batch;
    use crate::args::Args;
    use ferry_model::Value;

    fn int(i: i64) -> Value {
        Value::Int(i)
    }

    #[test]
    fn renumbers_every_statement_into_one_positional_list() {
        let mut batch = Batch::new();
        batch.push("UPDATE c SET n = n + 1", ());
        batch.push("INSERT INTO m VALUES ($1, $3, '$2', $1)", vec![int(1), int(2), int(3)]);
        batch.push("DELETE FROM l WHERE id = $2 AND x = $1", vec![int(10), int(20)]);
        let (text, args) = batch.joined().unwrap();
        assert_eq!(
            text,
            "UPDATE c SET n = n + 1;\nINSERT INTO m VALUES (?, ?, '$2', ?);\nDELETE FROM l WHERE id = ? AND x = ?"
        );
        assert_eq!(args, Args::from(vec![int(1), int(3), int(1), int(20), int(10)]));
    }

    #[test]
    fn refuses_a_number_beyond_the_arguments() {
        let mut batch = Batch::new();
        batch.push("SELECT $2", vec![int(1)]);
        assert!(batch.joined().is_err());
        let mut batch = Batch::new();
        batch.push("SELECT $0", vec![int(1)]);
        assert!(batch.joined().is_err());
    }
}
