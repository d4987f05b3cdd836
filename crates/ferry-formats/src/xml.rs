//! XML: [`XmlReader`] streams records from a document shaped like Dynamics 365's XML formats — a
//! root element (usually `<Document>`) holding one element per record, whose fields are child
//! elements ([`Style::Element`]) or attributes ([`Style::Attribute`]).
//!
//! Hostile input is expected: any DTD is refused (so no external entities and no entity
//! expansion, "billion laughs" included), only the five predefined entities and character
//! references are decoded, nesting is capped by `max_xml_depth`, and the bytes of one record are
//! capped by `max_record_bytes` while they are read, so no single element or text can fill memory.

use crate::encoding::{TextEncoding, Utf8Reader};
use crate::record::{DiscoveredColumns, Input};
use crate::{Cell, FormatError, FormatErrorKind, Limits, RecordReader, SourceRecord};
use quick_xml::XmlVersion;
use quick_xml::escape::resolve_xml_entity;
use quick_xml::events::{BytesStart, Event};
use std::io::{self, BufRead, Read};

/// Where a record keeps its fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// `<CUSTOMER><NAME>Contoso</NAME>…</CUSTOMER>`; `i:nil="true"` marks a null field.
    Element,
    /// `<CUSTOMER NAME="Contoso" …/>`; an absent attribute is a null field.
    Attribute,
}

/// A streaming reader of one XML document.
pub struct XmlReader {
    xml: quick_xml::Reader<Budget<Utf8Reader<Box<dyn Input>>>>,
    buf: Vec<u8>,
    style: Style,
    max_field_bytes: usize,
    max_depth: usize,
    max_attributes: usize,
    columns: DiscoveredColumns,
    /// Ordinal of the record being read (0 before the first).
    record: u64,
    /// An encoding the XML declaration names that is neither UTF-8 nor UTF-16, to explain an
    /// encoding error.
    declared_encoding: Option<String>,
    done: bool,
}

/// One parsing event, owned, with text already decoded.
enum Ev {
    Start(Tag),
    Empty(Tag),
    End,
    Text(String),
    /// A comment, processing instruction or the XML declaration.
    Skip,
    Eof,
}

struct Tag {
    name: String,
    /// Attributes with their values decoded; namespace declarations left out.
    attrs: Vec<(String, String)>,
}

impl Tag {
    /// `i:nil="true"` / `xsi:nil="true"` (any prefix).
    fn is_nil(&self) -> bool {
        self.attrs.iter().any(|(k, v)| k.ends_with(":nil") && matches!(v.trim(), "true" | "1"))
    }
}

impl XmlReader {
    /// Reads up to the root element's start tag.
    pub fn open(input: Box<dyn Input>, style: Style, limits: &Limits) -> Result<Self, FormatError> {
        let src = Utf8Reader::new_xml(input)?;
        let mut xml = quick_xml::Reader::from_reader(Budget { inner: src, used: 0, limit: limits.max_record_bytes });
        let config = xml.config_mut();
        config.check_end_names = true;
        config.expand_empty_elements = false;
        config.trim_text(false);
        let mut reader = XmlReader {
            xml,
            buf: Vec::new(),
            style,
            max_field_bytes: limits.max_field_bytes,
            max_depth: limits.max_xml_depth,
            max_attributes: limits.max_columns,
            columns: DiscoveredColumns::new(limits.max_columns),
            record: 0,
            declared_encoding: None,
            done: false,
        };
        loop {
            match reader.event()? {
                Ev::Skip => {}
                Ev::Text(t) if is_blank(&t) => {}
                Ev::Start(_) => return Ok(reader),
                Ev::Empty(_) => {
                    // `<Document/>`: a document without records.
                    reader.epilog()?;
                    reader.done = true;
                    return Ok(reader);
                }
                Ev::Text(_) | Ev::End => {
                    return Err(reader.malformed("text or an end tag comes before the root element"));
                }
                Ev::Eof => {
                    return Err(FormatError::new(
                        FormatErrorKind::Malformed,
                        "the file holds no XML element: expected a root element such as <Document> holding the records",
                    ));
                }
            }
        }
    }

    fn event(&mut self) -> Result<Ev, FormatError> {
        if self.buf.capacity() > 1 << 20 {
            // One large event does not keep its buffer for the rest of the file.
            self.buf = Vec::new();
        }
        self.buf.clear();
        let event = match self.xml.read_event_into(&mut self.buf) {
            Ok(event) => event,
            Err(e) => {
                let position = match e {
                    quick_xml::Error::Syntax(_) => self.xml.error_position(),
                    _ => self.xml.buffer_position(),
                };
                return Err(self.xml_error(e, position));
            }
        };
        match event {
            Event::Start(e) => Ok(Ev::Start(tag(&e, self.max_attributes)?)),
            Event::Empty(e) => Ok(Ev::Empty(tag(&e, self.max_attributes)?)),
            Event::End(_) => Ok(Ev::End),
            Event::Text(t) => Ok(Ev::Text(t.xml10_content().into_owned())),
            Event::CData(t) => Ok(Ev::Text(t.xml10_content().into_owned())),
            Event::GeneralRef(r) => {
                if r.is_char_ref() {
                    match r.resolve_char_ref() {
                        Ok(Some(c)) => Ok(Ev::Text(c.to_string())),
                        _ => Err(FormatError::new(
                            FormatErrorKind::Malformed,
                            format!("'&{};' is not a valid character reference", r.as_ref()),
                        )),
                    }
                } else {
                    match resolve_xml_entity(r.as_ref()) {
                        Some(s) => Ok(Ev::Text(s.to_string())),
                        None => Err(unknown_entity(r.as_ref())),
                    }
                }
            }
            Event::Comment(_) | Event::PI(_) => Ok(Ev::Skip),
            Event::Decl(d) => {
                if let Some(Ok(declared)) = d.encoding() {
                    let name = declared.to_ascii_lowercase();
                    if !matches!(
                        name.as_str(),
                        "utf-8" | "utf8" | "utf-16" | "utf-16le" | "utf-16be" | "us-ascii" | "ascii"
                    ) {
                        self.declared_encoding = Some(declared.into_owned());
                    }
                }
                Ok(Ev::Skip)
            }
            Event::DocType(_) => Err(FormatError::new(
                FormatErrorKind::ForbiddenXml,
                "the file declares a DOCTYPE: DTDs and entity declarations are not allowed (they can read local \
                 files or expand without bound); remove the <!DOCTYPE …> declaration",
            )),
            Event::Eof => Ok(Ev::Eof),
        }
    }

    fn xml_error(&self, e: quick_xml::Error, position: u64) -> FormatError {
        match e {
            quick_xml::Error::Io(io) => match io.get_ref().and_then(|inner| inner.downcast_ref::<FormatError>()) {
                Some(inner) => {
                    let mut error = inner.clone();
                    if error.kind == FormatErrorKind::InvalidEncoding
                        && let Some(declared) = &self.declared_encoding
                        && self.xml.get_ref().inner.encoding() == TextEncoding::Utf8
                    {
                        error.message.push_str(&format!(
                            " (the XML declaration names the encoding \"{declared}\", which ferry does not read)"
                        ));
                    }
                    error
                }
                None => FormatError::new(FormatErrorKind::Io, format!("could not read the input: {io}")),
            },
            other => self.malformed(&format!("{other} (near byte {position} of the text)")),
        }
    }

    fn malformed(&self, what: &str) -> FormatError {
        FormatError::new(FormatErrorKind::Malformed, format!("the XML is malformed: {what}"))
    }

    /// After the root element: only comments, processing instructions and white space.
    fn epilog(&mut self) -> Result<(), FormatError> {
        loop {
            match self.event()? {
                Ev::Eof => return Ok(()),
                Ev::Skip => {}
                Ev::Text(t) if is_blank(&t) => {}
                _ => return Err(self.malformed("there is content after the end of the root element")),
            }
        }
    }

    /// Reads the rest of record `tag` (after its start tag; `empty` for `<RECORD …/>`).
    fn record(&mut self, tag: Tag, empty: bool) -> Result<SourceRecord, FormatError> {
        let row = self.record;
        let mut cells: Vec<Option<Cell>> = Vec::new();
        let mut problem: Option<FormatError> = None;
        if self.style == Style::Attribute {
            for (name, value) in tag.attrs {
                let cell = if value.len() > self.max_field_bytes {
                    Err(self.too_large(value.len()))
                } else {
                    Ok(Cell::Text(value))
                };
                self.set(&mut cells, &mut problem, &name, cell)?;
            }
        }
        if !empty {
            loop {
                match self.event()? {
                    Ev::End => break,
                    Ev::Skip => {}
                    Ev::Text(t) if is_blank(&t) => {}
                    Ev::Text(_) => {
                        problem
                            .get_or_insert_with(|| invalid("the record element holds text outside any field element"));
                    }
                    Ev::Start(field) if self.style == Style::Element => {
                        let cell = self.field_value(&field)?;
                        self.set(&mut cells, &mut problem, &field.name, cell)?;
                    }
                    Ev::Empty(field) if self.style == Style::Element => {
                        let cell = if field.is_nil() { Cell::Null } else { Cell::Text(String::new()) };
                        self.set(&mut cells, &mut problem, &field.name, Ok(cell))?;
                    }
                    Ev::Start(child) => {
                        self.skip(3)?;
                        problem.get_or_insert_with(|| child_in_attribute_record(&child.name));
                    }
                    Ev::Empty(child) => {
                        problem.get_or_insert_with(|| child_in_attribute_record(&child.name));
                    }
                    Ev::Eof => return Err(self.truncated()),
                }
            }
        }
        match problem {
            Some(p) => Err(p.at_row(row)),
            None => {
                let mut cells: Vec<Cell> = cells.into_iter().map(|c| c.unwrap_or(Cell::Null)).collect();
                cells.resize(self.columns.names().len(), Cell::Null);
                Ok(SourceRecord { row, cells })
            }
        }
    }

    /// Stores one field's value (or its problem) in the record being built.
    fn set(
        &mut self,
        cells: &mut Vec<Option<Cell>>,
        problem: &mut Option<FormatError>,
        name: &str,
        cell: Result<Cell, FormatError>,
    ) -> Result<(), FormatError> {
        let index = self.columns.index_of(name).map_err(|e| e.at_row(self.record))?;
        if cells.len() <= index {
            cells.resize(index + 1, None);
        }
        if problem.is_some() {
            return Ok(());
        }
        match cell {
            Err(e) => *problem = Some(e.in_column(name)),
            Ok(_) if cells[index].is_some() => {
                *problem = Some(
                    invalid("the field appears twice in the record (names are compared ignoring case)").in_column(name),
                );
            }
            Ok(cell) => cells[index] = Some(cell),
        }
        Ok(())
    }

    /// Reads a field element's text up to its end tag (element style).
    fn field_value(&mut self, field: &Tag) -> Result<Result<Cell, FormatError>, FormatError> {
        let mut value = String::new();
        let mut len = 0usize;
        let mut nested: Option<String> = None;
        loop {
            match self.event()? {
                Ev::End => break,
                Ev::Skip => {}
                Ev::Text(t) => {
                    len = len.saturating_add(t.len());
                    if len <= self.max_field_bytes {
                        value.push_str(&t);
                    }
                }
                Ev::Start(inner) => {
                    nested.get_or_insert(inner.name);
                    self.skip(4)?;
                }
                Ev::Empty(inner) => {
                    nested.get_or_insert(inner.name);
                }
                Ev::Eof => return Err(self.truncated()),
            }
        }
        Ok(if let Some(inner) = nested {
            Err(invalid(&format!(
                "the field holds the element <{inner}>: nested elements in a field are not supported, a field holds \
                 text only"
            )))
        } else if len > self.max_field_bytes {
            Err(self.too_large(len))
        } else if field.is_nil() {
            Ok(Cell::Null)
        } else {
            Ok(Cell::Text(value))
        })
    }

    /// Skips the content of an element just started at nesting `depth` (root = 1) and its end tag.
    fn skip(&mut self, depth: usize) -> Result<(), FormatError> {
        let mut open = 1usize;
        loop {
            match self.event()? {
                Ev::Start(_) => {
                    open += 1;
                    if depth + open - 1 > self.max_depth {
                        return Err(FormatError::new(
                            FormatErrorKind::LimitExceeded,
                            format!(
                                "elements are nested more than {} deep (max_xml_depth); ferry reads flat records",
                                self.max_depth
                            ),
                        )
                        .at_row(self.record));
                    }
                }
                Ev::End => {
                    open -= 1;
                    if open == 0 {
                        return Ok(());
                    }
                }
                Ev::Eof => return Err(self.truncated()),
                Ev::Empty(_) | Ev::Text(_) | Ev::Skip => {}
            }
        }
    }

    fn too_large(&self, len: usize) -> FormatError {
        FormatError::new(
            FormatErrorKind::FieldTooLarge,
            format!("the value is {len} bytes long; the limit is {} bytes (max_field_bytes)", self.max_field_bytes),
        )
    }

    fn truncated(&self) -> FormatError {
        self.malformed("the file ends before the root element is closed; it may be truncated")
    }
}

impl RecordReader for XmlReader {
    fn columns(&self) -> &[String] {
        self.columns.names()
    }

    fn next_record(&mut self) -> Option<Result<SourceRecord, FormatError>> {
        if self.done {
            return None;
        }
        let result = loop {
            match self.event() {
                Err(e) => break Err(e),
                Ok(Ev::Skip) => {}
                Ok(Ev::Text(t)) if is_blank(&t) => {}
                Ok(Ev::Text(_)) => break Err(self.malformed("the root element holds text outside any record element")),
                Ok(Ev::Start(tag)) => {
                    self.record += 1;
                    self.xml.get_mut().used = 0;
                    break self.record(tag, false);
                }
                Ok(Ev::Empty(tag)) => {
                    self.record += 1;
                    self.xml.get_mut().used = 0;
                    break self.record(tag, true);
                }
                Ok(Ev::End) => {
                    self.done = true;
                    return self.epilog().err().map(Err);
                }
                Ok(Ev::Eof) => break Err(self.truncated()),
            }
        };
        match result {
            Err(e) if e.is_fatal() => {
                self.done = true;
                let e = if e.row.is_none() && self.record > 0 { e.at_row(self.record) } else { e };
                Some(Err(e))
            }
            other => Some(other),
        }
    }
}

/// Decodes a start tag. At most `max_attributes` attributes (more is fatal); quick-xml's own
/// duplicate check is quadratic, so it is off and duplicates are caught as duplicate fields.
fn tag(e: &BytesStart<'_>, max_attributes: usize) -> Result<Tag, FormatError> {
    let name = e.name().as_ref().to_string();
    let mut attrs = Vec::new();
    let mut attributes = e.attributes();
    attributes.with_checks(false);
    for attr in attributes {
        if attrs.len() >= max_attributes {
            return Err(FormatError::new(
                FormatErrorKind::LimitExceeded,
                format!("the element <{name}> has more than {max_attributes} attributes (max_columns)"),
            ));
        }
        let attr = attr.map_err(|err| {
            FormatError::new(
                FormatErrorKind::Malformed,
                format!("the XML is malformed: an attribute of <{name}>: {err}"),
            )
        })?;
        let key = attr.key.as_ref();
        if key == "xmlns" || key.starts_with("xmlns:") {
            continue;
        }
        let value =
            attr.normalized_value_with(XmlVersion::Implicit1_0, 1, resolve_xml_entity).map_err(|err| match err {
                quick_xml::Error::Escape(quick_xml::escape::EscapeError::UnrecognizedEntity(_, entity)) => {
                    unknown_entity(&entity)
                }
                other => FormatError::new(
                    FormatErrorKind::Malformed,
                    format!("the XML is malformed: attribute {key} of <{name}>: {other}"),
                ),
            })?;
        attrs.push((key.to_string(), value.into_owned()));
    }
    Ok(Tag { name, attrs })
}

fn unknown_entity(name: &str) -> FormatError {
    FormatError::new(
        FormatErrorKind::ForbiddenXml,
        format!(
            "the entity reference '&{name};' is not allowed: only &lt; &gt; &amp; &apos; &quot; and character \
             references such as &#233; are (DTDs and entity declarations are not allowed)"
        ),
    )
}

fn child_in_attribute_record(child: &str) -> FormatError {
    invalid(&format!(
        "the record holds the element <{child}>: in the XML-Attribute format every field is an attribute of the \
         record element"
    ))
}

fn invalid(message: &str) -> FormatError {
    FormatError::new(FormatErrorKind::InvalidRecord, message)
}

fn is_blank(text: &str) -> bool {
    text.bytes().all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
}

/// Counts the bytes the XML parser takes and fails once one record's share passes `limit`, so
/// the parser never buffers an unbounded element, text or attribute (overshoot: one chunk).
struct Budget<R> {
    inner: R,
    used: usize,
    limit: usize,
}

impl<R: BufRead> Read for Budget<R> {
    fn read(&mut self, dst: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(dst.len());
        dst[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Budget<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.used > self.limit {
            return Err(FormatError::new(
                FormatErrorKind::LimitExceeded,
                format!(
                    "the record is larger than {} bytes (max_record_bytes), or the file holds a single element or \
                     text that large",
                    self.limit
                ),
            )
            .into());
        }
        self.inner.fill_buf()
    }

    fn consume(&mut self, amount: usize) {
        self.used = self.used.saturating_add(amount);
        self.inner.consume(amount);
    }
}
