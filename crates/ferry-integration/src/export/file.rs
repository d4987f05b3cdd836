//! Writing one entity of an export in its format, streaming, to a plain file (a file job) or
//! into an entry of the data package (compressed as it is written): pages of rows are read from
//! the store while a blocking thread writes the previous page, so memory stays at about two
//! pages whatever the row count. An incremental package also gets the entity's delete list (the
//! keys of the rows deleted), in the same format.

use super::rows::{DeletePages, RowPages, Selection};
use crate::run::{RunError, RunState};
use ferry_domain::{DataFormat, RowCounters, StoredRow, Tombstone};
use ferry_formats::Cell;
use ferry_formats::package::{PackageWriter, data_file_name};
use ferry_formats::writer::{RecordWriter, WriterOptions};
use ferry_model::{COMPANY_FIELD, Entity, EnumStyle, FieldType, Value};
use std::path::PathBuf;
use tokio::sync::mpsc;

/// Where an export's data goes.
pub(crate) enum Sink {
    /// One entity's plain file (a file job): its rows only.
    File(PathBuf),
    /// The entries of a data package.
    Package(PackageWriter<std::fs::File>),
}

type Out = Box<dyn std::io::Write + Send>;

impl Sink {
    /// A writer of `name` (an entry of the package), or of the plain file.
    fn open(&mut self, name: &str) -> Result<Out, RunError> {
        match self {
            Sink::File(path) => {
                let file = std::fs::File::create(path)
                    .map_err(|e| RunError::Transient(format!("cannot create an export file: {e}")))?;
                Ok(Box::new(file))
            }
            Sink::Package(package) => Ok(Box::new(
                package
                    .start_entry(name)
                    .map_err(|e| RunError::Fatal(format!("cannot write the data package: {e}")))?,
            )),
        }
    }
}

/// What writing one entity produced.
#[derive(Debug)]
pub(crate) struct EntityFile {
    /// The name of the entity's data (its package entry).
    pub name: String,
    pub rows: u64,
    /// The package entry of the delete list and how many keys it holds (incremental packages
    /// with deletes).
    pub deleted: Option<(String, u64)>,
}

/// How one entity is written.
pub(crate) struct FileSpec<'a> {
    pub format: &'a DataFormat,
    /// The format's name as the project spells it (`CSV-Unicode` writes UTF-16).
    pub format_name: &'a str,
}

pub(crate) async fn write_entity(
    run: &RunState,
    selection: Selection,
    spec: &FileSpec<'_>,
    done_before: RowCounters,
    sink: &mut Sink,
) -> Result<EntityFile, RunError> {
    let entity = selection.entity.clone();
    let extension = spec.format.extension();
    let name = data_file_name(&entity.label, extension);
    let writer = start_writer(sink.open(&name)?, spec, &entity, header(&entity, spec.format, false))?;
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
    if selection.versions.is_some() && matches!(sink, Sink::Package(_)) {
        // Started at the first delete: a package without deletes has no delete list.
        let deleted_name = data_file_name(&format!("{}-deleted", entity.label), extension);
        let mut writer: Option<PageWriter> = None;
        let mut pages = DeletePages::new(run.ctx.store.clone(), selection);
        let mut count = 0u64;
        loop {
            run.check_lease()?;
            let page = pages.next_page().await?;
            if page.is_empty() {
                break;
            }
            count += page.len() as u64;
            let w = match &mut writer {
                Some(w) => w,
                None => writer.insert(start_writer(
                    sink.open(&deleted_name)?,
                    spec,
                    &entity,
                    header(&entity, spec.format, true),
                )?),
            };
            if !w.send(page.iter().map(|t| deleted_cells(&entity, t)).collect()).await {
                break;
            }
        }
        if let Some(w) = writer {
            w.finish().await?;
            deleted = Some((deleted_name, count));
        }
    }
    Ok(EntityFile { name, rows, deleted })
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

fn start_writer(out: Out, spec: &FileSpec<'_>, entity: &Entity, columns: Vec<String>) -> Result<PageWriter, RunError> {
    let options = WriterOptions::export(spec.format_name, &entity.public_name.to_ascii_uppercase());
    let out = Box::new(std::io::BufWriter::with_capacity(256 * 1024, out));
    let mut writer = RecordWriter::with_options(spec.format, out, options)
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
