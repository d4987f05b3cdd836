//! Data projects (definition groups): an operation and the entities it moves, each with its data
//! format — imports with a column mapping and an optional XSLT stylesheet, exports with an
//! optional filter and a full or incremental refresh — and how a project is checked against the
//! catalog. Pure: the catalog and the stylesheet check are passed in.

use crate::DefinitionError;
use crate::format::DataFormat;
use ferry_model::{COMPANY_FIELD, Catalog, Entity};
use ferry_query::BoundExpr;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Longest project name.
pub const PROJECT_NAME_MAX: usize = 100;

/// A data project.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Project {
    pub name: String,
    pub description: String,
    pub operation: Operation,
    pub entities: Vec<ProjectEntity>,
}

impl Project {
    /// An import project of these entities, without a description.
    pub fn new(name: impl Into<String>, entities: Vec<ProjectEntity>) -> Project {
        Project { name: name.into(), description: String::new(), operation: Operation::Import, entities }
    }
}

/// What a data project does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Operation {
    #[default]
    Import,
    Export,
}

/// One entity of a project: the format of its data file and how columns map to fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProjectEntity {
    /// The entity by label (`Customers V3`), public name, collection or logical name.
    pub entity: String,
    /// The data format's name: `CSV`, `CSV-Unicode`, `CSV-Semicolon`, `XML-Element`, `EXCEL`, …
    /// (see [`DataFormat::from_name`]); kept as written, as Dynamics keeps format names.
    pub format: String,
    /// Excel sheet (default: the first).
    pub sheet: Option<String>,
    /// Source column → entity field. Columns not named here match fields by name, without
    /// regard to case (so D365's upper-case staging names match too).
    pub mapping: BTreeMap<String, String>,
    /// An XSLT 1.0 stylesheet applied to XML sources before they are read (imports).
    pub xslt: Option<String>,
    /// Only the rows this OData `$filter` selects (exports).
    pub filter: Option<String>,
    /// Every row, or what changed since the last export (exports).
    pub mode: RefreshMode,
    pub execution_unit: i32,
    pub level: i32,
    pub sequence: i32,
}

/// What an export of an entity holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RefreshMode {
    /// Every row (that the filter selects), each time.
    #[default]
    Full,
    /// What changed since the last successful export of the same job (or project): inserted and
    /// updated rows, and a list of the deleted ones.
    Incremental,
}

impl ProjectEntity {
    /// An entity in the default format (CSV) at the default position (1, 1, 1).
    pub fn new(entity: impl Into<String>) -> ProjectEntity {
        ProjectEntity {
            entity: entity.into(),
            format: DEFAULT_FORMAT.into(),
            sheet: None,
            mapping: BTreeMap::new(),
            xslt: None,
            filter: None,
            mode: RefreshMode::Full,
            execution_unit: 1,
            level: 1,
            sequence: 1,
        }
    }
}

/// The format of a project entity that names none.
pub const DEFAULT_FORMAT: &str = "CSV";

/// A project entity resolved against the catalog.
#[derive(Clone, Debug)]
pub struct ResolvedEntity {
    pub entity: Arc<Entity>,
    pub format: DataFormat,
    pub mapping: BTreeMap<String, String>,
    pub xslt: Option<String>,
    /// Export: the filter, bound to the entity.
    pub filter: Option<BoundExpr>,
    pub mode: RefreshMode,
    /// Execution unit, level and sequence: the order entities of a package run in.
    pub order: (i32, i32, i32),
}

impl ResolvedEntity {
    /// An entity to import in `format` as a package's manifest describes it.
    pub fn imported(entity: Arc<Entity>, format: DataFormat, order: (i32, i32, i32)) -> ResolvedEntity {
        ResolvedEntity {
            entity,
            format,
            mapping: BTreeMap::new(),
            xslt: None,
            filter: None,
            mode: RefreshMode::Full,
            order,
        }
    }
}

/// An OData `$filter` bound to `entity`; the error names what is wrong and where.
fn bind_filter(text: &str, entity: &Entity) -> Result<BoundExpr, String> {
    let expr = ferry_query::parse_filter(text).map_err(|e| e.to_string())?;
    ferry_query::bind_filter(&expr, entity).map_err(|e| e.to_string())
}

/// Checks a stylesheet (compiles it without running it); the error is libxslt's message.
pub type StylesheetCheck<'a> = &'a dyn Fn(&str) -> Result<(), String>;

impl Project {
    /// Checks the project against the catalog and resolves its entities.
    pub fn resolve(
        &self,
        catalog: &Catalog,
        check_xslt: StylesheetCheck<'_>,
    ) -> Result<Vec<ResolvedEntity>, DefinitionError> {
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > PROJECT_NAME_MAX {
            return Err(DefinitionError(format!("a project needs a name of 1 to {PROJECT_NAME_MAX} characters")));
        }
        if self.entities.is_empty() {
            return Err(DefinitionError(format!("project '{name}' names no entity; add at least one")));
        }
        let mut resolved: Vec<ResolvedEntity> = Vec::new();
        for (i, e) in self.entities.iter().enumerate() {
            let at = format!("project '{name}', entity {} ('{}')", i + 1, e.entity);
            let entity = catalog.by_any_name(e.entity.trim()).cloned().ok_or_else(|| {
                DefinitionError(format!("{at}: no such entity; use its label, public name or collection name"))
            })?;
            if resolved.iter().any(|r| Arc::ptr_eq(&r.entity, &entity)) {
                return Err(DefinitionError(format!("{at}: the entity appears twice in the project")));
            }
            let format = DataFormat::from_name(&e.format, e.sheet.as_deref())
                .map_err(|err| DefinitionError(format!("{at}: {err}")))?;
            for (column, field) in &e.mapping {
                if field.eq_ignore_ascii_case(COMPANY_FIELD) {
                    continue;
                }
                if entity.field(field).is_none() {
                    return Err(DefinitionError(format!(
                        "{at}: mapping of column '{column}' names field '{field}', which {} does not have",
                        entity.label
                    )));
                }
            }
            if let Some(xsl) = &e.xslt {
                if self.operation == Operation::Export {
                    return Err(DefinitionError(format!("{at}: XSLT transforms apply to imports, not exports")));
                }
                if !format.is_xml() {
                    return Err(DefinitionError(format!("{at}: an XSLT transform needs an XML source format")));
                }
                check_xslt(xsl).map_err(|m| DefinitionError(format!("{at}: invalid XSLT stylesheet: {m}")))?;
            }
            let filter = match e.filter.as_deref().map(str::trim).filter(|f| !f.is_empty()) {
                Some(_) if self.operation == Operation::Import => {
                    return Err(DefinitionError(format!(
                        "{at}: a filter selects the rows an export writes; an import project takes every row of its files"
                    )));
                }
                Some(text) => {
                    Some(bind_filter(text, &entity).map_err(|m| DefinitionError(format!("{at}: filter: {m}")))?)
                }
                None => None,
            };
            if e.mode == RefreshMode::Incremental && self.operation == Operation::Import {
                return Err(DefinitionError(format!("{at}: incremental refresh applies to exports, not imports")));
            }
            resolved.push(ResolvedEntity {
                entity,
                format,
                mapping: e.mapping.clone(),
                xslt: e.xslt.clone(),
                filter,
                mode: e.mode,
                order: (e.execution_unit, e.level, e.sequence),
            });
        }
        Ok(resolved)
    }

    /// The catalog entities the project names (those that exist), in project order.
    pub fn catalog_entities(&self, catalog: &Catalog) -> Vec<Arc<Entity>> {
        self.entities.iter().filter_map(|e| catalog.by_any_name(e.entity.trim()).cloned()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Catalog {
        Catalog::build(&ferry_model::standard_sources()).unwrap()
    }

    fn project(entities: Vec<ProjectEntity>) -> Project {
        Project { name: "P".into(), description: String::new(), operation: Operation::Import, entities }
    }

    #[test]
    fn resolves_entities_formats_and_order() {
        let mut groups = ProjectEntity::new("Customer groups");
        groups.format = "XML-Attribute".into();
        groups.sequence = 2;
        let resolved =
            project(vec![ProjectEntity::new("CustomersV3"), groups]).resolve(&catalog(), &|_| Ok(())).unwrap();
        assert_eq!(resolved[0].entity.collection, "CustomersV3");
        assert_eq!(resolved[1].format, DataFormat::XmlAttribute);
        assert_eq!(resolved[1].order, (1, 1, 2));
    }

    #[test]
    fn every_problem_names_the_entity_and_the_fix() {
        let catalog = catalog();
        let no_xslt = |_: &str| -> Result<(), String> { Err("line 1: bad".into()) };
        let check = |p: Project| p.resolve(&catalog, &no_xslt).unwrap_err().0;
        assert!(check(project(vec![])).contains("names no entity"));
        assert!(check(project(vec![ProjectEntity::new("Nope")])).contains("entity 1 ('Nope'): no such entity"));
        let twice = vec![ProjectEntity::new("CustomersV3"), ProjectEntity::new("Customers V3")];
        assert!(check(project(twice)).contains("appears twice"));
        let mut bad_format = ProjectEntity::new("CustomersV3");
        bad_format.format = "Parquet".into();
        assert!(check(project(vec![bad_format])).contains("'Parquet' is not one ferry reads"));
        let mut bad_mapping = ProjectEntity::new("CustomersV3");
        bad_mapping.mapping.insert("CUSTNO".into(), "NoSuchField".into());
        assert!(check(project(vec![bad_mapping])).contains("field 'NoSuchField'"));
        let mut csv_xslt = ProjectEntity::new("CustomersV3");
        csv_xslt.xslt = Some("<x/>".into());
        assert!(check(project(vec![csv_xslt])).contains("needs an XML source format"));
        let mut bad_xslt = ProjectEntity::new("CustomersV3");
        bad_xslt.format = "XML-Element".into();
        bad_xslt.xslt = Some("<x/>".into());
        assert!(check(project(vec![bad_xslt])).contains("invalid XSLT stylesheet: line 1: bad"));
        let long = Project { name: "x".repeat(101), ..project(vec![ProjectEntity::new("CustomersV3")]) };
        assert!(check(long).contains("1 to 100 characters"));
        let filtered = ProjectEntity { filter: Some("CreditLimit gt 10".into()), ..ProjectEntity::new("CustomersV3") };
        assert!(check(project(vec![filtered])).contains("a filter selects the rows an export writes"));
        let incremental = ProjectEntity { mode: RefreshMode::Incremental, ..ProjectEntity::new("CustomersV3") };
        assert!(check(project(vec![incremental])).contains("incremental refresh applies to exports"));
    }

    #[test]
    fn export_projects_bind_their_filters() {
        let catalog = catalog();
        let export = |e: ProjectEntity| Project { operation: Operation::Export, ..project(vec![e]) };
        let good = ProjectEntity {
            filter: Some("CreditLimit gt 1000 and startswith(CustomerAccount,'C')".into()),
            mode: RefreshMode::Incremental,
            ..ProjectEntity::new("CustomersV3")
        };
        let resolved = export(good).resolve(&catalog, &|_| Ok(())).unwrap();
        assert!(resolved[0].filter.is_some());
        assert_eq!(resolved[0].mode, RefreshMode::Incremental);
        let bad = ProjectEntity { filter: Some("NoSuchField eq 1".into()), ..ProjectEntity::new("CustomersV3") };
        let err = export(bad).resolve(&catalog, &|_| Ok(())).unwrap_err().0;
        assert!(err.contains("entity 1 ('CustomersV3'): filter:") && err.contains("NoSuchField"), "{err}");
        let xslt = ProjectEntity {
            format: "XML-Element".into(),
            xslt: Some("<x/>".into()),
            ..ProjectEntity::new("CustomersV3")
        };
        assert!(export(xslt).resolve(&catalog, &|_| Ok(())).unwrap_err().0.contains("apply to imports"));
    }
}
