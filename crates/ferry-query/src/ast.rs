//! The unbound syntax tree of OData queries: filter expressions, operands, literals, `$orderby`
//! items and key predicates — what the parsers produce before anything is checked against an
//! entity.

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use std::fmt;
use uuid::Uuid;

/// A boolean `$filter` expression.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Compare {
        op: CmpOp,
        left: Operand,
        right: Operand,
    },
    /// contains / startswith / endswith (string, pattern)
    Match {
        kind: MatchKind,
        subject: Operand,
        pattern: Operand,
    },
}

/// A value-producing part of a comparison.
#[derive(Clone, Debug, PartialEq)]
pub enum Operand {
    Property(String),
    Literal(Literal),
    /// tolower, toupper, trim
    Function {
        func: StringFunc,
        arg: Box<Operand>,
    },
}

/// The string-valued functions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StringFunc {
    ToLower,
    ToUpper,
    Trim,
}

/// The boolean string functions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatchKind {
    Contains,
    StartsWith,
    EndsWith,
}

/// The comparison operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

/// A literal value as written in the query.
#[derive(Clone, Debug, PartialEq)]
pub enum Literal {
    Null,
    Bool(bool),
    /// Exactly as written, e.g. "-12.50", "1e3", "5".
    Number(String),
    /// Unescaped ('' -> ').
    String(String),
    /// 2024-01-31
    Date(NaiveDate),
    /// 2024-01-31T12:00:00Z, or with an offset (converted to UTC) or fractional seconds.
    DateTime(DateTime<Utc>),
    /// Bare 8-4-4-4-12 (the OData v4 GUID literal).
    Guid(Uuid),
    /// Microsoft.Dynamics.DataEntities.NoYes'Yes' (type_name = the qualified name as written).
    Enum {
        type_name: String,
        member: String,
    },
}

/// One `$orderby` item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderBy {
    pub property: String,
    pub descending: bool,
}

/// The text between the parentheses of `Collection(...)`.
#[derive(Clone, Debug, PartialEq)]
pub enum KeyPredicate {
    /// `('10')`, `(5)`, `(00000000-0000-0000-0000-000000000001)`
    Single(Literal),
    /// `(dataAreaId='USMF',CustomerGroupId='10')`, in the order written.
    Named(Vec<(String, Literal)>),
}

impl CmpOp {
    /// The operator that gives the same result with its operands swapped (`5 lt X` = `X gt 5`).
    pub fn mirror(self) -> CmpOp {
        match self {
            CmpOp::Eq => CmpOp::Eq,
            CmpOp::Ne => CmpOp::Ne,
            CmpOp::Gt => CmpOp::Lt,
            CmpOp::Ge => CmpOp::Le,
            CmpOp::Lt => CmpOp::Gt,
            CmpOp::Le => CmpOp::Ge,
        }
    }

    /// The OData keyword (`eq`, `ne`, …).
    pub fn keyword(self) -> &'static str {
        match self {
            CmpOp::Eq => "eq",
            CmpOp::Ne => "ne",
            CmpOp::Gt => "gt",
            CmpOp::Ge => "ge",
            CmpOp::Lt => "lt",
            CmpOp::Le => "le",
        }
    }

    /// Recognises an operator keyword without regard to case.
    pub fn from_keyword(word: &str) -> Option<CmpOp> {
        [CmpOp::Eq, CmpOp::Ne, CmpOp::Gt, CmpOp::Ge, CmpOp::Lt, CmpOp::Le]
            .into_iter()
            .find(|op| op.keyword().eq_ignore_ascii_case(word))
    }

    /// Whether a result of `Ordering` between left and right satisfies this operator.
    pub fn holds(self, ordering: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::*;
        match self {
            CmpOp::Eq => ordering == Equal,
            CmpOp::Ne => ordering != Equal,
            CmpOp::Gt => ordering == Greater,
            CmpOp::Ge => ordering != Less,
            CmpOp::Lt => ordering == Less,
            CmpOp::Le => ordering != Greater,
        }
    }
}

impl StringFunc {
    pub fn name(self) -> &'static str {
        match self {
            StringFunc::ToLower => "tolower",
            StringFunc::ToUpper => "toupper",
            StringFunc::Trim => "trim",
        }
    }

    pub fn from_name(name: &str) -> Option<StringFunc> {
        [StringFunc::ToLower, StringFunc::ToUpper, StringFunc::Trim]
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(name))
    }

    /// Applies the function to a text.
    pub fn apply(self, text: &str) -> String {
        match self {
            StringFunc::ToLower => text.to_lowercase(),
            StringFunc::ToUpper => text.to_uppercase(),
            StringFunc::Trim => text.trim().to_string(),
        }
    }
}

impl MatchKind {
    pub fn name(self) -> &'static str {
        match self {
            MatchKind::Contains => "contains",
            MatchKind::StartsWith => "startswith",
            MatchKind::EndsWith => "endswith",
        }
    }

    pub fn from_name(name: &str) -> Option<MatchKind> {
        [MatchKind::Contains, MatchKind::StartsWith, MatchKind::EndsWith]
            .into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(name))
    }

    /// Whether `text` matches `pattern` (ordinal, case-sensitive).
    pub fn matches(self, text: &str, pattern: &str) -> bool {
        match self {
            MatchKind::Contains => text.contains(pattern),
            MatchKind::StartsWith => text.starts_with(pattern),
            MatchKind::EndsWith => text.ends_with(pattern),
        }
    }
}

/// The names of all functions, for error messages.
pub(crate) const KNOWN_FUNCTIONS: &str = "contains, startswith, endswith, tolower, toupper, trim";

/// The one textual form of a timestamp literal: RFC 3339 in UTC with nine fractional digits,
/// so that texts sort like the instants they stand for.
pub(crate) fn datetime_text(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.9fZ").to_string()
}

impl Literal {
    /// The literal as text, for coercion and messages (strings unquoted, dates ISO 8601,
    /// timestamps RFC 3339 in UTC, enum members by name). `None` for null.
    pub fn text(&self) -> Option<String> {
        match self {
            Literal::Null => None,
            Literal::Bool(b) => Some(b.to_string()),
            Literal::Number(n) => Some(n.clone()),
            Literal::String(s) => Some(s.clone()),
            Literal::Date(d) => Some(d.format("%Y-%m-%d").to_string()),
            Literal::DateTime(t) => Some(t.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
            Literal::Guid(g) => Some(g.hyphenated().to_string()),
            Literal::Enum { member, .. } => Some(member.clone()),
        }
    }
}

/// Shows the literal as it would be written in a query (for error messages; long strings cut).
impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Literal::Null => f.write_str("null"),
            Literal::String(s) => {
                let cut: String = s.chars().take(60).collect();
                let ellipsis = if cut.len() < s.len() { "…" } else { "" };
                write!(f, "'{}{ellipsis}'", cut.replace('\'', "''"))
            }
            Literal::Enum { type_name, member } => write!(f, "{type_name}'{}'", member.replace('\'', "''")),
            other => f.write_str(&other.text().unwrap_or_default()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operators_mirror_and_hold() {
        use std::cmp::Ordering::*;
        assert_eq!(CmpOp::Lt.mirror(), CmpOp::Gt);
        assert_eq!(CmpOp::Ge.mirror(), CmpOp::Le);
        assert_eq!(CmpOp::from_keyword("GE"), Some(CmpOp::Ge));
        assert_eq!(CmpOp::from_keyword("and"), None);
        assert!(CmpOp::Le.holds(Equal) && CmpOp::Le.holds(Less) && !CmpOp::Le.holds(Greater));
        assert!(CmpOp::Ne.holds(Greater) && !CmpOp::Ne.holds(Equal));
    }

    #[test]
    fn functions_apply() {
        assert_eq!(StringFunc::from_name("ToLower"), Some(StringFunc::ToLower));
        assert_eq!(StringFunc::ToUpper.apply("äb"), "ÄB");
        assert_eq!(StringFunc::Trim.apply("  x "), "x");
        assert!(MatchKind::EndsWith.matches("Contoso", "oso"));
        assert!(!MatchKind::StartsWith.matches("Contoso", "con"), "matching is case-sensitive");
    }

    #[test]
    fn literals_display_as_written() {
        assert_eq!(Literal::String("O'Neil".into()).to_string(), "'O''Neil'");
        assert_eq!(Literal::Number("-1.50".into()).to_string(), "-1.50");
        let t = DateTime::parse_from_rfc3339("2024-01-31T12:00:00+01:00").unwrap().with_timezone(&Utc);
        assert_eq!(Literal::DateTime(t).to_string(), "2024-01-31T11:00:00Z");
        assert_eq!(datetime_text(&t), "2024-01-31T11:00:00.000000000Z");
        let e = Literal::Enum { type_name: "Microsoft.Dynamics.DataEntities.NoYes".into(), member: "Yes".into() };
        assert_eq!(e.to_string(), "Microsoft.Dynamics.DataEntities.NoYes'Yes'");
        assert_eq!(Literal::Null.text(), None);
    }
}
