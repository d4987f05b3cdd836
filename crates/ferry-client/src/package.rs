//! Wrapping a folder of data files into a data package, as RIS's Import job does with its
//! "package template": a flat zip with `Manifest.xml` (one entity per file, with its format and
//! place in the execution order) and `PackageHeader.xml`. Each file is matched to an entity of
//! the data project by name (`Customer groups.csv` → entity `Customer groups`), which gives its
//! format and order; without the project (or a match), the file's name is the entity and its
//! extension the format. Files are streamed into the zip, never read whole.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{ClientError, ClientResult};

/// The manifest's namespace.
const NAMESPACE: &str = "http://schemas.microsoft.com/dynamics/2015/01/DataManagement";

/// One entity of the package.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackageEntry {
    pub entity: String,
    /// The file's name inside the zip.
    pub file: String,
    pub format: String,
    pub unit: i64,
    pub level: i64,
    pub sequence: i64,
    /// Where the file is now.
    pub source: PathBuf,
}

/// The format a data file's extension suggests.
fn format_of(path: &Path) -> Option<&'static str> {
    let ext = path.extension()?.to_string_lossy().to_ascii_lowercase();
    Some(match ext.as_str() {
        "csv" | "txt" => "CSV",
        "xml" => "XML-Element",
        "json" | "ndjson" => "JSON",
        "xlsx" => "EXCEL",
        _ => return None,
    })
}

/// The data files of `folder` (top level, by name) matched to the entities of `project` (the
/// admin API's project document, if it could be read).
pub fn plan(folder: &Path, project: Option<&Value>) -> ClientResult<Vec<PackageEntry>> {
    let io = |e| ClientError::io(format!("cannot read the folder {}", folder.display()), e);
    let mut files: Vec<PathBuf> = std::fs::read_dir(folder)
        .map_err(io)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file() && format_of(p).is_some())
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(ClientError::Config(format!(
            "{} holds no data files (.csv, .txt, .xml, .json, .xlsx) to wrap into a package",
            folder.display()
        )));
    }
    let entities: Vec<&Value> =
        project.and_then(|p| p["entities"].as_array()).map(|a| a.iter().collect()).unwrap_or_default();
    let simple = |s: &str| s.chars().filter(|c| c.is_alphanumeric()).collect::<String>().to_lowercase();
    let mut entries = Vec::new();
    for source in files {
        let stem = source.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let file = source.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let matched = entities.iter().find(|e| e["entity"].as_str().is_some_and(|name| simple(name) == simple(&stem)));
        let number = |e: Option<&&Value>, key: &str| e.and_then(|e| e[key].as_i64()).unwrap_or(1);
        let entry = PackageEntry {
            entity: matched.and_then(|e| e["entity"].as_str()).map_or_else(|| stem.clone(), str::to_owned),
            format: matched
                .and_then(|e| e["format"].as_str())
                .map_or_else(|| format_of(&source).unwrap_or("CSV").to_owned(), str::to_owned),
            unit: number(matched, "execution_unit"),
            level: number(matched, "level"),
            sequence: number(matched, "sequence"),
            file,
            source,
        };
        entries.push(entry);
    }
    entries.sort_by(|a, b| (a.unit, a.level, a.sequence, &a.file).cmp(&(b.unit, b.level, b.sequence, &b.file)));
    Ok(entries)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// `Manifest.xml` of `entries` for project `project` (elements in alphabetical order, as the
/// DataContract serializer writes and reads them).
pub fn manifest(project: &str, entries: &[PackageEntry]) -> String {
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><DataManagementPackageManifest xmlns=\"{NAMESPACE}\" \
         xmlns:i=\"http://www.w3.org/2001/XMLSchema-instance\"><DefinitionGroupName>{}</DefinitionGroupName>\
         <Description>{}</Description><PackageEntityList>",
        escape(project),
        escape(project)
    );
    for e in entries {
        xml.push_str(&format!(
            "<DataManagementPackageEntityData><DefaultRefreshType>FullPush</DefaultRefreshType>\
             <EntityName>{}</EntityName><ExecutionUnit>{}</ExecutionUnit><InputFilePath>{}</InputFilePath>\
             <LevelInExecutionUnit>{}</LevelInExecutionUnit><SequenceInLevel>{}</SequenceInLevel>\
             <SourceFormat>{}</SourceFormat></DataManagementPackageEntityData>",
            escape(&e.entity),
            e.unit,
            escape(&e.file),
            e.level,
            e.sequence,
            escape(&e.format)
        ));
    }
    xml.push_str("</PackageEntityList></DataManagementPackageManifest>");
    xml
}

/// `PackageHeader.xml`.
fn header(project: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><DataManagementPackageHeader xmlns=\"{NAMESPACE}\">\
         <Description>{}</Description>\
         <ManifestType>Microsoft.Dynamics.AX.Framework.Tools.DataManagement.Serialization.DataManagementPackageManifest</ManifestType>\
         <PackageType>DefinitionGroup</PackageType><PackageVersion>2</PackageVersion></DataManagementPackageHeader>",
        escape(project)
    )
}

/// Writes the package of `entries` to `dest` (a zip).
pub fn write(project: &str, entries: &[PackageEntry], dest: &Path) -> ClientResult<()> {
    use std::io::Write;
    let what = || format!("cannot write the package {}", dest.display());
    let io = |e: std::io::Error| ClientError::io(what(), e);
    let zip_err = |e: zip::result::ZipError| ClientError::io(what(), std::io::Error::other(e));
    let mut zip = zip::ZipWriter::new(std::fs::File::create(dest).map_err(io)?);
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    zip.start_file("Manifest.xml", options).map_err(zip_err)?;
    zip.write_all(manifest(project, entries).as_bytes()).map_err(io)?;
    zip.start_file("PackageHeader.xml", options).map_err(zip_err)?;
    zip.write_all(header(project).as_bytes()).map_err(io)?;
    for e in entries {
        zip.start_file(e.file.as_str(), options).map_err(zip_err)?;
        let mut source = std::fs::File::open(&e.source).map_err(io)?;
        std::io::copy(&mut source, &mut zip).map_err(io)?;
    }
    zip.finish().map_err(zip_err)?.sync_all().map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_take_their_projects_entities_and_order() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("customers.csv"), "A\n1\n").unwrap();
        std::fs::write(dir.path().join("Customer groups.csv"), "A\n1\n").unwrap();
        std::fs::write(dir.path().join("notes.md"), "skip me").unwrap();
        let project = serde_json::json!({ "entities": [
            { "entity": "Customer groups", "format": "CSV", "level": 1 },
            { "entity": "Customers", "format": "CSV-Semicolon", "level": 2 },
        ]});
        let entries = plan(dir.path(), Some(&project)).unwrap();
        let names: Vec<(&str, &str, i64)> =
            entries.iter().map(|e| (e.entity.as_str(), e.format.as_str(), e.level)).collect();
        assert_eq!(names, [("Customer groups", "CSV", 1), ("Customers", "CSV-Semicolon", 2)]);
        let alone = plan(dir.path(), None).unwrap();
        assert_eq!(alone[0].entity, "Customer groups");
        assert_eq!(alone[1].entity, "customers");
        let xml = manifest("P&Q", &entries);
        assert!(xml.contains("<DefinitionGroupName>P&amp;Q</DefinitionGroupName>"), "{xml}");
        assert!(xml.contains("<InputFilePath>customers.csv</InputFilePath>"), "{xml}");
        let zip_path = dir.path().join("out.zip");
        write("P", &entries, &zip_path).unwrap();
        let archive = zip::ZipArchive::new(std::fs::File::open(&zip_path).unwrap()).unwrap();
        assert_eq!(archive.len(), 4);
    }
}
