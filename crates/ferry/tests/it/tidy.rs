//! Tidy checks that keep the invariants ARCHITECTURE.md states: every Rust file opens with a
//! `//!` header; the pure crates' whole dependency trees stay free of I/O, async and serde;
//! only the SQL crates use sqlx; unsafe code lives in two reviewed places; only the clock reads
//! the wall clock.

use std::path::{Path, PathBuf};
use std::process::Command;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("workspace root")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable dir").flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().to_string();
        if path.is_dir() {
            if name != "target" && !name.starts_with('.') {
                rust_files(&path, out);
            }
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
}

fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root).unwrap_or(path).display().to_string()
}

/// The workspace's crates under `crates/`, by directory name.
fn crate_dirs(root: &Path) -> Vec<(String, PathBuf)> {
    let mut crates: Vec<(String, PathBuf)> = std::fs::read_dir(root.join("crates"))
        .expect("crates dir")
        .flatten()
        .filter(|e| e.path().join("Cargo.toml").is_file())
        .map(|e| (e.file_name().to_string_lossy().to_string(), e.path()))
        .collect();
    crates.sort();
    crates
}

#[test]
fn every_rust_file_has_a_module_header() {
    let root = workspace_root();
    let mut files = Vec::new();
    for dir in ["crates", "bench"] {
        rust_files(&root.join(dir), &mut files);
    }
    let missing: Vec<String> = files
        .iter()
        .filter(|f| !std::fs::read_to_string(f).unwrap_or_default().trim_start().starts_with("//!"))
        .map(|f| relative(&root, f))
        .collect();
    assert!(missing.is_empty(), "files without a `//!` header: {missing:?}");
}

/// The names of every package `krate` depends on at run time, directly or not.
fn dependency_tree(root: &Path, krate: &str) -> Vec<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .current_dir(root)
        .args(["tree", "--offline", "--locked", "-e", "normal", "--prefix", "none", "--format", "{p}", "-p", krate])
        .output()
        .expect("cargo tree runs");
    assert!(output.status.success(), "cargo tree -p {krate}: {}", String::from_utf8_lossy(&output.stderr));
    let text = String::from_utf8(output.stdout).expect("UTF-8");
    text.lines().filter_map(|l| l.split_whitespace().next()).map(str::to_owned).collect()
}

#[test]
fn pure_crates_depend_on_no_io_async_or_serde() {
    let root = workspace_root();
    let forbidden =
        ["tokio", "sqlx", "sqlx-core", "axum", "hyper", "reqwest", "serde", "serde_core", "serde_derive", "serde_json"];
    for krate in ["ferry-domain", "ferry-model", "ferry-query"] {
        let tree = dependency_tree(&root, krate);
        assert!(tree.iter().any(|p| p == krate), "cargo tree lists {krate}: {tree:?}");
        let found: Vec<&String> = tree.iter().filter(|p| forbidden.contains(&p.as_str())).collect();
        assert!(found.is_empty(), "{krate} must stay pure, but its dependency tree holds {found:?}");
    }
}

/// Only the SQL seam, the store and the replication targets talk to databases (tests may
/// open target databases to check them); only the seam uses the blocking SQLite driver.
#[test]
fn only_the_sql_crates_use_database_drivers() {
    let root = workspace_root();
    let drivers: [(&str, &[&str]); 2] =
        [("sqlx", &["ferry-sql", "ferry-store", "ferry-target"]), ("rusqlite", &["ferry-sql"])];
    for (name, dir) in crate_dirs(&root) {
        let manifest: toml::Table = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap().parse().unwrap();
        let deps = manifest.get("dependencies").and_then(|d| d.as_table()).cloned().unwrap_or_default();
        let mut files = Vec::new();
        rust_files(&dir.join("src"), &mut files);
        let texts: Vec<(PathBuf, String)> =
            files.into_iter().map(|f| (f.clone(), std::fs::read_to_string(&f).unwrap())).collect();
        for (driver, allowed) in drivers {
            if allowed.contains(&name.as_str()) {
                continue;
            }
            assert!(!deps.contains_key(driver), "{name} depends on {driver}; database access belongs in {allowed:?}");
            for (file, text) in &texts {
                let used = text.contains(&format!("{driver}::"));
                assert!(!used, "{} uses {driver}; go through ferry-store", relative(&root, file));
            }
        }
    }
}

/// The workspace forbids unsafe code; two crates deny it instead and allow it in one reviewed
/// place each, with the safety argument beside it: ferry-xslt's FFI module (libxslt) and
/// ferry-sql's lending of sqlx's locked SQLite handle to rusqlite.
#[test]
fn unsafe_code_lives_in_its_two_reviewed_places() {
    let root = workspace_root();
    let mut files = Vec::new();
    for (_, dir) in crate_dirs(&root) {
        rust_files(&dir, &mut files);
    }
    let allow = format!("#[allow({})]", "unsafe_code");
    let mut allowing: Vec<String> = files
        .iter()
        .filter(|f| std::fs::read_to_string(f).unwrap().contains(&allow))
        .map(|f| relative(&root, f))
        .collect();
    allowing.sort();
    assert_eq!(
        allowing,
        ["crates/ferry-sql/src/sqlite_direct.rs", "crates/ferry-xslt/src/lib.rs"],
        "unsafe code outside its reviewed places"
    );
}

/// Time comes from the `Clock` given at start-up; only `SystemClock` reads the wall clock.
/// The local blob store compares file times with the file system's own clock.
#[test]
fn only_the_clock_reads_the_wall_clock() {
    let root = workspace_root();
    let allowed = ["crates/ferry-domain/src/clock.rs", "crates/ferry-blob/src/local.rs"];
    let mut files = Vec::new();
    for (_, dir) in crate_dirs(&root) {
        rust_files(&dir.join("src"), &mut files);
    }
    let mut offenders = Vec::new();
    for file in files {
        let shown = relative(&root, &file);
        if allowed.contains(&shown.as_str()) {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        for needle in ["Utc::now()", "Local::now()", "SystemTime::now()", "now_utc()"] {
            if text.contains(needle) {
                offenders.push(format!("{shown}: {needle}"));
            }
        }
    }
    assert!(offenders.is_empty(), "wall-clock reads outside ferry-domain's clock: {offenders:?}");
}
