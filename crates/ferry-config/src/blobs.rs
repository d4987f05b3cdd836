//! `[blobs]`: where ferry keeps files (enqueued imports, rejected-rows files). The file form
//! ([`BlobsEntry`]) is resolved into [`BlobsConfig`]: the kind picked, its keys checked (keys of
//! the other kind are errors, not silently ignored), the local directory defaulted to
//! `<data_dir>/blobs`, and an `env:VAR` secret key checked to be set.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{KeyPath, Problem};
use crate::secret::SecretRef;
use crate::validate::{http_url, not_blank};

/// The region S3 requests are signed for when none is configured.
pub const BLOBS_S3_REGION_DEFAULT: &str = "us-east-1";

/// Where blobs live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobsConfig {
    /// Files under `dir` (one node only).
    Local { dir: PathBuf },
    /// Objects in a bucket of an S3-compatible store, shared by every node.
    S3(S3Blobs),
}

/// `[blobs]` with `kind = "s3"`. `Debug` never shows the secret key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Blobs {
    pub bucket: String,
    /// `http(s)` URL of the server; `None` means AWS itself.
    pub endpoint: Option<String>,
    pub region: String,
    /// Static credentials (set together with `secret_access_key`); without them the usual AWS
    /// sources (instance metadata, web identity) apply.
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<SecretRef>,
    /// A folder inside the bucket for every ferry blob.
    pub prefix: Option<String>,
    /// Whether a plain `http://` endpoint is allowed.
    pub allow_http: bool,
}

impl BlobsConfig {
    /// `local dir /x` or `s3 bucket b at http://…`, for the start-up summary.
    pub fn describe(&self) -> String {
        match self {
            BlobsConfig::Local { dir } => format!("local dir {}", dir.display()),
            BlobsConfig::S3(s3) => match &s3.endpoint {
                Some(endpoint) => format!("s3 bucket {} at {endpoint}", s3.bucket),
                None => format!("s3 bucket {} (AWS, {})", s3.bucket, s3.region),
            },
        }
    }
}

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
    ) -> Result<BlobsConfig, Problem> {
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

    fn resolve_local(self, data_dir: &Path, at: &KeyPath) -> Result<BlobsConfig, Problem> {
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
        Ok(BlobsConfig::Local { dir })
    }

    fn resolve_s3(self, env: &[(String, String)], at: &KeyPath) -> Result<BlobsConfig, Problem> {
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
        let region = self.region.unwrap_or_else(|| BLOBS_S3_REGION_DEFAULT.to_owned());
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
        Ok(BlobsConfig::S3(S3Blobs {
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

/// A secret key reference; `env:VAR` must name a variable that is set and not empty.
fn secret_key(text: &str, env: &[(String, String)]) -> Result<SecretRef, String> {
    let secret = SecretRef::parse(text.trim())?;
    if let SecretRef::Env(var) = &secret {
        match env.iter().rev().find(|(name, _)| name == var) {
            None => return Err(format!("environment variable {var} is not set")),
            Some((_, value)) if value.trim().is_empty() => return Err(format!("environment variable {var} is empty")),
            Some(_) => {}
        }
    }
    Ok(secret)
}
