//! The other admin commands: `ferry keys rotate`, `ferry entities check|list`
//! and `ferry openapi`. Each answers what to print on stdout.

use std::fmt::Write as _;
use std::sync::Arc;

use anyhow::{Context, anyhow};
use ferry_config::Config;
use ferry_model::{Catalog, Entity};
use serde_json::json;

use crate::boot;
use crate::cli::{EntitiesCommand, KeysCommand};
use ferry_domain::SystemClock;

pub(crate) async fn keys(config: &Config, env: &[(String, String)], command: KeysCommand) -> anyhow::Result<String> {
    match command {
        KeysCommand::Rotate => {
            let store = boot::open_store(config, SystemClock::shared()).await?;
            let rotated = async {
                let tokens = boot::token_service(store.clone(), config, env, &config.public_url).await?;
                tokens.rotate_signing_key().await.context("cannot rotate the signing key")
            }
            .await;
            store.close().await;
            let kid = rotated?;
            Ok(format!(
                "new signing key: {kid}\n\
                 tokens signed with older keys stay valid until they expire; \
                 running servers start signing with the new key within a minute\n"
            ))
        }
    }
}

pub(crate) fn entities(config: &Config, command: EntitiesCommand) -> anyhow::Result<String> {
    let dir = config.entities_dir.as_deref();
    let (sources, custom_files) = boot::catalog_sources(dir)?;
    let catalog = Catalog::build(&sources).map_err(|e| anyhow!("invalid entity definition: {e}"))?;
    match command {
        EntitiesCommand::Check => {
            let standard: Vec<String> = ferry_model::standard_sources().into_iter().map(|s| s.origin).collect();
            let custom = catalog.entities().iter().filter(|e| !standard.contains(&e.origin)).count();
            let mut out = format!(
                "entity catalog OK: {} entities ({} standard, {custom} custom), {} enums\n",
                catalog.entities().len(),
                catalog.entities().len() - custom,
                catalog.enums().len(),
            );
            if let Some(dir) = dir {
                writeln!(out, "custom definitions: {custom_files} file(s) in {}", dir.display())?;
            }
            Ok(out)
        }
        EntitiesCommand::List { json } if json => {
            let list: Vec<_> = catalog
                .entities()
                .iter()
                .map(|e| {
                    json!({
                        "collection": e.collection,
                        "label": e.label,
                        "public_name": e.public_name,
                        "key": key_names(e),
                        "fields": e.fields.len(),
                        "company_specific": e.company_specific,
                        "origin": e.origin,
                    })
                })
                .collect();
            Ok(format!("{}\n", serde_json::Value::Array(list)))
        }
        EntitiesCommand::List { .. } => {
            let header = ["COLLECTION", "LABEL", "KEY", "FIELDS", "COMPANY"].map(str::to_owned).to_vec();
            let rows = catalog.entities().iter().map(|e| {
                vec![
                    e.collection.clone(),
                    e.label.clone(),
                    key_names(e).join(","),
                    e.fields.len().to_string(),
                    if e.company_specific { "yes" } else { "no" }.to_owned(),
                ]
            });
            Ok(crate::table::render(header, rows))
        }
    }
}

/// The natural key fields, or the primary id for entities keyed by a GUID.
fn key_names(entity: &Entity) -> Vec<String> {
    let key: Vec<String> = entity.key_fields().map(|f| f.name.clone()).collect();
    match entity.primary_id {
        Some(id) if key.is_empty() => vec![entity.fields[id].name.clone()],
        _ => key,
    }
}

pub(crate) async fn openapi(config: &Config, env: &[(String, String)]) -> anyhow::Result<String> {
    let catalog = Arc::new(boot::build_catalog(config.entities_dir.as_deref())?);
    let store = boot::open_store(config, SystemClock::shared()).await?;
    let document = async {
        let tokens = boot::token_service(store.clone(), config, env, &config.public_url).await?;
        let settings = boot::api_settings(config, &config.public_url);
        let state = ferry_api::ApiState::new(store.clone(), catalog, tokens, settings, ferry_api::install_metrics());
        anyhow::Ok(ferry_api::openapi_document(state))
    }
    .await;
    store.close().await;
    Ok(format!("{}\n", serde_json::to_string_pretty(&document?)?))
}
