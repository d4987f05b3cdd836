//! A stand-alone XSLT worker for this crate's tests (ferry itself runs `ferry xslt-worker`):
//! `ferry-xslt-worker <stylesheet.xsl> <input.xml> <output>`.

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    std::process::exit(ferry_xslt::worker_main(&args));
}
