//! DuckDB's official loadable extensions that Pond ships: httpfs, the reader of `s3://` and
//! `http(s)://` paths, placed next to the executables by `build.rs`.
//!
//! Invariants:
//! - Only the file whose SHA-256 the build recorded (`POND_HTTPFS_SHA256`) is ever offered for
//!   loading: a file swapped in beside the binary is refused, not loaded.
//! - The search happens once per process; its answer (a path, or why there is none) is kept.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use sha2::{Digest, Sha256};

/// The httpfs extension's file name.
pub const HTTPFS_FILE: &str = "httpfs.duckdb_extension";

/// The SHA-256 of the httpfs extension this build placed next to its executables; empty in a
/// build that has none (`bundled-duckdb`).
pub const HTTPFS_SHA256: &str = env!("POND_HTTPFS_SHA256");

/// Names the directory to take extensions from instead of the executable's.
pub const EXTENSION_DIR_ENV: &str = "POND_EXTENSION_DIR";

/// The verified httpfs extension to load, or why there is none.
pub fn httpfs() -> Result<&'static Path, &'static str> {
    static FOUND: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    FOUND
        .get_or_init(find_httpfs)
        .as_ref()
        .map(PathBuf::as_path)
        .map_err(String::as_str)
}

fn find_httpfs() -> Result<PathBuf, String> {
    if HTTPFS_SHA256.is_empty() {
        return Err("this build of Pond has no httpfs extension (built with bundled-duckdb)".into());
    }
    let candidates: Vec<PathBuf> = match std::env::var_os(EXTENSION_DIR_ENV) {
        Some(dir) => vec![PathBuf::from(dir)],
        None => {
            let exe = std::env::current_exe().map_err(|e| format!("cannot locate the executable: {e}"))?;
            let dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
            // Test binaries live in <profile>/deps; an install may keep libraries in ../lib.
            [
                Some(dir.clone()),
                dir.parent().map(|p| p.join("lib")),
                dir.parent().map(Path::to_path_buf),
            ]
            .into_iter()
            .flatten()
            .collect()
        }
    };
    for dir in &candidates {
        let path = dir.join(HTTPFS_FILE);
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        let digest: String = Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
        if digest != HTTPFS_SHA256 {
            tracing::warn!(path = %path.display(), "refusing an httpfs extension that is not the one this build ships");
            return Err(format!(
                "{} is not the httpfs extension this build of Pond ships",
                path.display()
            ));
        }
        return Ok(path);
    }
    Err(format!(
        "no {HTTPFS_FILE} next to the pond executable (looked in {}; set {EXTENSION_DIR_ENV})",
        candidates
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    ))
}
