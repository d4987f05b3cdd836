//! Binding: checks parsed queries against an entity of the catalog — names become columns,
//! literals become typed [`Value`]s of the column's field type — so the store can turn them
//! into SQL without looking at text again.
//!
//! Comparisons are normalised with the column on the left (`5 lt X` becomes `X gt 5`);
//! comparisons of two literals and functions of literals are folded at bind time, and constant
//! branches of `and`/`or`/`not` and double negations are simplified away.

use crate::QueryError;
use crate::ast::{CmpOp, Expr, Literal, MatchKind, Operand, OrderBy, StringFunc};
use crate::eval::{compare, literal_value};
use ferry_model::{COMPANY_FIELD, Entity, FieldType, Input, Value, normalize_company};

/// A column of an entity's rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Column {
    /// Index into `entity.fields`.
    Field(usize),
    /// The `dataAreaId` pseudo-property (only on company-specific entities).
    Company,
}

/// A `$filter` checked against an entity.
#[derive(Clone, Debug, PartialEq)]
pub enum BoundExpr {
    And(Box<BoundExpr>, Box<BoundExpr>),
    Or(Box<BoundExpr>, Box<BoundExpr>),
    Not(Box<BoundExpr>),
    /// Column-side operand on the left after normalisation (`5 lt X` becomes `X gt 5`); `right`
    /// is a typed value (`Value::Null` for `eq null` / `ne null`).
    Compare {
        op: CmpOp,
        left: BoundOperand,
        right: Value,
    },
    /// String match; pattern is the literal text.
    Match {
        kind: MatchKind,
        subject: BoundOperand,
        pattern: String,
    },
    /// Comparison of two literals, folded at bind time.
    Const(bool),
}

/// The column side of a bound comparison: a column, possibly wrapped in string functions.
#[derive(Clone, Debug, PartialEq)]
pub enum BoundOperand {
    Column(Column),
    Function { func: StringFunc, arg: Box<BoundOperand> },
}

/// Binds a parsed `$filter` against `entity`.
pub fn bind_filter(expr: &Expr, entity: &Entity) -> Result<BoundExpr, QueryError> {
    Binder { entity }.expr(expr)
}

/// Binds `$orderby` items: `(column, descending)` in order.
pub fn bind_orderby(items: &[OrderBy], entity: &Entity) -> Result<Vec<(Column, bool)>, QueryError> {
    items.iter().map(|item| Ok((resolve_column("$orderby", &item.property, entity)?, item.descending))).collect()
}

/// Binds `$select` names to columns, without duplicates. An empty list (all) stays empty.
pub fn bind_select(items: &[String], entity: &Entity) -> Result<Vec<Column>, QueryError> {
    let mut columns = Vec::new();
    for name in items {
        let column = resolve_column("$select", name, entity)?;
        if !columns.contains(&column) {
            columns.push(column);
        }
    }
    Ok(columns)
}

/// Finds a property of `entity` by name (any case); `dataAreaId` is the company column.
fn resolve_column(clause: &str, name: &str, entity: &Entity) -> Result<Column, QueryError> {
    if name.eq_ignore_ascii_case(COMPANY_FIELD) {
        return if entity.company_specific {
            Ok(Column::Company)
        } else {
            Err(QueryError::new(format!(
                "{clause}: {} is shared by all companies and has no {COMPANY_FIELD} property",
                entity.collection
            )))
        };
    }
    if let Some((index, _)) = entity.field(name) {
        return Ok(Column::Field(index));
    }
    let mut candidates: Vec<&str> = entity.fields.iter().map(|f| f.name.as_str()).collect();
    if entity.company_specific {
        candidates.push(COMPANY_FIELD);
    }
    let hint = candidates
        .into_iter()
        .map(|c| (edit_distance(&c.to_ascii_lowercase(), &name.to_ascii_lowercase()), c))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| format!(" (did you mean '{c}'?)"))
        .unwrap_or_default();
    Err(QueryError::new(format!("{clause}: unknown property '{name}' in {}{hint}", entity.collection)))
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let substitution = previous + usize::from(ca != cb);
            previous = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

/// An operand after resolution: the column side, or a literal (functions of literals folded).
enum Side {
    Column { operand: BoundOperand, base: Column, wrapped: bool },
    Literal(Literal),
}

struct Binder<'a> {
    entity: &'a Entity,
}

impl Binder<'_> {
    fn fail(&self, message: String) -> QueryError {
        QueryError::new(format!("$filter: {message}"))
    }

    fn name(&self, column: Column) -> &str {
        match column {
            Column::Field(i) => &self.entity.fields[i].name,
            Column::Company => COMPANY_FIELD,
        }
    }

    fn is_text(&self, column: Column) -> bool {
        match column {
            Column::Field(i) => matches!(self.entity.fields[i].ty, FieldType::String { .. }),
            Column::Company => true,
        }
    }

    fn type_of(&self, column: Column) -> String {
        match column {
            Column::Field(i) => self.entity.fields[i].ty.to_string(),
            Column::Company => "string".into(),
        }
    }

    fn expr(&self, expr: &Expr) -> Result<BoundExpr, QueryError> {
        Ok(match expr {
            Expr::And(a, b) => match (self.expr(a)?, self.expr(b)?) {
                (BoundExpr::Const(false), _) | (_, BoundExpr::Const(false)) => BoundExpr::Const(false),
                (BoundExpr::Const(true), other) | (other, BoundExpr::Const(true)) => other,
                (a, b) => BoundExpr::And(Box::new(a), Box::new(b)),
            },
            Expr::Or(a, b) => match (self.expr(a)?, self.expr(b)?) {
                (BoundExpr::Const(true), _) | (_, BoundExpr::Const(true)) => BoundExpr::Const(true),
                (BoundExpr::Const(false), other) | (other, BoundExpr::Const(false)) => other,
                (a, b) => BoundExpr::Or(Box::new(a), Box::new(b)),
            },
            Expr::Not(inner) => match self.expr(inner)? {
                BoundExpr::Const(b) => BoundExpr::Const(!b),
                BoundExpr::Not(double) => *double,
                other => BoundExpr::Not(Box::new(other)),
            },
            Expr::Compare { op, left, right } => self.compare(*op, left, right)?,
            Expr::Match { kind, subject, pattern } => self.matching(*kind, subject, pattern)?,
        })
    }

    fn side(&self, operand: &Operand) -> Result<Side, QueryError> {
        match operand {
            Operand::Property(name) => {
                let column = resolve_column("$filter", name, self.entity)?;
                Ok(Side::Column { operand: BoundOperand::Column(column), base: column, wrapped: false })
            }
            Operand::Literal(lit) => Ok(Side::Literal(lit.clone())),
            Operand::Function { func, arg } => match self.side(arg)? {
                Side::Column { operand, base, .. } if self.is_text(base) => Ok(Side::Column {
                    operand: BoundOperand::Function { func: *func, arg: Box::new(operand) },
                    base,
                    wrapped: true,
                }),
                Side::Column { base, .. } => Err(self.fail(format!(
                    "{}() works on text, but property {} is {}",
                    func.name(),
                    self.name(base),
                    self.type_of(base)
                ))),
                Side::Literal(Literal::String(s)) => Ok(Side::Literal(Literal::String(func.apply(&s)))),
                Side::Literal(Literal::Null) => Ok(Side::Literal(Literal::Null)),
                Side::Literal(other) => Err(self.fail(format!("{}() works on text, not on {other}", func.name()))),
            },
        }
    }

    fn compare(&self, op: CmpOp, left: &Operand, right: &Operand) -> Result<BoundExpr, QueryError> {
        match (self.side(left)?, self.side(right)?) {
            (Side::Literal(a), Side::Literal(b)) => {
                if matches!(a, Literal::Null) || matches!(b, Literal::Null) {
                    self.check_null_operator(op, None)?;
                }
                Ok(BoundExpr::Const(compare(op, &literal_value(&a), &literal_value(&b))?))
            }
            (Side::Column { base: a, .. }, Side::Column { base: b, .. }) => Err(self.fail(format!(
                "comparing two properties ({} {} {}) is not supported; compare a property with a value",
                self.name(a),
                op.keyword(),
                self.name(b)
            ))),
            (Side::Column { operand, base, wrapped }, Side::Literal(lit)) => {
                let right = self.value(op, base, wrapped, &lit)?;
                Ok(BoundExpr::Compare { op, left: operand, right })
            }
            (Side::Literal(lit), Side::Column { operand, base, wrapped }) => {
                let op = op.mirror();
                let right = self.value(op, base, wrapped, &lit)?;
                Ok(BoundExpr::Compare { op, left: operand, right })
            }
        }
    }

    fn check_null_operator(&self, op: CmpOp, column: Option<Column>) -> Result<(), QueryError> {
        if matches!(op, CmpOp::Eq | CmpOp::Ne) {
            return Ok(());
        }
        let property = column.map(|c| format!(" (property {})", self.name(c))).unwrap_or_default();
        Err(self.fail(format!("'{}' cannot compare with null{property}; only eq and ne can", op.keyword())))
    }

    /// The literal as a value of the column's type.
    fn value(&self, op: CmpOp, column: Column, wrapped: bool, lit: &Literal) -> Result<Value, QueryError> {
        if let Literal::Null = lit {
            self.check_null_operator(op, Some(column))?;
            return Ok(Value::Null);
        }
        let unlimited = FieldType::String { max_length: None };
        let ty = match column {
            _ if wrapped => &unlimited,
            Column::Company => &unlimited,
            Column::Field(i) => match &self.entity.fields[i].ty {
                // A filter value longer than the column simply matches nothing.
                FieldType::String { .. } => &unlimited,
                ty => ty,
            },
        };
        if let (Literal::Enum { type_name, member }, FieldType::Enum(e)) = (lit, ty) {
            let short = type_name.rsplit('.').next().unwrap_or(type_name);
            if !short.eq_ignore_ascii_case(&e.name) {
                return Err(self.fail(format!(
                    "{type_name}'{member}' is a value of enum {short}, but property {} is enum {}",
                    self.name(column),
                    e.name
                )));
            }
        }
        let text = match (lit, ty) {
            // A date compared with a timestamp column means midnight UTC.
            (Literal::Date(d), FieldType::DateTime) => format!("{}T00:00:00Z", d.format("%Y-%m-%d")),
            _ => lit.text().unwrap_or_default(),
        };
        let input = match lit {
            Literal::Bool(b) => Input::Bool(*b),
            Literal::Number(n) => Input::Number(n),
            _ => Input::Text(&text),
        };
        let value =
            ty.coerce(input).map_err(|e| self.fail(format!("{} (property {})", e.message, self.name(column))))?;
        Ok(match (column, value) {
            (Column::Company, Value::String(s)) if !wrapped => Value::String(normalize_company(&s)),
            (_, value) => value,
        })
    }

    fn matching(&self, kind: MatchKind, subject: &Operand, pattern: &Operand) -> Result<BoundExpr, QueryError> {
        let name = kind.name();
        let pattern = match self.side(pattern)? {
            Side::Literal(Literal::String(s)) => s,
            Side::Literal(other) => {
                return Err(self.fail(format!("the pattern of {name}() must be a string literal, not {other}")));
            }
            Side::Column { base, .. } => {
                return Err(self.fail(format!(
                    "the pattern of {name}() must be a string literal, not property {}",
                    self.name(base)
                )));
            }
        };
        match self.side(subject)? {
            Side::Literal(Literal::String(s)) => Ok(BoundExpr::Const(kind.matches(&s, &pattern))),
            Side::Literal(other) => Err(self.fail(format!("{name}() works on text, not on {other}"))),
            Side::Column { base, .. } if !self.is_text(base) => Err(self.fail(format!(
                "{name}() works on text, but property {} is {}",
                self.name(base),
                self.type_of(base)
            ))),
            Side::Column { operand, base, wrapped } => {
                let pattern = if base == Column::Company && !wrapped { pattern.to_lowercase() } else { pattern };
                Ok(BoundExpr::Match { kind, subject: operand, pattern })
            }
        }
    }
}

#[cfg(test)]
#[path = "bind_tests.rs"]
mod tests;
