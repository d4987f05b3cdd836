//! [`Batch`]: several statements sent to the database as one request where the driver allows
//! it ([`crate::Conn::fetch_batch`]). sqlx runs every SQLite statement on its connection's worker
//! thread, so each statement costs two thread hand-offs — more than most small statements take
//! to run; a batch joined by `;` costs them once. On PostgreSQL each statement is a round trip:
//! an [independent](Batch::independent) batch is fused into one statement (the statements after
//! the first become data-modifying `WITH` queries of the first); other batches, and MySQL's, run
//! one statement after the other on the same connection.
//!
//! Each statement is written with its own `$1, $2, …` (the numbers may repeat or leave gaps),
//! or for SQLite with anonymous `?` taking its arguments in order.
//! For SQLite they are rewritten into one positional list across the whole batch: sqlx binds a
//! numbered parameter of a later statement by its absolute number, and binds the gaps below a
//! statement's largest number from the positional arguments, so numbered parameters cannot be
//! shared safely between joined statements. Fused on PostgreSQL, each statement's numbers are
//! shifted past those of the statements before it.

use crate::args::{Arg, Args};

/// Parameters of one fused PostgreSQL statement: well below its limit of 65,535.
const FUSED_PARAMS_MAX: usize = 30_000;

/// Statements run in order on one connection, as one request where the driver allows.
#[derive(Debug, Default)]
pub struct Batch {
    statements: Vec<(String, Args)>,
    independent: bool,
}

impl Batch {
    pub fn new() -> Batch {
        Batch::default()
    }

    /// A batch whose statements do not read what another of them writes, touch no row that
    /// another touches, and of which only the first answers rows: their order does not matter,
    /// so PostgreSQL may run them as one statement (data-modifying `WITH` queries see one
    /// snapshot and run in no set order).
    pub fn independent() -> Batch {
        Batch { statements: Vec::new(), independent: true }
    }

    /// Adds a statement with its own arguments (`$1` is its first).
    pub fn push(&mut self, sql: impl Into<String>, args: impl Into<Args>) -> &mut Batch {
        self.statements.push((sql.into(), args.into()));
        self
    }

    /// Adds the statements of `other` after these (an ordered batch stays ordered).
    pub fn append(&mut self, other: Batch) -> &mut Batch {
        self.independent &= other.independent;
        self.statements.extend(other.statements);
        self
    }

    pub fn is_empty(&self) -> bool {
        self.statements.is_empty()
    }

    pub(crate) fn into_statements(self) -> Vec<(String, Args)> {
        self.statements
    }

    /// Whether PostgreSQL runs this batch with `other` appended as one statement
    /// ([`fused`](Self::fused)), which then commits or fails as a whole also outside a
    /// transaction block.
    pub fn fuses_into_one_with(&self, other: &Batch) -> bool {
        let both = || self.statements.iter().chain(&other.statements);
        self.independent
            && other.independent
            && !both().any(|(sql, _)| has_own_with(sql))
            && both().map(|(_, args)| args.0.len()).sum::<usize>() <= FUSED_PARAMS_MAX
    }

    /// The statements as PostgreSQL runs them: an independent batch fused into as few statements
    /// as its parameters allow, each `WITH s1 AS (second), s2 AS (third) first`. A statement that
    /// has a `WITH` of its own runs alone (data-modifying `WITH` queries cannot nest).
    pub(crate) fn fused(self) -> Result<Vec<(String, Args)>, crate::SqlError> {
        if !self.independent {
            return Ok(self.statements);
        }
        let mut out: Vec<(String, Args)> = Vec::new();
        let mut group: Vec<(String, Args)> = Vec::new();
        let mut params = 0;
        for (sql, args) in self.statements {
            let alone = has_own_with(&sql);
            if alone || params + args.0.len() > FUSED_PARAMS_MAX {
                out.extend(fuse(std::mem::take(&mut group))?);
                params = 0;
            }
            if alone {
                out.push((sql, args));
                continue;
            }
            params += args.0.len();
            group.push((sql, args));
        }
        out.extend(fuse(group)?);
        Ok(out)
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

/// Whether a statement starts with `WITH` queries of its own (it cannot be fused: they do not nest).
fn has_own_with(sql: &str) -> bool {
    sql.trim_start().get(..4).is_some_and(|w| w.eq_ignore_ascii_case("with"))
}

/// Appends `sql` to `out` with each `$n` (outside `'…'`) as `?`, and `own[n - 1]` to `args`. A
/// statement without `$n` (built for SQLite with `?` already, [`crate::Sql`]) takes its
/// arguments in order.
fn positional(sql: &str, own: &[Arg], out: &mut String, args: &mut Vec<Arg>) -> Result<(), crate::SqlError> {
    let mut numbered = false;
    crate::dialect::rewrite_placeholders(sql, out, |out, number| {
        numbered = true;
        let arg = number
            .checked_sub(1)
            .and_then(|i| own.get(i))
            .ok_or_else(|| crate::SqlError::other(format!("statement refers to ${number} beyond its arguments")))?;
        args.push(arg.clone());
        out.push('?');
        Ok(())
    })?;
    if !numbered {
        args.extend(own.iter().cloned());
    }
    Ok(())
}

/// One statement of `group` (none when it is empty): the first as the main statement, the
/// others as `WITH` queries before it, each `$n` shifted past the arguments before it.
fn fuse(group: Vec<(String, Args)>) -> Result<Option<(String, Args)>, crate::SqlError> {
    if group.len() <= 1 {
        return Ok(group.into_iter().next());
    }
    let mut args: Vec<Arg> = Vec::new();
    let mut parts = Vec::with_capacity(group.len());
    for (sql, Args(own)) in group {
        let (offset, count) = (args.len(), own.len());
        let mut text = String::with_capacity(sql.len());
        crate::dialect::rewrite_placeholders(&sql, &mut text, |out, number| {
            if number == 0 || number > count {
                return Err(crate::SqlError::other(format!("statement refers to ${number} beyond its arguments")));
            }
            out.push('$');
            out.push_str(&(offset + number).to_string());
            Ok(())
        })?;
        args.extend(own);
        parts.push(text);
    }
    let main = parts.remove(0);
    let queries: Vec<String> = parts.iter().enumerate().map(|(k, q)| format!("s{} AS ({q})", k + 1)).collect();
    Ok(Some((format!("WITH {} {main}", queries.join(", ")), Args(args))))
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
    fn an_independent_batch_is_one_statement_on_postgres() {
        let mut batch = Batch::independent();
        batch.push("UPDATE m SET s = $2 WHERE id = $1 RETURNING id", vec![int(1), int(2)]);
        batch.push("DELETE FROM l WHERE m = $1", vec![int(1)]);
        batch.push("INSERT INTO e VALUES ($2, $1, '$1')", vec![int(3), int(4)]);
        let fused = batch.fused().unwrap();
        assert_eq!(fused.len(), 1);
        assert_eq!(
            fused[0].0,
            "WITH s1 AS (DELETE FROM l WHERE m = $3), s2 AS (INSERT INTO e VALUES ($5, $4, '$1')) \
             UPDATE m SET s = $2 WHERE id = $1 RETURNING id"
        );
        assert_eq!(fused[0].1, Args::from(vec![int(1), int(2), int(1), int(3), int(4)]));
    }

    #[test]
    fn statements_with_their_own_with_and_ordered_batches_stay_apart() {
        let mut batch = Batch::independent();
        batch.push("INSERT INTO a VALUES ($1)", vec![int(1)]);
        batch.push("with x AS (SELECT 1) INSERT INTO b SELECT * FROM x", ());
        batch.push("INSERT INTO c VALUES ($1)", vec![int(2)]);
        let texts: Vec<String> = batch.fused().unwrap().into_iter().map(|(text, _)| text).collect();
        assert_eq!(
            texts,
            [
                "INSERT INTO a VALUES ($1)",
                "with x AS (SELECT 1) INSERT INTO b SELECT * FROM x",
                "INSERT INTO c VALUES ($1)"
            ]
        );
        let mut ordered = Batch::new();
        ordered.push("UPDATE c SET n = n + 1", ());
        ordered.push("INSERT INTO m SELECT n FROM c", ());
        assert_eq!(ordered.fused().unwrap().len(), 2);
    }

    #[test]
    fn one_statement_is_promised_only_when_fusing_gives_one() {
        let mut end = Batch::independent();
        end.push("UPDATE m SET s = $2 WHERE id = $1 RETURNING id", vec![int(1), int(2)]);
        let mut plain = Batch::independent();
        plain.push("INSERT INTO a VALUES ($1)", vec![int(1)]);
        assert!(end.fuses_into_one_with(&plain));
        let mut own_with = Batch::independent();
        own_with.push("WITH x AS (SELECT 1) INSERT INTO b SELECT * FROM x", ());
        assert!(!end.fuses_into_one_with(&own_with));
        let mut ordered = Batch::new();
        ordered.push("INSERT INTO a VALUES ($1)", vec![int(1)]);
        assert!(!end.fuses_into_one_with(&ordered));
        let mut many = Batch::independent();
        many.push("INSERT INTO a SELECT 1", vec![int(0); super::FUSED_PARAMS_MAX]);
        assert!(!end.fuses_into_one_with(&many), "more parameters than one statement takes");
    }

    #[test]
    fn a_statement_with_anonymous_placeholders_takes_its_arguments_in_order() {
        let mut batch = Batch::new();
        batch.push("UPDATE c SET n = n + $1", vec![int(5)]);
        batch.push("INSERT INTO m VALUES (?, ?)", vec![int(1), int(2)]);
        let (text, args) = batch.joined().unwrap();
        assert_eq!(text, "UPDATE c SET n = n + ?;\nINSERT INTO m VALUES (?, ?)");
        assert_eq!(args, Args::from(vec![int(5), int(1), int(2)]));
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
