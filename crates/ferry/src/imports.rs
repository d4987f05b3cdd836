//! Recurring imports in the binary: applying the `[[projects]]` and `[[jobs]]` declarations at
//! start-up (matched by name and activity id; unchanged ones are not rewritten) and the
//! `ferry projects|jobs …` commands (`ferry messages …` is in `messages.rs`). Like `ferry apps` and `ferry profiles`, the commands
//! work on the store directly, through an [`IntegrationService`] whose workers are never started; a
//! running server sees changed definitions at the next enqueue or import.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, anyhow, bail};
use ferry_api::wire::{
    job_from_json, job_json, job_kind_name, operation_name, origin_name, project_from_json, project_json,
};
use ferry_config::Config;
use ferry_domain::{Job, Origin, Project, SystemClock, normalize_activity_id};
use ferry_integration::{IntegrationError, IntegrationService};
use serde_json::{Map, Value};

use crate::boot;
use crate::cli::{JobsCommand, ProjectsCommand};

/// The import service's error with its detail (`Internal` and `Unavailable` display without it).
pub(crate) fn failed(e: IntegrationError) -> anyhow::Error {
    match &e {
        IntegrationError::Internal(detail) | IntegrationError::Unavailable(detail) => anyhow!("{e}: {detail}"),
        _ => anyhow!("{e}"),
    }
}

/// Creates or replaces every project, then every job, declared in the config. Idempotent: a
/// definition already stored as declared is not written. Definitions the config declared before
/// but no longer does are kept (they may be in use) and reported in the log.
pub(crate) async fn apply_declared(
    service: &IntegrationService,
    projects: &[Project],
    jobs: &[Job],
) -> anyhow::Result<()> {
    for (i, decl) in projects.iter().enumerate() {
        let at = || format!("config projects[{i}] ('{}')", decl.name);
        let project = decl.clone();
        let existing = service.get_project(&project.name).await.map_err(failed).with_context(at)?;
        if existing.as_ref().is_some_and(|(stored, origin)| *stored == project && *origin == Origin::Config) {
            continue;
        }
        if existing.as_ref().is_some_and(|(_, origin)| *origin == Origin::Api) {
            tracing::warn!(project = %project.name, "the config declares a data project created through the API or CLI; the config wins");
        }
        let uses_xslt = project.entities.iter().any(|e| e.xslt.is_some());
        if uses_xslt && !service.runs_xslt() {
            tracing::warn!(project = %project.name, "the project transforms with XSLT, but this server runs no XSLT (import.xslt = false, or libxslt is missing): its XML files will fail");
        }
        service.put_project(project, Origin::Config).await.map_err(failed).with_context(at)?;
        let action = if existing.is_some() { "updated" } else { "created" };
        tracing::info!(project = %decl.name, "{action} data project from config");
    }
    for (i, decl) in jobs.iter().enumerate() {
        let at = || format!("config jobs[{i}] ({})", decl.activity_id);
        let job = decl.clone();
        let existing = service.get_job(&job.activity_id).await.map_err(failed).with_context(at)?;
        if existing.as_ref().is_some_and(|(stored, origin)| *stored == job && *origin == Origin::Config) {
            continue;
        }
        if existing.as_ref().is_some_and(|(_, origin)| *origin == Origin::Api) {
            tracing::warn!(job = %job.activity_id, "the config declares a recurring job created through the API or CLI; the config wins");
        }
        service.put_job(job, Origin::Config).await.map_err(failed).with_context(at)?;
        let action = if existing.is_some() { "updated" } else { "created" };
        tracing::info!(job = %decl.activity_id, project = %decl.project, "{action} recurring job from config");
    }
    report_undeclared(service, projects, jobs).await
}

/// Logs config-origin definitions that the config no longer declares.
async fn report_undeclared(service: &IntegrationService, projects: &[Project], jobs: &[Job]) -> anyhow::Result<()> {
    for (project, origin) in service.list_projects().await.map_err(failed)? {
        if origin == Origin::Config && !projects.iter().any(|d| d.name.eq_ignore_ascii_case(&project.name)) {
            tracing::warn!(project = %project.name, "data project was declared in the config and no longer is; it is kept (`ferry projects delete` removes it)");
        }
    }
    for (job, origin) in service.list_jobs().await.map_err(failed)? {
        if origin == Origin::Config && !jobs.iter().any(|d| d.activity_id == job.activity_id) {
            tracing::warn!(job = %job.activity_id, "recurring job was declared in the config and no longer is; it is kept (`ferry jobs delete` removes it)");
        }
    }
    Ok(())
}

/// Opens the store and an import service over it (workers never started), runs `f`, closes.
pub(crate) async fn with_service<F, T>(config: &Config, env: &[(String, String)], f: F) -> anyhow::Result<T>
where
    F: AsyncFnOnce(&IntegrationService) -> anyhow::Result<T>,
{
    let catalog = Arc::new(boot::build_catalog(config.entities_dir.as_deref())?);
    let store = boot::open_store(config, SystemClock::shared()).await?;
    let result = async {
        let service = boot::import_service(config, env, store.clone(), catalog).await?;
        f(&service).await
    }
    .await;
    store.close().await;
    result
}

// ----- ferry projects -----

pub(crate) async fn projects(
    config: &Config,
    env: &[(String, String)],
    command: ProjectsCommand,
) -> anyhow::Result<String> {
    // Read the file before touching the database.
    let applying = match &command {
        ProjectsCommand::Apply { file } => Some(read_projects(file)?),
        _ => None,
    };
    with_service(config, env, async |service| match command {
        ProjectsCommand::List { json } => list_projects(service, json).await,
        ProjectsCommand::Show { name, json } => {
            let (project, origin) = find_project(service, &name).await?;
            Ok(if json { format!("{:#}\n", project_json(&project, origin)) } else { project_text(&project, origin) })
        }
        ProjectsCommand::Apply { .. } => apply_projects(service, applying.unwrap_or_default()).await,
        ProjectsCommand::Delete { name } => {
            let (project, origin) = find_project(service, &name).await?;
            service.delete_project(&project.name).await.map_err(failed)?;
            let mut out = format!("deleted data project '{}'\n", project.name);
            out.push_str(&config_note(origin, "data project", &project.name, "creates it again"));
            Ok(out)
        }
    })
    .await
}

async fn find_project(service: &IntegrationService, name: &str) -> anyhow::Result<(Project, Origin)> {
    service.get_project(name.trim()).await.map_err(failed)?.ok_or_else(|| {
        anyhow!(
            "no data project named '{name}' (`ferry projects list` shows them; `ferry projects apply FILE` creates one)"
        )
    })
}

async fn list_projects(service: &IntegrationService, as_json: bool) -> anyhow::Result<String> {
    let projects = service.list_projects().await.map_err(failed)?;
    if as_json {
        let list: Vec<Value> = projects.iter().map(|(p, o)| project_json(p, *o)).collect();
        return Ok(format!("{}\n", Value::Array(list)));
    }
    if projects.is_empty() {
        return Ok(
            "no data projects (declare them in [[projects]] or create one with `ferry projects apply FILE`)\n".into()
        );
    }
    let header = ["NAME", "OPERATION", "ENTITIES", "ORIGIN", "DESCRIPTION"].map(str::to_owned).to_vec();
    let rows = projects.iter().map(|(p, origin)| {
        vec![
            p.name.clone(),
            operation_name(p.operation).to_owned(),
            p.entities.iter().map(|e| e.entity.as_str()).collect::<Vec<_>>().join(","),
            origin_name(*origin).to_owned(),
            p.description.clone(),
        ]
    });
    Ok(crate::table::render(header, rows))
}

fn project_text(project: &Project, origin: Origin) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "name:        {}", project.name);
    let _ = writeln!(out, "description: {}", project.description);
    let _ = writeln!(out, "operation:   {}", operation_name(project.operation));
    let _ = writeln!(out, "origin:      {}", origin_name(origin));
    for (i, e) in project.entities.iter().enumerate() {
        let _ = writeln!(out, "entity {}:    {}", i + 1, e.entity);
        let _ = writeln!(
            out,
            "  format:    {}{}",
            e.format,
            e.sheet.as_ref().map(|s| format!(" (sheet {s})")).unwrap_or_default()
        );
        let _ = writeln!(
            out,
            "  order:     execution unit {}, level {}, sequence {}",
            e.execution_unit, e.level, e.sequence
        );
        if !e.mapping.is_empty() {
            let pairs: Vec<String> = e.mapping.iter().map(|(column, field)| format!("{column} -> {field}")).collect();
            let _ = writeln!(out, "  mapping:   {}", pairs.join(", "));
        }
        if let Some(xslt) = &e.xslt {
            let _ = writeln!(out, "  xslt:      {} bytes (`--json` shows it)", xslt.len());
        }
    }
    out
}

async fn apply_projects(service: &IntegrationService, projects: Vec<(String, Project)>) -> anyhow::Result<String> {
    let mut out = String::new();
    for (at, project) in projects {
        let before = service.get_project(project.name.trim()).await.map_err(failed)?;
        let saved = service.put_project(project, Origin::Api).await.map_err(failed).with_context(|| at.clone())?;
        let action = if before.is_some() { "replaced" } else { "created" };
        let entities = saved.entities.len();
        let noun = if entities == 1 { "entity" } else { "entities" };
        writeln!(out, "{action} data project '{}' ({entities} {noun})", saved.name)?;
        if let Some((_, origin)) = before {
            out.push_str(&config_note(origin, "data project", &saved.name, "sets it again"));
        }
    }
    Ok(out)
}

/// A note for changes the config will undo at the next start.
fn config_note(origin: Origin, what: &str, name: &str, undo: &str) -> String {
    if origin == Origin::Config {
        format!("note: {what} '{name}' is declared in the config, which {undo} at the next start\n")
    } else {
        String::new()
    }
}

// ----- ferry jobs -----

pub(crate) async fn jobs(config: &Config, env: &[(String, String)], command: JobsCommand) -> anyhow::Result<String> {
    let applying = match &command {
        JobsCommand::Apply { file } => Some(read_jobs(file)?),
        _ => None,
    };
    with_service(config, env, async |service| match command {
        JobsCommand::List { json } => list_jobs(service, json).await,
        JobsCommand::Show { id, json } => {
            let (job, origin) = find_job(service, &id).await?;
            Ok(if json { format!("{:#}\n", job_json(&job, origin)) } else { job_text(&job, origin) })
        }
        JobsCommand::Apply { .. } => apply_jobs(service, applying.unwrap_or_default()).await,
        JobsCommand::Enable { id } => set_enabled(service, &id, true).await,
        JobsCommand::Disable { id } => set_enabled(service, &id, false).await,
        JobsCommand::Delete { id } => {
            let (job, origin) = find_job(service, &id).await?;
            service.delete_job(&job.activity_id).await.map_err(failed)?;
            let mut out = format!(
                "deleted recurring job {}: its endpoint no longer accepts enqueues (messages already enqueued are \
                 still imported)\n",
                job.activity_id
            );
            out.push_str(&config_note(origin, "recurring job", &job.activity_id, "creates it again"));
            Ok(out)
        }
    })
    .await
}

async fn find_job(service: &IntegrationService, id: &str) -> anyhow::Result<(Job, Origin)> {
    if normalize_activity_id(id).is_none() {
        bail!("'{id}' is not an activity id (a GUID like 6d31e09f-4a4b-4e2b-9c1e-0c5f0a0b1c2d)");
    }
    service
        .get_job(id)
        .await
        .map_err(failed)?
        .ok_or_else(|| anyhow!("no recurring job has activity id {id} (`ferry jobs list` shows them)"))
}

fn apps_text(job: &Job) -> String {
    let apps: Vec<String> = job
        .apps
        .iter()
        .map(|a| if a.enabled { a.client_id.clone() } else { format!("{} (disabled)", a.client_id) })
        .collect();
    if apps.is_empty() { "(none: no app may enqueue)".into() } else { apps.join(", ") }
}

async fn list_jobs(service: &IntegrationService, as_json: bool) -> anyhow::Result<String> {
    let jobs = service.list_jobs().await.map_err(failed)?;
    if as_json {
        let list: Vec<Value> = jobs.iter().map(|(j, o)| job_json(j, *o)).collect();
        return Ok(format!("{}\n", Value::Array(list)));
    }
    if jobs.is_empty() {
        return Ok("no recurring jobs (declare them in [[jobs]] or create one with `ferry jobs apply FILE`)\n".into());
    }
    let header =
        ["ACTIVITY_ID", "PROJECT", "KIND", "ENABLED", "RECURRENCE", "APPS", "ORIGIN"].map(str::to_owned).to_vec();
    let rows = jobs.iter().map(|(j, origin)| {
        vec![
            j.activity_id.clone(),
            j.project.clone(),
            job_kind_name(j.kind).to_owned(),
            if j.enabled { "yes" } else { "no" }.to_owned(),
            j.recurrence.clone().unwrap_or_else(|| "-".into()),
            j.apps.iter().filter(|a| a.enabled).map(|a| a.client_id.as_str()).collect::<Vec<_>>().join(","),
            origin_name(*origin).to_owned(),
        ]
    });
    Ok(crate::table::render(header, rows))
}

fn job_text(job: &Job, origin: Origin) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "activity id:    {}", job.activity_id);
    let _ = writeln!(out, "description:    {}", job.description);
    let _ = writeln!(out, "project:        {}", job.project);
    let _ = writeln!(out, "kind:           {}", job_kind_name(job.kind));
    let _ = writeln!(out, "enabled:        {}", if job.enabled { "yes" } else { "no" });
    let _ = writeln!(out, "apps:           {}", apps_text(job));
    let _ = writeln!(
        out,
        "recurrence:     {}",
        job.recurrence.as_deref().unwrap_or("(none: each message is processed when enqueued)")
    );
    let _ = writeln!(out, "company:        {}", job.company.as_deref().unwrap_or("(import.default_company)"));
    let _ = writeln!(out, "all or nothing: {}", if job.all_or_nothing { "yes" } else { "no" });
    let _ = writeln!(out, "origin:         {}", origin_name(origin));
    let _ = writeln!(out, "endpoint:       /api/connector/enqueue/{}", job.activity_id);
    out
}

async fn apply_jobs(service: &IntegrationService, jobs: Vec<(String, Job)>) -> anyhow::Result<String> {
    let mut out = String::new();
    for (at, job) in jobs {
        let before = service.get_job(&job.activity_id).await.map_err(failed)?;
        let saved = service.put_job(job, Origin::Api).await.map_err(failed).with_context(|| at.clone())?;
        let action = if before.is_some() { "replaced" } else { "created" };
        writeln!(out, "{action} recurring job {} (project '{}')", saved.activity_id, saved.project)?;
        if let Some((_, origin)) = before {
            out.push_str(&config_note(origin, "recurring job", &saved.activity_id, "sets it again"));
        }
    }
    Ok(out)
}

async fn set_enabled(service: &IntegrationService, id: &str, enabled: bool) -> anyhow::Result<String> {
    let (job, origin) = find_job(service, id).await?;
    let mut out = if job.enabled == enabled {
        format!("recurring job {} is already {}\n", job.activity_id, if enabled { "enabled" } else { "disabled" })
    } else {
        service.set_job_enabled(&job.activity_id, enabled).await.map_err(failed)?;
        if enabled {
            format!("enabled recurring job {}: it accepts enqueues again\n", job.activity_id)
        } else {
            format!(
                "disabled recurring job {}: enqueues are refused (messages already enqueued are still imported)\n",
                job.activity_id
            )
        }
    };
    out.push_str(&config_note(origin, "recurring job", &job.activity_id, "sets its enabled flag again"));
    Ok(out)
}

// ----- apply files -----

#[derive(Clone, Copy)]
enum Kind {
    Project,
    Job,
}

impl Kind {
    fn noun(self) -> &'static str {
        match self {
            Kind::Project => "project",
            Kind::Job => "job",
        }
    }

    /// The config file's key for a list of them.
    fn plural(self) -> &'static str {
        match self {
            Kind::Project => "projects",
            Kind::Job => "jobs",
        }
    }
}

/// The data projects in `path`, each with where it came from for messages.
fn read_projects(path: &Path) -> anyhow::Result<Vec<(String, Project)>> {
    read_definitions(path, Kind::Project, project_from_json)
}

/// The recurring jobs in `path`, each with where it came from for messages.
fn read_jobs(path: &Path) -> anyhow::Result<Vec<(String, Job)>> {
    read_definitions(path, Kind::Job, job_from_json)
}

/// The definitions in `path` (TOML or JSON; one, a list, or `[[projects]]`/`[[jobs]]` tables),
/// read by the REST API's rules (`parse`). An `origin` key is dropped (it is output, not input);
/// a project entity's `xslt_file` is read (relative to the file's directory) into `xslt`.
fn read_definitions<T>(
    path: &Path,
    kind: Kind,
    parse: fn(Map<String, Value>) -> Result<T, String>,
) -> anyhow::Result<Vec<(String, T)>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let shown = path.display();
    let extension = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    let is_json = match extension.as_deref() {
        Some("json") => true,
        Some("toml") => false,
        _ => text.trim_start().starts_with(['{', '[']),
    };
    let document: Value = if is_json {
        serde_json::from_str(&text).with_context(|| format!("{shown} is not valid JSON"))?
    } else {
        let table: toml::Table = toml::from_str(&text).with_context(|| format!("{shown} is not valid TOML"))?;
        serde_json::to_value(table).context("cannot convert the TOML")?
    };
    let items = match document {
        Value::Array(items) => items,
        Value::Object(mut map) if map.len() == 1 && map.get(kind.plural()).is_some_and(Value::is_array) => {
            match map.remove(kind.plural()) {
                Some(Value::Array(items)) => items,
                _ => unreachable!("checked to be an array"),
            }
        }
        single @ Value::Object(_) => vec![single],
        _ => bail!("{shown}: expected a {} (a table or JSON object) or a list of them", kind.noun()),
    };
    if items.is_empty() {
        bail!("{shown} holds no {}", kind.plural());
    }
    let base_dir = path.parent().unwrap_or(Path::new("."));
    let mut definitions = Vec::with_capacity(items.len());
    for (i, mut item) in items.into_iter().enumerate() {
        let name_key = match kind {
            Kind::Project => "name",
            Kind::Job => "activity_id",
        };
        let name = item.get(name_key).and_then(Value::as_str).unwrap_or("?").to_owned();
        let at = format!("{shown}: {} {} ('{name}')", kind.noun(), i + 1);
        if matches!(kind, Kind::Project) {
            read_stylesheet_files(&mut item, base_dir).with_context(|| at.clone())?;
        }
        let Value::Object(map) = item else { bail!("{at}: expected a table (a JSON object)") };
        let definition = parse(map).map_err(|e| anyhow!("{at}: {e}"))?;
        definitions.push((at, definition));
    }
    Ok(definitions)
}

/// Replaces each entity's `xslt_file` with the file's text as `xslt`.
fn read_stylesheet_files(project: &mut Value, base_dir: &Path) -> anyhow::Result<()> {
    let Some(entities) = project.get_mut("entities").and_then(Value::as_array_mut) else { return Ok(()) };
    for (i, entity) in entities.iter_mut().enumerate() {
        let Some(map) = entity.as_object_mut() else { continue };
        let Some(file) = map.remove("xslt_file") else { continue };
        let Some(file) = file.as_str() else { bail!("entity {}: xslt_file must be a path", i + 1) };
        if map.contains_key("xslt") {
            bail!("entity {}: set either xslt (the stylesheet) or xslt_file, not both", i + 1);
        }
        let path = base_dir.join(file);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("entity {}: cannot read the stylesheet {}", i + 1, path.display()))?;
        map.insert("xslt".into(), Value::String(text));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The config's defaults for projects and jobs must be the import service's own.
    #[test]
    fn config_defaults_match_the_import_service() {
        let text = "[[projects]]\nname = \"P\"\n[[projects.entities]]\nentity = \"CustomersV3\"\n\
                    [[jobs]]\nactivity_id = \"6d31e09f-4a4b-4e2b-9c1e-0c5f0a0b1c2d\"\nproject = \"P\"\n";
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ferry.toml");
        std::fs::write(&path, text).unwrap();
        let config = ferry_config::load(Some(&path), &[], &ferry_config::Overrides::default()).unwrap();
        let object = |value: Value| value.as_object().cloned().unwrap();
        let project = project_from_json(object(json!({ "name": "P", "entities": [{ "entity": "CustomersV3" }] })));
        assert_eq!(config.projects[0], project.unwrap());
        let job =
            job_from_json(object(json!({ "activity_id": "6d31e09f-4a4b-4e2b-9c1e-0c5f0a0b1c2d", "project": "P" })));
        assert_eq!(config.jobs[0], job.unwrap());
    }

    #[test]
    fn apply_files_in_every_form() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("t.xsl"), "<xsl:stylesheet/>").unwrap();
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        let one = write("one.toml", "name = \"A\"\n[[entities]]\nentity = \"X\"\nxslt_file = \"t.xsl\"\n");
        let [(_, a)] = &read_projects(&one).unwrap()[..] else { panic!("one") };
        assert_eq!(a.entities[0].xslt.as_deref(), Some("<xsl:stylesheet/>"));

        let tables = write(
            "many.toml",
            "[[projects]]\nname = \"A\"\nentities = [{ entity = \"X\" }]\n[[projects]]\nname = \"B\"\nentities = [{ entity = \"Y\" }]\n",
        );
        assert_eq!(read_projects(&tables).unwrap().len(), 2);

        let list = write(
            "list.json",
            r#"[{"activity_id": "6d31e09f-4a4b-4e2b-9c1e-0c5f0a0b1c2d", "project": "A", "origin": "config"}]"#,
        );
        let jobs = read_jobs(&list).unwrap();
        assert_eq!(jobs[0].1.project, "A", "origin is dropped");

        let typo = write("typo.json", r#"{"name": "A", "entities": [{"entity": "X", "fromat": "CSV"}]}"#);
        let err = format!("{:#}", read_projects(&typo).unwrap_err());
        assert!(err.contains("project 1 ('A')") && err.contains("unknown field `fromat`"), "{err}");
    }
}
