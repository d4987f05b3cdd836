//! XSLT 1.0 transforms for ferry's imports (a data project's `EntityTransformList`), on libxslt.
//!
//! libxml2, libxslt and libexslt are loaded at run time, not linked: a machine without them builds
//! and runs ferry, and only XSLT fails there, with [`XsltError::Unavailable`] ([`availability`]
//! lets the server warn at start-up).
//!
//! libxslt is C, and a malformed or malicious stylesheet can crash it (a stylesheet that does not
//! compile, when applied anyway, segfaults). So ferry never transforms in the server process:
//! - [`check_stylesheet`] compiles a stylesheet in-process — compile only, never apply — so a bad
//!   one is refused with libxslt's own messages (with line numbers) when a project is saved;
//! - [`XsltRunner::transform`] runs each transform in a child process (the `ferry xslt-worker`
//!   subcommand, which calls [`worker_main`]) under a timeout, an input-size cap and memory and
//!   output-size limits, so a crash, a runaway stylesheet or a memory bomb only ends the child.
//!
//! Everything is locked down in both places: no file or network access from stylesheets
//! (`document()`, `xsl:include`, `xsl:import`, `exsl:document`), and no DTDs, external entities or
//! entity expansion in stylesheets or input documents. The unsafe code is confined to `ffi.rs` and
//! `ffi/sys.rs`.

#[allow(unsafe_code)]
mod ffi;
mod runner;

use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::time::Duration;

pub use runner::{XsltRunner, worker_main};

/// Largest stylesheet accepted, in bytes.
pub const MAX_STYLESHEET_BYTES: u64 = 16 << 20;

/// Why a transform (or a stylesheet check) failed. The messages are meant for the user who wrote
/// the stylesheet or sent the file.
#[derive(Debug, thiserror::Error)]
pub enum XsltError {
    /// The stylesheet is not well-formed XML or not valid XSLT 1.0; libxslt's messages.
    #[error("the XSLT stylesheet is not valid: {0}")]
    InvalidStylesheet(String),
    /// The input document is not well-formed XML, or declares a DTD.
    #[error("the transform's input is not acceptable XML: {0}")]
    InvalidInput(String),
    /// The stylesheet (or a document) tried to read or write a file or reach the network.
    #[error("the transform was refused: {0}")]
    Forbidden(String),
    /// The stylesheet compiled but applying it failed (a run-time error, or `xsl:message
    /// terminate="yes"`); libxslt's messages.
    #[error("the transform failed: {0}")]
    Failed(String),
    /// The worker process died: killed by a signal, or an unexpected exit.
    #[error("the XSLT worker crashed ({0}); the stylesheet or the input made libxslt fail")]
    Crashed(String),
    /// The transform ran longer than the runner's timeout and was killed.
    #[error("the transform did not finish within {} s and was stopped", .0.as_secs_f64())]
    TimedOut(Duration),
    /// The input, the stylesheet or the output exceeds its size limit.
    #[error("{0}")]
    TooLarge(String),
    /// Reading or writing a file, or starting the worker, failed.
    #[error("{0}: {1}")]
    Io(String, #[source] std::io::Error),
    /// libxml2, libxslt or libexslt could not be loaded in this process (or lacks a function ferry
    /// calls); the message names the library and says what to install.
    #[error("{0}")]
    Unavailable(String),
}

impl XsltError {
    /// A stable machine-readable code (also the worker's wire format).
    pub fn code(&self) -> &'static str {
        match self {
            XsltError::InvalidStylesheet(_) => "invalid_stylesheet",
            XsltError::InvalidInput(_) => "invalid_input",
            XsltError::Forbidden(_) => "forbidden",
            XsltError::Failed(_) => "failed",
            XsltError::Crashed(_) => "crashed",
            XsltError::TimedOut(_) => "timed_out",
            XsltError::TooLarge(_) => "too_large",
            XsltError::Io(..) => "io",
            XsltError::Unavailable(_) => "unavailable",
        }
    }
}

/// Whether XSLT can run in this process: loads libxml2, libxslt and libexslt on the first call (later
/// calls are cheap) and otherwise returns the message of [`XsltError::Unavailable`], which names the
/// missing library and what to install. Meant for the server to call once at start-up, to warn.
pub fn availability() -> Result<(), String> {
    ffi::availability()
}

/// Compiles and checks a stylesheet in this process (parse and compile only — never applies it),
/// so a bad stylesheet is refused when a project is saved. Errors carry libxslt's messages, with
/// line numbers. Safe to call from any thread; calls are serialized.
pub fn check_stylesheet(xsl: &[u8]) -> Result<(), XsltError> {
    if xsl.len() as u64 > MAX_STYLESHEET_BYTES {
        return Err(stylesheet_too_large(xsl.len() as u64));
    }
    ffi::check(xsl, "stylesheet.xsl")
}

fn stylesheet_too_large(bytes: u64) -> XsltError {
    XsltError::TooLarge(format!("the stylesheet has {bytes} bytes; at most {MAX_STYLESHEET_BYTES} are accepted"))
}

/// Runs one transform in THIS process: reads the input XML file, applies the stylesheet file and
/// writes the output file (removed again if the transform fails). Only the worker subprocess
/// should call this: a crash in libxslt takes the calling process down.
pub fn transform_in_process(xsl: &Path, input: &Path, output: &Path) -> Result<(), XsltError> {
    let stylesheet = read_stylesheet(xsl)?;
    let input_file =
        File::open(input).map_err(|e| XsltError::Io(format!("could not open the input {}", input.display()), e))?;
    let output_file = File::create(output)
        .map_err(|e| XsltError::Io(format!("could not create the output {}", output.display()), e))?;
    let result = ffi::transform(&stylesheet, &url_of(xsl), &input_file, &url_of(input), &output_file).map(drop);
    drop(output_file);
    if result.is_err() {
        let _ = std::fs::remove_file(output);
    }
    result
}

fn read_stylesheet(xsl: &Path) -> Result<Vec<u8>, XsltError> {
    let context = || format!("could not read the stylesheet {}", xsl.display());
    let file = File::open(xsl).map_err(|e| XsltError::Io(context(), e))?;
    let mut bytes = Vec::new();
    file.take(MAX_STYLESHEET_BYTES + 1).read_to_end(&mut bytes).map_err(|e| XsltError::Io(context(), e))?;
    if bytes.len() as u64 > MAX_STYLESHEET_BYTES {
        return Err(stylesheet_too_large(bytes.len() as u64));
    }
    Ok(bytes)
}

/// The name libxml2 gives a document (its base URI, and the file named in messages).
fn url_of(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "document.xml".into())
}
