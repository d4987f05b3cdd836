//! Tidy checks that keep the code base's promises: every Rust file opens with a `//!` header
//! saying what lives there, and the pure crates stay free of I/O dependencies
//! (ARCHITECTURE.md, "Invariants").

use std::path::{Path, PathBuf};

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
        .map(|f| f.strip_prefix(&root).unwrap_or(f).display().to_string())
        .collect();
    assert!(missing.is_empty(), "files without a `//!` header: {missing:?}");
}

#[test]
fn pure_crates_have_no_io_dependencies() {
    let root = workspace_root();
    for krate in ["ferry-model", "ferry-query"] {
        let manifest = std::fs::read_to_string(root.join("crates").join(krate).join("Cargo.toml")).unwrap();
        let manifest: toml::Table = manifest.parse().unwrap();
        let deps = manifest.get("dependencies").and_then(|d| d.as_table()).cloned().unwrap_or_default();
        for forbidden in ["tokio", "sqlx", "axum", "reqwest", "hyper"] {
            assert!(!deps.contains_key(forbidden), "{krate} must stay pure but depends on {forbidden}");
        }
    }
}
