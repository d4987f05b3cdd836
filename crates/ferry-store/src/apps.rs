//! Client apps and token signing keys.

use crate::error::{StoreError, StoreResult};
use crate::model::{App, AppOrigin, SigningKey};
use chrono::{DateTime, Utc};
use ferry_model::Value;
use ferry_sql::{ColType, Conn, RowExt};

const APP_COLUMNS: &str =
    "client_id, name, secret_hash, roles, default_company, enabled, origin, created_at, updated_at";
const APP_TYPES: [ColType; 9] = [
    ColType::Text,
    ColType::Text,
    ColType::Text,
    ColType::Text,
    ColType::Text,
    ColType::Bool,
    ColType::Text,
    ColType::DateTime,
    ColType::DateTime,
];

fn decode_app(r: &[Value]) -> StoreResult<App> {
    let roles: Vec<String> = serde_json::from_str(&r.text(3)?)
        .map_err(|e| StoreError::Corrupt { column: "ferry_apps.roles".into(), message: e.to_string() })?;
    Ok(App {
        client_id: r.text(0)?,
        name: r.text(1)?,
        secret_hash: r.text(2)?,
        roles,
        default_company: r.opt_text(4)?,
        enabled: r.boolean(5)?,
        origin: if r.text(6)? == "config" { AppOrigin::Config } else { AppOrigin::Cli },
        created_at: r.datetime(7)?,
        updated_at: r.datetime(8)?,
    })
}

/// Inserts or replaces an app by client id (the creation time of an existing app is kept).
pub(crate) async fn upsert_app(conn: &mut Conn, app: &App) -> StoreResult<()> {
    let sql = format!(
        "INSERT INTO ferry_apps ({APP_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (client_id) DO UPDATE SET name = excluded.name, secret_hash = excluded.secret_hash, \
         roles = excluded.roles, default_company = excluded.default_company, enabled = excluded.enabled, \
         origin = excluded.origin, updated_at = excluded.updated_at"
    );
    conn.execute(
        &sql,
        vec![
            Value::String(app.client_id.clone()),
            Value::String(app.name.clone()),
            Value::String(app.secret_hash.clone()),
            Value::String(serde_json::to_string(&app.roles).expect("strings serialize")),
            app.default_company.clone().map_or(Value::Null, Value::String),
            Value::Bool(app.enabled),
            Value::String(app.origin.as_str().into()),
            Value::DateTime(app.created_at),
            Value::DateTime(app.updated_at),
        ],
    )
    .await?;
    Ok(())
}

pub(crate) async fn get_app(conn: &mut Conn, client_id: &str) -> StoreResult<Option<App>> {
    let sql = format!("SELECT {APP_COLUMNS} FROM ferry_apps WHERE client_id = $1");
    let rows = conn.fetch(&sql, vec![Value::String(client_id.into())], &APP_TYPES).await?;
    rows.first().map(|r| decode_app(r)).transpose()
}

pub(crate) async fn list_apps(conn: &mut Conn) -> StoreResult<Vec<App>> {
    let sql = format!("SELECT {APP_COLUMNS} FROM ferry_apps ORDER BY client_id");
    let rows = conn.fetch(&sql, (), &APP_TYPES).await?;
    rows.iter().map(|r| decode_app(r)).collect()
}

pub(crate) async fn delete_app(conn: &mut Conn, client_id: &str) -> StoreResult<bool> {
    let n = conn.execute("DELETE FROM ferry_apps WHERE client_id = $1", vec![Value::String(client_id.into())]).await?;
    Ok(n > 0)
}

const KEY_TYPES: [ColType; 6] =
    [ColType::Text, ColType::Text, ColType::Text, ColType::Text, ColType::DateTime, ColType::DateTime];

pub(crate) async fn insert_signing_key(conn: &mut Conn, key: &SigningKey) -> StoreResult<()> {
    conn.execute(
        "INSERT INTO ferry_signing_keys (kid, algorithm, private_key, public_jwk, created_at, retired_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
        vec![
            Value::String(key.kid.clone()),
            Value::String(key.algorithm.clone()),
            Value::String(key.private_key_encrypted.clone()),
            Value::String(key.public_jwk.clone()),
            Value::DateTime(key.created_at),
            key.retired_at.map_or(Value::Null, Value::DateTime),
        ],
    )
    .await?;
    Ok(())
}

/// All signing keys, newest first.
pub(crate) async fn list_signing_keys(conn: &mut Conn) -> StoreResult<Vec<SigningKey>> {
    let rows = conn
        .fetch(
            "SELECT kid, algorithm, private_key, public_jwk, created_at, retired_at FROM ferry_signing_keys \
             ORDER BY created_at DESC, kid DESC",
            (),
            &KEY_TYPES,
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(SigningKey {
                kid: r.text(0)?,
                algorithm: r.text(1)?,
                private_key_encrypted: r.text(2)?,
                public_jwk: r.text(3)?,
                created_at: r.datetime(4)?,
                retired_at: r.opt_datetime(5)?,
            })
        })
        .collect()
}

/// Marks every active key but `keep_kid` retired at `at`.
pub(crate) async fn retire_signing_keys(conn: &mut Conn, keep_kid: &str, at: DateTime<Utc>) -> StoreResult<u64> {
    conn.execute(
        "UPDATE ferry_signing_keys SET retired_at = $1 WHERE retired_at IS NULL AND kid <> $2",
        vec![Value::DateTime(at), Value::String(keep_kid.into())],
    )
    .await
    .map_err(Into::into)
}

/// Removes retired keys whose tokens have all expired.
pub(crate) async fn purge_signing_keys(conn: &mut Conn, retired_before: DateTime<Utc>) -> StoreResult<u64> {
    conn.execute(
        "DELETE FROM ferry_signing_keys WHERE retired_at IS NOT NULL AND retired_at < $1",
        vec![Value::DateTime(retired_before)],
    )
    .await
    .map_err(Into::into)
}
