//! SQL text for entity tables, written once for both dialects: identifier quoting, column
//! types, the select list and its decoding, key predicates, and `$filter`/`$orderby`
//! translation. Values never enter SQL text: they are bound as parameters.

use crate::error::StoreResult;
use ferry_domain::{NewRow, RowKey, StoredRow};
use ferry_model::{Entity, FieldType, Value};
use ferry_query::{BoundExpr, BoundOperand, CmpOp, Column, MatchKind, StringFunc};
use ferry_sql::{ColType, Dialect, RowExt, Sql};

/// Quotes an identifier. Catalog names are validated to `[A-Za-z][A-Za-z0-9_]*`; quoting also
/// doubles any `"` so that no name can ever close the identifier.
pub(crate) fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

pub(crate) fn table_name(entity: &Entity) -> String {
    format!("e_{}", entity.logical_name)
}

/// The physical columns of an entity table, in select order, and how they map to fields.
pub(crate) struct EntityTable<'e> {
    pub(crate) entity: &'e Entity,
    pub(crate) dialect: Dialect,
    pub(crate) name: String,
}

pub(crate) const ID: &str = "_id";
pub(crate) const COMPANY: &str = "_company";
pub(crate) const CREATED_AT: &str = "_created_at";
pub(crate) const MODIFIED_AT: &str = "_modified_at";
pub(crate) const VERSION: &str = "_version";

impl<'e> EntityTable<'e> {
    pub(crate) fn new(entity: &'e Entity, dialect: Dialect) -> EntityTable<'e> {
        EntityTable { entity, dialect, name: quote(&table_name(entity)) }
    }

    /// Field indexes stored in their own column (all but the primary id, which is `_id`).
    pub(crate) fn stored_fields(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.entity.fields.len()).filter(move |&i| Some(i) != self.entity.primary_id)
    }

    pub(crate) fn column_of_field(&self, index: usize) -> String {
        if Some(index) == self.entity.primary_id { quote(ID) } else { quote(&self.entity.fields[index].name) }
    }

    pub(crate) fn column(&self, column: Column) -> String {
        match column {
            Column::Field(i) => self.column_of_field(i),
            Column::Company => quote(COMPANY),
        }
    }

    pub(crate) fn sql_type(&self, ty: &FieldType) -> &'static str {
        match (self.dialect, ty) {
            (Dialect::Postgres, FieldType::String { .. }) => "TEXT COLLATE \"C\"",
            (Dialect::Postgres, FieldType::Int | FieldType::Enum(_)) => "INTEGER",
            (Dialect::Postgres, FieldType::Int64) => "BIGINT",
            (Dialect::Postgres, FieldType::Decimal { .. }) => "NUMERIC",
            (Dialect::Postgres, FieldType::Real) => "DOUBLE PRECISION",
            (Dialect::Postgres, FieldType::Bool) => "BOOLEAN",
            (Dialect::Postgres, FieldType::Date) => "DATE",
            (Dialect::Postgres, FieldType::DateTime) => "TIMESTAMPTZ",
            (Dialect::Postgres, FieldType::Guid) => "UUID",
            (_, FieldType::Int | FieldType::Int64 | FieldType::Enum(_) | FieldType::Bool) => "INTEGER",
            (_, FieldType::Real) => "REAL",
            // Text in canonical forms: exact decimals, sortable dates and timestamps.
            (_, _) => "TEXT",
        }
    }

    pub(crate) fn system_column_defs(&self) -> Vec<String> {
        let (id, ts, version, company) = match self.dialect {
            Dialect::Postgres => ("UUID", "TIMESTAMPTZ", "BIGINT", "TEXT COLLATE \"C\""),
            _ => ("TEXT", "TEXT", "INTEGER", "TEXT"),
        };
        let mut defs = vec![format!("{} {id} PRIMARY KEY", quote(ID))];
        if self.entity.company_specific {
            defs.push(format!("{} {company} NOT NULL", quote(COMPANY)));
        }
        defs.push(format!("{} {ts} NOT NULL", quote(CREATED_AT)));
        defs.push(format!("{} {ts} NOT NULL", quote(MODIFIED_AT)));
        defs.push(format!("{} {version} NOT NULL", quote(VERSION)));
        defs
    }

    pub(crate) fn field_column_def(&self, index: usize) -> String {
        let field = &self.entity.fields[index];
        let not_null = if self.entity.key.contains(&index) { " NOT NULL" } else { "" };
        format!("{} {}{not_null}", quote(&field.name), self.sql_type(&field.ty))
    }

    /// What a batch of `rows` writes: the key fields and every field some row gives a value
    /// (columns null in every row would be written as null anyway, and on wide entities most
    /// are: binding them dominated the cost), and the insert's columns — the bookkeeping ones,
    /// then those fields'.
    pub(crate) fn written_columns<'r>(
        &self,
        rows: impl Iterator<Item = &'r NewRow> + Clone,
    ) -> (Vec<usize>, Vec<String>) {
        let entity = self.entity;
        let fields: Vec<usize> = self
            .stored_fields()
            .filter(|&i| entity.key.contains(&i) || rows.clone().any(|r| !r.values[i].is_null()))
            .collect();
        let mut columns = vec![quote(ID)];
        if entity.company_specific {
            columns.push(quote(COMPANY));
        }
        columns.extend([quote(CREATED_AT), quote(MODIFIED_AT), quote(VERSION)]);
        columns.extend(fields.iter().map(|&i| quote(&entity.fields[i].name)));
        (fields, columns)
    }

    /// The columns of the natural key, in order, including the company.
    pub(crate) fn key_columns(&self) -> Vec<String> {
        let mut cols = Vec::new();
        if self.entity.company_specific {
            cols.push(quote(COMPANY));
        }
        cols.extend(self.entity.key.iter().map(|&i| self.column_of_field(i)));
        cols
    }

    /// Expression a column sorts by: SQLite keeps decimals as text, so it sorts them as numbers.
    fn sort_expr(&self, column: Column) -> String {
        let col = self.column(column);
        match column {
            Column::Field(i) if self.dialect == Dialect::Sqlite && self.is_decimal(i) => {
                format!("CAST({col} AS REAL)")
            }
            _ => col,
        }
    }

    fn is_decimal(&self, index: usize) -> bool {
        matches!(self.entity.fields[index].ty, FieldType::Decimal { .. })
    }

    /// The select list (system columns, then stored fields) and how to decode it.
    pub(crate) fn select_list(&self) -> (String, Vec<ColType>) {
        let mut cols = vec![quote(ID)];
        let mut types = vec![ColType::Guid];
        if self.entity.company_specific {
            cols.push(quote(COMPANY));
            types.push(ColType::Text);
        }
        cols.extend([quote(CREATED_AT), quote(MODIFIED_AT), quote(VERSION)]);
        types.extend([ColType::DateTime, ColType::DateTime, ColType::Int64]);
        for i in self.stored_fields() {
            let field = &self.entity.fields[i];
            let col = quote(&field.name);
            cols.push(match (self.dialect, &field.ty) {
                (Dialect::Postgres, FieldType::Decimal { .. }) => format!("{col}::text"),
                _ => col,
            });
            types.push(ColType::of(&field.ty));
        }
        (cols.join(", "), types)
    }

    /// Decodes one row of [`Self::select_list`].
    pub(crate) fn decode(&self, mut row: Vec<Value>) -> StoreResult<StoredRow> {
        let id = row.guid(0)?;
        let mut at = 1;
        let company = if self.entity.company_specific {
            at += 1;
            Some(row.text(1)?)
        } else {
            None
        };
        let created_at = row.datetime(at)?;
        let modified_at = row.datetime(at + 1)?;
        let version = row.int(at + 2)?;
        let mut stored = row.drain(at + 3..);
        let values =
            (0..self.entity.fields.len())
                .map(|i| {
                    if Some(i) == self.entity.primary_id {
                        Value::Guid(id)
                    } else {
                        stored.next().unwrap_or(Value::Null)
                    }
                })
                .collect();
        Ok(StoredRow { id, company, created_at, modified_at, version, values })
    }

    /// `WHERE`-clause text matching one natural key.
    pub(crate) fn push_key_predicate(&self, sql: &mut Sql, key: &RowKey) {
        let mut first = true;
        if self.entity.company_specific {
            sql.push(&quote(COMPANY)).push(" = ").param(Value::String(key.company.clone().unwrap_or_default()));
            first = false;
        }
        for (&field, value) in self.entity.key.iter().zip(&key.values) {
            if !first {
                sql.push(" AND ");
            }
            first = false;
            sql.push(&self.column_of_field(field)).push(" = ").param(value.clone());
        }
    }

    /// Translates a bound `$filter`. Under `not`, comparisons are made two-valued so that a null
    /// column behaves as OData says (`not (X eq 1)` is true when X is null).
    pub(crate) fn push_filter(&self, sql: &mut Sql, expr: &BoundExpr, under_not: bool) {
        match expr {
            BoundExpr::And(a, b) | BoundExpr::Or(a, b) => {
                let op = if matches!(expr, BoundExpr::And(..)) { " AND " } else { " OR " };
                sql.push("(");
                self.push_filter(sql, a, under_not);
                sql.push(op);
                self.push_filter(sql, b, under_not);
                sql.push(")");
            }
            BoundExpr::Not(inner) => {
                sql.push("NOT (");
                self.push_filter(sql, inner, true);
                sql.push(")");
            }
            BoundExpr::Const(true) => {
                sql.push("1 = 1");
            }
            BoundExpr::Const(false) => {
                sql.push("1 = 0");
            }
            BoundExpr::Compare { op, left, right } => {
                let two_valued = under_not && !right.is_null();
                if two_valued {
                    sql.push("COALESCE(");
                }
                self.push_compare(sql, *op, left, right);
                if two_valued {
                    sql.push(if self.dialect == Dialect::Postgres { ", FALSE)" } else { ", 0)" });
                }
            }
            BoundExpr::Match { kind, subject, pattern } => {
                if pattern.is_empty() {
                    // Every non-null string contains, starts and ends with "".
                    sql.push("(").push(&self.operand(subject)).push(" IS NOT NULL)");
                    return;
                }
                if under_not {
                    sql.push("COALESCE(");
                }
                let subject = self.operand(subject);
                let p = Value::String(pattern.clone());
                match (kind, self.dialect) {
                    (MatchKind::Contains, Dialect::Postgres) => {
                        sql.push("strpos(").push(&subject).push(", ").param(p).push(") > 0")
                    }
                    (MatchKind::Contains, _) => sql.push("instr(").push(&subject).push(", ").param(p).push(") > 0"),
                    (MatchKind::StartsWith, _) => {
                        sql.push("substr(").push(&subject).push(", 1, ").push(&format!("{}", pattern.chars().count()));
                        sql.push(") = ").param(p)
                    }
                    (MatchKind::EndsWith, Dialect::Postgres) => {
                        sql.push("right(").push(&subject).push(&format!(", {}) = ", pattern.chars().count())).param(p)
                    }
                    (MatchKind::EndsWith, _) => {
                        sql.push("substr(").push(&subject).push(&format!(", -{}) = ", pattern.chars().count())).param(p)
                    }
                };
                if under_not {
                    sql.push(if self.dialect == Dialect::Postgres { ", FALSE)" } else { ", 0)" });
                }
            }
        }
    }

    fn push_compare(&self, sql: &mut Sql, op: CmpOp, left: &BoundOperand, right: &Value) {
        let column_is_decimal = matches!(left, BoundOperand::Column(Column::Field(i)) if self.is_decimal(*i));
        if right.is_null() {
            let test = if op == CmpOp::Ne { " IS NOT NULL" } else { " IS NULL" };
            sql.push(&self.operand(left)).push(test);
            return;
        }
        // Equality of canonical decimal text is exact on SQLite; ranges compare as numbers.
        let numeric_range =
            column_is_decimal && self.dialect == Dialect::Sqlite && !matches!(op, CmpOp::Eq | CmpOp::Ne);
        let lhs = match left {
            BoundOperand::Column(c) if numeric_range => self.sort_expr(*c),
            _ => self.operand(left),
        };
        let op_text = match (op, self.dialect) {
            (CmpOp::Eq, _) => " = ",
            (CmpOp::Ne, Dialect::Postgres) => " IS DISTINCT FROM ",
            (CmpOp::Ne, _) => " IS NOT ",
            (CmpOp::Gt, _) => " > ",
            (CmpOp::Ge, _) => " >= ",
            (CmpOp::Lt, _) => " < ",
            (CmpOp::Le, _) => " <= ",
        };
        sql.push(&lhs).push(op_text);
        if numeric_range {
            sql.push("CAST(").param(right.clone()).push(" AS REAL)");
        } else {
            sql.param(right.clone());
        }
    }

    fn operand(&self, operand: &BoundOperand) -> String {
        match operand {
            BoundOperand::Column(c) => self.column(*c),
            BoundOperand::Function { func, arg } => {
                let name = match func {
                    StringFunc::ToLower => "lower",
                    StringFunc::ToUpper => "upper",
                    StringFunc::Trim => "trim",
                };
                format!("{name}({})", self.operand(arg))
            }
        }
    }

    /// `ORDER BY` text: the requested columns, then the natural key so pages are deterministic.
    pub(crate) fn order_by(&self, order: &[(Column, bool)]) -> String {
        let mut parts: Vec<String> = order
            .iter()
            .map(|(c, desc)| {
                let dir = if *desc { "DESC NULLS LAST" } else { "ASC NULLS FIRST" };
                format!("{} {dir}", self.sort_expr(*c))
            })
            .collect();
        parts.extend(self.key_sort_exprs().into_iter().map(|e| format!("{e} ASC")));
        parts.join(", ")
    }

    /// The natural key as sort expressions (also used for keyset paging).
    pub(crate) fn key_sort_exprs(&self) -> Vec<String> {
        let mut exprs = Vec::new();
        if self.entity.company_specific {
            exprs.push(self.column(Column::Company));
        }
        exprs.extend(self.entity.key.iter().map(|&i| self.sort_expr(Column::Field(i))));
        exprs
    }

    /// `(key...) > (values...)`: rows strictly after a key in natural-key order. With
    /// `company_fixed` (the query already says `company = …`) the company is left out, so both
    /// databases start the key index's range scan at the key instead of at the company's first
    /// row (which made paging through a company quadratic).
    pub(crate) fn push_after_key(&self, sql: &mut Sql, key: &RowKey, company_fixed: bool) {
        let with_company = self.entity.company_specific && !company_fixed;
        let mut exprs = self.key_sort_exprs();
        if self.entity.company_specific && !with_company {
            exprs.remove(0);
        }
        sql.push("(").push(&exprs.join(", ")).push(") > (");
        let mut values: Vec<(Value, bool)> = Vec::new();
        if with_company {
            values.push((Value::String(key.company.clone().unwrap_or_default()), false));
        }
        for (&i, v) in self.entity.key.iter().zip(&key.values) {
            values.push((v.clone(), self.dialect == Dialect::Sqlite && self.is_decimal(i)));
        }
        for (n, (value, as_real)) in values.into_iter().enumerate() {
            if n > 0 {
                sql.push(", ");
            }
            if as_real {
                sql.push("CAST(").param(value).push(" AS REAL)");
            } else {
                sql.param(value);
            }
        }
        sql.push(")");
    }
}
