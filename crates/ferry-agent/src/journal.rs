//! The agent's journal: an append-only file of JSON lines, each fsync'd before the step it
//! announces, so a crash at any point leaves enough to finish that step at the next start.
//! Entries: a file move (`move` … `moved`: a rename is atomic, a copy across file systems is
//! not, so a half-done move is finished from the journal), a dequeued export file (`dequeued` …
//! `delivered`: finished — saved, acknowledged — with the dequeue's own answer) and a requested
//! package export (`exporting` … `exported`). At start-up [`Journal::open`] answers what is
//! pending and rewrites the file with only that.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde_json::{Value, json};

/// A step begun and not known to be finished.
#[derive(Clone, Debug)]
pub enum Pending {
    Move { from: PathBuf, to: PathBuf },
    Dequeued { job_name: String, answer: Value },
    Exporting { job_name: String, execution_id: String },
}

pub struct Journal {
    path: PathBuf,
    file: Mutex<std::fs::File>,
}

fn key(entry: &Value) -> String {
    match entry["op"].as_str().unwrap_or_default() {
        "move" | "moved" => format!("move:{}", entry["from"].as_str().unwrap_or_default()),
        "dequeued" | "delivered" => format!("dequeue:{}", entry["correlation_id"].as_str().unwrap_or_default()),
        _ => format!("export:{}", entry["execution_id"].as_str().unwrap_or_default()),
    }
}

impl Journal {
    /// Opens (creating) the journal in `dir`; answers it and the steps still pending.
    pub fn open(dir: &Path) -> std::io::Result<(Journal, Vec<Pending>)> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join("journal.jsonl");
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e),
        };
        // A torn last line (a crash mid-write) is skipped: its step had not begun.
        let mut open: Vec<(String, Value)> = Vec::new();
        for entry in text.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()) {
            let k = key(&entry);
            match entry["op"].as_str() {
                Some("move" | "dequeued" | "exporting") => {
                    open.retain(|(existing, _)| *existing != k);
                    open.push((k, entry));
                }
                Some(_) => open.retain(|(existing, _)| *existing != k),
                None => {}
            }
        }
        let mut compacted = String::new();
        for (_, entry) in &open {
            compacted.push_str(&entry.to_string());
            compacted.push('\n');
        }
        let temp = dir.join("journal.jsonl.tmp");
        {
            let mut file = std::fs::File::create(&temp)?;
            file.write_all(compacted.as_bytes())?;
            file.sync_all()?;
        }
        std::fs::rename(&temp, &path)?;
        ferry_client::files::sync_dir(&path)?;
        let file = std::fs::OpenOptions::new().append(true).open(&path)?;
        let pending = open
            .into_iter()
            .filter_map(|(_, e)| match e["op"].as_str()? {
                "move" => Some(Pending::Move {
                    from: PathBuf::from(e["from"].as_str()?),
                    to: PathBuf::from(e["to"].as_str()?),
                }),
                "dequeued" => {
                    Some(Pending::Dequeued { job_name: e["job"].as_str()?.to_owned(), answer: e["answer"].clone() })
                }
                "exporting" => Some(Pending::Exporting {
                    job_name: e["job"].as_str()?.to_owned(),
                    execution_id: e["execution_id"].as_str()?.to_owned(),
                }),
                _ => None,
            })
            .collect();
        Ok((Journal { path, file: Mutex::new(file) }, pending))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one entry and fsyncs it.
    fn append(&self, entry: Value) -> std::io::Result<()> {
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        let mut line = entry.to_string();
        line.push('\n');
        file.write_all(line.as_bytes())?;
        file.sync_data()
    }

    pub fn moving(&self, from: &Path, to: &Path) -> std::io::Result<()> {
        self.append(json!({ "op": "move", "from": from, "to": to }))
    }

    pub fn moved(&self, from: &Path) -> std::io::Result<()> {
        self.append(json!({ "op": "moved", "from": from }))
    }

    pub fn dequeued(&self, job_name: &str, correlation_id: &str, answer: &Value) -> std::io::Result<()> {
        self.append(json!({ "op": "dequeued", "job": job_name, "correlation_id": correlation_id, "answer": answer }))
    }

    pub fn delivered(&self, correlation_id: &str) -> std::io::Result<()> {
        self.append(json!({ "op": "delivered", "correlation_id": correlation_id }))
    }

    pub fn exporting(&self, job_name: &str, execution_id: &str) -> std::io::Result<()> {
        self.append(json!({ "op": "exporting", "job": job_name, "execution_id": execution_id }))
    }

    pub fn exported(&self, execution_id: &str) -> std::io::Result<()> {
        self.append(json!({ "op": "exported", "execution_id": execution_id }))
    }
}

/// Moves `from` to `to` (replacing it): a rename, or — across file systems — a copy, fsync and
/// removal announced in the journal first.
pub fn move_file(journal: &Journal, from: &Path, to: &Path) -> std::io::Result<()> {
    if let Some(dir) = to.parent() {
        std::fs::create_dir_all(dir)?;
    }
    journal.moving(from, to)?;
    finish_move(from, to)?;
    journal.moved(from)
}

/// Finishes a move: nothing to do when `from` is gone (it happened), else rename or copy.
pub fn finish_move(from: &Path, to: &Path) -> std::io::Result<()> {
    if !from.exists() {
        return Ok(());
    }
    if let Some(dir) = to.parent() {
        std::fs::create_dir_all(dir)?;
    }
    match std::fs::rename(from, to) {
        Ok(()) => {}
        Err(_) => {
            // Another file system: a whole copy under a temporary name, then the rename.
            let temp = ferry_client::files::temp_name(to);
            std::fs::copy(from, &temp)?;
            std::fs::File::open(&temp)?.sync_all()?;
            std::fs::rename(&temp, to)?;
            std::fs::remove_file(from)?;
        }
    }
    ferry_client::files::sync_dir(to)?;
    ferry_client::files::sync_dir(from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_steps_survive_and_finished_ones_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let (journal, pending) = Journal::open(dir.path()).unwrap();
        assert!(pending.is_empty());
        journal.moving(Path::new("/a"), Path::new("/b")).unwrap();
        journal.moving(Path::new("/c"), Path::new("/d")).unwrap();
        journal.moved(Path::new("/a")).unwrap();
        journal.dequeued("dl", "X", &json!({ "CorrelationId": "X" })).unwrap();
        journal.exporting("ex", "E1").unwrap();
        journal.exported("E1").unwrap();
        drop(journal);
        std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join("journal.jsonl"))
            .unwrap()
            .write_all(b"{\"op\":\"mov")
            .unwrap();
        let (_, pending) = Journal::open(dir.path()).unwrap();
        assert_eq!(pending.len(), 2, "{pending:?}");
        assert!(matches!(&pending[0], Pending::Move { from, .. } if from == Path::new("/c")));
        assert!(matches!(&pending[1], Pending::Dequeued { answer, .. } if answer["CorrelationId"] == "X"));
    }
}
