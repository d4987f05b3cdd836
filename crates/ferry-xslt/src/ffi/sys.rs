//! The C side of libxml2, libxslt and libexslt, declared by hand and loaded at run time.
//!
//! ferry does not link against these libraries: it opens them (through `libloading`) the first time
//! XSLT is used. So building needs neither their headers nor libclang, and a server without them
//! still runs; only XSLT then fails, with [`crate::XsltError::Unavailable`] saying what to install.
//!
//! Only what `ffi.rs` uses is declared: the functions, the callback types, the constants, and the
//! leading fields of the two structs it reaches into. Each declaration names the header it comes
//! from; all were checked against libxml2 2.9.14 and libxslt 1.1.35, and none of them changed
//! through libxml2 2.13. C enums are declared as `c_int`: they have the size and calling convention
//! of `int` on every platform ferry targets.
//!
//! All functions are resolved when the libraries are loaded, so a library that lacks one is reported
//! then, as unavailable, rather than failing at its first call. The libraries stay loaded for the
//! life of the process, because the resolved function pointers point into them.

use std::ffi::{c_char, c_int, c_void};
use std::marker::{PhantomData, PhantomPinned};
use std::sync::OnceLock;

/// `xmlChar` (libxml/xmlstring.h): one byte of UTF-8.
pub(super) type XmlChar = u8;

/// Declares structs that are only ever handled through pointers the libraries gave out.
macro_rules! opaque {
    ($($(#[$doc:meta])* $name:ident;)*) => {$(
        $(#[$doc])*
        #[repr(C)]
        pub(super) struct $name {
            _private: [u8; 0],
            // Not `Send`, `Sync` or `Unpin`: the libraries own the memory behind the pointer.
            _marker: PhantomData<(*mut u8, PhantomPinned)>,
        }
    )*};
}

opaque! {
    /// `xmlDoc` (libxml/tree.h).
    XmlDoc;
    /// `xmlDict` (libxml/dict.h).
    XmlDict;
    /// `xmlParserInput` (libxml/parser.h).
    XmlParserInput;
    /// `xsltStylesheet` (libxslt/xsltInternals.h).
    XsltStylesheet;
    /// `xsltTransformContext` (libxslt/xsltInternals.h).
    XsltTransformContext;
    /// `xsltSecurityPrefs` (libxslt/security.h).
    XsltSecurityPrefs;
}

/// `xmlParserCtxt` (libxml/parser.h), declared up to its first field only, the SAX handler: the
/// struct is always allocated by libxml2 and only reached through a pointer, so its size never matters.
#[repr(C)]
pub(super) struct XmlParserCtxt {
    pub(super) sax: *mut XmlSaxHandler,
}

/// `xmlSAXHandler` (libxml/parser.h), declared up to its first field only, for the same reason.
#[repr(C)]
pub(super) struct XmlSaxHandler {
    pub(super) internal_subset: Option<InternalSubsetSaxFunc>,
}

/// `xmlError` (libxml/xmlerror.h), the whole struct, as libxml2 hands it to a structured error
/// handler. Only some fields are read; the rest are declared so the layout is exactly libxml2's.
#[repr(C)]
pub(super) struct XmlError {
    pub(super) domain: c_int,
    pub(super) code: c_int,
    pub(super) message: *mut c_char,
    /// An `xmlErrorLevel`.
    pub(super) level: c_int,
    file: *mut c_char,
    pub(super) line: c_int,
    pub(super) str1: *mut c_char,
    str2: *mut c_char,
    str3: *mut c_char,
    int1: c_int,
    int2: c_int,
    ctxt: *mut c_void,
    node: *mut c_void,
}

// The layout above, checked against `sizeof` and `offsetof` from the installed headers (LP64).
#[cfg(target_pointer_width = "64")]
const _: () = {
    assert!(size_of::<XmlError>() == 88);
    assert!(std::mem::offset_of!(XmlError, level) == 16);
    assert!(std::mem::offset_of!(XmlError, line) == 32);
    assert!(std::mem::offset_of!(XmlError, str1) == 40);
    assert!(std::mem::offset_of!(XmlError, int2) == 68);
    assert!(std::mem::offset_of!(XmlError, node) == 80);
};

/// `xmlParserOption` `XML_PARSE_NONET` (libxml/parser.h): forbid network access.
pub(super) const XML_PARSE_NONET: c_int = 1 << 11;
/// `xmlParserOption` `XML_PARSE_NOCDATA` (libxml/parser.h): merge CDATA sections into text nodes.
pub(super) const XML_PARSE_NOCDATA: c_int = 1 << 14;
/// `xmlErrorDomain` `XML_FROM_MEMORY` (libxml/xmlerror.h): the memory allocator.
pub(super) const XML_FROM_MEMORY: c_int = 6;
/// `xmlErrorDomain` `XML_FROM_XPATH` (libxml/xmlerror.h): the XPath module.
pub(super) const XML_FROM_XPATH: c_int = 12;
/// `xmlParserErrors` `XML_ERR_NO_MEMORY` (libxml/xmlerror.h).
pub(super) const XML_ERR_NO_MEMORY: c_int = 2;
/// `xmlErrorLevel` `XML_ERR_WARNING` (libxml/xmlerror.h).
pub(super) const XML_ERR_WARNING: c_int = 1;
/// The `xsltSecurityOption`s (libxslt/security.h): every operation a security preference guards.
pub(super) const XSLT_SECPREF_ALL: [c_int; 5] = [
    1, // XSLT_SECPREF_READ_FILE
    2, // XSLT_SECPREF_WRITE_FILE
    3, // XSLT_SECPREF_CREATE_DIRECTORY
    4, // XSLT_SECPREF_READ_NETWORK
    5, // XSLT_SECPREF_WRITE_NETWORK
];

/// `xmlGenericErrorFunc` (libxml/xmlerror.h). It is printf-like, which Rust cannot implement, so
/// this crate only ever passes NULL (`None`) for it.
pub(super) type XmlGenericErrorFunc = unsafe extern "C" fn(ctx: *mut c_void, msg: *const c_char, ...);
/// `xmlStructuredErrorFunc` (libxml/xmlerror.h; the error became `const` in 2.12, same ABI).
pub(super) type XmlStructuredErrorFunc = unsafe extern "C" fn(user_data: *mut c_void, error: *const XmlError);
/// `xmlExternalEntityLoader` (libxml/parser.h).
pub(super) type XmlExternalEntityLoader =
    unsafe extern "C" fn(url: *const c_char, id: *const c_char, context: *mut XmlParserCtxt) -> *mut XmlParserInput;
/// `internalSubsetSAXFunc` (libxml/parser.h): called for `<!DOCTYPE …>`.
pub(super) type InternalSubsetSaxFunc = unsafe extern "C" fn(
    ctx: *mut c_void,
    name: *const XmlChar,
    external_id: *const XmlChar,
    system_id: *const XmlChar,
);
/// `xsltSecurityCheck` (libxslt/security.h).
pub(super) type XsltSecurityCheck =
    unsafe extern "C" fn(sec: *mut XsltSecurityPrefs, ctxt: *mut XsltTransformContext, value: *const c_char) -> c_int;
/// `xsltDocLoaderFunc` (libxslt/documents.h); `kind` is an `xsltLoadType`.
pub(super) type XsltDocLoaderFunc = unsafe extern "C" fn(
    uri: *const XmlChar,
    dict: *mut XmlDict,
    options: c_int,
    ctxt: *mut c_void,
    kind: c_int,
) -> *mut XmlDoc;

/// Declares the functions, grouped by the library that exports them, as fields of [`Api`] resolved
/// by [`Api::resolve`], each with an `unsafe` method of the same name and signature to call it.
macro_rules! api {
    ($(
        $library:ident {$(
            $(#[$doc:meta])*
            fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)?;
        )*}
    )*) => {
        /// The C functions this crate calls, resolved from the loaded libraries.
        #[allow(non_snake_case, reason = "the C functions' own names")]
        pub(super) struct Api {$($(
            $name: unsafe extern "C" fn($($ty),*) $(-> $ret)?,
        )*)*}

        #[allow(non_snake_case, reason = "the C functions' own names")]
        impl Api {
            /// Resolves every function from the library that exports it.
            ///
            /// # Safety
            /// The libraries must be libxml2, libxslt and libexslt, whose functions have the
            /// signatures declared here.
            unsafe fn resolve(libraries: &Libraries) -> Result<Api, String> {
                Ok(Api {$($(
                    // SAFETY: the declared signature is the C one, per this function's contract.
                    $name: unsafe { libraries.$library.function(stringify!($name)) }?,
                )*)*})
            }

            $($(
                $(#[$doc])*
                ///
                /// # Safety
                /// The C function's own preconditions.
                pub(super) unsafe fn $name(&self, $($arg: $ty),*) $(-> $ret)? {
                    // SAFETY: forwarded to the caller.
                    unsafe { (self.$name)($($arg),*) }
                }
            )*)*
        }
    };
}

api! {
    xml {
        /// libxml/parser.h
        fn xmlInitParser();
        /// libxml/parser.h
        fn xmlNewParserCtxt() -> *mut XmlParserCtxt;
        /// libxml/parser.h
        fn xmlFreeParserCtxt(ctxt: *mut XmlParserCtxt);
        /// libxml/parser.h
        fn xmlStopParser(ctxt: *mut XmlParserCtxt);
        /// libxml/parser.h
        fn xmlCtxtReadMemory(
            ctxt: *mut XmlParserCtxt,
            buffer: *const c_char,
            size: c_int,
            url: *const c_char,
            encoding: *const c_char,
            options: c_int,
        ) -> *mut XmlDoc;
        /// libxml/parser.h
        fn xmlCtxtReadFd(
            ctxt: *mut XmlParserCtxt,
            fd: c_int,
            url: *const c_char,
            encoding: *const c_char,
            options: c_int,
        ) -> *mut XmlDoc;
        /// libxml/parser.h
        fn xmlSetExternalEntityLoader(f: Option<XmlExternalEntityLoader>);
        /// libxml/tree.h
        fn xmlFreeDoc(cur: *mut XmlDoc);
        /// libxml/xmlerror.h
        fn xmlSetGenericErrorFunc(ctx: *mut c_void, handler: Option<XmlGenericErrorFunc>);
        /// libxml/xmlerror.h
        fn xmlSetStructuredErrorFunc(ctx: *mut c_void, handler: Option<XmlStructuredErrorFunc>);
    }
    xslt {
        /// libxslt/xsltInternals.h
        fn xsltParseStylesheetDoc(doc: *mut XmlDoc) -> *mut XsltStylesheet;
        /// libxslt/xsltInternals.h
        fn xsltFreeStylesheet(style: *mut XsltStylesheet);
        /// libxslt/transform.h
        fn xsltNewTransformContext(style: *mut XsltStylesheet, doc: *mut XmlDoc) -> *mut XsltTransformContext;
        /// libxslt/transform.h
        fn xsltFreeTransformContext(ctxt: *mut XsltTransformContext);
        /// libxslt/transform.h
        fn xsltApplyStylesheetUser(
            style: *mut XsltStylesheet,
            doc: *mut XmlDoc,
            params: *mut *const c_char,
            output: *const c_char,
            profile: *mut libc::FILE,
            user_ctxt: *mut XsltTransformContext,
        ) -> *mut XmlDoc;
        /// libxslt/xsltutils.h
        fn xsltSaveResultToFd(fd: c_int, result: *mut XmlDoc, style: *mut XsltStylesheet) -> c_int;
        /// libxslt/xsltutils.h
        fn xsltSetGenericErrorFunc(ctx: *mut c_void, handler: Option<XmlGenericErrorFunc>);
        /// libxslt/documents.h
        fn xsltSetLoaderFunc(f: Option<XsltDocLoaderFunc>);
        /// libxslt/security.h
        fn xsltNewSecurityPrefs() -> *mut XsltSecurityPrefs;
        /// libxslt/security.h; `option` is an `xsltSecurityOption`.
        fn xsltSetSecurityPrefs(sec: *mut XsltSecurityPrefs, option: c_int, func: Option<XsltSecurityCheck>) -> c_int;
        /// libxslt/security.h
        fn xsltSetDefaultSecurityPrefs(sec: *mut XsltSecurityPrefs);
        /// libxslt/security.h
        fn xsltSetCtxtSecurityPrefs(sec: *mut XsltSecurityPrefs, ctxt: *mut XsltTransformContext) -> c_int;
    }
    exslt {
        /// libexslt/exslt.h
        fn exsltRegisterAll();
    }
}

/// The file names to try for each library, in order.
pub(super) struct Candidates {
    pub(super) xml: &'static [&'static str],
    pub(super) xslt: &'static [&'static str],
    pub(super) exslt: &'static [&'static str],
}

#[cfg(target_os = "macos")]
pub(super) const PLATFORM_CANDIDATES: Candidates =
    Candidates { xml: &["libxml2.2.dylib"], xslt: &["libxslt.1.dylib"], exslt: &["libexslt.0.dylib"] };
#[cfg(windows)]
pub(super) const PLATFORM_CANDIDATES: Candidates = Candidates {
    xml: &["libxml2.dll", "libxml2-2.dll"],
    xslt: &["libxslt.dll", "libxslt-1.dll"],
    exslt: &["libexslt.dll", "libexslt-0.dll"],
};
#[cfg(not(any(target_os = "macos", windows)))]
pub(super) const PLATFORM_CANDIDATES: Candidates =
    Candidates { xml: &["libxml2.so.2"], xslt: &["libxslt.so.1"], exslt: &["libexslt.so.0"] };

/// What the message about missing libraries tells the operator to do.
const INSTALL_HINT: &str = "install libxslt (Debian/Ubuntu: apt install libxslt1.1; Fedora: dnf install libxslt; \
     macOS: brew install libxslt) and restart ferry — everything else works without it";

/// One opened library and the file name it was opened by (for messages).
struct Library {
    file_name: &'static str,
    handle: libloading::Library,
}

impl Library {
    /// Opens the first of `file_names` that loads, or says why none did.
    fn open_first(file_names: &'static [&'static str]) -> Result<Library, String> {
        let mut reasons = Vec::new();
        for &file_name in file_names {
            match open(file_name) {
                Ok(handle) => return Ok(Library { file_name, handle }),
                Err(e) => reasons.push(e.to_string()),
            }
        }
        Err(unavailable(&format!("{} could not be loaded ({})", file_names.join(" or "), reasons.join("; "))))
    }

    /// The function `name`, copied out of the library.
    ///
    /// # Safety
    /// `F` is the function's real signature, and the pointer is only called while the library is loaded.
    unsafe fn function<F: Copy>(&self, name: &str) -> Result<F, String> {
        // SAFETY: per this function's contract.
        match unsafe { self.handle.get::<F>(name.as_bytes()) } {
            Ok(symbol) => Ok(*symbol),
            Err(e) => Err(unavailable(&format!("{} has no function {name} ({e})", self.file_name))),
        }
    }
}

/// Opens a library. On Unix every symbol the library itself needs is bound now (`RTLD_NOW`), so a
/// libxslt built against a newer libxml2 than the one installed fails here, not at a later call.
fn open(file_name: &str) -> Result<libloading::Library, libloading::Error> {
    // SAFETY: loading runs the library's initialisers; those of libxml2, libxslt and libexslt only
    // set up their own state. The file names are the libraries' own, searched on the system's path.
    #[cfg(unix)]
    let opened = unsafe {
        use libloading::os::unix::{Library, RTLD_LOCAL, RTLD_NOW};
        Library::open(Some(file_name), RTLD_NOW | RTLD_LOCAL).map(Into::into)
    };
    // SAFETY: as above.
    #[cfg(not(unix))]
    let opened = unsafe { libloading::Library::new(file_name) };
    opened
}

fn unavailable(what_failed: &str) -> String {
    format!("XSLT is unavailable: {what_failed}; {INSTALL_HINT}")
}

/// The three libraries, opened.
struct Libraries {
    xml: Library,
    xslt: Library,
    exslt: Library,
}

/// The libraries and their functions, loaded once per process.
pub(super) struct Loaded {
    api: Api,
    // Never dropped (it lives in a static): the function pointers in `api` point into these.
    _libraries: Libraries,
}

static LOADED: OnceLock<Result<Loaded, String>> = OnceLock::new();

/// Opens the libraries from `candidates` and resolves every function; or the message for
/// [`crate::XsltError::Unavailable`], naming what could not be loaded or resolved.
pub(super) fn load(candidates: &Candidates) -> Result<Loaded, String> {
    // libxml2 first: libxslt and libexslt depend on it, and the system loader hands them this copy.
    let libraries = Libraries {
        xml: Library::open_first(candidates.xml)?,
        xslt: Library::open_first(candidates.xslt)?,
        exslt: Library::open_first(candidates.exslt)?,
    };
    // SAFETY: the libraries were opened by the names of libxml2, libxslt and libexslt, whose
    // functions have the signatures declared above; `Loaded` keeps them open as long as `api` lives.
    let api = unsafe { Api::resolve(&libraries) }?;
    Ok(Loaded { api, _libraries: libraries })
}

/// The C functions, loading the libraries on first use (later calls are cheap); or why they
/// cannot be loaded.
pub(super) fn api() -> Result<&'static Api, &'static str> {
    match LOADED.get_or_init(|| load(&PLATFORM_CANDIDATES)) {
        Ok(loaded) => Ok(&loaded.api),
        Err(message) => Err(message),
    }
}

/// Makes this process load its libraries from `candidates` instead of the platform's names; false
/// when they were already loaded (or tried). For tests of what happens without the libraries.
#[cfg(test)]
pub(super) fn load_in_this_process_from(candidates: &Candidates) -> bool {
    LOADED.set(load(candidates)).is_ok()
}
