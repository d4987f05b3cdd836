//! Row operations: CRUD, types, key uniqueness, lookups, queries, schema evolution, apps.

use crate::support::{ALL_TYPES, Db, catalog_with, entity, row, s};
use chrono::{NaiveDate, TimeZone, Utc};
use ferry_domain::{CompanyScope, RowKey, StoredRow};
use ferry_model::{Decimal, FieldType, Input, Value};
use ferry_query::{bind_filter, bind_orderby, parse_filter, parse_orderby};
use ferry_store::{App, AppOrigin, RowQuery, SigningKey, StoreError};

fn key(company: &str, values: Vec<Value>) -> RowKey {
    RowKey { company: Some(company.into()), values }
}

pub async fn crud_round_trip(Db { store, .. }: Db) {
    let catalog = catalog_with(ALL_TYPES);
    let groups = entity(&catalog, "CustomerGroups");
    let inserted = store
        .insert(
            &groups,
            vec![row(&groups, Some("usmf"), &[("CustomerGroupId", s("10")), ("Description", s("Wholesale"))])],
        )
        .await
        .unwrap();
    assert_eq!(inserted.len(), 1);
    let k = key("usmf", vec![s("10")]);
    let got = store.get(&groups, &k).await.unwrap().expect("row exists");
    assert_eq!(got, inserted[0]);
    assert_eq!(got.values[groups.field("Description").unwrap().0], s("Wholesale"));

    let (desc, _) = groups.field("Description").unwrap();
    let updated = store.update(&groups, &k, vec![(desc, s("Retail"))]).await.unwrap().expect("updated");
    assert_eq!(updated.values[desc], s("Retail"));
    assert_eq!(updated.id, got.id, "the id survives updates");
    assert!(updated.version > got.version);
    assert_eq!(updated.created_at, got.created_at);

    assert!(store.update(&groups, &key("usmf", vec![s("nope")]), vec![(desc, s("x"))]).await.unwrap().is_none());
    assert!(store.delete(&groups, &k).await.unwrap());
    assert!(!store.delete(&groups, &k).await.unwrap(), "second delete finds nothing");
    assert!(store.get(&groups, &k).await.unwrap().is_none());
}

pub async fn every_type_round_trips(Db { store, .. }: Db) {
    let catalog = catalog_with(ALL_TYPES);
    let all = entity(&catalog, "AllTypes");
    let decimal = |t: &str| FieldType::Decimal { precision: 32, scale: 6 }.coerce(Input::Number(t)).unwrap();
    let stamp = Utc.with_ymd_and_hms(2024, 1, 31, 23, 59, 58).unwrap() + chrono::Duration::microseconds(123_456);
    let full = row(
        &all,
        Some("usmf"),
        &[
            ("Code", s("A")),
            ("Memo", s(&"ü€😀".repeat(5000))),
            ("Small", Value::Int(-2_147_483_648)),
            ("Big", Value::Int(9_007_199_254_740_993)),
            ("Amount", decimal("12345678901234567890123456.123456")),
            ("Ratio", Value::Real(0.1)),
            ("Flag", Value::Bool(true)),
            ("Day", Value::Date(NaiveDate::from_ymd_opt(1999, 12, 31).unwrap())),
            ("Stamp", Value::DateTime(stamp)),
            ("Ref", Value::Guid(uuid::Uuid::parse_str("0643859c-1111-2222-3333-444455556666").unwrap())),
            ("Color", Value::Int(1)),
        ],
    );
    let empty = row(&all, Some("usmf"), &[("Code", s("B"))]);
    // Nulls first, then values, through the same statement text, often enough to reuse pooled
    // connections (their statement caches must cope).
    for n in 0..12 {
        let code = |base: &str| Value::String(format!("{base}{n}"));
        let (mut e, mut f) = (empty.clone(), full.clone());
        (e.values[0], f.values[0]) = (code("E"), code("F"));
        store.insert(&all, vec![e]).await.unwrap();
        store.insert(&all, vec![f]).await.unwrap();
    }
    store.insert(&all, vec![empty.clone()]).await.unwrap();
    store.insert(&all, vec![full.clone()]).await.unwrap();
    let got = store.get(&all, &key("usmf", vec![s("A")])).await.unwrap().unwrap();
    assert_eq!(got.values, full.values);
    assert_eq!(got.values[4], Value::Decimal(Decimal::from_canonical("12345678901234567890123456.123456".into())));
    let got = store.get(&all, &key("usmf", vec![s("B")])).await.unwrap().unwrap();
    assert_eq!(got.values, empty.values, "nulls stay nulls");
}

pub async fn keys_are_unique_per_company(Db { store, .. }: Db) {
    let catalog = catalog_with(ALL_TYPES);
    let groups = entity(&catalog, "CustomerGroups");
    let g = |company| row(&groups, Some(company), &[("CustomerGroupId", s("10"))]);
    store.insert(&groups, vec![g("usmf")]).await.unwrap();
    store.insert(&groups, vec![g("demf")]).await.expect("same key, other company");
    let err = store.insert(&groups, vec![g("usmf")]).await.unwrap_err();
    match err {
        StoreError::Conflict { key } => assert_eq!(key, "dataAreaId='usmf',CustomerGroupId='10'"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    // A failed batch writes nothing.
    let err = store.insert(&groups, vec![row(&groups, Some("usmf"), &[("CustomerGroupId", s("20"))]), g("usmf")]).await;
    assert!(matches!(err, Err(StoreError::Conflict { .. })));
    assert!(store.get(&groups, &key("usmf", vec![s("20")])).await.unwrap().is_none());
}

pub async fn lookups_are_checked_on_write(Db { store, .. }: Db) {
    let catalog = catalog_with(ALL_TYPES);
    let groups = entity(&catalog, "CustomerGroups");
    let customers = entity(&catalog, "CustomersV3");
    let currencies = entity(&catalog, "Currencies");
    store
        .insert(&currencies, vec![row(&currencies, None, &[("CurrencyCode", s("USD")), ("Name", s("US dollar"))])])
        .await
        .unwrap();
    store.insert(&groups, vec![row(&groups, Some("usmf"), &[("CustomerGroupId", s("10"))])]).await.unwrap();
    let customer = |company, group| {
        row(
            &customers,
            Some(company),
            &[("CustomerAccount", s("C-1")), ("CustomerGroupId", s(group)), ("SalesCurrencyCode", s("USD"))],
        )
    };
    let err = store.insert(&customers, vec![customer("usmf", "99")]).await.unwrap_err();
    match err {
        StoreError::LookupMissing { field, value, target } => {
            assert_eq!(field, "CustomerGroupId");
            assert_eq!(value, "'99'");
            assert_eq!(target, "CustomerGroups.CustomerGroupId (company usmf)");
        }
        other => panic!("expected a lookup error, got {other:?}"),
    }
    // The group exists in usmf only; a shared currency is found from any company.
    assert!(matches!(
        store.insert(&customers, vec![customer("demf", "10")]).await,
        Err(StoreError::LookupMissing { .. })
    ));
    store.insert(&customers, vec![customer("usmf", "10")]).await.unwrap();
    let (group_field, _) = customers.field("CustomerGroupId").unwrap();
    let err = store.update(&customers, &key("usmf", vec![s("C-1")]), vec![(group_field, s("77"))]).await.unwrap_err();
    assert!(matches!(err, StoreError::LookupMissing { .. }));
}

pub async fn filter_order_and_keyset_paging(Db { store, .. }: Db) {
    let catalog = catalog_with(ALL_TYPES);
    let all = entity(&catalog, "AllTypes");
    let decimal = |t: &str| FieldType::Decimal { precision: 32, scale: 6 }.coerce(Input::Number(t)).unwrap();
    let rows: Vec<_> = (0..50)
        .map(|i| {
            row(
                &all,
                Some(if i % 2 == 0 { "usmf" } else { "demf" }),
                &[
                    ("Code", s(&format!("K{i:03}"))),
                    ("Small", Value::Int(i)),
                    ("Amount", decimal(&format!("{}.5", i * 10))),
                    ("Memo", if i % 5 == 0 { Value::Null } else { s(&format!("memo {i}")) }),
                ],
            )
        })
        .collect();
    store.insert(&all, rows).await.unwrap();
    let q = |filter: &str, order: &str, scope: CompanyScope| RowQuery {
        scope,
        filter: (!filter.is_empty()).then(|| bind_filter(&parse_filter(filter).unwrap(), &all).unwrap()),
        order: if order.is_empty() { vec![] } else { bind_orderby(&parse_orderby(order).unwrap(), &all).unwrap() },
        after: None,
        versions: None,
        offset: 0,
        limit: 1000,
    };
    let codes =
        |rows: Vec<StoredRow>| -> Vec<String> { rows.into_iter().map(|r| r.values[0].to_text().unwrap()).collect() };
    let usmf = CompanyScope::One("usmf".into());
    assert_eq!(store.count(&all, &usmf, None).await.unwrap(), 25);
    assert_eq!(store.count(&all, &CompanyScope::All, None).await.unwrap(), 50);
    // Decimal ranges compare as numbers (100.5 > 95.5 even where text would not).
    let got = codes(store.query(&all, &q("Amount gt 95.5 and Small lt 12", "", CompanyScope::All)).await.unwrap());
    assert_eq!(got, vec!["K011", "K010"], "natural-key order: demf before usmf");
    // OData null semantics: `not (Memo eq 'memo 1')` includes rows whose Memo is null.
    let got = store
        .count(&all, &usmf, Some(&bind_filter(&parse_filter("not (Memo eq 'memo 2')").unwrap(), &all).unwrap()))
        .await
        .unwrap();
    assert_eq!(got, 24);
    let got = codes(
        store
            .query(&all, &q("startswith(Memo,'memo 4') or endswith(Code,'49')", "Small desc", CompanyScope::All))
            .await
            .unwrap(),
    );
    assert_eq!(got, vec!["K049", "K048", "K047", "K046", "K044", "K043", "K042", "K041", "K004"]);
    let got = codes(
        store.query(&all, &q("contains(Memo,'o 3') and dataAreaId eq 'USMF'", "", CompanyScope::All)).await.unwrap(),
    );
    assert_eq!(got, vec!["K032", "K034", "K036", "K038"]);
    let got = codes(store.query(&all, &q("Memo eq null", "Code desc", usmf.clone())).await.unwrap());
    assert_eq!(got, vec!["K040", "K030", "K020", "K010", "K000"]);

    // Keyset paging visits every row once, in natural-key order.
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .query(&all, &RowQuery { after: after.clone(), limit: 7, ..q("", "", CompanyScope::All) })
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        after = Some(page.last().unwrap().key(&all));
        seen.extend(page.into_iter().map(|r| format!("{}/{}", r.company.unwrap(), r.values[0].to_text().unwrap())));
    }
    let mut expected = seen.clone();
    expected.sort();
    expected.dedup();
    assert_eq!(seen.len(), 50);
    assert_eq!(seen, expected);
}

pub async fn schema_evolves_by_adding_columns(Db { store, .. }: Db) {
    let catalog = catalog_with(ALL_TYPES);
    let all = entity(&catalog, "AllTypes");
    store.insert(&all, vec![row(&all, Some("usmf"), &[("Code", s("A")), ("Small", Value::Int(7))])]).await.unwrap();
    let evolved = ALL_TYPES.replace(
        "  { name = \"Color\", type = \"enum(TestColor)\" },",
        "  { name = \"Color\", type = \"enum(TestColor)\" },\n  { name = \"Extra\", type = \"string(30)\" },",
    );
    let catalog = catalog_with(&evolved);
    let report = store.prepare_entities(catalog.clone()).await.unwrap();
    assert_eq!(report.columns_added, vec!["e_alltypes.Extra".to_string()]);
    assert!(report.tables_created.is_empty());
    let all = entity(&catalog, "AllTypes");
    let got = store.get(&all, &key("usmf", vec![s("A")])).await.unwrap().unwrap();
    assert_eq!(got.values[all.field("Small").unwrap().0], Value::Int(7), "existing data kept");
    assert_eq!(got.values[all.field("Extra").unwrap().0], Value::Null);
    let again = store.prepare_entities(catalog).await.unwrap();
    assert_eq!(again, ferry_store::SchemaReport::default(), "preparing twice changes nothing");
}

pub async fn apps_and_signing_keys(Db { store, .. }: Db) {
    let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let mut app = App {
        client_id: "erp".into(),
        name: "ERP".into(),
        secret_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        roles: vec!["writer".into()],
        default_company: Some("usmf".into()),
        enabled: true,
        origin: AppOrigin::Config,
        created_at: now,
        updated_at: now,
    };
    store.upsert_app(&app).await.unwrap();
    app.roles.push("admin".into());
    app.updated_at = now + chrono::Duration::hours(1);
    store.upsert_app(&App { created_at: now + chrono::Duration::days(9), ..app.clone() }).await.unwrap();
    assert_eq!(store.get_app("erp").await.unwrap().unwrap(), app, "created_at is kept on update");
    assert_eq!(store.list_apps().await.unwrap().len(), 1);
    assert!(store.delete_app("erp").await.unwrap());
    assert!(store.get_app("erp").await.unwrap().is_none());

    let k = |kid: &str, at| SigningKey {
        kid: kid.into(),
        algorithm: "ES256".into(),
        private_key_encrypted: "enc".into(),
        public_jwk: "{}".into(),
        created_at: at,
        retired_at: None,
    };
    store.insert_signing_key(&k("a", now)).await.unwrap();
    store.insert_signing_key(&k("b", now + chrono::Duration::seconds(1))).await.unwrap();
    assert_eq!(store.retire_signing_keys("b", now).await.unwrap(), 1);
    let keys = store.list_signing_keys().await.unwrap();
    assert_eq!(keys.iter().map(|k| k.kid.as_str()).collect::<Vec<_>>(), vec!["b", "a"]);
    assert_eq!(keys[1].retired_at, Some(now));
    assert_eq!(store.purge_signing_keys(now + chrono::Duration::seconds(1)).await.unwrap(), 1);
    assert_eq!(store.list_signing_keys().await.unwrap().len(), 1);
}
