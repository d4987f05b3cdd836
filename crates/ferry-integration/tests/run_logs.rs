//! What the traces of import runs show: every log line of a run carries the id of the message
//! it imports (on the async tasks and the blocking threads of the run alike), and an
//! all-or-nothing run never reads its source while its write transaction is open. Its own test
//! binary: it installs the process's tracing subscriber.

mod support;

use ferry_domain::MessageState;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use support::{ATOMIC_PACKAGE_JOB, JOB};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// One recorded event: its target, its text, the `message` field of the spans around it, and
/// how many all-or-nothing transactions of that message were open when it happened.
#[derive(Clone, Debug)]
struct Line {
    target: String,
    text: String,
    message_ids: Vec<String>,
    applies_open: usize,
}

#[derive(Clone, Default)]
struct Recorder {
    lines: Arc<Mutex<Vec<Line>>>,
    /// Open `all_or_nothing_apply` spans, by message id.
    applies: Arc<Mutex<HashMap<String, usize>>>,
    /// Message ids whose all-or-nothing transaction ran.
    applied: Arc<Mutex<Vec<String>>>,
}

/// The span the store opens around an all-or-nothing write transaction.
const APPLY_SPAN: &str = "all_or_nothing_apply";

/// The value of one named field.
struct FieldValue(&'static str, Option<String>);

impl Visit for FieldValue {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == self.0 {
            self.1 = Some(format!("{value:?}"));
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == self.0 {
            self.1 = Some(value.to_owned());
        }
    }
}

/// The `message` field of a span.
struct MessageId(String);

/// The message id of the run a span belongs to.
fn run_of<S: Subscriber + for<'a> LookupSpan<'a>>(ctx: &Context<'_, S>, id: &Id) -> Option<String> {
    ctx.span(id)?.scope().find_map(|span| span.extensions().get::<MessageId>().map(|m| m.0.clone()))
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Recorder {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut visitor = FieldValue("message", None);
        attrs.record(&mut visitor);
        if let (Some(value), Some(span)) = (visitor.1, ctx.span(id)) {
            span.extensions_mut().insert(MessageId(value));
        }
        if attrs.metadata().name() == APPLY_SPAN
            && let Some(run) = run_of(&ctx, id)
        {
            *self.applies.lock().unwrap().entry(run.clone()).or_default() += 1;
            self.applied.lock().unwrap().push(run);
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let is_apply = ctx.span(&id).is_some_and(|span| span.name() == APPLY_SPAN);
        if is_apply && let Some(run) = run_of(&ctx, &id) {
            *self.applies.lock().unwrap().entry(run).or_default() -= 1;
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut text = FieldValue("message", None);
        event.record(&mut text);
        let message_ids: Vec<String> = ctx
            .event_scope(event)
            .map(|scope| scope.filter_map(|span| span.extensions().get::<MessageId>().map(|m| m.0.clone())).collect())
            .unwrap_or_default();
        let applies = self.applies.lock().unwrap();
        let applies_open = message_ids.iter().map(|id| applies.get(id).copied().unwrap_or(0)).sum();
        let line = Line {
            target: event.metadata().target().to_owned(),
            text: text.1.unwrap_or_default(),
            message_ids,
            applies_open,
        };
        self.lines.lock().unwrap().push(line);
    }
}

/// The process's recorder, installed once for all tests of this binary.
fn recorder() -> &'static Recorder {
    static RECORDER: OnceLock<Recorder> = OnceLock::new();
    RECORDER.get_or_init(|| {
        let recorder = Recorder::default();
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(recorder.clone())).unwrap();
        recorder
    })
}

/// The lines of the runs of `ids`.
fn lines_of(ids: &[String]) -> Vec<Line> {
    let lines = recorder().lines.lock().unwrap();
    lines.iter().filter(|l| l.message_ids.iter().any(|id| ids.contains(id))).cloned().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_log_line_of_a_run_carries_its_message_id() {
    recorder();
    let db = ferry_store::testing::TestDatabase::sqlite();
    let h = support::harness(&db.url).await;

    // A plain file, an all-or-nothing package that rolls back, and a file that cannot be read:
    // the run logs its start and end, the rollback, and the failure.
    let package = support::package(
        &[("Customer groups", "g.csv", 1)],
        &[(
            "g.csv",
            "CUSTOMERGROUPID,DESCRIPTION\nL1,this description is far longer than the sixty characters allowed\n",
        )],
    );
    let runs = [
        (JOB, Some("Customer groups"), b"CUSTOMERGROUPID,DESCRIPTION\nL2,fine\n".to_vec(), MessageState::Processed),
        (ATOMIC_PACKAGE_JOB, None, package, MessageState::ProcessedWithErrors),
        (JOB, Some("Customer groups"), b"DESCRIPTION\nno key\n".to_vec(), MessageState::PreProcessingError),
    ];
    let mut ids = Vec::new();
    for (job, entity, body, state) in runs {
        let id = h.enqueue(job, entity, body).await;
        assert_eq!(h.wait(&id).await.message.state, state);
        ids.push(id);
    }
    h.stop().await;

    let lines = recorder().lines.lock().unwrap().clone();
    // Every line of the import crate but the worker loop's own (which runs no message).
    let of_runs: Vec<&Line> = lines
        .iter()
        .filter(|l| l.target.starts_with("ferry_integration") && !l.text.starts_with("cannot claim"))
        .collect();
    for id in &ids {
        let started = of_runs.iter().filter(|l| l.text == "import started" && l.message_ids.contains(id)).count();
        assert_eq!(started, 1, "message {id}: 'import started' carries its id: {lines:#?}");
        assert!(of_runs.iter().any(|l| l.text == "import finished" && l.message_ids.contains(id)), "{lines:#?}");
    }
    assert!(of_runs.iter().any(|l| l.text.contains("rolled back")), "the rollback is logged: {lines:#?}");
    let anonymous: Vec<&&Line> = of_runs.iter().filter(|l| l.message_ids.len() != 1).collect();
    assert!(anonymous.is_empty(), "log lines of runs without exactly one message id: {anonymous:#?}");
}

/// An all-or-nothing package of two entities: every batch of both files is read before the
/// transaction that writes them opens (before, each entity's file was read a second time inside
/// its transaction, holding the write lock all along).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_or_nothing_runs_read_nothing_while_their_transaction_is_open() {
    recorder();
    let db = ferry_store::testing::TestDatabase::sqlite();
    let h = support::harness(&db.url).await;
    let groups: String = (0..300).map(|n| format!("A{n:03},Group {n}\n")).collect();
    let customers: String = (0..300).map(|n| format!("CA{n:03},Customer {n},A{:03}\n", n % 7)).collect();
    let groups = format!("CUSTOMERGROUPID,DESCRIPTION\n{groups}");
    let customers = format!("CUSTOMERACCOUNT,ORGANIZATIONNAME,CUSTOMERGROUPID\n{customers}");
    let package = support::package(
        &[("Customer groups", "g.csv", 1), ("Customers V3", "c.csv", 2)],
        &[("g.csv", groups.as_str()), ("c.csv", customers.as_str())],
    );
    let id = h.enqueue(ATOMIC_PACKAGE_JOB, None, package).await;
    let view = h.wait(&id).await;
    assert_eq!(view.message.state, MessageState::Processed, "{:?}", view.reason);
    h.stop().await;

    let ids = [id.clone()];
    assert!(recorder().applied.lock().unwrap().contains(&id), "the rows were written in an {APPLY_SPAN} span");
    let reads: Vec<Line> = lines_of(&ids).into_iter().filter(|l| l.text == "source batch read").collect();
    assert!(reads.len() >= 2 * 300 / 7, "every batch is traced: {}", reads.len());
    let under_lock: Vec<&Line> = reads.iter().filter(|l| l.applies_open > 0).collect();
    assert!(
        under_lock.is_empty(),
        "{} of {} batches were read inside the write transaction",
        under_lock.len(),
        reads.len()
    );
}
