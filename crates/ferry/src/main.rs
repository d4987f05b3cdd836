//! `ferry`: parses the command line, runs it on a Tokio runtime and turns an
//! error into `error: <message>` on stderr with exit code 1. The hidden
//! `ferry xslt-worker <xsl> <in> <out>` (one XSLT transform in a child process
//! of the server) is dispatched first, before any parsing, logging or runtime.

use std::process::ExitCode;

use clap::Parser;

/// mimalloc instead of glibc's malloc: the server allocates and frees millions of small values
/// per bulk operation (rows read, decoded, encoded) on many threads; glibc spent a fifth of the
/// replication copy's CPU in `malloc_consolidate`/`_int_free` and kept freed memory in per-thread
/// arenas (RSS).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    if args.next().is_some_and(|command| command == ferry::XSLT_WORKER_COMMAND) {
        let rest: Vec<std::ffi::OsString> = args.collect();
        std::process::exit(ferry_xslt::worker_main(&rest));
    }
    let cli = ferry::cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(ferry::run(cli));
    // Do not wait for stray blocking tasks (e.g. a hash still running after an error).
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            // The client commands tell "failed" from "unreachable" from "record errors".
            e.downcast_ref::<ferry::client::Exit>().map_or(ExitCode::FAILURE, |exit| ExitCode::from(exit.code))
        }
    }
}
