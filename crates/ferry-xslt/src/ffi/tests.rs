//! Loading the libraries: what is reported when they, or a function in them, are missing, from the
//! loader itself and end to end through a worker process that cannot load them.

use super::sys::{self, Candidates, PLATFORM_CANDIDATES};
use crate::{XsltError, XsltRunner};
use std::ffi::OsString;
use std::time::Duration;

/// Names no system has a library by.
const MISSING: Candidates = Candidates {
    xml: &["libferry-missing-xml2.so.0"],
    xslt: &["libferry-missing-xslt.so.0"],
    exslt: &["libferry-missing-exslt.so.0"],
};

fn load_error(candidates: &Candidates) -> String {
    match sys::load(candidates) {
        Ok(_) => panic!("the libraries loaded"),
        Err(message) => message,
    }
}

#[test]
fn a_missing_library_is_named_with_what_to_install() {
    let message = load_error(&MISSING);
    assert!(message.starts_with("XSLT is unavailable: libferry-missing-xml2.so.0 could not be loaded ("), "{message}");
    assert!(message.contains("install libxslt"), "{message}");
    assert!(message.contains("everything else works without it"), "{message}");

    let message = load_error(&Candidates { xslt: MISSING.xslt, ..PLATFORM_CANDIDATES });
    assert!(message.contains("libferry-missing-xslt.so.0 could not be loaded"), "{message}");
    assert!(!message.contains("libxml2"), "{message}");
}

#[test]
fn a_missing_function_is_reported_when_loading() {
    // libxml2 in place of libexslt: it opens, but has no exsltRegisterAll.
    let message = load_error(&Candidates { exslt: PLATFORM_CANDIDATES.xml, ..PLATFORM_CANDIDATES });
    let expected = format!("XSLT is unavailable: {} has no function exsltRegisterAll", PLATFORM_CANDIDATES.xml[0]);
    assert!(message.starts_with(&expected), "{message}");
}

/// The argument by which the run of this test binary started below knows it plays the worker.
const PLAY_WORKER: &str = "play-a-worker-without-the-libraries";

/// Runs this test binary as the runner's worker, with only this test selected and the worker's
/// arguments after [`PLAY_WORKER`]. In that run the libraries are loaded from names that do not
/// exist, so the whole path — loading, the error, the worker's exit and its error line, and the
/// runner's reading of it — is the one a machine without libxslt takes.
#[test]
fn a_worker_without_the_libraries_reports_xslt_unavailable() {
    let args: Vec<OsString> = std::env::args_os().collect();
    if let Some(at) = args.iter().position(|arg| arg == PLAY_WORKER) {
        play_worker_without_libraries(&args[at + 1..]);
    }

    let dir = tempfile::tempdir().unwrap();
    let xsl = dir.path().join("t.xsl");
    let input = dir.path().join("in.xml");
    std::fs::write(&xsl, r#"<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"/>"#)
        .unwrap();
    std::fs::write(&input, "<a/>").unwrap();
    let output = dir.path().join("out.xml");

    let this_test = format!("{}::a_worker_without_the_libraries_reports_xslt_unavailable", module_path_in_crate());
    // `--nocapture`: the worker's error line must reach stderr before the run exits.
    let args_before = ["--exact", &this_test, "--nocapture", PLAY_WORKER].map(OsString::from).to_vec();
    let runner = XsltRunner::new(std::env::current_exe().unwrap(), args_before).with_timeout(Duration::from_secs(60));
    let error = runner.transform(&xsl, &input, &output).unwrap_err();
    let XsltError::Unavailable(message) = &error else { panic!("{error:?}") };
    assert!(message.starts_with("XSLT is unavailable: libferry-missing-xml2.so.0 could not be loaded"), "{message}");
    assert!(message.contains("install libxslt"), "{message}");
    assert_eq!(error.to_string(), *message);
    assert!(!output.exists());
}

/// This module's path as the test harness names it (without the crate's name).
fn module_path_in_crate() -> &'static str {
    module_path!().split_once("::").map_or("", |(_crate, path)| path)
}

/// The worker's side of the test above: never returns. When the in-process checks fail it exits
/// with status 3 after saying why, which the runner reports as a crash ending with that line.
fn play_worker_without_libraries(worker_args: &[OsString]) -> ! {
    if let Err(mismatch) = unavailable_in_this_process() {
        eprintln!("{mismatch}");
        std::process::exit(3);
    }
    std::process::exit(crate::worker_main(worker_args));
}

/// Makes this process load the libraries from [`MISSING`], then checks that the server's entry
/// points report them unavailable with one and the same message.
fn unavailable_in_this_process() -> Result<(), String> {
    if !sys::load_in_this_process_from(&MISSING) {
        return Err("the libraries were loaded before the test could replace their names".into());
    }
    let checked = crate::check_stylesheet(b"<x/>");
    let availability = crate::availability();
    match (&checked, &availability) {
        (Err(XsltError::Unavailable(checked)), Err(available)) if checked == available => Ok(()),
        _ => Err(format!("check_stylesheet gave {checked:?} and availability gave {availability:?}")),
    }
}
