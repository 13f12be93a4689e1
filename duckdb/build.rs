//! Provides the DuckDB library Pond links.
//!
//! By default: DuckDB's official shared library (ICU, parquet, json and autocomplete built in,
//! and the only build DuckDB's official loadable extensions load into). DuckDB publishes it inside
//! the npm package `@duckdb/node-bindings-<platform>`; this script takes it, in order, from
//! - `POND_DUCKDB_LIB_DIR` (a directory holding `libduckdb.so` / `libduckdb.dylib`),
//! - a cache under the target directory (`<target>/duckdb-official/<version>/`),
//! - the npm registry (downloaded with `curl`, checked against the package's published SHA-512).
//!
//! It then copies the library next to the executables and tests of this profile, where their
//! rpath (`$ORIGIN`, see `.cargo/config.toml`) finds it, and tells the linker where it is.
//! libduckdb-sys itself (default features off) only asks to link `duckdb`.
//!
//! Beside it goes DuckDB's official httpfs extension (`httpfs.duckdb_extension`, the reader of
//! `s3://` and `http(s)://`), taken from the PyPI wheel `duckdb-extension-httpfs` of the same
//! DuckDB version, checked against the wheel's published SHA-256; its own SHA-256 is compiled in
//! (`POND_HTTPFS_SHA256`) so a duckling loads only that file (`src/extensions.rs`).
//!
//! With the `bundled-duckdb` feature libduckdb-sys compiles DuckDB's sources instead and this
//! script does nothing: that build reads no remote data.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use sha2::{Digest, Sha256, Sha512};

/// The npm release of `@duckdb/node-bindings-*` that carries DuckDB 1.5.5, the version of
/// libduckdb-sys `1.10505.x` and of the official extensions on PyPI.
const NPM_VERSION: &str = "1.5.5-r.5";

/// (Rust target os, arch) → (npm platform, library file name, SHA-512 of the npm tarball, base64).
const PLATFORMS: &[(&str, &str, &str, &str, &str)] = &[
    (
        "linux",
        "x86_64",
        "linux-x64",
        "libduckdb.so",
        "kCyq6BXhn6QXfwF8yVdVKriSSHP+rfVWcJ56cG8qZzlOZpxyvT5WGm6jMshxg4ditLlOsHsIN/D47RYrcjXuHQ==",
    ),
    (
        "linux",
        "aarch64",
        "linux-arm64",
        "libduckdb.so",
        "CafH2AIvXtpwDynG3KB/4uEOHRGlFoB7auCRMIwH3BKNIobsANV5LSpDJ3tfyRCFIsK6e8AT1eseWVnu2Dv3cw==",
    ),
    (
        "macos",
        "aarch64",
        "darwin-arm64",
        "libduckdb.dylib",
        "WJdeLTFy4pRg60rkbp9smtlP1iIQ8ErtIJkxS+2LQtM1ZZMSByyW+3WPpNoKe7IwPtVl2fLlPw7tDmQW4Z974g==",
    ),
    (
        "macos",
        "x86_64",
        "darwin-x64",
        "libduckdb.dylib",
        "rN0KjX13MwVQ5V5ufykolty/tf4SaafOpGWcUA1Cegf98jPeRdsJsEE1IMXn8n3u6WvMSZEVJmHJ3ma4Hr7Vzg==",
    ),
];

/// The DuckDB version of the official extensions on PyPI that load into [`NPM_VERSION`].
const EXTENSION_VERSION: &str = "1.5.5";

/// (Rust target os, arch) → (the wheel's path under files.pythonhosted.org/packages/, its
/// platform tag, its published SHA-256) for `duckdb-extension-httpfs` [`EXTENSION_VERSION`].
const HTTPFS_WHEELS: &[(&str, &str, &str, &str, &str)] = &[
    (
        "linux",
        "x86_64",
        "02/14/921faf933bb5cae7fb477c69f684fbea26bb4d76ff937d19d486af3a54cb",
        "manylinux2014_x86_64",
        "84913dbe172ccb54368de2c4a020c38ca8b0e76f99df548f7fac37934cc7826f",
    ),
    (
        "linux",
        "aarch64",
        "ac/8f/6461e013a436f16f56ebc8909666c1c46538d86d0e2028359310761e6125",
        "manylinux2014_aarch64",
        "567d17e398fc29f7ea4bc42ea277ea19643bd1ad1815f676cb6dd994b50399bb",
    ),
    (
        "macos",
        "aarch64",
        "a4/18/b041aea67621e41c4a6f9cc81081572377e94ebe29bf9f65d21ce84bdf24",
        "macosx_11_0_arm64",
        "a6d9b245ac83834543354e826020b35b8dba16291bb876b2b00bd49f2c6aeb9d",
    ),
    (
        "macos",
        "x86_64",
        "43/f6/e693b9b8a3e1927f210ddefd6653bed07f3c959721679715a79a22971d44",
        "macosx_11_0_x86_64",
        "5dc6e48e7a6d4c775d88fcd9b6529b385559600c0cd17a2600addfdd34ae3060",
    ),
];

/// The extension's file name, in the wheel and next to the executables.
const HTTPFS_FILE: &str = "httpfs.duckdb_extension";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=POND_DUCKDB_LIB_DIR");
    if env::var_os("CARGO_FEATURE_BUNDLED_DUCKDB").is_some() {
        println!("cargo:rustc-env=POND_HTTPFS_SHA256=");
        return;
    }
    if let Err(message) = provide_official_library() {
        panic!(
            "DuckDB's official library is not available: {message}\n\
             Set POND_DUCKDB_LIB_DIR to a directory holding DuckDB {NPM_VERSION}'s shared library, \
             or build with `--features bundled-duckdb` to compile DuckDB from source."
        );
    }
    match provide_httpfs() {
        Ok(digest) => println!("cargo:rustc-env=POND_HTTPFS_SHA256={digest}"),
        Err(message) => panic!("DuckDB's httpfs extension is not available: {message}"),
    }
}

/// `<target>/<profile>`, from OUT_DIR (`<target>/<profile>/build/<crate>-<hash>/out`).
fn profile_dir() -> Result<PathBuf, String> {
    let out_dir = PathBuf::from(env::var("OUT_DIR").map_err(|e| e.to_string())?);
    Ok(out_dir
        .ancestors()
        .nth(3)
        .ok_or("OUT_DIR has an unexpected layout")?
        .to_path_buf())
}

/// Where downloads are kept across builds: under the target directory.
fn download_cache(profile_dir: &Path) -> PathBuf {
    env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| profile_dir.parent().map(Path::to_path_buf).unwrap_or_default())
}

/// Places the httpfs extension next to the executables (as the library is); returns its SHA-256.
fn provide_httpfs() -> Result<String, String> {
    let os = env::var("CARGO_CFG_TARGET_OS").map_err(|e| e.to_string())?;
    let arch = env::var("CARGO_CFG_TARGET_ARCH").map_err(|e| e.to_string())?;
    let &(_, _, path, tag, wheel_sha256) = HTTPFS_WHEELS
        .iter()
        .find(|(o, a, ..)| *o == os && *a == arch)
        .ok_or_else(|| format!("no official httpfs extension for {os}/{arch}"))?;
    let profile_dir = profile_dir()?;
    let cache = download_cache(&profile_dir)
        .join("duckdb-official")
        .join(format!("httpfs-{EXTENSION_VERSION}"))
        .join(tag);
    if !cache.join(HTTPFS_FILE).is_file() {
        let url = format!(
            "https://files.pythonhosted.org/packages/{path}/duckdb_extension_httpfs-{EXTENSION_VERSION}-py3-none-{tag}.whl"
        );
        let work = cache.join(format!(".partial-{}", std::process::id()));
        fs::create_dir_all(&work).map_err(|e| e.to_string())?;
        let result = fetch_wheel_member(&url, wheel_sha256, &work).and_then(|()| {
            fs::rename(work.join(HTTPFS_FILE), cache.join(HTTPFS_FILE))
                .map_err(|e| format!("placing {HTTPFS_FILE}: {e}"))
        });
        let _ = fs::remove_dir_all(&work);
        result?;
    }
    let bytes = fs::read(cache.join(HTTPFS_FILE)).map_err(|e| e.to_string())?;
    let digest: String = Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
    for dir in [profile_dir.clone(), profile_dir.join("deps")] {
        fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        copy_if_changed(&cache.join(HTTPFS_FILE), &dir.join(HTTPFS_FILE))?;
    }
    Ok(digest)
}

/// Downloads the wheel at `url`, checks it, and writes its extension file into `work`.
fn fetch_wheel_member(url: &str, sha256: &str, work: &Path) -> Result<(), String> {
    let wheel = work.join("extension.whl");
    curl(url, &wheel)?;
    let bytes = fs::read(&wheel).map_err(|e| e.to_string())?;
    let digest: String = Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
    if digest != sha256 {
        return Err(format!("{url} does not match its published SHA-256"));
    }
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(|e| format!("reading {url}: {e}"))?;
    let member = format!("duckdb_extension_httpfs/extensions/v{EXTENSION_VERSION}/{HTTPFS_FILE}");
    let mut file = archive
        .by_name(&member)
        .map_err(|e| format!("{url} has no {member}: {e}"))?;
    let mut out = fs::File::create(work.join(HTTPFS_FILE)).map_err(|e| e.to_string())?;
    std::io::copy(&mut file, &mut out).map_err(|e| format!("unpacking {member}: {e}"))?;
    Ok(())
}

fn curl(url: &str, to: &Path) -> Result<(), String> {
    let status = Command::new("curl")
        .args(["--fail", "--silent", "--show-error", "--location", "--retry", "3", "-o"])
        .arg(to)
        .arg(url)
        .status()
        .map_err(|e| format!("running curl: {e}"))?;
    if !status.success() {
        return Err(format!("downloading {url} failed ({status})"));
    }
    Ok(())
}

fn provide_official_library() -> Result<(), String> {
    let os = env::var("CARGO_CFG_TARGET_OS").map_err(|e| e.to_string())?;
    let arch = env::var("CARGO_CFG_TARGET_ARCH").map_err(|e| e.to_string())?;
    let profile_dir = profile_dir()?;

    let (library_dir, file_name) = match env::var_os("POND_DUCKDB_LIB_DIR") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            let name = if os == "macos" {
                "libduckdb.dylib"
            } else {
                "libduckdb.so"
            };
            if !dir.join(name).is_file() {
                return Err(format!("POND_DUCKDB_LIB_DIR has no {name}: {}", dir.display()));
            }
            (dir, name)
        }
        None => {
            let &(_, _, platform, name, integrity) = PLATFORMS
                .iter()
                .find(|(o, a, ..)| *o == os && *a == arch)
                .ok_or_else(|| format!("no official build for {os}/{arch}"))?;
            let cache = download_cache(&profile_dir)
                .join("duckdb-official")
                .join(NPM_VERSION)
                .join(platform);
            if !cache.join(name).is_file() {
                download(platform, name, integrity, &cache)?;
            }
            (cache, name)
        }
    };

    for dir in [profile_dir.clone(), profile_dir.join("deps")] {
        fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        copy_if_changed(&library_dir.join(file_name), &dir.join(file_name))?;
    }
    println!("cargo:rustc-link-search=native={}", profile_dir.display());
    Ok(())
}

/// Downloads and unpacks the library into `cache`. Every step writes beside its destination
/// and renames (two builds may race here, and an interrupted one must not leave a truncated
/// library that later builds trust).
fn download(platform: &str, name: &str, integrity: &str, cache: &Path) -> Result<(), String> {
    let url = format!(
        "https://registry.npmjs.org/@duckdb/node-bindings-{platform}/-/node-bindings-{platform}-{NPM_VERSION}.tgz"
    );
    let work = cache.join(format!(".partial-{}", std::process::id()));
    fs::create_dir_all(&work).map_err(|e| e.to_string())?;
    let result = fetch_and_unpack(&url, integrity, &work)
        .and_then(|()| fs::rename(work.join(name), cache.join(name)).map_err(|e| format!("placing {name}: {e}")));
    let _ = fs::remove_dir_all(&work);
    result
}

fn fetch_and_unpack(url: &str, integrity: &str, work: &Path) -> Result<(), String> {
    let tarball = work.join("package.tgz");
    curl(url, &tarball)?;
    let bytes = fs::read(&tarball).map_err(|e| e.to_string())?;
    let digest = base64::engine::general_purpose::STANDARD.encode(Sha512::digest(&bytes));
    if digest != integrity {
        return Err(format!("{url} does not match its published SHA-512"));
    }
    let status = Command::new("tar")
        .args(["xzf"])
        .arg(&tarball)
        .arg("-C")
        .arg(work)
        .args(["--strip-components=1", "package/"])
        .status()
        .map_err(|e| format!("running tar: {e}"))?;
    if !status.success() {
        return Err(format!("unpacking {} failed ({status})", tarball.display()));
    }
    Ok(())
}

/// Copies unless the destination already has the same size and modification time, so that a
/// rebuild does not rewrite a 70 MB file a running server has mapped.
fn copy_if_changed(from: &Path, to: &Path) -> Result<(), String> {
    let source = fs::metadata(from).map_err(|e| format!("{}: {e}", from.display()))?;
    if let Ok(existing) = fs::metadata(to)
        && existing.len() == source.len()
        && existing.modified().ok() == source.modified().ok()
    {
        return Ok(());
    }
    // Write beside and rename: a process that has the old file mapped keeps its copy intact.
    let partial = to.with_extension("partial");
    fs::copy(from, &partial).map_err(|e| format!("copying to {}: {e}", partial.display()))?;
    if let Ok(modified) = source.modified() {
        let file = fs::File::options()
            .write(true)
            .open(&partial)
            .map_err(|e| e.to_string())?;
        file.set_modified(modified).map_err(|e| e.to_string())?;
    }
    fs::rename(&partial, to).map_err(|e| e.to_string())?;
    Ok(())
}
