//! `ferry apps …`: register, list, remove, enable and disable client apps and
//! rotate their secrets, directly in the configured store. Secrets are printed
//! once and stored only as argon2 hashes.

use std::fmt::Write as _;

use anyhow::{Context, bail};
use ferry_config::{Config, KNOWN_ROLES};
use ferry_store::{App, AppOrigin, Store};
use serde_json::json;

use crate::boot;
use crate::cli::{AddApp, AppsCommand};
use ferry_domain::SystemClock;

const SECRET_NOTE: &str = "store it now: it cannot be shown again";

/// Runs one `apps` command and answers what to print on stdout.
pub(crate) async fn run(config: &Config, command: AppsCommand) -> anyhow::Result<String> {
    if let AppsCommand::Add(add) = &command {
        // Check the arguments before touching the database.
        check_add(add)?;
    }
    let store = boot::open_store(config, SystemClock::shared()).await?;
    let result = dispatch(&store, command).await;
    store.close().await;
    result
}

async fn dispatch(store: &Store, command: AppsCommand) -> anyhow::Result<String> {
    match command {
        AppsCommand::Add(add) => add_app(store, add).await,
        AppsCommand::List { json } => list_apps(store, json).await,
        AppsCommand::Remove { client_id } => remove_app(store, &client_id).await,
        AppsCommand::RotateSecret { client_id } => rotate_secret(store, &client_id).await,
        AppsCommand::Disable { client_id } => set_enabled(store, &client_id, false).await,
        AppsCommand::Enable { client_id } => set_enabled(store, &client_id, true).await,
    }
}

fn check_add(add: &AddApp) -> anyhow::Result<()> {
    boot::check_client_id(&add.client_id)?;
    if add.name.as_deref().is_some_and(|n| n.trim().is_empty()) {
        bail!("--name must not be empty");
    }
    roles(&add.roles)?;
    add.company.as_deref().map(company).transpose()?;
    Ok(())
}

/// The roles, each one known, without duplicates, at least one.
fn roles(requested: &[String]) -> anyhow::Result<Vec<String>> {
    let mut roles: Vec<String> = Vec::new();
    for role in requested.iter().map(|r| r.trim()).filter(|r| !r.is_empty()) {
        if !KNOWN_ROLES.contains(&role) {
            bail!("unknown role '{role}' (known: {})", KNOWN_ROLES.join(", "));
        }
        if !roles.iter().any(|r| r == role) {
            roles.push(role.to_owned());
        }
    }
    if roles.is_empty() {
        bail!("--roles must name at least one role ({})", KNOWN_ROLES.join(", "));
    }
    Ok(roles)
}

/// A company (data area) id: 1..=32 letters, digits, '_' or '-', lower-cased.
fn company(text: &str) -> anyhow::Result<String> {
    let valid =
        (1..=32).contains(&text.len()) && text.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'));
    if !valid {
        bail!("--company: '{text}' is not a company id (1 to 32 letters, digits, '_' or '-')");
    }
    Ok(text.to_ascii_lowercase())
}

async fn add_app(store: &Store, add: AddApp) -> anyhow::Result<String> {
    let roles = roles(&add.roles)?;
    let default_company = add.company.as_deref().map(company).transpose()?;
    if store.get_app(&add.client_id).await.context("cannot read the apps")?.is_some() {
        bail!(
            "app '{id}' already exists; to give it a new secret run `ferry apps rotate-secret {id}`",
            id = add.client_id
        );
    }
    let secret = ferry_secrets::generate_secret();
    let now = store.clock().now();
    let app = App {
        name: add.name.unwrap_or_else(|| add.client_id.clone()),
        client_id: add.client_id,
        secret_hash: boot::hash(&secret).await?,
        roles,
        default_company,
        enabled: true,
        origin: AppOrigin::Cli,
        created_at: now,
        updated_at: now,
    };
    store.upsert_app(&app).await.with_context(|| format!("cannot save app '{}'", app.client_id))?;
    if add.json {
        let out = json!({
            "client_id": app.client_id,
            "secret": secret,
            "roles": app.roles,
            "default_company": app.default_company,
        });
        return Ok(format!("{out}\n"));
    }
    let mut out = format!("created app '{}' (roles: {})\n", app.client_id, app.roles.join(", "));
    writeln!(out, "client_id: {}", app.client_id)?;
    writeln!(out, "secret:    {secret}")?;
    writeln!(out, "{SECRET_NOTE}")?;
    Ok(out)
}

async fn list_apps(store: &Store, as_json: bool) -> anyhow::Result<String> {
    let apps = store.list_apps().await.context("cannot read the apps")?;
    if as_json {
        let list: Vec<_> = apps
            .iter()
            .map(|a| {
                json!({
                    "client_id": a.client_id,
                    "name": a.name,
                    "roles": a.roles,
                    "default_company": a.default_company,
                    "enabled": a.enabled,
                    "origin": origin(a.origin),
                    "created_at": a.created_at.to_rfc3339(),
                    "updated_at": a.updated_at.to_rfc3339(),
                })
            })
            .collect();
        return Ok(format!("{}\n", serde_json::Value::Array(list)));
    }
    if apps.is_empty() {
        return Ok("no apps registered (add one with `ferry apps add --client-id ID`)\n".to_owned());
    }
    let header = ["CLIENT_ID", "NAME", "ROLES", "COMPANY", "ENABLED", "ORIGIN"].map(str::to_owned).to_vec();
    let rows = apps.iter().map(|a| {
        vec![
            a.client_id.clone(),
            a.name.clone(),
            a.roles.join(","),
            a.default_company.clone().unwrap_or_else(|| "-".to_owned()),
            if a.enabled { "yes" } else { "no" }.to_owned(),
            origin(a.origin).to_owned(),
        ]
    });
    Ok(crate::table::render(header, rows))
}

fn origin(origin: AppOrigin) -> &'static str {
    match origin {
        AppOrigin::Config => "config",
        AppOrigin::Cli => "cli",
    }
}

async fn existing(store: &Store, client_id: &str) -> anyhow::Result<App> {
    match store.get_app(client_id).await.context("cannot read the apps")? {
        Some(app) => Ok(app),
        None => bail!("no app '{client_id}' is registered (see `ferry apps list`)"),
    }
}

/// A note for changes the config will undo at the next start.
fn config_note(app: &App, what: &str) -> String {
    if app.origin == AppOrigin::Config {
        format!(
            "note: app '{}' is declared in the config, which sets its {what} again at the next start\n",
            app.client_id
        )
    } else {
        String::new()
    }
}

async fn remove_app(store: &Store, client_id: &str) -> anyhow::Result<String> {
    let app = existing(store, client_id).await?;
    store.delete_app(client_id).await.with_context(|| format!("cannot remove app '{client_id}'"))?;
    let mut out = format!(
        "removed app '{client_id}': it can no longer obtain tokens (tokens already issued stay valid until they expire)\n"
    );
    if app.origin == AppOrigin::Config {
        writeln!(out, "note: app '{client_id}' is declared in the config, which creates it again at the next start")?;
    }
    Ok(out)
}

async fn rotate_secret(store: &Store, client_id: &str) -> anyhow::Result<String> {
    let mut app = existing(store, client_id).await?;
    let secret = ferry_secrets::generate_secret();
    app.secret_hash = boot::hash(&secret).await?;
    app.updated_at = store.clock().now();
    store.upsert_app(&app).await.with_context(|| format!("cannot save app '{client_id}'"))?;
    let mut out = format!("new secret for app '{client_id}' (the old one no longer works)\n");
    writeln!(out, "client_id: {client_id}")?;
    writeln!(out, "secret:    {secret}")?;
    writeln!(out, "{SECRET_NOTE}")?;
    out.push_str(&config_note(&app, "secret"));
    Ok(out)
}

async fn set_enabled(store: &Store, client_id: &str, enabled: bool) -> anyhow::Result<String> {
    let mut app = existing(store, client_id).await?;
    let mut out = if app.enabled == enabled {
        format!("app '{client_id}' is already {}\n", if enabled { "enabled" } else { "disabled" })
    } else {
        app.enabled = enabled;
        app.updated_at = store.clock().now();
        store.upsert_app(&app).await.with_context(|| format!("cannot save app '{client_id}'"))?;
        if enabled {
            format!("enabled app '{client_id}': it can obtain tokens again\n")
        } else {
            format!(
                "disabled app '{client_id}': it can no longer obtain tokens \
                 (tokens already issued stay valid until they expire)\n"
            )
        }
    };
    out.push_str(&config_note(&app, "enabled flag"));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_checked_and_deduplicated() {
        let list = |r: &[&str]| r.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(roles(&list(&["reader", "writer", "reader"])).unwrap(), ["reader", "writer"]);
        let err = roles(&list(&["raeder"])).unwrap_err().to_string();
        assert_eq!(err, "unknown role 'raeder' (known: reader, writer, admin)");
        assert!(roles(&list(&[""])).is_err());
    }

    #[test]
    fn companies_are_checked_and_lower_cased() {
        assert_eq!(company("USMF").unwrap(), "usmf");
        assert!(company("us mf").is_err());
        assert!(company("").is_err());
    }
}
