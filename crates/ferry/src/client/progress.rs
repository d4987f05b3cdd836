//! A progress bar for uploads and downloads, hand-drawn on stderr — only when stderr is a
//! terminal, so scripts and logs see nothing of it: name, bar, percentage and bytes, redrawn at
//! most ten times a second and cleared at the end.

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferry_client::{NoProgress, Progress};

/// A bar on stderr when it is a terminal, else nothing.
pub(crate) fn for_stderr() -> Arc<dyn Progress> {
    if std::io::stderr().is_terminal() { Arc::new(Bar::default()) } else { Arc::new(NoProgress) }
}

#[derive(Default)]
struct Bar {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    name: String,
    total: Option<u64>,
    drawn: Option<Instant>,
}

const WIDTH: usize = 30;

fn size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 => format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64),
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}

impl Progress for Bar {
    fn start(&self, name: &str, total: Option<u64>) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        *state = State { name: name.to_owned(), total, drawn: None };
    }

    fn advance(&self, done: u64) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let finished = state.total == Some(done);
        if state.drawn.is_some_and(|t| now - t < Duration::from_millis(100)) && !finished {
            return;
        }
        state.drawn = Some(now);
        let line = match state.total {
            Some(total) if total > 0 => {
                let filled = ((done.min(total) as f64 / total as f64) * WIDTH as f64) as usize;
                format!(
                    "{} [{}{}] {:>3}% {}/{}",
                    state.name,
                    "#".repeat(filled),
                    " ".repeat(WIDTH - filled),
                    done.min(total) * 100 / total,
                    size(done),
                    size(total)
                )
            }
            _ => format!("{} {}", state.name, size(done)),
        };
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[2K{line}");
        let _ = err.flush();
    }

    fn finish(&self) {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.drawn.is_some() {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
        }
    }
}
