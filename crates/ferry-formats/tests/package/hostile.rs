//! Hostile packages: entries that escape the package, symbolic links, zip bombs (by ratio, by
//! bytes, by entry count), manifests with DTDs or entities, huge or deeply nested manifests —
//! built with the helpers of `package.rs`.

use super::*;

fn manifest_for(file: &str) -> Vec<u8> {
    utf16le_bom(&d365_manifest(&d365_entity("Customer groups", file, "CSV", 1, "")))
}

#[test]
fn entries_that_escape_the_package_are_refused() {
    for name in [
        "../../etc/passwd",
        "/etc/x",
        "data/../../x.csv",
        "..\\..\\windows\\system32\\x",
        "C:/Windows/x",
        "c:x.csv",
        "\\\\server\\share\\x",
        "file.csv:stream",
        "a//b.csv",
        "./x.csv",
        "x\u{0}.csv",
    ] {
        let manifest = manifest_for("ok.csv");
        let error = open_err(&zip_bytes(&[("Manifest.xml", &manifest), ("ok.csv", b"A\n"), (name, b"pwned")]));
        assert_eq!(error.kind, FormatErrorKind::UnsafePackage, "{name:?}: {error}");
        assert!(error.message.contains("is refused"), "{name:?}: {error}");
    }
}

#[test]
fn symbolic_links_are_refused() {
    let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
    writer.start_file("Manifest.xml", deflated()).unwrap();
    writer.write_all(&manifest_for("ok.csv")).unwrap();
    writer.add_symlink("ok.csv", "/etc/passwd", SimpleFileOptions::default()).unwrap();
    let bytes = writer.finish().unwrap().into_inner();
    assert_eq!(open_err(&bytes).kind, FormatErrorKind::UnsafePackage);
}

#[test]
fn directories_are_fine_but_not_listed() {
    let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
    writer.add_directory("Resources/", SimpleFileOptions::default()).unwrap();
    writer.start_file("Resources/t.xslt", deflated()).unwrap();
    writer.write_all(b"<x/>").unwrap();
    writer.start_file("Manifest.xml", deflated()).unwrap();
    writer.write_all(&manifest_for("ok.csv")).unwrap();
    writer.start_file("ok.csv", deflated()).unwrap();
    writer.write_all(b"A\n").unwrap();
    let package = open(&writer.finish().unwrap().into_inner()).unwrap();
    assert_eq!(package.entry_names(), ["Resources/t.xslt", "Manifest.xml", "ok.csv"]);
}

/// Counts what is written and keeps nothing.
#[derive(Default)]
struct Counter(u64);

impl Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A package whose `bomb.csv` is `megabytes` MiB of zeros, deflated (about 1,000 : 1).
fn bomb_package(megabytes: usize) -> Vec<u8> {
    let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
    writer.start_file("Manifest.xml", deflated()).unwrap();
    writer.write_all(&manifest_for("bomb.csv")).unwrap();
    writer.start_file("bomb.csv", deflated()).unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..megabytes {
        writer.write_all(&zeros).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

/// Offsets of `name`'s central-directory and local headers in a zip made by `zip_bytes`.
fn header_offsets(zip: &[u8], name: &str) -> (usize, usize) {
    let central = (0..zip.len() - 46)
        .find(|&i| {
            zip[i..i + 4] == [0x50, 0x4b, 0x01, 0x02] && {
                let len = u16::from_le_bytes([zip[i + 28], zip[i + 29]]) as usize;
                &zip[i + 46..i + 46 + len] == name.as_bytes()
            }
        })
        .unwrap();
    let local = u32::from_le_bytes(zip[central + 42..central + 46].try_into().unwrap()) as usize;
    (central, local)
}

#[test]
fn a_zip_bomb_is_refused_by_its_ratio_without_writing_it() {
    let bytes = bomb_package(200);
    assert!(bytes.len() < 1 << 20, "200 MiB of zeros deflate to {} bytes", bytes.len());
    // Declared honestly: refused when the package is opened.
    let error = open_err(&bytes);
    assert_eq!(error.kind, FormatErrorKind::UnsafePackage, "{error}");
    assert!(error.message.contains("'bomb.csv'") && error.message.contains("zip bomb"), "{error}");

    // Declared as a tiny file: `open` sees nothing wrong, and extraction stops at the lie.
    let mut lying = bytes.clone();
    let (central, local) = header_offsets(&lying, "bomb.csv");
    lying[central + 24..central + 28].copy_from_slice(&1000u32.to_le_bytes());
    lying[local + 22..local + 26].copy_from_slice(&1000u32.to_le_bytes());
    let mut package = open(&lying).unwrap();
    let mut out = Counter::default();
    let error = package.extract("bomb.csv", &mut out).unwrap_err();
    assert_eq!(error.kind, FormatErrorKind::Malformed, "{error}");
    assert!(out.0 <= 1000, "wrote {} bytes", out.0);

    // Declared with a compressed size larger than the file, so the declared ratio looks harmless:
    // the ratio is taken against what the file can actually hold.
    let mut lying = bytes;
    let (central, local) = header_offsets(&lying, "bomb.csv");
    let huge = u32::MAX - 1;
    lying[central + 20..central + 24].copy_from_slice(&huge.to_le_bytes());
    lying[local + 18..local + 22].copy_from_slice(&huge.to_le_bytes());
    let error = open_err(&lying);
    assert_eq!(error.kind, FormatErrorKind::UnsafePackage, "{error}");
}

#[test]
fn entry_and_package_caps_hold_on_the_bytes_extracted() {
    let limits = Limits { max_entry_bytes: 100, max_package_bytes: 150, ..Limits::default() };
    let manifest = utf16le_bom(&d365_manifest(&d365_entity("G", "g.csv", "CSV", 1, "")));
    // The manifest counts too: give it a large entry cap and package budget.
    let limits_with_room = Limits { max_entry_bytes: 100_000, max_package_bytes: 100_000, ..limits.clone() };
    let bytes = zip_bytes(&[("Manifest.xml", &manifest), ("g.csv", &[b'a'; 80])]);
    let mut package = Package::open(file_of(&bytes), &limits_with_room).unwrap();
    assert_eq!(package.extract("g.csv", &mut Vec::new()).unwrap(), 80);

    // A declared size over the entry cap is refused up front.
    let big = zip_bytes(&[("Manifest.xml", &manifest), ("g.csv", &[b'a'; 200_000])]);
    let error = Package::open(file_of(&big), &limits_with_room).map(drop).unwrap_err();
    assert_eq!(error.kind, FormatErrorKind::LimitExceeded, "{error}");

    // The running total: extracting the same entry again and again runs out of budget.
    let tight = Limits { max_package_bytes: manifest.len() as u64 + 150, ..limits_with_room };
    let mut package = Package::open(file_of(&bytes), &tight).unwrap();
    package.extract("g.csv", &mut Vec::new()).unwrap();
    let mut out = Vec::new();
    let error = package.extract("g.csv", &mut out).unwrap_err();
    assert_eq!(error.kind, FormatErrorKind::UnsafePackage, "{error}");
    assert!(out.is_empty());
}

#[test]
fn an_entry_count_bomb_is_refused() {
    let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
    writer.start_file("Manifest.xml", deflated()).unwrap();
    writer.write_all(&manifest_for("f0.csv")).unwrap();
    for i in 0..Limits::default().max_package_entries {
        writer.start_file(format!("f{i}.csv"), SimpleFileOptions::default()).unwrap();
    }
    let error = open_err(&writer.finish().unwrap().into_inner());
    assert_eq!(error.kind, FormatErrorKind::LimitExceeded, "{error}");
    assert!(error.message.contains("1001 entries"), "{error}");
}

#[test]
fn manifests_with_a_dtd_or_entities_are_forbidden() {
    let laughs = r#"<?xml version="1.0"?>
<!DOCTYPE DataManagementPackageManifest [
  <!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<DataManagementPackageManifest><Description>&lol3;</Description></DataManagementPackageManifest>"#;
    let xxe = r#"<!DOCTYPE m [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><DataManagementPackageManifest><Description>&xxe;</Description></DataManagementPackageManifest>"#;
    let undeclared = "<DataManagementPackageManifest><Description>&xxe;</Description></DataManagementPackageManifest>";
    for manifest in [laughs, xxe, undeclared] {
        let error = open_err(&zip_bytes(&[("Manifest.xml", manifest.as_bytes())]));
        assert_eq!(error.kind, FormatErrorKind::ForbiddenXml, "{manifest}: {error}");
    }
    // Also in UTF-16, and in the package header.
    let error = open_err(&zip_bytes(&[("Manifest.xml", &utf16le_bom(xxe))]));
    assert_eq!(error.kind, FormatErrorKind::ForbiddenXml);
    let header = r#"<!DOCTYPE h SYSTEM "http://example.invalid/h.dtd"><DataManagementPackageHeader/>"#;
    let error = open_err(&zip_bytes(&[
        ("Manifest.xml", &manifest_for("ok.csv")),
        ("ok.csv", b"A\n"),
        ("PackageHeader.xml", header.as_bytes()),
    ]));
    assert_eq!(error.kind, FormatErrorKind::ForbiddenXml);
}

#[test]
fn a_huge_or_deeply_nested_manifest_is_refused() {
    let deep = "<a>".repeat(100) + &"</a>".repeat(100);
    let error = open_err(&zip_bytes(&[("Manifest.xml", deep.as_bytes())]));
    assert_eq!(error.kind, FormatErrorKind::LimitExceeded, "{error}");

    let huge = format!(
        "<DataManagementPackageManifest><Description>{}</Description></DataManagementPackageManifest>",
        "x".repeat(17 << 20)
    );
    let error = open_err(&zip_bytes(&[("Manifest.xml", huge.as_bytes())]));
    assert!(matches!(error.kind, FormatErrorKind::LimitExceeded | FormatErrorKind::UnsafePackage), "{error}");
}
