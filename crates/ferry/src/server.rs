//! The server: [`RunningServer::start`] runs every start-up step and serves
//! HTTP (and runs the import workers and the replication engine) on background
//! tasks until [`RunningServer::stop`] (or drop) asks it to shut down
//! gracefully. `ferry serve` and the end-to-end tests both use it.

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use ferry_config::Config;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::boot;
use ferry_domain::{SharedClock, SystemClock};
use ferry_replicate::{EngineSettings, Replication, ReplicationEngine};

/// How long a graceful shutdown waits for in-flight requests before giving up on them.
const DRAIN_LIMIT: Duration = Duration::from_secs(30);
/// How long a graceful shutdown waits for running imports; the rest are abandoned (their leases
/// expire and they run again, idempotently). Shorter than [`DRAIN_LIMIT`], which covers it.
const IMPORT_GRACE: Duration = Duration::from_secs(20);

/// A server serving HTTP on a background task.
pub struct RunningServer {
    /// The address the server listens on (the real port when `listen` had port 0).
    pub addr: SocketAddr,
    /// The URL clients reach the server at; the issuer of its tokens.
    pub public_url: String,
    /// Signs the blob URLs this server serves (`/blobs/…`).
    blob_urls: ferry_api::BlobUrls,
    /// Dropping or sending on it starts a graceful shutdown.
    shutdown: Option<oneshot::Sender<()>>,
    join: JoinHandle<std::io::Result<()>>,
}

impl std::fmt::Debug for RunningServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningServer").field("addr", &self.addr).field("public_url", &self.public_url).finish()
    }
}

impl RunningServer {
    /// Runs the start-up sequence and starts serving. `env` is the environment
    /// the configuration was loaded from (it serves `master_key = "env:VAR"`).
    /// Logging is not set up here: that is the caller's business.
    pub async fn start(config: Config, env: Vec<(String, String)>) -> anyhow::Result<RunningServer> {
        RunningServer::start_with_clock(config, env, SystemClock::shared()).await
    }

    /// Like [`RunningServer::start`], with every time the server writes or compares against
    /// read from `clock` (tests move a fake one forward).
    pub async fn start_with_clock(
        config: Config,
        env: Vec<(String, String)>,
        clock: SharedClock,
    ) -> anyhow::Result<RunningServer> {
        // Another part of the process (or an earlier server) may have installed it already.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        tracing::info!(summary = %config.redacted_summary().replace('\n', "; "), "starting ferry");

        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("cannot create the data dir {}", config.data_dir.display()))?;
        let catalog = Arc::new(boot::build_catalog(config.entities_dir.as_deref())?);
        tracing::info!(entities = catalog.entities().len(), enums = catalog.enums().len(), "entity catalog built");

        let store = boot::open_store(&config, clock).await?;
        let report = store.prepare_entities(catalog.clone()).await.context("cannot prepare the entity tables")?;
        if !report.tables_created.is_empty() {
            tracing::info!(tables = ?report.tables_created, "created entity tables");
        }
        if !report.columns_added.is_empty() {
            tracing::info!(columns = ?report.columns_added, "added entity columns");
        }
        boot::apply_declared_apps(&store, &config.apps).await?;

        let listener =
            TcpListener::bind(config.listen).await.with_context(|| format!("cannot listen on {}", config.listen))?;
        let addr = listener.local_addr().context("cannot read the listening address")?;
        let public_url = effective_public_url(&config, addr);

        let tokens = boot::token_service(store.clone(), &config, &env, &public_url).await?;
        let master = Arc::new(boot::load_master_key(&config, &env)?);
        let engine = ReplicationEngine::new(
            store.clone(),
            catalog.clone(),
            master.clone(),
            env.clone(),
            EngineSettings::default(),
        );
        let replication =
            Arc::new(Replication::new(store.clone(), catalog.clone(), master, engine.clone(), env.clone()));
        // Before the engine starts, so it never runs a profile as it was before the config changed it.
        crate::profiles::apply_declared(&replication, &config.profiles).await?;

        let import = boot::import_service(&config, &env, store.clone(), catalog.clone()).await?;
        tracing::info!(blobs = %import.blobs().describe(), xslt = import.runs_xslt(), "import service ready");
        let blob_urls = boot::blob_urls(&config, &env, &public_url, &store, import.blobs())?;
        // Before the workers start, so they never import with a definition the config changed.
        crate::imports::apply_declared(&import, &config.projects, &config.jobs).await?;

        engine.start();
        let workers = import.start_workers(&node_name());
        let metrics = ferry_api::install_metrics();
        let state =
            ferry_api::ApiState::new(store.clone(), catalog, tokens, boot::api_settings(&config, &public_url), metrics)
                .with_replication(replication)
                .with_import(import)
                .with_blob_urls(blob_urls.clone());
        let app = ferry_api::app(state);

        let (shutdown, requested) = oneshot::channel::<()>();
        let join = tokio::spawn(async move {
            // A send and a dropped sender both mean "shut down"; the import workers stop at the
            // same time as the listener (or when serving fails, which drops `stop_workers`).
            let (stop_workers, workers_stopping) = oneshot::channel::<()>();
            let signal = async move {
                let _ = requested.await;
                let _ = stop_workers.send(());
            };
            let imports_done = async move {
                let _ = workers_stopping.await;
                workers.shutdown(IMPORT_GRACE).await;
            };
            let serve = axum::serve(listener, app.into_make_service()).with_graceful_shutdown(signal);
            let (result, ()) = tokio::join!(serve.into_future(), imports_done);
            engine.shutdown().await;
            store.close().await;
            result
        });
        tracing::info!("ferry listening on http://{addr} (public url {public_url})");
        Ok(RunningServer { addr, public_url, blob_urls, shutdown: Some(shutdown), join })
    }

    /// The signer of this server's blob URLs (what the DMF package actions hand out), for tests
    /// and in-process tools.
    pub fn blob_urls(&self) -> &ferry_api::BlobUrls {
        &self.blob_urls
    }

    /// Shuts down gracefully: stops accepting and claiming imports, lets in-flight
    /// requests (for up to 30 seconds) and imports (up to 20 seconds) finish, then
    /// closes the store. Problems are logged.
    pub async fn stop(self) {
        if let Err(e) = self.shutdown().await {
            tracing::error!(error = %format!("{e:#}"), "ferry did not shut down cleanly");
        }
    }

    /// Like [`RunningServer::stop`], but answers how the server ended.
    pub(crate) async fn shutdown(mut self) -> anyhow::Result<()> {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        match tokio::time::timeout(DRAIN_LIMIT, &mut self.join).await {
            Ok(ended) => ended.context("the server task failed")?.context("the server failed"),
            Err(_) => {
                self.join.abort();
                anyhow::bail!("requests were still running {} s after shutdown began", DRAIN_LIMIT.as_secs())
            }
        }
    }

    /// Serves until SIGTERM or Ctrl-C, then shuts down gracefully.
    pub(crate) async fn run_until(mut self, mut signals: ShutdownSignals) -> anyhow::Result<()> {
        tokio::select! {
            signal = signals.recv() => {
                tracing::info!("{signal} received, shutting down");
            }
            ended = &mut self.join => {
                ended.context("the server task failed")?.context("the server failed")?;
                anyhow::bail!("the server stopped unexpectedly");
            }
        }
        self.shutdown().await?;
        tracing::info!("ferry stopped");
        Ok(())
    }
}

/// This node's name in the import workers' leases: host name and process id.
fn node_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "ferry".to_owned());
    format!("{host}:{}", std::process::id())
}

/// The configured public URL, with the real port when it was derived from a
/// `listen` address with port 0.
fn effective_public_url(config: &Config, addr: SocketAddr) -> String {
    let derived = format!("http://{}", config.listen);
    if config.listen.port() == 0 && config.public_url == derived {
        format!("http://{}", SocketAddr::new(config.listen.ip(), addr.port()))
    } else {
        config.public_url.clone()
    }
}

/// SIGTERM and Ctrl-C (SIGINT) handlers, installed before start-up so that a
/// signal arriving right after the "listening" line is never missed.
pub(crate) struct ShutdownSignals {
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
}

impl ShutdownSignals {
    pub(crate) fn install() -> anyhow::Result<ShutdownSignals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(ShutdownSignals {
                terminate: signal(SignalKind::terminate()).context("cannot handle SIGTERM")?,
                interrupt: signal(SignalKind::interrupt()).context("cannot handle SIGINT")?,
            })
        }
        #[cfg(not(unix))]
        Ok(ShutdownSignals {})
    }

    /// Waits for the next signal and answers which came.
    pub(crate) async fn recv(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.terminate.recv() => "SIGTERM",
                _ = self.interrupt.recv() => "Ctrl-C",
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            "Ctrl-C"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(listen: &str, public_url: Option<&str>) -> Config {
        let overrides = ferry_config::Overrides {
            listen: Some(listen.to_owned()),
            public_url: public_url.map(str::to_owned),
            ..Default::default()
        };
        ferry_config::load(None, &[], &overrides).expect("valid config")
    }

    #[test]
    fn a_derived_public_url_gets_the_real_port() {
        let real: SocketAddr = "127.0.0.1:41234".parse().unwrap();
        assert_eq!(effective_public_url(&config("127.0.0.1:0", None), real), "http://127.0.0.1:41234");
        assert_eq!(effective_public_url(&config("127.0.0.1:8080", None), real), "http://127.0.0.1:8080");
        let explicit = config("127.0.0.1:0", Some("https://ferry.example.com"));
        assert_eq!(effective_public_url(&explicit, real), "https://ferry.example.com");
    }
}
