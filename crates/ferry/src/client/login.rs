//! `ferry login`: adds or updates an environment of the client config from the flags (a flag
//! left out keeps what the file holds), gets a token to prove the profile works, and only then
//! writes the file (mode 0600) and caches the token. Never prints the secret or the token.

use std::io::BufRead;

use ferry_client::{ClientConfig, Connection, ENV_VAR, Retry, default_config_path, token_cache_dir};
use serde_json::json;

use super::args::LoginArgs;
use super::{CommandResult, Done, Exit, code, exit_of, json_text};
use crate::cli::GlobalArgs;

pub(crate) async fn login(args: LoginArgs, global: &GlobalArgs, env: &[(String, String)]) -> CommandResult {
    let path = default_config_path(env).map_err(exit_of)?;
    let mut config = ClientConfig::load(&path).map_err(exit_of)?;
    let from_var = env.iter().find(|(k, _)| k == ENV_VAR).map(|(_, v)| v.clone()).filter(|v| !v.is_empty());
    let name = global.env.clone().or(from_var).or_else(|| config.default.clone()).unwrap_or_else(|| "default".into());
    let mut profile = config.environments.get(&name).cloned().unwrap_or_default();
    let set = |field: &mut Option<String>, value: Option<String>| {
        if let Some(v) = value {
            *field = Some(v.trim().to_owned()).filter(|v| !v.is_empty());
        }
    };
    if let Some(url) = args.url {
        profile.url = url.trim().to_owned();
    }
    if let Some(id) = args.client_id {
        profile.client_id = id.trim().to_owned();
    }
    set(&mut profile.tenant, args.tenant);
    set(&mut profile.authority, args.authority);
    set(&mut profile.token_url, args.token_url);
    if args.scope.is_some() {
        profile.resource = None;
    }
    set(&mut profile.scope, args.scope);
    if args.resource.is_some() {
        profile.scope = None;
    }
    set(&mut profile.resource, args.resource);
    set(&mut profile.company, args.company);
    set(&mut profile.server, args.server);
    if let Some(var) = args.secret_env {
        profile.secret = Some(format!("env:{}", var.trim()));
    }
    if let Some(file) = args.secret_file {
        profile.secret = Some(format!("file:{}", file.display()));
    }
    if args.secret_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| Exit::new(code::FAILED, format!("cannot read the secret from standard input: {e}")))?;
        let secret = line.trim().to_owned();
        if secret.is_empty() {
            return Err(Exit::new(code::USAGE, "standard input held no secret"));
        }
        profile.secret = Some(secret);
    }
    if profile.url.is_empty() || profile.client_id.is_empty() {
        return Err(Exit::new(
            code::USAGE,
            format!(
                "environment '{name}' needs --url and --client-id (and a secret: --secret-env, --secret-file or --secret-stdin)"
            ),
        ));
    }
    let resolved = profile.resolve(&name, env).map_err(exit_of)?;
    let shown = json!({
        "environment": name,
        "url": resolved.url,
        "token_url": resolved.token_url,
        "client_id": resolved.client_id,
        "company": resolved.company,
        "config": path.display().to_string(),
    });
    let connection =
        Connection::new(resolved, Some(token_cache_dir(&path)), ferry_domain::SystemClock::shared(), Retry::default())
            .map_err(exit_of)?;
    // Prove the credentials: a fresh token, not a cached one.
    connection.tokens().invalidate().await;
    let (_, info) = connection.tokens().token_info(connection.http()).await.map_err(exit_of)?;
    config.environments.insert(name.clone(), profile);
    if args.default || config.default.is_none() {
        config.default = Some(name.clone());
    }
    config.save(&path).map_err(exit_of)?;
    let mut shown = shown;
    shown["expires_at"] = json!(info.expires_at.to_rfc3339());
    shown["default"] = json!(config.default.as_deref() == Some(name.as_str()));
    if args.json {
        return Ok(Done::ok(json_text(&shown)));
    }
    Ok(Done::ok(format!(
        "logged in to '{name}' ({}) as {}; token valid until {}\nprofile saved in {}\n",
        shown["url"].as_str().unwrap_or_default(),
        shown["client_id"].as_str().unwrap_or_default(),
        info.expires_at.to_rfc3339(),
        path.display()
    )))
}
