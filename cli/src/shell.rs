//! `pond shell` and `pond sql`: a local DuckDB with the cloud attached, with DuckDB CLI habits
//! (dot commands, output modes, timer, history), on [`pond_client::DualSession`].

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use arrow::array::RecordBatch;
use clap::{Args, ValueEnum};
use pond_client::{ConnectOptions, DualSession, Outcome, Venue};

/// Connection flags shared by the client commands.
#[derive(Args, Clone)]
pub struct ClientArgs {
    /// The Pond server.
    #[arg(long, env = "POND_SERVER", default_value = "pond://127.0.0.1:31337")]
    pub server: String,
    /// The token (without one the session is local only).
    #[arg(long, env = "POND_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// A PEM file of CAs to trust for a TLS server (instead of the system's roots).
    #[arg(long, env = "POND_TLS_CA")]
    pub tls_ca: Option<PathBuf>,
}

#[derive(Args)]
pub struct ShellArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// The local DuckDB file (in memory when omitted).
    pub local_db: Option<PathBuf>,
}

#[derive(Args)]
pub struct SqlArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// SQL to run (several statements allowed).
    #[arg(short = 'c', long = "command")]
    pub command: Option<String>,
    /// A file of SQL to run.
    #[arg(short = 'f', long = "file")]
    pub file: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Mode::Table)]
    pub format: Mode,
    /// The local DuckDB file (in memory when omitted).
    pub local_db: Option<PathBuf>,
}

/// Output modes (`.mode` in the shell, `--format` for `pond sql`).
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum, Debug)]
pub enum Mode {
    Table,
    Csv,
    Json,
    Line,
}

async fn open(client: &ClientArgs, local_db: Option<&PathBuf>, interactive: bool) -> Result<DualSession> {
    let server = match &client.token {
        Some(token) if !token.is_empty() => {
            let mut options = ConnectOptions::parse(&client.server)?;
            options.token.get_or_insert_with(|| token.clone());
            if let Some(ca) = &client.tls_ca {
                options.tls = true;
                options.tls_ca_pem = Some(std::fs::read(ca)?);
            }
            Some(options)
        }
        _ => None,
    };
    let connected = server.is_some();
    let path = local_db.map(PathBuf::as_path);
    let mut session = match DualSession::open(path, server).await {
        Ok(s) => s,
        // The shell still opens on the laptop's data when the cloud is out of reach.
        Err(e) if interactive && connected => {
            eprintln!("Could not reach {}: {e}. Local DuckDB only.", client.server);
            DualSession::open(path, None).await?
        }
        Err(e) => return Err(e.into()),
    };
    if connected && session.cloud().is_some() {
        if let Err(e) = session.run("ATTACH 'pond:'").await {
            if !interactive {
                return Err(e.into());
            }
            eprintln!("ATTACH 'pond:' failed: {e}");
        }
    } else if interactive && !connected {
        eprintln!("No token (--token or POND_TOKEN): local DuckDB only.");
    }
    if interactive && std::io::stderr().is_terminal() {
        session.on_progress(|p| {
            if p.done {
                eprintln!("\r{}: {} rows uploaded", p.what, p.rows);
            } else {
                eprint!("\r{}: {} rows…", p.what, p.rows);
            }
        });
    }
    Ok(session)
}

/// `pond sql`: runs the statements and exits 1 on the first error.
pub async fn sql(args: SqlArgs) -> Result<std::process::ExitCode> {
    let script = match (&args.command, &args.file) {
        (Some(c), _) => c.clone(),
        (None, Some(f)) => std::fs::read_to_string(f)?,
        (None, None) => {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)?;
            s
        }
    };
    let mut session = match open(&args.client, args.local_db.as_ref(), false).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("Error: {e}");
            return Ok(std::process::ExitCode::FAILURE);
        }
    };
    let mut out = std::io::stdout().lock();
    for statement in pond_client::split_statements(&script) {
        match session.run(&statement).await {
            Ok(outcome) => {
                if outcome.is_query {
                    print_outcome(&mut out, &outcome, args.format)?;
                }
            }
            Err(e) => {
                out.flush()?;
                eprintln!("Error: {e}");
                return Ok(std::process::ExitCode::FAILURE);
            }
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// `pond shell`: the interactive client.
#[allow(clippy::print_stdout)]
pub async fn shell(args: ShellArgs) -> Result<std::process::ExitCode> {
    let mut session = open(&args.client, args.local_db.as_ref(), true).await?;
    let mut editor = rustyline::DefaultEditor::new()?;
    let history = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".pond_history"));
    if let Some(h) = &history {
        let _ = editor.load_history(h);
    }
    let mut mode = Mode::Table;
    let mut timer = false;
    let mut buffer = String::new();
    eprintln!("pond shell: a local DuckDB with the cloud attached. .help for commands.");
    loop {
        let prompt = if buffer.is_empty() { "pond> " } else { "  ...> " };
        let line = match editor.readline(prompt) {
            Ok(l) => l,
            Err(rustyline::error::ReadlineError::Interrupted) => {
                buffer.clear();
                continue;
            }
            Err(rustyline::error::ReadlineError::Eof) => break,
            Err(e) => return Err(e.into()),
        };
        if buffer.is_empty() && line.trim_start().starts_with('.') {
            let _ = editor.add_history_entry(line.as_str());
            let mut parts = line.split_whitespace();
            let command = parts.next().unwrap_or_default();
            let arg = parts.next();
            let sql = match (command, arg) {
                (".quit" | ".exit", _) => break,
                (".help", _) => {
                    println!(
                        ".mode table|csv|json|line   output format\n.timer on|off               time each statement\n\
                         .tables                     tables, local and cloud\n.databases                  databases, local and cloud\n\
                         .quit                       leave"
                    );
                    continue;
                }
                (".mode", Some(m)) => {
                    match Mode::from_str(m, true) {
                        Ok(m) => mode = m,
                        Err(_) => eprintln!("Error: unknown mode {m}; use table, csv, json or line"),
                    }
                    continue;
                }
                (".timer", Some(v)) => {
                    timer = v.eq_ignore_ascii_case("on");
                    continue;
                }
                (".tables", _) => {
                    print_tables(&mut session, mode).await;
                    continue;
                }
                (".databases", _) => "SHOW DATABASES".to_string(),
                _ => {
                    eprintln!("Error: unknown command {command}; .help lists them");
                    continue;
                }
            };
            run_and_print(&mut session, &sql, mode, timer).await;
            continue;
        }
        buffer.push_str(&line);
        buffer.push('\n');
        if !statement_complete(&buffer) {
            continue;
        }
        let _ = editor.add_history_entry(buffer.trim_end());
        let text = std::mem::take(&mut buffer);
        for statement in pond_client::split_statements(&text) {
            if !run_and_print(&mut session, &statement, mode, timer).await {
                break;
            }
        }
    }
    if let Some(h) = &history {
        let _ = editor.save_history(h);
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// `.tables`: the local tables, then the cloud's.
async fn print_tables(session: &mut DualSession, mode: Mode) {
    let local = "SELECT database_name, schema_name, table_name FROM duckdb_tables() WHERE NOT internal ORDER BY ALL";
    run_and_print(session, local, mode, false).await;
    let Some(cloud) = session.cloud() else { return };
    let remote = "SELECT table_catalog AS database_name, table_schema AS schema_name, table_name \
                  FROM information_schema.tables ORDER BY ALL";
    match cloud.query_with_schema(remote).await {
        Ok((schema, batches)) => {
            let outcome = Outcome {
                schema,
                batches,
                venue: Venue::Remote,
                bytes_moved: 0,
                planning_bytes: 0,
                plan: None,
                is_query: true,
            };
            let _ = print_outcome(&mut std::io::stdout().lock(), &outcome, mode);
        }
        Err(e) => eprintln!("Error: {e}"),
    }
}

/// Whether the buffer holds complete statements: its last token is `;`. A buffer DuckDB's
/// lexer cannot finish (an open string, dollar quote, quoted name or comment) waits for more.
fn statement_complete(buffer: &str) -> bool {
    pond_duckling::lexer::tokenize(buffer).is_ok_and(|tokens| tokens.last().is_some_and(|t| t.is_punct(';')))
}

/// How long a statement runs before the spinner shows: quick answers print with no flicker.
const SPINNER_DELAY: Duration = Duration::from_secs(1);
/// How often a shown spinner is redrawn.
const SPINNER_TICK: Duration = Duration::from_millis(200);

/// The elapsed time and bytes moved of a running statement, on stderr, once it has run for
/// [`SPINNER_DELAY`].
struct Spinner {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Spinner {
    fn start(link: Arc<pond_client::Link>, started: Instant) -> Self {
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let base = link.moved();
        let task = tokio::spawn(async move {
            let mut drawn = false;
            let mut wait = SPINNER_DELAY;
            loop {
                tokio::select! {
                    // A dropped sender stops it too, so the spinner never outlives its statement.
                    _ = &mut stopped => break,
                    () = tokio::time::sleep(wait) => {
                        eprint!(
                            "\r{:.1} s, {} moved…",
                            started.elapsed().as_secs_f64(),
                            pond_planner::human_bytes(link.moved().saturating_sub(base) as f64)
                        );
                        drawn = true;
                        wait = SPINNER_TICK;
                    }
                }
            }
            // Only a drawn line is cleared, so quick statements write no stray escape codes.
            if drawn {
                eprint!("\r\x1b[K");
            }
        });
        Self { stop, task }
    }

    /// Stops the spinner at once (it wakes on the signal, not on its next tick) and waits until
    /// its line is cleared, so the result never interleaves with a redraw.
    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

async fn run_and_print(session: &mut DualSession, sql: &str, mode: Mode, timer: bool) -> bool {
    let started = Instant::now();
    let spinner = std::io::stderr()
        .is_terminal()
        .then(|| Spinner::start(Arc::clone(session.link()), started));
    // Ctrl-C interrupts the statement, as in DuckDB's CLI, instead of ending the shell.
    let interrupt = session.local().interrupt_handle();
    let (cancel, cancelled) = tokio::sync::oneshot::channel::<()>();
    let watcher = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            interrupt.interrupt();
            let _ = cancel.send(());
        }
    });
    let result = tokio::select! {
        r = session.run(sql) => r,
        Ok(()) = cancelled => Err(pond_client::ClientError::Invalid("Interrupted".into())),
    };
    watcher.abort();
    if let Some(s) = spinner {
        s.stop().await;
    }
    let mut out = std::io::stdout().lock();
    match result {
        Ok(outcome) => {
            if outcome.is_query {
                let _ = print_outcome(&mut out, &outcome, mode);
            } else if outcome.venue == Venue::Client {
                // Session commands answer with a message, on stderr like DuckDB's notices.
                for line in message_lines(&outcome) {
                    eprintln!("{line}");
                }
            }
            if timer {
                let _ = writeln!(
                    out,
                    "Run Time: {:.3} s ({}; {} moved)",
                    started.elapsed().as_secs_f64(),
                    match outcome.venue {
                        Venue::Client => "client",
                        Venue::Local => "local",
                        Venue::Remote => "remote",
                        Venue::Dual => "dual",
                    },
                    pond_planner::human_bytes(outcome.bytes_moved as f64)
                );
            }
            true
        }
        Err(e) => {
            let _ = out.flush();
            eprintln!("Error: {e}");
            false
        }
    }
}

/// A client command's message rows.
fn message_lines(outcome: &Outcome) -> Vec<String> {
    let mut out = Vec::new();
    for b in &outcome.batches {
        if let Some(c) = b.column(0).as_any().downcast_ref::<arrow::array::StringArray>() {
            out.extend(c.iter().flatten().map(str::to_string));
        }
    }
    out
}

/// The text of an `EXPLAIN` result: DuckDB's (`explain_key`, `explain_value`) rows, whose values
/// are the plan as DuckDB's CLI prints it, or Pond's dual plan, one line per row.
fn plan_text(outcome: &Outcome) -> Option<String> {
    let names: Vec<&str> = outcome.schema.fields().iter().map(|f| f.name().as_str()).collect();
    let column = match names.as_slice() {
        ["explain_key", "explain_value"] => 1,
        ["explain"] if outcome.plan.is_some() => 0,
        _ => return None,
    };
    let mut text = String::new();
    for b in &outcome.batches {
        let c = b.column(column).as_any().downcast_ref::<arrow::array::StringArray>()?;
        for v in c.iter() {
            text.push_str(v.unwrap_or_default());
            if !text.ends_with('\n') {
                text.push('\n');
            }
        }
    }
    Some(text)
}

/// Prints a result in `mode`.
pub fn print_outcome(out: &mut impl Write, outcome: &Outcome, mode: Mode) -> Result<()> {
    let batches: Vec<RecordBatch> = outcome.batches.iter().filter(|b| b.num_rows() > 0).cloned().collect();
    match mode {
        Mode::Table => {
            if outcome.schema.fields().is_empty() {
                return Ok(());
            }
            if let Some(plan) = plan_text(outcome) {
                // A plan is a drawing: in a table cell its lines would be escaped or boxed.
                write!(out, "{plan}")?;
                return Ok(());
            }
            let shown = if batches.is_empty() {
                vec![RecordBatch::new_empty(Arc::clone(&outcome.schema))]
            } else {
                batches
            };
            writeln!(out, "{}", arrow::util::pretty::pretty_format_batches(&shown)?)?;
        }
        Mode::Csv => {
            let mut writer = arrow::csv::WriterBuilder::new().with_header(true).build(&mut *out);
            if batches.is_empty() {
                writer.write(&RecordBatch::new_empty(Arc::clone(&outcome.schema)))?;
            }
            for b in &batches {
                writer.write(b)?;
            }
        }
        Mode::Json => {
            let mut writer = arrow::json::ArrayWriter::new(&mut *out);
            let refs: Vec<&RecordBatch> = batches.iter().collect();
            writer.write_batches(&refs)?;
            writer.finish()?;
            if batches.is_empty() {
                write!(out, "[]")?;
            }
            writeln!(out)?;
        }
        Mode::Line => {
            let names: Vec<String> = outcome.schema.fields().iter().map(|f| f.name().clone()).collect();
            let width = names.iter().map(String::len).max().unwrap_or(0);
            let options = arrow::util::display::FormatOptions::default().with_null("NULL");
            for b in &batches {
                let formatters = b
                    .columns()
                    .iter()
                    .map(|c| arrow::util::display::ArrayFormatter::try_new(c.as_ref(), &options))
                    .collect::<Result<Vec<_>, _>>()?;
                for row in 0..b.num_rows() {
                    for (name, f) in names.iter().zip(&formatters) {
                        writeln!(out, "{name:>width$} = {}", f.value(row))?;
                    }
                    writeln!(out)?;
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::statement_complete;

    #[test]
    fn statements_complete_only_outside_quotes_and_comments() {
        assert!(statement_complete("SELECT 1;\n"));
        assert!(!statement_complete("INSERT INTO t VALUES ('a;\n"));
        assert!(statement_complete("INSERT INTO t VALUES ('a;\nb');"));
        assert!(!statement_complete("SELECT 1; -- done\nSELECT 2"));
        assert!(statement_complete("SELECT 1 /* ; */;"));
        assert!(!statement_complete("SELECT 1 /* ;"));
    }

    #[test]
    fn statements_complete_as_duckdb_quotes() {
        assert!(!statement_complete("SELECT $$a;\n"));
        assert!(statement_complete("SELECT $$a;\n$$;"));
        assert!(!statement_complete("SELECT $t$ $$; $t;\n"));
        assert!(!statement_complete("SELECT E'\\';\n"));
        assert!(statement_complete("SELECT E'\\'';"));
        assert!(!statement_complete("SELECT /* /* */ ;\n"));
        assert!(statement_complete("SELECT /* /* */ */ 1;"));
        assert!(!statement_complete("SELECT \"a;\n"));
    }
}
