//! `[export]` and `[retention]`: how exported files are delivered (the visibility timeout of a
//! dequeued file, the lifetime of signed URLs) and how long finished messages and their files are
//! kept. Resolved into `ferry_domain::ExportSettings` and `RetentionSettings`: keys left out take
//! those types' defaults, and every key is checked against its range.

use std::time::Duration;

use ferry_domain::{ExportSettings, RetentionSettings};
use serde::Deserialize;

use crate::error::{KeyPath, Problem};
use crate::validate::in_range;

/// `[export]` as written in the file.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, expecting = "a table")]
pub(crate) struct ExportEntry {
    visibility_timeout_secs: Option<u64>,
    url_lifetime_secs: Option<u64>,
}

impl ExportEntry {
    pub(crate) fn resolve(self, at: &KeyPath) -> Result<ExportSettings, Problem> {
        let mut settings = ExportSettings::default();
        if let Some(secs) = self.visibility_timeout_secs {
            in_range(secs, 1..=7 * 24 * 3600, &at.key("visibility_timeout_secs"))?;
            settings.visibility_timeout = Duration::from_secs(secs);
        }
        if let Some(secs) = self.url_lifetime_secs {
            in_range(secs, 60..=7 * 24 * 3600, &at.key("url_lifetime_secs"))?;
            settings.url_lifetime = Duration::from_secs(secs);
        }
        Ok(settings)
    }
}

/// `[retention]` as written in the file.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, expecting = "a table")]
pub(crate) struct RetentionEntry {
    keep_days: Option<u64>,
    sweep_interval_secs: Option<u64>,
}

impl RetentionEntry {
    pub(crate) fn resolve(self, at: &KeyPath) -> Result<RetentionSettings, Problem> {
        let mut settings = RetentionSettings::default();
        if let Some(days) = self.keep_days {
            in_range(days, 1..=3650, &at.key("keep_days"))?;
            settings.keep = Duration::from_secs(days * 24 * 3600);
        }
        if let Some(secs) = self.sweep_interval_secs {
            in_range(secs, 10..=24 * 3600, &at.key("sweep_interval_secs"))?;
            settings.sweep_interval = Duration::from_secs(secs);
        }
        Ok(settings)
    }
}
