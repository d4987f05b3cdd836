//! Group commit for SQLite's single writer. Concurrent writes share one transaction, each inside
//! a savepoint of its own (a write that fails undoes only itself), and one commit — one fsync of
//! the WAL — makes the whole group durable. A write returns only after the commit that holds it
//! succeeded, so "answered" still means "durable".
//!
//! Writes take the writer in arrival order (a fair mutex); the first of a group begins the
//! transaction. After its work each write wakes the committer task, which then queues for the
//! writer like any write: the writes queued before it join the group, those after it start the
//! next one. Under load a group holds as many writes as arrive during one commit; a lone write
//! waits for one task hand-over more than before.
//!
//! A write cancelled half way (its future dropped inside its savepoint) is rolled back to its
//! savepoint by whoever takes the writer next, before anything else runs. A write that succeeded
//! leaves its savepoint open: the next one nests inside it (a rollback to the name undoes only
//! the innermost), and the commit releases them all. The `SAVEPOINT` goes in front of the
//! write's first statement, in the same request ([`Conn::execute_deferred`]); a write that sent
//! no statement has no savepoint and nothing to undo.

use crate::checkpointer::Checkpointer;
use crate::error::{StoreError, StoreResult};
use ferry_sql::{Conn, Pool, SqlError, SqlErrorKind};
use std::sync::Arc;
use tokio::sync::{Mutex, MutexGuard, mpsc, watch};

/// The savepoint every write of a group runs in.
const SAVEPOINT: &str = "ferry_write";
const SAVEPOINT_STATEMENT: &str = "SAVEPOINT ferry_write";

/// How a group ended: `None` committed, else the failure every member reports.
type GroupEnd = Option<(SqlErrorKind, Arc<str>)>;

pub(crate) struct CommitGroup {
    shared: Arc<Shared>,
    /// Wakes the committer; holds at most one wake-up (one is enough to commit what is open).
    wake: mpsc::Sender<()>,
    checkpointer: Checkpointer,
}

struct Shared {
    pool: Pool,
    state: Mutex<State>,
}

/// The writer's state, behind the fair mutex.
#[derive(Default)]
struct State {
    /// The open transaction and where its end is announced.
    open: Option<(Conn, watch::Sender<Option<GroupEnd>>)>,
    /// A write was dropped inside its savepoint: roll it back before anything else.
    abandoned: bool,
}

impl CommitGroup {
    /// Group commits on `pool` (SQLite's one writer connection) and tells `checkpoints` after
    /// each; spawns the committer task, which ends when the group is dropped.
    pub(crate) fn new(pool: Pool, checkpoints: Pool) -> CommitGroup {
        let shared = Arc::new(Shared { pool, state: Mutex::new(State::default()) });
        let (wake, woken) = mpsc::channel(1);
        let checkpointer = Checkpointer::start(checkpoints);
        tokio::spawn(commit_loop(shared.clone(), woken, checkpointer.clone()));
        CommitGroup { shared, wake, checkpointer }
    }

    /// Stops checkpointing (the store is closing).
    pub(crate) async fn close(&self) {
        self.checkpointer.close().await;
    }

    /// Runs `op` inside the open group's transaction (beginning one if none is open) and waits
    /// until that transaction committed.
    pub(crate) async fn write<T>(&self, op: impl AsyncFnOnce(&mut Conn) -> StoreResult<T>) -> StoreResult<T> {
        let (value, commit) = self.write_committing(op).await?;
        commit.wait().await?;
        Ok(value)
    }

    /// Runs `op` like [`write`](Self::write), but answers as soon as its work is done, with the
    /// commit under way: the caller may prepare its next write while the group commits, and
    /// learns from [`CommitWait::wait`] whether and when this one is durable.
    pub(crate) async fn write_committing<T>(
        &self,
        op: impl AsyncFnOnce(&mut Conn) -> StoreResult<T>,
    ) -> StoreResult<(T, CommitWait)> {
        let mut state = self.shared.state.lock().await;
        repair(&mut state).await;
        if state.open.is_none() {
            let conn = self.shared.pool.begin().await?;
            state.open = Some((conn, watch::channel(None).0));
        }
        let ended = state.open.as_ref().map(|(_, end)| end.subscribe()).expect("a group is open");
        let mut member = Member::enter(state).await?;
        let result = op(member.conn()).await;
        let state = member.leave(result.is_ok()).await?;
        // Still holding the writer: the wake-up cannot be lost to a cancellation.
        let _ = self.wake.try_send(());
        drop(state);
        Ok((result?, CommitWait(ended)))
    }
}

/// The commit of the group a write joined. Dropping it does not stop the commit (the committer
/// was woken when the write ended); it only gives up learning how it went.
pub(crate) struct CommitWait(watch::Receiver<Option<GroupEnd>>);

impl CommitWait {
    /// Answers once the group committed, or with the failure that rolled it back.
    pub(crate) async fn wait(mut self) -> StoreResult<()> {
        let end = self
            .0
            .wait_for(Option::is_some)
            .await
            .map_err(|_| group_failed(SqlErrorKind::Other, "the writer stopped"))?;
        match end.clone().flatten() {
            None => Ok(()),
            Some((kind, message)) => Err(group_failed(kind, &message)),
        }
    }
}

/// One write inside the open group, holding the writer. Dropped before [`Member::leave`] (the
/// caller's future was cancelled), it marks its savepoint for rollback.
struct Member<'a> {
    state: Option<MutexGuard<'a, State>>,
}

impl<'a> Member<'a> {
    async fn enter(mut state: MutexGuard<'a, State>) -> StoreResult<Member<'a>> {
        let conn = &mut state.open.as_mut().expect("a group is open").0;
        if let Err(e) = conn.execute_deferred(SAVEPOINT_STATEMENT).await {
            fail_group(&mut state, &e);
            return Err(e.into());
        }
        Ok(Member { state: Some(state) })
    }

    fn conn(&mut self) -> &mut Conn {
        &mut self.state.as_mut().expect("member holds the writer").open.as_mut().expect("a group is open").0
    }

    /// Keeps the write's work (`keep`) or undoes it; answers the writer. A kept write's
    /// savepoint stays open (the next write's nests inside it, and the commit releases them
    /// all): one statement less per write. An undone one is rolled back and released — the
    /// innermost savepoint of that name, its own.
    async fn leave(mut self, keep: bool) -> StoreResult<MutexGuard<'a, State>> {
        let mut state = self.state.take().expect("member holds the writer");
        let conn = &mut state.open.as_mut().expect("a group is open").0;
        if !conn.settle_deferred() || keep {
            return Ok(state);
        }
        let released = match conn.execute(&format!("ROLLBACK TO SAVEPOINT {SAVEPOINT}"), ()).await {
            Ok(_) => conn.execute(&format!("RELEASE SAVEPOINT {SAVEPOINT}"), ()).await,
            Err(e) => Err(e),
        };
        if let Err(e) = released {
            fail_group(&mut state, &e);
            return Err(e.into());
        }
        Ok(state)
    }
}

impl Drop for Member<'_> {
    fn drop(&mut self) {
        if let Some(state) = &mut self.state {
            state.abandoned = true;
        }
    }
}

/// Rolls back a write abandoned inside its savepoint; if that fails, the whole group.
async fn repair(state: &mut State) {
    if !std::mem::take(&mut state.abandoned) {
        return;
    }
    let Some((conn, _)) = state.open.as_mut() else { return };
    if !conn.settle_deferred() {
        return;
    }
    let undone = match conn.execute(&format!("ROLLBACK TO SAVEPOINT {SAVEPOINT}"), ()).await {
        Ok(_) => conn.execute(&format!("RELEASE SAVEPOINT {SAVEPOINT}"), ()).await,
        Err(e) => Err(e),
    };
    if let Err(e) = undone {
        tracing::warn!(error = %e, "cannot roll back an abandoned write; rolling back its whole group");
        fail_group(state, &e);
    }
}

/// Rolls back the open group (dropping the transaction rolls it back) and tells its members.
fn fail_group(state: &mut State, error: &SqlError) {
    if let Some((_, end)) = state.open.take() {
        let _ = end.send(Some(Some((error.kind, Arc::from(format!("the write's group failed: {}", error.message))))));
    }
}

fn group_failed(kind: SqlErrorKind, message: &str) -> StoreError {
    SqlError { kind, message: message.to_owned(), source: None }.into()
}

/// Commits the open group whenever woken: by then every write queued before the committer has
/// joined it.
async fn commit_loop(shared: Arc<Shared>, mut woken: mpsc::Receiver<()>, checkpointer: Checkpointer) {
    while woken.recv().await.is_some() {
        let mut state = shared.state.lock().await;
        repair(&mut state).await;
        let Some((conn, end)) = state.open.take() else { continue };
        let outcome = match conn.commit().await {
            Ok(()) => {
                checkpointer.committed();
                None
            }
            Err(e) => {
                tracing::warn!(error = %e, "a group commit failed; its writes report the failure");
                Some((e.kind, Arc::from(e.message.as_str())))
            }
        };
        let _ = end.send(Some(outcome));
    }
}
