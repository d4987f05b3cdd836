//! Importing one claimed message: find its job and project, fetch its file, open the file or
//! the package, apply XSLT, import each entity in execution order (`entity.rs`), and work out
//! how the message ends (the rules are `ferry_domain::verdict`). An all-or-nothing message is
//! validated whole first and written at the end in one transaction, or not at all. Otherwise
//! the last batch goes in with the message's end, in one transaction.

mod duplicates;
mod entity;
mod mapping;
mod pending;
mod source;
mod spill;
mod spool;
mod validate;

use crate::files::LocalFile;
use crate::run::{Prefetched, RunEnd, RunError, RunState};
use entity::{EntityOutcome, Tail, WriteMode, import_entity, write_tail};
use ferry_domain::{
    DataFormat, EntityResult, EntityRun, EntityState, Job, JobKind, MessageOutcome, ResolvedEntity, RowCounters,
    entity_states, rolls_back, verdict,
};
use ferry_formats::package::{Package, source_format_from_manifest};
use ferry_store::{AtomicBatch, AtomicRefusal, BatchCounts, StoreError};
pub(crate) use pending::PendingKeys;
pub(crate) use source::ErrorDraft;
use source::{SourceInput, SourceSpec};
use spill::SpillReader;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub(crate) fn counters_of(o: &EntityOutcome) -> RowCounters {
    RowCounters {
        read: o.read,
        rejected: o.rejected(),
        inserted: o.counts.inserted as i64,
        updated: o.counts.updated as i64,
        unchanged: o.counts.unchanged as i64,
    }
}

/// The blob key of the rejected-rows file of entity `position` of a message.
pub fn rejected_blob_key(message_id: &str, position: i64, format: &DataFormat) -> String {
    rejected_blob_key_with_extension(message_id, position, format.extension())
}

pub(crate) fn rejected_blob_key_with_extension(message_id: &str, position: i64, extension: &str) -> String {
    format!("rejected/{message_id}/{position}.{extension}")
}

/// The blob key of the staging file (JSON lines) of entity `position` of a message.
pub fn staging_blob_key(message_id: &str, position: i64) -> String {
    format!("staging/{message_id}/{position}.jsonl")
}

/// One entity to import from one source.
struct Unit {
    resolved: ResolvedEntity,
    input: SourceInput,
}

/// The run's scratch directory (extracted package entries, transforms), made when first needed:
/// a plain small file needs none.
struct Scratch {
    parent: PathBuf,
    dir: std::sync::OnceLock<tempfile::TempDir>,
}

impl Scratch {
    fn new(parent: &Path) -> Scratch {
        Scratch { parent: parent.to_path_buf(), dir: std::sync::OnceLock::new() }
    }

    fn dir(&self) -> Result<&Path, RunError> {
        if self.dir.get().is_none() {
            let dir = tempfile::tempdir_in(&self.parent)
                .map_err(|e| RunError::Transient(format!("cannot create a scratch directory: {e}")))?;
            let _ = self.dir.set(dir);
        }
        Ok(self.dir.get().expect("the scratch directory").path())
    }

    /// `input` as a local file (one kept in memory is written here as `name`).
    fn file(&self, input: &SourceInput, name: &str) -> Result<PathBuf, RunError> {
        match input {
            SourceInput::File(path) => Ok(path.clone()),
            SourceInput::Bytes(bytes) => {
                let path = self.dir()?.join(name);
                std::fs::write(&path, bytes)
                    .map_err(|e| RunError::Transient(format!("cannot write a scratch file: {e}")))?;
                Ok(path)
            }
        }
    }
}

/// One entity of the message as it went: its result row, what happened, (all-or-nothing) the
/// spill of its valid rows, and (the last entity) its last batch if that is not written yet.
struct Done {
    result: EntityResult,
    run: EntityRun,
    spill: Option<tempfile::TempPath>,
    tail: Option<Tail>,
    entity: Arc<ferry_model::Entity>,
}

/// Runs the message to its outcome: recorded with its last batch, or for the worker to record.
/// `prefetched`: its job and small body where the worker read them with its claim.
pub(crate) async fn run(run: &RunState, prefetched: Prefetched) -> Result<RunEnd, RunError> {
    let ctx = &run.ctx;
    if run.message.attempts > 1 {
        // An earlier run stopped part way: forget what it recorded.
        ctx.store.begin_message_attempt(&run.fence).await?;
    }
    // Package-API executions belong to a project only: they import like a package job.
    let (job, project) = if run.message.activity_id.is_empty() {
        let job = Job { kind: JobKind::Package, ..Job::new("", run.message.project.clone()) };
        let project = ctx.store.get_project(&job.project).await?.map(|(project, _)| project);
        (job, project)
    } else {
        let found = match prefetched.job {
            Some(found) => found,
            None => ctx.store.job_with_project(&run.message.activity_id).await?,
        };
        match found {
            Some(found) => found,
            None => return failed("the recurring job of this message was deleted before it was processed"),
        }
    };
    let Some(project) = project else {
        return failed(format!("data project '{}' does not exist (any more)", job.project));
    };
    let check = |xsl: &str| ferry_xslt::check_stylesheet(xsl.as_bytes()).map_err(|e| e.to_string());
    let resolved = match project.resolve(&ctx.catalog, &check) {
        Ok(r) => r,
        Err(e) => return failed(e.0.clone()),
    };
    let file = ctx.local_file(&run.message.blob_key, prefetched.body).await?;
    let scratch = Scratch::new(&ctx.runtime.work_dir);
    let input = match &file {
        LocalFile::Bytes(bytes) => SourceInput::Bytes(Arc::from(bytes.as_slice())),
        LocalFile::Blob(blob) => SourceInput::File(blob.path().to_path_buf()),
    };
    let units = match run.message.kind {
        JobKind::File => {
            let entity_name = run.message.entity.clone().unwrap_or_default();
            let Some(r) = resolved.into_iter().find(|r| r.entity.collection == entity_name) else {
                return failed(format!("entity '{entity_name}' is not part of data project '{}'", project.name));
            };
            vec![Unit { resolved: r, input }]
        }
        JobKind::Package => match unpack(run, &scratch.file(&input, "package.zip")?, scratch.dir()?, resolved).await? {
            Ok(units) => units,
            Err(reason) => {
                run.store_errors(vec![run.error_record("package", ErrorDraft::file("bad_package", &reason))]).await?;
                return failed(reason.clone());
            }
        },
    };

    // Staging only (`execute = false`) validates like an all-or-nothing import and writes nothing.
    let stage_only = !run.message.execute;
    let mode = if job.all_or_nothing || stage_only { WriteMode::Spill } else { WriteMode::Batched };
    let last = units.len().saturating_sub(1);
    if job.all_or_nothing || stage_only {
        let entities: Vec<_> = units.iter().map(|u| u.resolved.entity.clone()).collect();
        *run.pending.lock().expect("pending lock") = Some(PendingKeys::new(ctx.catalog.clone(), &entities));
    }
    let mut warnings = Vec::new();
    let mut done: Vec<Done> = Vec::new();
    for (position, unit) in units.into_iter().enumerate() {
        let position = position as i64;
        let label = unit.resolved.entity.label.clone();
        let result = EntityResult::started(&run.message.id, position, &label, run.message.company.clone(), run.now());
        run.record_result(result.clone());
        let input = match &unit.resolved.xslt {
            Some(xsl) => match transform(run, xsl, &unit.input, &scratch, position).await? {
                Ok(p) => SourceInput::File(p),
                Err(reason) => {
                    let draft = ErrorDraft::file("xslt_failed", &reason);
                    run.store_errors(vec![run.error_record(&label, draft)]).await?;
                    let fatal = Some(format!("{label}: {reason}"));
                    let entity_run = EntityRun { label, counters: RowCounters::default(), fatal };
                    let entity = unit.resolved.entity.clone();
                    done.push(Done { result, run: entity_run, spill: None, tail: None, entity });
                    continue;
                }
            },
            None => unit.input.clone(),
        };
        let spec = SourceSpec {
            entity: unit.resolved.entity.clone(),
            format: unit.resolved.format.clone(),
            input,
            mapping: unit.resolved.mapping.clone(),
            company: run.message.company.clone().or(job.company.clone()),
            limits: ctx.limits.clone(),
            batch_rows: ctx.settings.batch_rows,
            work_dir: ctx.runtime.work_dir.clone(),
        };
        // The last entity's last batch can go in with the message's end.
        let mode = if mode == WriteMode::Batched && position as usize == last { WriteMode::BatchedTail } else { mode };
        let mut outcome = import_entity(run, spec, position, mode).await?;
        run.finish_entity(counters_of(&outcome));
        if !outcome.ignored_columns.is_empty() {
            warnings.push(format!(
                "{label}: column{} ignored (the entity has no such field): {}",
                if outcome.ignored_columns.len() == 1 { "" } else { "s" },
                outcome.ignored_columns.join(", ")
            ));
        }
        let mut result = result;
        result.rows_read = outcome.read;
        result.rows_staged = outcome.staged;
        result.staging_errors = outcome.staging_errors;
        result.target_errors = outcome.target_errors;
        let entity_run = EntityRun { label, counters: counters_of(&outcome), fatal: outcome.fatal.clone() };
        let (spill, tail) = (outcome.spill.take(), outcome.tail.take());
        done.push(Done { result, run: entity_run, spill, tail, entity: unit.resolved.entity.clone() });
    }

    let written = if stage_only {
        false
    } else if job.all_or_nothing {
        let runs: Vec<EntityRun> = done.iter().map(|d| d.run.clone()).collect();
        if rolls_back(&runs, true) {
            tracing::info!("all-or-nothing message rolled back: nothing is written");
            false
        } else if let Err(refusal) = apply_spills(run, &mut done).await? {
            refused(run, &mut done[refusal.position], &refusal).await?;
            false
        } else {
            true
        }
    } else {
        true
    };
    let warnings = (!warnings.is_empty()).then(|| warnings.join("\n"));
    let conclusion = Conclusion { all_or_nothing: job.all_or_nothing, stage_only, written, warnings };
    let mut entities: Vec<(EntityResult, EntityRun)> = Vec::with_capacity(done.len());
    let mut tail = None;
    for d in done {
        tail = d.tail.or(tail);
        entities.push((d.result, d.run));
    }
    if let Some(tail) = tail {
        // The last batch and the end in one transaction; what the batch did decides the outcome.
        let waiting = run.take_records();
        let end = |counts: BatchCounts| {
            let mut entities = entities.clone();
            if let Some((_, last)) = entities.last_mut() {
                add_written(&mut last.counters, counts);
            }
            let (outcome, results) = conclusion.conclude(entities, run.now());
            let mut records = waiting.clone();
            for result in results {
                records.put_result(result);
            }
            (outcome, records)
        };
        let store = &run.ctx.store;
        let written =
            store.finish_message_with_batch(&tail.spec.entity, &tail.rows, Some(&tail.mapped_fields), &run.fence, end);
        match written.await {
            Ok((_, outcome)) => return Ok(RunEnd::Recorded(outcome)),
            Err(e) => {
                run.put_back_records(waiting);
                if !e.is_row_level() {
                    return Err(e.into());
                }
            }
        }
        // The database refused the batch as a whole: write it row by row, then end on its own.
        let (counts, refused) = write_tail(run, tail).await?;
        if let Some((result, last)) = entities.last_mut() {
            add_written(&mut last.counters, counts);
            last.counters.rejected += refused;
            result.target_errors += refused;
        }
    }
    let (outcome, results) = conclusion.conclude(entities, run.now());
    for result in results {
        run.record_result(result);
    }
    Ok(RunEnd::Outcome(outcome))
}

/// Counts the rows a batch wrote into an entity's counters.
fn add_written(counters: &mut RowCounters, counts: BatchCounts) {
    counters.inserted += counts.inserted as i64;
    counters.updated += counts.updated as i64;
    counters.unchanged += counts.unchanged as i64;
}

/// The message fails with `reason` (the worker records it).
fn failed(reason: impl Into<String>) -> Result<RunEnd, RunError> {
    Ok(RunEnd::Outcome(MessageOutcome::failed(reason)))
}

/// How the message's entities went as a whole.
struct Conclusion {
    all_or_nothing: bool,
    stage_only: bool,
    /// Whether the rows were written (false: an all-or-nothing message rolled back, or staging only).
    written: bool,
    warnings: Option<String>,
}

impl Conclusion {
    /// The message's outcome and each entity's final result (finished `now`). Pure.
    fn conclude(
        &self,
        entities: Vec<(EntityResult, EntityRun)>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> (MessageOutcome, Vec<EntityResult>) {
        let mut results = Vec::with_capacity(entities.len());
        let mut runs = Vec::with_capacity(entities.len());
        for (mut result, run) in entities {
            let (staging, target) = entity_states(&run, self.written);
            result.staging = staging;
            result.target =
                if self.stage_only && staging == EntityState::Finished { EntityState::NotStarted } else { target };
            let counters = run.counters;
            (result.rows_inserted, result.rows_updated, result.rows_unchanged) =
                (counters.inserted, counters.updated, counters.unchanged);
            result.finished_at = Some(now);
            results.push(result);
            runs.push(run);
        }
        let verdict = verdict(&runs, self.all_or_nothing);
        let mut reason = verdict.reason;
        if self.stage_only {
            let staged = "validated and staged only (execute = false): nothing was written to the entities";
            reason = Some(reason.map_or_else(|| staged.to_owned(), |r| format!("{r}; {staged}")));
        }
        let outcome = MessageOutcome {
            warnings: self.warnings.clone(),
            ..MessageOutcome::new(verdict.state, reason, verdict.counters)
        };
        (outcome, results)
    }
}

/// Writes the spilled rows of every entity, in execution order, in ONE transaction: the
/// transaction lasts only as long as writing them takes (the reading, staging and lookups all
/// happened before), and if any of it fails nothing of the message is written. The inner `Err`
/// says which entity's rows the database refused.
async fn apply_spills(run: &RunState, done: &mut [Done]) -> Result<Result<(), AtomicRefusal>, RunError> {
    let spills: Vec<(usize, Arc<ferry_model::Entity>, PathBuf)> = done
        .iter()
        .enumerate()
        .filter_map(|(position, d)| d.spill.as_ref().map(|p| (position, d.entity.clone(), p.to_path_buf())))
        .collect();
    let (tx, rx) = tokio::sync::mpsc::channel::<AtomicBatch>(2);
    let span = tracing::Span::current();
    let feeder = tokio::task::spawn_blocking(move || {
        span.in_scope(|| -> std::io::Result<()> {
            for (position, entity, path) in spills {
                let mut reader = SpillReader::open(&path)?;
                while let Some(batch) = reader.next_batch()? {
                    let update_fields = Arc::new(batch.update_fields);
                    let batch = AtomicBatch { position, entity: entity.clone(), update_fields, rows: batch.rows };
                    if tx.blocking_send(batch).is_err() {
                        return Ok(()); // the transaction failed; its error is reported by the caller
                    }
                }
            }
            Ok(())
        })
    });
    let applied = run.ctx.store.import_atomically(rx, Some(&run.fence)).await?;
    let fed = feeder.await;
    let counts = match applied {
        Ok(counts) => counts,
        Err(refusal) => return Ok(Err(refusal)),
    };
    match fed {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(RunError::Transient(format!("cannot read a spill file: {e}"))),
        Err(e) => return Err(RunError::Fatal(format!("reading the spill files failed: {e}"))),
    }
    for (position, n) in counts {
        let counters = &mut done[position].run.counters;
        (counters.inserted, counters.updated, counters.unchanged) =
            (n.inserted as i64, n.updated as i64, n.unchanged as i64);
    }
    Ok(Ok(()))
}

/// Records that the final write of an all-or-nothing message was refused at entity `d`: the
/// entity fails with the database's reason, and the message rolls back.
async fn refused(run: &RunState, d: &mut Done, refusal: &AtomicRefusal) -> Result<(), RunError> {
    let (code, field) = match &refusal.error {
        StoreError::LookupMissing { field, .. } => ("lookup_missing", Some(field.clone())),
        StoreError::Conflict { .. } => ("conflict", None),
        _ => ("rejected_by_database", None),
    };
    let message = format!("the final write was refused: {}", refusal.error);
    tracing::info!(entity = %d.run.label, error = %refusal.error, "all-or-nothing message rolled back on its final write");
    let draft = ErrorDraft {
        stage: ferry_domain::Stage::Target,
        row: None,
        key: None,
        field,
        code: code.into(),
        message: message.clone(),
    };
    run.store_errors(vec![run.error_record(&d.run.label, draft)]).await?;
    d.run.fatal = Some(format!("{}: {message}", d.run.label));
    Ok(())
}

/// Opens the package, checks it, and extracts each manifest entity's data file (and XSLT) in
/// execution order. The inner `Err` is a reason the package cannot be imported.
async fn unpack(
    run: &RunState,
    zip: &Path,
    scratch: &Path,
    project_entities: Vec<ResolvedEntity>,
) -> Result<Result<Vec<Unit>, String>, RunError> {
    let zip = zip.to_path_buf();
    let scratch = scratch.to_path_buf();
    let limits = run.ctx.limits.clone();
    let catalog = run.ctx.catalog.clone();
    let work = move || -> Result<Vec<Unit>, String> {
        let file = std::fs::File::open(&zip).map_err(|e| format!("cannot open the stored package: {e}"))?;
        let mut package = Package::open(file, &limits).map_err(|e| e.to_string())?;
        let manifest = package.manifest().clone();
        let mut units = Vec::new();
        for (n, m) in manifest.execution_order().into_iter().enumerate() {
            if m.disabled {
                continue;
            }
            let entity = catalog.by_any_name(m.entity_name.trim()).cloned().ok_or_else(|| {
                format!("Manifest.xml names entity '{}', which does not exist in ferry's catalog", m.entity_name)
            })?;
            let Some(project_entity) = project_entities.iter().find(|p| Arc::ptr_eq(&p.entity, &entity)) else {
                return Err(format!(
                    "the package holds entity '{}', which is not part of the job's data project; add it to the project",
                    m.entity_name
                ));
            };
            let format = source_format_from_manifest(&m.source_format, m.excel_sheet.as_deref())
                .map_err(|e| format!("entity '{}': {}", m.entity_name, e.message))?;
            let path = scratch.join(format!("{n}.data"));
            let mut out = std::fs::File::create(&path).map_err(|e| format!("cannot extract: {e}"))?;
            package.extract(&m.input_file_path, &mut out).map_err(|e| e.to_string())?;
            let mut mapping = project_entity.mapping.clone();
            for f in &m.field_map {
                mapping.entry(f.source_column.clone()).or_insert_with(|| f.entity_field.clone());
            }
            let xslt = match m.transforms.first() {
                Some(name) => {
                    let mut xsl = Vec::new();
                    package.extract(name, &mut xsl).map_err(|e| e.to_string())?;
                    Some(String::from_utf8(xsl).map_err(|_| format!("stylesheet '{name}' is not UTF-8"))?)
                }
                None => project_entity.xslt.clone(),
            };
            units.push(Unit {
                resolved: ResolvedEntity {
                    mapping,
                    xslt,
                    ..ResolvedEntity::imported(entity, format, (m.execution_unit, m.level, m.sequence))
                },
                input: SourceInput::File(path),
            });
        }
        if units.is_empty() {
            return Err("the package's Manifest.xml lists no (enabled) entity".into());
        }
        Ok(units)
    };
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(work))
        .await
        .map_err(|e| RunError::Fatal(format!("unpacking failed: {e}")))
}

/// Applies a stylesheet in the XSLT worker process. The inner `Err` is why the transform failed.
async fn transform(
    run: &RunState,
    xsl: &str,
    input: &SourceInput,
    scratch: &Scratch,
    position: i64,
) -> Result<Result<PathBuf, String>, RunError> {
    let runner = match &run.ctx.runtime.xslt {
        Ok(runner) => runner.clone(),
        Err(why) => return Ok(Err(why.clone())),
    };
    let input = scratch.file(input, &format!("{position}.input"))?;
    let scratch = scratch.dir()?;
    let xsl_path = scratch.join(format!("{position}.xsl"));
    let out = scratch.join(format!("{position}.transformed.xml"));
    std::fs::write(&xsl_path, xsl).map_err(|e| RunError::Transient(format!("cannot write the stylesheet: {e}")))?;
    let out2 = out.clone();
    let span = tracing::Span::current();
    let result = tokio::task::spawn_blocking(move || span.in_scope(|| runner.transform(&xsl_path, &input, &out2)))
        .await
        .map_err(|e| RunError::Fatal(format!("the XSLT task failed: {e}")))?;
    Ok(result.map(|_| out).map_err(|e| format!("XSLT transform failed: {e}")))
}
