//! Exporting one claimed message: find its job (or, for the package API, its project alone),
//! write each entity of the export project — every row the filter selects, or what changed since
//! the scope's watermark — to a file in its format (`file.rs`, reading through `rows.rs`),
//! produce the file (a file job) or a data package, and store it. The outcome carries the file
//! and the watermarks reached; the worker records them in one transaction with the end of the
//! message, so a change is exported by exactly one recorded run, even across a crash (a run
//! that dies records nothing and the next one starts from the same watermark).

mod file;
mod rows;
pub(crate) mod schedule;

use crate::run::{RunError, RunState};
use ferry_domain::{
    CompanyScope, EntityResult, EntityState, Job, JobKind, MessageOutcome, MessageState, Operation, ProducedFile,
    RefreshMode, ResolvedEntity, RowCounters, Watermark,
};
use ferry_formats::package::{Manifest, ManifestEntity, PackageWriter, data_file_name};
use file::{FileSpec, Sink, write_entity};
use rows::Selection;

/// The scope of a message's watermarks: its recurring job's, or its project's (package API).
pub(crate) fn watermark_scope(activity_id: &str, project: &str) -> String {
    if activity_id.is_empty() {
        format!("project:{}", project.to_ascii_lowercase())
    } else {
        format!("job:{activity_id}")
    }
}

/// One entity as exported.
struct Exported {
    resolved: ResolvedEntity,
    format_name: String,
    incremental: bool,
    file: file::EntityFile,
}

pub(crate) async fn run(run: &RunState) -> Result<MessageOutcome, RunError> {
    let ctx = &run.ctx;
    let m = &run.message;
    let job: Option<Job> = if m.activity_id.is_empty() {
        None
    } else {
        match ctx.store.get_job(&m.activity_id).await? {
            Some((job, _)) => Some(job),
            None => return Ok(MessageOutcome::failed("the recurring job of this export was deleted before it ran")),
        }
    };
    let Some((project, _)) = ctx.store.get_project(&m.project).await? else {
        return Ok(MessageOutcome::failed(format!("data project '{}' does not exist (any more)", m.project)));
    };
    if project.operation != Operation::Export {
        return Ok(MessageOutcome::failed(format!(
            "data project '{}' imports; it has nothing to export",
            project.name
        )));
    }
    let mut resolved = match project.resolve(&ctx.catalog, &|_| Ok(())) {
        Ok(r) => r,
        Err(e) => return Ok(MessageOutcome::failed(e.0)),
    };
    let wanted = &m.parameters.entities;
    if !wanted.is_empty() {
        resolved.retain(|r| {
            wanted
                .iter()
                .any(|w| ctx.catalog.by_any_name(w.trim()).is_some_and(|e| e.logical_name == r.entity.logical_name))
        });
    }
    resolved.sort_by_key(|r| r.order);
    let scope_name = watermark_scope(&m.activity_id, &project.name);
    let watermarks = ctx.store.watermarks(&scope_name).await?;
    // Every change up to this version is committed: the incremental entities export up to it.
    let upto = ctx.store.current_version().await?;
    let company = match (&job, &m.company) {
        (Some(job), _) => job.company.clone(),
        (None, company) => company.clone(),
    };
    let scope = company.map_or(CompanyScope::All, CompanyScope::One);
    let scratch = tempfile::tempdir_in(&ctx.runtime.work_dir)
        .map_err(|e| RunError::Transient(format!("cannot create a scratch directory: {e}")))?;

    // A file job with one entity produces that entity's file; anything else a data package.
    let as_file = m.kind == JobKind::File && resolved.len() == 1;
    let mut sink = if as_file {
        let extension = resolved[0].format.extension();
        Sink::File(scratch.path().join(data_file_name(&resolved[0].entity.label, extension)))
    } else {
        let path = scratch.path().join("package.zip");
        let file = std::fs::File::create(&path)
            .map_err(|e| RunError::Transient(format!("cannot create the data package: {e}")))?;
        Sink::Package(PackageWriter::new(file))
    };
    let mut exported = Vec::new();
    let mut reached = Vec::new();
    let mut done = RowCounters::default();
    for (position, r) in resolved.into_iter().enumerate() {
        let position = position as i64;
        let incremental =
            m.parameters.preview_rows.is_none() && (m.parameters.delta || r.mode == RefreshMode::Incremental);
        let since = watermarks.iter().find(|w| w.entity == r.entity.logical_name).map_or(0, |w| w.version);
        let selection = Selection {
            entity: r.entity.clone(),
            scope: scope.clone(),
            filter: r.filter.clone(),
            versions: incremental.then_some((since, upto)),
            limit: m.parameters.preview_rows,
        };
        let mut result = EntityResult::started(&m.id, position, &r.entity.label, m.company.clone(), run.now());
        ctx.store.put_entity_result(&result, &run.fence).await?;
        let format_name = project.entities.iter().find(|e| {
            ctx.catalog.by_any_name(e.entity.trim()).is_some_and(|c| c.logical_name == r.entity.logical_name)
        });
        let format_name = format_name.map_or_else(|| ferry_domain::DEFAULT_FORMAT.to_owned(), |e| e.format.clone());
        let spec = FileSpec { format: &r.format, format_name: &format_name };
        let file = write_entity(run, selection, &spec, done, &mut sink).await?;
        let counters = RowCounters { read: file.rows as i64, ..RowCounters::default() };
        run.finish_entity(counters);
        done = done + counters;
        result.rows_read = file.rows as i64;
        result.rows_staged = file.rows as i64;
        (result.staging, result.target) = (EntityState::Finished, EntityState::Finished);
        result.finished_at = Some(run.now());
        ctx.store.put_entity_result(&result, &run.fence).await?;
        if incremental {
            reached.push(Watermark { scope: scope_name.clone(), entity: r.entity.logical_name.clone(), version: upto });
        }
        exported.push(Exported { resolved: r, format_name, incremental, file });
    }

    let rows: u64 = exported.iter().map(|e| e.file.rows).sum();
    let deletes: u64 = exported.iter().filter_map(|e| e.file.deleted.as_ref().map(|(_, n)| *n)).sum();
    let counters = RowCounters { read: rows as i64, ..RowCounters::default() };
    let skip_empty = job.as_ref().is_some_and(|j| j.skip_empty);
    if rows + deletes == 0 && skip_empty {
        let reason = "no rows to export; nothing produced (the job skips empty exports)".to_owned();
        return Ok(MessageOutcome {
            watermarks: reached,
            ..MessageOutcome::new(MessageState::Processed, Some(reason), counters)
        });
    }
    let (path, name) = match sink {
        Sink::File(path) => (path, exported[0].file.name.clone()),
        Sink::Package(package) => {
            finish_package(&project.name, &exported, package)?;
            (scratch.path().join("package.zip"), package_name(&project.name))
        }
    };
    let name = m.external_id.as_deref().map_or(name.clone(), |n| with_extension(n, &name));
    let key = format!("exports/{}/{}/{}", run.now().format("%Y/%m/%d"), m.id, blob_name(&name));
    let info = ctx.blobs.put_file(&key, &path).await?;
    let produced =
        ProducedFile { blob_key: info.key, size: info.size as i64, sha256: info.sha256, deliver: job.is_some() };
    let reason = (deletes > 0).then(|| format!("{rows} rows and {deletes} deletes exported"));
    Ok(MessageOutcome {
        produced: Some(produced),
        watermarks: reached,
        ..MessageOutcome::new(MessageState::Processed, reason, counters)
    })
}

/// Completes the data package of `exported` with its manifest and header.
fn finish_package(project: &str, exported: &[Exported], package: PackageWriter<std::fs::File>) -> Result<(), RunError> {
    let manifest = Manifest {
        definition_group: Some(project.to_owned()),
        description: Some(project.to_owned()),
        entities: exported
            .iter()
            .map(|e| {
                let (execution_unit, level, sequence) = e.resolved.order;
                ManifestEntity {
                    entity_name: e.resolved.entity.label.clone(),
                    source_format: e.format_name.clone(),
                    input_file_path: e.file.name.clone(),
                    execution_unit,
                    level,
                    sequence,
                    excel_sheet: match &e.resolved.format {
                        ferry_domain::DataFormat::Xlsx { sheet } => sheet.clone(),
                        _ => None,
                    },
                    incremental: e.incremental,
                    deleted_records_path: e.file.deleted.as_ref().map(|(name, _)| name.clone()),
                    ..ManifestEntity::default()
                }
            })
            .collect(),
    };
    package.finish(&manifest).map_err(|e| RunError::Fatal(format!("cannot write the data package: {e}")))?;
    Ok(())
}

/// The name of a project's package.
fn package_name(project: &str) -> String {
    data_file_name(project, "zip")
}

/// `name` (a client's package name) with the extension of `produced` unless it has one.
fn with_extension(name: &str, produced: &str) -> String {
    let name = data_file_name(name.trim(), "x");
    let base = name.trim_end_matches(".x");
    let extension = produced.rsplit_once('.').map_or("", |(_, e)| e);
    if base.to_ascii_lowercase().ends_with(&format!(".{extension}")) {
        base.to_owned()
    } else {
        format!("{base}.{extension}")
    }
}

/// `name` as the last segment of a blob key: characters a key may not hold become `_`.
fn blob_name(name: &str) -> String {
    let safe: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') { c } else { '_' }).collect();
    let safe = safe.trim_start_matches('.');
    if safe.is_empty() { "export".to_owned() } else { safe.to_owned() }
}
