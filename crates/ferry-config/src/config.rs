//! The resolved [`Config`], the file-shaped `Document` it is built from, and
//! the resolution step that fills derived defaults (`database`, `public_url`)
//! and validates every section.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use ferry_domain::{
    BlobStoreConfig, DeclaredProfile, ExportSettings, ImportSettings, Job, Project, RetentionSettings, ThrottleSettings,
};
use serde::Deserialize;

use crate::apps::{AppDecl, AppEntry, resolve_apps, take_throttles};
use crate::blobs::BlobsEntry;
use crate::error::{KeyPath, Problem};
use crate::export::{ExportEntry, RetentionEntry};
use crate::import::ImportEntry;
use crate::jobs::{JobEntry, resolve_jobs};
use crate::profiles::{ProfileEntry, resolve_profiles};
use crate::projects::{ProjectEntry, resolve_projects};
use crate::secret::SecretRef;
use crate::sections::{AuthConfig, LogConfig, ODataConfig};
use crate::throttle::ThrottleEntry;
use crate::validate::{Validate, http_url, not_blank};

const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
const DEFAULT_DATA_DIR: &str = "./ferry-data";
const DATABASE_SCHEMES: &[&str] = &["sqlite:", "postgres:", "postgresql:"];

/// ferry's validated configuration.
#[derive(Clone, PartialEq, Eq)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// Database URL; defaults to `sqlite://<data_dir>/ferry.db`. Never empty.
    pub database: String,
    /// Absolute `http(s)` base URL without trailing slash; defaults to `http://<listen>`.
    pub public_url: String,
    pub entities_dir: Option<PathBuf>,
    pub master_key: Option<SecretRef>,
    pub log: LogConfig,
    pub auth: AuthConfig,
    pub odata: ODataConfig,
    pub apps: Vec<AppDecl>,
    /// Replication profiles, applied at start-up (matched by name).
    pub profiles: Vec<DeclaredProfile>,
    /// The recurring-import service.
    pub import: ImportSettings,
    /// Delivery of exports.
    pub export: ExportSettings,
    /// How long finished messages and their files are kept.
    pub retention: RetentionSettings,
    /// Where files are kept (enqueued imports, rejected rows).
    pub blobs: BlobStoreConfig,
    /// Data projects, applied at start-up (matched by name).
    pub projects: Vec<Project>,
    /// Recurring import jobs, applied at start-up after the projects (matched by activity id).
    pub jobs: Vec<Job>,
    /// Per-client-app request limits at the HTTP edge.
    pub throttle: ThrottleSettings,
}

/// The configuration as layered TOML, before defaults are derived.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, expecting = "a table")]
pub(crate) struct Document {
    listen: Option<String>,
    data_dir: Option<String>,
    database: Option<String>,
    public_url: Option<String>,
    entities_dir: Option<String>,
    master_key: Option<String>,
    log: LogConfig,
    auth: AuthConfig,
    odata: ODataConfig,
    apps: Vec<AppEntry>,
    profiles: Vec<ProfileEntry>,
    import: ImportEntry,
    export: ExportEntry,
    retention: RetentionEntry,
    blobs: BlobsEntry,
    projects: Vec<ProjectEntry>,
    jobs: Vec<JobEntry>,
    throttle: ThrottleEntry,
}

impl Document {
    /// Derive defaults and validate; `env` serves `env:VAR` secrets, `base_dir` (the config
    /// file's directory) is where relative `xslt_file` paths start.
    pub(crate) fn resolve(self, env: &[(String, String)], base_dir: &Path) -> Result<Config, Problem> {
        let root = KeyPath::root();
        let listen = parse_listen(self.listen.as_deref().unwrap_or(DEFAULT_LISTEN), &root.key("listen"))?;
        let data_dir = self.data_dir.as_deref().unwrap_or(DEFAULT_DATA_DIR);
        not_blank(data_dir, &root.key("data_dir"))?;
        let data_dir = PathBuf::from(data_dir);
        let database = match self.database {
            Some(url) => check_database(url, &root.key("database"))?,
            None => format!("sqlite://{}", data_dir.join("ferry.db").display()),
        };
        let public_url = match &self.public_url {
            Some(url) => http_url(url, &root.key("public_url"))?,
            None => format!("http://{listen}"),
        };
        let entities_dir = match self.entities_dir {
            Some(dir) => {
                not_blank(&dir, &root.key("entities_dir"))?;
                Some(PathBuf::from(dir))
            }
            None => None,
        };
        let master_key = self
            .master_key
            .map(|text| SecretRef::parse(&text).map_err(|e| Problem::new(&root.key("master_key"), e)))
            .transpose()?;

        let (mut log, mut auth, mut odata) = (self.log, self.auth, self.odata);
        log.validate(&root.key("log"))?;
        auth.validate(&root.key("auth"))?;
        odata.validate(&root.key("odata"))?;
        let import = self.import.resolve(&root.key("import"))?;
        let export = self.export.resolve(&root.key("export"))?;
        let retention = self.retention.resolve(&root.key("retention"))?;
        for issuer in &mut auth.trusted_issuers {
            if issuer.audience.is_empty() {
                issuer.audience.clone_from(&public_url);
            }
        }
        let mut app_entries = self.apps;
        let app_throttles = take_throttles(&mut app_entries, &root.key("apps"));
        let apps = resolve_apps(app_entries, env, &root.key("apps"))?;
        let throttle = self.throttle.resolve(app_throttles, &root.key("throttle"))?;
        let profiles = resolve_profiles(self.profiles, env, &root.key("profiles"))?;
        let blobs = self.blobs.resolve(&data_dir, env, &root.key("blobs"))?;
        let projects = resolve_projects(self.projects, base_dir, &root.key("projects"))?;
        let jobs = resolve_jobs(self.jobs, &root.key("jobs"))?;

        Ok(Config {
            listen,
            data_dir,
            database,
            public_url,
            entities_dir,
            master_key,
            log,
            auth,
            odata,
            apps,
            profiles,
            import,
            export,
            retention,
            blobs,
            projects,
            jobs,
            throttle,
        })
    }
}

fn parse_listen(text: &str, at: &KeyPath) -> Result<SocketAddr, Problem> {
    text.trim().parse().map_err(|_| Problem::new(at, format!("'{text}' is not an address like 127.0.0.1:8080")))
}

fn check_database(url: String, at: &KeyPath) -> Result<String, Problem> {
    let scheme_ok = DATABASE_SCHEMES.iter().any(|s| url.starts_with(s) && url.len() > s.len());
    if scheme_ok {
        Ok(url)
    } else {
        Err(Problem::new(
            at,
            format!(
                "'{}' is not a supported database URL (expected sqlite:..., postgres://... or postgresql://...)",
                redact_database_url(&url)
            ),
        ))
    }
}

impl Config {
    /// A few lines for the start-up log: no secrets, database password masked.
    pub fn redacted_summary(&self) -> String {
        let enabled = self.apps.iter().filter(|a| a.enabled).count();
        format!(
            "listen: {}\ndata_dir: {}\ndatabase: {}\npublic_url: {}\napps: {} ({enabled} enabled)\nprofiles: {}\n\
             blobs: {}\nimport workers: {}\nprojects: {}\njobs: {}\nthrottle: {}",
            self.listen,
            self.data_dir.display(),
            redact_database_url(&self.database),
            self.public_url,
            self.apps.len(),
            self.profiles.len(),
            self.blobs.describe(),
            self.import.workers,
            self.projects.len(),
            self.jobs.len(),
            self.throttle.describe(),
        )
    }

    /// Whether `database` is a SQLite URL (otherwise PostgreSQL).
    pub fn database_is_sqlite(&self) -> bool {
        self.database.starts_with("sqlite:")
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field("database", &redact_database_url(&self.database))
            .field("public_url", &self.public_url)
            .field("entities_dir", &self.entities_dir)
            .field("master_key", &self.master_key)
            .field("log", &self.log)
            .field("auth", &self.auth)
            .field("odata", &self.odata)
            .field("apps", &self.apps)
            .field("profiles", &self.profiles)
            .field("import", &self.import)
            .field("blobs", &self.blobs)
            .field("projects", &self.projects)
            .field("jobs", &self.jobs)
            .field("throttle", &self.throttle)
            .finish()
    }
}

/// `url` with the userinfo password and any `password=` query value replaced by `***`.
pub(crate) fn redact_database_url(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some(scheme_end) = url.find("://") {
        let authority_start = scheme_end + 3;
        let authority_end = url[authority_start..].find(['/', '?', '#']).map_or(url.len(), |i| authority_start + i);
        let authority = &url[authority_start..authority_end];
        if let Some(at) = authority.rfind('@')
            && let Some(colon) = authority[..at].find(':')
        {
            let (pass_start, pass_end) = (authority_start + colon + 1, authority_start + at);
            out = format!("{}***{}", &url[..pass_start], &url[pass_end..]);
        }
    }
    let Some(query_start) = out.find('?') else {
        return out;
    };
    let (base, query) = out.split_at(query_start + 1);
    let query: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
            _ => pair.to_owned(),
        })
        .collect();
    format!("{base}{}", query.join("&"))
}

#[cfg(test)]
mod tests {
    use super::redact_database_url;

    #[test]
    fn database_passwords_are_redacted() {
        assert_eq!(redact_database_url("postgres://u:p%40ss@db:5432/ferry"), "postgres://u:***@db:5432/ferry");
        assert_eq!(redact_database_url("postgres://u@db/ferry"), "postgres://u@db/ferry");
        assert_eq!(
            redact_database_url("postgresql://db/f?user=u&password=pw"),
            "postgresql://db/f?user=u&password=***"
        );
        assert_eq!(redact_database_url("sqlite://./ferry-data/ferry.db"), "sqlite://./ferry-data/ferry.db");
    }
}
