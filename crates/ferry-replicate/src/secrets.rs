//! A profile's target connection string: encrypted with the master key when a profile is
//! saved, decrypted and resolved (an `env:VAR` reference reads the environment) whenever the
//! engine or the service connects. Shared by both, so neither imports from the other.

use crate::service::ReplicationError;
use ferry_domain::{ConnectionString, ProfileDefinition};
use ferry_secrets::MasterKey;
use ferry_store::StoredProfile;
use ferry_target::TargetSpec;

/// What a connection string is encrypted for (bound into the ciphertext).
const CONNECTION_PURPOSE: &str = "ferry-profile-connection";

pub(crate) fn encrypt(master: &MasterKey, connection: &ConnectionString) -> String {
    master.encrypt(CONNECTION_PURPOSE, connection.as_reference().as_bytes())
}

pub(crate) fn decrypt(master: &MasterKey, stored: &StoredProfile) -> Result<ConnectionString, ReplicationError> {
    let plain = master
        .decrypt(CONNECTION_PURPOSE, &stored.connection_encrypted)
        .map_err(|e| ReplicationError::Secret(e.to_string()))?;
    let text =
        String::from_utf8(plain).map_err(|_| ReplicationError::Secret("connection string is not text".into()))?;
    Ok(ConnectionString::from_reference(&text))
}

/// Where a profile writes: its definition with its connection string resolved.
pub(crate) fn target_spec(
    definition: &ProfileDefinition,
    connection: &ConnectionString,
    env: &[(String, String)],
) -> Result<TargetSpec, ReplicationError> {
    Ok(TargetSpec {
        kind: definition.target_kind,
        connection_string: connection.resolve(env).map_err(ReplicationError::Secret)?,
        schema: definition.schema_name.clone(),
        table_prefix: definition.table_prefix.clone(),
        write_delete_log: definition.write_delete_log,
    })
}

/// A stored profile's target.
pub(crate) fn stored_target_spec(
    master: &MasterKey,
    stored: &StoredProfile,
    env: &[(String, String)],
) -> Result<TargetSpec, ReplicationError> {
    target_spec(&stored.profile.definition, &decrypt(master, stored)?, env)
}
