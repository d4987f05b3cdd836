//! The blob store's behaviour (streamed puts in `blobs/puts.rs`; reads by range and condition,
//! and staged blocks, in `blobs/reads_and_blocks.rs`), every test on both backends: a local directory (a tempdir) and S3
//! against a real `moto_server` started for the test (`FERRY_TEST_MOTO_SERVER`, else
//! `moto_server` on PATH; missing → skipped with a loud message, or failed when `CI` is set).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use ferry_blob::{BlobError, BlobStore};
use ferry_domain::{BlobStoreConfig, S3Config, Secret};
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use sha2::{Digest, Sha256};

const MIB: u64 = 1024 * 1024;
const CHUNK: usize = 64 * 1024;
const INSTALL_HINT: &str = "install with pip install 'moto[server]==5.2.5'";

// ---------------------------------------------------------------------------------------------
// Harness: a fixture per backend, and a macro that runs a test body on both.

/// Runs each named `async fn(Fixture)` twice: `<name>::local` and `<name>::s3`.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn local() {
                super::$name(super::Fixture::local().await).await;
            }

            #[tokio::test]
            async fn s3() {
                if let Some(fixture) = super::Fixture::s3().await {
                    super::$name(fixture).await;
                }
            }
        }
    )*};
}

on_both_backends!(
    local_copy_gives_a_readable_file,
    get_stream_returns_the_bytes,
    size_and_delete,
    invalid_keys_are_rejected,
    writes_are_durable_and_visible_to_a_second_store,
    put_file_copies_a_file,
    put_file_moving_takes_the_file,
    clones_share_the_store,
    open_fails_clearly,
);

#[path = "blobs/puts.rs"]
mod puts;
#[path = "blobs/reads_and_blocks.rs"]
mod reads_and_blocks;

struct Fixture {
    store: BlobStore,
    config: BlobStoreConfig,
    backend: Backend,
}

enum Backend {
    Local(tempfile::TempDir),
    S3 { moto: Moto, bucket: String },
}

impl Fixture {
    async fn local() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let config = BlobStoreConfig::Local { dir: dir.path().join("blobs") };
        let store = BlobStore::open(&config).await.unwrap();
        Fixture { store, config, backend: Backend::Local(dir) }
    }

    async fn s3() -> Option<Fixture> {
        let moto = Moto::start().await?;
        let bucket = format!("ferry-test-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let response = reqwest::Client::new().put(format!("{}/{bucket}", moto.url())).send().await.unwrap();
        assert!(response.status().is_success(), "creating bucket {bucket}: {}", response.status());
        let config = s3_config(&moto.url(), &bucket);
        let store = BlobStore::open(&config).await.unwrap();
        Some(Fixture { store, config, backend: Backend::S3 { moto, bucket } })
    }

    fn is_local(&self) -> bool {
        matches!(self.backend, Backend::Local(_))
    }

    /// What the test can look at while a put runs, to see that it streams.
    fn probe(&self) -> Probe {
        match &self.backend {
            Backend::Local(_) => Probe::Local { tmp: self.local_root().join(".tmp") },
            Backend::S3 { moto, bucket } => Probe::S3 { bucket_url: format!("{}/{bucket}", moto.url()) },
        }
    }

    fn local_root(&self) -> PathBuf {
        match &self.config {
            BlobStoreConfig::Local { dir } => dir.clone(),
            BlobStoreConfig::S3(_) => panic!("not a local store"),
        }
    }

    /// Puts under way: temporary files (local), unfinished multipart uploads (S3).
    async fn in_progress(&self) -> Vec<String> {
        match self.probe() {
            Probe::Local { tmp } => dir_entries(&tmp),
            probe @ Probe::S3 { .. } => probe.uploads_in_progress().await,
        }
    }

    /// Asserts no put left anything behind.
    async fn assert_no_leftovers(&self) {
        assert_eq!(self.in_progress().await, Vec::<String>::new(), "temporary files or open multipart uploads left");
    }
}

fn s3_config(url: &str, bucket: &str) -> BlobStoreConfig {
    BlobStoreConfig::S3(S3Config {
        endpoint: Some(url.to_owned()),
        access_key_id: Some("test".to_owned()),
        secret_access_key: Some(Secret::new("test")),
        prefix: Some("ferry/test".to_owned()),
        allow_http: true,
        ..S3Config::new(bucket)
    })
}

#[derive(Clone)]
enum Probe {
    Local { tmp: PathBuf },
    S3 { bucket_url: String },
}

impl Probe {
    /// Called by the body generator before it yields more: `produced` bytes are out so far.
    async fn check_streaming(&self, produced: u64) {
        match self {
            Probe::Local { tmp } => {
                // Each chunk is written before the next is asked for (tokio's File lags by one).
                let names = dir_entries(tmp);
                assert_eq!(names.len(), 1, "one temporary file while the put runs: {names:?}");
                let written = std::fs::metadata(tmp.join(&names[0])).unwrap().len();
                assert!(written + 2 * CHUNK as u64 >= produced, "only {written} of {produced} bytes reached the file");
            }
            Probe::S3 { .. } => {
                // Parts 1 (at 8 MiB) and 2 (at 16 MiB) are started; with at most two uploading,
                // the next chunk waited for one to finish: the server holds a part already.
                if produced == 18 * MIB {
                    let uploads = self.uploads_in_progress().await;
                    assert_eq!(uploads.len(), 1, "one multipart upload in progress: {uploads:?}");
                    assert!(self.parts_uploaded(&uploads[0]).await >= 1, "no part uploaded at {produced} bytes");
                }
            }
        }
    }

    /// `key\tuploadId` of each unfinished multipart upload in the bucket.
    async fn uploads_in_progress(&self) -> Vec<String> {
        let Probe::S3 { bucket_url } = self else { return Vec::new() };
        let xml = http_get(&format!("{bucket_url}?uploads")).await;
        xml.split("<Upload>")
            .skip(1)
            .map(|upload| format!("{}\t{}", xml_text(upload, "Key"), xml_text(upload, "UploadId")))
            .collect()
    }

    async fn parts_uploaded(&self, upload: &str) -> usize {
        let Probe::S3 { bucket_url } = self else { return 0 };
        let (key, id) = upload.split_once('\t').unwrap();
        let xml = http_get(&format!("{bucket_url}/{key}?uploadId={id}")).await;
        xml.matches("<Part>").count()
    }
}

async fn http_get(url: &str) -> String {
    let response = reqwest::get(url).await.unwrap();
    assert!(response.status().is_success(), "GET {url}: {}", response.status());
    response.text().await.unwrap()
}

fn xml_text<'a>(xml: &'a str, tag: &str) -> &'a str {
    let start = xml.find(&format!("<{tag}>")).unwrap() + tag.len() + 2;
    let end = xml[start..].find(&format!("</{tag}>")).unwrap() + start;
    &xml[start..end]
}

fn dir_entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

/// A `moto_server` child process on a free port, killed on drop.
struct Moto {
    child: Child,
    port: u16,
}

impl Moto {
    async fn start() -> Option<Moto> {
        let Some(program) = moto_program() else {
            if std::env::var_os("CI").is_some() {
                panic!(
                    "moto_server not found (FERRY_TEST_MOTO_SERVER is unset or wrong and it is not on PATH); \
                     CI needs it for the S3 blob tests: {INSTALL_HINT}"
                );
            }
            // Straight to stderr: the test harness captures `eprintln!` of passing tests.
            let warning = format!("\n*** SKIPPED: moto_server not found; {INSTALL_HINT} ***\n");
            let _ = std::io::Write::write_all(&mut std::io::stderr(), warning.as_bytes());
            return None;
        };
        // A port can be taken between choosing and binding it: try a few.
        for _ in 0..3 {
            if let Some(moto) = Moto::spawn(&program).await {
                return Some(moto);
            }
        }
        panic!("moto_server ({}) did not start on any of three ports", program.display());
    }

    async fn spawn(program: &Path) -> Option<Moto> {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", program.display()));
        let mut moto = Moto { child, port };
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if moto.child.try_wait().unwrap().is_some() {
                return None; // most likely the port was taken
            }
            if client.get(moto.url()).send().await.is_ok() {
                break;
            }
            assert!(Instant::now() < deadline, "moto_server did not answer on port {port} within 60 s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Whoever answered, it must be our child (not another test's server on a reused port).
        tokio::time::sleep(Duration::from_millis(200)).await;
        if moto.child.try_wait().unwrap().is_some() {
            return None;
        }
        Some(moto)
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn moto_program() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("FERRY_TEST_MOTO_SERVER") {
        let path = PathBuf::from(path);
        return path.is_file().then_some(path);
    }
    std::env::split_paths(&std::env::var_os("PATH")?).map(|dir| dir.join("moto_server")).find(|p| p.is_file())
}

// ---------------------------------------------------------------------------------------------
// Bodies: generated on demand, never held whole by the test.

/// The byte at `offset` of every generated body: varied, so a misplaced chunk changes the hash.
fn byte_at(offset: u64) -> u8 {
    (offset.wrapping_mul(2_654_435_761) >> 13) as u8 ^ (offset >> 16) as u8
}

fn chunk_at(offset: u64, len: usize) -> Bytes {
    (offset..offset + len as u64).map(byte_at).collect::<Vec<u8>>().into()
}

fn expected_sha256(len: u64) -> String {
    let mut hasher = Sha256::new();
    let mut offset = 0;
    while offset < len {
        let n = (len - offset).min(CHUNK as u64) as usize;
        hasher.update(chunk_at(offset, n));
        offset += n as u64;
    }
    hex(&hasher.finalize())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// How a generated body behaves.
#[derive(Clone, Default)]
struct BodySpec {
    /// Fail (like a client disconnecting) once this many bytes are out.
    fail_at: Option<u64>,
    /// Stop producing (without ending) once this many bytes are out, like a stalled client.
    stall_at: Option<u64>,
    /// Checked before each chunk after the first.
    probe: Option<Probe>,
    /// Counts the bytes handed out.
    produced: Arc<AtomicU64>,
}

fn body(len: u64, spec: BodySpec) -> BoxStream<'static, Result<Bytes, std::io::Error>> {
    futures::stream::unfold(0u64, move |offset| {
        let spec = spec.clone();
        async move {
            if let Some(probe) = &spec.probe
                && offset > 0
            {
                probe.check_streaming(offset).await;
            }
            if spec.stall_at.is_some_and(|at| offset >= at) {
                futures::future::pending::<()>().await;
            }
            if spec.fail_at.is_some_and(|at| offset >= at) {
                let error = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "client went away");
                return Some((Err(error), len));
            }
            if offset >= len {
                return None;
            }
            let n = (len - offset).min(CHUNK as u64) as usize;
            spec.produced.fetch_add(n as u64, Ordering::SeqCst);
            Some((Ok(chunk_at(offset, n)), offset + n as u64))
        }
    })
    .boxed()
}

fn small_body(data: &'static [u8]) -> BoxStream<'static, Result<Bytes, std::io::Error>> {
    futures::stream::iter(data.chunks(7).map(|c| Ok(Bytes::from_static(c)))).boxed()
}

async fn read_all(store: &BlobStore, key: &str) -> Vec<u8> {
    let chunks: Vec<Bytes> = store.get_stream(key).await.unwrap().try_collect().await.unwrap();
    chunks.concat()
}

fn assert_generated(data: &[u8], len: u64) {
    assert_eq!(data.len() as u64, len);
    if let Some(at) = data.iter().enumerate().position(|(i, b)| *b != byte_at(i as u64)) {
        panic!("byte {at} differs");
    }
}

// ---------------------------------------------------------------------------------------------
// The tests.

async fn local_copy_gives_a_readable_file(f: Fixture) {
    let len = 3 * MIB + 5;
    f.store.put_stream("copies/a", body(len, BodySpec::default()), u64::MAX).await.unwrap();
    let copy = f.store.local_copy("copies/a").await.unwrap();
    let mut data = Vec::new();
    copy.open().unwrap().read_to_end(&mut data).unwrap();
    assert_generated(&data, len);

    let path = copy.path().to_path_buf();
    if f.is_local() {
        assert_eq!(path, f.local_root().join("copies/a"), "the local store hands out the blob itself");
        drop(copy);
        assert!(path.is_file(), "the blob stays");
    } else {
        assert!(path.starts_with(std::env::temp_dir()), "{}", path.display());
        drop(copy);
        assert!(!path.exists(), "the downloaded copy is removed on drop");
    }
    assert_eq!(f.store.size("copies/a").await.unwrap(), Some(len));

    let missing = f.store.local_copy("copies/missing").await;
    assert!(matches!(&missing, Err(BlobError::NotFound(k)) if k == "copies/missing"), "{missing:?}");
}

async fn get_stream_returns_the_bytes(f: Fixture) {
    let len = 3 * MIB + 123;
    f.store.put_stream("streams/a", body(len, BodySpec::default()), u64::MAX).await.unwrap();
    let mut stream = f.store.get_stream("streams/a").await.unwrap();
    let (mut total, mut chunks) = (0u64, 0);
    let mut hasher = Sha256::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        total += chunk.len() as u64;
        chunks += 1;
        hasher.update(&chunk);
    }
    assert_eq!(total, len);
    assert!(chunks > 1, "the blob arrives in several chunks");
    assert_eq!(hex(&hasher.finalize()), expected_sha256(len));

    let missing = f.store.get_stream("streams/missing").await.map(|_| ());
    assert!(matches!(missing, Err(BlobError::NotFound(_))), "{missing:?}");
    let missing_dir = f.store.get_stream("streams/a/below-a-file").await.map(|_| ());
    assert!(matches!(missing_dir, Err(BlobError::NotFound(_))), "{missing_dir:?}");
}

async fn size_and_delete(f: Fixture) {
    let key = "packages/2026/11/22/p1";
    assert_eq!(f.store.size(key).await.unwrap(), None);
    assert!(!f.store.delete(key).await.unwrap());
    f.store.put_stream(key, small_body(b"package bytes"), 1024).await.unwrap();
    assert_eq!(f.store.size(key).await.unwrap(), Some(13));
    // Overwriting replaces.
    f.store.put_stream(key, small_body(b"other"), 1024).await.unwrap();
    assert_eq!(f.store.size(key).await.unwrap(), Some(5));
    assert!(f.store.delete(key).await.unwrap());
    assert_eq!(f.store.size(key).await.unwrap(), None);
    assert!(!f.store.delete(key).await.unwrap());
    // A "directory" of other blobs is not a blob.
    f.store.put_stream("packages/2026/x", small_body(b"x"), 10).await.unwrap();
    assert_eq!(f.store.size("packages/2026").await.unwrap(), None);
}

async fn invalid_keys_are_rejected(f: Fixture) {
    let file = tempfile::NamedTempFile::new().unwrap();
    for key in ["", "/etc/passwd", "a/../../b", "..", "a/./b", "a//b", "a/", ".tmp/x", "a b", "a\\b", "a%2Fb"] {
        let invalid = |r: Result<(), BlobError>| matches!(r, Err(BlobError::InvalidKey(k)) if k == key);
        assert!(invalid(f.store.put_stream(key, small_body(b"x"), 10).await.map(|_| ())), "put_stream {key:?}");
        assert!(invalid(f.store.put_file(key, file.path()).await.map(|_| ())), "put_file {key:?}");
        assert!(invalid(f.store.local_copy(key).await.map(|_| ())), "local_copy {key:?}");
        assert!(invalid(f.store.get_stream(key).await.map(|_| ())), "get_stream {key:?}");
        assert!(invalid(f.store.size(key).await.map(|_| ())), "size {key:?}");
        assert!(invalid(f.store.delete(key).await.map(|_| ())), "delete {key:?}");
    }
    if f.is_local() {
        let root = f.local_root();
        assert_eq!(dir_entries(&root), vec![".tmp"], "nothing was written");
    }
}

async fn writes_are_durable_and_visible_to_a_second_store(f: Fixture) {
    let key = "messages/2026/11/22/durable";
    let len = 2 * MIB + 1;
    let info = f.store.put_stream(key, body(len, BodySpec::default()), u64::MAX).await.unwrap();
    if f.is_local() {
        // Right after the put: the final file in place, complete, and nothing in .tmp.
        let data = std::fs::read(f.local_root().join(key)).unwrap();
        assert_generated(&data, len);
    }
    f.assert_no_leftovers().await;

    // Another handle (another node, or this one after a restart) sees the blob.
    let other = BlobStore::open(&f.config).await.unwrap();
    assert_eq!(other.size(key).await.unwrap(), Some(len));
    let mut hasher = Sha256::new();
    hasher.update(read_all(&other, key).await);
    assert_eq!(hex(&hasher.finalize()), info.sha256);
}

/// A scratch file of `len` generated bytes ([`chunk_at`]), outside the store's directory.
fn generated_file(len: u64) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    let mut offset = 0;
    while offset < len {
        let n = (len - offset).min(CHUNK as u64) as usize;
        std::io::Write::write_all(&mut file, &chunk_at(offset, n)).unwrap();
        offset += n as u64;
    }
    file
}

async fn put_file_copies_a_file(f: Fixture) {
    let len = MIB + 77;
    let file = generated_file(len);
    let info = f.store.put_file("files/a", file.path()).await.unwrap();
    assert_eq!((info.size, info.sha256), (len, expected_sha256(len)));
    assert_generated(&read_all(&f.store, "files/a").await, len);
    assert!(file.path().is_file(), "the source file stays");

    let missing = f.store.put_file("files/b", Path::new("/nonexistent/ferry-blob-test")).await;
    match missing {
        Err(BlobError::Io(e)) => assert!(e.to_string().contains("/nonexistent/ferry-blob-test"), "{e}"),
        other => panic!("expected an I/O error naming the file, got {other:?}"),
    }
    assert_eq!(f.store.size("files/b").await.unwrap(), None);
}

async fn put_file_moving_takes_the_file(f: Fixture) {
    let len = MIB + 77;
    let path = generated_file(len).into_temp_path();
    assert_eq!(f.store.put_file_moving("files/nested/a", &path).await.unwrap(), len);
    assert_generated(&read_all(&f.store, "files/nested/a").await, len);
    assert_eq!(f.store.size("files/nested/a").await.unwrap(), Some(len));
    assert!(!path.exists(), "the source file is moved or removed");
    f.assert_no_leftovers().await;

    let missing = f.store.put_file_moving("files/b", Path::new("/nonexistent/ferry-blob-test")).await;
    match missing {
        Err(BlobError::Io(e)) => assert!(e.to_string().contains("/nonexistent/ferry-blob-test"), "{e}"),
        other => panic!("expected an I/O error naming the file, got {other:?}"),
    }
    assert_eq!(f.store.size("files/b").await.unwrap(), None);
}

async fn clones_share_the_store(f: Fixture) {
    let mut tasks = Vec::new();
    for i in 0..8u64 {
        let store = f.store.clone();
        tasks.push(tokio::spawn(async move {
            let key = format!("parallel/{i}");
            store.put_stream(&key, body(100 * 1024 + i, BodySpec::default()), u64::MAX).await.unwrap()
        }));
    }
    for (i, task) in tasks.into_iter().enumerate() {
        let info = task.await.unwrap();
        assert_eq!(info.size, 100 * 1024 + i as u64);
        assert_eq!(f.store.size(&info.key).await.unwrap(), Some(info.size));
    }
    f.assert_no_leftovers().await;
}

async fn open_fails_clearly(f: Fixture) {
    let description = f.store.describe();
    match &f.backend {
        Backend::Local(dir) => {
            assert_eq!(description, format!("local directory {}", f.local_root().display()));
            let file = dir.path().join("a-file");
            std::fs::write(&file, b"x").unwrap();
            let error = BlobStore::open(&BlobStoreConfig::Local { dir: file.join("blobs") }).await.unwrap_err();
            assert!(matches!(error, BlobError::Io(_)), "{error:?}");
            assert!(error.to_string().contains("a-file"), "{error}");
        }
        Backend::S3 { moto, bucket } => {
            assert_eq!(description, format!("S3 bucket {bucket} at {} under ferry/test/", moto.url()));

            let error = BlobStore::open(&s3_config(&moto.url(), "no-such-bucket")).await.unwrap_err();
            let message = error.to_string();
            assert!(matches!(error, BlobError::Config(_)), "{error:?}");
            assert!(message.contains("no-such-bucket") && message.contains(&moto.url()), "{message}");

            let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            let url = format!("http://127.0.0.1:{closed}");
            let started = Instant::now();
            let error = BlobStore::open(&s3_config(&url, bucket)).await.unwrap_err();
            let message = error.to_string();
            assert!(error.is_transient(), "{error:?}");
            assert!(message.contains(bucket.as_str()) && message.contains(&url), "{message}");
            assert!(started.elapsed() < Duration::from_secs(30), "took {:?}", started.elapsed());
        }
    }
}

// A local-only concern: temporary files of writes that a crash interrupted.
#[tokio::test]
async fn local_open_removes_stale_temporary_files() {
    let f = Fixture::local().await;
    let tmp = f.local_root().join(".tmp");
    let stale = std::fs::File::create(tmp.join("stale")).unwrap();
    stale.set_modified(SystemTime::now() - Duration::from_secs(2 * 60 * 60)).unwrap();
    drop(stale);
    std::fs::write(tmp.join("in-progress"), b"x").unwrap();

    BlobStore::open(&f.config).await.unwrap();
    assert_eq!(dir_entries(&tmp), vec!["in-progress"], "stale files go; recent ones may belong to a running write");
}
