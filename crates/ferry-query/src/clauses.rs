//! The small query options: `$orderby` ("Name desc, CustomerAccount"), `$select`
//! ("Name,CreditLimit" or "*") and key predicates (the text between the parentheses of
//! `Collection(...)`: "'10'", "5", a GUID, or "dataAreaId='USMF',CustomerGroupId='10'").

use crate::ast::{KeyPredicate, Literal, OrderBy};
use crate::filter::keyword_literal;
use crate::lexer::{Cursor, Tok, Token, lex};
use crate::{QueryError, check_length};

/// Parses `$orderby`: comma-separated property names, each optionally followed by `asc` or
/// `desc` (any case).
pub fn parse_orderby(text: &str) -> Result<Vec<OrderBy>, QueryError> {
    const CLAUSE: &str = "$orderby";
    check_length(CLAUSE, text)?;
    let mut c = Cursor::new(CLAUSE, lex(CLAUSE, text)?);
    if c.peek().tok == Tok::End {
        return Err(c.fail("is empty; name a property to sort by, e.g. Name desc".into()));
    }
    let mut items = Vec::new();
    loop {
        let token = c.peek().clone();
        let property = match &token.tok {
            Tok::Ident(name) => plain_name(&c, name, &token)?,
            Tok::Comma | Tok::End => return Err(c.fail(format!("empty item at position {}", token.pos))),
            _ => return Err(c.expected("a property name")),
        };
        c.next();
        if c.peek().tok == Tok::LParen {
            return Err(c.fail(format!(
                "sorting by a function ({property}(...) at position {}) is not supported; name a property",
                token.pos
            )));
        }
        let descending = if c.peek().is_word("desc") {
            c.next();
            Some(true)
        } else if c.peek().is_word("asc") {
            c.next();
            Some(false)
        } else {
            None
        };
        items.push(OrderBy { property, descending: descending.unwrap_or(false) });
        match c.peek().tok {
            Tok::End => return Ok(items),
            Tok::Comma => {
                c.next();
            }
            _ if descending.is_some() => return Err(c.expected("',' or the end of $orderby")),
            _ => return Err(c.expected("'asc', 'desc', ',' or the end of $orderby")),
        }
    }
}

/// Parses `$select`: comma-separated property names. `*` (alone or among names) selects all
/// properties and yields an empty list.
pub fn parse_select(text: &str) -> Result<Vec<String>, QueryError> {
    const CLAUSE: &str = "$select";
    check_length(CLAUSE, text)?;
    if text.trim().is_empty() {
        return Err(QueryError::new("$select: is empty; name properties, e.g. Name,CreditLimit, or write *"));
    }
    let mut items = Vec::new();
    let mut all = false;
    let mut pos = 1;
    for raw in text.split(',') {
        let item = raw.trim();
        if item.is_empty() {
            return Err(QueryError::new(format!("$select: empty item at position {pos}")));
        }
        let item_pos = pos + raw.chars().take_while(|c| c.is_whitespace()).count();
        pos += raw.chars().count() + 1;
        if item == "*" {
            all = true;
            continue;
        }
        if let Some(bad) = item.chars().find(|&c| !(c.is_ascii_alphanumeric() || c == '_')) {
            let why = match bad {
                '/' => "property paths with '/' are not supported".to_string(),
                '(' => "functions and nested options are not supported".to_string(),
                c if c.is_whitespace() => "names cannot contain spaces (separate properties with ',')".to_string(),
                c => format!("names cannot contain '{c}'"),
            };
            return Err(QueryError::new(format!(
                "$select: '{item}' at position {item_pos} is not a property name: {why}"
            )));
        }
        if item.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(QueryError::new(format!(
                "$select: '{item}' at position {item_pos} is not a property name: names start with a letter"
            )));
        }
        items.push(item.to_string());
    }
    Ok(if all { Vec::new() } else { items })
}

/// Parses the text between the parentheses of `Collection(...)`.
pub fn parse_key_predicate(text: &str) -> Result<KeyPredicate, QueryError> {
    const CLAUSE: &str = "key predicate";
    check_length(CLAUSE, text)?;
    let mut c = Cursor::new(CLAUSE, lex(CLAUSE, text)?);
    if c.peek().tok == Tok::End {
        return Err(c.fail(
            "is empty; write the key between the parentheses, e.g. ('10') or (dataAreaId='usmf',CustomerGroupId='10')"
                .into(),
        ));
    }
    let named = matches!(c.peek().tok, Tok::Ident(_)) && c.peek2().tok == Tok::Equals;
    if !named {
        let value = key_value(&mut c)?;
        return match c.peek().tok {
            Tok::End => Ok(KeyPredicate::Single(value)),
            Tok::Comma => Err(c.fail(format!(
                "',' at position {}: a key of several values names each part, e.g. (dataAreaId='usmf',CustomerGroupId='10')",
                c.peek().pos
            ))),
            _ => Err(c.expected("the end of the key")),
        };
    }
    let mut parts: Vec<(String, Literal)> = Vec::new();
    loop {
        let token = c.peek().clone();
        let name = match &token.tok {
            Tok::Ident(name) => plain_name(&c, name, &token)?,
            _ => return Err(c.expected("a key property name")),
        };
        c.next();
        c.expect(Tok::Equals, &format!("'=' after '{name}'"))?;
        let value = key_value(&mut c)?;
        if parts.iter().any(|(n, _)| n.eq_ignore_ascii_case(&name)) {
            return Err(c.fail(format!("'{name}' at position {} is given twice", token.pos)));
        }
        parts.push((name, value));
        match c.peek().tok {
            Tok::End => return Ok(KeyPredicate::Named(parts)),
            Tok::Comma => {
                c.next();
            }
            _ => return Err(c.expected("',' or the end of the key")),
        }
    }
}

/// One literal of a key predicate (null is not a key value).
fn key_value(c: &mut Cursor<'_>) -> Result<Literal, QueryError> {
    let token = c.peek().clone();
    let value = match &token.tok {
        Tok::Literal(lit) => Some(lit.clone()),
        Tok::Ident(name) => keyword_literal(name),
        _ => None,
    };
    match value {
        Some(Literal::Null) => Err(c.fail(format!("null at position {} cannot be a key value", token.pos))),
        Some(value) => {
            c.next();
            Ok(value)
        }
        None if matches!(token.tok, Tok::Ident(_)) && c.peek2().tok != Tok::Equals => {
            c.next();
            Err(c.expected(&format!("'=' after '{}'", token.raw)))
        }
        None => Err(c.expected("a key value ('text', a number or a GUID)")),
    }
}

/// A property name without '.'.
fn plain_name(c: &Cursor<'_>, name: &str, token: &Token) -> Result<String, QueryError> {
    if name.contains('.') {
        return Err(
            c.fail(format!("'{name}' at position {} is not a property name (names cannot contain '.')", token.pos))
        );
    }
    Ok(name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn asc(p: &str) -> OrderBy {
        OrderBy { property: p.into(), descending: false }
    }
    fn desc(p: &str) -> OrderBy {
        OrderBy { property: p.into(), descending: true }
    }

    #[test]
    fn orderby_items_and_directions() {
        assert_eq!(parse_orderby("Name desc, CustomerAccount").unwrap(), [desc("Name"), asc("CustomerAccount")]);
        assert_eq!(parse_orderby("  A ASC,B DESC ,C").unwrap(), [asc("A"), desc("B"), asc("C")]);
        assert_eq!(parse_orderby("dataAreaId").unwrap(), [asc("dataAreaId")]);
    }

    #[test]
    fn orderby_errors() {
        let e = |t: &str| parse_orderby(t).unwrap_err().message;
        assert_eq!(e(""), "$orderby: is empty; name a property to sort by, e.g. Name desc");
        assert_eq!(e("Name,,X"), "$orderby: empty item at position 6");
        assert_eq!(e("Name,"), "$orderby: empty item at position 6");
        assert_eq!(
            e("Name up"),
            "$orderby: expected 'asc', 'desc', ',' or the end of $orderby at position 6 (found 'up')"
        );
        assert_eq!(e("Name desc X"), "$orderby: expected ',' or the end of $orderby at position 11 (found 'X')");
        assert_eq!(e("'x'"), "$orderby: expected a property name at position 1 (found 'x')");
        assert!(e("tolower(Name)").contains("sorting by a function (tolower(...) at position 1) is not supported"));
        assert!(e("Address/City").contains("paths with '/' are not supported"));
        assert!(e("A.B").contains("'A.B' at position 1 is not a property name"));
        assert!(e(&"A,".repeat(5000)).contains("is 10000 bytes long; the maximum is 8192"));
    }

    #[test]
    fn select_items() {
        assert_eq!(parse_select("Name,CreditLimit").unwrap(), ["Name", "CreditLimit"]);
        assert_eq!(parse_select(" Name , _x_value ").unwrap(), ["Name", "_x_value"]);
        assert!(parse_select("*").unwrap().is_empty());
        assert!(parse_select("Name, *").unwrap().is_empty());
    }

    #[test]
    fn select_errors() {
        let e = |t: &str| parse_select(t).unwrap_err().message;
        assert!(e(" ").starts_with("$select: is empty"));
        assert_eq!(e("Name,,X"), "$select: empty item at position 6");
        assert_eq!(e("Name, "), "$select: empty item at position 6");
        assert!(e("A, Address/City").contains("'Address/City' at position 4 is not a property name: property paths"));
        assert!(e("Name CreditLimit").contains("names cannot contain spaces"));
        assert!(e("Na-me").contains("names cannot contain '-'"));
        assert!(e("1abc").contains("names start with a letter"));
    }

    #[test]
    fn key_predicates_of_every_shape() {
        assert_eq!(parse_key_predicate("'10'").unwrap(), KeyPredicate::Single(Literal::String("10".into())));
        assert_eq!(parse_key_predicate("'O''Neil'").unwrap(), KeyPredicate::Single(Literal::String("O'Neil".into())));
        assert_eq!(parse_key_predicate("5").unwrap(), KeyPredicate::Single(Literal::Number("5".into())));
        assert_eq!(
            parse_key_predicate("00000000-0000-0000-0000-000000000001").unwrap(),
            KeyPredicate::Single(Literal::Guid(Uuid::from_u128(1)))
        );
        assert_eq!(
            parse_key_predicate("dataAreaId='USMF',CustomerGroupId='10'").unwrap(),
            KeyPredicate::Named(vec![
                ("dataAreaId".into(), Literal::String("USMF".into())),
                ("CustomerGroupId".into(), Literal::String("10".into())),
            ])
        );
        assert_eq!(
            parse_key_predicate(" Id = -3 , Flag=true, Kind=Microsoft.Dynamics.DataEntities.NoYes'Yes' ").unwrap(),
            KeyPredicate::Named(vec![
                ("Id".into(), Literal::Number("-3".into())),
                ("Flag".into(), Literal::Bool(true)),
                (
                    "Kind".into(),
                    Literal::Enum { type_name: "Microsoft.Dynamics.DataEntities.NoYes".into(), member: "Yes".into() }
                ),
            ])
        );
        assert_eq!(
            parse_key_predicate("'a,b=c'").unwrap(),
            KeyPredicate::Single(Literal::String("a,b=c".into())),
            "punctuation inside strings is text"
        );
    }

    #[test]
    fn key_predicate_errors() {
        let e = |t: &str| parse_key_predicate(t).unwrap_err().message;
        assert!(e("").starts_with("key predicate: is empty"));
        assert_eq!(e("null"), "key predicate: null at position 1 cannot be a key value");
        assert!(e("'a','b'").contains("',' at position 4: a key of several values names each part"));
        assert_eq!(e("A='1',A='2'"), "key predicate: 'A' at position 7 is given twice");
        assert_eq!(e("A='1' B='2'"), "key predicate: expected ',' or the end of the key at position 7 (found 'B')");
        assert_eq!(
            e("A="),
            "key predicate: expected a key value ('text', a number or a GUID) at position 3 (found end of input)"
        );
        assert_eq!(e("A='1',"), "key predicate: expected a key property name at position 7 (found end of input)");
        assert_eq!(
            e("CustomerGroupId"),
            "key predicate: expected '=' after 'CustomerGroupId' at position 16 (found end of input)"
        );
        assert_eq!(
            e("'abc"),
            "key predicate: unterminated string starting at position 1 (a quote inside a string is written '')"
        );
        assert_eq!(e("'1')"), "key predicate: expected the end of the key at position 4 (found ')')");
        assert!(e("A.B='1'").contains("'A.B' at position 1 is not a property name"));
    }
}
