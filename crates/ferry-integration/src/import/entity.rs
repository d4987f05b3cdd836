//! The writing half of an import of one entity: takes staged batches, checks lookups, upserts in
//! batched transactions (isolating a row the database refuses), records every rejected row and
//! writes the rejected-rows file. All-or-nothing imports validate every entity first, keeping
//! the valid rows in a spill file, and write them all at the end in one transaction
//! (`super::apply_spills`). The last batch of a message can instead go in with the message's end,
//! in one transaction (a [`Tail`]).

use super::source::{ErrorDraft, Rejected, SourceEnd, SourceEvent, SourceSpec, WrittenRows, read_source};
use super::spill::SpillWriter;
use super::spool::{Spool, Spooled};
use super::validate::describe_key;
use crate::run::{RunError, RunState};
use ferry_domain::{ErrorRecord, NewRow, Stage};
use ferry_formats::SourceRecord;
use ferry_formats::writer::RecordWriter;
use ferry_store::{BatchCounts, Committing, INLINE_FILE_MAX, InlineFile, StoreError};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use tokio::sync::mpsc;

/// What importing one entity's source did.
#[derive(Debug, Default)]
pub(crate) struct EntityOutcome {
    pub read: i64,
    pub staged: i64,
    pub staging_errors: i64,
    pub target_errors: i64,
    pub counts: BatchCounts,
    pub fatal: Option<String>,
    pub ignored_columns: Vec<String>,
    /// The valid rows, kept for the final apply of an all-or-nothing import.
    pub spill: Option<tempfile::TempPath>,
    /// The last batch, not written yet ([`WriteMode::BatchedTail`]).
    pub tail: Option<Tail>,
}

/// The last batch of a message's last entity, validated and not written: it goes in with the
/// message's end, in one transaction. Its rows are not counted in the entity's outcome yet.
#[derive(Debug)]
pub(crate) struct Tail {
    pub rows: Vec<NewRow>,
    pub mapped_fields: Vec<usize>,
    sources: Vec<(u64, SourceRecord)>,
    columns: Vec<String>,
    pub spec: SourceSpec,
    position: i64,
}

impl EntityOutcome {
    pub fn rejected(&self) -> i64 {
        self.staging_errors + self.target_errors
    }
}

/// How the batches are written.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum WriteMode {
    /// One transaction per batch.
    Batched,
    /// One transaction per batch, but the last batch — when the entity rejected no row on the
    /// way, so no rejected-rows file is open — is handed back as the outcome's [`Tail`].
    BatchedTail,
    /// Validated only and kept in a spill file (an all-or-nothing import writes at the end).
    Spill,
}

pub(crate) async fn import_entity(
    run: &RunState,
    spec: SourceSpec,
    position: i64,
    mode: WriteMode,
) -> Result<EntityOutcome, RunError> {
    let scratch = |what: &str| {
        tempfile::NamedTempFile::new_in(&run.ctx.runtime.work_dir)
            .map(|f| f.into_temp_path())
            .map_err(|e| RunError::Transient(format!("cannot create a {what} file: {e}")))
    };
    let staging = Spool::new(run.ctx.runtime.work_dir.clone(), INLINE_FILE_MAX);
    let mut spill = match mode {
        WriteMode::Spill => {
            let path = scratch("spill")?;
            let writer = SpillWriter::create(&path)
                .map_err(|e| RunError::Transient(format!("cannot write a spill file: {e}")))?;
            Some((path, writer))
        }
        WriteMode::Batched | WriteMode::BatchedTail => None,
    };
    // One batch waits while one is written and one is read: memory stays at about three batches.
    let (tx, mut rx) = mpsc::channel::<SourceEvent>(1);
    // Written batches go back to the reader to be freed; at most one waits.
    let (written, to_free) = std::sync::mpsc::sync_channel::<WrittenRows>(1);
    let cancel = Arc::new(AtomicBool::new(false));
    let reader = {
        let spec = spec.clone();
        let cancel = cancel.clone();
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || span.in_scope(|| read_source(spec, staging, tx, to_free, cancel)))
    };
    let _stop_reader = StopOnDrop(cancel);
    let entity = spec.entity.clone();
    let mut outcome = EntityOutcome::default();
    let mut rejected_file: Option<RejectedFile> = None;

    let mut end: Option<SourceEnd> = None;
    // An event already received, to handle next.
    let mut next: Option<SourceEvent> = None;
    // The batch written last, while its commit may be under way: the next batch is read and its
    // lookups checked meanwhile, and it is settled (durable, counted) before the next is written.
    let mut committing: Option<Committing<BatchCounts>> = None;
    // Whether a batch met stored rows: until one does, PostgreSQL copies a batch before it reads.
    let mut met_stored = false;
    loop {
        let Some(event) = (match next.take() {
            Some(event) => Some(event),
            None => rx.recv().await,
        }) else {
            break;
        };
        run.check_lease()?;
        let batch = match event {
            SourceEvent::Batch(b) => b,
            SourceEvent::End(e) => {
                end = Some(e);
                break;
            }
        };
        outcome.read += batch.read as i64;
        // The reader sends full batches until the last; a short one is followed by the end.
        let short = batch.rows.len() < spec.batch_rows && batch.rejected.len() < spec.batch_rows;
        let mut errors: Vec<ErrorRecord> = Vec::new();
        for Rejected { record, errors: drafts } in batch.rejected {
            outcome.staging_errors += 1;
            if let Some(record) = &record {
                rejected_file
                    .get_or_insert_with(|| RejectedFile::new(run, &spec, position))
                    .write(&batch.columns, record);
            }
            errors.extend(drafts.into_iter().map(|d| run.error_record(&entity.label, d)));
        }
        outcome.staged += batch.rows.len() as i64;
        // Rows as the store takes them, beside their source rows and records.
        let (mut sources, mut rows): (Vec<(u64, SourceRecord)>, Vec<NewRow>) = batch
            .rows
            .into_iter()
            .map(|(s, record)| ((s.row, record), NewRow { company: s.company, values: s.values }))
            .unzip();
        // Lookups to other entities, checked for the whole batch at once.
        let mut misses = run.unresolved(&entity, &rows, run.ctx.store.missing_lookups(&entity, &rows).await?);
        if let Some(written) = committing.take() {
            let counts = written.durable().await?;
            met_stored |= counts.updated + counts.unchanged > 0;
            outcome.counts += counts;
            if !misses.is_empty() {
                // Looked up before the batch before committed, which may hold them: again.
                misses = run.unresolved(&entity, &rows, run.ctx.store.missing_lookups(&entity, &rows).await?);
            }
        }
        if !misses.is_empty() {
            let mut by_row: BTreeMap<usize, Vec<ErrorDraft>> = BTreeMap::new();
            for miss in misses {
                let row = &rows[miss.row];
                let field = &entity.fields[miss.field].name;
                by_row.entry(miss.row).or_default().push(ErrorDraft {
                    stage: Stage::Target,
                    row: Some(sources[miss.row].0),
                    key: Some(describe_key(&entity, &row.company, &row.values)),
                    field: Some(field.clone()),
                    code: "lookup_missing".into(),
                    message: format!("{field}: {} does not exist in {}", miss.value.describe(), miss.target),
                });
            }
            for (i, drafts) in by_row.into_iter().rev() {
                rows.remove(i);
                let (_, record) = sources.remove(i);
                outcome.target_errors += 1;
                rejected_file
                    .get_or_insert_with(|| RejectedFile::new(run, &spec, position))
                    .write(&batch.columns, &record);
                errors.extend(drafts.into_iter().map(|d| run.error_record(&entity.label, d)));
            }
        }
        match &mut spill {
            Some((_, writer)) => {
                let fields = batch.mapped_fields.clone();
                writer
                    .write_batch(&fields, &rows)
                    .map_err(|e| RunError::Transient(format!("cannot write a spill file: {e}")))?;
                run.will_write(&entity, &rows);
            }
            None => {
                // This batch's rejected rows go in with its rows.
                run.store_errors(std::mem::take(&mut errors)).await?;
                if mode == WriteMode::BatchedTail && short && rejected_file.is_none() {
                    match rx.recv().await {
                        Some(SourceEvent::End(e)) => {
                            let (mapped_fields, columns) = (batch.mapped_fields, batch.columns);
                            let spec = spec.clone();
                            outcome.tail = Some(Tail { rows, mapped_fields, sources, columns, spec, position });
                            end = Some(e);
                            break;
                        }
                        following => next = following,
                    }
                }
                let (counts, refused) = write_batch(
                    run,
                    &spec,
                    &batch.mapped_fields,
                    rows,
                    sources,
                    &mut errors,
                    Some(&written),
                    !met_stored,
                )
                .await?;
                committing = Some(counts);
                outcome.target_errors += refused.len() as i64;
                for record in refused {
                    rejected_file
                        .get_or_insert_with(|| RejectedFile::new(run, &spec, position))
                        .write(&batch.columns, &record);
                }
            }
        }
        run.store_errors(errors).await?;
        run.add_progress(super::counters_of(&outcome));
    }
    if let Some(written) = committing {
        outcome.counts += written.durable().await?;
    }
    let _ = reader.await;
    if let Some((path, writer)) = spill {
        writer.finish().map_err(|e| RunError::Transient(format!("cannot write a spill file: {e}")))?;
        outcome.spill = Some(path);
    }
    let mut staged = None;
    if let Some(end) = end {
        outcome.ignored_columns = end.ignored_columns;
        staged = end.staging;
        if let Some(draft) = end.fatal {
            outcome.fatal = Some(match draft.row {
                Some(row) => format!("{}: row {row}: {}", entity.label, draft.message),
                None => format!("{}: {}", entity.label, draft.message),
            });
            let record = run.error_record(&entity.label, draft);
            run.store_errors(vec![record]).await?;
        }
    }
    if let Some(file) = rejected_file {
        file.finish(run).await?;
    }
    // The staged rows: a small file goes into the database with the message's end.
    let key = super::staging_blob_key(&run.message.id, position);
    match staged {
        Some(Spooled::Memory(content)) => {
            run.record_file(InlineFile { key, message_id: run.message.id.clone(), content });
        }
        Some(Spooled::File(path)) => {
            run.ctx.blobs.put_file_moving(&key, &path).await?;
        }
        None => {}
    }
    Ok(outcome)
}

/// Writes a [`Tail`] the message's end could not take (the database refused it as a whole): row
/// by row, the refused rows recorded as errors and in a rejected-rows file. Answers the counts
/// and how many rows were refused.
pub(crate) async fn write_tail(run: &RunState, tail: Tail) -> Result<(BatchCounts, i64), RunError> {
    let mut errors = Vec::new();
    let (counts, refused) =
        write_batch(run, &tail.spec, &tail.mapped_fields, tail.rows, tail.sources, &mut errors, None, false).await?;
    let counts = counts.durable().await?;
    run.store_errors(errors).await?;
    if !refused.is_empty() {
        let mut file = RejectedFile::new(run, &tail.spec, tail.position);
        for record in &refused {
            file.write(&tail.columns, record);
        }
        file.finish(run).await?;
    }
    Ok((counts, refused.len() as i64))
}

/// Upserts one batch; if the database refuses it as a whole (not transiently), writes the
/// rows one by one so only the refused rows are rejected. Answers the counts — once the batch
/// is durable, when written whole — and the records of refused rows. A batch written whole is
/// freed by the reader (`free`) or, when it has one waiting, by another thread: not by the writer.
/// `expect_new`: no batch before met stored rows ([`ferry_store::Store::import_batch_committing`]).
#[allow(clippy::too_many_arguments)]
async fn write_batch(
    run: &RunState,
    spec: &SourceSpec,
    mapped_fields: &[usize],
    rows: Vec<NewRow>,
    sources: Vec<(u64, SourceRecord)>,
    errors: &mut Vec<ErrorRecord>,
    free: Option<&std::sync::mpsc::SyncSender<WrittenRows>>,
    expect_new: bool,
) -> Result<(Committing<BatchCounts>, Vec<SourceRecord>), RunError> {
    let entity = &spec.entity;
    match upsert(run, entity, &rows, mapped_fields, expect_new).await {
        Ok(counts) => {
            let left = match free {
                Some(reader) => reader.try_send((rows, sources)).err().map(|e| match e {
                    std::sync::mpsc::TrySendError::Full(w) | std::sync::mpsc::TrySendError::Disconnected(w) => w,
                }),
                None => Some((rows, sources)),
            };
            if let Some(written) = left {
                tokio::task::spawn_blocking(move || drop(written));
            }
            return Ok((counts, Vec::new()));
        }
        Err(e) if e.is_row_level() => {}
        Err(e) => return Err(e.into()),
    }
    let mut counts = BatchCounts::default();
    let mut refused = Vec::new();
    for (row, (row_number, record)) in rows.into_iter().zip(sources) {
        let key = describe_key(entity, &row.company, &row.values);
        match upsert(run, entity, std::slice::from_ref(&row), mapped_fields, false).await {
            Ok(c) => counts += c.durable().await?,
            Err(e) if e.is_row_level() => {
                let (code, field) = match &e {
                    StoreError::LookupMissing { field, .. } => ("lookup_missing", Some(field.clone())),
                    StoreError::Conflict { .. } => ("conflict", None),
                    _ => ("rejected_by_database", None),
                };
                errors.push(run.error_record(
                    &entity.label,
                    ErrorDraft {
                        stage: Stage::Target,
                        row: Some(row_number),
                        key: Some(key),
                        field,
                        code: code.into(),
                        message: format!("the record could not be written: {e}"),
                    },
                ));
                refused.push(record);
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok((Committing::settled(counts), refused))
}

/// Upserts rows, fenced by the run's lease, with the records the run has waiting; a failed
/// write gives them back for the next. Answers once they are written, their commit under way.
async fn upsert(
    run: &RunState,
    entity: &ferry_model::Entity,
    rows: &[NewRow],
    mapped_fields: &[usize],
    expect_new: bool,
) -> Result<Committing<BatchCounts>, StoreError> {
    let records = run.take_records();
    let store = &run.ctx.store;
    let written =
        store.import_batch_committing(entity, rows, Some(mapped_fields), Some(&run.fence), &records, expect_new).await;
    if written.is_err() {
        run.put_back_records(records);
    }
    written
}

struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The rejected rows of one entity, in the input's format, in a local file until the end.
struct RejectedFile {
    path: Option<tempfile::TempPath>,
    writer: Option<RecordWriter>,
    key: String,
}

impl RejectedFile {
    /// A rejected-rows file; without a writer when the scratch file cannot be created (the
    /// rows are still recorded as errors; only the file is missing).
    fn new(run: &RunState, spec: &SourceSpec, position: i64) -> RejectedFile {
        let key = super::rejected_blob_key(&run.message.id, position, &spec.format);
        match tempfile::NamedTempFile::new_in(&run.ctx.runtime.work_dir) {
            Ok(file) => {
                let (file, path) = file.into_parts();
                let writer = RecordWriter::new(&spec.format, Box::new(std::io::BufWriter::new(file))).ok();
                RejectedFile { path: Some(path), writer, key }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot create the rejected-rows file");
                RejectedFile { path: None, writer: None, key }
            }
        }
    }

    fn write(&mut self, columns: &[String], record: &SourceRecord) {
        if let Some(w) = &mut self.writer
            && w.write_record(columns, record).is_err()
        {
            self.writer = None;
        }
    }

    async fn finish(self, run: &RunState) -> Result<(), RunError> {
        let (Some(writer), Some(path)) = (self.writer, self.path) else { return Ok(()) };
        if writer.finish().is_err() {
            return Ok(());
        }
        run.ctx.blobs.put_file_moving(&self.key, &path).await?;
        Ok(())
    }
}
