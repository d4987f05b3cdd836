//! Where the blob store lives: a local directory (the default) or a bucket of an S3-compatible
//! object store that several ferry nodes share. `Debug` redacts the secret key.

use std::fmt;
use std::path::PathBuf;

/// The configuration of a [`BlobStore`](crate::BlobStore).
///
/// Deserialized with a `backend` tag, e.g. `{ backend = "local", dir = "/var/lib/ferry/blobs" }`
/// or `{ backend = "s3", bucket = "ferry", endpoint = "http://127.0.0.1:9000", allow_http = true }`.
#[derive(Clone, serde::Deserialize)]
#[serde(tag = "backend", rename_all = "lowercase")]
pub enum BlobConfig {
    /// Blobs are files under `dir` (created if missing). One node only.
    Local {
        /// The root directory; blob `a/b` is the file `<dir>/a/b`.
        dir: PathBuf,
    },
    /// Blobs are objects in an S3 bucket (AWS or any S3-compatible server), shared by all nodes.
    S3 {
        /// The bucket; it must exist (ferry does not create buckets).
        bucket: String,
        /// The server's URL, e.g. `http://127.0.0.1:9000`; `None` means AWS itself.
        #[serde(default)]
        endpoint: Option<String>,
        /// The region requests are signed for.
        #[serde(default = "default_region")]
        region: String,
        /// With `secret_access_key`: static credentials. Without them, the usual AWS sources
        /// that object_store looks at (instance metadata, web identity) are used.
        #[serde(default)]
        access_key_id: Option<String>,
        /// Never shown by `Debug`.
        #[serde(default)]
        secret_access_key: Option<String>,
        /// A folder inside the bucket that holds every ferry blob, e.g. `prod/ferry`.
        #[serde(default)]
        prefix: Option<String>,
        /// Allows a plain `http://` endpoint (test servers, a store on a private network).
        #[serde(default)]
        allow_http: bool,
    },
}

fn default_region() -> String {
    "us-east-1".to_owned()
}

impl fmt::Debug for BlobConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BlobConfig::Local { dir } => f.debug_struct("Local").field("dir", dir).finish(),
            BlobConfig::S3 { bucket, endpoint, region, access_key_id, secret_access_key, prefix, allow_http } => f
                .debug_struct("S3")
                .field("bucket", bucket)
                .field("endpoint", endpoint)
                .field("region", region)
                .field("access_key_id", access_key_id)
                .field("secret_access_key", &secret_access_key.as_ref().map(|_| "<redacted>"))
                .field("prefix", prefix)
                .field("allow_http", allow_http)
                .finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deserializes_both_backends_with_defaults() {
        let local: BlobConfig = toml::from_str(
            r#"backend = "local"
dir = "/tmp/blobs""#,
        )
        .unwrap();
        assert!(matches!(local, BlobConfig::Local { ref dir } if dir == &PathBuf::from("/tmp/blobs")));

        let s3: BlobConfig = toml::from_str(
            r#"backend = "s3"
bucket = "ferry""#,
        )
        .unwrap();
        let BlobConfig::S3 { bucket, endpoint, region, access_key_id, secret_access_key, prefix, allow_http } = s3
        else {
            panic!("expected S3");
        };
        assert_eq!(bucket, "ferry");
        assert_eq!(region, "us-east-1");
        assert!(endpoint.is_none() && access_key_id.is_none() && secret_access_key.is_none() && prefix.is_none());
        assert!(!allow_http);
    }

    #[test]
    fn debug_redacts_the_secret() {
        let config = BlobConfig::S3 {
            bucket: "b".into(),
            endpoint: Some("http://127.0.0.1:9000".into()),
            region: default_region(),
            access_key_id: Some("AKIDEXAMPLE".into()),
            secret_access_key: Some("wJalrXUtnFEMI".into()),
            prefix: None,
            allow_http: true,
        };
        let shown = format!("{config:?}");
        assert!(!shown.contains("wJalrXUtnFEMI"), "{shown}");
        assert!(shown.contains("<redacted>") && shown.contains("AKIDEXAMPLE"), "{shown}");
    }
}
