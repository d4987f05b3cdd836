//! Every log line of an import run carries the id of the message it imports, on the async
//! tasks and the blocking threads of the run alike. Its own test binary: it installs the
//! process's tracing subscriber.

mod support;

use ferry_domain::MessageState;
use std::sync::{Arc, Mutex};
use support::{ATOMIC_PACKAGE_JOB, JOB};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// One recorded event: its target, its text, and the `message` field of the spans around it.
#[derive(Clone, Debug)]
struct Line {
    target: String,
    text: String,
    message_ids: Vec<String>,
}

#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Line>>>);

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

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Recorder {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut visitor = FieldValue("message", None);
        attrs.record(&mut visitor);
        if let (Some(value), Some(span)) = (visitor.1, ctx.span(id)) {
            span.extensions_mut().insert(MessageId(value));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut text = FieldValue("message", None);
        event.record(&mut text);
        let message_ids = ctx
            .event_scope(event)
            .map(|scope| scope.filter_map(|span| span.extensions().get::<MessageId>().map(|m| m.0.clone())).collect())
            .unwrap_or_default();
        let line = Line { target: event.metadata().target().to_owned(), text: text.1.unwrap_or_default(), message_ids };
        self.0.lock().unwrap().push(line);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_log_line_of_a_run_carries_its_message_id() {
    let recorder = Recorder::default();
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(recorder.clone())).unwrap();
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

    let lines = recorder.0.lock().unwrap().clone();
    // Every line of the import crate but the worker loop's own (which runs no message).
    let of_runs: Vec<&Line> =
        lines.iter().filter(|l| l.target.starts_with("ferry_import") && !l.text.starts_with("cannot claim")).collect();
    for id in &ids {
        let started = of_runs.iter().filter(|l| l.text == "import started" && l.message_ids.contains(id)).count();
        assert_eq!(started, 1, "message {id}: 'import started' carries its id: {lines:#?}");
        assert!(of_runs.iter().any(|l| l.text == "import finished" && l.message_ids.contains(id)), "{lines:#?}");
    }
    assert!(of_runs.iter().any(|l| l.text.contains("rolled back")), "the rollback is logged: {lines:#?}");
    let anonymous: Vec<&&Line> = of_runs.iter().filter(|l| l.message_ids.len() != 1).collect();
    assert!(anonymous.is_empty(), "log lines of runs without exactly one message id: {anonymous:#?}");
}
