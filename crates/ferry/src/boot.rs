//! Start-up steps shared by `ferry serve` and the admin commands: building the
//! entity catalog, opening and migrating the store, applying the `[[apps]]`
//! declarations, loading (or creating) the master key, opening the token
//! service, the blob store (`[blobs]`) and the import service (`[import]`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use ferry_auth::{TokenService, TokenSettings, TrustedIssuerSettings};
use ferry_blob::BlobStore;
use ferry_config::{AppDecl, AppSecret, Config, SecretRef};
use ferry_domain::{IntegrationSettings, SharedClock};
use ferry_integration::{IntegrationRuntime, IntegrationService};
use ferry_model::{Catalog, CatalogSource};
use ferry_secrets::MasterKey;
use ferry_store::{App, AppOrigin, Store};
use ferry_xslt::XsltRunner;

/// The master key file kept in the data dir when `master_key` is not configured.
const MASTER_KEY_FILE: &str = "master.key";
/// The import's scratch directory inside the data dir.
const WORK_DIR: &str = "work";
/// Names the program started as the XSLT worker (with `xslt-worker` as its first argument)
/// instead of this executable: in-process test servers' executable is the test binary.
const XSLT_WORKER_VAR: &str = "FERRY_XSLT_WORKER";

/// The catalog sources: the standard entities, then every `*.toml` file of
/// `entities_dir` in file-name order. Each source's origin is its file path,
/// so catalog errors name the file.
pub(crate) fn catalog_sources(entities_dir: Option<&Path>) -> anyhow::Result<(Vec<CatalogSource>, usize)> {
    let mut sources = ferry_model::standard_sources();
    let Some(dir) = entities_dir else {
        return Ok((sources, 0));
    };
    let cannot_read = || format!("cannot read the entities dir {}", dir.display());
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(cannot_read)?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .with_context(cannot_read)?;
    files.retain(|path| path.is_file() && path.extension().is_some_and(|ext| ext.eq_ignore_ascii_case("toml")));
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    let custom = files.len();
    for path in files {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read entity definition {}", path.display()))?;
        sources.push(CatalogSource { origin: path.display().to_string(), text });
    }
    Ok((sources, custom))
}

/// Builds the catalog from the standard entities plus `entities_dir`.
pub(crate) fn build_catalog(entities_dir: Option<&Path>) -> anyhow::Result<Catalog> {
    let (sources, _) = catalog_sources(entities_dir)?;
    Catalog::build(&sources).map_err(|e| anyhow!("invalid entity definition: {e}"))
}

/// Creates the data dir, opens the configured database (stamping rows with `clock`) and
/// applies migrations.
pub(crate) async fn open_store(config: &Config, clock: SharedClock) -> anyhow::Result<Store> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create the data dir {}", config.data_dir.display()))?;
    let shown = ferry_store::redact_url(&config.database);
    let store =
        Store::open(&config.database, clock).await.with_context(|| format!("cannot open the database {shown}"))?;
    store.migrate().await.with_context(|| format!("cannot migrate the database {shown}"))?;
    Ok(store)
}

/// Creates or updates every app declared in the config. Idempotent: an app
/// whose stored state already matches is not written, and a plain secret that
/// the stored hash already verifies keeps that hash.
pub(crate) async fn apply_declared_apps(store: &Store, apps: &[AppDecl]) -> anyhow::Result<()> {
    for decl in apps {
        let existing =
            store.get_app(&decl.client_id).await.with_context(|| format!("cannot read app '{}'", decl.client_id))?;
        let secret_hash = match (&decl.secret, &existing) {
            (AppSecret::Hash(hash), _) => hash.clone(),
            (AppSecret::Plain(secret), Some(app)) if verifies(secret, &app.secret_hash).await? => {
                app.secret_hash.clone()
            }
            (AppSecret::Plain(secret), _) => hash(secret).await?,
        };
        let now = store.clock().now();
        let mut app = App {
            client_id: decl.client_id.clone(),
            name: decl.name.clone(),
            secret_hash,
            roles: decl.roles.clone(),
            default_company: decl.default_company.clone(),
            enabled: decl.enabled,
            origin: AppOrigin::Config,
            created_at: existing.as_ref().map_or(now, |a| a.created_at),
            updated_at: existing.as_ref().map_or(now, |a| a.updated_at),
        };
        if existing.as_ref() == Some(&app) {
            continue;
        }
        if existing.as_ref().is_some_and(|a| a.origin == AppOrigin::Cli) {
            tracing::warn!(client_id = %app.client_id, "the config declares an app created with `ferry apps add`; the config wins");
        }
        app.updated_at = now;
        store.upsert_app(&app).await.with_context(|| format!("cannot save app '{}'", app.client_id))?;
        let action = if existing.is_some() { "updated" } else { "created" };
        tracing::info!(client_id = %app.client_id, roles = ?app.roles, enabled = app.enabled, "{action} app from config");
    }
    Ok(())
}

/// Hashes a secret with argon2 off the async executor.
pub(crate) async fn hash(secret: &str) -> anyhow::Result<String> {
    let secret = secret.to_owned();
    tokio::task::spawn_blocking(move || ferry_secrets::hash_secret(&secret)).await.context("hashing a secret failed")
}

async fn verifies(secret: &str, hash: &str) -> anyhow::Result<bool> {
    let (secret, hash) = (secret.to_owned(), hash.to_owned());
    tokio::task::spawn_blocking(move || ferry_secrets::verify_secret(&secret, &hash))
        .await
        .context("checking a secret failed")
}

/// The master key named by `master_key`, or `<data_dir>/master.key`, which is
/// created with a fresh key when missing.
pub(crate) fn load_master_key(config: &Config, env: &[(String, String)]) -> anyhow::Result<MasterKey> {
    let Some(secret) = &config.master_key else {
        return data_dir_master_key(&config.data_dir);
    };
    let (text, source) = secret_value(secret, env, "master_key")?;
    MasterKey::from_base64(&text).with_context(|| format!("master_key: invalid key in {source}"))
}

/// The value of the secret `secret` (setting `key`) and where it came from, for messages.
fn secret_value(secret: &SecretRef, env: &[(String, String)], key: &str) -> anyhow::Result<(String, String)> {
    Ok(match secret {
        SecretRef::Env(var) => {
            let value = env
                .iter()
                .rev()
                .find(|(name, _)| name == var)
                .map(|(_, value)| value.clone())
                .ok_or_else(|| anyhow!("{key}: environment variable {var} is not set"))?;
            (value, format!("environment variable {var}"))
        }
        SecretRef::File(path) => {
            let text =
                std::fs::read_to_string(path).with_context(|| format!("{key}: cannot read {}", path.display()))?;
            (text, format!("file {}", path.display()))
        }
        SecretRef::Inline(text) => (text.clone(), format!("the {key} setting")),
    })
}

fn data_dir_master_key(data_dir: &Path) -> anyhow::Result<MasterKey> {
    let path = data_dir.join(MASTER_KEY_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            return MasterKey::from_base64(&text).with_context(|| format!("invalid master key in {}", path.display()));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot read the master key {}", path.display())),
    }
    std::fs::create_dir_all(data_dir).with_context(|| format!("cannot create the data dir {}", data_dir.display()))?;
    let (key, text) = MasterKey::generate();
    match write_new_private_file(&path, &text) {
        Ok(()) => {
            tracing::info!(path = %path.display(), "created a new master key; back it up with the database");
            Ok(key)
        }
        // Another process created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => data_dir_master_key(data_dir),
        Err(e) => Err(e).with_context(|| format!("cannot write the master key {}", path.display())),
    }
}

/// Writes a file that must not exist yet, readable only by its owner.
fn write_new_private_file(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}

/// Opens the token service; `issuer` is the effective public URL.
pub(crate) async fn token_service(
    store: Store,
    config: &Config,
    env: &[(String, String)],
    issuer: &str,
) -> anyhow::Result<Arc<TokenService>> {
    let master = load_master_key(config, env)?;
    let auth = &config.auth;
    let settings = TokenSettings {
        issuer: issuer.to_owned(),
        tenant_id: auth.tenant_id.clone(),
        audiences: auth.audiences.clone(),
        lifetime: Duration::from_secs(auth.token_lifetime_secs),
        clock_skew: Duration::from_secs(auth.clock_skew_secs),
        trusted_issuers: auth
            .trusted_issuers
            .iter()
            .map(|t| TrustedIssuerSettings {
                issuer: t.issuer.clone(),
                jwks_url: t.jwks_url.clone(),
                audience: t.audience.clone(),
            })
            .collect(),
    };
    let service = TokenService::open(store, master, settings).await.context("cannot open the token service")?;
    Ok(Arc::new(service))
}

/// The HTTP edge's settings for a server reached at `public_url`.
pub(crate) fn api_settings(config: &Config, public_url: &str) -> ferry_api::ApiSettings {
    ferry_api::ApiSettings {
        public_url: public_url.to_owned(),
        tenant_id: config.auth.tenant_id.clone(),
        max_page_size: config.odata.max_page_size,
        default_company: config.odata.default_company.clone(),
        throttle: config.throttle.clone(),
    }
}

/// Opens the blob store `[blobs]` names (creating a local directory; checking an S3 bucket answers).
pub(crate) async fn open_blobs(config: &Config) -> anyhow::Result<BlobStore> {
    BlobStore::open(&config.blobs)
        .await
        .with_context(|| format!("cannot open the blob store ([blobs]: {})", config.blobs.describe()))
}

/// What this node gives the import service: its work dir `<data_dir>/work` (created here) and,
/// when `[import] xslt` is on and libxslt can be loaded, the XSLT worker. Without libxslt the
/// server runs everything else and says so once.
pub(crate) fn import_runtime(config: &Config, env: &[(String, String)]) -> anyhow::Result<IntegrationRuntime> {
    let work_dir = config.data_dir.join(WORK_DIR);
    std::fs::create_dir_all(&work_dir)
        .with_context(|| format!("cannot create the import work dir {}", work_dir.display()))?;
    let xslt = if !config.import.xslt {
        Err("this server runs no XSLT transforms (import.xslt = false)".to_owned())
    } else if let Err(why) = ferry_xslt::availability() {
        tracing::warn!("{why}; everything but XSLT transforms works");
        Err(why)
    } else {
        Ok(Arc::new(xslt_runner(env)?))
    };
    Ok(IntegrationRuntime { work_dir, xslt })
}

/// Runs transforms as `<ferry> xslt-worker …`: this executable, or the one `FERRY_XSLT_WORKER` names.
fn xslt_runner(env: &[(String, String)]) -> anyhow::Result<XsltRunner> {
    let named = env
        .iter()
        .rev()
        .find(|(name, _)| name == XSLT_WORKER_VAR)
        .map(|(_, value)| PathBuf::from(value))
        .or_else(|| std::env::var_os(XSLT_WORKER_VAR).map(PathBuf::from))
        .filter(|path| !path.as_os_str().is_empty());
    let program = match named {
        Some(program) => program,
        None => {
            let exe = std::env::current_exe().context(
                "cannot find ferry's own executable to run XSLT transforms (set import.xslt = false to do without)",
            )?;
            // An in-process server (a test) whose executable is not ferry would run itself.
            if !exe.file_name().is_some_and(|name| name.to_string_lossy().starts_with("ferry")) {
                tracing::warn!(program = %exe.display(), "XSLT transforms will run `{} xslt-worker`, which may not be ferry; set {XSLT_WORKER_VAR} to the ferry binary", exe.display());
            }
            exe
        }
    };
    Ok(XsltRunner::new(program, vec![crate::XSLT_WORKER_COMMAND.into()]))
}

/// The import service over `store`: the blob store opened, the settings from `[import]`.
pub(crate) async fn import_service(
    config: &Config,
    env: &[(String, String)],
    store: Store,
    catalog: Arc<Catalog>,
) -> anyhow::Result<IntegrationService> {
    let runtime = import_runtime(config, env)?;
    let blobs = open_blobs(config).await?;
    let settings = IntegrationSettings {
        import: config.import.clone(),
        export: config.export.clone(),
        retention: config.retention.clone(),
    };
    Ok(IntegrationService::new(store, blobs, catalog, settings, runtime))
}

/// The signer of the blob URLs served under `public_url` from `blobs`: its key derived from the
/// master key (nodes sharing it accept each other's URLs), times from the store's clock, a blob
/// at most `import.max_enqueue_bytes` (what an import would accept).
pub(crate) fn blob_urls(
    config: &Config,
    env: &[(String, String)],
    public_url: &str,
    store: &Store,
    blobs: &BlobStore,
) -> anyhow::Result<ferry_api::BlobUrls> {
    let master = load_master_key(config, env)?;
    let clock = store.clock().clone();
    Ok(ferry_api::BlobUrls::new(public_url, &master, blobs.clone(), clock, config.import.max_enqueue_bytes))
}

/// Fails unless `client_id` is 1..=100 characters from `[A-Za-z0-9._-]`.
pub(crate) fn check_client_id(client_id: &str) -> anyhow::Result<()> {
    let len = client_id.chars().count();
    if !(1..=100).contains(&len) {
        bail!("client id must be 1 to 100 characters long, got {len}");
    }
    if let Some(c) = client_id.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))) {
        bail!("client id '{client_id}' contains {c:?}; only letters, digits, '.', '_' and '-' are allowed");
    }
    Ok(())
}
