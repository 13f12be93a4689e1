//! The coordinator's settings, defined once as the flags that set them.
//!
//! [`CoordinatorConfig`] is both what the coordinator runs with and, through
//! `#[derive(clap::Args)]`, the definition of its flags: `pond serve` and `pond duckling`
//! flatten it, so a setting's name, environment variable, help and default are written in one
//! place, as InfluxDB 3's `clap_blocks` do.
//!
//! Invariants:
//! - Every flag has an `env =` variable (a unit test walks them).
//! - A default exists only as the flag's `default_value`: [`CoordinatorConfig::new`] parses an
//!   empty command line, with the environment ignored, rather than restating them.
//! - A spawned duckling gets its parent's settings from [`child_flags`], which walks the flags
//!   this struct defines, so a new setting reaches the children with no further code.

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgMatches, Args, Command, FromArgMatches};

/// The variable `--catalog` is read from. Duckling processes are started without it.
pub const CATALOG_ENV: &str = "POND_CATALOG";

/// A catalog's connection string. It may hold a password, so its `Debug` shows none of it.
#[derive(Clone, PartialEq, Eq)]
pub struct CatalogUrl(pub String);

impl std::fmt::Debug for CatalogUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CatalogUrl(…)")
    }
}

/// Coordinator settings. `data_dir`, `storage_url` and `catalog_url` are not flags of their own
/// here: each command names them its own way (`pond serve --storage --catalog`, a duckling's
/// from its coordinator), and the rest are the flags every duckling runs with.
#[derive(Args, Debug, Clone, PartialEq)]
pub struct CoordinatorConfig {
    /// Where the catalog, keys and databases live.
    #[arg(skip)]
    pub data_dir: PathBuf,
    /// Where snapshots live (`file://`, `memory://`, `s3://`); `None`: `<data_dir>/storage`.
    #[arg(skip)]
    pub storage_url: Option<String>,
    /// Where the catalog lives: `postgres://…` (shared by coordinators), or `None` for
    /// `<data_dir>/catalog.json`.
    #[arg(skip)]
    pub catalog_url: Option<CatalogUrl>,
    /// Local cache of snapshot objects, e.g. 10GiB (its size bound).
    #[arg(long = "cache-size", value_name = "CACHE_SIZE", env = "POND_CACHE_SIZE", default_value = "10GiB", value_parser = parse_byte_size)]
    pub cache_bytes: u64,
    /// DuckDB threads per duckling (default: DuckDB's, one per core).
    #[arg(long, env = "POND_DUCKLING_THREADS")]
    pub duckling_threads: Option<usize>,
    /// Run ducklings on one DuckDB thread while threads wait for CPUs (Linux's CPU pressure
    /// over 20% for 300 ms; back after 2 s under 5%), at --duckling-threads otherwise.
    #[arg(long, env = "POND_ADAPTIVE_THREADS", default_value_t = true, action = clap::ArgAction::Set)]
    pub adaptive_threads: bool,
    /// DuckDB memory limit per duckling, e.g. 4GB (default: DuckDB's, 80% of RAM).
    #[arg(long, env = "POND_DUCKLING_MEMORY")]
    pub duckling_memory: Option<String>,
    /// Interrupt statements that run longer than this, e.g. 5m (default: no limit).
    #[arg(long, env = "POND_QUERY_TIMEOUT", value_parser = humantime::parse_duration)]
    pub query_timeout: Option<Duration>,
    /// End results larger than this many Arrow bytes with an error, e.g. 1GiB (default: no limit).
    #[arg(long, env = "POND_MAX_RESULT_BYTES", value_parser = parse_byte_size)]
    pub max_result_bytes: Option<u64>,
    /// Run a read on the server's async worker that received it, with no hand-off to another
    /// thread, when its last run took at most this long (a point query), e.g. 1ms; 0s: never.
    /// One that runs 8 times as long (at most an hour) is interrupted and runs again on a
    /// blocking thread.
    #[arg(long, env = "POND_QUICK_READ_TIME", default_value = "250us", value_parser = humantime::parse_duration)]
    pub quick_read_time: Duration,
    /// Statements of one user that run at once; more wait their turn.
    #[arg(long, env = "POND_MAX_CONCURRENT_QUERIES", default_value_t = 32)]
    pub max_concurrent_queries: usize,
    /// Stop a duckling nobody used for this long, e.g. 10m; it restarts on the next query.
    #[arg(long, env = "POND_DUCKLING_IDLE_TIMEOUT", value_parser = humantime::parse_duration)]
    pub duckling_idle_timeout: Option<Duration>,
    /// Close sessions idle for this long.
    #[arg(long, env = "POND_SESSION_IDLE_TIMEOUT", default_value = "30m", value_parser = humantime::parse_duration)]
    pub session_idle_timeout: Duration,
    /// Where users' statements may read and write remote data, through DuckDB's httpfs and
    /// their secrets (`CREATE SECRET … IN POND`): URL prefixes, comma-separated; empty: none.
    /// End a host's prefix with `/`. Plain `http://` is off by default: it reaches the server's
    /// own network.
    #[arg(
        long,
        env = "POND_REMOTE_PREFIXES",
        value_delimiter = ',',
        default_value = "s3://,s3a://,s3n://,r2://,gcs://,gs://,https://"
    )]
    pub remote_prefixes: Vec<String>,
    /// Let secrets name an ENDPOINT on a loopback or private address (a local S3 such as MinIO);
    /// link-local addresses stay refused.
    #[arg(long, env = "POND_PRIVATE_ENDPOINTS")]
    pub private_endpoints: bool,
    /// Close sessions whose client never came back (no session cookie) after this long.
    #[arg(long, env = "POND_UNRETURNED_SESSION_TIMEOUT", default_value = "60s", value_parser = humantime::parse_duration)]
    pub unreturned_session_timeout: Duration,
    /// Sessions open at once in this process, of all users; one more is refused
    /// (RESOURCE_EXHAUSTED) once sessions whose client never came back are closed.
    #[arg(long, env = "POND_MAX_SESSIONS", default_value_t = 10_000)]
    pub max_sessions: usize,
    /// Sessions one user may hold open at once (as for --max-sessions).
    #[arg(long, env = "POND_MAX_SESSIONS_PER_USER", default_value_t = 1_000)]
    pub max_sessions_per_user: usize,
    /// How long the query history (`pond_information_schema.query_history`) is kept, e.g. 30d;
    /// 0s keeps none.
    #[arg(long, env = "POND_QUERY_HISTORY_RETENTION", default_value = "30d", value_parser = humantime::parse_duration)]
    pub query_history_retention: Duration,
}

impl CoordinatorConfig {
    /// What its ducklings' DuckDB instances are opened with.
    pub fn instance_options(&self) -> pond_duckling::InstanceOptions {
        pond_duckling::InstanceOptions {
            threads: self.duckling_threads,
            memory_limit: self.duckling_memory.clone(),
            remote: pond_duckling::RemoteAccess {
                prefixes: self.remote_prefixes.iter().filter(|p| !p.is_empty()).cloned().collect(),
                private_endpoints: self.private_endpoints,
            },
        }
    }

    /// The flags' defaults, for a data directory.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        let matches = Self::augment_args(Command::new("defaults").no_binary_name(true))
            // Defaults only: a test's or an embedding program's environment must not leak in.
            .mut_args(|arg| arg.env(None))
            .try_get_matches_from(std::iter::empty::<String>())
            .expect("every coordinator flag has a default or is optional");
        Self {
            data_dir: data_dir.into(),
            ..Self::from_arg_matches(&matches).expect("defaults parse into the settings")
        }
    }
}

/// The command-line flags that give a child process the values `matches` holds for `T`'s
/// flags, as `--long=value` from the raw text the parent parsed (so the child parses exactly
/// what the parent did), whether it came from the command line, the environment or a default.
/// A flag that hides its environment value (a secret) is never put on a command line, where
/// `ps` shows it: a child must get it through its environment.
pub fn child_flags<T: Args>(matches: &ArgMatches) -> Vec<String> {
    let command = T::augment_args(Command::new("flags"));
    let mut flags = Vec::new();
    for arg in command.get_arguments() {
        let (Some(long), id) = (arg.get_long(), arg.get_id().as_str()) else {
            continue;
        };
        if arg.is_hide_env_values_set() {
            continue;
        }
        if !arg.get_action().takes_values() {
            if matches.try_get_one::<bool>(id).ok().flatten() == Some(&true) {
                flags.push(format!("--{long}"));
            }
            continue;
        }
        let Ok(Some(values)) = matches.try_get_raw(id) else {
            continue;
        };
        flags.extend(values.map(|value| format!("--{long}={}", value.to_string_lossy())));
    }
    flags
}

/// A byte count with an optional unit: `512MiB`, `10GiB`, `1GB`, `4096`.
pub fn parse_byte_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n
        .parse()
        .map_err(|_| format!("{s}: expected a number of bytes such as 10GiB"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1000,
        "kib" => 1 << 10,
        "mb" => 1000 * 1000,
        "mib" => 1 << 20,
        "gb" => 1000 * 1000 * 1000,
        "gib" => 1 << 30,
        "tb" => 1000 * 1000 * 1000 * 1000,
        "tib" => 1 << 40,
        other => return Err(format!("{s}: unknown unit {other}")),
    };
    n.checked_mul(mult).ok_or_else(|| format!("{s}: too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The settings' flags alone, with the environment ignored so the tests see only their
    /// own command lines.
    fn command() -> Command {
        CoordinatorConfig::augment_args(Command::new("pond")).mut_args(|arg| arg.env(None))
    }

    fn parse(args: &[String]) -> (CoordinatorConfig, ArgMatches) {
        let matches = command()
            .try_get_matches_from(std::iter::once("pond".to_string()).chain(args.iter().cloned()))
            .expect("flags parse");
        (
            CoordinatorConfig::from_arg_matches(&matches).expect("settings"),
            matches,
        )
    }

    #[test]
    fn defaults_are_the_flags_defaults() {
        let config = CoordinatorConfig::new("/data");
        assert_eq!(config.data_dir, PathBuf::from("/data"));
        assert_eq!(config.storage_url, None);
        assert_eq!(config.cache_bytes, 10 << 30);
        assert_eq!(config.max_concurrent_queries, 32);
        assert_eq!(config.session_idle_timeout, Duration::from_secs(30 * 60));
        assert_eq!(config.unreturned_session_timeout, Duration::from_secs(60));
        assert_eq!(config.query_timeout, None);
        assert_eq!(config.max_result_bytes, None);
        assert_eq!(config.duckling_idle_timeout, None);
        assert_eq!(config.max_sessions, 10_000);
        assert_eq!(config.max_sessions_per_user, 1_000);
        assert_eq!(config.query_history_retention, Duration::from_secs(30 * 24 * 3600));
        let (parsed, _) = parse(&[]);
        assert_eq!(
            CoordinatorConfig {
                data_dir: "/data".into(),
                ..parsed
            },
            config
        );
    }

    #[test]
    fn child_flags_reproduce_the_parents_settings() {
        for args in [
            vec![],
            [
                "--cache-size=1GiB",
                "--duckling-threads=3",
                "--adaptive-threads=false",
                "--duckling-memory=4GB",
                "--query-timeout=5m 3s",
                "--max-result-bytes=512MiB",
                "--max-concurrent-queries=7",
                "--duckling-idle-timeout=10m",
                "--session-idle-timeout=2h",
                "--unreturned-session-timeout=90s",
                "--max-sessions=20",
                "--max-sessions-per-user=3",
                "--query-history-retention=0s",
            ]
            .map(String::from)
            .to_vec(),
        ] {
            let (parent, matches) = parse(&args);
            let (child, _) = parse(&child_flags::<CoordinatorConfig>(&matches));
            assert_eq!(child, parent, "{args:?}");
        }
    }

    #[test]
    fn every_flag_has_an_environment_variable() {
        let command = CoordinatorConfig::augment_args(Command::new("pond"));
        let flags: Vec<_> = command.get_arguments().collect();
        assert!(!flags.is_empty());
        for arg in flags {
            assert!(arg.get_env().is_some(), "--{:?} has no env =", arg.get_long());
        }
    }

    #[test]
    fn byte_sizes() {
        assert_eq!(parse_byte_size("4096"), Ok(4096));
        assert_eq!(parse_byte_size("10GiB"), Ok(10 << 30));
        assert_eq!(parse_byte_size("1GB"), Ok(1_000_000_000));
        assert!(parse_byte_size("1XB").is_err());
        assert!(parse_byte_size("99999999999TiB").is_err());
    }
}
