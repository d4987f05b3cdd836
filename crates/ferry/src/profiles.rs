//! Replication profiles in the binary: applying the `[[profiles]]` declarations at start-up
//! (idempotent, matched by name) and the `ferry profiles …` commands, which work on the store
//! directly through a `Replication` whose engine is never started — a running server picks up
//! state changes within seconds (its supervisor re-reads the profiles).

use std::fmt::Write as _;
use std::sync::Arc;

use anyhow::{Context, anyhow};
use ferry_api::wire::{
    entity_status_json, failure_log_text, failures_json, phase_name, profile_document, profile_json,
    profile_state_name, sync_state_name,
};
use ferry_config::Config;
use ferry_domain::{DeclaredProfile, Profile, ProfileState, SystemClock, validate_profile};
use ferry_replicate::{EngineSettings, Replication, ReplicationEngine, ReplicationError, VerifyReport};
use serde_json::{Value, json};

use crate::boot;
use crate::cli::ProfilesCommand;

/// A document of the data-export API (`ferry_api::wire`) with ferry's own snake_case keys, as
/// `--json` prints it (`TablePrefix` becomes `table_prefix`).
fn snake_keys(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(map.into_iter().map(|(k, v)| (snake_case(&k), snake_keys(v))).collect()),
        Value::Array(items) => Value::Array(items.into_iter().map(snake_keys).collect()),
        other => other,
    }
}

fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The most failure-log lines `ferry profiles failures` prints.
const FAILURES_MAX: u64 = 100_000;

/// What a command prints, and whether it failed after printing (exit code 1).
#[derive(Debug)]
pub(crate) struct Outcome {
    pub output: String,
    pub failure: Option<String>,
}

impl Outcome {
    fn ok(output: String) -> Outcome {
        Outcome { output, failure: None }
    }
}

/// Creates or updates every profile declared in the config, then puts it in its declared state.
/// Idempotent: a profile whose stored definition, connection string and state already match is
/// not written (so a running profile is not restarted).
pub(crate) async fn apply_declared(replication: &Replication, decls: &[DeclaredProfile]) -> anyhow::Result<()> {
    for (i, decl) in decls.iter().enumerate() {
        let name = &decl.definition.name;
        let at = || format!("config profiles[{i}] ('{name}')");
        let mut definition = decl.definition.clone();
        let problems = validate_profile(&mut definition, replication.catalog());
        if !problems.is_empty() {
            return Err(anyhow!("{}", ReplicationError::Invalid(problems))).with_context(at);
        }
        let connection = &decl.connection;
        let existing = replication
            .list()
            .await
            .with_context(at)?
            .into_iter()
            .find(|p| p.definition.name.eq_ignore_ascii_case(name));
        let profile = match existing {
            None => {
                let created = replication.create(definition, connection).await.with_context(at)?;
                tracing::info!(profile = %created.definition.name, id = %created.id, "created replication profile from config");
                created
            }
            Some(profile) => {
                let same = profile.definition == definition
                    && replication.has_connection(&profile.id, connection).await.with_context(at)?;
                if same {
                    profile
                } else {
                    let updated =
                        replication.update(&profile.id, definition, Some(connection)).await.with_context(at)?;
                    tracing::info!(profile = %updated.definition.name, id = %updated.id, "updated replication profile from config");
                    updated
                }
            }
        };
        let state = decl.state;
        if profile.state != state {
            replication.set_state(&profile.id, state).await.with_context(at)?;
            tracing::info!(profile = %profile.definition.name, state = profile_state_name(state), "replication profile state set from config");
        }
    }
    Ok(())
}

/// Runs one `profiles` command against the configured store.
pub(crate) async fn run(
    config: &Config,
    env: &[(String, String)],
    command: ProfilesCommand,
) -> anyhow::Result<Outcome> {
    let catalog = Arc::new(boot::build_catalog(config.entities_dir.as_deref())?);
    let master = Arc::new(boot::load_master_key(config, env)?);
    let store = boot::open_store(config, SystemClock::shared()).await?;
    // Never started: commands change the store; the server running the profile acts on it.
    let engine =
        ReplicationEngine::new(store.clone(), catalog.clone(), master.clone(), env.to_vec(), EngineSettings::default());
    let replication = Replication::new(store.clone(), catalog, master, engine, env.to_vec());
    let result = dispatch(&replication, command).await;
    store.close().await;
    result
}

async fn dispatch(replication: &Replication, command: ProfilesCommand) -> anyhow::Result<Outcome> {
    match command {
        ProfilesCommand::List { json } => list(replication, json).await.map(Outcome::ok),
        ProfilesCommand::Show { id, json } => {
            let profile = find(replication, &id).await?;
            if !json {
                return Ok(Outcome::ok(show_text(&profile)));
            }
            let statuses = replication.status(&profile.id).await.context("cannot read the replication status")?;
            Ok(Outcome::ok(format!("{:#}\n", snake_keys(profile_document(&profile, &statuses)))))
        }
        ProfilesCommand::Status { id, json } => status(replication, &id, json).await.map(Outcome::ok),
        ProfilesCommand::Activate { id } => set_state(replication, &id, ProfileState::Active).await.map(Outcome::ok),
        ProfilesCommand::Deactivate { id } => {
            set_state(replication, &id, ProfileState::Inactive).await.map(Outcome::ok)
        }
        ProfilesCommand::Resync { id } => {
            let profile = find(replication, &id).await?;
            let n = replication.resync(&profile.id).await.context("cannot request the resync")?;
            Ok(Outcome::ok(format!(
                "{n} record(s) of profile '{}' are due for retry now; the server running it retries them shortly\n",
                profile.definition.name
            )))
        }
        ProfilesCommand::Failures { id, text } => failures(replication, &id, text).await.map(Outcome::ok),
        ProfilesCommand::Test { id } => test(replication, &id).await,
        ProfilesCommand::Verify { id, repair, json } => verify(replication, &id, repair, json).await,
    }
}

/// The profile with this id, or else the one with this name (without regard to case).
async fn find(replication: &Replication, id_or_name: &str) -> anyhow::Result<Profile> {
    match replication.get(id_or_name).await {
        Ok(profile) => return Ok(profile),
        Err(ReplicationError::NotFound(_)) => {}
        Err(e) => return Err(e).context("cannot read the profiles"),
    }
    let profiles = replication.list().await.context("cannot read the profiles")?;
    profiles
        .into_iter()
        .find(|p| p.definition.name.eq_ignore_ascii_case(id_or_name))
        .ok_or_else(|| anyhow!("no profile with id or name '{id_or_name}' (`ferry profiles list` shows them)"))
}

async fn list(replication: &Replication, as_json: bool) -> anyhow::Result<String> {
    let profiles = replication.list().await.context("cannot read the profiles")?;
    if as_json {
        return Ok(format!("{}\n", snake_keys(Value::Array(profiles.iter().map(profile_json).collect()))));
    }
    if profiles.is_empty() {
        return Ok("no replication profiles (declare them in [[profiles]] or POST /crm/exporter/profiles)\n".into());
    }
    let header = ["ID", "NAME", "TARGET", "STATE", "ENTITIES"].map(str::to_owned).to_vec();
    let rows = profiles.iter().map(|p| {
        vec![
            p.id.clone(),
            p.definition.name.clone(),
            p.definition.target_kind.name().to_owned(),
            profile_state_name(p.state).to_owned(),
            p.definition.entities.join(","),
        ]
    });
    Ok(crate::table::render(header, rows))
}

fn show_text(profile: &Profile) -> String {
    let d = &profile.definition;
    let prefix = if d.table_prefix.is_empty() { "(none)" } else { d.table_prefix.as_str() };
    let mut out = String::new();
    let _ = writeln!(out, "id:               {}", profile.id);
    let _ = writeln!(out, "name:             {}", d.name);
    let _ = writeln!(out, "description:      {}", d.description);
    let _ = writeln!(out, "state:            {}", profile_state_name(profile.state));
    let _ = writeln!(out, "target type:      {}", d.target_kind.name());
    let _ = writeln!(out, "schema:           {}", d.schema());
    let _ = writeln!(out, "table prefix:     {prefix}");
    let _ = writeln!(out, "retry:            {} times every {} s", d.retry_count, d.retry_interval_secs);
    let _ = writeln!(out, "write delete log: {}", if d.write_delete_log { "yes" } else { "no" });
    let _ = writeln!(out, "entities:         {}", d.entities.join(", "));
    let _ = writeln!(out, "created:          {}", profile.created_at.to_rfc3339());
    let _ = writeln!(out, "modified:         {}", profile.updated_at.to_rfc3339());
    out
}

async fn status(replication: &Replication, id: &str, as_json: bool) -> anyhow::Result<String> {
    let profile = find(replication, id).await?;
    let entities = replication.status(&profile.id).await.context("cannot read the replication status")?;
    if as_json {
        return Ok(format!("{}\n", snake_keys(Value::Array(entities.iter().map(entity_status_json).collect()))));
    }
    let mut out =
        format!("profile '{}' ({}): {}\n", profile.definition.name, profile.id, profile_state_name(profile.state));
    if entities.is_empty() {
        out.push_str("no status reported yet (is a server running the profile?)\n");
        return Ok(out);
    }
    let header = ["ENTITY", "PHASE", "STATE", "ROWS", "LAST VERSION", "LAG", "LAG S", "FAILED", "REASON"]
        .map(str::to_owned)
        .to_vec();
    let rows = entities.iter().map(|e| {
        let s = &e.status;
        vec![
            s.entity.clone(),
            phase_name(s.phase).to_owned(),
            sync_state_name(s.state).to_owned(),
            format!("{}/{}", s.rows_copied, s.rows_total),
            s.last_version.to_string(),
            s.lag_versions.to_string(),
            format!("{:.1}", s.lag_seconds),
            e.failed_records.to_string(),
            s.reason.clone().unwrap_or_default(),
        ]
    });
    out.push_str(&crate::table::render(header, rows));
    Ok(out)
}

async fn set_state(replication: &Replication, id: &str, state: ProfileState) -> anyhow::Result<String> {
    let profile = find(replication, id).await?;
    let profile = replication.set_state(&profile.id, state).await.context("cannot change the profile's state")?;
    let action = if state == ProfileState::Inactive { "deactivated" } else { "activated" };
    Ok(format!(
        "{action} profile '{}' ({}); a running server picks the change up within seconds\n",
        profile.definition.name, profile.id
    ))
}

async fn failures(replication: &Replication, id: &str, text: bool) -> anyhow::Result<String> {
    let profile = find(replication, id).await?;
    let lines = replication.failures(&profile.id, FAILURES_MAX).await.context("cannot read the failure log")?;
    if text {
        return Ok(lines.iter().map(failure_log_text).collect());
    }
    let mut log = failures_json(&profile.id, &lines);
    Ok(format!("{}\n", snake_keys(log["Failures"].take())))
}

async fn test(replication: &Replication, id: &str) -> anyhow::Result<Outcome> {
    let profile = find(replication, id).await?;
    let checks = replication.test(&profile.id).await.context("cannot test the profile")?;
    let mut output = String::new();
    for check in &checks {
        let _ = writeln!(output, "{}  {}: {}", if check.ok { "PASS" } else { "FAIL" }, check.name, check.detail);
    }
    let failed = checks.iter().filter(|c| !c.ok).count();
    let failure = (failed > 0)
        .then(|| format!("{failed} of {} checks failed for profile '{}'", checks.len(), profile.definition.name));
    Ok(Outcome { output, failure })
}

/// One summary line per entity.
fn verify_lines(report: &VerifyReport) -> String {
    let mut out = String::new();
    for e in &report.entities {
        let counts = format!("source {} rows, target {} rows", e.source_rows, e.target_rows);
        let differences = e.missing.len() + e.extra.len() + e.outdated.len();
        if differences == 0 {
            let _ = writeln!(out, "{}: {counts}, {} key ranges equal: OK", e.entity, e.ranges);
        } else {
            let _ = writeln!(
                out,
                "{}: {counts}, {} of {} key ranges differ: {} missing, {} extra, {} outdated",
                e.entity,
                e.ranges_differing,
                e.ranges,
                e.missing.len(),
                e.extra.len(),
                e.outdated.len()
            );
        }
    }
    out
}

fn ids<T: ToString>(list: &[T]) -> Vec<String> {
    list.iter().map(T::to_string).collect()
}

fn verify_json(report: &VerifyReport) -> Value {
    json!({
        "differences": report.differences(),
        "repaired": report.repaired,
        "entities": report.entities.iter().map(|e| json!({
            "entity": e.entity, "source_rows": e.source_rows, "target_rows": e.target_rows,
            "ranges": e.ranges, "ranges_differing": e.ranges_differing,
            "missing": ids(&e.missing), "extra": ids(&e.extra), "outdated": ids(&e.outdated),
        })).collect::<Vec<_>>(),
    })
}

async fn verify(replication: &Replication, id: &str, repair: bool, as_json: bool) -> anyhow::Result<Outcome> {
    let profile = find(replication, id).await?;
    let name = &profile.definition.name;
    let report =
        replication.verify(&profile.id, repair).await.with_context(|| format!("cannot verify profile '{name}'"))?;
    let found = report.differences();
    // After a repair, compare again: the exit code tells whether source and target now agree.
    let after = if repair && found > 0 {
        Some(replication.verify(&profile.id, false).await.with_context(|| format!("cannot verify profile '{name}'"))?)
    } else {
        None
    };
    let remaining = after.as_ref().map_or(found, |r| r.differences());
    let output = if as_json {
        let mut body = verify_json(&report);
        if let Some(after) = &after {
            body["after_repair"] = verify_json(after);
        }
        format!("{body}\n")
    } else {
        let mut out = verify_lines(&report);
        match (&after, found) {
            (_, 0) => out.push_str(&format!("profile '{name}': source and target are equal\n")),
            (Some(after), _) => {
                out.push_str(&format!("repaired {found} difference(s); compared again:\n"));
                out.push_str(&verify_lines(after));
            }
            (None, _) => {}
        }
        out
    };
    let failure = (remaining > 0).then(|| match after {
        Some(_) => format!("profile '{name}': {remaining} difference(s) remain after the repair (changes may still be arriving)"),
        None => format!(
            "profile '{name}': {remaining} difference(s) between source and target (`ferry profiles verify {} --repair` fixes them)",
            profile.id
        ),
    });
    Ok(Outcome { output, failure })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_documents_print_with_snake_case_keys() {
        let document = json!({ "Id": "x", "TablePrefix": "rep", "EntityStatus": [{ "LagVersions": 3 }] });
        assert_eq!(
            snake_keys(document),
            json!({ "id": "x", "table_prefix": "rep", "entity_status": [{ "lag_versions": 3 }] })
        );
    }
}
