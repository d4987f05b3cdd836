//! The typed values held in entity rows.

use crate::decimal::Decimal;
use chrono::{DateTime, Datelike, NaiveDate, Timelike, Utc};
use uuid::Uuid;

/// One field value. Which variant a field holds is decided by its [`crate::FieldType`]:
/// `Int` serves int, int64 and enum codes.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    String(String),
    Int(i64),
    Decimal(Decimal),
    Real(f64),
    Bool(bool),
    Date(NaiveDate),
    DateTime(DateTime<Utc>),
    Guid(Uuid),
}

impl Value {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The value as plain text (strings as they are, dates and times in ISO form, decimals in
    /// canonical form), or `None` for null. Inverse of [`crate::FieldType::coerce`] with
    /// `Input::Text` for every type but enums, whose code is given.
    pub fn to_text(&self) -> Option<String> {
        Some(match self {
            Value::Null => return None,
            Value::String(s) => s.clone(),
            Value::Int(i) => i.to_string(),
            Value::Decimal(d) => d.to_string(),
            Value::Real(r) => r.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Date(d) => format_date(d),
            Value::DateTime(t) => format_datetime(t),
            Value::Guid(g) => g.to_string(),
        })
    }

    /// A short rendering for error messages (strings quoted, long values cut).
    pub fn describe(&self) -> String {
        match self {
            Value::Null => "null".into(),
            Value::String(s) => {
                let cut: String = s.chars().take(60).collect();
                if cut.len() < s.len() { format!("'{cut}…'") } else { format!("'{s}'") }
            }
            Value::Int(i) => i.to_string(),
            Value::Decimal(d) => d.to_string(),
            Value::Real(r) => r.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Date(d) => d.to_string(),
            Value::DateTime(t) => format_datetime(t),
            Value::Guid(g) => g.to_string(),
        }
    }
}

/// The one textual form of a UTC timestamp ferry uses everywhere (sortable as text):
/// `YYYY-MM-DDTHH:MM:SS.ffffffZ`. Written digit by digit — it is formatted for every
/// timestamp a bulk import binds — with chrono's formatter for what that does not cover
/// (years outside 0–9999, leap seconds).
pub fn format_datetime(t: &DateTime<Utc>) -> String {
    let (date, time) = (t.date_naive(), t.time());
    if !(0..=9999).contains(&date.year()) || time.nanosecond() >= 1_000_000_000 {
        return t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string();
    }
    let mut out = [0u8; 27];
    write_date(&mut out[..10], &date);
    out[10] = b'T';
    digits(&mut out[11..13], time.hour());
    out[13] = b':';
    digits(&mut out[14..16], time.minute());
    out[16] = b':';
    digits(&mut out[17..19], time.second());
    out[19] = b'.';
    digits(&mut out[20..26], time.nanosecond() / 1_000);
    out[26] = b'Z';
    String::from_utf8(out.to_vec()).expect("ASCII digits")
}

/// `YYYY-MM-DD`, as [`format_datetime`] writes the date.
pub fn format_date(d: &NaiveDate) -> String {
    if !(0..=9999).contains(&d.year()) {
        return d.format("%Y-%m-%d").to_string();
    }
    let mut out = [0u8; 10];
    write_date(&mut out, d);
    String::from_utf8(out.to_vec()).expect("ASCII digits")
}

/// `YYYY-MM-DD` of a date in years 0–9999 into 10 bytes.
fn write_date(out: &mut [u8], d: &NaiveDate) {
    digits(&mut out[..4], d.year() as u32);
    out[4] = b'-';
    digits(&mut out[5..7], d.month());
    out[7] = b'-';
    digits(&mut out[8..10], d.day());
}

/// `n` in decimal, zero-padded to the slice's width.
fn digits(out: &mut [u8], mut n: u32) {
    for b in out.iter_mut().rev() {
        *b = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn timestamps_and_dates_format_as_chrono_does() {
        let stamps = [
            Utc.with_ymd_and_hms(2024, 1, 31, 23, 59, 58).unwrap() + chrono::Duration::microseconds(123_456),
            Utc.with_ymd_and_hms(1, 1, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(0, 12, 31, 1, 2, 3).unwrap(),
            Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).unwrap() + chrono::Duration::nanoseconds(999_999_999),
            Utc.with_ymd_and_hms(-1, 6, 15, 12, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(10_000, 1, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(2016, 12, 31, 23, 59, 59).unwrap() + chrono::Duration::nanoseconds(7),
        ];
        let leap = NaiveDate::from_ymd_opt(2016, 12, 31).unwrap().and_hms_nano_opt(23, 59, 59, 1_500_000_000).unwrap();
        for t in stamps.into_iter().chain([Utc.from_utc_datetime(&leap)]) {
            assert_eq!(format_datetime(&t), t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(), "{t:?}");
            let d = t.date_naive();
            assert_eq!(format_date(&d), d.format("%Y-%m-%d").to_string(), "{d:?}");
        }
        assert_eq!(format_datetime(&stamps[0]), "2024-01-31T23:59:58.123456Z");
    }
}
