//! TPC-H through Flight SQL against in-process DuckDB.
//!
//! Data comes from `tpchgen` (a pure-Rust dbgen; DuckDB's tpch extension is not in the
//! crates.io build), written as CSV, loaded into a reference DuckDB with `read_csv`, and
//! uploaded into Pond with Flight SQL bulk ingest. The 22 queries are tpchgen's qgen templates
//! with the specification's validation parameters and row limits.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use pond_client::PondClient;
use pond_duckling::Connection;
use tpchgen::csv::{CustomerCsv, LineItemCsv, NationCsv, OrderCsv, PartCsv, PartSuppCsv, RegionCsv, SupplierCsv};
use tpchgen::generators::{
    CustomerGenerator, LineItemGenerator, NationGenerator, OrderGenerator, PartGenerator, PartSuppGenerator,
    RegionGenerator, SupplierGenerator,
};

/// The eight TPC-H tables, in load order.
pub const TABLES: [&str; 8] = [
    "region", "nation", "supplier", "customer", "part", "partsupp", "orders", "lineitem",
];

macro_rules! write_table {
    ($dir:expr, $name:expr, $generator:expr, $csv:ident) => {{
        let mut out = BufWriter::with_capacity(1 << 20, File::create($dir.join(format!("{}.csv", $name)))?);
        writeln!(out, "{}", $csv::header())?;
        for row in $generator.iter() {
            writeln!(out, "{}", $csv::new(row))?;
        }
        out.flush()?;
    }};
}

/// Writes the tables at scale factor `sf` as CSV files with headers into `dir`.
pub fn generate(dir: &Path, sf: f64) -> Result<()> {
    write_table!(dir, "region", RegionGenerator::new(sf, 1, 1), RegionCsv);
    write_table!(dir, "nation", NationGenerator::new(sf, 1, 1), NationCsv);
    write_table!(dir, "supplier", SupplierGenerator::new(sf, 1, 1), SupplierCsv);
    write_table!(dir, "customer", CustomerGenerator::new(sf, 1, 1), CustomerCsv);
    write_table!(dir, "part", PartGenerator::new(sf, 1, 1), PartCsv);
    write_table!(dir, "partsupp", PartSuppGenerator::new(sf, 1, 1), PartSuppCsv);
    write_table!(dir, "orders", OrderGenerator::new(sf, 1, 1), OrderCsv);
    write_table!(dir, "lineitem", LineItemGenerator::new(sf, 1, 1), LineItemCsv);
    Ok(())
}

/// The specification's validation parameters for each query template, and its row limit.
fn parameters(q: i32) -> (&'static [&'static str], Option<u32>) {
    match q {
        1 => (&["90"], None),
        2 => (&["15", "BRASS", "EUROPE"], Some(100)),
        3 => (&["BUILDING", "1995-03-15"], Some(10)),
        4 => (&["1993-07-01"], None),
        5 => (&["ASIA", "1994-01-01"], None),
        6 => (&["1994-01-01", "0.06", "24"], None),
        7 => (&["FRANCE", "GERMANY"], None),
        8 => (&["BRAZIL", "AMERICA", "ECONOMY ANODIZED STEEL"], None),
        9 => (&["green"], None),
        10 => (&["1993-10-01"], Some(20)),
        11 => (&["GERMANY", "0.0001"], None),
        12 => (&["MAIL", "SHIP", "1994-01-01"], None),
        13 => (&["special", "requests"], None),
        14 => (&["1995-09-01"], None),
        15 => (&["1996-01-01"], None),
        16 => (
            &[
                "Brand#45",
                "MEDIUM POLISHED",
                "49",
                "14",
                "23",
                "45",
                "19",
                "3",
                "36",
                "9",
            ],
            None,
        ),
        17 => (&["Brand#23", "MED BOX"], None),
        18 => (&["300"], Some(100)),
        19 => (&["Brand#12", "Brand#23", "Brand#34", "1", "10", "20"], None),
        20 => (&["forest", "1994-01-01", "CANADA"], None),
        21 => (&["SAUDI ARABIA"], Some(100)),
        22 => (&["13", "31", "23", "29", "30", "18", "17"], None),
        _ => (&[], None),
    }
}

/// Query `q` (1–22) as runnable DuckDB SQL.
pub fn query(q: i32) -> Result<String> {
    let template = tpchgen::q_and_a::queries::query(q).with_context(|| format!("no TPC-H query {q}"))?;
    let (params, limit) = parameters(q);
    let mut sql = template.replace(" day (3)", " day").replace(":s", "0");
    // Highest placeholder first, so `:1` does not clobber `:10`.
    for (i, value) in params.iter().enumerate().rev() {
        sql = sql.replace(&format!(":{}", i + 1), value);
    }
    if let Some(n) = limit {
        let body = sql.trim_end().trim_end_matches(';').to_string();
        sql = format!("{body}\nLIMIT {n};");
    }
    Ok(sql)
}

/// Loads the CSV files into the reference DuckDB.
pub fn load_reference(conn: &Connection, dir: &Path) -> Result<()> {
    for t in TABLES {
        let path = dir.join(format!("{t}.csv"));
        conn.execute_batch(&format!(
            "CREATE TABLE {t} AS SELECT * FROM read_csv('{}', header = true)",
            path.display()
        ))?;
    }
    Ok(())
}

/// Copies `tables` from the reference DuckDB into Pond with bulk ingest.
pub async fn load_pond(reference: &Connection, client: &mut PondClient, tables: &[&str]) -> Result<u64> {
    let mut rows = 0u64;
    for t in tables {
        let mut stmt = reference.prepare(&format!("SELECT * FROM {t}"))?;
        let mut stream = stmt.execute_streaming()?;
        let mut chunk = Vec::new();
        loop {
            let next = stream.next_batch()?;
            let end = next.is_none();
            if let Some(b) = next {
                chunk.push(b);
            }
            if (end && !chunk.is_empty()) || chunk.len() >= 256 {
                rows += client.ingest(t, std::mem::take(&mut chunk)).await? as u64;
            }
            if end {
                break;
            }
        }
    }
    Ok(rows)
}

/// Runs a (possibly multi-statement) query in-process and returns the rows of its last result.
pub fn run_reference(conn: &Connection, sql: &str) -> Result<usize> {
    let extracted = conn.extract(sql)?;
    let mut rows = 0;
    for i in 0..extracted.len() {
        let mut stmt = extracted.prepare(i)?;
        let mut stream = stmt.execute_streaming()?;
        rows = 0;
        while let Some(b) = stream.next_batch()? {
            rows += b.num_rows();
        }
    }
    Ok(rows)
}

/// Median of durations.
pub fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

pub fn elapsed<T>(f: impl FnOnce() -> Result<T>) -> Result<(T, Duration)> {
    let t = Instant::now();
    let out = f()?;
    Ok((out, t.elapsed()))
}
