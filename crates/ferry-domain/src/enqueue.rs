//! What an enqueue becomes before anything is stored: the entity a file is for, the company its
//! rows land in, and the lanes the message holds while it waits and runs. Pure: pulled out of
//! the import service so that the rules are tested on their own.

use crate::DefinitionError;
use crate::job::{Job, JobKind};
use crate::project::Project;
use ferry_model::{Catalog, Entity, normalize_company};
use std::sync::Arc;

/// A queue lane: an entity, or an entity and company for company-specific entities. One message
/// per lane runs at a time, in enqueue order.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Lane(String);

impl Lane {
    pub fn of(entity: &Entity, company: &str) -> Lane {
        if entity.company_specific {
            Lane(format!("{}/{company}", entity.logical_name))
        } else {
            Lane(entity.logical_name.clone())
        }
    }

    /// A lane by its name, as the queue stores it.
    pub fn named(name: impl Into<String>) -> Lane {
        Lane(name.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Where an enqueue's company may come from, in the order they are tried.
#[derive(Clone, Copy, Debug, Default)]
pub struct CompanyChoice<'a> {
    /// The `company` query parameter of the enqueue.
    pub requested: Option<&'a str>,
    /// The default company of the application that enqueues.
    pub app_default: Option<&'a str>,
    /// The server's `import.default_company`.
    pub fallback: &'a str,
}

/// The company of an enqueue: the `company` parameter, else the job's company, else the
/// enqueuing application's default company, else the server's default. A given parameter must
/// be a legal entity id.
pub fn enqueue_company(job: &Job, choice: CompanyChoice<'_>) -> Result<String, DefinitionError> {
    if let Some(c) = choice.requested.map(str::trim).filter(|c| !c.is_empty()) {
        if c.len() > 8 || !c.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-') {
            return Err(DefinitionError(format!(
                "company '{c}' is not a legal entity id (up to 8 letters, digits, '-' or '_')"
            )));
        }
        return Ok(normalize_company(c));
    }
    let fallback = [job.company.as_deref(), choice.app_default, Some(choice.fallback)];
    let company = fallback.into_iter().flatten().map(str::trim).find(|c| !c.is_empty()).unwrap_or(choice.fallback);
    Ok(normalize_company(company))
}

/// What a message holds: its entity (file jobs) and its lanes.
#[derive(Clone, Debug)]
pub struct EnqueuePlan {
    /// The entity of a file; `None` for packages (their manifest names their entities).
    pub entity: Option<Arc<Entity>>,
    pub company: String,
    pub lanes: Vec<Lane>,
}

/// Plans an enqueue to `job` of `project`: a file is for the entity the request names (or the
/// project's only entity) and holds its lane; a package holds the lanes of every entity of the
/// project. Lanes are sorted and without duplicates.
pub fn plan_enqueue(
    job: &Job,
    project: &Project,
    catalog: &Catalog,
    entity: Option<&str>,
    company: String,
) -> Result<EnqueuePlan, DefinitionError> {
    let entities = project.catalog_entities(catalog);
    let labels = || entities.iter().map(|e| e.label.as_str()).collect::<Vec<_>>().join(", ");
    let (entity, mut lanes) = match job.kind {
        JobKind::File => {
            let entity = match entity.map(str::trim).filter(|e| !e.is_empty()) {
                Some(name) => {
                    let found = catalog.by_any_name(name).cloned().ok_or_else(|| {
                        DefinitionError(format!(
                            "entity '{name}' does not exist; use its label (e.g. 'Customers V3'), public name or \
                             collection name"
                        ))
                    })?;
                    if !entities.iter().any(|e| Arc::ptr_eq(e, &found)) {
                        return Err(DefinitionError(format!(
                            "entity '{name}' is not part of data project '{}' (it has: {})",
                            project.name,
                            labels()
                        )));
                    }
                    found
                }
                None if entities.len() == 1 => entities[0].clone(),
                None => {
                    return Err(DefinitionError(format!(
                        "name the entity with ?entity=…; data project '{}' has several: {}",
                        project.name,
                        labels()
                    )));
                }
            };
            let lanes = vec![Lane::of(&entity, &company)];
            (Some(entity), lanes)
        }
        JobKind::Package => (None, entities.iter().map(|e| Lane::of(e, &company)).collect()),
    };
    lanes.sort();
    lanes.dedup();
    Ok(EnqueuePlan { entity, company, lanes })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::{Operation, ProjectEntity};

    fn catalog() -> Catalog {
        Catalog::build(&ferry_model::standard_sources()).unwrap()
    }

    fn job(kind: JobKind, company: Option<&str>) -> Job {
        Job { kind, company: company.map(str::to_owned), ..Job::new("6d31e09f-4a4b-4e2b-9c1e-0c5f0a0b1c2d", "P") }
    }

    fn project(entities: &[&str]) -> Project {
        Project {
            name: "P".into(),
            description: String::new(),
            operation: Operation::Import,
            entities: entities.iter().map(|e| ProjectEntity::new(*e)).collect(),
        }
    }

    /// Requested, job's and app's default company, and the company chosen.
    type CompanyCase = (Option<&'static str>, Option<&'static str>, Option<&'static str>, &'static str);

    #[test]
    fn the_company_comes_from_the_request_the_job_the_app_then_the_server() {
        let cases: &[CompanyCase] = &[
            // requested, job, app default → company
            (Some("USMF"), Some("jobco"), Some("appco"), "usmf"),
            (None, Some("JobCo"), Some("appco"), "jobco"),
            (Some("  "), None, Some("AppCo"), "appco"),
            (None, None, None, "dat"),
            (None, None, Some(" "), "dat"),
        ];
        for &(requested, job_company, app_default, want) in cases {
            let choice = CompanyChoice { requested, app_default, fallback: "dat" };
            let got = enqueue_company(&job(JobKind::File, job_company), choice).unwrap();
            assert_eq!(got, want, "{requested:?} {job_company:?} {app_default:?}");
        }
        let bad = CompanyChoice { requested: Some("usmf;drop"), app_default: None, fallback: "dat" };
        let e = enqueue_company(&job(JobKind::File, None), bad).unwrap_err();
        assert!(e.0.contains("'usmf;drop' is not a legal entity id"), "{e}");
    }

    #[test]
    fn files_hold_their_entity_lane_and_packages_every_lane() {
        let catalog = catalog();
        let two = project(&["CustomersV3", "Customer groups"]);
        let plan =
            plan_enqueue(&job(JobKind::File, None), &two, &catalog, Some("CustomerGroups"), "usmf".into()).unwrap();
        assert_eq!(plan.entity.unwrap().collection, "CustomerGroups");
        assert_eq!(plan.lanes.iter().map(Lane::as_str).collect::<Vec<_>>(), ["customergroup/usmf"]);

        let plan = plan_enqueue(&job(JobKind::Package, None), &two, &catalog, None, "usmf".into()).unwrap();
        assert!(plan.entity.is_none());
        assert_eq!(plan.lanes.iter().map(Lane::as_str).collect::<Vec<_>>(), ["customergroup/usmf", "customerv3/usmf"]);

        let one = project(&["CustomersV3"]);
        let plan = plan_enqueue(&job(JobKind::File, None), &one, &catalog, None, "usmf".into()).unwrap();
        assert_eq!(plan.entity.unwrap().collection, "CustomersV3", "a project's only entity needs no name");
    }

    #[test]
    fn wrong_entities_are_refused_with_what_the_project_has() {
        let catalog = catalog();
        let two = project(&["CustomersV3", "Customer groups"]);
        let file = job(JobKind::File, None);
        let e = plan_enqueue(&file, &two, &catalog, None, "usmf".into()).unwrap_err();
        assert!(e.0.contains("name the entity with ?entity=") && e.0.contains("Customer groups"), "{e}");
        let e = plan_enqueue(&file, &two, &catalog, Some("Nope"), "usmf".into()).unwrap_err();
        assert!(e.0.contains("entity 'Nope' does not exist"), "{e}");
        let e = plan_enqueue(&file, &two, &catalog, Some("VendorsV2"), "usmf".into()).unwrap_err();
        assert!(e.0.contains("is not part of data project 'P'"), "{e}");
    }
}
