//! The reading half of an import, on a blocking thread: read records, map them, stage them,
//! drop in-file duplicates, and hand bounded batches to the writing half.

use super::duplicates::DuplicateKeys;
use super::mapping::{ColumnMap, Target};
use super::spool::{Spool, Spooled};
use super::validate::{StagedRow, describe_key, key_hash, stage_record};
use ferry_domain::{DataFormat, NewRow, Stage};
use ferry_formats::{Limits, SourceRecord, open_reader};
use ferry_model::{Entity, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::mpsc;

/// Where a source's bytes are.
#[derive(Clone, Debug)]
pub(crate) enum SourceInput {
    File(PathBuf),
    /// A small file, kept in the database and read into memory.
    Bytes(Arc<[u8]>),
}

/// One source file of one entity.
#[derive(Clone, Debug)]
pub(crate) struct SourceSpec {
    pub entity: Arc<Entity>,
    pub format: DataFormat,
    pub input: SourceInput,
    pub mapping: BTreeMap<String, String>,
    pub company: Option<String>,
    pub limits: Limits,
    pub batch_rows: usize,
    /// Where scratch files go (the keys seen so far, once there are many).
    pub work_dir: PathBuf,
}

/// An error record before it is stored.
#[derive(Clone, Debug)]
pub(crate) struct ErrorDraft {
    pub stage: Stage,
    pub row: Option<u64>,
    pub key: Option<String>,
    pub field: Option<String>,
    pub code: String,
    pub message: String,
}

impl ErrorDraft {
    /// A problem with a whole file (found before any row was read).
    pub fn file(code: &str, message: &str) -> ErrorDraft {
        ErrorDraft {
            stage: Stage::Parse,
            row: None,
            key: None,
            field: None,
            code: code.into(),
            message: message.into(),
        }
    }
}

/// A record rejected while reading or staging, with the record when there is one.
pub(crate) struct Rejected {
    pub record: Option<SourceRecord>,
    pub errors: Vec<ErrorDraft>,
}

pub(crate) struct SourceBatch {
    /// Staged rows and the source records they came from (same order).
    pub rows: Vec<(StagedRow, SourceRecord)>,
    pub rejected: Vec<Rejected>,
    /// Records read in this batch (staged, rejected or not).
    pub read: u64,
    pub columns: Vec<String>,
    /// Fields the file gives values for (existing rows keep the others).
    pub mapped_fields: Vec<usize>,
}

pub(crate) struct SourceEnd {
    /// A problem with the whole file that stopped reading.
    pub fatal: Option<ErrorDraft>,
    pub ignored_columns: Vec<String>,
    /// The staged rows (JSON lines: source row, company, mapped values).
    pub staging: Option<Spooled>,
}

pub(crate) enum SourceEvent {
    Batch(SourceBatch),
    End(SourceEnd),
}

fn fatal(code: &str, message: String, row: Option<u64>, field: Option<String>) -> SourceEvent {
    SourceEvent::End(SourceEnd {
        fatal: Some(ErrorDraft { stage: Stage::Parse, row, key: None, field, code: code.into(), message }),
        ignored_columns: Vec::new(),
        staging: None,
    })
}

/// Reads `spec` to the end (or until `cancel`), sending batches to `out`, and the staged rows
/// into `staging`.
pub(crate) fn read_source(
    spec: SourceSpec,
    mut staging: Spool,
    out: mpsc::Sender<SourceEvent>,
    written: std::sync::mpsc::Receiver<WrittenRows>,
    cancel: Arc<AtomicBool>,
) {
    let out = Out { events: out, written };
    let mut end = read_all(&spec, &mut staging, &out, &cancel);
    if let SourceEvent::End(end) = &mut end {
        match staging.finish() {
            Ok(spooled) => end.staging = Some(spooled),
            Err(e) if end.fatal.is_none() => {
                end.fatal = Some(ErrorDraft::file("io", &format!("cannot write the staging file: {e}")));
            }
            Err(_) => {}
        }
    }
    let _ = out.events.blocking_send(end);
}

/// A batch the writer is done with, handed back to the reader to free: the reader allocated its
/// values, and memory freed on the thread that allocated it takes the allocator's cheap path
/// (freed on a third thread, 5,000 rows took ~6 ms of CPU, next to the reader's 14 ms for them).
pub(crate) type WrittenRows = (Vec<NewRow>, Vec<(u64, SourceRecord)>);

/// Where the reader sends its batches, and gets written ones back to free.
struct Out {
    events: mpsc::Sender<SourceEvent>,
    written: std::sync::mpsc::Receiver<WrittenRows>,
}

fn read_all(spec: &SourceSpec, staging: &mut Spool, out: &Out, cancel: &AtomicBool) -> SourceEvent {
    let input: Box<dyn ferry_formats::Input> = match &spec.input {
        SourceInput::File(path) => match std::fs::File::open(path) {
            Ok(f) => Box::new(std::io::BufReader::with_capacity(256 * 1024, f)),
            Err(e) => return fatal("io", format!("cannot open the stored file: {e}"), None, None),
        },
        SourceInput::Bytes(bytes) => Box::new(std::io::Cursor::new(bytes.clone())),
    };
    let mut reader = match open_reader(&spec.format, input, &spec.limits) {
        Ok(r) => r,
        Err(e) => return fatal(e.kind.code(), e.to_string(), e.row, e.column.clone()),
    };
    let entity = &spec.entity;
    let header_is_complete = matches!(spec.format, DataFormat::Csv { .. } | DataFormat::Xlsx { .. });
    let mut map = match ColumnMap::build(entity, reader.columns(), &spec.mapping, header_is_complete) {
        Ok(m) => m,
        Err(e) => return fatal("missing_columns", e.message, None, e.missing.first().cloned()),
    };
    let mut duplicates = DuplicateKeys::new(spec.work_dir.clone());
    let mut staged_lines = StagedLines::default();
    let mut batch = new_batch(reader.columns(), &map);
    loop {
        if cancel.load(Ordering::Relaxed) {
            return SourceEvent::End(SourceEnd { fatal: None, ignored_columns: map.ignored, staging: None });
        }
        let Some(next) = reader.next_record() else { break };
        let record = match next {
            Ok(r) => r,
            Err(e) if e.is_fatal() => {
                if !send(out, &mut batch, reader.columns(), &map) {
                    return SourceEvent::End(SourceEnd { fatal: None, ignored_columns: map.ignored, staging: None });
                }
                return fatal(e.kind.code(), e.to_string(), e.row, e.column.clone());
            }
            Err(e) => {
                batch.read += 1;
                batch.rejected.push(Rejected {
                    record: None,
                    errors: vec![ErrorDraft {
                        stage: Stage::Parse,
                        row: e.row,
                        key: None,
                        field: e.column.clone(),
                        code: e.kind.code().into(),
                        message: e.message.clone(),
                    }],
                });
                continue;
            }
        };
        if reader.columns().len() > map.targets.len() {
            map.extend(entity, reader.columns(), &spec.mapping);
        }
        batch.read += 1;
        match stage_record(entity, &map, &record, spec.company.as_deref()) {
            Ok(staged) => match duplicates.check(key_hash(entity, &staged), record.row) {
                Err(e) => return fatal("io", format!("cannot write a scratch file: {e}"), None, None),
                Ok(Some(first)) => {
                    let key = describe_key(entity, &staged.company, &staged.values);
                    batch.rejected.push(Rejected {
                        errors: vec![ErrorDraft {
                            stage: Stage::Staging,
                            row: Some(record.row),
                            key: Some(key.clone()),
                            field: None,
                            code: "duplicate_key".into(),
                            message: format!(
                                "the key {key} appears earlier in this file (row {first}); each record may appear once"
                            ),
                        }],
                        record: Some(record),
                    });
                }
                Ok(None) => {
                    if let Err(e) = staged_lines.write(staging, entity, &map, &staged) {
                        return fatal("io", format!("cannot write the staging file: {e}"), None, None);
                    }
                    batch.rows.push((staged, record));
                }
            },
            Err(errors) => {
                let errors = errors
                    .into_iter()
                    .map(|e| ErrorDraft {
                        stage: Stage::Staging,
                        row: Some(record.row),
                        key: key_of_record(entity, &map, &record),
                        field: e.field,
                        code: e.code,
                        message: e.message,
                    })
                    .collect();
                batch.rejected.push(Rejected { record: Some(record), errors });
            }
        }
        if (batch.rows.len() >= spec.batch_rows || batch.rejected.len() >= spec.batch_rows)
            && !send(out, &mut batch, reader.columns(), &map)
        {
            return SourceEvent::End(SourceEnd { fatal: None, ignored_columns: map.ignored, staging: None });
        }
    }
    send(out, &mut batch, reader.columns(), &map);
    SourceEvent::End(SourceEnd { fatal: None, ignored_columns: map.ignored, staging: None })
}

/// Staged rows as JSON lines, `{"row":2,"company":"usmf","values":{"Field":"text",…}}` with
/// the fields the file gives: each line is built in one buffer and written at once, the field
/// names' JSON made once.
#[derive(Default)]
struct StagedLines {
    /// Each mapped field's index and `"Name":`, for the map's targets as they were last seen.
    names: Vec<(usize, Vec<u8>)>,
    targets: usize,
    line: Vec<u8>,
}

impl StagedLines {
    fn write(
        &mut self,
        out: &mut impl std::io::Write,
        entity: &Entity,
        map: &ColumnMap,
        staged: &StagedRow,
    ) -> std::io::Result<()> {
        if self.names.is_empty() || self.targets != map.targets.len() {
            self.targets = map.targets.len();
            self.names.clear();
            for target in map.targets.iter().flatten() {
                if let Target::Field(i) = target {
                    let mut name = serde_json::to_vec(&entity.fields[*i].name)?;
                    name.push(b':');
                    self.names.push((*i, name));
                }
            }
        }
        let line = &mut self.line;
        line.clear();
        // The number through serde_json (itoa): `write!`'s formatting machinery showed in profiles.
        line.extend_from_slice(b"{\"row\":");
        serde_json::to_writer(&mut *line, &staged.row)?;
        line.extend_from_slice(b",\"company\":");
        match &staged.company {
            Some(company) => json_string(line, company)?,
            None => line.extend_from_slice(b"null"),
        }
        line.extend_from_slice(b",\"values\":{");
        for (k, (i, name)) in self.names.iter().enumerate() {
            if k > 0 {
                line.push(b',');
            }
            line.extend_from_slice(name);
            match &staged.values[*i] {
                Value::String(text) => json_string(line, text)?,
                other => serde_json::to_writer(&mut *line, &other.to_text())?,
            }
        }
        line.extend_from_slice(b"}}\n");
        out.write_all(line)
    }
}

/// `text` as a JSON string: as it is between quotes when nothing in it needs escaping (most
/// values), else escaped by serde_json.
fn json_string(out: &mut Vec<u8>, text: &str) -> std::io::Result<()> {
    if text.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
        return Ok(());
    }
    Ok(serde_json::to_writer(out, text)?)
}

fn new_batch(columns: &[String], map: &ColumnMap) -> SourceBatch {
    SourceBatch {
        rows: Vec::new(),
        rejected: Vec::new(),
        read: 0,
        columns: columns.to_vec(),
        mapped_fields: map
            .targets
            .iter()
            .filter_map(|t| match t {
                Some(Target::Field(i)) => Some(*i),
                _ => None,
            })
            .collect(),
    }
}

/// Sends the batch (if it holds anything) and starts a new one; false when the receiver is gone.
fn send(out: &Out, batch: &mut SourceBatch, columns: &[String], map: &ColumnMap) -> bool {
    if batch.read == 0 {
        return true;
    }
    let full = std::mem::replace(batch, new_batch(columns, map));
    tracing::trace!(rows = full.read, "source batch read");
    let sent = out.events.blocking_send(SourceEvent::Batch(full)).is_ok();
    out.written.try_iter().for_each(drop);
    sent
}

/// The key of a record that could not be staged, as far as its key cells can be read.
fn key_of_record(entity: &Entity, map: &ColumnMap, record: &SourceRecord) -> Option<String> {
    let mut parts = Vec::new();
    for &k in &entity.key {
        let cell = map.targets.iter().position(|t| *t == Some(Target::Field(k))).and_then(|c| record.cells.get(c));
        if let Some(ferry_formats::Cell::Text(t) | ferry_formats::Cell::Number(t)) = cell {
            parts.push(format!("{}='{}'", entity.fields[k].name, t.chars().take(60).collect::<String>()));
        }
    }
    (!parts.is_empty()).then(|| parts.join(","))
}

#[cfg(test)]
mod tests {
    use super::json_string;

    #[test]
    fn json_strings_are_serde_jsons_own() {
        let texts = [
            "",
            "C000000001",
            "Müller, Söhne ‘7’ 😀",
            "say \"hi\"",
            "back\\slash",
            "line\nbreak\ttab\r",
            "\u{1}\u{1f}\u{7f}",
            "</script>",
        ];
        for text in texts {
            let mut out = Vec::new();
            json_string(&mut out, text).unwrap();
            assert_eq!(String::from_utf8(out).unwrap(), serde_json::to_string(text).unwrap(), "{text:?}");
        }
    }
}
