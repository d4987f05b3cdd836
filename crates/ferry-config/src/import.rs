//! `[import]`: the recurring-import service — how many messages a node imports at once, its
//! leases and polling, retries, size limits and defaults. The file form ([`ImportEntry`]) is
//! resolved into the service's own settings (`ferry_domain::ImportSettings`): every key left
//! out takes that type's default, and every key is checked against its range.

use std::time::Duration;

use ferry_domain::ImportSettings;
use serde::Deserialize;

use crate::error::{KeyPath, Problem};
use crate::validate::{company, in_range};

/// The largest `max_field_bytes`: the readers' record limit (16 MiB).
const MAX_FIELD_BYTES_MAX: u64 = 16 << 20;

/// `[import]` as written in the file; units are the keys' (seconds, milliseconds, hours).
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, expecting = "a table")]
pub(crate) struct ImportEntry {
    workers: Option<u32>,
    lease_secs: Option<u64>,
    poll_interval_ms: Option<u64>,
    max_attempts: Option<u32>,
    max_enqueue_bytes: Option<u64>,
    dedupe_window_hours: Option<u64>,
    batch_rows: Option<u32>,
    default_company: Option<String>,
    xslt: Option<bool>,
    max_field_bytes: Option<u64>,
    package_url_hosts: Option<Vec<String>>,
}

impl ImportEntry {
    pub(crate) fn resolve(self, at: &KeyPath) -> Result<ImportSettings, Problem> {
        let mut settings = ImportSettings::default();
        if let Some(workers) = self.workers {
            in_range(workers, 1..=64, &at.key("workers"))?;
            settings.workers = workers as usize;
        }
        if let Some(secs) = self.lease_secs {
            in_range(secs, 5..=3600, &at.key("lease_secs"))?;
            settings.lease = Duration::from_secs(secs);
        }
        if let Some(ms) = self.poll_interval_ms {
            in_range(ms, 10..=60_000, &at.key("poll_interval_ms"))?;
            settings.poll_interval = Duration::from_millis(ms);
        }
        if let Some(attempts) = self.max_attempts {
            in_range(attempts, 1..=100, &at.key("max_attempts"))?;
            settings.max_attempts = i64::from(attempts);
        }
        if let Some(bytes) = self.max_enqueue_bytes {
            if bytes == 0 {
                return Err(Problem::new(&at.key("max_enqueue_bytes"), "must be at least 1 byte"));
            }
            settings.max_enqueue_bytes = bytes;
        }
        if let Some(hours) = self.dedupe_window_hours {
            in_range(hours, 0..=8760, &at.key("dedupe_window_hours"))?;
            settings.dedupe_window = Duration::from_secs(hours * 3600);
        }
        if let Some(rows) = self.batch_rows {
            in_range(rows, 100..=100_000, &at.key("batch_rows"))?;
            settings.batch_rows = rows as usize;
        }
        if let Some(text) = self.default_company {
            settings.default_company = company(&text, &at.key("default_company"))?;
        }
        if let Some(xslt) = self.xslt {
            settings.xslt = xslt;
        }
        if let Some(bytes) = self.max_field_bytes {
            in_range(bytes, 1..=MAX_FIELD_BYTES_MAX, &at.key("max_field_bytes"))?;
            settings.max_field_bytes = bytes as usize;
        }
        if let Some(hosts) = self.package_url_hosts {
            for (i, host) in hosts.iter().enumerate() {
                let bare = host.trim().strip_prefix("*.").unwrap_or(host.trim());
                let valid = !bare.is_empty()
                    && bare.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
                    && !bare.starts_with('.');
                if !valid {
                    let at = at.key("package_url_hosts").index(i);
                    return Err(Problem::new(&at, format!("'{host}' is not a host name (or *.domain)")));
                }
            }
            settings.package_url_hosts = hosts.into_iter().map(|h| h.trim().to_ascii_lowercase()).collect();
        }
        Ok(settings)
    }
}
