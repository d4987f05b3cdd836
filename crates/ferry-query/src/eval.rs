//! Evaluates an unbound `$filter` directly against small in-memory lists (the F&O metadata
//! service filters entity names this way). Also the literal-versus-literal comparison the
//! binder folds at bind time.

use crate::QueryError;
use crate::ast::{CmpOp, Expr, Literal, Operand, datetime_text};

/// A property value of an in-memory row.
#[derive(Clone, Debug, PartialEq)]
pub enum PlainValue {
    Null,
    Bool(bool),
    Number(f64),
    Text(String),
}

impl PlainValue {
    fn kind(&self) -> &'static str {
        match self {
            PlainValue::Null => "null",
            PlainValue::Bool(_) => "boolean",
            PlainValue::Number(_) => "number",
            PlainValue::Text(_) => "text",
        }
    }

    fn describe(&self) -> String {
        match self {
            PlainValue::Null => "null".into(),
            PlainValue::Bool(b) => b.to_string(),
            PlainValue::Number(n) => n.to_string(),
            PlainValue::Text(t) => Literal::String(t.clone()).to_string(),
        }
    }
}

/// Whether the row whose properties `get` answers satisfies `expr`. `get` resolves names (the
/// caller decides about case) and answers `None` for unknown properties, which is an error.
///
/// Strings compare ordinally, numbers numerically. `eq null` holds only for null, `ne null`
/// for everything else; any other comparison involving null is false.
pub fn evaluate(expr: &Expr, get: &dyn Fn(&str) -> Option<PlainValue>) -> Result<bool, QueryError> {
    match expr {
        // Both sides are evaluated so that errors do not depend on the data.
        Expr::And(a, b) => {
            let (a, b) = (evaluate(a, get)?, evaluate(b, get)?);
            Ok(a && b)
        }
        Expr::Or(a, b) => {
            let (a, b) = (evaluate(a, get)?, evaluate(b, get)?);
            Ok(a || b)
        }
        Expr::Not(inner) => Ok(!evaluate(inner, get)?),
        Expr::Compare { op, left, right } => compare(*op, &operand(left, get)?, &operand(right, get)?),
        Expr::Match { kind, subject, pattern } => {
            let subject = operand(subject, get)?;
            let pattern = operand(pattern, get)?;
            match (&subject, &pattern) {
                (PlainValue::Text(s), PlainValue::Text(p)) => Ok(kind.matches(s, p)),
                (PlainValue::Null, _) | (_, PlainValue::Null) => Ok(false),
                _ => Err(QueryError::new(format!(
                    "$filter: {}() needs text, not {} and {}",
                    kind.name(),
                    subject.describe(),
                    pattern.describe()
                ))),
            }
        }
    }
}

fn operand(op: &Operand, get: &dyn Fn(&str) -> Option<PlainValue>) -> Result<PlainValue, QueryError> {
    match op {
        Operand::Property(name) => {
            get(name).ok_or_else(|| QueryError::new(format!("$filter: unknown property '{name}'")))
        }
        Operand::Literal(lit) => Ok(literal_value(lit)),
        Operand::Function { func, arg } => match operand(arg, get)? {
            PlainValue::Text(t) => Ok(PlainValue::Text(func.apply(&t))),
            PlainValue::Null => Ok(PlainValue::Null),
            other => Err(QueryError::new(format!("$filter: {}() needs text, not {}", func.name(), other.describe()))),
        },
    }
}

/// A literal as a plain value: numbers as `f64`, everything else but booleans and null as text
/// (dates ISO 8601, timestamps RFC 3339 UTC with nine fractional digits, enum members by name).
pub(crate) fn literal_value(lit: &Literal) -> PlainValue {
    match lit {
        Literal::Null => PlainValue::Null,
        Literal::Bool(b) => PlainValue::Bool(*b),
        Literal::Number(n) => PlainValue::Number(n.parse().unwrap_or(f64::NAN)),
        // Fixed width, so that texts sort like the instants.
        Literal::DateTime(t) => PlainValue::Text(datetime_text(t)),
        other => PlainValue::Text(other.text().unwrap_or_default()),
    }
}

/// Compares two plain values with the null rules of [`evaluate`]; values of different kinds
/// cannot be compared.
pub(crate) fn compare(op: CmpOp, left: &PlainValue, right: &PlainValue) -> Result<bool, QueryError> {
    let ordering = match (left, right) {
        (PlainValue::Null, PlainValue::Null) => return Ok(op == CmpOp::Eq),
        (PlainValue::Null, _) | (_, PlainValue::Null) => return Ok(op == CmpOp::Ne),
        (PlainValue::Bool(a), PlainValue::Bool(b)) => Some(a.cmp(b)),
        (PlainValue::Number(a), PlainValue::Number(b)) => a.partial_cmp(b),
        (PlainValue::Text(a), PlainValue::Text(b)) => Some(a.cmp(b)),
        _ => {
            return Err(QueryError::new(format!(
                "$filter: cannot compare {} ({}) with {} ({})",
                left.describe(),
                left.kind(),
                right.describe(),
                right.kind()
            )));
        }
    };
    Ok(ordering.is_some_and(|o| op.holds(o)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_filter;

    /// A metadata-like row: Name, Label, IsReadOnly, Count, Missing (null).
    fn row(name: &str) -> Option<PlainValue> {
        Some(match name.to_ascii_lowercase().as_str() {
            "name" => PlainValue::Text("CustomerGroups".into()),
            "label" => PlainValue::Text("  Customer groups ".into()),
            "isreadonly" => PlainValue::Bool(false),
            "count" => PlainValue::Number(12.0),
            "missing" => PlainValue::Null,
            _ => return None,
        })
    }

    fn eval(filter: &str) -> Result<bool, QueryError> {
        evaluate(&parse_filter(filter).unwrap(), &row)
    }

    fn yes(filter: &str) -> bool {
        eval(filter).unwrap_or_else(|e| panic!("{filter}: {e}"))
    }

    #[test]
    fn strings_compare_ordinally() {
        assert!(yes("Name eq 'CustomerGroups'"));
        assert!(!yes("Name eq 'customergroups'"));
        assert!(yes("tolower(Name) eq 'customergroups'"));
        assert!(yes("toupper(Name) eq 'CUSTOMERGROUPS'"));
        assert!(yes("trim(Label) eq 'Customer groups'"));
        assert!(yes("Name gt 'Customer' and Name lt 'D'"));
        assert!(yes("Name gt 'A'") && !yes("Name ge 'a'"), "upper case sorts before lower case");
    }

    #[test]
    fn matches_apply() {
        assert!(yes("contains(Name,'Group')"));
        assert!(!yes("contains(Name,'group')"));
        assert!(yes("contains(tolower(Name),'group')"));
        assert!(yes("startswith(Name,'Cust') and endswith(Name,'s')"));
        assert!(yes("not startswith(Name,'Vend')"));
        assert!(yes("contains(Name,'Group') eq true") && !yes("contains(Name,'Group') eq false"));
        assert!(!yes("contains(Missing,'x')"));
    }

    #[test]
    fn numbers_and_booleans() {
        assert!(yes("Count eq 12") && yes("Count eq 12.0") && yes("Count eq 1.2e1"));
        assert!(yes("Count gt -5 and Count le 12 and 13 gt Count"));
        assert!(yes("IsReadOnly eq false") && yes("IsReadOnly ne true"));
    }

    #[test]
    fn null_semantics() {
        assert!(yes("Missing eq null") && !yes("Missing ne null"));
        assert!(!yes("Name eq null") && yes("Name ne null"));
        assert!(!yes("Missing gt 'a'") && !yes("Missing lt 'a'") && yes("Missing ne 'a'"));
        assert!(!yes("Missing ge null") && !yes("Missing le null"));
        assert!(yes("tolower(Missing) eq null"));
    }

    #[test]
    fn precedence_and_grouping() {
        assert!(yes("Name eq 'x' and Count eq 1 or Count eq 12"));
        assert!(!yes("Name eq 'x' and (Count eq 1 or Count eq 12)"));
        assert!(yes("not (Name eq 'x') and not Count eq 1"));
    }

    #[test]
    fn errors() {
        assert_eq!(eval("Nope eq 1").unwrap_err().message, "$filter: unknown property 'Nope'");
        assert_eq!(
            eval("Name eq 1").unwrap_err().message,
            "$filter: cannot compare 'CustomerGroups' (text) with 1 (number)"
        );
        assert_eq!(eval("tolower(Count) eq 'x'").unwrap_err().message, "$filter: tolower() needs text, not 12");
        assert_eq!(eval("contains(Count,'1')").unwrap_err().message, "$filter: contains() needs text, not 12 and '1'");
        assert!(eval("Name eq 'x' and Nope eq 1").is_err(), "errors do not depend on short-circuiting");
    }

    #[test]
    fn literal_values() {
        assert_eq!(literal_value(&Literal::Number("1e3".into())), PlainValue::Number(1000.0));
        assert_eq!(
            literal_value(&Literal::Enum { type_name: "A.B".into(), member: "Yes".into() }),
            PlainValue::Text("Yes".into())
        );
        assert_eq!(compare(CmpOp::Eq, &PlainValue::Null, &PlainValue::Null), Ok(true));
        assert_eq!(compare(CmpOp::Ne, &PlainValue::Null, &PlainValue::Null), Ok(false));
    }
}
