//! The files the import steps send, generated with a fixed seed: currencies and customer
//! groups (the lookup targets), Customers V3 CSVs in D365 staging spelling (CRLF line ends,
//! names and streets with commas, quotes and non-ASCII), the custom entities of the messages
//! step and of the aon-writers step, and the one-row messages. Pure apart from writing files.

use anyhow::{Context, Result};
use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;

use crate::load::splitmix64;

const CURRENCIES: &[(&str, &str, &str)] = &[
    ("USD", "US Dollar", "$"),
    ("EUR", "Euro", "€"),
    ("GBP", "Pound sterling", "£"),
    ("JPY", "Japanese yen", "¥"),
    ("CHF", "Swiss franc", "CHF"),
    ("SEK", "Swedish krona", "kr"),
    ("DKK", "Danish krone", "kr."),
    ("NOK", "Norwegian krone", "kr"),
    ("PLN", "Polish złoty", "zł"),
    ("CAD", "Canadian dollar", "$"),
];
const GROUPS: &[(&str, &str)] = &[
    ("10", "Wholesale customers"),
    ("20", "Major customers"),
    ("30", "Retail customers"),
    ("40", "Intercompany, domestic"),
    ("50", "Intercompany, foreign"),
    ("60", "Employees"),
    ("70", "Public sector"),
    ("80", "Distributors – EMEA"),
    ("90", "Distributors – APAC"),
    ("100", "One-time customers"),
    ("110", "Online shop"),
    ("120", "Key accounts, Nordics"),
];
const PAYMENT_TERMS: &[&str] = &["Net10", "Net30", "Net60", "COD"];
const FIRST: &[&str] = &[
    "Contoso",
    "Fabrikam",
    "Adventure Works",
    "Northwind",
    "Tailspin",
    "Wingtip",
    "Litware",
    "Proseware",
    "Müller",
    "Schröder",
    "Łukasiewicz",
    "Østergaard",
    "Ångström",
    "Café Zürich",
    "Société Générale de Vins",
    "Núñez",
    "Çelik",
    "Dvořák",
    "Søren Kierkegaard",
    "東京貿易",
    "Москва Логистик",
    "O'Brien",
    "São Paulo Têxtil",
    "Ünal",
    "Jönköping Trä",
    "Kraków Stal",
    "Fjällräven",
    "Hernández",
    "Smith, Jones",
    "Baker \"Bakes\"",
];
const SECOND: &[&str] = &[
    "Trading",
    "Supplies",
    "Logistics",
    "Manufacturing",
    "Holdings",
    "Consulting",
    "Foods",
    "Retail",
    "Partners",
    "& Söhne",
    "Handels",
    "Industries",
    "Services",
    "Distribution",
    "Électronique",
];
const SUFFIX: &[&str] = &[
    " Inc.",
    " Ltd",
    ", Inc.",
    " GmbH",
    ", S.A.",
    " AB",
    " A/S",
    " Sp. z o.o.",
    " K.K.",
    " LLC",
    ", GmbH & Co. KG",
    " SARL",
    " OOO",
    "",
    "",
];
const CITIES: &[(&str, &str, &str, &str)] = &[
    ("Seattle", "98052", "USA", "en-us"),
    ("New York", "10001", "USA", "en-us"),
    ("Zürich", "8001", "CHE", "de-ch"),
    ("München", "80331", "DEU", "de"),
    ("Besançon", "25000", "FRA", "fr"),
    ("Kraków", "30-001", "POL", "pl"),
    ("Malmö", "211 19", "SWE", "sv"),
    ("København", "1050", "DNK", "da"),
    ("Reykjavík", "101", "ISL", "is"),
    ("São Paulo", "01000-000", "BRA", "pt-br"),
    ("東京", "100-0001", "JPN", "ja"),
    ("Москва", "101000", "RUS", "ru"),
    ("Montréal", "H2X 1Y4", "CAN", "fr-ca"),
    ("London", "EC1A 1BB", "GBR", "en-gb"),
];
const STREETS: &[&str] = &[
    "Main Street",
    "Hauptstraße",
    "Rue de l'Église",
    "Bahnhofstrasse",
    "Storgatan",
    "ul. Floriańska",
    "Avenida Paulista",
    "Nørregade",
    "Broadway, Suite 200",
    "Elm Street, Building B",
    "Laugavegur",
];
const DOMAINS: &[&str] = &["contoso.com", "fabrikam.de", "example.co.jp", "mail.ru"];
pub const CUSTOMER_COLUMNS: &[&str] = &[
    "CUSTOMERACCOUNT",
    "ORGANIZATIONNAME",
    "NAMEALIAS",
    "CUSTOMERGROUPID",
    "SALESCURRENCYCODE",
    "CREDITLIMIT",
    "LANGUAGEID",
    "ADDRESSSTREET",
    "ADDRESSCITY",
    "ADDRESSZIPCODE",
    "ADDRESSCOUNTRYREGIONID",
    "PRIMARYCONTACTEMAIL",
    "PRIMARYCONTACTPHONE",
];
/// Rows generated between two checks of the file size.
const CHUNK_ROWS: u64 = 10_000;
/// The custom entity the aon-writers step writes to.
pub const WRITER_COLLECTION: &str = "BenchWrites";

/// A small deterministic generator (splitmix64), so every run sends the same files.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(1);
        splitmix64(self.0) % n.max(1)
    }

    fn range(&mut self, from: u64, to: u64) -> u64 {
        from + self.below(to - from)
    }

    fn choice<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// One CSV field: quoted when it holds a comma, a quote or a line break, quotes doubled.
fn field(out: &mut String, text: &str) {
    if text.contains([',', '"', '\r', '\n']) {
        out.push('"');
        out.push_str(&text.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(text);
    }
}

/// One CSV record with a CRLF line end.
fn record(out: &mut String, fields: &[&str]) {
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        field(out, f);
    }
    out.push_str("\r\n");
}

/// Writes `currencies.csv` and `groups.csv` into `dir`.
pub fn write_reference_data(dir: &Path) -> Result<()> {
    let mut rng = Rng(20_261_122);
    let mut text = String::new();
    record(&mut text, &["CURRENCYCODE", "NAME", "SYMBOL", "ROUNDINGPRECISION"]);
    for (code, name, symbol) in CURRENCIES {
        record(&mut text, &[code, name, symbol, "0.01"]);
    }
    std::fs::write(dir.join("currencies.csv"), &text).context("writing currencies.csv")?;
    text.clear();
    record(&mut text, &["CUSTOMERGROUPID", "DESCRIPTION", "PAYMENTTERMID"]);
    for (id, description) in GROUPS {
        record(&mut text, &[id, description, *rng.choice(PAYMENT_TERMS)]);
    }
    std::fs::write(dir.join("groups.csv"), &text).context("writing groups.csv")
}

/// How big a customers file is to be.
#[derive(Clone, Copy)]
pub enum Size {
    Rows(u64),
    /// About this many MB (10^6 bytes), whole chunks of rows.
    Megabytes(u64),
}

/// Writes a customers CSV to `path`: accounts `<prefix>000000001`…, groups and currencies from
/// the reference data; answers rows and bytes.
pub fn write_customers(path: &Path, size: Size, prefix: &str, seed: u64) -> Result<(u64, u64)> {
    let mut rng = Rng(seed);
    let file = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let mut text = String::new();
    record(&mut text, CUSTOMER_COLUMNS);
    let (mut n, mut bytes) = (0u64, 0u64);
    loop {
        let chunk = match size {
            Size::Rows(rows) if n >= rows => break,
            Size::Rows(rows) => CHUNK_ROWS.min(rows - n),
            Size::Megabytes(mb) if bytes >= mb * 1_000_000 => break,
            Size::Megabytes(_) => CHUNK_ROWS,
        };
        for _ in 0..chunk {
            n += 1;
            customer(&mut text, &mut rng, prefix, n);
        }
        out.write_all(text.as_bytes())?;
        bytes += text.len() as u64;
        text.clear();
    }
    out.flush()?;
    Ok((n, bytes))
}

fn customer(out: &mut String, rng: &mut Rng, prefix: &str, n: u64) {
    let name = format!("{} {}{}", rng.choice(FIRST), rng.choice(SECOND), rng.choice(SUFFIX));
    let mut alias: String =
        name.to_uppercase().chars().filter(|c| c.is_ascii_uppercase() || c.is_ascii_digit()).take(20).collect();
    if alias.is_empty() {
        alias = format!("C{n}");
    }
    let (city, zip, country, language) = rng.choice(CITIES);
    let account = format!("{prefix}{n:09}");
    let group = rng.choice(GROUPS).0;
    let currency = rng.choice(CURRENCIES).0;
    let limit = rng.below(50_000_000);
    let limit = format!("{}.{:02}", limit / 100, limit % 100);
    let street = format!("{} {}", rng.range(1, 9999), rng.choice(STREETS));
    let email = format!("ap{n}@{}", rng.choice(DOMAINS));
    let phone = format!("+{} {} {}", rng.range(1, 99), rng.range(100, 999), rng.range(100_000, 9_999_999));
    record(
        out,
        &[&account, &name, &alias, group, currency, &limit, language, &street, city, zip, country, &email, &phone],
    );
}

/// The label of messages entity `i` (1-based).
pub fn message_entity(i: usize) -> String {
    format!("Bench message {i:03}")
}

/// Writes the custom entities: `count` simple company-specific entities for the messages step
/// (`BenchMessage001`…: key `ItemId` + `Name`, `Quantity`, `Price`) and one of the same shape
/// the aon-writers step writes to (`BenchWrites`).
pub fn write_entities(path: &Path, count: usize) -> Result<()> {
    let mut text = String::from("# Simple company-specific entities for ferry-bench import.\n");
    let mut entity = |label: &str, public: &str, collection: &str| {
        let _ = write!(
            text,
            "\n[[entities]]\nlabel = \"{label}\"\npublic_name = \"{public}\"\ncollection = \"{collection}\"\n\
             logical_name = \"{}\"\ncompany_specific = true\nkey = [\"ItemId\"]\nfields = [\n\
             \x20 {{ name = \"ItemId\", type = \"string(20)\" }},\n  {{ name = \"Name\", type = \"string(60)\" }},\n\
             \x20 {{ name = \"Quantity\", type = \"int\" }},\n  {{ name = \"Price\", type = \"decimal(32,6)\" }},\n]\n",
            public.to_lowercase()
        );
    };
    for i in 1..=count {
        entity(&message_entity(i), &format!("BenchMessage{i:03}"), &format!("BenchMessages{i:03}"));
    }
    entity("Bench writes", "BenchWrite", WRITER_COLLECTION);
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// The body of one-row message `i` to entity `e`.
pub fn one_row_message(i: usize, e: usize) -> String {
    format!(
        "ITEMID,NAME,QUANTITY,PRICE\r\nI{i:08},Item {i} of entity {e},{},{:.2}\r\n",
        i % 97 + 1,
        (i % 1000) as f64 / 4.0
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_only_when_needed() {
        let mut out = String::new();
        record(&mut out, &["plain", "a,b", "say \"hi\"", "東京"]);
        assert_eq!(out, "plain,\"a,b\",\"say \"\"hi\"\"\",東京\r\n");
    }

    #[test]
    fn customer_files_are_the_same_every_time_and_have_13_columns() {
        let dir = std::env::temp_dir().join(format!("ferry-bench-files-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let (a, b) = (dir.join("a.csv"), dir.join("b.csv"));
        assert_eq!(write_customers(&a, Size::Rows(25), "C", 7).expect("a").0, 25);
        write_customers(&b, Size::Rows(25), "C", 7).expect("b");
        let text = std::fs::read_to_string(&a).expect("read");
        assert_eq!(text, std::fs::read_to_string(&b).expect("read"));
        assert_eq!(text.matches("\r\n").count(), 26);
        let second = text.lines().nth(1).expect("a row");
        assert!(second.starts_with("C000000001,"), "{second}");
        let (rows, bytes) = write_customers(&a, Size::Megabytes(1), "A", 7).expect("by size");
        assert!(bytes >= 1_000_000 && rows % CHUNK_ROWS == 0);
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn one_row_messages_have_a_header_and_one_row() {
        assert_eq!(one_row_message(5, 2), "ITEMID,NAME,QUANTITY,PRICE\r\nI00000005,Item 5 of entity 2,6,1.25\r\n");
    }
}
