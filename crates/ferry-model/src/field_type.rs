//! Field types, their textual spelling in definitions (`string(10)`, `decimal(32,6)`,
//! `enum(NoYes)`) and the one place where untyped input becomes a typed [`Value`].

use crate::catalog::{EnumStyle, EnumType};
use crate::decimal::{Decimal, DecimalError};
use crate::value::Value;
use chrono::{DateTime, NaiveDate, Utc};
use std::fmt;
use std::sync::Arc;
use uuid::Uuid;

/// The largest string length a field may declare (characters).
pub const STRING_LENGTH_MAX: u32 = 1_000_000;

#[derive(Clone, Debug)]
pub enum FieldType {
    /// Text of at most `max_length` characters; `None` means unlimited (memo).
    String {
        max_length: Option<u32>,
    },
    Int,
    Int64,
    Decimal {
        precision: u32,
        scale: u32,
    },
    Real,
    Bool,
    Date,
    DateTime,
    Guid,
    Enum(Arc<EnumType>),
}

/// Untyped input as it arrives from JSON, a CSV cell or a filter literal.
#[derive(Clone, Copy, Debug)]
pub enum Input<'a> {
    Null,
    Bool(bool),
    /// A number exactly as written (JSON number text).
    Number(&'a str),
    Text(&'a str),
}

/// Why an input is not a valid value of a field type. The message names the value and the rule.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ValueError {
    /// Machine-readable code, e.g. `string_too_long`.
    pub code: &'static str,
    pub message: String,
}

fn err(code: &'static str, message: impl Into<String>) -> ValueError {
    ValueError { code, message: message.into() }
}

impl FieldType {
    /// Parses a type spelling from an entity definition. Enum names are resolved by `find_enum`.
    pub fn parse_spec(spec: &str, find_enum: impl Fn(&str) -> Option<Arc<EnumType>>) -> Result<FieldType, String> {
        let spec = spec.trim();
        let (name, args) = match spec.split_once('(') {
            Some((name, rest)) => {
                let args = rest.strip_suffix(')').ok_or_else(|| format!("type '{spec}' lacks a closing ')'"))?;
                (name.trim(), Some(args.trim()))
            }
            None => (spec, None),
        };
        let number = |s: &str| -> Result<u32, String> {
            s.trim().parse::<u32>().map_err(|_| format!("'{s}' in type '{spec}' is not a whole number"))
        };
        let no_args = |ty: FieldType| match args {
            None => Ok(ty),
            Some(_) => Err(format!("type '{name}' takes no arguments")),
        };
        match name.to_ascii_lowercase().as_str() {
            "string" => match args {
                None => Ok(FieldType::String { max_length: None }),
                Some(a) => {
                    let n = number(a)?;
                    if n == 0 || n > STRING_LENGTH_MAX {
                        return Err(format!("string length {n} is outside 1..={STRING_LENGTH_MAX}"));
                    }
                    Ok(FieldType::String { max_length: Some(n) })
                }
            },
            "int" | "int32" => no_args(FieldType::Int),
            "int64" | "long" => no_args(FieldType::Int64),
            "decimal" => {
                let (p, s) = match args {
                    None => (32, 6),
                    Some(a) => match a.split_once(',') {
                        Some((p, s)) => (number(p)?, number(s)?),
                        None => (number(a)?, 0),
                    },
                };
                if !(1..=38).contains(&p) || s > p {
                    return Err(format!("decimal({p},{s}) needs 1 <= precision <= 38 and scale <= precision"));
                }
                Ok(FieldType::Decimal { precision: p, scale: s })
            }
            "real" | "double" => no_args(FieldType::Real),
            "bool" | "boolean" => no_args(FieldType::Bool),
            "date" => no_args(FieldType::Date),
            "datetime" => no_args(FieldType::DateTime),
            "guid" | "uuid" => no_args(FieldType::Guid),
            "enum" => {
                let enum_name = args.ok_or("type 'enum' needs the enum's name: enum(NoYes)")?;
                find_enum(enum_name)
                    .map(FieldType::Enum)
                    .ok_or_else(|| format!("unknown enum '{enum_name}' (declare it under [[enums]])"))
            }
            other => Err(format!(
                "unknown type '{other}' (known: string, string(N), int, int64, decimal(P,S), real, bool, date, datetime, guid, enum(Name))"
            )),
        }
    }

    /// Turns untyped input into a value of this type, or says precisely why it cannot.
    pub fn coerce(&self, input: Input<'_>) -> Result<Value, ValueError> {
        if let Input::Null = input {
            return Ok(Value::Null);
        }
        match self {
            FieldType::String { max_length } => {
                let text = match input {
                    Input::Text(t) => t,
                    Input::Number(n) => n,
                    Input::Bool(b) => {
                        if b {
                            "true"
                        } else {
                            "false"
                        }
                    }
                    Input::Null => unreachable!(),
                };
                // No more characters than bytes: only a long text needs counting.
                if let Some(max) = max_length.filter(|&max| text.len() > max as usize) {
                    let chars = text.chars().count();
                    if chars > max as usize {
                        return Err(err(
                            "string_too_long",
                            format!("value is {chars} characters long; the maximum is {max}"),
                        ));
                    }
                }
                Ok(Value::String(text.to_string()))
            }
            FieldType::Int | FieldType::Int64 => {
                let text = number_text(input, "a whole number")?;
                let parsed: i64 = text
                    .trim()
                    .parse()
                    .map_err(|_| err("not_an_integer", format!("'{}' is not a whole number", cut(text))))?;
                if matches!(self, FieldType::Int) && i32::try_from(parsed).is_err() {
                    return Err(err("out_of_range", format!("{parsed} does not fit a 32-bit integer")));
                }
                Ok(Value::Int(parsed))
            }
            FieldType::Decimal { precision, scale } => {
                let text = number_text(input, "a decimal number")?;
                Decimal::parse(text, *precision, *scale).map(Value::Decimal).map_err(|e| match e {
                    DecimalError::NotANumber => err("not_a_number", format!("'{}' is not a decimal number", cut(text))),
                    DecimalError::TooManyDigits { integer_digits_max } => err(
                        "out_of_range",
                        format!("{} has more than {integer_digits_max} digits before the decimal point", cut(text)),
                    ),
                })
            }
            FieldType::Real => {
                let text = number_text(input, "a number")?;
                match text.trim().parse::<f64>() {
                    Ok(r) if r.is_finite() => Ok(Value::Real(r)),
                    _ => Err(err("not_a_number", format!("'{}' is not a finite number", cut(text)))),
                }
            }
            FieldType::Bool => match input {
                Input::Bool(b) => Ok(Value::Bool(b)),
                Input::Text(t) | Input::Number(t) => match t.trim().to_ascii_lowercase().as_str() {
                    "true" | "yes" | "1" => Ok(Value::Bool(true)),
                    "false" | "no" | "0" => Ok(Value::Bool(false)),
                    _ => Err(err("not_a_boolean", format!("'{}' is not true or false", cut(t)))),
                },
                Input::Null => unreachable!(),
            },
            FieldType::Date => {
                let text = text_only(input, "a date (YYYY-MM-DD)")?;
                parse_date(text)
                    .map(Value::Date)
                    .ok_or_else(|| err("not_a_date", format!("'{}' is not a date (YYYY-MM-DD)", cut(text))))
            }
            FieldType::DateTime => {
                let text = text_only(input, "a date and time")?;
                parse_datetime(text).map(Value::DateTime).ok_or_else(|| {
                    err("not_a_datetime", format!("'{}' is not a date and time (e.g. 2024-01-31T12:00:00Z)", cut(text)))
                })
            }
            FieldType::Guid => {
                let text = text_only(input, "a GUID")?;
                let trimmed = text.trim().trim_start_matches('{').trim_end_matches('}');
                Uuid::parse_str(trimmed)
                    .map(Value::Guid)
                    .map_err(|_| err("not_a_guid", format!("'{}' is not a GUID", cut(text))))
            }
            FieldType::Enum(e) => {
                let member = match input {
                    Input::Number(n) => n.trim().parse::<i64>().ok().and_then(|code| e.by_code(code)),
                    Input::Text(t) => e.by_name_or_label(t.trim()),
                    Input::Bool(_) | Input::Null => None,
                };
                member.map(|m| Value::Int(m.code)).ok_or_else(|| {
                    let shown = match input {
                        Input::Number(t) | Input::Text(t) => cut(t),
                        Input::Bool(b) => b.to_string(),
                        Input::Null => "null".into(),
                    };
                    err(
                        "unknown_enum_value",
                        format!("'{shown}' is not a value of enum {} (allowed: {})", e.name, e.allowed_list()),
                    )
                })
            }
        }
    }

    /// The F&O metadata `DataType` name (`/Metadata/PublicEntities`).
    pub fn fno_data_type(&self) -> &'static str {
        match self {
            FieldType::String { max_length: None } => "Memo",
            FieldType::String { .. } => "String",
            FieldType::Int => "Int32",
            FieldType::Int64 => "Int64",
            FieldType::Decimal { .. } | FieldType::Real => "Real",
            FieldType::Bool => "Boolean",
            FieldType::Date => "Date",
            FieldType::DateTime => "DateTime",
            FieldType::Guid => "Guid",
            FieldType::Enum(_) => "Enum",
        }
    }

    /// The OData EDM type (`Edm.String`, …; enums answer their own qualified name elsewhere).
    pub fn edm_type(&self) -> &'static str {
        match self {
            FieldType::String { .. } => "Edm.String",
            FieldType::Int => "Edm.Int32",
            FieldType::Int64 => "Edm.Int64",
            FieldType::Decimal { .. } => "Edm.Decimal",
            FieldType::Real => "Edm.Double",
            FieldType::Bool => "Edm.Boolean",
            FieldType::Date => "Edm.Date",
            FieldType::DateTime => "Edm.DateTimeOffset",
            FieldType::Guid => "Edm.Guid",
            FieldType::Enum(e) if e.style == EnumStyle::OptionSet => "Edm.Int32",
            FieldType::Enum(_) => "Edm.String",
        }
    }

    /// Whether values of `other` can be compared with values of this type (lookups).
    pub fn same_kind(&self, other: &FieldType) -> bool {
        use FieldType::*;
        matches!(
            (self, other),
            (String { .. }, String { .. })
                | (Int | Int64, Int | Int64)
                | (Decimal { .. }, Decimal { .. })
                | (Real, Real)
                | (Bool, Bool)
                | (Date, Date)
                | (DateTime, DateTime)
                | (Guid, Guid)
        ) || matches!((self, other), (Enum(a), Enum(b)) if a.name == b.name)
    }
}

impl fmt::Display for FieldType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldType::String { max_length: Some(n) } => write!(f, "string({n})"),
            FieldType::String { max_length: None } => f.write_str("string"),
            FieldType::Int => f.write_str("int"),
            FieldType::Int64 => f.write_str("int64"),
            FieldType::Decimal { precision, scale } => write!(f, "decimal({precision},{scale})"),
            FieldType::Real => f.write_str("real"),
            FieldType::Bool => f.write_str("bool"),
            FieldType::Date => f.write_str("date"),
            FieldType::DateTime => f.write_str("datetime"),
            FieldType::Guid => f.write_str("guid"),
            FieldType::Enum(e) => write!(f, "enum({})", e.name),
        }
    }
}

fn number_text<'a>(input: Input<'a>, what: &str) -> Result<&'a str, ValueError> {
    match input {
        Input::Number(t) | Input::Text(t) => Ok(t),
        Input::Bool(b) => Err(err("wrong_type", format!("{b} is not {what}"))),
        Input::Null => unreachable!(),
    }
}

fn text_only<'a>(input: Input<'a>, what: &str) -> Result<&'a str, ValueError> {
    match input {
        Input::Text(t) => Ok(t),
        Input::Number(n) => Err(err("wrong_type", format!("{n} is not {what}"))),
        Input::Bool(b) => Err(err("wrong_type", format!("{b} is not {what}"))),
        Input::Null => unreachable!(),
    }
}

fn cut(text: &str) -> String {
    let cut: String = text.chars().take(60).collect();
    if cut.len() < text.len() { format!("{cut}…") } else { cut }
}

/// Accepts `YYYY-MM-DD`, or a timestamp whose date part is taken (F&O sends dates as
/// `2024-01-31T12:00:00Z`).
pub(crate) fn parse_date(text: &str) -> Option<NaiveDate> {
    let text = text.trim();
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok().or_else(|| parse_datetime(text).map(|t| t.date_naive()))
}

/// Accepts RFC 3339 with an offset (converted to UTC) or without one (taken as UTC).
pub(crate) fn parse_datetime(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(text, format) {
            return Some(t.and_utc());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::EnumMember;

    fn no_enums(_: &str) -> Option<Arc<EnumType>> {
        None
    }

    #[test]
    fn parses_type_spellings() {
        assert!(matches!(
            FieldType::parse_spec("string(10)", no_enums),
            Ok(FieldType::String { max_length: Some(10) })
        ));
        assert!(matches!(
            FieldType::parse_spec("decimal(32, 6)", no_enums),
            Ok(FieldType::Decimal { precision: 32, scale: 6 })
        ));
        assert!(FieldType::parse_spec("strin", no_enums).unwrap_err().contains("unknown type 'strin'"));
        assert!(FieldType::parse_spec("enum(Nope)", no_enums).unwrap_err().contains("unknown enum 'Nope'"));
        assert!(FieldType::parse_spec("decimal(3,4)", no_enums).is_err());
        assert!(FieldType::parse_spec("string(0)", no_enums).is_err());
    }

    #[test]
    fn coerces_with_clear_errors() {
        let s = FieldType::String { max_length: Some(3) };
        assert_eq!(s.coerce(Input::Text("abc")).unwrap(), Value::String("abc".into()));
        let e = s.coerce(Input::Text("abcd")).unwrap_err();
        assert_eq!(e.code, "string_too_long");
        assert!(e.message.contains("4 characters") && e.message.contains("maximum is 3"));
        // Characters, not bytes.
        assert!(s.coerce(Input::Text("äöü")).is_ok());

        assert_eq!(FieldType::Int.coerce(Input::Number("42")).unwrap(), Value::Int(42));
        assert_eq!(FieldType::Int.coerce(Input::Number("3000000000")).unwrap_err().code, "out_of_range");
        assert_eq!(FieldType::Int64.coerce(Input::Text("x1")).unwrap_err().code, "not_an_integer");
        assert_eq!(FieldType::Bool.coerce(Input::Text("Yes")).unwrap(), Value::Bool(true));
        assert_eq!(FieldType::Date.coerce(Input::Text("2024-02-30")).unwrap_err().code, "not_a_date");
        assert_eq!(
            FieldType::Date.coerce(Input::Text("2024-01-31T12:00:00Z")).unwrap(),
            Value::Date(NaiveDate::from_ymd_opt(2024, 1, 31).unwrap())
        );
        assert!(FieldType::DateTime.coerce(Input::Text("2024-01-31T12:00:00+02:00")).is_ok());
        assert_eq!(
            FieldType::Guid.coerce(Input::Text("{0643859C-0000-0000-0000-000000000001}")).unwrap(),
            Value::Guid(Uuid::parse_str("0643859c-0000-0000-0000-000000000001").unwrap())
        );
        assert_eq!(FieldType::Real.coerce(Input::Text("NaN")).unwrap_err().code, "not_a_number");
        assert_eq!(FieldType::Int.coerce(Input::Bool(true)).unwrap_err().code, "wrong_type");
    }

    #[test]
    fn enums_accept_names_labels_and_codes() {
        let e = Arc::new(EnumType {
            name: "NoYes".into(),
            label: "No/Yes".into(),
            style: EnumStyle::Symbol,
            members: vec![
                EnumMember { name: "No".into(), code: 0, label: "No".into() },
                EnumMember { name: "Yes".into(), code: 1, label: "Yes".into() },
            ],
        });
        let t = FieldType::Enum(e);
        assert_eq!(t.coerce(Input::Text("yes")).unwrap(), Value::Int(1));
        assert_eq!(t.coerce(Input::Number("0")).unwrap(), Value::Int(0));
        let e = t.coerce(Input::Text("Maybe")).unwrap_err();
        assert!(e.message.contains("allowed: No, Yes"), "{}", e.message);
    }
}
