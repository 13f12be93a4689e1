//! A reference Flight SQL server for `pond bench flight` to measure standard clients against:
//! arrow-go's SQLite example (`go install
//! github.com/apache/arrow-go/v18/arrow/flight/flightsql/example/cmd/sqlite_flightsql_server@v18.9.0`),
//! the server ADBC's own tests run against. Given by address, or started when installed.

use std::time::Duration;

use anyhow::{Context, Result};

/// A reference server: where it listens, and the process when this run started it.
pub struct Reference {
    pub address: String,
    _process: Option<tokio::process::Child>,
}

const BINARY: &str = "sqlite_flightsql_server";

/// The reference at `address`, or one started from `PATH` or `~/go/bin`; `None` when neither.
pub async fn start(address: Option<String>) -> Result<Option<Reference>> {
    if let Some(address) = address {
        return Ok(Some(Reference {
            address,
            _process: None,
        }));
    }
    let home_bin = std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join("go/bin").join(BINARY));
    let candidates = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join(BINARY)).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain(home_bin);
    let Some(binary) = candidates.into_iter().find(|p| p.is_file()) else {
        tracing::info!("no {BINARY} installed: the standard-client figures have no reference");
        return Ok(None);
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let process = tokio::process::Command::new(&binary)
        .args(["-host", "127.0.0.1", "-port", &port.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    let address = format!("127.0.0.1:{port}");
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(&address).await.is_ok() {
            return Ok(Some(Reference {
                address,
                _process: Some(process),
            }));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!("{} did not start listening on {address}", binary.display())
}
