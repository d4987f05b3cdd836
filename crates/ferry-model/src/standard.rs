//! The standard catalog built into the binary: real Finance & Operations and Dataverse entities
//! with realistic fields. One TOML file per area under `catalog/`.

use crate::definition::CatalogSource;

const FILES: &[(&str, &str)] = &[
    ("standard/enums.toml", include_str!("../catalog/enums.toml")),
    ("standard/general.toml", include_str!("../catalog/general.toml")),
    ("standard/customers.toml", include_str!("../catalog/customers.toml")),
    ("standard/vendors.toml", include_str!("../catalog/vendors.toml")),
    ("standard/products.toml", include_str!("../catalog/products.toml")),
    ("standard/ledger.toml", include_str!("../catalog/ledger.toml")),
    ("standard/sales.toml", include_str!("../catalog/sales.toml")),
    ("standard/dataverse.toml", include_str!("../catalog/dataverse.toml")),
];

/// The standard catalog's definition sources, in dependency order.
pub fn standard_sources() -> Vec<CatalogSource> {
    FILES.iter().map(|(origin, text)| CatalogSource { origin: origin.to_string(), text: text.to_string() }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{Catalog, Entity, EnumStyle};
    use crate::field_type::FieldType;

    fn catalog() -> Catalog {
        Catalog::build(&standard_sources()).unwrap_or_else(|e| panic!("standard catalog does not build: {e}"))
    }

    fn entity<'a>(catalog: &'a Catalog, collection: &str) -> &'a Entity {
        catalog.by_collection(collection).unwrap_or_else(|| panic!("standard catalog lacks {collection}"))
    }

    fn key_names(entity: &Entity) -> Vec<&str> {
        entity.key_fields().map(|f| f.name.as_str()).collect()
    }

    #[test]
    fn builds_with_every_standard_entity() {
        let c = catalog();
        for (collection, label, company_specific) in [
            ("Currencies", "Currencies", false),
            ("ExchangeRates", "Exchange rates", false),
            ("CustomerGroups", "Customer groups", true),
            ("CustomersV3", "Customers V3", true),
            ("VendorGroups", "Vendor groups", true),
            ("VendorsV2", "Vendors V2", true),
            ("ReleasedProductsV2", "Released products V2", true),
            ("LedgerJournalLines", "General journal", true),
            ("SalesOrderHeadersV2", "Sales order headers V2", true),
            ("SalesOrderLinesV2", "Sales order lines V2", true),
            ("accounts", "Account", false),
            ("contacts", "Contact", false),
            ("leads", "Lead", false),
        ] {
            let e = entity(&c, collection);
            assert_eq!(e.collection, collection, "collection names match exactly");
            assert_eq!(e.label, label, "{collection}");
            assert_eq!(e.company_specific, company_specific, "{collection}");
            assert!(std::ptr::eq(c.by_any_name(label).unwrap().as_ref(), e), "{label} finds {collection}");
        }
        assert_eq!(c.entities().len(), 13);
    }

    #[test]
    fn keys_are_as_in_finance_and_operations() {
        let c = catalog();
        assert_eq!(key_names(entity(&c, "CustomersV3")), ["CustomerAccount"]);
        assert_eq!(key_names(entity(&c, "VendorsV2")), ["VendorAccountNumber"]);
        assert_eq!(key_names(entity(&c, "ReleasedProductsV2")), ["ItemNumber"]);
        assert_eq!(key_names(entity(&c, "ExchangeRates")), ["RateTypeName", "FromCurrency", "ToCurrency", "StartDate"]);
        assert_eq!(key_names(entity(&c, "LedgerJournalLines")), ["JournalBatchNumber", "LineNumber"]);
        assert_eq!(key_names(entity(&c, "SalesOrderLinesV2")), ["SalesOrderNumber", "LineNumber"]);
        for e in c.entities() {
            assert!(e.primary_id.is_none() || !e.company_specific, "{}: Dataverse tables are shared", e.collection);
        }
    }

    #[test]
    fn master_entities_are_wide() {
        let c = catalog();
        for (collection, min) in [("CustomersV3", 25), ("VendorsV2", 20), ("ReleasedProductsV2", 20)] {
            let n = entity(&c, collection).fields.len();
            assert!(n >= min, "{collection} has {n} fields, wants at least {min}");
        }
    }

    #[test]
    fn general_journal_has_its_fields() {
        let c = catalog();
        let e = entity(&c, "LedgerJournalLines");
        for name in [
            "JournalBatchNumber",
            "LineNumber",
            "JournalName",
            "TransDate",
            "AccountType",
            "AccountDisplayValue",
            "OffsetAccountType",
            "OffsetAccountDisplayValue",
            "DebitAmount",
            "CreditAmount",
            "CurrencyCode",
            "ExchangeRate",
            "Text",
            "Voucher",
            "DocumentNumber",
            "DocumentDate",
            "DueDate",
            "PaymentReference",
            "TaxGroup",
            "TaxItemGroup",
            "PostingLayer",
            "IsPosted",
        ] {
            assert!(e.field(name).is_some(), "LedgerJournalLines lacks {name}");
        }
        let field = |name| e.field(name).unwrap().1;
        assert!(matches!(field("LineNumber").ty, FieldType::Decimal { precision: 32, scale: 16 }));
        assert!(matches!(field("TransDate").ty, FieldType::Date));
        assert!(matches!(field("DebitAmount").ty, FieldType::Decimal { precision: 32, scale: 6 }));
        assert!(matches!(&field("AccountType").ty, FieldType::Enum(t) if t.name == "LedgerJournalACType"));
        for name in ["TransDate", "AccountType", "AccountDisplayValue", "CurrencyCode"] {
            assert!(field(name).mandatory, "{name} is mandatory");
        }
    }

    #[test]
    fn dataverse_tables_have_guid_ids_and_option_sets() {
        let c = catalog();
        for (collection, public_name, id) in
            [("accounts", "account", "accountid"), ("contacts", "contact", "contactid"), ("leads", "lead", "leadid")]
        {
            let e = entity(&c, collection);
            assert_eq!(e.public_name, public_name);
            assert_eq!(e.logical_name, public_name);
            assert!(!e.company_specific);
            let primary = e.primary_id.unwrap_or_else(|| panic!("{collection} has no primary_id"));
            assert_eq!(e.fields[primary].name, id);
            assert!(matches!(e.fields[primary].ty, FieldType::Guid));
            assert_eq!(e.key, vec![primary]);
            for (name, enum_name) in
                [("statecode", format!("{public_name}_statecode")), ("statuscode", format!("{public_name}_statuscode"))]
            {
                let (_, f) = e.field(name).unwrap_or_else(|| panic!("{collection} lacks {name}"));
                match &f.ty {
                    FieldType::Enum(t) => {
                        assert_eq!(t.name, enum_name);
                        assert_eq!(t.style, EnumStyle::OptionSet, "{collection}.{name}");
                    }
                    other => panic!("{collection}.{name} is {other}, not an option set"),
                }
                assert!(f.default.is_some(), "{collection}.{name} has a default");
            }
        }
        let lead = c.enum_by_name("lead_statuscode").unwrap();
        assert_eq!(lead.by_code(5).unwrap().name, "CannotContact");
        assert_eq!(c.enum_by_name("account_statecode").unwrap().by_code(1).unwrap().name, "Inactive");
        assert_eq!(c.enum_by_name("CustVendorBlocked").unwrap().style, EnumStyle::Symbol);
    }

    #[test]
    fn lookups_resolve() {
        let c = catalog();
        for (collection, field, target, target_field) in [
            ("CustomersV3", "CustomerGroupId", "CustomerGroups", "CustomerGroupId"),
            ("CustomersV3", "SalesCurrencyCode", "Currencies", "CurrencyCode"),
            ("VendorsV2", "VendorGroupId", "VendorGroups", "VendorGroupId"),
            ("VendorsV2", "CurrencyCode", "Currencies", "CurrencyCode"),
            ("ExchangeRates", "FromCurrency", "Currencies", "CurrencyCode"),
            ("ExchangeRates", "ToCurrency", "Currencies", "CurrencyCode"),
            ("LedgerJournalLines", "CurrencyCode", "Currencies", "CurrencyCode"),
            ("SalesOrderHeadersV2", "OrderingCustomerAccountNumber", "CustomersV3", "CustomerAccount"),
            ("SalesOrderLinesV2", "SalesOrderNumber", "SalesOrderHeadersV2", "SalesOrderNumber"),
            ("SalesOrderLinesV2", "ItemNumber", "ReleasedProductsV2", "ItemNumber"),
            ("contacts", "parentcustomerid", "accounts", "accountid"),
            ("leads", "parentaccountid", "accounts", "accountid"),
            ("leads", "parentcontactid", "contacts", "contactid"),
        ] {
            let (_, f) = entity(&c, collection).field(field).unwrap_or_else(|| panic!("{collection} lacks {field}"));
            let lookup = f.lookup.as_ref().unwrap_or_else(|| panic!("{collection}.{field} has no lookup"));
            assert_eq!((lookup.entity.as_str(), lookup.field.as_str()), (target, target_field), "{collection}.{field}");
        }
        // Every lookup in the catalog lands on an entity's single key.
        for e in c.entities() {
            for f in &e.fields {
                if let Some(l) = &f.lookup {
                    let target = entity(&c, &l.entity);
                    assert_eq!(key_names(target), [l.field.as_str()], "{}.{}", e.collection, f.name);
                }
            }
        }
        assert!(entity(&c, "CustomersV3").field("CustomerGroupId").unwrap().1.mandatory);
        assert!(entity(&c, "SalesOrderLinesV2").field("ItemNumber").unwrap().1.mandatory);
    }

    #[test]
    fn company_field_is_implicit() {
        let c = catalog();
        for e in c.entities() {
            assert!(e.field(crate::COMPANY_FIELD).is_none(), "{} declares dataAreaId", e.collection);
        }
    }
}
