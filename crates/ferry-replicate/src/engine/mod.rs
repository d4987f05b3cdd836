//! The replication engine. A supervisor takes a lease per active profile (so each profile runs
//! on exactly one node, and another node takes over when that node dies) and runs one task per
//! leased profile. A profile task creates or evolves the target schema, copies each entity in
//! key-ordered chunks as of one change version, then follows every change after it — woken by
//! commits, not by a timer. Each batch and its checkpoint commit in one target transaction.

mod failures;
mod status;
mod task;

use chrono::{DateTime, Utc};
use ferry_model::Catalog;
use ferry_secrets::MasterKey;
use ferry_store::{Store, StoreError, StoredProfile};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

/// Limits and timings of the engine.
#[derive(Clone, Debug)]
pub struct EngineSettings {
    /// This node's name in leases.
    pub node_id: String,
    pub lease_ttl: Duration,
    /// Rows per initial-copy chunk.
    pub chunk_rows: usize,
    /// Changes per delta batch.
    pub batch_changes: usize,
    /// Longest wait between looks for work when no commit wakes the task.
    pub idle_wait: Duration,
    /// Longest pause before reconnecting to a target that is down.
    pub reconnect_max: Duration,
}

impl Default for EngineSettings {
    fn default() -> EngineSettings {
        EngineSettings {
            node_id: uuid::Uuid::new_v4().to_string(),
            lease_ttl: Duration::from_secs(15),
            chunk_rows: 5_000,
            batch_changes: 5_000,
            idle_wait: Duration::from_secs(5),
            reconnect_max: Duration::from_secs(30),
        }
    }
}

struct Running {
    updated_at: DateTime<Utc>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

struct Inner {
    store: Store,
    catalog: Arc<Catalog>,
    master: Arc<MasterKey>,
    env: Arc<Vec<(String, String)>>,
    settings: EngineSettings,
    profiles_changed: Notify,
    wake: Notify,
    shutdown: watch::Sender<bool>,
    running: Mutex<HashMap<String, Running>>,
    supervisor: Mutex<Option<JoinHandle<()>>>,
}

/// Handle to the engine; cheap to clone.
#[derive(Clone)]
pub struct ReplicationEngine {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ReplicationEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplicationEngine").field("node_id", &self.inner.settings.node_id).finish_non_exhaustive()
    }
}

fn lease_name(profile_id: &str) -> String {
    format!("replication:{profile_id}")
}

impl ReplicationEngine {
    pub fn new(
        store: Store,
        catalog: Arc<Catalog>,
        master: Arc<MasterKey>,
        env: Vec<(String, String)>,
        settings: EngineSettings,
    ) -> ReplicationEngine {
        ReplicationEngine {
            inner: Arc::new(Inner {
                store,
                catalog,
                master,
                env: Arc::new(env),
                settings,
                profiles_changed: Notify::new(),
                wake: Notify::new(),
                shutdown: watch::channel(false).0,
                running: Mutex::new(HashMap::new()),
                supervisor: Mutex::new(None),
            }),
        }
    }

    /// Starts the supervisor (once).
    pub fn start(&self) {
        let mut supervisor = self.inner.supervisor.lock().expect("supervisor lock");
        if supervisor.is_none() {
            *supervisor = Some(tokio::spawn(supervise(self.inner.clone())));
        }
    }

    /// Profiles were created, changed or (de)activated: look again now.
    pub fn profiles_changed(&self) {
        self.inner.profiles_changed.notify_one();
    }

    /// Wakes every profile task (e.g. to retry failed records now).
    pub fn wake(&self) {
        self.inner.wake.notify_waiters();
    }

    /// Stops every profile task after its current batch and releases its lease.
    pub async fn shutdown(&self) {
        let _ = self.inner.shutdown.send(true);
        self.inner.profiles_changed.notify_one();
        let supervisor = self.inner.supervisor.lock().expect("supervisor lock").take();
        if let Some(task) = supervisor {
            let _ = task.await;
        }
    }
}

async fn supervise(inner: Arc<Inner>) {
    let mut shutdown = inner.shutdown.subscribe();
    loop {
        if let Err(e) = reconcile(&inner).await {
            tracing::warn!(error = ?e, "replication supervisor could not read profiles");
        }
        tokio::select! {
            _ = inner.profiles_changed.notified() => {}
            _ = tokio::time::sleep(inner.settings.lease_ttl / 3) => {}
            _ = shutdown.changed() => {}
        }
        if *shutdown.borrow() {
            break;
        }
    }
    let running: Vec<(String, Running)> = inner.running.lock().expect("running lock").drain().collect();
    for (id, run) in running {
        let _ = run.stop.send(true);
        let _ = run.task.await;
        let _ = inner.store.release_lease(&lease_name(&id), &inner.settings.node_id).await;
    }
}

/// Starts, restarts and stops profile tasks to match the stored profiles and leases.
async fn reconcile(inner: &Arc<Inner>) -> Result<(), StoreError> {
    let profiles = inner.store.list_profiles().await?;
    let ttl = inner.settings.lease_ttl;
    let mut wanted: HashMap<String, StoredProfile> = HashMap::new();
    for stored in profiles {
        let id = stored.profile.id.clone();
        if stored.profile.state.runs()
            && inner.store.acquire_lease(&lease_name(&id), &inner.settings.node_id, ttl).await?
        {
            wanted.insert(id, stored);
        }
    }
    let mut running = inner.running.lock().expect("running lock");
    let stale: Vec<String> = running
        .iter()
        .filter(|(id, run)| {
            wanted.get(*id).is_none_or(|r| r.profile.updated_at != run.updated_at) || run.task.is_finished()
        })
        .map(|(id, _)| id.clone())
        .collect();
    for id in stale {
        if let Some(run) = running.remove(&id) {
            let _ = run.stop.send(true);
            // The task ends after its current batch; its lease is released below if not wanted.
            if !wanted.contains_key(&id) {
                let store = inner.store.clone();
                let node = inner.settings.node_id.clone();
                tokio::spawn(async move {
                    let _ = run.task.await;
                    let _ = store.release_lease(&lease_name(&id), &node).await;
                });
            }
        }
    }
    for (id, stored) in wanted {
        if running.contains_key(&id) {
            continue;
        }
        let (stop, stopped) = watch::channel(false);
        let updated_at = stored.profile.updated_at;
        let task = tokio::spawn(task::run_profile(inner.clone(), stored, stopped));
        running.insert(id, Running { updated_at, stop, task });
    }
    Ok(())
}
