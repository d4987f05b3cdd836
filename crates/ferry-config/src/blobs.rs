//! `[blobs]`: where ferry keeps files (enqueued imports, rejected-rows files). The file form
//! ([`BlobsEntry`]) is resolved into the blob store's own configuration
//! (`ferry_domain::BlobStoreConfig`): the kind picked, its keys checked (keys of the other kind
//! are errors, not silently ignored), the local directory defaulted to `<data_dir>/blobs`, and
//! the secret key read (`env:VAR` from the environment, `file:/path` from the file).

use std::path::{Path, PathBuf};

use ferry_domain::{BlobStoreConfig, S3_REGION_DEFAULT, S3Config, Secret};
use serde::Deserialize;

use crate::error::{KeyPath, Problem};
use crate::secret::SecretRef;
use crate::validate::{http_url, not_blank};

/// `[blobs]` as written in the file.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, expecting = "a table")]
pub(crate) struct BlobsEntry {
    kind: Option<String>,
    dir: Option<String>,
    bucket: Option<String>,
    endpoint: Option<String>,
    region: Option<String>,
    access_key_id: Option<String>,
    secret_access_key: Option<String>,
    prefix: Option<String>,
    allow_http: Option<bool>,
}

impl BlobsEntry {
    /// Resolve against the data dir (the local default) and `env` (`env:VAR` secret keys).
    pub(crate) fn resolve(
        self,
        data_dir: &Path,
        env: &[(String, String)],
        at: &KeyPath,
    ) -> Result<BlobStoreConfig, Problem> {
        let kind = self.kind.as_deref().map(|k| k.trim().to_ascii_lowercase());
        match kind.as_deref() {
            None | Some("local") => self.resolve_local(data_dir, at),
            Some("s3") => self.resolve_s3(env, at),
            Some(_) => Err(Problem::new(
                &at.key("kind"),
                format!("unknown kind '{}' (known: local, s3)", self.kind.unwrap_or_default()),
            )),
        }
    }

    fn resolve_local(self, data_dir: &Path, at: &KeyPath) -> Result<BlobStoreConfig, Problem> {
        let s3_only = [
            ("bucket", self.bucket.is_some()),
            ("endpoint", self.endpoint.is_some()),
            ("region", self.region.is_some()),
            ("access_key_id", self.access_key_id.is_some()),
            ("secret_access_key", self.secret_access_key.is_some()),
            ("prefix", self.prefix.is_some()),
            ("allow_http", self.allow_http.is_some()),
        ];
        if let Some((key, _)) = s3_only.iter().find(|(_, set)| *set) {
            return Err(Problem::new(
                &at.key(key),
                "only applies to kind = \"s3\"; set blobs.kind = \"s3\" or remove the key",
            ));
        }
        let dir = match self.dir {
            Some(dir) => {
                not_blank(&dir, &at.key("dir"))?;
                PathBuf::from(dir)
            }
            None => data_dir.join("blobs"),
        };
        Ok(BlobStoreConfig::Local { dir })
    }

    fn resolve_s3(self, env: &[(String, String)], at: &KeyPath) -> Result<BlobStoreConfig, Problem> {
        if self.dir.is_some() {
            return Err(Problem::new(&at.key("dir"), "only applies to kind = \"local\"; remove it for kind = \"s3\""));
        }
        let Some(bucket) = self.bucket else {
            return Err(Problem::new(&at.key("bucket"), "kind = \"s3\" needs the bucket to keep files in"));
        };
        not_blank(&bucket, &at.key("bucket"))?;
        let allow_http = self.allow_http.unwrap_or(false);
        let endpoint = match self.endpoint.filter(|e| !e.trim().is_empty()) {
            Some(endpoint) => {
                let endpoint = http_url(endpoint.trim(), &at.key("endpoint"))?;
                if endpoint.starts_with("http://") && !allow_http {
                    return Err(Problem::new(
                        &at.key("endpoint"),
                        format!("'{endpoint}' is plain http; use https or set blobs.allow_http = true"),
                    ));
                }
                Some(endpoint)
            }
            None => None,
        };
        let region = self.region.unwrap_or_else(|| S3_REGION_DEFAULT.to_owned());
        not_blank(&region, &at.key("region"))?;
        let secret_access_key = self
            .secret_access_key
            .map(|text| secret_key(&text, env).map_err(|e| Problem::new(&at.key("secret_access_key"), e)))
            .transpose()?;
        match (&self.access_key_id, &secret_access_key) {
            (Some(_), None) => {
                return Err(Problem::new(&at.key("access_key_id"), "set secret_access_key with it, or neither"));
            }
            (None, Some(_)) => {
                return Err(Problem::new(&at.key("secret_access_key"), "set access_key_id with it, or neither"));
            }
            _ => {}
        }
        if let Some(id) = &self.access_key_id {
            not_blank(id, &at.key("access_key_id"))?;
        }
        let prefix = match self.prefix {
            Some(prefix) => {
                let trimmed = prefix.trim().trim_matches('/');
                if trimmed.is_empty() { None } else { Some(trimmed.to_owned()) }
            }
            None => None,
        };
        Ok(BlobStoreConfig::S3(S3Config {
            bucket: bucket.trim().to_owned(),
            endpoint,
            region: region.trim().to_owned(),
            access_key_id: self.access_key_id.map(|id| id.trim().to_owned()),
            secret_access_key,
            prefix,
            allow_http,
        }))
    }
}

/// The secret key: from `env:VAR` (set and not empty), `file:/path`, or the text itself.
fn secret_key(text: &str, env: &[(String, String)]) -> Result<Secret, String> {
    let value = match SecretRef::parse(text.trim())? {
        SecretRef::Env(var) => match env.iter().rev().find(|(name, _)| *name == var) {
            None => return Err(format!("environment variable {var} is not set")),
            Some((_, value)) if value.trim().is_empty() => return Err(format!("environment variable {var} is empty")),
            Some((_, value)) => value.clone(),
        },
        SecretRef::File(path) => std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read the secret key file {}: {e}", path.display()))?,
        SecretRef::Inline(text) => text,
    };
    Ok(Secret::new(value.trim()))
}
