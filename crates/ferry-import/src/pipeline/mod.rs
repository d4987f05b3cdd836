//! Importing one claimed message: find its job and project, fetch its file, open the file or
//! the package, apply XSLT, import each entity in execution order (`entity.rs`), and work out
//! how the message ends.

mod entity;
mod source;

use crate::context::ImportContext;
use crate::definition::{Job, JobKind, Project, ResolvedEntity};
use crate::status::{EntityState, MessageState};
use entity::{EntityOutcome, WriteMode, errors_room, import_entity};
use ferry_formats::SourceFormat;
use ferry_formats::package::{Package, source_format_from_manifest};
use ferry_store::{
    Fence, ImportErrorRecord, MessageEntityRecord, MessageOutcome, MessageRecord, RowCounters, StoreError,
};
use source::{ErrorDraft, SourceSpec};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Why a run stopped without an outcome.
#[derive(Debug)]
pub(crate) enum RunError {
    /// Try again later (database busy or unreachable, blob store unavailable).
    Transient(String),
    /// Another worker owns the message now.
    LeaseLost,
    /// Nothing more can be done: the message fails with this reason.
    Fatal(String),
}

impl From<StoreError> for RunError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::LeaseLost { .. } => RunError::LeaseLost,
            e if e.is_transient() => RunError::Transient(e.to_string()),
            e => {
                tracing::error!(error = ?e, "import failed on a database error");
                RunError::Fatal(format!("{e} (see the server log)"))
            }
        }
    }
}

impl From<ferry_blob::BlobError> for RunError {
    fn from(e: ferry_blob::BlobError) -> Self {
        if e.is_transient() { RunError::Transient(e.to_string()) } else { RunError::Fatal(e.to_string()) }
    }
}

/// One run of one message.
pub(crate) struct RunState {
    pub ctx: Arc<ImportContext>,
    pub message: MessageRecord,
    pub fence: Fence,
    /// Set by the heartbeat when the lease was lost.
    pub lost: Arc<AtomicBool>,
    /// Progress across the message's entities, read by the heartbeat.
    pub progress: Arc<Mutex<RowCounters>>,
    done: Mutex<RowCounters>,
    errors_stored: Mutex<i64>,
}

impl RunState {
    pub fn new(ctx: Arc<ImportContext>, message: MessageRecord, holder: &str) -> RunState {
        let fence = Fence { message_id: message.id.clone(), holder: holder.to_string(), lease: ctx.settings.lease };
        RunState {
            ctx,
            message,
            fence,
            lost: Arc::new(AtomicBool::new(false)),
            progress: Arc::new(Mutex::new(RowCounters::default())),
            done: Mutex::new(RowCounters::default()),
            errors_stored: Mutex::new(0),
        }
    }

    fn check_lease(&self) -> Result<(), RunError> {
        if self.lost.load(Ordering::Relaxed) { Err(RunError::LeaseLost) } else { Ok(()) }
    }

    fn error_record(&self, entity: &str, d: ErrorDraft) -> ImportErrorRecord {
        ImportErrorRecord {
            id: 0,
            message_id: self.message.id.clone(),
            entity: entity.to_string(),
            stage: d.stage.as_str().to_string(),
            row_number: d.row.map(|r| r as i64),
            record_key: d.key,
            field: d.field,
            code: d.code,
            message: d.message,
        }
    }

    async fn store_errors(&self, mut errors: Vec<ImportErrorRecord>) -> Result<(), RunError> {
        let room = errors_room(*self.errors_stored.lock().expect("errors lock"));
        errors.truncate(room);
        if errors.is_empty() {
            return Ok(());
        }
        *self.errors_stored.lock().expect("errors lock") += errors.len() as i64;
        self.ctx.store.add_import_errors(&errors, &self.fence).await?;
        Ok(())
    }

    /// Publishes the progress of the entity being imported on top of the finished ones.
    fn add_progress(&self, current: &EntityOutcome) {
        let done = *self.done.lock().expect("progress lock");
        *self.progress.lock().expect("progress lock") = add(done, counters_of(current));
    }

    fn finish_entity(&self, outcome: &EntityOutcome) {
        let mut done = self.done.lock().expect("progress lock");
        *done = add(*done, counters_of(outcome));
        *self.progress.lock().expect("progress lock") = *done;
    }
}

fn counters_of(o: &EntityOutcome) -> RowCounters {
    RowCounters {
        read: o.read,
        rejected: o.rejected(),
        inserted: o.counts.inserted as i64,
        updated: o.counts.updated as i64,
        unchanged: o.counts.unchanged as i64,
    }
}

fn add(a: RowCounters, b: RowCounters) -> RowCounters {
    RowCounters {
        read: a.read + b.read,
        rejected: a.rejected + b.rejected,
        inserted: a.inserted + b.inserted,
        updated: a.updated + b.updated,
        unchanged: a.unchanged + b.unchanged,
    }
}

/// The blob key of the rejected-rows file of entity `position` of a message.
pub fn rejected_blob_key(message_id: &str, position: i64, format: &SourceFormat) -> String {
    let ext = match format {
        SourceFormat::Csv { .. } => "csv",
        SourceFormat::XmlElement | SourceFormat::XmlAttribute => "xml",
        SourceFormat::Json => "json",
        SourceFormat::Xlsx { .. } => "xlsx",
    };
    format!("rejected/{message_id}/{position}.{ext}")
}

/// The blob key of the staging file (JSON lines) of entity `position` of a message.
pub fn staging_blob_key(message_id: &str, position: i64) -> String {
    format!("staging/{message_id}/{position}.jsonl")
}

/// One entity to import from one local file.
struct Unit {
    resolved: ResolvedEntity,
    path: PathBuf,
}

/// Runs the message to its outcome.
pub(crate) async fn run(run: &RunState) -> Result<MessageOutcome, RunError> {
    let ctx = &run.ctx;
    if run.message.attempts > 1 {
        // An earlier run stopped part way: forget what it recorded.
        ctx.store.begin_message_attempt(&run.fence).await?;
    }
    let job = match ctx.store.get_job(&run.message.activity_id).await? {
        Some(record) => serde_json::from_str::<Job>(&record.definition)
            .map_err(|e| RunError::Fatal(format!("the job's stored definition is unreadable: {e}")))?,
        None => return Ok(failed("the recurring job of this message was deleted before it was processed")),
    };
    let project = match ctx.store.get_project(&job.project).await? {
        Some(record) => serde_json::from_str::<Project>(&record.definition)
            .map_err(|e| RunError::Fatal(format!("the project's stored definition is unreadable: {e}")))?,
        None => return Ok(failed(&format!("data project '{}' does not exist (any more)", job.project))),
    };
    let catalog = ctx.catalog.clone();
    let check = |xsl: &str| ferry_xslt::check_stylesheet(xsl.as_bytes()).map_err(|e| e.to_string());
    let resolved = match project.resolve(&catalog, &check) {
        Ok(r) => r,
        Err(e) => return Ok(failed(&e.0)),
    };
    let blob = ctx.blobs.local_copy(&run.message.blob_key).await?;
    let scratch = tempfile::tempdir_in(&ctx.settings.work_dir)
        .map_err(|e| RunError::Transient(format!("cannot create a scratch directory: {e}")))?;
    let units = match JobKind::from_message(&run.message.kind) {
        JobKind::File => {
            let entity_name = run.message.entity.clone().unwrap_or_default();
            let Some(r) = resolved.into_iter().find(|r| r.entity.collection == entity_name) else {
                return Ok(failed(&format!("entity '{entity_name}' is not part of data project '{}'", project.name)));
            };
            vec![Unit { resolved: r, path: blob.path().to_path_buf() }]
        }
        JobKind::Package => match unpack(run, blob.path(), scratch.path(), resolved).await? {
            Ok(units) => units,
            Err(reason) => {
                run.store_errors(vec![run.error_record("package", ErrorDraft::file("bad_package", &reason))]).await?;
                return Ok(failed(&reason));
            }
        },
    };

    let mut total = RowCounters::default();
    let mut warnings = Vec::new();
    let mut fatal_reasons = Vec::new();
    for (position, unit) in units.into_iter().enumerate() {
        let position = position as i64;
        let mut record = MessageEntityRecord {
            message_id: run.message.id.clone(),
            position,
            entity: unit.resolved.entity.label.clone(),
            company: run.message.company.clone(),
            staging_status: EntityState::Executing.as_str().into(),
            target_status: EntityState::NotStarted.as_str().into(),
            rows_read: 0,
            rows_staged: 0,
            staging_errors: 0,
            rows_inserted: 0,
            rows_updated: 0,
            rows_unchanged: 0,
            target_errors: 0,
            started_at: Some(chrono::Utc::now()),
            finished_at: None,
        };
        ctx.store.put_message_entity(&record, &run.fence).await?;
        let path = match &unit.resolved.xslt {
            Some(xsl) => match transform(run, xsl, &unit.path, scratch.path(), position).await? {
                Ok(p) => p,
                Err(reason) => {
                    let draft = ErrorDraft::file("xslt_failed", &reason);
                    run.store_errors(vec![run.error_record(&unit.resolved.entity.label, draft)]).await?;
                    fatal_reasons.push(format!("{}: {reason}", unit.resolved.entity.label));
                    record.staging_status = EntityState::Error.as_str().into();
                    record.finished_at = Some(chrono::Utc::now());
                    ctx.store.put_message_entity(&record, &run.fence).await?;
                    continue;
                }
            },
            None => unit.path.clone(),
        };
        let spec = SourceSpec {
            entity: unit.resolved.entity.clone(),
            format: unit.resolved.format.clone(),
            path,
            mapping: unit.resolved.mapping.clone(),
            company: run.message.company.clone().or(job.company.clone()),
            limits: ctx.settings.limits.clone(),
            batch_rows: ctx.settings.batch_rows,
            staging_path: None,
        };
        let outcome = if job.all_or_nothing {
            let check = import_entity(run, spec.clone(), position, WriteMode::ValidateOnly).await?;
            if check.rejected() > 0 || check.fatal.is_some() {
                check
            } else {
                import_entity(run, spec, position, WriteMode::Atomic).await?
            }
        } else {
            import_entity(run, spec, position, WriteMode::Batched).await?
        };
        run.finish_entity(&outcome);
        if !outcome.ignored_columns.is_empty() {
            warnings.push(format!(
                "{}: column{} ignored (the entity has no such field): {}",
                unit.resolved.entity.label,
                if outcome.ignored_columns.len() == 1 { "" } else { "s" },
                outcome.ignored_columns.join(", ")
            ));
        }
        if let Some(reason) = &outcome.fatal {
            fatal_reasons.push(reason.clone());
        }
        record.rows_read = outcome.read;
        record.rows_staged = outcome.staged;
        record.staging_errors = outcome.staging_errors;
        record.target_errors = outcome.target_errors;
        let written = !(job.all_or_nothing && (outcome.rejected() > 0 || outcome.fatal.is_some()));
        record.rows_inserted = if written { outcome.counts.inserted as i64 } else { 0 };
        record.rows_updated = if written { outcome.counts.updated as i64 } else { 0 };
        record.rows_unchanged = if written { outcome.counts.unchanged as i64 } else { 0 };
        let failed_entity = outcome.fatal.is_some() && outcome.read == 0;
        record.staging_status = if failed_entity { EntityState::Error } else { EntityState::Finished }.as_str().into();
        record.target_status =
            if failed_entity || !written { EntityState::Error } else { EntityState::Finished }.as_str().into();
        record.finished_at = Some(chrono::Utc::now());
        ctx.store.put_message_entity(&record, &run.fence).await?;
        total = add(
            total,
            RowCounters {
                inserted: record.rows_inserted,
                updated: record.rows_updated,
                unchanged: record.rows_unchanged,
                ..counters_of(&outcome)
            },
        );
    }

    let warnings = (!warnings.is_empty()).then(|| warnings.join("\n"));
    let imported = total.inserted + total.updated + total.unchanged;
    let (state, reason) = if !fatal_reasons.is_empty() && imported == 0 {
        (MessageState::PreProcessingError, Some(fatal_reasons.join("; ")))
    } else if job.all_or_nothing && (total.rejected > 0 || !fatal_reasons.is_empty()) {
        (
            MessageState::ProcessedWithErrors,
            Some(format!(
                "rolled back: this job imports all or nothing and {} of {} rows were rejected; nothing was imported",
                total.rejected, total.read
            )),
        )
    } else if total.rejected > 0 || !fatal_reasons.is_empty() {
        let mut reason = format!("{} of {} rows were rejected", total.rejected, total.read);
        if !fatal_reasons.is_empty() {
            reason.push_str(&format!("; {}", fatal_reasons.join("; ")));
        }
        (MessageState::ProcessedWithErrors, Some(reason))
    } else {
        (MessageState::Processed, None)
    };
    Ok(MessageOutcome { state: state.as_str().into(), reason, counters: total, warnings })
}

fn failed(reason: &str) -> MessageOutcome {
    MessageOutcome {
        state: MessageState::PreProcessingError.as_str().into(),
        reason: Some(reason.to_string()),
        counters: RowCounters::default(),
        warnings: None,
    }
}

impl JobKind {
    fn from_message(kind: &str) -> JobKind {
        if kind == "package" { JobKind::Package } else { JobKind::File }
    }
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
    let limits = run.ctx.settings.limits.clone();
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
                    entity,
                    format,
                    mapping,
                    xslt,
                    order: (m.execution_unit, m.level, m.sequence),
                },
                path,
            });
        }
        if units.is_empty() {
            return Err("the package's Manifest.xml lists no (enabled) entity".into());
        }
        Ok(units)
    };
    tokio::task::spawn_blocking(work).await.map_err(|e| RunError::Fatal(format!("unpacking failed: {e}")))
}

/// Applies a stylesheet in the XSLT worker process. The inner `Err` is why the transform failed.
async fn transform(
    run: &RunState,
    xsl: &str,
    input: &Path,
    scratch: &Path,
    position: i64,
) -> Result<Result<PathBuf, String>, RunError> {
    let Some(runner) = run.ctx.settings.xslt.clone() else {
        return Ok(Err("XSLT is not available on this server".into()));
    };
    let xsl_path = scratch.join(format!("{position}.xsl"));
    let out = scratch.join(format!("{position}.transformed.xml"));
    std::fs::write(&xsl_path, xsl).map_err(|e| RunError::Transient(format!("cannot write the stylesheet: {e}")))?;
    let input = input.to_path_buf();
    let out2 = out.clone();
    let result = tokio::task::spawn_blocking(move || runner.transform(&xsl_path, &input, &out2))
        .await
        .map_err(|e| RunError::Fatal(format!("the XSLT task failed: {e}")))?;
    Ok(result.map(|_| out).map_err(|e| format!("XSLT transform failed: {e}")))
}
