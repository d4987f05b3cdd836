//! The XSLT runner end to end: real transforms through the worker binary, hostile stylesheets and
//! inputs, and workers that crash or hang.

use ferry_xslt::{XsltError, XsltRunner, check_stylesheet, transform_in_process};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn runner() -> XsltRunner {
    XsltRunner::new(PathBuf::from(env!("CARGO_BIN_EXE_ferry-xslt-worker")), Vec::new())
        .with_timeout(Duration::from_secs(60))
}

/// A runner whose "worker" is a shell script (the paths become `$1 $2 $3`).
fn shell_runner(script: &str) -> XsltRunner {
    XsltRunner::new(PathBuf::from("/bin/sh"), vec!["-c".into(), OsString::from(script), "worker".into()])
}

struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn new() -> Self {
        Files { dir: tempfile::tempdir().unwrap() }
    }
    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

const VENDOR_INPUT: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<Customers source="acme-crm">
  <Customer id="C-001" group="10"><Name>Contoso &amp; Sons</Name><Balance>120.50</Balance></Customer>
  <Customer id="C-002" group="20"><Name>Fabrikam</Name><Balance>79.50</Balance></Customer>
  <Customer id="C-003" group="10"><Name>Ærø Handel</Name><Balance>0</Balance></Customer>
</Customers>
"#;

const VENDOR_XSL: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:output method="xml" encoding="UTF-8" indent="no"/>
  <xsl:template match="/Customers">
    <Document>
      <xsl:for-each select="Customer[Balance &gt;= 0]">
        <CUSTOMER>
          <LINE><xsl:value-of select="position()"/></LINE>
          <CUSTOMERACCOUNT><xsl:value-of select="@id"/></CUSTOMERACCOUNT>
          <CUSTOMERGROUPID><xsl:value-of select="concat('CG-', @group)"/></CUSTOMERGROUPID>
          <ORGANIZATIONNAME><xsl:value-of select="Name"/></ORGANIZATIONNAME>
        </CUSTOMER>
      </xsl:for-each>
      <TOTAL><xsl:value-of select="sum(Customer/Balance)"/></TOTAL>
    </Document>
  </xsl:template>
</xsl:stylesheet>
"#;

const EXPECTED: &str = "<Document>\
<CUSTOMER><LINE>1</LINE><CUSTOMERACCOUNT>C-001</CUSTOMERACCOUNT><CUSTOMERGROUPID>CG-10</CUSTOMERGROUPID><ORGANIZATIONNAME>Contoso &amp; Sons</ORGANIZATIONNAME></CUSTOMER>\
<CUSTOMER><LINE>2</LINE><CUSTOMERACCOUNT>C-002</CUSTOMERACCOUNT><CUSTOMERGROUPID>CG-20</CUSTOMERGROUPID><ORGANIZATIONNAME>Fabrikam</ORGANIZATIONNAME></CUSTOMER>\
<CUSTOMER><LINE>3</LINE><CUSTOMERACCOUNT>C-003</CUSTOMERACCOUNT><CUSTOMERGROUPID>CG-10</CUSTOMERGROUPID><ORGANIZATIONNAME>Ærø Handel</ORGANIZATIONNAME></CUSTOMER>\
<TOTAL>200</TOTAL></Document>";

fn output_body(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    text.trim_start_matches(r#"<?xml version="1.0" encoding="UTF-8"?>"#).trim().to_owned()
}

#[test]
fn a_vendor_file_becomes_a_d365_document_through_the_worker() {
    let f = Files::new();
    let (xsl, input, output) = (f.write("t.xsl", VENDOR_XSL), f.write("in.xml", VENDOR_INPUT), f.path("out.xml"));
    check_stylesheet(VENDOR_XSL.as_bytes()).unwrap();
    runner().transform(&xsl, &input, &output).unwrap();
    assert_eq!(output_body(&output), EXPECTED);

    // The same transform in this process gives the same bytes.
    let in_process = f.path("out2.xml");
    transform_in_process(&xsl, &input, &in_process).unwrap();
    assert_eq!(std::fs::read(&output).unwrap(), std::fs::read(&in_process).unwrap());
}

#[test]
fn text_output_and_exslt_functions_work() {
    let f = Files::new();
    let xsl = f.write(
        "t.xsl",
        r#"<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
             xmlns:str="http://exslt.org/strings" extension-element-prefixes="str">
  <xsl:output method="text"/>
  <xsl:template match="/">
    <xsl:for-each select="str:tokenize('a;b;c', ';')"><xsl:value-of select="."/>|</xsl:for-each>
  </xsl:template>
</xsl:stylesheet>"#,
    );
    let input = f.write("in.xml", "<x/>");
    let output = f.path("out.txt");
    runner().transform(&xsl, &input, &output).unwrap();
    assert_eq!(std::fs::read_to_string(&output).unwrap(), "a|b|c|");
}

const INVALID_XSL: &str = r#"<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:template match="/">
    <out><xsl:value-of select='(('/></out>
  </xsl:template>
</xsl:stylesheet>"#;

#[test]
fn an_invalid_stylesheet_is_refused_with_libxslt_messages_and_nothing_crashes() {
    let error = check_stylesheet(INVALID_XSL.as_bytes()).unwrap_err();
    let XsltError::InvalidStylesheet(message) = &error else { panic!("{error:?}") };
    assert!(message.contains("(("), "{message}");
    assert!(message.contains("line 3"), "{message}");
    assert!(!message.contains('\n'), "{message}");

    let f = Files::new();
    let (xsl, input, output) = (f.write("bad.xsl", INVALID_XSL), f.write("in.xml", "<a/>"), f.path("out.xml"));
    let error = runner().transform(&xsl, &input, &output).unwrap_err();
    assert!(matches!(&error, XsltError::InvalidStylesheet(m) if m.contains("((")), "{error:?}");
    assert!(!output.exists());

    // And in this process too: compiled, refused, never applied.
    let error = transform_in_process(&xsl, &input, &output).unwrap_err();
    assert!(matches!(error, XsltError::InvalidStylesheet(_)), "{error:?}");
    assert!(!output.exists());
}

#[test]
fn stylesheets_that_are_not_xslt_or_not_xml_are_refused() {
    for (xsl, needle) in [
        ("<xsl:stylesheet", "not well-formed"),
        ("<html><body/></html>", ""),
        ("", ""),
        (
            r#"<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"><xsl:bogus/></xsl:stylesheet>"#,
            "bogus",
        ),
    ] {
        let error = check_stylesheet(xsl.as_bytes()).unwrap_err();
        let XsltError::InvalidStylesheet(message) = &error else { panic!("{xsl}: {error:?}") };
        assert!(message.contains(needle), "{xsl}: {message}");
        assert!(!message.is_empty());
    }
}

/// A file whose content must never appear anywhere.
fn secret(f: &Files) -> (PathBuf, &'static str) {
    let content = "TOP-SECRET-7f3a";
    (f.write("secret.txt", content), content)
}

#[test]
fn document_cannot_read_files() {
    let f = Files::new();
    let (secret_path, secret_text) = secret(&f);
    for target in ["/etc/passwd".to_owned(), secret_path.display().to_string(), "secret.txt".to_owned()] {
        let xsl = f.write(
            "doc.xsl",
            &format!(
                r#"<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:template match="/"><out><xsl:copy-of select="document('{target}')"/></out></xsl:template>
</xsl:stylesheet>"#
            ),
        );
        check_stylesheet(&std::fs::read(&xsl).unwrap()).unwrap();
        let input = f.write("in.xml", "<a/>");
        let output = f.path("out.xml");
        let error = runner().transform(&xsl, &input, &output).unwrap_err();
        let XsltError::Forbidden(message) = &error else { panic!("{target}: {error:?}") };
        assert!(message.contains(target.trim_start_matches('/')), "{message}");
        assert!(!message.contains(secret_text));
        assert!(!output.exists());
    }
}

#[test]
fn include_and_import_cannot_read_files() {
    let f = Files::new();
    let (secret_path, _) = secret(&f);
    for element in ["include", "import"] {
        let xsl = format!(
            r#"<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:{element} href="{}"/>
</xsl:stylesheet>"#,
            secret_path.display()
        );
        let error = check_stylesheet(xsl.as_bytes()).unwrap_err();
        assert!(matches!(&error, XsltError::Forbidden(m) if m.contains("secret.txt")), "{element}: {error:?}");
    }
}

#[test]
fn exsl_document_cannot_write_files() {
    let f = Files::new();
    let target = f.path("written.txt");
    let xsl = f.write(
        "w.xsl",
        &format!(
            r#"<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
     xmlns:exsl="http://exslt.org/common" extension-element-prefixes="exsl">
  <xsl:template match="/"><exsl:document href="{}" method="text">pwned</exsl:document><out/></xsl:template>
</xsl:stylesheet>"#,
            target.display()
        ),
    );
    let input = f.write("in.xml", "<a/>");
    let error = runner().transform(&xsl, &input, &f.path("out.xml")).unwrap_err();
    assert!(matches!(error, XsltError::Forbidden(_)), "{error:?}");
    assert!(!target.exists());
}

#[test]
fn inputs_with_a_doctype_or_external_entities_are_refused_unread() {
    let f = Files::new();
    let (secret_path, secret_text) = secret(&f);
    let xsl = f.write(
        "copy.xsl",
        r#"<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:template match="/"><out><xsl:value-of select="."/></out></xsl:template>
</xsl:stylesheet>"#,
    );
    let xxe = format!(
        "<?xml version=\"1.0\"?>\n<!DOCTYPE a [<!ENTITY xxe SYSTEM \"file://{}\">]>\n<a>&xxe;</a>",
        secret_path.display()
    );
    let laughs = "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\">\
<!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\
<!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">\
<!ENTITY lol4 \"&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;\">]><lolz>&lol4;</lolz>";
    let external_dtd = format!("<!DOCTYPE a SYSTEM \"file://{}\"><a/>", secret_path.display());
    for (name, text) in [("xxe.xml", xxe.as_str()), ("laughs.xml", laughs), ("dtd.xml", external_dtd.as_str())] {
        let input = f.write(name, text);
        let output = f.path("out.xml");
        let error = runner().transform(&xsl, &input, &output).unwrap_err();
        let XsltError::InvalidInput(message) = &error else { panic!("{name}: {error:?}") };
        assert!(message.contains("DTD"), "{name}: {message}");
        assert!(!message.contains(secret_text));
        assert!(!output.exists());

        let error = transform_in_process(&xsl, &input, &output).unwrap_err();
        assert!(matches!(error, XsltError::InvalidInput(_)), "{name}: {error:?}");
    }
}

#[test]
fn a_stylesheet_with_a_doctype_is_refused() {
    let f = Files::new();
    let (secret_path, _) = secret(&f);
    let xsl = format!(
        r#"<?xml version="1.0"?>
<!DOCTYPE xsl:stylesheet [<!ENTITY x SYSTEM "file://{}">]>
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:template match="/"><out>&x;</out></xsl:template>
</xsl:stylesheet>"#,
        secret_path.display()
    );
    let error = check_stylesheet(xsl.as_bytes()).unwrap_err();
    assert!(matches!(&error, XsltError::InvalidStylesheet(m) if m.contains("DTD")), "{error:?}");
}

#[test]
fn malformed_input_is_reported_with_its_line() {
    let f = Files::new();
    let xsl = f.write("t.xsl", VENDOR_XSL);
    let input = f.write("in.xml", "<Customers>\n<Customer id=\"1\">\n</Customers>\n");
    let error = runner().transform(&xsl, &input, &f.path("out.xml")).unwrap_err();
    let XsltError::InvalidInput(message) = &error else { panic!("{error:?}") };
    assert!(message.contains("line 3"), "{message}");
}

#[test]
fn xsl_message_terminate_fails_the_transform_with_its_text() {
    let f = Files::new();
    let xsl = f.write(
        "t.xsl",
        r#"<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:template match="/">
    <xsl:message terminate="yes">customer <xsl:value-of select="/a/@id"/> has no account</xsl:message>
  </xsl:template>
</xsl:stylesheet>"#,
    );
    let input = f.write("in.xml", "<a id='C-9'/>");
    let output = f.path("out.xml");
    let error = runner().transform(&xsl, &input, &output).unwrap_err();
    let XsltError::Failed(message) = &error else { panic!("{error:?}") };
    assert!(message.contains("customer C-9 has no account"), "{message}");
    assert!(!output.exists());
}

#[test]
fn a_worker_killed_by_a_signal_is_reported_as_crashed() {
    let f = Files::new();
    let (xsl, input) = (f.write("t.xsl", VENDOR_XSL), f.write("in.xml", VENDOR_INPUT));
    let output = f.write("out.xml", "partial");
    let error = shell_runner("kill -SEGV $$").transform(&xsl, &input, &output).unwrap_err();
    let XsltError::Crashed(message) = &error else { panic!("{error:?}") };
    assert!(message.contains("SIGSEGV"), "{message}");
    assert!(!output.exists(), "a partial output is removed");

    let error = shell_runner("echo 'thread main panicked' >&2; exit 101").transform(&xsl, &input, &output).unwrap_err();
    assert!(matches!(&error, XsltError::Crashed(m) if m.contains("101") && m.contains("panicked")), "{error:?}");
}

#[test]
fn a_hanging_worker_is_killed_at_the_timeout() {
    let f = Files::new();
    let (xsl, input) = (f.write("t.xsl", VENDOR_XSL), f.write("in.xml", VENDOR_INPUT));
    let started = Instant::now();
    let error = shell_runner("sleep 30; echo done")
        .with_timeout(Duration::from_millis(300))
        .transform(&xsl, &input, &f.path("out.xml"))
        .unwrap_err();
    assert!(matches!(error, XsltError::TimedOut(_)), "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
}

#[test]
fn a_runaway_stylesheet_is_stopped() {
    let f = Files::new();
    // Endless recursion through a named template with a growing parameter.
    let xsl = f.write(
        "loop.xsl",
        r#"<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:template match="/"><xsl:call-template name="t"><xsl:with-param name="n" select="0"/></xsl:call-template></xsl:template>
  <xsl:template name="t"><xsl:param name="n"/><x/><xsl:call-template name="t"><xsl:with-param name="n" select="$n + 1"/></xsl:call-template></xsl:template>
</xsl:stylesheet>"#,
    );
    let input = f.write("in.xml", "<a/>");
    let error = runner().with_timeout(Duration::from_secs(30)).transform(&xsl, &input, &f.path("out.xml")).unwrap_err();
    // libxslt stops it at its template depth limit; whatever happens, the test process survives.
    assert!(matches!(error, XsltError::Failed(_) | XsltError::Crashed(_) | XsltError::TimedOut(_)), "{error:?}");
}

#[test]
fn size_limits_are_enforced() {
    let f = Files::new();
    let (xsl, input) = (f.write("t.xsl", VENDOR_XSL), f.write("in.xml", VENDOR_INPUT));
    let error = runner().with_max_input_bytes(10).transform(&xsl, &input, &f.path("out.xml")).unwrap_err();
    assert!(matches!(&error, XsltError::TooLarge(m) if m.contains("input")), "{error:?}");

    // Output: 200,000 elements of 30 bytes, capped at 64 KiB.
    let big = f.write(
        "big.xsl",
        r#"<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:template match="/"><out><xsl:call-template name="t"><xsl:with-param name="n" select="200"/></xsl:call-template></out></xsl:template>
  <xsl:template name="t"><xsl:param name="n"/><xsl:if test="$n &gt; 0">
    <xsl:call-template name="k"><xsl:with-param name="k" select="1000"/></xsl:call-template>
    <xsl:call-template name="t"><xsl:with-param name="n" select="$n - 1"/></xsl:call-template></xsl:if></xsl:template>
  <xsl:template name="k"><xsl:param name="k"/><xsl:if test="$k &gt; 0"><row>xxxxxxxxxxxxxxxxxxxx</row><xsl:call-template name="k"><xsl:with-param name="k" select="$k - 1"/></xsl:call-template></xsl:if></xsl:template>
</xsl:stylesheet>"#,
    );
    let output = f.path("big.xml");
    let error = runner().with_max_output_bytes(64 * 1024).transform(&big, &input, &output).unwrap_err();
    assert!(matches!(&error, XsltError::TooLarge(m) if m.contains("output")), "{error:?}");
    assert!(!output.exists());
}

#[test]
fn a_memory_bomb_fails_instead_of_giving_a_wrong_result() {
    let f = Files::new();
    // Doubles a string 40 times: 16 TiB. libxml2 carries on after failed allocations (the string
    // comes back short), so the worker must notice and fail rather than write a wrong result.
    let xsl = f.write(
        "mem.xsl",
        r#"<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:template match="/"><out><xsl:call-template name="d"><xsl:with-param name="n" select="40"/><xsl:with-param name="s" select="'xxxxxxxxxxxxxxxx'"/></xsl:call-template></out></xsl:template>
  <xsl:template name="d"><xsl:param name="n"/><xsl:param name="s"/>
    <xsl:choose><xsl:when test="$n = 0"><xsl:value-of select="string-length($s)"/></xsl:when>
    <xsl:otherwise><xsl:call-template name="d"><xsl:with-param name="n" select="$n - 1"/><xsl:with-param name="s" select="concat($s, $s)"/></xsl:call-template></xsl:otherwise></xsl:choose>
  </xsl:template>
</xsl:stylesheet>"#,
    );
    let input = f.write("in.xml", "<a/>");
    let output = f.path("out.xml");
    let error = runner().with_max_memory_bytes(256 << 20).transform(&xsl, &input, &output).unwrap_err();
    assert!(matches!(&error, XsltError::TooLarge(m) if m.contains("memory")), "{error:?}");
    assert!(!output.exists());
}

#[test]
fn missing_files_are_io_errors() {
    let f = Files::new();
    let xsl = f.write("t.xsl", VENDOR_XSL);
    let error = runner().transform(&xsl, &f.path("nope.xml"), &f.path("out.xml")).unwrap_err();
    assert!(matches!(&error, XsltError::Io(m, _) if m.contains("nope.xml")), "{error:?}");

    let error = XsltRunner::new(f.path("no-such-worker"), Vec::new())
        .transform(&xsl, &f.write("in.xml", "<a/>"), &f.path("out.xml"))
        .unwrap_err();
    assert!(matches!(&error, XsltError::Io(m, _) if m.contains("no-such-worker")), "{error:?}");
}

#[test]
fn checks_from_many_threads_are_serialized_safely() {
    let handles: Vec<_> = (0..8)
        .map(|i| {
            std::thread::spawn(move || {
                if i % 2 == 0 {
                    check_stylesheet(VENDOR_XSL.as_bytes()).is_ok()
                } else {
                    matches!(check_stylesheet(INVALID_XSL.as_bytes()), Err(XsltError::InvalidStylesheet(m)) if m.contains("(("))
                }
            })
        })
        .collect();
    for handle in handles {
        assert!(handle.join().unwrap());
    }
}
