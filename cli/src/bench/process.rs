//! A real `pond serve` child (this executable) on loopback, for the benchmarks that need
//! processes: ducklings as processes, coordinators killed and replaced.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use pond_client::PondClient;
use pond_coordinator::TokenAuthority;
use tokio::io::AsyncBufReadExt;

/// One `pond serve` child.
pub struct ServerProcess {
    child: tokio::process::Child,
    pub url: String,
    tokens: TokenAuthority,
}

impl ServerProcess {
    /// Starts `pond serve` on `data_dir` (its file catalog's signing key signs the tokens).
    pub async fn start(data_dir: &Path, args: &[&str]) -> Result<Self> {
        Self::start_with_env(data_dir, args, &[]).await
    }

    /// [`Self::start`] with `env` set.
    pub async fn start_with_env(data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Result<Self> {
        let key = data_dir.join("signing.key");
        Self::start_with(data_dir, args, env, move || {
            Ok(TokenAuthority::from_secret(&pond_coordinator::load_or_create_key(
                &key,
            )?))
        })
        .await
    }

    /// Starts `pond serve` on `data_dir` with `env` set; `tokens` (asked once it listens)
    /// signs the clients' tokens.
    pub async fn start_with(
        data_dir: &Path,
        args: &[&str],
        env: &[(&str, &str)],
        tokens: impl FnOnce() -> Result<TokenAuthority> + Send + 'static,
    ) -> Result<Self> {
        let mut child = tokio::process::Command::new(std::env::current_exe()?)
            .arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .env("POND_LOG", "warn")
            // A child exports traces only when its arguments say so (`pond bench tracing`
            // compares one that does with one that does not).
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .env_remove("OTEL_EXPORTER_OTLP_PROTOCOL")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            // A group of its own, which its duckling processes join: `kill_host` ends them all.
            .process_group(0)
            .kill_on_drop(true)
            .spawn()?;
        let stdout = child.stdout.take().context("the server's stdout")?;
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let url = loop {
            let Some(line) = tokio::time::timeout(Duration::from_secs(60), lines.next_line()).await?? else {
                bail!("the server exited before listening");
            };
            if let Some(at) = line.find("grpc://") {
                break line[at..].replace("grpc://", "pond://");
            }
        };
        let tokens = tokio::task::spawn_blocking(tokens).await??;
        Ok(Self { child, url, tokens })
    }

    pub async fn client(&self, user: &str) -> Result<PondClient> {
        let (token, _) = self.tokens.mint(user, false, Duration::from_secs(3600))?;
        Ok(PondClient::connect(&format!("{}?token={token}", self.url)).await?)
    }

    /// SIGKILL: no drain, no release of anything, as a crash.
    pub async fn kill(mut self) -> Result<()> {
        self.child.kill().await?;
        Ok(())
    }

    /// SIGKILL to the server and every duckling process it started, as when their host dies.
    pub async fn kill_host(mut self) -> Result<()> {
        let pid = self.child.id().context("the server already exited")?;
        std::process::Command::new("kill")
            .args(["-9", "--", &format!("-{pid}")])
            .status()?;
        self.child.wait().await?;
        Ok(())
    }

    /// SIGTERM, and waits for the server to drain and exit.
    pub async fn stop(mut self) -> Result<()> {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill").arg(pid.to_string()).status();
        }
        tokio::time::timeout(Duration::from_secs(60), self.child.wait()).await??;
        Ok(())
    }
}
