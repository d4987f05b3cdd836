//! When a recurring job runs: a cron expression (`0 */15 * * * *`) or a fixed interval (`30s`,
//! `15m`, `2h`, `1d`). Intervals are aligned to multiples of the interval since the Unix epoch,
//! so every node computes the same times and a restart does not shift them. Pure.

use chrono::{DateTime, Duration, Utc};

/// A parsed recurrence.
#[derive(Clone, Debug)]
pub enum Recurrence {
    Cron(Box<croner::Cron>),
    Every(Duration),
}

/// The shortest interval accepted.
const INTERVAL_MIN_SECS: i64 = 1;
/// The longest interval accepted (a year).
const INTERVAL_MAX_SECS: i64 = 366 * 24 * 3600;

impl Recurrence {
    /// A cron expression, or an interval: a whole number and a unit (`s`, `m`, `h` or `d`).
    pub fn parse(text: &str) -> Result<Recurrence, String> {
        let text = text.trim();
        if let Some(every) = parse_interval(text) {
            let secs = every?;
            return Ok(Recurrence::Every(Duration::seconds(secs)));
        }
        text.parse::<croner::Cron>().map(|c| Recurrence::Cron(Box::new(c))).map_err(|e| {
            format!("'{text}' is neither a cron expression ({e}) nor an interval such as 30s, 15m, 2h or 1d")
        })
    }

    /// The first run time at or after `t` (`inclusive`) or strictly after it.
    pub fn next(&self, t: DateTime<Utc>, inclusive: bool) -> DateTime<Utc> {
        match self {
            Recurrence::Cron(cron) => cron.find_next_occurrence(&t, inclusive).unwrap_or(t),
            Recurrence::Every(step) => {
                let step_us = step.num_microseconds().unwrap_or(i64::MAX).max(1);
                let now_us = t.timestamp_micros();
                let aligned = now_us.div_euclid(step_us) * step_us;
                let next = if aligned == now_us && inclusive { aligned } else { aligned.saturating_add(step_us) };
                DateTime::from_timestamp_micros(next).unwrap_or(t)
            }
        }
    }
}

/// `Some` when `text` looks like an interval (digits and a unit letter), with the seconds or why
/// they are out of range.
fn parse_interval(text: &str) -> Option<Result<i64, String>> {
    let unit = text.chars().last()?;
    let number = &text[..text.len() - unit.len_utf8()];
    if number.is_empty() || !number.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let per_unit = match unit.to_ascii_lowercase() {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return None,
    };
    let secs = number.parse::<i64>().ok().and_then(|n| n.checked_mul(per_unit));
    Some(match secs {
        Some(s) if (INTERVAL_MIN_SECS..=INTERVAL_MAX_SECS).contains(&s) => Ok(s),
        _ => Err(format!("interval '{text}' must be between 1 second and 366 days")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn intervals_align_to_the_epoch_and_crons_follow_their_fields() {
        let every = Recurrence::parse("15m").unwrap();
        assert_eq!(every.next(at("2026-12-05T10:07:30Z"), true), at("2026-12-05T10:15:00Z"));
        assert_eq!(every.next(at("2026-12-05T10:15:00Z"), true), at("2026-12-05T10:15:00Z"));
        assert_eq!(every.next(at("2026-12-05T10:15:00Z"), false), at("2026-12-05T10:30:00Z"));
        assert_eq!(
            Recurrence::parse("1d").unwrap().next(at("2026-12-05T10:00:00Z"), false),
            at("2026-12-06T00:00:00Z")
        );
        let cron = Recurrence::parse("0 */15 * * * *").unwrap();
        assert_eq!(cron.next(at("2026-12-05T10:07:30Z"), true), at("2026-12-05T10:15:00Z"));
        assert_eq!(cron.next(at("2026-12-05T10:15:00Z"), false), at("2026-12-05T10:30:00Z"));
        for bad in ["0s", "400d", "every day", "15x"] {
            assert!(Recurrence::parse(bad).is_err(), "{bad}");
        }
    }
}
