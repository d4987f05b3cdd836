//! Logging set-up: text or JSON lines, filtered by the configured `log.level`.
//! `ferry serve` logs to stdout; admin commands log to stderr so their
//! output (tables, JSON, secrets) stays clean on stdout.

use std::io::IsTerminal;

use anyhow::Context;
use ferry_config::{LogConfig, LogFormat};
use tracing_subscriber::EnvFilter;

/// Where log lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LogTarget {
    Stdout,
    Stderr,
}

/// Installs the global subscriber. A second call (e.g. in tests) is ignored.
pub(crate) fn init(log: &LogConfig, target: LogTarget) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(&log.level).with_context(|| {
        format!("log level '{}' is not a valid filter (e.g. info or info,ferry_api=debug)", log.level)
    })?;
    // Colours only for a terminal: piped and collected logs stay plain text.
    let ansi = match target {
        LogTarget::Stdout => std::io::stdout().is_terminal(),
        LogTarget::Stderr => std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi);
    let result = match (log.format, target) {
        (LogFormat::Text, LogTarget::Stdout) => builder.with_writer(std::io::stdout).try_init(),
        (LogFormat::Text, LogTarget::Stderr) => builder.with_writer(std::io::stderr).try_init(),
        (LogFormat::Json, LogTarget::Stdout) => builder.json().with_writer(std::io::stdout).try_init(),
        (LogFormat::Json, LogTarget::Stderr) => builder.json().with_writer(std::io::stderr).try_init(),
    };
    // Already installed: keep the first subscriber.
    drop(result);
    Ok(())
}
