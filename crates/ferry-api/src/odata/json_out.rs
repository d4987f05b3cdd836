//! Entity rows as OData JSON, written by hand: decimals keep every digit (a JSON number
//! exactly as stored), enums travel as symbols (F&O) or codes (option sets).

use ferry_domain::StoredRow;
use ferry_model::{COMPANY_FIELD, Entity, EnumStyle, FieldType, Value};
use ferry_query::Column;
use std::fmt::Write;

/// Appends `text` as a JSON string literal.
pub(crate) fn write_string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

pub(crate) fn write_value(out: &mut String, ty: &FieldType, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::String(s) => write_string(out, s),
        Value::Int(i) => match ty {
            FieldType::Enum(e) if e.style == EnumStyle::Symbol => match e.by_code(*i) {
                Some(member) => write_string(out, &member.name),
                None => {
                    let _ = write!(out, "{i}");
                }
            },
            _ => {
                let _ = write!(out, "{i}");
            }
        },
        Value::Decimal(d) => out.push_str(d.as_str()),
        Value::Real(r) if r.is_finite() => {
            let _ = write!(out, "{r}");
        }
        Value::Real(_) => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Date(d) => write_string(out, &ferry_model::format_date(d)),
        Value::DateTime(t) => write_string(out, &t.format("%Y-%m-%dT%H:%M:%S%.fZ").to_string()),
        Value::Guid(g) => write_string(out, &g.to_string()),
    }
}

/// Writes one row as a JSON object: the etag, then `dataAreaId` and fields (only `select`ed
/// ones when `select` is not empty).
pub(crate) fn write_row(out: &mut String, entity: &Entity, row: &StoredRow, select: &[Column]) {
    let _ = write!(out, "{{\"@odata.etag\":\"W/\\\"{}\\\"\"", row.version);
    let wanted = |c: Column| select.is_empty() || select.contains(&c);
    if entity.company_specific && wanted(Column::Company) {
        out.push_str(",\"");
        out.push_str(COMPANY_FIELD);
        out.push_str("\":");
        write_string(out, row.company.as_deref().unwrap_or(""));
    }
    for (i, field) in entity.fields.iter().enumerate() {
        if !wanted(Column::Field(i)) {
            continue;
        }
        out.push_str(",\"");
        out.push_str(&field.name);
        out.push_str("\":");
        write_value(out, &field.ty, &row.values[i]);
    }
    out.push('}');
}

/// `CustomerGroups(dataAreaId='usmf',CustomerGroupId='10')`: a row's address in links and in
/// deleted-entity ids. `key_text` are the key values as text, in key order.
pub(crate) fn key_path(entity: &Entity, company: Option<&str>, key_text: &[String]) -> String {
    let mut parts = Vec::new();
    if let Some(company) = company.filter(|_| entity.company_specific) {
        parts.push(format!("{COMPANY_FIELD}='{}'", company.replace('\'', "''")));
    }
    for (field, text) in entity.key_fields().zip(key_text) {
        let literal = match &field.ty {
            FieldType::String { .. } | FieldType::Date | FieldType::DateTime | FieldType::Enum(_) => {
                format!("'{}'", text.replace('\'', "''"))
            }
            _ => text.clone(),
        };
        if entity.key.len() == 1 && !entity.company_specific {
            parts.push(literal);
        } else {
            parts.push(format!("{}={literal}", field.name));
        }
    }
    format!("{}({})", entity.collection, parts.join(","))
}

/// The key values of a row as text, in key order.
pub(crate) fn key_text(entity: &Entity, row: &StoredRow) -> Vec<String> {
    row.key(entity).to_text().values
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_strings() {
        let mut out = String::new();
        write_string(&mut out, "a\"b\\c\n\u{1}ü");
        assert_eq!(out, "\"a\\\"b\\\\c\\n\\u0001ü\"");
        let parsed: String = serde_json::from_str(&out).unwrap();
        assert_eq!(parsed, "a\"b\\c\n\u{1}ü");
    }
}
