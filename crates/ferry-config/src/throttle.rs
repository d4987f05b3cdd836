//! `[throttle]`: per-client-app request limits at the HTTP edge, and the limits of their own that
//! `[[apps]]` entries may declare (`throttle = { requests = …, window_secs = …, concurrent = … }`).
//! The file forms are resolved into `ferry_domain::ThrottleSettings`, which holds the defaults:
//! every key left out takes that type's default (an app's, the section's), and every key is
//! checked against its range.

use std::time::Duration;

use ferry_domain::{ThrottleLimits, ThrottleSettings};
use serde::Deserialize;

use crate::error::{KeyPath, Problem};
use crate::validate::in_range;

/// `[throttle]` as written in the file.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, expecting = "a table")]
pub(crate) struct ThrottleEntry {
    enabled: Option<bool>,
    requests: Option<u32>,
    window_secs: Option<u64>,
    concurrent: Option<u32>,
}

/// The limit keys, shared by `[throttle]` and an app's `throttle = { … }`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, expecting = "a table")]
pub(crate) struct LimitsEntry {
    requests: Option<u32>,
    window_secs: Option<u64>,
    concurrent: Option<u32>,
}

impl ThrottleEntry {
    /// The settings, with `apps` (client id, the entry's key path, its `throttle` table) holding
    /// limits of their own; their keys left out take the section's values.
    pub(crate) fn resolve(
        self,
        apps: Vec<(String, KeyPath, LimitsEntry)>,
        at: &KeyPath,
    ) -> Result<ThrottleSettings, Problem> {
        let mut settings = ThrottleSettings::default();
        if let Some(enabled) = self.enabled {
            settings.enabled = enabled;
        }
        let limits =
            LimitsEntry { requests: self.requests, window_secs: self.window_secs, concurrent: self.concurrent };
        settings.limits = limits.resolve(settings.limits, at)?;
        for (client_id, at, entry) in apps {
            let limits = entry.resolve(settings.limits, &at)?;
            settings.app_limits.push((client_id, limits));
        }
        Ok(settings)
    }
}

impl LimitsEntry {
    /// `base` with the keys this entry sets.
    fn resolve(self, base: ThrottleLimits, at: &KeyPath) -> Result<ThrottleLimits, Problem> {
        let mut limits = base;
        if let Some(requests) = self.requests {
            in_range(requests, 1..=1_000_000, &at.key("requests"))?;
            limits.requests = requests;
        }
        if let Some(secs) = self.window_secs {
            in_range(secs, 1..=86_400, &at.key("window_secs"))?;
            limits.window = Duration::from_secs(secs);
        }
        if let Some(concurrent) = self.concurrent {
            in_range(concurrent, 1..=100_000, &at.key("concurrent"))?;
            limits.concurrent = concurrent;
        }
        Ok(limits)
    }
}
