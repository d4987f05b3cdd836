//! Data formats: how the records of a data file are written, and the names data projects and
//! package manifests give them. Pure.

/// A data file's format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DataFormat {
    /// Delimited text with a header row. The encoding is found from the byte-order mark (UTF-8
    /// without one); `delimiter` is one of `,` `;` `\t` `|` `:`.
    Csv { delimiter: u8 },
    /// `<Document>` holding one element per record, each field a child element.
    XmlElement,
    /// `<Document>` holding one element per record, each field an attribute.
    XmlAttribute,
    /// A JSON array of objects, or one object per line.
    Json,
    /// An Excel workbook (.xlsx): the named sheet, else the first; the first row is the header.
    Xlsx { sheet: Option<String> },
}

/// A format name ferry cannot read; the message lists the names it can.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "the source format '{0}' is not one ferry reads; use CSV, CSV-Unicode, a delimited format named for its \
     delimiter (Semicolon, Tab, Pipe), XML-Element, XML-Attribute, EXCEL or JSON"
)]
pub struct UnknownFormat(pub String);

impl DataFormat {
    /// The format a name stands for. Dynamics 365's source data format names (`CSV`,
    /// `CSV-Unicode`, `XML-Element`, `XML-Attribute`, `EXCEL`) and the usual custom ones are
    /// recognised by their words: `XML` (with `Attribute` for attribute style), `EXCEL`/`XLSX`,
    /// `JSON`; delimited text by its delimiter's name (`Semicolon`, `Tab`/`TSV`, `Pipe` or `|`,
    /// `Colon`), else comma for `CSV`/`Comma`/`Text`. The encoding of delimited files is found
    /// from their byte-order mark, so `CSV` and `CSV-Unicode` read alike. `sheet` is the Excel
    /// sheet, if the definition names one.
    pub fn from_name(name: &str, sheet: Option<&str>) -> Result<DataFormat, UnknownFormat> {
        let upper = name.trim().to_ascii_uppercase();
        let words: Vec<&str> = upper.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| !w.is_empty()).collect();
        let has = |candidates: &[&str]| words.iter().any(|w| candidates.contains(w));
        Ok(if has(&["XML"]) {
            if has(&["ATTRIBUTE", "ATTRIBUTES", "ATTR"]) { DataFormat::XmlAttribute } else { DataFormat::XmlElement }
        } else if has(&["EXCEL", "XLSX"]) {
            DataFormat::Xlsx { sheet: sheet.map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned) }
        } else if has(&["JSON"]) {
            DataFormat::Json
        } else if has(&["SEMICOLON", "SEMI", "SSV"]) {
            DataFormat::Csv { delimiter: b';' }
        } else if has(&["TAB", "TSV"]) {
            DataFormat::Csv { delimiter: b'\t' }
        } else if has(&["PIPE", "VERTICAL"]) || upper.contains('|') {
            DataFormat::Csv { delimiter: b'|' }
        } else if has(&["COLON"]) {
            DataFormat::Csv { delimiter: b':' }
        } else if has(&["CSV", "COMMA", "TEXT", "TXT", "DELIMITED"]) {
            DataFormat::Csv { delimiter: b',' }
        } else {
            return Err(UnknownFormat(name.trim().to_owned()));
        })
    }

    /// The usual file name extension (without the dot).
    pub fn extension(&self) -> &'static str {
        match self {
            DataFormat::Csv { .. } => "csv",
            DataFormat::XmlElement | DataFormat::XmlAttribute => "xml",
            DataFormat::Json => "json",
            DataFormat::Xlsx { .. } => "xlsx",
        }
    }

    pub fn is_xml(&self) -> bool {
        matches!(self, DataFormat::XmlElement | DataFormat::XmlAttribute)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_formats() {
        let cases: &[(&str, DataFormat)] = &[
            ("CSV", DataFormat::Csv { delimiter: b',' }),
            ("CSV-Unicode", DataFormat::Csv { delimiter: b',' }),
            ("csv-semicolon", DataFormat::Csv { delimiter: b';' }),
            ("TSV", DataFormat::Csv { delimiter: b'\t' }),
            ("Pipe delimited", DataFormat::Csv { delimiter: b'|' }),
            ("a|b", DataFormat::Csv { delimiter: b'|' }),
            ("Colon", DataFormat::Csv { delimiter: b':' }),
            ("XML-Element", DataFormat::XmlElement),
            ("XML-Attribute", DataFormat::XmlAttribute),
            ("JSON", DataFormat::Json),
            ("EXCEL", DataFormat::Xlsx { sheet: Some("Data".into()) }),
        ];
        for (name, want) in cases {
            assert_eq!(&DataFormat::from_name(name, Some(" Data ")).unwrap(), want, "{name}");
        }
        let e = DataFormat::from_name(" Parquet ", None).unwrap_err();
        assert!(e.to_string().starts_with("the source format 'Parquet' is not one ferry reads"), "{e}");
        assert_eq!(DataFormat::from_name("Excel", Some("  ")).unwrap(), DataFormat::Xlsx { sheet: None });
        assert_eq!(DataFormat::XmlAttribute.extension(), "xml");
    }
}
