//! Tests of the `$filter` parser: precedence, literals, functions, case-insensitivity and every
//! error the parser reports.

use super::*;
use chrono::{NaiveDate, TimeZone, Utc};
use uuid::Uuid;

fn parse(text: &str) -> Expr {
    parse_filter(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn fails(text: &str) -> String {
    parse_filter(text).expect_err(text).message
}

fn prop(name: &str) -> Operand {
    Operand::Property(name.into())
}

fn num(n: &str) -> Operand {
    Operand::Literal(Literal::Number(n.into()))
}

fn string(s: &str) -> Operand {
    Operand::Literal(Literal::String(s.into()))
}

fn cmp(left: Operand, op: CmpOp, right: Operand) -> Expr {
    Expr::Compare { op, left, right }
}

fn eq(name: &str, n: &str) -> Expr {
    cmp(prop(name), CmpOp::Eq, num(n))
}

fn and(a: Expr, b: Expr) -> Expr {
    Expr::And(Box::new(a), Box::new(b))
}

fn or(a: Expr, b: Expr) -> Expr {
    Expr::Or(Box::new(a), Box::new(b))
}

fn not(a: Expr) -> Expr {
    Expr::Not(Box::new(a))
}

/// The right-hand literal of `X eq <literal>`.
fn literal(text: &str) -> Literal {
    match parse(&format!("X eq {text}")) {
        Expr::Compare { right: Operand::Literal(l), .. } => l,
        other => panic!("{other:?}"),
    }
}

#[test]
fn comparisons_of_every_operator() {
    for (word, op) in [
        ("eq", CmpOp::Eq),
        ("ne", CmpOp::Ne),
        ("gt", CmpOp::Gt),
        ("ge", CmpOp::Ge),
        ("lt", CmpOp::Lt),
        ("le", CmpOp::Le),
    ] {
        assert_eq!(parse(&format!("CreditLimit {word} 5")), cmp(prop("CreditLimit"), op, num("5")));
    }
    assert_eq!(parse("5 lt CreditLimit"), cmp(num("5"), CmpOp::Lt, prop("CreditLimit")), "the parser keeps the order");
}

#[test]
fn and_binds_tighter_than_or() {
    assert_eq!(parse("A eq 1 or B eq 2 and C eq 3"), or(eq("A", "1"), and(eq("B", "2"), eq("C", "3"))));
    assert_eq!(parse("A eq 1 and B eq 2 or C eq 3"), or(and(eq("A", "1"), eq("B", "2")), eq("C", "3")));
    assert_eq!(parse("(A eq 1 or B eq 2) and C eq 3"), and(or(eq("A", "1"), eq("B", "2")), eq("C", "3")));
    assert_eq!(
        parse("A eq 1 and B eq 2 and C eq 3"),
        and(and(eq("A", "1"), eq("B", "2")), eq("C", "3")),
        "left-leaning"
    );
    assert_eq!(
        parse("A eq 1 or B eq 2 or C eq 3 or D eq 4 or E eq 5"),
        or(or(or(eq("A", "1"), eq("B", "2")), eq("C", "3")), or(eq("D", "4"), eq("E", "5"))),
        "long chains are balanced"
    );
}

#[test]
fn not_applies_to_the_comparison_after_it() {
    assert_eq!(parse("not A eq 1 and B eq 2"), and(not(eq("A", "1")), eq("B", "2")));
    assert_eq!(parse("not (A eq 1 or B eq 2)"), not(or(eq("A", "1"), eq("B", "2"))));
    assert_eq!(parse("not not A eq 1"), not(not(eq("A", "1"))));
    assert_eq!(parse("not(A eq 1)"), not(eq("A", "1")));
}

#[test]
fn keywords_and_functions_ignore_case() {
    assert_eq!(parse("A Eq 1 AND B EQ 2 Or NOT C eq 3"), or(and(eq("A", "1"), eq("B", "2")), not(eq("C", "3"))));
    assert_eq!(
        parse("CONTAINS(ToLower(Name),'x')"),
        Expr::Match {
            kind: MatchKind::Contains,
            subject: Operand::Function { func: StringFunc::ToLower, arg: Box::new(prop("Name")) },
            pattern: string("x"),
        }
    );
    assert_eq!(parse("X eq TRUE"), cmp(prop("X"), CmpOp::Eq, Operand::Literal(Literal::Bool(true))));
    assert_eq!(parse("X eq Null"), cmp(prop("X"), CmpOp::Eq, Operand::Literal(Literal::Null)));
}

#[test]
fn match_functions_and_nested_string_functions() {
    for (name, kind) in
        [("contains", MatchKind::Contains), ("startswith", MatchKind::StartsWith), ("endswith", MatchKind::EndsWith)]
    {
        assert_eq!(
            parse(&format!("{name}(Name, 'Con')")),
            Expr::Match { kind, subject: prop("Name"), pattern: string("Con") }
        );
    }
    let nested = Operand::Function {
        func: StringFunc::ToUpper,
        arg: Box::new(Operand::Function { func: StringFunc::Trim, arg: Box::new(prop("Name")) }),
    };
    assert_eq!(parse("toupper(trim(Name)) eq 'X'"), cmp(nested, CmpOp::Eq, string("X")));
}

#[test]
fn conditions_compared_with_booleans_fold() {
    let m = Expr::Match { kind: MatchKind::Contains, subject: prop("Name"), pattern: string("x") };
    assert_eq!(parse("contains(Name,'x') eq true"), m);
    assert_eq!(parse("contains(Name,'x') ne false"), m);
    assert_eq!(parse("contains(Name,'x') eq false"), not(m.clone()));
    assert_eq!(parse("(A eq 1) ne true"), not(eq("A", "1")));
    assert!(
        fails("contains(Name,'x') eq 'y'")
            .contains("a condition can only be compared with true or false (at position 23, found 'y')")
    );
    assert_eq!(
        fails("contains(Name,'x') gt true"),
        "$filter: 'gt' at position 20 cannot compare a condition; use eq or ne with true or false"
    );
}

#[test]
fn every_literal_kind() {
    assert_eq!(literal("'O''Neil'"), Literal::String("O'Neil".into()));
    assert_eq!(literal("'a and b eq ''c'''"), Literal::String("a and b eq 'c'".into()));
    assert_eq!(literal("-12.50"), Literal::Number("-12.50".into()));
    assert_eq!(literal("1e3"), Literal::Number("1e3".into()));
    assert_eq!(literal("true"), Literal::Bool(true));
    assert_eq!(literal("false"), Literal::Bool(false));
    assert_eq!(literal("null"), Literal::Null);
    assert_eq!(literal("2024-01-31"), Literal::Date(NaiveDate::from_ymd_opt(2024, 1, 31).unwrap()));
    assert_eq!(
        literal("2024-01-31T13:30:00.5+01:30"),
        Literal::DateTime(Utc.with_ymd_and_hms(2024, 1, 31, 12, 0, 0).unwrap() + chrono::Duration::milliseconds(500))
    );
    assert_eq!(literal("00000000-0000-0000-0000-000000000001"), Literal::Guid(Uuid::from_u128(1)));
    assert_eq!(
        literal("Microsoft.Dynamics.DataEntities.NoYes'Yes'"),
        Literal::Enum { type_name: "Microsoft.Dynamics.DataEntities.NoYes".into(), member: "Yes".into() }
    );
    assert_eq!(parse("Name eq'x'"), cmp(prop("Name"), CmpOp::Eq, string("x")), "no space needed before a quote");
    assert_eq!(parse("_x_value eq null"), cmp(prop("_x_value"), CmpOp::Eq, Operand::Literal(Literal::Null)));
}

#[test]
fn bare_operands_are_not_conditions() {
    assert_eq!(
        fails("IsActive"),
        "$filter: property 'IsActive' at position 1 is not a condition; compare it with a value, e.g. IsActive eq true"
    );
    assert!(fails("A eq 1 and IsActive").contains("property 'IsActive' at position 12 is not a condition"));
    assert!(fails("(IsActive)").contains("property 'IsActive' at position 2 is not a condition"));
    assert!(fails("true").contains("the value true at position 1 is not a condition"));
    assert!(fails("tolower(Name)").contains("tolower(...) at position 1 is not a condition"));
}

#[test]
fn syntax_errors_name_what_was_expected_and_where() {
    assert_eq!(fails("(A eq 1 and B eq 2"), "$filter: expected 'and', 'or' or ')' at position 19 (found end of input)");
    assert_eq!(fails("(A eq 1 B eq 2)"), "$filter: expected 'and', 'or' or ')' at position 9 (found 'B')");
    assert_eq!(fails("A eq 1)"), "$filter: unmatched ')' at position 7");
    assert_eq!(fails("A eq 1 B"), "$filter: expected 'and', 'or' or the end of the filter at position 8 (found 'B')");
    assert_eq!(fails("A eq 1 'x'"), "$filter: expected 'and', 'or' or the end of the filter at position 8 (found 'x')");
    assert_eq!(fails("A eq"), "$filter: expected a property or a value at position 5 (found end of input)");
    assert_eq!(fails("A eq and"), "$filter: expected a property or a value at position 6 (found 'and')");
    assert_eq!(fails("A eq 1 and"), "$filter: expected a property or a value at position 11 (found end of input)");
    assert_eq!(
        fails("A foo 1"),
        "$filter: expected a comparison operator (eq, ne, gt, ge, lt, le) at position 3 (found 'foo')"
    );
    assert_eq!(fails("A = 1"), "$filter: '=' at position 3 is not an OData operator; write eq");
    assert_eq!(fails(""), "$filter: is empty; write a condition such as Name eq 'x'");
    assert_eq!(fails("   "), "$filter: is empty; write a condition such as Name eq 'x'");
    assert_eq!(
        fails("Name eq 'abc"),
        "$filter: unterminated string starting at position 9 (a quote inside a string is written '')"
    );
    assert_eq!(fails("A.B eq 1"), "$filter: 'A.B' at position 1 is not a property name (names cannot contain '.')");
    assert!(fails("Address/City eq 'x'").contains("property paths with '/' are not supported"));
}

#[test]
fn unsupported_operators_and_functions_are_named() {
    assert_eq!(
        fails("Name in ('a','b')"),
        "$filter: operator 'in' at position 6 is not supported (supported: eq, ne, gt, ge, lt, le, and, or, not)"
    );
    assert!(fails("Price ADD 1 eq 2").contains("operator 'add' at position 7 is not supported"));
    assert_eq!(
        fails("length(Name) eq 3"),
        "$filter: unknown function 'length' at position 1 (known: contains, startswith, endswith, tolower, toupper, trim)"
    );
    assert!(fails("A eq substringof('x',Name)").contains("unknown function 'substringof' at position 6"));
    assert_eq!(
        fails("tolower(contains(Name,'x')) eq 'y'"),
        "$filter: contains() at position 9 yields true or false and cannot be used as a value"
    );
    assert_eq!(
        fails("contains(Name)"),
        "$filter: expected ',' (contains() takes two arguments) at position 14 (found ')')"
    );
    assert_eq!(
        fails("contains(Name,'a','b')"),
        "$filter: expected ')' (contains() takes two arguments) at position 18 (found ',')"
    );
    assert_eq!(
        fails("trim(Name,'x') eq 'y'"),
        "$filter: expected ')' (trim() takes one argument) at position 10 (found ',')"
    );
}

#[test]
fn limits_on_length_and_depth() {
    let long = format!("Name eq '{}'", "x".repeat(9000));
    assert_eq!(fails(&long), "$filter: is 9010 bytes long; the maximum is 8192");

    let ok = format!("{}A eq 1{}", "(".repeat(64), ")".repeat(64));
    assert!(parse_filter(&ok).is_ok());
    let deep = format!("{}A eq 1{}", "(".repeat(65), ")".repeat(65));
    assert_eq!(fails(&deep), "$filter: nested deeper than 64 levels at position 65");
    assert!(fails(&"not ".repeat(2000)).contains("nested deeper than 64 levels at position 257"));
    let functions = format!("{}Name{} eq 'x'", "tolower(".repeat(100), ")".repeat(100));
    assert!(fails(&functions).contains("nested deeper than 64 levels"));
    // Thousands of parentheses fail cleanly rather than overflowing the stack.
    assert!(fails(&"(".repeat(8000)).contains("nested deeper than 64 levels"));
    // Long flat chains are fine.
    let chain = vec!["A eq 1"; 800].join(" or ");
    fn depth(e: &Expr) -> usize {
        match e {
            Expr::And(a, b) | Expr::Or(a, b) => 1 + depth(a).max(depth(b)),
            Expr::Not(a) => 1 + depth(a),
            _ => 1,
        }
    }
    assert_eq!(depth(&parse(&chain)), 11, "800 terms, balanced");
}
