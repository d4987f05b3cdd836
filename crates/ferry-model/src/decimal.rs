//! Exact decimal numbers kept as canonical text, so that money never passes through a float.

use std::fmt;

/// A decimal number in canonical form: optional `-`, integer digits without leading zeros,
/// optional `.` and fraction digits without trailing zeros (`0`, `-12.5`, `1000`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Decimal(String);

/// Why a text is not a decimal that fits a field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecimalError {
    NotANumber,
    TooManyDigits { integer_digits_max: u32 },
}

impl Decimal {
    /// Parses `text` (plain or exponent notation), rounds half away from zero to `scale` fraction
    /// digits and checks that at most `precision - scale` integer digits remain.
    pub fn parse(text: &str, precision: u32, scale: u32) -> Result<Decimal, DecimalError> {
        let (negative, mut int_digits, mut frac_digits) = split_number(text.trim())?;
        // Round the fraction to `scale` digits.
        if frac_digits.len() > scale as usize {
            let round_up = frac_digits.as_bytes()[scale as usize] >= b'5';
            frac_digits.truncate(scale as usize);
            if round_up {
                let mut all: Vec<u8> = format!("{int_digits}{frac_digits}").into_bytes();
                let mut i = all.len();
                loop {
                    if i == 0 {
                        all.insert(0, b'1');
                        break;
                    }
                    i -= 1;
                    if all[i] == b'9' {
                        all[i] = b'0';
                    } else {
                        all[i] += 1;
                        break;
                    }
                }
                let split = all.len() - frac_digits.len();
                let all = String::from_utf8(all).expect("digits are ascii");
                int_digits = all[..split].to_string();
                frac_digits = all[split..].to_string();
            }
        }
        let int_trimmed = int_digits.trim_start_matches('0');
        let frac_trimmed = frac_digits.trim_end_matches('0');
        let integer_digits_max = precision.saturating_sub(scale);
        if int_trimmed.len() > integer_digits_max as usize {
            return Err(DecimalError::TooManyDigits { integer_digits_max });
        }
        let mut out = String::with_capacity(int_trimmed.len() + frac_trimmed.len() + 2);
        let is_zero = int_trimmed.is_empty() && frac_trimmed.is_empty();
        if negative && !is_zero {
            out.push('-');
        }
        out.push_str(if int_trimmed.is_empty() { "0" } else { int_trimmed });
        if !frac_trimmed.is_empty() {
            out.push('.');
            out.push_str(frac_trimmed);
        }
        Ok(Decimal(out))
    }

    /// Wraps text that is already canonical (read back from the store) without checking it.
    pub fn from_canonical(text: String) -> Decimal {
        Decimal(text)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The nearest float, for comparisons where exactness does not matter.
    pub fn to_f64(&self) -> f64 {
        self.0.parse().unwrap_or(f64::NAN)
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Splits a number into sign, integer digits and fraction digits, applying any exponent.
fn split_number(text: &str) -> Result<(bool, String, String), DecimalError> {
    let (negative, rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let (mantissa, exponent) = match rest.find(['e', 'E']) {
        Some(at) => {
            let exp: i32 = rest[at + 1..].parse().map_err(|_| DecimalError::NotANumber)?;
            if exp.abs() > 64 {
                return Err(DecimalError::NotANumber);
            }
            (&rest[..at], exp)
        }
        None => (rest, 0),
    };
    let (int_part, frac_part) = match mantissa.split_once('.') {
        Some((i, f)) => (i, f),
        None => (mantissa, ""),
    };
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (int_part.is_empty() && frac_part.is_empty()) || !all_digits(int_part) || !all_digits(frac_part) {
        return Err(DecimalError::NotANumber);
    }
    let mut digits = format!("{int_part}{frac_part}");
    let mut point = int_part.len() as i64 + exponent as i64;
    if point < 0 {
        digits.insert_str(0, &"0".repeat((-point) as usize));
        point = 0;
    }
    if point as usize > digits.len() {
        digits.push_str(&"0".repeat(point as usize - digits.len()));
    }
    let (i, f) = digits.split_at(point as usize);
    Ok((negative, i.to_string(), f.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(text: &str, p: u32, s: u32) -> Result<String, DecimalError> {
        Decimal::parse(text, p, s).map(|d| d.0)
    }

    #[test]
    fn canonical_forms() {
        assert_eq!(d("0", 10, 2).unwrap(), "0");
        assert_eq!(d("-0.00", 10, 2).unwrap(), "0");
        assert_eq!(d("007.50", 10, 2).unwrap(), "7.5");
        assert_eq!(d("1e3", 10, 2).unwrap(), "1000");
        assert_eq!(d("1.5E-2", 10, 4).unwrap(), "0.015");
        assert_eq!(d("+12", 10, 2).unwrap(), "12");
        assert_eq!(d(".5", 10, 2).unwrap(), "0.5");
    }

    #[test]
    fn rounds_half_away_from_zero_to_scale() {
        assert_eq!(d("0.30000000000000004", 32, 6).unwrap(), "0.3");
        assert_eq!(d("2.345", 10, 2).unwrap(), "2.35");
        assert_eq!(d("-2.345", 10, 2).unwrap(), "-2.35");
        assert_eq!(d("9.999", 10, 2).unwrap(), "10");
        assert_eq!(d("99.995", 4, 2), Err(DecimalError::TooManyDigits { integer_digits_max: 2 }));
    }

    #[test]
    fn rejects_garbage_and_overflow() {
        assert_eq!(d("abc", 10, 2), Err(DecimalError::NotANumber));
        assert_eq!(d("1.2.3", 10, 2), Err(DecimalError::NotANumber));
        assert_eq!(d("", 10, 2), Err(DecimalError::NotANumber));
        assert_eq!(d("-", 10, 2), Err(DecimalError::NotANumber));
        assert_eq!(d("1e999", 10, 2), Err(DecimalError::NotANumber));
        assert_eq!(d("123456789", 10, 2), Err(DecimalError::TooManyDigits { integer_digits_max: 8 }));
    }
}
