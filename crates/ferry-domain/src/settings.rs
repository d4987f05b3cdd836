//! The settings of ferry's services, each with its one default: the configuration file fills
//! them, the services read them. Pure data.

use std::path::PathBuf;
use std::time::Duration;

/// A secret value (a password, a key); `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// The recurring-import service of one node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportSettings {
    /// Messages imported at once on this node (different lanes).
    pub workers: usize,
    /// How long a claim lasts without a heartbeat; heartbeats come every third of it.
    pub lease: Duration,
    /// How often idle workers look for work they were not woken for (leases that expired,
    /// retries and recurrences that came due).
    pub poll_interval: Duration,
    /// Runs a message may start before it is given up as poison (runs that died, or transient
    /// failures in a row).
    pub max_attempts: i64,
    /// Largest enqueued file or package, in bytes.
    pub max_enqueue_bytes: u64,
    /// A re-sent enqueue (same job, external identifier and content) within this window answers
    /// the original message; zero never deduplicates.
    pub dedupe_window: Duration,
    /// Rows per write transaction.
    pub batch_rows: usize,
    /// Company of enqueues whose request, job and application name none.
    pub default_company: String,
    /// Whether XSLT transforms run (each in a worker process).
    pub xslt: bool,
    /// Longest single field of an imported file, in bytes.
    pub max_field_bytes: usize,
    /// Hosts `ImportFromPackage` may fetch a package from when its URL is not one of ferry's
    /// own signed URLs (exact host names, or `*.example.com`). Empty: ferry's own URLs only.
    pub package_url_hosts: Vec<String>,
}

impl Default for ImportSettings {
    fn default() -> ImportSettings {
        ImportSettings {
            workers: 8,
            lease: Duration::from_secs(30),
            poll_interval: Duration::from_secs(1),
            max_attempts: 5,
            max_enqueue_bytes: 2 << 30,
            dedupe_window: Duration::from_secs(7 * 24 * 3600),
            batch_rows: 5000,
            default_company: "dat".into(),
            xslt: true,
            max_field_bytes: 1 << 20,
            package_url_hosts: Vec::new(),
        }
    }
}

/// Per-client-app request limits of one node, like Dynamics 365's user-based limits: requests
/// over a sliding time window and requests running at once. Off unless enabled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThrottleSettings {
    pub enabled: bool,
    /// The limits of every app without limits of its own.
    pub limits: ThrottleLimits,
    /// Apps with limits of their own, by client id.
    pub app_limits: Vec<(String, ThrottleLimits)>,
}

/// The limits one client app is held to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThrottleLimits {
    /// Requests allowed in any span of `window`.
    pub requests: u32,
    pub window: Duration,
    /// Requests allowed to run at once (until their answers are sent).
    pub concurrent: u32,
}

impl Default for ThrottleSettings {
    /// Dynamics 365's documented user-based limits, switched off as they are there by default.
    fn default() -> ThrottleSettings {
        ThrottleSettings {
            enabled: false,
            limits: ThrottleLimits { requests: 6000, window: Duration::from_secs(300), concurrent: 52 },
            app_limits: Vec::new(),
        }
    }
}

impl ThrottleSettings {
    /// The limits `client_id` is held to.
    pub fn limits_for(&self, client_id: &str) -> ThrottleLimits {
        self.app_limits.iter().find(|(id, _)| id == client_id).map_or(self.limits, |(_, limits)| *limits)
    }

    /// `off`, or `6000 requests per 300 s, 52 at once (1 app with its own limits)`, for the
    /// start-up summary.
    pub fn describe(&self) -> String {
        if !self.enabled {
            return "off".into();
        }
        let ThrottleLimits { requests, window, concurrent } = self.limits;
        let mut text = format!("{requests} requests per {} s, {concurrent} at once", window.as_secs());
        match self.app_limits.len() {
            0 => {}
            1 => text.push_str(" (1 app with its own limits)"),
            n => text.push_str(&format!(" ({n} apps with their own limits)")),
        }
        text
    }
}

/// Recurring export and the package API's exports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportSettings {
    /// How long a dequeued file stays hidden before it is offered again (unless acknowledged).
    pub visibility_timeout: Duration,
    /// How long the signed URLs handed out for packages and error files stay valid.
    pub url_lifetime: Duration,
}

impl Default for ExportSettings {
    fn default() -> ExportSettings {
        ExportSettings { visibility_timeout: Duration::from_secs(30 * 60), url_lifetime: Duration::from_secs(3600) }
    }
}

/// What is kept, and for how long.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetentionSettings {
    /// Finished messages and executions, their errors and every file of theirs (enqueued,
    /// exported, uploaded, staging, rejected) are removed this long after they end.
    pub keep: Duration,
    /// How often one node looks for what to remove.
    pub sweep_interval: Duration,
}

impl Default for RetentionSettings {
    fn default() -> RetentionSettings {
        RetentionSettings { keep: Duration::from_secs(7 * 24 * 3600), sweep_interval: Duration::from_secs(3600) }
    }
}

/// Every setting of the recurring integrations.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IntegrationSettings {
    pub import: ImportSettings,
    pub export: ExportSettings,
    pub retention: RetentionSettings,
}

/// The region S3 requests are signed for when none is configured.
pub const S3_REGION_DEFAULT: &str = "us-east-1";

/// Where files live: enqueued files and packages, rejected-rows and staging files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BlobStoreConfig {
    /// Files under `dir` (created if missing); one node only.
    Local { dir: PathBuf },
    /// Objects in a bucket of an S3-compatible store (AWS or any compatible server), shared by
    /// every node.
    S3(S3Config),
}

/// A bucket of an S3-compatible object store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Config {
    /// The bucket; it must exist (ferry does not create buckets).
    pub bucket: String,
    /// The server's URL, e.g. `http://127.0.0.1:9000`; `None` means AWS itself.
    pub endpoint: Option<String>,
    /// The region requests are signed for.
    pub region: String,
    /// With `secret_access_key`: static credentials. Without them, the usual AWS sources
    /// (instance metadata, web identity) are used.
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<Secret>,
    /// A folder inside the bucket that holds every ferry blob, e.g. `prod/ferry`.
    pub prefix: Option<String>,
    /// Allows a plain `http://` endpoint (test servers, a store on a private network).
    pub allow_http: bool,
}

impl S3Config {
    /// A bucket on AWS in the default region, with the usual credential sources.
    pub fn new(bucket: impl Into<String>) -> S3Config {
        S3Config {
            bucket: bucket.into(),
            endpoint: None,
            region: S3_REGION_DEFAULT.into(),
            access_key_id: None,
            secret_access_key: None,
            prefix: None,
            allow_http: false,
        }
    }
}

impl BlobStoreConfig {
    /// `local dir /x` or `s3 bucket b at http://…`, for the start-up summary.
    pub fn describe(&self) -> String {
        match self {
            BlobStoreConfig::Local { dir } => format!("local dir {}", dir.display()),
            BlobStoreConfig::S3(s3) => match &s3.endpoint {
                Some(endpoint) => format!("s3 bucket {} at {endpoint}", s3.bucket),
                None => format!("s3 bucket {} (AWS, {})", s3.bucket, s3.region),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apps_without_limits_of_their_own_get_the_default_ones() {
        let own = ThrottleLimits { requests: 10, window: Duration::from_secs(1), concurrent: 1 };
        let settings = ThrottleSettings { app_limits: vec![("bulk".into(), own)], ..ThrottleSettings::default() };
        assert_eq!(settings.limits_for("bulk"), own);
        assert_eq!(settings.limits_for("other"), ThrottleSettings::default().limits);
        assert!(!settings.enabled);
    }

    #[test]
    fn secrets_never_show() {
        let mut s3 = S3Config::new("b");
        s3.secret_access_key = Some(Secret::new("hunter2"));
        let shown = format!("{:?}", BlobStoreConfig::S3(s3));
        assert!(!shown.contains("hunter2") && shown.contains("<redacted>"), "{shown}");
    }
}
