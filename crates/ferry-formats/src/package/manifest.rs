//! `Manifest.xml` and `PackageHeader.xml`: reading them as Dynamics 365 and third parties write
//! them, writing them as Dynamics 365 does, and mapping manifest source-format names.
//!
//! Reading is lenient the way people's files need: UTF-8 or UTF-16 (either byte order, with or
//! without a byte-order mark), elements in any order, unknown elements ignored, namespaces ignored
//! (local names only, compared ignoring ASCII case), `i:nil="true"` read as absent, and the legacy
//! `Entities`/`Name` shape. It is strict where safety needs it: no DTD, no entities beyond XML's
//! five, a size cap and a depth cap.
//!
//! Writing follows .NET's `DataContractSerializer` as Dynamics 365 uses it: default namespace
//! `http://schemas.microsoft.com/dynamics/2015/01/DataManagement` plus `xmlns:i`, members in
//! ordinal alphabetical order, `i:nil="true"` for nulls, UTF-16 LE with a byte-order mark, no XML
//! declaration, one line.

use crate::{FormatError, FormatErrorKind};
use ferry_domain::DataFormat;
use quick_xml::events::Event;
use std::io::{self, Write};

/// The DataContract namespace of data-management packages.
pub const NAMESPACE: &str = "http://schemas.microsoft.com/dynamics/2015/01/DataManagement";
const XSI_NAMESPACE: &str = "http://www.w3.org/2001/XMLSchema-instance";
/// `ManifestType` of a definition-group package, as Dynamics 365 writes it.
pub const DEFINITION_GROUP_MANIFEST_TYPE: &str =
    "Microsoft.Dynamics.AX.Framework.Tools.DataManagement.Serialization.DataManagementPackageManifest";

/// The largest manifest or header file read, in bytes.
pub const MAX_MANIFEST_BYTES: u64 = 16 << 20;
/// The deepest element nesting accepted in a manifest (real ones are 6 deep).
const MAX_DEPTH: usize = 32;

/// `Manifest.xml`: the data project a package belongs to and its entities.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Manifest {
    /// `DefinitionGroupName`: the data project (definition group).
    pub definition_group: Option<String>,
    pub description: Option<String>,
    /// `PackageEntityList`, in file order.
    pub entities: Vec<ManifestEntity>,
}

impl Manifest {
    /// The entities in the order they are processed: by execution unit, then level in the unit,
    /// then sequence in the level; entities with equal keys keep their manifest order.
    pub fn execution_order(&self) -> Vec<&ManifestEntity> {
        let mut order: Vec<&ManifestEntity> = self.entities.iter().collect();
        order.sort_by_key(|e| (e.execution_unit, e.level, e.sequence));
        order
    }
}

/// One `DataManagementPackageEntityData` of a manifest.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ManifestEntity {
    /// `EntityName`: the entity's (label) name, e.g. `Customer groups`.
    pub entity_name: String,
    /// `SourceFormat` as written (`CSV-Unicode`, `EXCEL`, `XML-Element`…); empty when absent. See
    /// [`source_format_from_manifest`].
    pub source_format: String,
    /// `InputFilePath`: the data file's entry name in the package.
    pub input_file_path: String,
    /// `ExecutionUnit`, `LevelInExecutionUnit`, `SequenceInLevel` (each 1 when absent).
    pub execution_unit: i32,
    pub level: i32,
    pub sequence: i32,
    /// `ExcelSheetName`, for Excel sources.
    pub excel_sheet: Option<String>,
    /// `Disable`.
    pub disabled: bool,
    /// `SkipStaging`.
    pub skip_staging: bool,
    /// `DefaultRefreshType` is `IncrementalPush`: the data file holds what changed since the
    /// previous export (else `FullPush`, every row).
    pub incremental: bool,
    /// `DeletedRecordsFilePath` (ferry's own; other readers ignore it): the entry listing the keys
    /// of rows deleted since the previous export, in the data file's format.
    pub deleted_records_path: Option<String>,
    /// `EntityMapList`: which source column feeds which entity field. Maps without a source column
    /// (defaults, generated fields) are left out.
    pub field_map: Vec<FieldMapping>,
    /// `EntityTransformList`: the XSLT files (package entry names) to apply to the data file, in order.
    pub transforms: Vec<String>,
}

/// One `EntityMap`: source column (`XMLField`) to entity field (`EntityField`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldMapping {
    pub source_column: String,
    pub entity_field: String,
}

/// `PackageHeader.xml`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PackageHeader {
    pub description: Option<String>,
    pub manifest_type: Option<String>,
    /// `DefinitionGroup` for data-project packages.
    pub package_type: Option<String>,
    /// `1` (older Dynamics 365) or `2` (current).
    pub package_version: Option<String>,
}

// ---- a small element tree, built with the caps above ----

#[derive(Debug, Default)]
struct Element {
    /// Local name (prefix removed).
    name: String,
    nil: bool,
    text: String,
    children: Vec<Element>,
}

impl Element {
    fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name.eq_ignore_ascii_case(name))
    }

    /// The first child of one of `names` (alternative spellings).
    fn child_of(&self, names: &[&str]) -> Option<&Element> {
        names.iter().find_map(|n| self.child(n))
    }

    /// The trimmed text of a child; `None` when absent, nil or empty.
    fn text_of(&self, names: &[&str]) -> Option<String> {
        let child = self.child_of(names)?;
        let text = child.text.trim();
        (!child.nil && !text.is_empty()).then(|| text.to_owned())
    }
}

/// Decodes a manifest's bytes: UTF-8 or UTF-16 by byte-order mark (or by the first `<`'s zero byte).
fn decode(bytes: &[u8], file: &str) -> Result<String, FormatError> {
    let (encoding, body) = match bytes {
        [0xEF, 0xBB, 0xBF, rest @ ..] => (encoding_rs::UTF_8, rest),
        [0xFF, 0xFE, rest @ ..] => (encoding_rs::UTF_16LE, rest),
        [0xFE, 0xFF, rest @ ..] => (encoding_rs::UTF_16BE, rest),
        [b'<', 0, ..] => (encoding_rs::UTF_16LE, bytes),
        [0, b'<', ..] => (encoding_rs::UTF_16BE, bytes),
        _ => (encoding_rs::UTF_8, bytes),
    };
    encoding.decode_without_bom_handling_and_without_replacement(body).map(|text| text.into_owned()).ok_or_else(|| {
        FormatError::new(
            FormatErrorKind::InvalidEncoding,
            format!("{file} is not valid {}; manifests are UTF-8 or UTF-16", encoding.name()),
        )
    })
}

fn line_of(text: &str, position: u64) -> usize {
    let end = usize::try_from(position).unwrap_or(usize::MAX).min(text.len());
    text.as_bytes()[..end].iter().filter(|&&b| b == b'\n').count() + 1
}

/// Parses XML text into an element tree: the root element.
fn parse_tree(text: &str, file: &str) -> Result<Element, FormatError> {
    let malformed = |position: u64, what: String| {
        FormatError::new(FormatErrorKind::Malformed, format!("{file} line {}: {what}", line_of(text, position)))
    };
    let mut reader = quick_xml::Reader::from_str(text);
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    loop {
        let position = reader.buffer_position();
        let event = reader.read_event().map_err(|e| malformed(reader.error_position(), e.to_string()))?;
        match event {
            Event::Start(start) | Event::Empty(start) if root.is_some() => {
                let name = start.name().into_inner().to_owned();
                return Err(malformed(position, format!("element <{name}> after the root element")));
            }
            Event::Start(start) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(FormatError::new(
                        FormatErrorKind::LimitExceeded,
                        format!("{file} nests elements deeper than {MAX_DEPTH} levels"),
                    ));
                }
                stack.push(element(&start).map_err(|e| malformed(position, e))?);
            }
            Event::Empty(start) => {
                let element = element(&start).map_err(|e| malformed(position, e))?;
                close(&mut stack, &mut root, element);
            }
            Event::End(_) => match stack.pop() {
                Some(element) => close(&mut stack, &mut root, element),
                None => return Err(malformed(position, "an end tag without a start tag".into())),
            },
            Event::Text(t) => {
                let content = t.xml10_content();
                match stack.last_mut() {
                    Some(current) => current.text.push_str(&content),
                    None if content.trim().is_empty() => {}
                    None => return Err(malformed(position, "text outside the root element".into())),
                }
            }
            Event::CData(t) => {
                if let Some(current) = stack.last_mut() {
                    current.text.push_str(&t.xml10_content());
                }
            }
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) => c,
                    Ok(None) => match &*r {
                        "lt" => '<',
                        "gt" => '>',
                        "amp" => '&',
                        "apos" => '\'',
                        "quot" => '"',
                        other => {
                            return Err(FormatError::new(
                                FormatErrorKind::ForbiddenXml,
                                format!(
                                    "{file} line {}: the entity &{other}; is not allowed; only &lt; &gt; &amp; \
                                     &apos; &quot; and character references are",
                                    line_of(text, position)
                                ),
                            ));
                        }
                    },
                    Err(e) => return Err(malformed(position, e.to_string())),
                };
                if let Some(current) = stack.last_mut() {
                    current.text.push(resolved);
                }
            }
            Event::DocType(_) => {
                return Err(FormatError::new(
                    FormatErrorKind::ForbiddenXml,
                    format!("{file} declares a DTD (<!DOCTYPE …>); DTDs and entity declarations are not allowed"),
                ));
            }
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if let Some(open) = stack.last() {
        return Err(malformed(text.len() as u64, format!("the file ends inside <{}>", open.name)));
    }
    root.ok_or_else(|| FormatError::new(FormatErrorKind::Malformed, format!("{file} has no root element")))
}

fn element(start: &quick_xml::events::BytesStart<'_>) -> Result<Element, String> {
    let name = start.local_name().into_inner().to_owned();
    let mut nil = false;
    for attribute in start.attributes() {
        let attribute = attribute.map_err(|e| e.to_string())?;
        if attribute.key.local_name().into_inner() == "nil" {
            let value = attribute.normalized_value(quick_xml::XmlVersion::Implicit1_0).map_err(|e| e.to_string())?;
            nil = matches!(value.trim(), "true" | "1");
        }
    }
    Ok(Element { name, nil, ..Element::default() })
}

fn close(stack: &mut [Element], root: &mut Option<Element>, element: Element) {
    match stack.last_mut() {
        Some(parent) => parent.children.push(element),
        None => *root = Some(element),
    }
}

// ---- interpreting the trees ----

const MANIFEST: &str = "Manifest.xml";
const HEADER: &str = "PackageHeader.xml";

fn bad(message: String) -> FormatError {
    FormatError::new(FormatErrorKind::BadPackage, message)
}

/// Parses `Manifest.xml` from its bytes.
pub(crate) fn parse_manifest(bytes: &[u8]) -> Result<Manifest, FormatError> {
    let text = decode(bytes, MANIFEST)?;
    let root = parse_tree(&text, MANIFEST)?;
    if !root.name.eq_ignore_ascii_case("DataManagementPackageManifest") {
        return Err(bad(format!(
            "{MANIFEST}: the root element is <{}>; a manifest's root is <DataManagementPackageManifest>",
            root.name
        )));
    }
    let mut manifest = Manifest {
        definition_group: root.text_of(&["DefinitionGroupName"]),
        description: root.text_of(&["Description"]),
        entities: Vec::new(),
    };
    if let Some(list) = root.child_of(&["PackageEntityList", "Entities"]) {
        for (index, item) in list.children.iter().enumerate() {
            manifest.entities.push(parse_entity(item, index + 1)?);
        }
    }
    Ok(manifest)
}

fn parse_entity(item: &Element, number: usize) -> Result<ManifestEntity, FormatError> {
    let entity_name = item
        .text_of(&["EntityName", "Name"])
        .ok_or_else(|| bad(format!("{MANIFEST}: entity {number} has no EntityName")))?;
    let at = |what: String| bad(format!("{MANIFEST}: entity {number} ({entity_name}): {what}"));
    let integer = |element: &str| -> Result<i32, FormatError> {
        match item.text_of(&[element]) {
            None => Ok(1),
            Some(text) => text.parse().map_err(|_| at(format!("{element} '{text}' is not a number"))),
        }
    };
    let boolean = |names: &[&str]| -> Result<bool, FormatError> {
        match item.text_of(names) {
            None => Ok(false),
            Some(text) if text.eq_ignore_ascii_case("true") || text == "1" => Ok(true),
            Some(text) if text.eq_ignore_ascii_case("false") || text == "0" => Ok(false),
            Some(text) => Err(at(format!("{} '{text}' is not true or false", names[0]))),
        }
    };
    let disabled = boolean(&["Disable", "Disabled"])?;
    let input_file_path = item.text_of(&["InputFilePath"]).unwrap_or_default();
    if input_file_path.is_empty() && !disabled {
        return Err(at("InputFilePath is missing; it names the entity's data file in the package".into()));
    }

    let mut field_map = Vec::new();
    if let Some(list) = item.child("EntityMapList") {
        for (index, map) in list.children.iter().enumerate() {
            let source = map.text_of(&["XMLField"]);
            let field = map.text_of(&["EntityField"]);
            match (source, field) {
                (Some(source_column), Some(entity_field)) => {
                    field_map.push(FieldMapping { source_column, entity_field })
                }
                (Some(source), None) => {
                    return Err(at(format!("EntityMap {} maps the column '{source}' to no EntityField", index + 1)));
                }
                // A default or generated value: no source column to read.
                (None, _) => {}
            }
        }
    }

    let mut transforms: Vec<(Option<i64>, String)> = Vec::new();
    if let Some(list) = item.child("EntityTransformList") {
        for transform in &list.children {
            let file = if transform.children.is_empty() {
                Some(transform.text.trim().to_owned()).filter(|t| !t.is_empty() && !transform.nil)
            } else {
                transform.text_of(&["XsltFileName", "XsltResourceFileName", "FileName"])
            };
            if let Some(file) = file {
                let sequence = transform.text_of(&["SequenceNumber", "Sequence"]).and_then(|s| s.parse().ok());
                transforms.push((sequence, file));
            }
        }
        transforms.sort_by_key(|(sequence, _)| sequence.unwrap_or(i64::MAX));
    }

    Ok(ManifestEntity {
        source_format: item.text_of(&["SourceFormat"]).unwrap_or_default(),
        input_file_path,
        execution_unit: integer("ExecutionUnit")?,
        level: integer("LevelInExecutionUnit")?,
        sequence: integer("SequenceInLevel")?,
        excel_sheet: item.text_of(&["ExcelSheetName"]),
        disabled,
        skip_staging: boolean(&["SkipStaging"])?,
        incremental: item
            .text_of(&["DefaultRefreshType"])
            .is_some_and(|t| t.trim().eq_ignore_ascii_case("IncrementalPush")),
        deleted_records_path: item.text_of(&["DeletedRecordsFilePath"]).filter(|p| !p.trim().is_empty()),
        field_map,
        transforms: transforms.into_iter().map(|(_, file)| file).collect(),
        entity_name,
    })
}

/// Parses `PackageHeader.xml` from its bytes.
pub(crate) fn parse_header(bytes: &[u8]) -> Result<PackageHeader, FormatError> {
    let text = decode(bytes, HEADER)?;
    let root = parse_tree(&text, HEADER)?;
    if !root.name.eq_ignore_ascii_case("DataManagementPackageHeader") {
        return Err(bad(format!(
            "{HEADER}: the root element is <{}>; a package header's root is <DataManagementPackageHeader>",
            root.name
        )));
    }
    Ok(PackageHeader {
        description: root.text_of(&["Description"]),
        manifest_type: root.text_of(&["ManifestType"]),
        package_type: root.text_of(&["PackageType"]),
        package_version: root.text_of(&["PackageVersion"]),
    })
}

// ---- writing ----

/// Builds one line of DataContract XML, then writes it as UTF-16 LE with a byte-order mark.
struct ContractWriter {
    xml: String,
}

impl ContractWriter {
    fn root(name: &str) -> Self {
        ContractWriter { xml: format!("<{name} xmlns:i=\"{XSI_NAMESPACE}\" xmlns=\"{NAMESPACE}\">") }
    }

    fn open(&mut self, name: &str) {
        self.xml.push('<');
        self.xml.push_str(name);
        self.xml.push('>');
    }

    fn close(&mut self, name: &str) {
        self.xml.push_str("</");
        self.xml.push_str(name);
        self.xml.push('>');
    }

    fn nil(&mut self, name: &str) {
        self.xml.push('<');
        self.xml.push_str(name);
        self.xml.push_str(" i:nil=\"true\"/>");
    }

    fn text(&mut self, name: &str, value: &str) {
        self.open(name);
        for c in value.chars() {
            match c {
                '&' => self.xml.push_str("&amp;"),
                '<' => self.xml.push_str("&lt;"),
                '>' => self.xml.push_str("&gt;"),
                '\r' => self.xml.push_str("&#xD;"),
                c => self.xml.push(c),
            }
        }
        self.close(name);
    }

    fn optional(&mut self, name: &str, value: Option<&str>) {
        match value {
            Some(value) => self.text(name, value),
            None => self.nil(name),
        }
    }

    fn finish(mut self, root: &str, out: &mut dyn Write) -> io::Result<()> {
        self.close(root);
        let mut bytes = Vec::with_capacity(2 + self.xml.len() * 2);
        bytes.extend_from_slice(&[0xFF, 0xFE]);
        for unit in self.xml.encode_utf16() {
            bytes.extend_from_slice(&unit.to_le_bytes());
        }
        out.write_all(&bytes)
    }
}

fn bool_text(value: bool) -> &'static str {
    if value { "true" } else { "false" }
}

/// Writes `Manifest.xml` as Dynamics 365 does (see the module docs). Fields the model does not keep
/// (refresh type, business-logic flags…) are written with Dynamics 365's defaults or left out.
/// The `EntityTransformList` item shape (`EntityTransform` with `SequenceNumber` and
/// `XsltFileName`) is unverified against Dynamics 365.
pub fn write_manifest(m: &Manifest, out: &mut dyn Write) -> io::Result<()> {
    const ROOT: &str = "DataManagementPackageManifest";
    let mut w = ContractWriter::root(ROOT);
    w.optional("DefinitionGroupName", m.definition_group.as_deref());
    w.optional("Description", m.description.as_deref());
    w.open("PackageEntityList");
    for e in &m.entities {
        w.open("DataManagementPackageEntityData");
        w.text("DefaultRefreshType", if e.incremental { "IncrementalPush" } else { "FullPush" });
        w.optional("DeletedRecordsFilePath", e.deleted_records_path.as_deref());
        w.text("Disable", bool_text(e.disabled));
        w.open("EntityMapList");
        for map in &e.field_map {
            w.open("EntityMap");
            w.text("ArrayIndex", "0");
            w.text("EntityField", &map.entity_field);
            w.nil("EntityFieldConversionList");
            w.text("IsAutoDefault", "false");
            w.text("IsAutoGenerated", "false");
            w.text("IsDefaultValueEqualNull", "false");
            w.text("UseTextQualifier", "false");
            w.text("XMLField", &map.source_column);
            w.close("EntityMap");
        }
        w.close("EntityMapList");
        w.text("EntityName", &e.entity_name);
        if e.transforms.is_empty() {
            w.nil("EntityTransformList");
        } else {
            w.open("EntityTransformList");
            for (index, file) in e.transforms.iter().enumerate() {
                w.open("EntityTransform");
                w.text("SequenceNumber", &(index + 1).to_string());
                w.text("XsltFileName", file);
                w.close("EntityTransform");
            }
            w.close("EntityTransformList");
        }
        w.optional("ExcelSheetName", e.excel_sheet.as_deref());
        w.text("ExecutionUnit", &e.execution_unit.to_string());
        w.text("FailExecutionUnitOnError", "false");
        w.text("FailLevelOnError", "false");
        w.text("InputFilePath", &e.input_file_path);
        w.text("LevelInExecutionUnit", &e.level.to_string());
        w.text("SequenceInLevel", &e.sequence.to_string());
        w.text("SkipStaging", bool_text(e.skip_staging));
        w.text("SourceFormat", &e.source_format);
        w.close("DataManagementPackageEntityData");
    }
    w.close("PackageEntityList");
    w.finish(ROOT, out)
}

/// Writes `PackageHeader.xml` as Dynamics 365 does (see the module docs).
pub fn write_header(h: &PackageHeader, out: &mut dyn Write) -> io::Result<()> {
    const ROOT: &str = "DataManagementPackageHeader";
    let mut w = ContractWriter::root(ROOT);
    w.optional("Description", h.description.as_deref());
    w.optional("ManifestType", h.manifest_type.as_deref());
    w.optional("PackageType", h.package_type.as_deref());
    w.optional("PackageVersion", h.package_version.as_deref());
    w.finish(ROOT, out)
}

// ---- source formats ----

/// The format of a manifest entity's data file, from its `SourceFormat` name (see
/// [`DataFormat::from_name`]); an unknown name makes the package unreadable.
pub fn source_format_from_manifest(name: &str, excel_sheet: Option<&str>) -> Result<DataFormat, FormatError> {
    DataFormat::from_name(name, excel_sheet).map_err(|e| bad(e.to_string()))
}
