//! `pond bench storage`: what differential storage costs, on real DuckDB databases of the
//! sizes asked for, with the local-directory backend.
//!
//! (a) bytes uploaded per one-row INSERT, UPDATE and DELETE, and per checkpoint;
//! (b) commit latency next to DuckDB's own commit, and commit plus CHECKPOINT, on a copy of
//!     the same database;
//! (c) bytes and time for a zero-copy clone;
//! (d) opening a snapshot with a warm cache, cold-open throughput, and the bytes a reader
//!     fetches to move from snapshot N to N+1 after a one-row commit.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use pond_duckling::{Connection, Database, Duckling, DucklingConfig};
use pond_storage::{DatabaseWriter, Storage, StorageConfig, block_on};

use super::{figure, micros, percentile};

/// Bytes per row of the generated table, measured: sizes the row count for a target size.
pub(super) const BYTES_PER_ROW: u64 = 26;

/// A size as figures' names show it: `1gib`, `64mib`.
pub(super) fn label(bytes: u64) -> String {
    if bytes >= 1 << 30 {
        format!("{}gib", bytes >> 30)
    } else {
        format!("{}mib", bytes >> 20)
    }
}

fn median_u64(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v[v.len() / 2]
}

struct Fixture {
    _dir: tempfile::TempDir,
    storage: Storage,
    duckling: Arc<Duckling>,
    conn: Connection,
    work: std::path::PathBuf,
}

fn put_bytes(storage: &Storage) -> u64 {
    storage.store().stats().bytes().0
}

fn commit(f: &Fixture, sql: &str) -> Result<Duration> {
    let t = Instant::now();
    f.duckling.writing(|| f.conn.execute_batch(sql), || true)??;
    Ok(t.elapsed())
}

fn build(size: u64, root: &Path) -> Result<Fixture> {
    let dir = tempfile::tempdir_in(root)?;
    let storage = Storage::open(&StorageConfig {
        url: format!("file://{}", dir.path().join("store").display()),
        cache_dir: dir.path().join("cache"),
        cache_bytes: 1 << 40,
    })?;
    let duckling = Duckling::open(&DucklingConfig {
        dir: dir.path().join("duckling"),
        threads: None,
        adaptive_threads: false,
        memory_limit: None,
        storage: storage.clone(),
        remote: Default::default(),
    })?;
    duckling.attach("db", "bench")?;
    let conn = duckling.connect("db")?;
    let rows = size / BYTES_PER_ROW;
    let work = duckling.dir().join("bench.duckdb");
    let f = Fixture {
        _dir: dir,
        storage,
        duckling,
        conn,
        work,
    };
    commit(
        &f,
        &format!("CREATE TABLE t AS SELECT i, hash(i) AS h, md5(i::VARCHAR) AS s FROM range({rows}) r(i)"),
    )?;
    commit(&f, "CHECKPOINT")?;
    Ok(f)
}

/// Runs the storage benchmarks for each size.
pub fn run(sizes: &[u64], iterations: usize) -> Result<()> {
    let root = std::env::temp_dir();
    for &size in sizes {
        let name = label(size);
        let t = Instant::now();
        let f = build(size, &root).with_context(|| format!("building a {name} database"))?;
        let file_len = std::fs::metadata(&f.work)?.len();
        figure(
            &format!("storage_{name}_database_file"),
            file_len as f64 / (1 << 20) as f64,
            "MiB",
        );
        figure(&format!("storage_{name}_build"), t.elapsed().as_secs_f64(), "s");

        // (a) Bytes per small commit.
        let mut next = 1_000_000_000_000u64;
        for (op, sql) in [
            ("insert", "INSERT INTO t VALUES ({n}, 1, 'x')"),
            ("update", "UPDATE t SET s = 'y' WHERE i = {k}"),
            ("delete", "DELETE FROM t WHERE i = {k}"),
        ] {
            let mut bytes = Vec::new();
            for _ in 0..5 {
                next += 1;
                let sql = sql
                    .replace("{n}", &next.to_string())
                    .replace("{k}", &(next % 1000).to_string());
                let before = put_bytes(&f.storage);
                commit(&f, &sql)?;
                bytes.push(put_bytes(&f.storage) - before);
            }
            figure(
                &format!("storage_commit_bytes_{op}_{name}"),
                median_u64(bytes) as f64,
                "bytes",
            );
        }
        let before = put_bytes(&f.storage);
        commit(&f, "CHECKPOINT")?;
        figure(
            &format!("storage_checkpoint_bytes_{name}"),
            (put_bytes(&f.storage) - before) as f64,
            "bytes",
        );

        // (b) Commit latency, Pond against DuckDB's own on a copy of the same database.
        let mut pond = Vec::with_capacity(iterations);
        for _ in 0..iterations {
            next += 1;
            pond.push(commit(&f, &format!("INSERT INTO t VALUES ({next}, 2, 'z')"))?);
        }
        pond.sort();
        let copy = f.work.with_extension("plain.duckdb");
        commit(&f, "CHECKPOINT")?;
        std::fs::copy(&f.work, &copy)?;
        let plain_db = Database::open(Some(copy.as_path()), &[])?;
        let plain = plain_db.connect()?;
        let mut own = Vec::with_capacity(iterations);
        let mut own_ckpt = Vec::with_capacity(iterations);
        for i in 0..iterations {
            next += 1;
            let t = Instant::now();
            plain.execute_batch(&format!("INSERT INTO t VALUES ({next}, 3, 'w')"))?;
            own.push(t.elapsed());
            if i < iterations.min(200) {
                let t = Instant::now();
                plain.execute_batch(&format!("INSERT INTO t VALUES ({}, 3, 'w'); CHECKPOINT", next + 1))?;
                own_ckpt.push(t.elapsed());
                next += 1;
            }
        }
        own.sort();
        own_ckpt.sort();
        drop(plain);
        drop(plain_db);
        let _ = std::fs::remove_file(&copy);
        let _ = std::fs::remove_file(pond_storage::layout::wal_path(&copy));
        figure(
            &format!("storage_commit_p50_{name}"),
            micros(percentile(&pond, 0.5)),
            "us",
        );
        figure(
            &format!("storage_commit_p99_{name}"),
            micros(percentile(&pond, 0.99)),
            "us",
        );
        figure(
            &format!("duckdb_commit_p50_{name}"),
            micros(percentile(&own, 0.5)),
            "us",
        );
        figure(
            &format!("duckdb_commit_checkpoint_p50_{name}"),
            micros(percentile(&own_ckpt, 0.5)),
            "us",
        );
        figure(
            &format!("duckdb_commit_checkpoint_p99_{name}"),
            micros(percentile(&own_ckpt, 0.99)),
            "us",
        );
        figure(
            &format!("storage_commit_p50_ratio_to_duckdb_commit_checkpoint_{name}"),
            micros(percentile(&pond, 0.5)) / micros(percentile(&own_ckpt, 0.5)),
            "x",
        );

        // (c) A clone.
        let latest = block_on(f.storage.latest_seq("bench"))?.context("no snapshot")?;
        let t = Instant::now();
        let clone_bytes = block_on(DatabaseWriter::branch(&f.storage, "bench_clone", "bench", latest))?;
        figure(&format!("storage_clone_bytes_{name}"), clone_bytes as f64, "bytes");
        figure(&format!("storage_clone_{name}"), micros(t.elapsed()), "us");

        // (d) Readers.
        let state = block_on(f.storage.resolve("bench", latest))?;
        let reader_dir = tempfile::tempdir_in(&root)?;
        f.storage.cache().clear_blocking();
        let (_, got_before) = f.storage.store().stats().bytes();
        let t = Instant::now();
        let cold = reader_dir.path().join("cold.duckdb");
        let (blocks, _) = block_on(f.storage.materialize("bench", latest, &state, &cold, None))?;
        let cold_secs = t.elapsed().as_secs_f64();
        let (_, got_after) = f.storage.store().stats().bytes();
        figure(
            &format!("storage_cold_open_mb_per_s_{name}"),
            (got_after - got_before) as f64 / 1e6 / cold_secs,
            "MB/s",
        );
        let t = Instant::now();
        let warm = reader_dir.path().join("warm.duckdb");
        block_on(f.storage.materialize("bench", latest, &state, &warm, None))?;
        let opened = Database::open(Some(warm.as_path()), &[("access_mode", "READ_ONLY".to_string())])?;
        opened.connect()?.query_all("SELECT count(*) FROM t")?;
        figure(
            &format!("storage_warm_open_{name}"),
            t.elapsed().as_secs_f64() * 1e3,
            "ms",
        );
        drop(opened);
        // The same open next to an earlier copy (what REFRESH does): copy it, patch what differs.
        let t = Instant::now();
        let beside = reader_dir.path().join("beside.duckdb");
        block_on(
            f.storage
                .materialize("bench", latest, &state, &beside, Some((&cold, &blocks))),
        )?;
        let opened = Database::open(Some(beside.as_path()), &[("access_mode", "READ_ONLY".to_string())])?;
        opened.connect()?.query_all("SELECT count(*) FROM t")?;
        figure(
            &format!("storage_warm_open_beside_previous_{name}"),
            t.elapsed().as_secs_f64() * 1e3,
            "ms",
        );
        drop(opened);

        // Time travel to a snapshot attached before: its detached copy is reused.
        f.duckling.attach_snapshot("snap", "bench", latest, false)?;
        f.duckling.detach("snap")?;
        let t = Instant::now();
        f.duckling.attach_snapshot("snap", "bench", latest, false)?;
        f.duckling.connect("snap")?.query_all("SELECT count(*) FROM t")?;
        figure(
            &format!("storage_reattach_snapshot_{name}"),
            t.elapsed().as_secs_f64() * 1e3,
            "ms",
        );
        f.duckling.detach("snap")?;

        next += 1;
        commit(&f, &format!("INSERT INTO t VALUES ({next}, 4, 'v')"))?;
        let newer = block_on(f.storage.latest_seq("bench"))?.context("no snapshot")?;
        let newer_state = block_on(f.storage.resolve("bench", newer))?;
        let (_, got_before) = f.storage.store().stats().bytes();
        let moved = reader_dir.path().join("next.duckdb");
        block_on(
            f.storage
                .materialize("bench", newer, &newer_state, &moved, Some((&cold, &blocks))),
        )?;
        let (_, got_after) = f.storage.store().stats().bytes();
        figure(
            &format!("storage_reader_next_snapshot_bytes_{name}"),
            (got_after - got_before) as f64,
            "bytes",
        );
    }
    Ok(())
}
