//! Transforms in a child process: the runner (server side) and the worker's entry point.
//!
//! The protocol is small: the runner starts `program args_before… <xsl> <input> <output>` with a
//! cleared environment (plus the limits below), in a process group of its own, stdin and stdout
//! closed. The worker exits 0 when the output is written; 2 when the transform failed, after one
//! line `ferry-xslt-error <code>: <message>` on stderr; anything else (a signal, a panic's 101) is
//! a crash. The worker applies the memory and output-size limits to itself with `setrlimit`, so a
//! runaway transform fails (or dies of SIGXFSZ) instead of exhausting the machine.

use crate::{MAX_STYLESHEET_BYTES, XsltError, ffi, transform_in_process};
use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Prefix of the worker's error line on stderr.
const WIRE_PREFIX: &str = "ferry-xslt-error ";
/// Environment variables through which the runner hands the worker its limits.
const ENV_MAX_MEMORY: &str = "FERRY_XSLT_MAX_MEMORY_BYTES";
const ENV_MAX_OUTPUT: &str = "FERRY_XSLT_MAX_OUTPUT_BYTES";
/// The worker's exit code for a transform that failed cleanly.
const EXIT_FAILED: i32 = 2;
/// The worker's exit code for wrong arguments (a wiring bug, reported as a crash).
const EXIT_USAGE: i32 = 64;
/// Most bytes of the worker's stderr kept.
const MAX_STDERR_BYTES: u64 = 64 * 1024;

/// Runs transforms in a child process, so a crash in the C library only ends the child.
///
/// `program args_before…` must start a process that calls [`worker_main`] with the remaining
/// arguments (for ferry: the `ferry` binary and `["xslt-worker"]`). Each call to
/// [`XsltRunner::transform`] starts one child; the caller bounds how many run at once.
#[derive(Clone, Debug)]
pub struct XsltRunner {
    program: PathBuf,
    args_before: Vec<OsString>,
    timeout: Duration,
    max_input_bytes: u64,
    max_memory_bytes: u64,
    max_output_bytes: u64,
}

impl XsltRunner {
    /// Defaults: a 10-minute timeout, inputs up to 512 MiB, 4 GiB of address space and 4 GiB of
    /// output per transform.
    pub fn new(program: PathBuf, args_before: Vec<OsString>) -> Self {
        XsltRunner {
            program,
            args_before,
            timeout: Duration::from_secs(600),
            max_input_bytes: 512 << 20,
            max_memory_bytes: 4 << 30,
            max_output_bytes: 4 << 30,
        }
    }

    /// The longest a transform may run before its worker is killed.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The largest input file accepted (checked before the worker starts).
    pub fn with_max_input_bytes(mut self, max_input_bytes: u64) -> Self {
        self.max_input_bytes = max_input_bytes;
        self
    }

    /// The worker's address-space limit (`RLIMIT_AS`); the parsed input takes several times its
    /// size in memory.
    pub fn with_max_memory_bytes(mut self, max_memory_bytes: u64) -> Self {
        self.max_memory_bytes = max_memory_bytes;
        self
    }

    /// The largest output file the worker may write (`RLIMIT_FSIZE`).
    pub fn with_max_output_bytes(mut self, max_output_bytes: u64) -> Self {
        self.max_output_bytes = max_output_bytes;
        self
    }

    /// Applies the stylesheet file `xsl` to the XML file `input` and writes `output`, in a child
    /// process. Blocks until the child ends (use a blocking thread). On any error `output` is
    /// removed, so a partial result is never read.
    pub fn transform(&self, xsl: &Path, input: &Path, output: &Path) -> Result<(), XsltError> {
        let result = self.run(xsl, input, output);
        if result.is_err() {
            let _ = std::fs::remove_file(output);
        }
        result
    }

    fn run(&self, xsl: &Path, input: &Path, output: &Path) -> Result<(), XsltError> {
        let xsl_bytes = file_size(xsl, "the stylesheet")?;
        if xsl_bytes > MAX_STYLESHEET_BYTES {
            return Err(crate::stylesheet_too_large(xsl_bytes));
        }
        let input_bytes = file_size(input, "the input")?;
        if input_bytes > self.max_input_bytes {
            return Err(XsltError::TooLarge(format!(
                "the transform's input has {input_bytes} bytes; at most {} are accepted",
                self.max_input_bytes
            )));
        }

        let mut command = Command::new(&self.program);
        command
            .args(&self.args_before)
            .arg(xsl)
            .arg(input)
            .arg(output)
            .env_clear()
            .env(ENV_MAX_MEMORY, self.max_memory_bytes.to_string())
            .env(ENV_MAX_OUTPUT, self.max_output_bytes.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            // A group of its own: a timeout kills everything the worker started, and signals
            // meant for the server's group (a terminal's Ctrl-C) do not reach it.
            .process_group(0);
        for key in ["PATH", "LD_LIBRARY_PATH"] {
            if let Some(value) = std::env::var_os(key) {
                command.env(key, value);
            }
        }
        let mut child = command
            .spawn()
            .map_err(|e| XsltError::Io(format!("could not start the XSLT worker {}", self.program.display()), e))?;

        // Drain stderr on a thread so a chatty worker never blocks on a full pipe.
        let stderr = child.stderr.take();
        let reader = std::thread::spawn(move || {
            let mut kept = Vec::new();
            if let Some(mut stderr) = stderr {
                let _ = (&mut stderr).take(MAX_STDERR_BYTES).read_to_end(&mut kept);
                let _ = std::io::copy(&mut stderr, &mut std::io::sink());
            }
            kept
        });

        let deadline = Instant::now() + self.timeout;
        let mut pause = Duration::from_millis(1);
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) => {}
                Err(e) => {
                    kill(&mut child);
                    return Err(XsltError::Io("could not wait for the XSLT worker".into(), e));
                }
            }
            let now = Instant::now();
            if now >= deadline {
                kill(&mut child);
                // The reader thread ends when the last holder of the pipe is gone; not joined, so a
                // stray grandchild cannot hold the caller.
                return Err(XsltError::TimedOut(self.timeout));
            }
            std::thread::sleep(pause.min(deadline - now));
            pause = (pause * 2).min(Duration::from_millis(50));
        };
        let stderr = reader.join().unwrap_or_default();
        outcome(status, &String::from_utf8_lossy(&stderr), self.max_output_bytes)
    }
}

fn file_size(path: &Path, what: &str) -> Result<u64, XsltError> {
    std::fs::metadata(path)
        .map(|m| m.len())
        .map_err(|e| XsltError::Io(format!("could not read {what} {}", path.display()), e))
}

fn kill(child: &mut std::process::Child) {
    ffi::kill_process_group(child.id());
    let _ = child.kill();
    let _ = child.wait();
}

/// Maps the worker's exit status and stderr to the transform's result.
fn outcome(status: ExitStatus, stderr: &str, max_output_bytes: u64) -> Result<(), XsltError> {
    if status.success() {
        return Ok(());
    }
    if let Some(signal) = status.signal() {
        if signal == libc::SIGXFSZ {
            return Err(XsltError::TooLarge(format!(
                "the transform's output exceeds {max_output_bytes} bytes and was stopped"
            )));
        }
        return Err(XsltError::Crashed(format!("killed by signal {signal}{}{}", signal_name(signal), tail(stderr))));
    }
    let code = status.code().unwrap_or(-1);
    if code == EXIT_FAILED
        && let Some(error) = stderr.lines().rev().find_map(|line| line.strip_prefix(WIRE_PREFIX)).and_then(decode)
    {
        return Err(error);
    }
    Err(XsltError::Crashed(format!("exited with status {code}{}", tail(stderr))))
}

fn signal_name(signal: i32) -> &'static str {
    match signal {
        libc::SIGSEGV => " (SIGSEGV)",
        libc::SIGABRT => " (SIGABRT)",
        libc::SIGBUS => " (SIGBUS)",
        libc::SIGFPE => " (SIGFPE)",
        libc::SIGILL => " (SIGILL)",
        libc::SIGKILL => " (SIGKILL)",
        libc::SIGTERM => " (SIGTERM)",
        libc::SIGXCPU => " (SIGXCPU)",
        _ => "",
    }
}

/// The last line of the worker's stderr, as context for a crash.
fn tail(stderr: &str) -> String {
    match stderr.lines().rev().map(str::trim).find(|l| !l.is_empty()) {
        Some(line) => format!(": {}", line.chars().take(500).collect::<String>()),
        None => String::new(),
    }
}

/// The worker's one error line: `<code>: <message>`.
fn encode(error: &XsltError) -> String {
    let message = match error {
        XsltError::InvalidStylesheet(m)
        | XsltError::InvalidInput(m)
        | XsltError::Forbidden(m)
        | XsltError::Failed(m)
        | XsltError::Crashed(m)
        | XsltError::TooLarge(m)
        | XsltError::Unavailable(m) => m.clone(),
        XsltError::TimedOut(d) => d.as_millis().to_string(),
        XsltError::Io(context, e) => format!("{}\t{e}", context.replace('\t', " ")),
    };
    let message = message.replace(['\r', '\n'], " ");
    format!("{WIRE_PREFIX}{}: {message}", error.code())
}

fn decode(line: &str) -> Option<XsltError> {
    let (code, message) = line.split_once(": ")?;
    let m = message.to_owned();
    Some(match code {
        "invalid_stylesheet" => XsltError::InvalidStylesheet(m),
        "invalid_input" => XsltError::InvalidInput(m),
        "forbidden" => XsltError::Forbidden(m),
        "failed" => XsltError::Failed(m),
        "crashed" => XsltError::Crashed(m),
        "too_large" => XsltError::TooLarge(m),
        "unavailable" => XsltError::Unavailable(m),
        "timed_out" => XsltError::TimedOut(Duration::from_millis(m.parse().ok()?)),
        "io" => {
            let (context, error) = message.split_once('\t').unwrap_or((message, "failed"));
            XsltError::Io(format!("in the XSLT worker: {context}"), std::io::Error::other(error.to_owned()))
        }
        _ => return None,
    })
}

/// The entry point of the worker subprocess. `args` are `[xsl, input, output]` (the arguments after
/// the subcommand). Returns the exit code: 0 when the output is written, 2 when the transform
/// failed (one line on stderr says why), 64 for wrong arguments.
pub fn worker_main(args: &[OsString]) -> i32 {
    let [xsl, input, output] = args else {
        eprintln!("usage: xslt-worker <stylesheet.xsl> <input.xml> <output>");
        return EXIT_USAGE;
    };
    let limits = ffi::limit_resources(env_bytes(ENV_MAX_MEMORY), env_bytes(ENV_MAX_OUTPUT));
    let result = match limits {
        Ok(()) => transform_in_process(Path::new(xsl), Path::new(input), Path::new(output)),
        Err(message) => Err(XsltError::Failed(message)),
    };
    match result {
        Ok(()) => 0,
        Err(error) => {
            eprintln!("{}", encode(&error));
            EXIT_FAILED
        }
    }
}

fn env_bytes(key: &str) -> Option<u64> {
    std::env::var_os(key).as_deref().and_then(OsStr::to_str).and_then(|v| v.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_format_round_trips() {
        let errors = [
            XsltError::InvalidStylesheet("line 3: bad\nthing".into()),
            XsltError::Forbidden("tried /etc/passwd".into()),
            XsltError::Io("could not create x".into(), std::io::Error::other("denied")),
            XsltError::Unavailable("XSLT is unavailable: libxslt.so.1 could not be loaded".into()),
        ];
        for error in errors {
            let line = encode(&error);
            assert!(!line.contains('\n'));
            let back = decode(line.strip_prefix(WIRE_PREFIX).unwrap()).unwrap();
            assert_eq!(back.code(), error.code());
        }
        assert!(decode("nonsense").is_none());
    }
}
