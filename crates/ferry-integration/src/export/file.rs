//! Writing one entity of an export to a file in its format, streaming: pages of rows are read
//! from the store while a blocking thread writes the previous page, so memory stays at about two
//! pages whatever the row count. An incremental export also writes its delete list (the keys of
//! the rows deleted), in the same format.

use super::rows::{DeletePages, RowPages, Selection};
use crate::run::{RunError, RunState};
use ferry_domain::{DataFormat, RowCounters, StoredRow, Tombstone};
use ferry_formats::Cell;
use ferry_formats::writer::{RecordWriter, WriterOptions};
use ferry_model::{COMPANY_FIELD, Entity, EnumStyle, FieldType, Value};
use std::path::{Path, PathBuf};
use tokio::sync::mpsc;

/// What writing one entity produced.
#[derive(Debug)]
pub(crate) struct EntityFile {
    pub path: PathBuf,
    pub rows: u64,
    /// The delete list and how many keys it holds (incremental exports with deletes).
    pub deleted: Option<(PathBuf, u64)>,
}

/// How one entity is written.
pub(crate) struct FileSpec<'a> {
    pub format: &'a DataFormat,
    /// The format's name as the project spells it (`CSV-Unicode` writes UTF-16).
    pub format_name: &'a str,
    pub dir: &'a Path,
    /// Distinguishes the files of one export's entities.
    pub position: i64,
}

pub(crate) async fn write_entity(
    run: &RunState,
    selection: Selection,
    spec: &FileSpec<'_>,
    done_before: RowCounters,
) -> Result<EntityFile, RunError> {
    let entity = selection.entity.clone();
    let path = spec.dir.join(format!("{}.{}", spec.position, spec.format.extension()));
    let writer = start_writer(&path, spec, &entity, header(&entity, spec.format, false))?;
    let mut pages = RowPages::new(run.ctx.store.clone(), selection.clone());
    let mut rows = 0u64;
    loop {
        run.check_lease()?;
        let page = pages.next_page().await?;
        if page.is_empty() {
            break;
        }
        rows += page.len() as u64;
        let cells = page.iter().map(|r| row_cells(&entity, r)).collect();
        if !writer.send(cells).await {
            break;
        }
        run.add_progress(RowCounters { read: rows as i64, ..done_before });
    }
    writer.finish().await?;

    let mut deleted = None;
    if selection.versions.is_some() {
        let deletes_path = spec.dir.join(format!("{}.deleted.{}", spec.position, spec.format.extension()));
        let writer = start_writer(&deletes_path, spec, &entity, header(&entity, spec.format, true))?;
        let mut pages = DeletePages::new(run.ctx.store.clone(), selection);
        let mut count = 0u64;
        loop {
            run.check_lease()?;
            let page = pages.next_page().await?;
            if page.is_empty() {
                break;
            }
            count += page.len() as u64;
            if !writer.send(page.iter().map(|t| deleted_cells(&entity, t)).collect()).await {
                break;
            }
        }
        writer.finish().await?;
        deleted = (count > 0).then_some((deletes_path, count));
    }
    Ok(EntityFile { path, rows, deleted })
}

/// The header of an entity's file: `DATAAREAID` for company-specific entities, then the fields
/// (only the key fields for a delete list). Upper case as Dynamics writes them, except in JSON.
fn header(entity: &Entity, format: &DataFormat, keys_only: bool) -> Vec<String> {
    let name = |n: &str| if *format == DataFormat::Json { n.to_owned() } else { n.to_ascii_uppercase() };
    let mut columns = Vec::new();
    if entity.company_specific {
        columns.push(name(COMPANY_FIELD));
    }
    if keys_only {
        columns.extend(entity.key_fields().map(|f| name(&f.name)));
    } else {
        columns.extend(entity.fields.iter().map(|f| name(&f.name)));
    }
    columns
}

fn row_cells(entity: &Entity, row: &StoredRow) -> Vec<Cell> {
    let mut cells = Vec::with_capacity(entity.fields.len() + 1);
    if entity.company_specific {
        cells.push(row.company.clone().map_or(Cell::Null, Cell::Text));
    }
    for (field, value) in entity.fields.iter().zip(&row.values) {
        cells.push(cell(&field.ty, value));
    }
    cells
}

fn deleted_cells(entity: &Entity, t: &Tombstone) -> Vec<Cell> {
    let mut cells = Vec::with_capacity(t.key.len() + 1);
    if entity.company_specific {
        cells.push(t.company.clone().map_or(Cell::Null, Cell::Text));
    }
    cells.extend(t.key.iter().cloned().map(Cell::Text));
    cells
}

/// A value as a cell: numbers as numbers (decimals keep every digit), enums of named members by
/// name, everything else as the text an import reads back.
fn cell(ty: &FieldType, value: &Value) -> Cell {
    match value {
        Value::Null => Cell::Null,
        Value::Int(i) => match ty {
            FieldType::Enum(e) if e.style == EnumStyle::Symbol => {
                e.by_code(*i).map_or_else(|| Cell::Number(i.to_string()), |m| Cell::Text(m.name.clone()))
            }
            _ => Cell::Number(i.to_string()),
        },
        Value::Decimal(d) => Cell::Number(d.as_str().to_owned()),
        Value::Real(r) if r.is_finite() => Cell::Number(r.to_string()),
        Value::Real(_) => Cell::Null,
        Value::Bool(b) => Cell::Bool(*b),
        other => other.to_text().map_or(Cell::Null, Cell::Text),
    }
}

/// A file being written on a blocking thread, fed pages of cells.
struct PageWriter {
    pages: mpsc::Sender<Vec<Vec<Cell>>>,
    task: tokio::task::JoinHandle<Result<(), String>>,
}

fn start_writer(
    path: &Path,
    spec: &FileSpec<'_>,
    entity: &Entity,
    columns: Vec<String>,
) -> Result<PageWriter, RunError> {
    let file =
        std::fs::File::create(path).map_err(|e| RunError::Transient(format!("cannot create an export file: {e}")))?;
    let options = WriterOptions::export(spec.format_name, &entity.public_name.to_ascii_uppercase());
    let mut writer = RecordWriter::with_options(spec.format, Box::new(std::io::BufWriter::new(file)), options)
        .map_err(|e| RunError::Fatal(format!("{}: {e}", entity.label)))?;
    // One page waits while one is written: memory stays at about two pages.
    let (pages, mut incoming) = mpsc::channel::<Vec<Vec<Cell>>>(1);
    let span = tracing::Span::current();
    let task = tokio::task::spawn_blocking(move || {
        span.in_scope(|| {
            let mut record = ferry_formats::SourceRecord { row: 0, cells: Vec::new() };
            while let Some(page) = incoming.blocking_recv() {
                for cells in page {
                    record.row += 1;
                    record.cells = cells;
                    writer.write_record(&columns, &record).map_err(|e| e.to_string())?;
                }
            }
            writer.finish().map_err(|e| e.to_string())
        })
    });
    Ok(PageWriter { pages, task })
}

impl PageWriter {
    /// Hands a page to the writer; false when the writer stopped on an error (`finish` says
    /// which).
    async fn send(&self, page: Vec<Vec<Cell>>) -> bool {
        self.pages.send(page).await.is_ok()
    }

    async fn finish(self) -> Result<(), RunError> {
        drop(self.pages);
        match self.task.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(RunError::Fatal(format!("cannot write the export file: {e}"))),
            Err(e) => Err(RunError::Fatal(format!("the export file writer failed: {e}"))),
        }
    }
}
