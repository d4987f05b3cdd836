//! The only unsafe code of the crate: libxml2 and libxslt, locked down.
//!
//! The libraries are loaded at run time (see `sys.rs`, which declares what is used of them); when
//! they cannot be, every operation here fails with [`XsltError::Unavailable`] and nothing else
//! happens. What this module guarantees to the rest of the crate:
//! - every pointer a C function returns is checked for NULL before use, and every C object is owned
//!   by a guard that frees it exactly once (a stylesheet owns the document it was compiled from);
//! - nothing is read or written but what the caller hands over: libxslt's security preferences
//!   forbid reading and writing files, creating directories and network access (so `document()`,
//!   `xsl:include`/`xsl:import` and `exsl:document` fail), its document loader and libxml2's
//!   external entity loader refuse everything, and documents are parsed without network access,
//!   without loading DTDs or substituting entities, and are refused outright when they declare a
//!   DTD (`<!DOCTYPE …>`: XXE, billion laughs);
//! - the messages libxml2 and libxslt print (to stderr, by default) are captured and returned with
//!   the error instead (libxslt's error channel is variadic, which Rust cannot implement, so its
//!   output goes to a `FILE` opened with `fopencookie` whose write callback appends to a capped
//!   buffer; libxml2's errors come through its structured, non-variadic handler).
//!
//! libxslt keeps global state (error channel, security preferences, loader), so all use of the C
//! libraries in a process is serialized by one lock.

mod sys;
#[cfg(test)]
mod tests;

use crate::XsltError;
use std::cell::RefCell;
use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::fmt::Write as _;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::ptr;
use std::sync::{Mutex, Once};

/// Options for every document parsed here: no network, no DTD loading, no entity substitution
/// (none of `XML_PARSE_NOENT`, `XML_PARSE_DTDLOAD`, `XML_PARSE_DTDATTR`, `XML_PARSE_HUGE`);
/// CDATA sections become text, as the XSLT data model sees them anyway.
const PARSE_OPTIONS: c_int = sys::XML_PARSE_NONET | sys::XML_PARSE_NOCDATA;

/// Most bytes of library messages kept per operation; the rest is dropped (a stylesheet can print
/// any amount with `xsl:message`).
const MAX_MESSAGE_BYTES: usize = 16 * 1024;

/// Serializes all use of libxml2/libxslt in this process (their globals are shared).
static LOCK: Mutex<()> = Mutex::new(());
static INIT: Once = Once::new();

/// The `FILE` libxml2's and libxslt's generic error channels write to; set once by [`init`].
static ERROR_FILE: std::sync::atomic::AtomicPtr<libc::FILE> = std::sync::atomic::AtomicPtr::new(ptr::null_mut());
/// The security preferences every transform context gets; set once by [`init`].
static SECURITY_PREFS: std::sync::atomic::AtomicPtr<sys::XsltSecurityPrefs> =
    std::sync::atomic::AtomicPtr::new(ptr::null_mut());

/// What the C libraries reported during one operation on this thread.
#[derive(Default)]
struct Capture {
    messages: String,
    truncated: bool,
    /// What the stylesheet or a document tried to reach (a file, URL or entity), in order.
    blocked: Vec<String>,
    /// A document declared a DTD and its parse was stopped.
    doctype: bool,
}

thread_local! {
    static CAPTURE: RefCell<Capture> = RefCell::new(Capture::default());
    /// An allocation failed during this thread's current operation. libxml2 carries on after
    /// one (a string that could not grow comes back empty), so any result is suspect.
    static OUT_OF_MEMORY: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn capture_text(text: &str) {
    CAPTURE.with(|c| {
        // The callbacks never run while the capture is borrowed, but never panic inside one.
        if let Ok(mut c) = c.try_borrow_mut() {
            let room = MAX_MESSAGE_BYTES.saturating_sub(c.messages.len());
            if text.len() <= room {
                c.messages.push_str(text);
            } else {
                let mut end = room;
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                c.messages.push_str(&text[..end]);
                c.truncated = true;
            }
        }
    });
}

fn capture_blocked(what: String) {
    CAPTURE.with(|c| {
        if let Ok(mut c) = c.try_borrow_mut()
            && c.blocked.len() < 16
        {
            c.blocked.push(what);
        }
    });
}

fn capture_doctype() {
    CAPTURE.with(|c| {
        if let Ok(mut c) = c.try_borrow_mut() {
            c.doctype = true;
        }
    });
}

fn take_capture() -> Capture {
    CAPTURE.with(|c| std::mem::take(&mut *c.borrow_mut()))
}

impl Capture {
    /// The messages as one line: lines joined with "; ", blank lines and caret markers dropped.
    fn one_line(&self) -> String {
        let mut out = String::new();
        for line in self.messages.lines().map(str::trim) {
            if line.is_empty() || line.chars().all(|c| c == '^' || c.is_whitespace()) {
                continue;
            }
            if !out.is_empty() {
                out.push_str("; ");
            }
            out.push_str(line);
        }
        if self.truncated {
            out.push_str(" …");
        }
        out
    }

    fn blocked_error(&self) -> Option<XsltError> {
        let first = self.blocked.first()?;
        Some(XsltError::Forbidden(format!(
            "the stylesheet or document tried to load '{first}'; transforms may not read or write files, \
             load external entities or use the network"
        )))
    }
}

/// Converts a C string from the libraries to Rust text (lossily; NULL becomes "").
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string that stays valid for the call.
unsafe fn lossy(p: *const c_char) -> String {
    if p.is_null() {
        return String::new();
    }
    // SAFETY: non-NULL and NUL-terminated per this function's contract.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

// ---- callbacks handed to the C libraries (never unwind: they only push to the capture) ----

/// `fopencookie` write callback: the generic error channels' output lands here.
unsafe extern "C" fn cookie_write(_cookie: *mut c_void, buf: *const c_char, size: usize) -> isize {
    if !buf.is_null() && size > 0 {
        // SAFETY: stdio hands us `size` readable bytes at `buf`.
        let bytes = unsafe { std::slice::from_raw_parts(buf.cast::<u8>(), size) };
        let text = String::from_utf8_lossy(bytes);
        // libxslt reports its own failed allocations only as text.
        if text.contains("malloc failed") || text.contains("Memory allocation failed") {
            OUT_OF_MEMORY.set(true);
        }
        capture_text(&text);
    }
    isize::try_from(size).unwrap_or(isize::MAX)
}

/// libxml2's structured error handler: parser and XPath errors, with line numbers.
unsafe extern "C" fn on_structured_error(_user: *mut c_void, error: *const sys::XmlError) {
    if error.is_null() {
        return;
    }
    // SAFETY: libxml2 passes a valid error record for the duration of the call.
    let e = unsafe { &*error };
    if e.domain == sys::XML_FROM_MEMORY || e.code == sys::XML_ERR_NO_MEMORY {
        OUT_OF_MEMORY.set(true);
    }
    let mut line = String::new();
    if e.level == sys::XML_ERR_WARNING {
        line.push_str("warning: ");
    }
    if e.line > 0 {
        let _ = write!(line, "line {}: ", e.line);
    }
    // SAFETY: message and str1 are NULL or NUL-terminated strings owned by the error record.
    line.push_str(unsafe { lossy(e.message) }.trim());
    if e.domain == sys::XML_FROM_XPATH && !e.str1.is_null() {
        // SAFETY: as above.
        let _ = write!(line, " in '{}'", unsafe { lossy(e.str1) });
    }
    line.push('\n');
    capture_text(&line);
}

/// libxslt security check for every protected operation: record what was asked, then refuse.
unsafe extern "C" fn deny_access(
    _sec: *mut sys::XsltSecurityPrefs,
    _ctxt: *mut sys::XsltTransformContext,
    value: *const c_char,
) -> c_int {
    // SAFETY: libxslt passes the URL or path as a NUL-terminated string (or NULL).
    capture_blocked(unsafe { lossy(value) });
    0
}

/// libxslt's document loader (`document()`, `xsl:include`, `xsl:import`): never loads anything.
unsafe extern "C" fn deny_document(
    uri: *const sys::XmlChar,
    _dict: *mut sys::XmlDict,
    _options: c_int,
    _ctxt: *mut c_void,
    _kind: c_int,
) -> *mut sys::XmlDoc {
    // SAFETY: the URI is a NUL-terminated string (or NULL).
    capture_blocked(unsafe { lossy(uri.cast()) });
    ptr::null_mut()
}

/// libxml2's external entity loader (external DTDs, entities, XInclude): never loads anything.
unsafe extern "C" fn deny_entity(
    url: *const c_char,
    _id: *const c_char,
    _ctxt: *mut sys::XmlParserCtxt,
) -> *mut sys::XmlParserInput {
    // SAFETY: the URL is a NUL-terminated string (or NULL).
    capture_blocked(unsafe { lossy(url) });
    ptr::null_mut()
}

/// SAX callback for `<!DOCTYPE …>`: documents with a DTD are refused, so stop right there.
unsafe extern "C" fn reject_doctype(
    ctx: *mut c_void,
    _name: *const sys::XmlChar,
    _external_id: *const sys::XmlChar,
    _system_id: *const sys::XmlChar,
) {
    capture_doctype();
    // This callback only runs during a parse, so the libraries are loaded.
    if let Ok(api) = sys::api() {
        // SAFETY: SAX callbacks of a parser context receive that context as their user data.
        unsafe { api.xmlStopParser(ctx.cast()) };
    }
}

// ---- one-time set-up and per-operation session ----

/// glibc's `cookie_io_functions_t`.
#[repr(C)]
struct CookieIoFunctions {
    read: Option<unsafe extern "C" fn(*mut c_void, *mut c_char, usize) -> isize>,
    write: Option<unsafe extern "C" fn(*mut c_void, *const c_char, usize) -> isize>,
    seek: Option<unsafe extern "C" fn(*mut c_void, *mut i64, c_int) -> c_int>,
    close: Option<unsafe extern "C" fn(*mut c_void) -> c_int>,
}

unsafe extern "C" {
    /// glibc/musl: a `FILE` whose I/O goes through the given callbacks (not in the `libc` crate).
    fn fopencookie(cookie: *mut c_void, mode: *const c_char, functions: CookieIoFunctions) -> *mut libc::FILE;
}

fn init(api: &sys::Api) {
    INIT.call_once(|| {
        // SAFETY: plain library initialisation and registration of global hooks, done once, under
        // LOCK, before any other use of the libraries by this crate. The callbacks are `'static`
        // functions; the FILE and the preferences are kept for the life of the process.
        unsafe {
            api.xmlInitParser();
            api.exsltRegisterAll();
            let functions = CookieIoFunctions { read: None, write: Some(cookie_write), seek: None, close: None };
            let file = fopencookie(ptr::null_mut(), c"w".as_ptr(), functions);
            if !file.is_null() {
                libc::setvbuf(file, ptr::null_mut(), libc::_IONBF, 0);
                ERROR_FILE.store(file, std::sync::atomic::Ordering::SeqCst);
                // A NULL handler selects libxslt's default, which `vfprintf`s to this context.
                api.xsltSetGenericErrorFunc(file.cast(), None);
            }
            let prefs = api.xsltNewSecurityPrefs();
            if !prefs.is_null() {
                for option in sys::XSLT_SECPREF_ALL {
                    api.xsltSetSecurityPrefs(prefs, option, Some(deny_access));
                }
                api.xsltSetDefaultSecurityPrefs(prefs);
                SECURITY_PREFS.store(prefs, std::sync::atomic::Ordering::SeqCst);
            }
            api.xsltSetLoaderFunc(Some(deny_document));
            api.xmlSetExternalEntityLoader(Some(deny_entity));
        }
    });
}

/// Whether the libraries can be loaded (loading them on the first call); why not, as the message of
/// [`XsltError::Unavailable`].
pub(crate) fn availability() -> Result<(), String> {
    sys::api().map(drop).map_err(str::to_owned)
}

/// Runs `f` with the libraries loaded, locked, set up and their messages captured on this thread.
fn session<T>(f: impl FnOnce(&'static sys::Api) -> Result<T, XsltError>) -> Result<T, XsltError> {
    let api = sys::api().map_err(|message| XsltError::Unavailable(message.to_owned()))?;
    let _guard = LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    init(api);
    if SECURITY_PREFS.load(std::sync::atomic::Ordering::SeqCst).is_null() {
        return Err(XsltError::Failed("libxslt could not set up its security preferences (out of memory?)".into()));
    }
    let file = ERROR_FILE.load(std::sync::atomic::Ordering::SeqCst);
    // SAFETY: libxml2's error channels are per thread, so they are set for this thread on every
    // operation; `file` is NULL (messages then go to stderr) or the process-lifetime FILE from init.
    unsafe {
        if !file.is_null() {
            api.xmlSetGenericErrorFunc(file.cast(), None);
        }
        api.xmlSetStructuredErrorFunc(ptr::null_mut(), Some(on_structured_error));
    }
    take_capture();
    OUT_OF_MEMORY.set(false);
    let result = f(api);
    take_capture();
    if OUT_OF_MEMORY.replace(false) {
        return Err(XsltError::TooLarge(
            "the transform ran out of memory (more than the worker may use); its result would be incomplete".into(),
        ));
    }
    result
}

// ---- owned C objects ----

struct Doc {
    api: &'static sys::Api,
    ptr: *mut sys::XmlDoc,
}

impl Drop for Doc {
    fn drop(&mut self) {
        // SAFETY: the pointer is a non-NULL document this guard owns (see `release`).
        unsafe { self.api.xmlFreeDoc(self.ptr) }
    }
}

impl Doc {
    /// Hands ownership to a C object that frees the document itself.
    fn release(self) -> *mut sys::XmlDoc {
        let p = self.ptr;
        std::mem::forget(self);
        p
    }
}

struct Stylesheet {
    api: &'static sys::Api,
    ptr: *mut sys::XsltStylesheet,
}

impl Drop for Stylesheet {
    fn drop(&mut self) {
        // SAFETY: a non-NULL compiled stylesheet this guard owns; frees its document too.
        unsafe { self.api.xsltFreeStylesheet(self.ptr) }
    }
}

struct TransformContext {
    api: &'static sys::Api,
    ptr: *mut sys::XsltTransformContext,
}

impl Drop for TransformContext {
    fn drop(&mut self) {
        // SAFETY: a non-NULL transform context this guard owns.
        unsafe { self.api.xsltFreeTransformContext(self.ptr) }
    }
}

struct ParserContext {
    api: &'static sys::Api,
    ptr: *mut sys::XmlParserCtxt,
}

impl Drop for ParserContext {
    fn drop(&mut self) {
        // SAFETY: a non-NULL parser context this guard owns; it no longer holds the parsed document.
        unsafe { self.api.xmlFreeParserCtxt(self.ptr) }
    }
}

enum Source<'a> {
    Bytes(&'a [u8]),
    File(&'a File),
}

/// Why a document could not be parsed.
enum ParseError {
    Doctype,
    Malformed(String),
}

/// Parses a document with [`PARSE_OPTIONS`], refusing DTDs. Messages stay in the capture.
fn parse_document(api: &'static sys::Api, source: Source<'_>, url: &str) -> Result<Doc, ParseError> {
    let url = CString::new(url.replace('\0', "")).unwrap_or_default();
    // SAFETY: a fresh parser context, checked for NULL, owned by its guard.
    let ctxt = unsafe { api.xmlNewParserCtxt() };
    if ctxt.is_null() {
        return Err(ParseError::Malformed("out of memory creating a parser".into()));
    }
    let ctxt = ParserContext { api, ptr: ctxt };
    // SAFETY: `xmlNewParserCtxt` gives the context its own SAX handler (checked for NULL); replacing
    // one callback in it affects only this parse. Both structs start with the fields declared in `sys`.
    unsafe {
        let sax = (*ctxt.ptr).sax;
        if sax.is_null() {
            return Err(ParseError::Malformed("the parser has no SAX handler".into()));
        }
        (*sax).internal_subset = Some(reject_doctype);
    }
    let doc = match source {
        Source::Bytes(bytes) => {
            let Ok(len) = c_int::try_from(bytes.len()) else {
                return Err(ParseError::Malformed("the document is larger than 2 GiB".into()));
            };
            // SAFETY: `bytes` is valid for `len` bytes during the call; the context and URL are
            // valid; libxml2 copies what it keeps.
            unsafe {
                api.xmlCtxtReadMemory(ctxt.ptr, bytes.as_ptr().cast(), len, url.as_ptr(), ptr::null(), PARSE_OPTIONS)
            }
        }
        // SAFETY: the descriptor is open for reading for the duration of the call; libxml2 reads
        // from it and does not close it.
        Source::File(file) => unsafe {
            api.xmlCtxtReadFd(ctxt.ptr, file.as_raw_fd(), url.as_ptr(), ptr::null(), PARSE_OPTIONS)
        },
    };
    let doc = if doc.is_null() { None } else { Some(Doc { api, ptr: doc }) };
    let doctype = CAPTURE.with(|c| c.borrow().doctype);
    if doctype {
        return Err(ParseError::Doctype);
    }
    match doc {
        Some(doc) => Ok(doc),
        None => Err(ParseError::Malformed(String::new())),
    }
}

/// Parses and compiles a stylesheet: the compiled stylesheet, or an error with libxslt's messages.
fn compile(api: &'static sys::Api, xsl: &[u8], url: &str) -> Result<Stylesheet, XsltError> {
    let doc = match parse_document(api, Source::Bytes(xsl), url) {
        Ok(doc) => doc,
        Err(ParseError::Doctype) => {
            return Err(XsltError::InvalidStylesheet(
                "the stylesheet declares a DTD (<!DOCTYPE …>); DTDs and entity declarations are not allowed".into(),
            ));
        }
        Err(ParseError::Malformed(detail)) => {
            let capture = take_capture();
            if let Some(e) = capture.blocked_error() {
                return Err(e);
            }
            return Err(XsltError::InvalidStylesheet(format!(
                "the stylesheet is not well-formed XML: {}",
                or_unknown(&capture.one_line(), &detail)
            )));
        }
    };
    // SAFETY: `doc` is a valid document. On success the stylesheet owns it (freed with the
    // stylesheet); on failure (NULL) libxslt leaves it to us and the guard frees it.
    let style = unsafe { api.xsltParseStylesheetDoc(doc.ptr) };
    let capture_blocked = CAPTURE.with(|c| !c.borrow().blocked.is_empty());
    if style.is_null() {
        let capture = take_capture();
        drop(doc);
        if let Some(e) = capture.blocked_error() {
            return Err(e);
        }
        return Err(XsltError::InvalidStylesheet(or_unknown(&capture.one_line(), "libxslt could not compile it")));
    }
    doc.release();
    let style = Stylesheet { api, ptr: style };
    if capture_blocked {
        let capture = take_capture();
        return Err(capture.blocked_error().unwrap_or_else(|| XsltError::Forbidden("blocked".into())));
    }
    Ok(style)
}

fn or_unknown(messages: &str, fallback: &str) -> String {
    match (messages.is_empty(), fallback.is_empty()) {
        (false, _) => messages.to_owned(),
        (true, false) => fallback.to_owned(),
        (true, true) => "no details from libxml2".to_owned(),
    }
}

/// Compiles `xsl` and throws it away. See [`crate::check_stylesheet`].
pub(crate) fn check(xsl: &[u8], url: &str) -> Result<(), XsltError> {
    session(|api| compile(api, xsl, url).map(drop))
}

/// Applies `xsl` to the document read from `input` and writes the result to `output`; returns the
/// bytes written.
pub(crate) fn transform(
    xsl: &[u8],
    xsl_url: &str,
    input: &File,
    input_url: &str,
    output: &File,
) -> Result<u64, XsltError> {
    session(|api| {
        let style = compile(api, xsl, xsl_url)?;
        let doc = match parse_document(api, Source::File(input), input_url) {
            Ok(doc) => doc,
            Err(ParseError::Doctype) => {
                return Err(XsltError::InvalidInput(
                    "the input declares a DTD (<!DOCTYPE …>); DTDs and entity declarations are not allowed".into(),
                ));
            }
            Err(ParseError::Malformed(detail)) => {
                let capture = take_capture();
                return Err(XsltError::InvalidInput(format!(
                    "the input is not well-formed XML: {}",
                    or_unknown(&capture.one_line(), &detail)
                )));
            }
        };
        // SAFETY: both pointers are valid; the context is checked for NULL and owned by its guard,
        // which is dropped before the document and the stylesheet (declared after them).
        let ctxt = unsafe { api.xsltNewTransformContext(style.ptr, doc.ptr) };
        if ctxt.is_null() {
            return Err(XsltError::Failed("libxslt could not create a transform context".into()));
        }
        let ctxt = TransformContext { api, ptr: ctxt };
        let prefs = SECURITY_PREFS.load(std::sync::atomic::Ordering::SeqCst);
        // SAFETY: `prefs` is the non-NULL (checked in `session`) process-lifetime preferences.
        if unsafe { api.xsltSetCtxtSecurityPrefs(prefs, ctxt.ptr) } != 0 {
            return Err(XsltError::Failed("libxslt refused the security preferences".into()));
        }
        let mut params: [*const c_char; 1] = [ptr::null()];
        // SAFETY: stylesheet, document and context are valid; `params` is a NULL-terminated (empty)
        // array; no output file name and no profiling.
        let result = unsafe {
            api.xsltApplyStylesheetUser(style.ptr, doc.ptr, params.as_mut_ptr(), ptr::null(), ptr::null_mut(), ctxt.ptr)
        };
        let result = if result.is_null() { None } else { Some(Doc { api, ptr: result }) };
        let capture = take_capture();
        if let Some(e) = capture.blocked_error() {
            return Err(e);
        }
        let Some(result) = result else {
            return Err(XsltError::Failed(or_unknown(&capture.one_line(), "libxslt produced no result")));
        };
        // SAFETY: result and stylesheet are valid; the descriptor is open for writing; libxslt
        // writes through it and does not close it.
        let written = unsafe { api.xsltSaveResultToFd(output.as_raw_fd(), result.ptr, style.ptr) };
        drop(result);
        drop(ctxt);
        drop(doc);
        drop(style);
        u64::try_from(written).map_err(|_| {
            let capture = take_capture();
            XsltError::Io(
                format!("could not write the transform's output: {}", or_unknown(&capture.one_line(), "")),
                std::io::Error::other("xsltSaveResultToFd failed"),
            )
        })
    })
}

/// Caps the address space and the size of files this process may write (the worker applies its
/// limits to itself). Returns a description of the first limit the kernel refused.
pub(crate) fn limit_resources(max_memory_bytes: Option<u64>, max_output_bytes: Option<u64>) -> Result<(), String> {
    for (resource, value, name) in
        [(libc::RLIMIT_AS, max_memory_bytes, "address space"), (libc::RLIMIT_FSIZE, max_output_bytes, "file size")]
    {
        let Some(value) = value else { continue };
        let limit = libc::rlimit { rlim_cur: value as libc::rlim_t, rlim_max: value as libc::rlim_t };
        // SAFETY: `limit` is a valid rlimit for the duration of the call.
        if unsafe { libc::setrlimit(resource, &limit) } != 0 {
            return Err(format!("could not limit the {name} to {value} bytes: {}", std::io::Error::last_os_error()));
        }
    }
    Ok(())
}

/// Sends SIGKILL to a process group (the runner starts each worker in a group of its own).
pub(crate) fn kill_process_group(pgid: u32) {
    let Ok(pgid) = libc::pid_t::try_from(pgid) else { return };
    if pgid > 1 {
        // SAFETY: `kill` has no memory-safety preconditions; a negative pid names the group.
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
    }
}
