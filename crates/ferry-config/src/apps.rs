//! `[[apps]]`: client apps declared in the config and applied at start-up.
//! The file form ([`AppEntry`]) is resolved into [`AppDecl`]: defaults
//! filled in, roles checked, `env:VAR` secrets read from the environment.

use serde::Deserialize;

use crate::error::{KeyPath, Problem};
use crate::secret::AppSecret;
use crate::throttle::LimitsEntry;
use crate::validate::{company, identifier, not_blank};

/// Roles an app may hold.
pub const KNOWN_ROLES: &[&str] = &["reader", "writer", "admin"];

/// A client app to create or update at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppDecl {
    /// 1..=100 characters from `[A-Za-z0-9._-]`.
    pub client_id: String,
    /// Display name; defaults to `client_id`.
    pub name: String,
    pub secret: AppSecret,
    /// Each one of [`KNOWN_ROLES`]; never empty.
    pub roles: Vec<String>,
    /// Lower-case company id, if the app has one.
    pub default_company: Option<String>,
    pub enabled: bool,
}

/// An `[[apps]]` entry as written in the file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub(crate) struct AppEntry {
    client_id: String,
    #[serde(default)]
    name: Option<String>,
    secret: String,
    #[serde(default)]
    roles: Option<Vec<String>>,
    #[serde(default)]
    default_company: Option<String>,
    #[serde(default = "enabled_by_default")]
    enabled: bool,
    /// Throttle limits of its own (`[throttle]` holds the rest); kept apart by [`take_throttles`].
    #[serde(default)]
    throttle: Option<LimitsEntry>,
}

fn enabled_by_default() -> bool {
    true
}

/// Takes the `throttle` tables out of `entries`: each with its app's client id and key path.
pub(crate) fn take_throttles(entries: &mut [AppEntry], at: &KeyPath) -> Vec<(String, KeyPath, LimitsEntry)> {
    let mut throttles = Vec::new();
    for (i, entry) in entries.iter_mut().enumerate() {
        if let Some(limits) = entry.throttle.take() {
            throttles.push((entry.client_id.clone(), at.index(i).key("throttle"), limits));
        }
    }
    throttles
}

/// Resolve every entry; client ids must be unique.
pub(crate) fn resolve_apps(
    entries: Vec<AppEntry>,
    env: &[(String, String)],
    at: &KeyPath,
) -> Result<Vec<AppDecl>, Problem> {
    let mut apps: Vec<AppDecl> = Vec::with_capacity(entries.len());
    for (i, entry) in entries.into_iter().enumerate() {
        let at = at.index(i);
        let app = entry.resolve(env, &at)?;
        if let Some(first) = apps.iter().position(|a| a.client_id == app.client_id) {
            return Err(Problem::new(
                &at.key("client_id"),
                format!("duplicate client_id '{}' (also declared by apps[{first}])", app.client_id),
            ));
        }
        apps.push(app);
    }
    Ok(apps)
}

impl AppEntry {
    fn resolve(self, env: &[(String, String)], at: &KeyPath) -> Result<AppDecl, Problem> {
        identifier(&self.client_id, 100, &at.key("client_id"))?;
        let name = match self.name {
            Some(name) => {
                not_blank(&name, &at.key("name"))?;
                name
            }
            None => self.client_id.clone(),
        };
        let secret = AppSecret::parse(&self.secret, env).map_err(|e| Problem::new(&at.key("secret"), e))?;
        let roles = match self.roles {
            None => vec!["writer".to_owned()],
            Some(roles) if roles.is_empty() => {
                return Err(Problem::new(
                    &at.key("roles"),
                    format!("must name at least one role ({})", KNOWN_ROLES.join(", ")),
                ));
            }
            Some(roles) => roles,
        };
        let mut unique: Vec<String> = Vec::with_capacity(roles.len());
        for (i, role) in roles.into_iter().enumerate() {
            if !KNOWN_ROLES.contains(&role.as_str()) {
                return Err(Problem::new(
                    &at.key("roles").index(i),
                    format!("unknown role '{role}' (known: {})", KNOWN_ROLES.join(", ")),
                ));
            }
            if !unique.contains(&role) {
                unique.push(role);
            }
        }
        let default_company = self.default_company.map(|c| company(&c, &at.key("default_company"))).transpose()?;
        Ok(AppDecl { client_id: self.client_id, name, secret, roles: unique, default_company, enabled: self.enabled })
    }
}
