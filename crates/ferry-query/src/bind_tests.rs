//! Tests of binding against a small catalog: name resolution, literal coercion per field type,
//! normalisation, folding, and every binding error.

use super::*;
use crate::{parse_filter, parse_orderby, parse_select};
use chrono::{NaiveDate, TimeZone, Utc};
use ferry_model::{Catalog, CatalogSource, Decimal};
use std::sync::Arc;
use uuid::Uuid;

const DEFINITION: &str = r#"
    [[enums]]
    name = "NoYes"
    values = [{ name = "No", code = 0 }, { name = "Yes", code = 1 }]

    [[entities]]
    label = "Customer groups"
    public_name = "CustomerGroup"
    collection = "CustomerGroups"
    logical_name = "customergroup"
    company_specific = true
    key = ["CustomerGroupId"]
    fields = [
      { name = "CustomerGroupId", type = "string(10)" },
      { name = "Name", type = "string(20)" },
      { name = "CreditLimit", type = "int64" },
      { name = "Amount", type = "decimal(10,2)" },
      { name = "Rate", type = "real" },
      { name = "IsActive", type = "bool" },
      { name = "Blocked", type = "enum(NoYes)" },
      { name = "Founded", type = "date" },
      { name = "Modified", type = "datetime" },
      { name = "RowGuid", type = "guid" },
    ]

    [[entities]]
    label = "Currencies"
    public_name = "Currency"
    collection = "Currencies"
    logical_name = "currency"
    key = ["CurrencyCode"]
    fields = [{ name = "CurrencyCode", type = "string(3)" }]
"#;

fn entity(collection: &str) -> Arc<Entity> {
    let catalog = Catalog::build(&[CatalogSource { origin: "test.toml".into(), text: DEFINITION.into() }]).unwrap();
    catalog.by_collection(collection).unwrap().clone()
}

fn bind(filter: &str) -> BoundExpr {
    bind_in("CustomerGroups", filter).unwrap_or_else(|e| panic!("{filter}: {e}"))
}

fn bind_in(collection: &str, filter: &str) -> Result<BoundExpr, QueryError> {
    bind_filter(&parse_filter(filter).unwrap(), &entity(collection))
}

fn fails(filter: &str) -> String {
    bind_in("CustomerGroups", filter).expect_err(filter).message
}

/// Column indexes of the test entity.
const GROUP_ID: Column = Column::Field(0);
const NAME: Column = Column::Field(1);
const CREDIT_LIMIT: Column = Column::Field(2);

fn col(c: Column) -> BoundOperand {
    BoundOperand::Column(c)
}

fn compare(c: Column, op: CmpOp, right: Value) -> BoundExpr {
    BoundExpr::Compare { op, left: col(c), right }
}

/// The value `X eq <literal>` binds to for property `property`.
fn value(property: &str, literal: &str) -> Value {
    match bind(&format!("{property} eq {literal}")) {
        BoundExpr::Compare { right, .. } => right,
        other => panic!("{other:?}"),
    }
}

#[test]
fn names_resolve_without_regard_to_case() {
    assert_eq!(bind("name eq 'x'"), compare(NAME, CmpOp::Eq, Value::String("x".into())));
    assert_eq!(bind("DATAAREAID eq 'USMF'"), compare(Column::Company, CmpOp::Eq, Value::String("usmf".into())));
    assert_eq!(bind("dataAreaId ne ' Usmf '"), compare(Column::Company, CmpOp::Ne, Value::String("usmf".into())));
}

#[test]
fn literals_become_values_of_the_field_type() {
    assert_eq!(value("CreditLimit", "5"), Value::Int(5));
    assert_eq!(value("CreditLimit", "'5'"), Value::Int(5));
    assert_eq!(value("Amount", "-12.5"), Value::Decimal(Decimal::parse("-12.50", 10, 2).unwrap()));
    assert_eq!(value("Rate", "1e3"), Value::Real(1000.0));
    assert_eq!(value("IsActive", "true"), Value::Bool(true));
    assert_eq!(value("Blocked", "Microsoft.Dynamics.DataEntities.NoYes'Yes'"), Value::Int(1));
    assert_eq!(value("Blocked", "'No'"), Value::Int(0));
    assert_eq!(value("Blocked", "1"), Value::Int(1));
    let day = NaiveDate::from_ymd_opt(2024, 1, 31).unwrap();
    assert_eq!(value("Founded", "2024-01-31"), Value::Date(day));
    assert_eq!(value("Founded", "2024-01-31T12:00:00Z"), Value::Date(day));
    let noon = Utc.with_ymd_and_hms(2024, 1, 31, 12, 0, 0).unwrap();
    assert_eq!(value("Modified", "2024-01-31T14:00:00+02:00"), Value::DateTime(noon));
    assert_eq!(value("Modified", "2024-01-31"), Value::DateTime(day.and_hms_opt(0, 0, 0).unwrap().and_utc()));
    assert_eq!(value("RowGuid", "00000000-0000-0000-0000-000000000001"), Value::Guid(Uuid::from_u128(1)));
    assert_eq!(value("Name", "null"), Value::Null);
    assert_eq!(value("CreditLimit", "null"), Value::Null);
}

#[test]
fn string_values_may_exceed_the_column_length() {
    let long = "x".repeat(50);
    assert_eq!(value("Name", &format!("'{long}'")), Value::String(long));
    assert_eq!(value("CustomerGroupId", "'O''Neil'"), Value::String("O'Neil".into()));
}

#[test]
fn the_column_goes_left() {
    assert_eq!(bind("5 lt CreditLimit"), compare(CREDIT_LIMIT, CmpOp::Gt, Value::Int(5)));
    assert_eq!(bind("5 ge CreditLimit"), compare(CREDIT_LIMIT, CmpOp::Le, Value::Int(5)));
    assert_eq!(bind("'x' eq Name"), compare(NAME, CmpOp::Eq, Value::String("x".into())));
    assert_eq!(bind("null ne Name"), compare(NAME, CmpOp::Ne, Value::Null));
}

#[test]
fn functions_wrap_the_column_and_keep_the_literal_a_string() {
    let lower = |c| BoundOperand::Function { func: StringFunc::ToLower, arg: Box::new(col(c)) };
    assert_eq!(
        bind("tolower(Name) eq 'ABC'"),
        BoundExpr::Compare { op: CmpOp::Eq, left: lower(NAME), right: Value::String("ABC".into()) }
    );
    assert_eq!(
        bind("'x' lt trim(toupper(dataAreaId))"),
        BoundExpr::Compare {
            op: CmpOp::Gt,
            left: BoundOperand::Function {
                func: StringFunc::Trim,
                arg: Box::new(BoundOperand::Function {
                    func: StringFunc::ToUpper,
                    arg: Box::new(col(Column::Company))
                }),
            },
            right: Value::String("x".into()),
        }
    );
    assert_eq!(
        bind("contains(tolower(Name),'Con')"),
        BoundExpr::Match { kind: MatchKind::Contains, subject: lower(NAME), pattern: "Con".into() }
    );
    assert_eq!(
        bind("startswith(dataAreaId,'US')"),
        BoundExpr::Match { kind: MatchKind::StartsWith, subject: col(Column::Company), pattern: "us".into() },
        "company ids are stored in lower case"
    );
}

#[test]
fn logic_and_constant_folding() {
    let id = compare(GROUP_ID, CmpOp::Eq, Value::String("10".into()));
    let name = compare(NAME, CmpOp::Ne, Value::Null);
    assert_eq!(
        bind("CustomerGroupId eq '10' and not Name ne null or Name ne null"),
        BoundExpr::Or(
            Box::new(BoundExpr::And(Box::new(id.clone()), Box::new(BoundExpr::Not(Box::new(name.clone()))))),
            Box::new(name.clone())
        )
    );
    assert_eq!(bind("1 eq 1"), BoundExpr::Const(true));
    assert_eq!(bind("'a' gt 'b'"), BoundExpr::Const(false));
    assert_eq!(bind("null eq null"), BoundExpr::Const(true));
    assert_eq!(bind("tolower('ABC') eq 'abc'"), BoundExpr::Const(true));
    assert_eq!(bind("contains('Contoso','oso')"), BoundExpr::Const(true));
    assert_eq!(bind("1 eq 1 and CustomerGroupId eq '10'"), id);
    assert_eq!(bind("1 eq 2 and CustomerGroupId eq '10'"), BoundExpr::Const(false));
    assert_eq!(bind("CustomerGroupId eq '10' or 1 eq 1"), BoundExpr::Const(true));
    assert_eq!(bind("CustomerGroupId eq '10' or not 1 eq 1"), id);
}

#[test]
fn binding_errors_name_the_property() {
    assert_eq!(fails("CreditLimit eq 'abc'"), "$filter: 'abc' is not a whole number (property CreditLimit)");
    assert!(
        fails("Founded eq 2024-01-31T12:00:00Z and Blocked eq 'Maybe'")
            .contains("'Maybe' is not a value of enum NoYes (allowed: No, Yes) (property Blocked)")
    );
    assert!(fails("RowGuid eq 5").contains("(property RowGuid)"));
    assert_eq!(fails("Nmae eq 'x'"), "$filter: unknown property 'Nmae' in CustomerGroups (did you mean 'Name'?)");
    assert_eq!(fails("Zzz eq 'x'"), "$filter: unknown property 'Zzz' in CustomerGroups");
    assert_eq!(
        bind_in("Currencies", "dataAreaId eq 'usmf'").unwrap_err().message,
        "$filter: Currencies is shared by all companies and has no dataAreaId property"
    );
    assert_eq!(
        fails("Blocked eq Microsoft.Dynamics.DataEntities.Color'Red'"),
        "$filter: Microsoft.Dynamics.DataEntities.Color'Red' is a value of enum Color, but property Blocked is enum NoYes"
    );
}

#[test]
fn unsupported_shapes_are_rejected() {
    assert_eq!(
        fails("Name eq CustomerGroupId"),
        "$filter: comparing two properties (Name eq CustomerGroupId) is not supported; compare a property with a value"
    );
    assert_eq!(
        fails("CreditLimit gt null"),
        "$filter: 'gt' cannot compare with null (property CreditLimit); only eq and ne can"
    );
    assert_eq!(
        fails("null le CreditLimit"),
        "$filter: 'ge' cannot compare with null (property CreditLimit); only eq and ne can"
    );
    assert_eq!(fails("null lt 5"), "$filter: 'lt' cannot compare with null; only eq and ne can");
    assert_eq!(
        fails("tolower(CreditLimit) eq 'x'"),
        "$filter: tolower() works on text, but property CreditLimit is int64"
    );
    assert_eq!(
        fails("contains(Amount,'1')"),
        "$filter: contains() works on text, but property Amount is decimal(10,2)"
    );
    assert_eq!(
        fails("contains(Name,Name)"),
        "$filter: the pattern of contains() must be a string literal, not property Name"
    );
    assert_eq!(fails("endswith(Name,5)"), "$filter: the pattern of endswith() must be a string literal, not 5");
    assert_eq!(fails("startswith(5,'5')"), "$filter: startswith() works on text, not on 5");
    assert_eq!(fails("toupper(5) eq '5'"), "$filter: toupper() works on text, not on 5");
    assert_eq!(fails("'a' eq 1"), "$filter: cannot compare 'a' (text) with 1 (number)");
}

#[test]
fn orderby_and_select_bind_to_columns() {
    let e = entity("CustomerGroups");
    let items = parse_orderby("Name desc, dataareaid, creditlimit asc").unwrap();
    assert_eq!(bind_orderby(&items, &e).unwrap(), [(NAME, true), (Column::Company, false), (CREDIT_LIMIT, false)]);
    let err = bind_orderby(&parse_orderby("Nam").unwrap(), &e).unwrap_err();
    assert_eq!(err.message, "$orderby: unknown property 'Nam' in CustomerGroups (did you mean 'Name'?)");

    let select = parse_select("name,CreditLimit,Name,dataAreaId").unwrap();
    assert_eq!(bind_select(&select, &e).unwrap(), [NAME, CREDIT_LIMIT, Column::Company], "duplicates dropped");
    assert!(bind_select(&parse_select("*").unwrap(), &e).unwrap().is_empty());
    let err = bind_select(&["dataAreaId".to_string()], &entity("Currencies")).unwrap_err();
    assert_eq!(err.message, "$select: Currencies is shared by all companies and has no dataAreaId property");
    let err = bind_select(&["CurrencyKode".to_string()], &entity("Currencies")).unwrap_err();
    assert_eq!(err.message, "$select: unknown property 'CurrencyKode' in Currencies (did you mean 'CurrencyCode'?)");
}

#[test]
fn edit_distance_counts_edits() {
    assert_eq!(edit_distance("name", "nmae"), 2);
    assert_eq!(edit_distance("kitten", "sitting"), 3);
    assert_eq!(edit_distance("", "abc"), 3);
}

#[test]
fn the_longest_filters_bind_without_exhausting_the_stack() {
    // The most terms that fit the length limit (debug builds, 2 MiB test-thread stacks).
    let chain = vec!["Rate eq 1"; 630].join(" or ");
    assert!(chain.len() <= crate::MAX_QUERY_LENGTH && chain.len() + 13 > crate::MAX_QUERY_LENGTH);
    let bound = bind(&chain);
    assert!(matches!(bound, BoundExpr::Or(..)));
    let expr = parse_filter(&chain).unwrap();
    let row = |_: &str| Some(crate::PlainValue::Number(2.0));
    assert_eq!(crate::evaluate(&expr, &row), Ok(false));
}

#[test]
fn the_deepest_filters_bind_and_evaluate() {
    // 32 parentheses, 30 nots and 2 functions: exactly the nesting limit.
    let filter = format!("{}{}tolower(trim(Name)) eq 'x'{}", "(".repeat(32), "not ".repeat(30), ")".repeat(32));
    assert!(matches!(bind(&filter), BoundExpr::Compare { .. }), "double negations cancel");
    assert!(matches!(bind("not not not Name eq 'x'"), BoundExpr::Not(_)));
    let expr = parse_filter(&filter).unwrap();
    assert_eq!(crate::evaluate(&expr, &|_| Some(crate::PlainValue::Text("X".into()))), Ok(true));
}

#[test]
fn timestamps_fold_in_time_order_and_show_plainly() {
    assert_eq!(bind("2024-01-31T12:00:00.5Z gt 2024-01-31T12:00:00Z"), BoundExpr::Const(true));
    assert_eq!(
        fails("CreditLimit eq 2024-01-31T12:00:00Z"),
        "$filter: '2024-01-31T12:00:00Z' is not a whole number (property CreditLimit)"
    );
}
