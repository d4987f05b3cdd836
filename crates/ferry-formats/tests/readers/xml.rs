//! XML: element and attribute styles, nil, escapes, encodings, and refused or broken documents.

use super::{Generated, assert_kind, cols, fatal, read_all, t, utf16};
use ferry_domain::DataFormat;
use ferry_formats::{Cell, FormatErrorKind, Limits, open_reader};
use std::sync::atomic::Ordering;

const ELEMENTS: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<Document xmlns:i="http://www.w3.org/2001/XMLSchema-instance">
  <!-- exported from Dynamics -->
  <CUSTCUSTOMERV3ENTITY>
    <CUSTOMERACCOUNT>US-001</CUSTOMERACCOUNT>
    <NAME>Contoso, Ltd. &amp; Co &lt;east&gt;</NAME>
    <CUSTOMERGROUPID>10</CUSTOMERGROUPID>
    <CREDITLIMIT>5000</CREDITLIMIT>
  </CUSTCUSTOMERV3ENTITY>
  <CUSTCUSTOMERV3ENTITY>
    <CUSTOMERACCOUNT>DE-003</CUSTOMERACCOUNT>
    <NAME>M&#xFC;ller &amp; S&#248;n</NAME>
    <CUSTOMERGROUPID i:nil="true" />
    <CREDITLIMIT><![CDATA[12345678901234567890.123456789]]></CREDITLIMIT>
    <PHONE/>
  </CUSTCUSTOMERV3ENTITY>
  <CUSTCUSTOMERV3ENTITY>
    <name>lowercase maps to NAME</name>
    <CUSTOMERACCOUNT xsi:nil="true" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"></CUSTOMERACCOUNT>
  </CUSTCUSTOMERV3ENTITY>
</Document>
"#;

#[test]
fn reads_element_style_records_with_nil_escapes_and_growing_columns() {
    let out = read_all(&DataFormat::XmlElement, ELEMENTS.as_bytes().to_vec(), &Limits::default()).unwrap();
    assert_eq!(out.columns, cols(&["CUSTOMERACCOUNT", "NAME", "CUSTOMERGROUPID", "CREDITLIMIT", "PHONE"]));
    let records = out.records();
    assert_eq!(records.len(), 3);
    assert_eq!(records[0].row, 1);
    assert_eq!(records[0].cells, vec![t("US-001"), t("Contoso, Ltd. & Co <east>"), t("10"), t("5000")]);
    assert_eq!(
        records[1].cells,
        vec![t("DE-003"), t("Müller & Søn"), Cell::Null, t("12345678901234567890.123456789"), t("")]
    );
    assert_eq!(records[2].row, 3);
    assert_eq!(records[2].cells, vec![Cell::Null, t("lowercase maps to NAME"), Cell::Null, Cell::Null, Cell::Null]);
}

#[test]
fn reads_attribute_style_records() {
    let xml = r#"<Document>
  <CUSTOMER CUSTOMERACCOUNT="US-001" NAME="Contoso &quot;East&quot; &amp; Co" CREDITLIMIT="5000"/>
  <CUSTOMER CUSTOMERACCOUNT="DE-003" NAME="M&#xFC;ller &amp; S&#248;n" EMAIL="a@b.de"></CUSTOMER>
</Document>"#;
    let out = read_all(&DataFormat::XmlAttribute, xml.as_bytes().to_vec(), &Limits::default()).unwrap();
    assert_eq!(out.columns, cols(&["CUSTOMERACCOUNT", "NAME", "CREDITLIMIT", "EMAIL"]));
    let records = out.records();
    assert_eq!(records[0].cells, vec![t("US-001"), t("Contoso \"East\" & Co"), t("5000")], "no EMAIL column yet");
    assert_eq!(records[1].cells, vec![t("DE-003"), t("Müller & Søn"), Cell::Null, t("a@b.de")]);
}

#[test]
fn reads_utf16_documents() {
    let xml = ELEMENTS.replace("encoding=\"utf-8\"", "encoding=\"utf-16\"");
    let expected = read_all(&DataFormat::XmlElement, ELEMENTS.as_bytes().to_vec(), &Limits::default()).unwrap();
    for bytes in [utf16(&xml, true), utf16(&xml, false), utf16(&xml, true)[2..].to_vec()] {
        let out = read_all(&DataFormat::XmlElement, bytes, &Limits::default()).unwrap();
        assert_eq!(out.records(), expected.records());
    }
}

#[test]
fn dtds_and_unknown_entities_are_refused() {
    let xxe = r#"<?xml version="1.0"?>
<!DOCTYPE Document [ <!ENTITY xxe SYSTEM "file:///etc/passwd"> ]>
<Document><R><A>&xxe;</A></R></Document>"#;
    let laughs = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<Document><R><A>&lol3;</A></R></Document>"#;
    for (name, xml) in [("xxe", xxe), ("billion laughs", laughs), ("plain doctype", "<!DOCTYPE Document><Document/>")] {
        let error = fatal(read_all(&DataFormat::XmlElement, xml.as_bytes().to_vec(), &Limits::default()));
        assert_kind(&error, FormatErrorKind::ForbiddenXml);
        assert!(error.message.contains("DTDs and entity declarations are not allowed"), "{name}: {error}");
    }
    let unknown = "<Document><R><A>&nbsp;</A></R></Document>";
    let out = read_all(&DataFormat::XmlElement, unknown.as_bytes().to_vec(), &Limits::default()).unwrap();
    let error = out.items[0].clone().unwrap_err();
    assert_kind(&error, FormatErrorKind::ForbiddenXml);
    assert_eq!(error.row, Some(1));
    let in_attribute = "<Document><R A=\"&ent;\"/></Document>";
    let error = fatal(read_all(&DataFormat::XmlAttribute, in_attribute.as_bytes().to_vec(), &Limits::default()));
    assert_kind(&error, FormatErrorKind::ForbiddenXml);
}

#[test]
fn malformed_xml_is_fatal_with_the_record_number() {
    let xml = "<Document><R><A>1</A></R><R><A>2</B></R></Document>";
    let out = read_all(&DataFormat::XmlElement, xml.as_bytes().to_vec(), &Limits::default()).unwrap();
    assert_eq!(out.items.len(), 2);
    let error = out.items[1].clone().unwrap_err();
    assert_kind(&error, FormatErrorKind::Malformed);
    assert_eq!(error.row, Some(2));

    for broken in ["", "   ", "<Document><R><A>1</A></R>", "<Document/><Other/>", "text<Document/>"] {
        let error = fatal(read_all(&DataFormat::XmlElement, broken.as_bytes().to_vec(), &Limits::default()));
        assert_kind(&error, FormatErrorKind::Malformed);
    }
    let empty = read_all(&DataFormat::XmlElement, b"<Document/>".to_vec(), &Limits::default()).unwrap();
    assert!(empty.items.is_empty());
}

#[test]
fn nested_elements_in_a_field_are_a_record_error() {
    let xml = "<Document><R><A><B>x</B></A></R><R><A>ok</A></R></Document>";
    let out = read_all(&DataFormat::XmlElement, xml.as_bytes().to_vec(), &Limits::default()).unwrap();
    let error = out.items[0].clone().unwrap_err();
    assert_kind(&error, FormatErrorKind::InvalidRecord);
    assert_eq!((error.row, error.column.as_deref()), (Some(1), Some("A")));
    assert!(error.message.contains("nested elements"), "{error}");
    assert_eq!(out.items[1].clone().unwrap().cells, vec![t("ok")]);

    let attr = "<Document><R A=\"1\"><B/></R><R A=\"2\"/><R A=\"3\" a=\"4\"/></Document>";
    let out = read_all(&DataFormat::XmlAttribute, attr.as_bytes().to_vec(), &Limits::default()).unwrap();
    assert_kind(&out.items[0].clone().unwrap_err(), FormatErrorKind::InvalidRecord);
    assert_eq!(out.items[1].clone().unwrap().cells, vec![t("2")]);
    let twice = out.items[2].clone().unwrap_err();
    assert_kind(&twice, FormatErrorKind::InvalidRecord);
    assert!(twice.message.contains("twice"), "{twice}");
}

#[test]
fn too_many_attributes_are_fatal() {
    let limits = Limits { max_columns: 4, ..Limits::default() };
    let attrs: String = (0..10).map(|i| format!(" A{i}=\"x\"")).collect();
    let xml = format!("<Document><R{attrs}/></Document>");
    let error = fatal(read_all(&DataFormat::XmlAttribute, xml.into_bytes(), &limits));
    assert_kind(&error, FormatErrorKind::LimitExceeded);
}

#[test]
fn nesting_deeper_than_the_cap_is_fatal() {
    let limits = Limits { max_xml_depth: 8, ..Limits::default() };
    let deep = format!("<Document><R><A>{}{}</A></R></Document>", "<x>".repeat(20), "</x>".repeat(20));
    let error = fatal(read_all(&DataFormat::XmlElement, deep.into_bytes(), &limits));
    assert_kind(&error, FormatErrorKind::LimitExceeded);
}

#[test]
fn a_field_over_the_cap_is_a_record_error() {
    let limits = Limits { max_field_bytes: 8, ..Limits::default() };
    let xml = "<Document><R><A>far too long</A></R><R><A>short</A></R></Document>";
    let out = read_all(&DataFormat::XmlElement, xml.as_bytes().to_vec(), &limits).unwrap();
    let error = out.items[0].clone().unwrap_err();
    assert_kind(&error, FormatErrorKind::FieldTooLarge);
    assert_eq!((error.row, error.column.as_deref()), (Some(1), Some("A")));
    assert_eq!(out.items[1].clone().unwrap().cells, vec![t("short")]);
}

#[test]
fn a_huge_text_fails_without_being_buffered() {
    let limits = Limits { max_record_bytes: 1 << 20, ..Limits::default() };
    let input = Generated::new(b"<Document><R><A>", b'x', 64 << 20);
    let read = input.read.clone();
    let mut reader = open_reader(&DataFormat::XmlElement, Box::new(input), &limits).unwrap();
    let error = reader.next_record().unwrap().unwrap_err();
    assert_kind(&error, FormatErrorKind::LimitExceeded);
    assert_eq!(error.row, Some(1));
    assert!(reader.next_record().is_none());
    assert!(read.load(Ordering::Relaxed) < 2 << 20, "read {} bytes", read.load(Ordering::Relaxed));
}

#[test]
fn invalid_utf8_is_fatal() {
    let bytes = b"<?xml version=\"1.0\" encoding=\"iso-8859-1\"?><Document><R><A>M\xFCller</A></R></Document>".to_vec();
    let error = fatal(read_all(&DataFormat::XmlElement, bytes, &Limits::default()));
    assert_kind(&error, FormatErrorKind::InvalidEncoding);
    assert!(error.message.contains("iso-8859-1"), "{error}");
}
