//! End-to-end tests: the real `pond` binary, driven over loopback by Pond's Rust client and by
//! arrow-flight's Flight SQL client.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use arrow::array::{Array, AsArray, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::Int64Type;
use futures::TryStreamExt;
use pond_client::PondClient;

/// A running `pond serve` on a fresh data directory.
struct Server {
    child: Child,
    url: String,
    data_dir: PathBuf,
    _dir: Option<tempfile::TempDir>,
}

/// A loopback address no one listens on now, for a server's metrics.
fn free_address() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

fn pond() -> Command {
    Command::new(env!("CARGO_BIN_EXE_pond"))
}

impl Server {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("data");
        let mut s = Self::start_on(&data_dir);
        s._dir = Some(dir);
        s
    }

    fn start_on(data_dir: &Path) -> Self {
        Self::start_with(data_dir, &[])
    }

    fn start_with(data_dir: &Path, extra: &[&str]) -> Self {
        let mut child = pond()
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .args(extra)
            .env("POND_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn pond serve");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let addr = line
            .split("://")
            .nth(1)
            .unwrap_or_else(|| panic!("no listening line, got {line:?}"))
            .trim()
            .to_string();
        Self {
            child,
            url: format!("pond://{addr}"),
            data_dir: data_dir.to_path_buf(),
            _dir: None,
        }
    }

    fn admin_token(&self) -> String {
        std::fs::read_to_string(self.data_dir.join("admin.token"))
            .unwrap()
            .trim()
            .to_string()
    }

    fn token(&self, user: &str, read_only: bool) -> String {
        let mut cmd = pond();
        cmd.args(["token", "create", "--user", user, "--data-dir"])
            .arg(&self.data_dir);
        if read_only {
            cmd.arg("--read-only");
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    /// `token`'s options, and a client of them over a link that counts every byte.
    async fn metered_client(
        &self,
        token: &str,
    ) -> (
        pond_client::ConnectOptions,
        PondClient,
        std::sync::Arc<pond_client::Link>,
    ) {
        let mut options = pond_client::ConnectOptions::parse(&self.url).unwrap();
        options.token = Some(token.to_string());
        let link = pond_client::Link::unlimited();
        let client = PondClient::connect_over(options.clone(), std::sync::Arc::clone(&link))
            .await
            .unwrap();
        (options, client, link)
    }

    /// A dual-execution session of `token`'s user, its local DuckDB at `local` (in memory
    /// without).
    async fn dual_session(&self, token: &str, local: Option<&Path>) -> pond_client::DualSession {
        let mut options = pond_client::ConnectOptions::parse(&self.url).unwrap();
        options.token = Some(token.to_string());
        pond_client::DualSession::open(local, Some(options)).await.unwrap()
    }

    async fn client(&self, token: &str) -> PondClient {
        PondClient::connect(&format!("{}?token={token}", self.url))
            .await
            .unwrap()
    }

    fn stop(mut self) {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "pond serve exited with {status}");
                return;
            }
            assert!(Instant::now() < deadline, "pond serve did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn i64_at(batches: &[RecordBatch], col: usize) -> Vec<i64> {
    batches
        .iter()
        .flat_map(|b| b.column(col).as_primitive::<Int64Type>().values().to_vec())
        .collect()
}

/// How many of the user's tables are named `name`.
async fn tables_named(client: &mut PondClient, name: &str) -> i64 {
    let sql = format!("SELECT count(*) FROM duckdb_tables() WHERE table_name = '{name}'");
    i64_at(&client.query(&sql).await.unwrap(), 0)[0]
}

fn strings_at(batches: &[RecordBatch], col: usize) -> Vec<String> {
    batches
        .iter()
        .flat_map(|b| {
            let a = b.column(col).as_string::<i32>().clone();
            (0..a.len()).map(move |i| a.value(i).to_string()).collect::<Vec<_>>()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_queries_updates_and_errors() {
    let server = Server::start();
    let mut c = server.client(&server.admin_token()).await;

    let b = c.query("SELECT 42::BIGINT AS answer").await.unwrap();
    assert_eq!(i64_at(&b, 0), vec![42]);

    c.execute("CREATE TABLE t (id BIGINT PRIMARY KEY, name VARCHAR)")
        .await
        .unwrap();
    let n = c
        .execute("INSERT INTO t SELECT range, 'n' || range FROM range(1000)")
        .await
        .unwrap();
    assert_eq!(n, 1000);
    let b = c
        .query("SELECT count(*)::BIGINT, sum(id)::BIGINT FROM t")
        .await
        .unwrap();
    assert_eq!(i64_at(&b, 0), vec![1000]);
    assert_eq!(i64_at(&b, 1), vec![499500]);

    // A large result streams in several batches with the announced schema.
    let (schema, batches) = c
        .query_with_schema("SELECT range AS i FROM range(300000)")
        .await
        .unwrap();
    assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 300000);
    assert!(batches.iter().all(|b| b.schema() == schema));

    // Errors: InvalidArgument with DuckDB's message naming the table; the connection survives.
    let err = c.query("SELECT * FROM no_such_table").await.unwrap_err();
    assert_eq!(err.code(), Some(tonic::Code::InvalidArgument), "{err}");
    assert!(err.to_string().contains("no_such_table"), "{err}");
    let err = c.query("SELEC 1").await.unwrap_err();
    assert_eq!(err.code(), Some(tonic::Code::InvalidArgument), "{err}");
    assert_eq!(i64_at(&c.query("SELECT 7::BIGINT").await.unwrap(), 0), vec![7]);

    // A failed statement leaves committed data intact.
    let err = c.execute("INSERT INTO t VALUES (1, 'duplicate')").await.unwrap_err();
    assert!(err.to_string().to_lowercase().contains("duplicate"), "{err}");
    assert_eq!(
        i64_at(&c.query("SELECT count(*)::BIGINT FROM t").await.unwrap(), 0),
        vec![1000]
    );
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepared_statements_bind_many_rows() {
    let server = Server::start();
    let mut c = server.client(&server.admin_token()).await;
    c.execute("CREATE TABLE p (a BIGINT, b VARCHAR)").await.unwrap();
    let mut insert = c.prepare("INSERT INTO p VALUES (?, ?)").await.unwrap();
    assert!(
        insert.dataset_schema().unwrap().fields().is_empty(),
        "an update has no dataset schema"
    );
    assert_eq!(insert.parameter_schema().unwrap().fields().len(), 2);
    let params = RecordBatch::try_from_iter(vec![
        ("a", std::sync::Arc::new(Int64Array::from(vec![1, 2, 3])) as _),
        ("b", std::sync::Arc::new(StringArray::from(vec!["x", "y", "z"])) as _),
    ])
    .unwrap();
    insert.set_parameters(params).unwrap();
    assert_eq!(insert.execute_update().await.unwrap(), 3);

    let mut select = c.prepare("SELECT b FROM p WHERE a = $1").await.unwrap();
    assert_eq!(select.dataset_schema().unwrap().fields().len(), 1);
    let params = RecordBatch::try_from_iter(vec![("a", std::sync::Arc::new(Int64Array::from(vec![2])) as _)]).unwrap();
    select.set_parameters(params).unwrap();
    let info = select.execute().await.unwrap();
    let ticket = info.endpoint[0].ticket.clone().unwrap();
    let batches = fetch_all(&mut c, ticket).await;
    assert_eq!(strings_at(&batches, 0), vec!["y"]);
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_transactions_and_sessions() {
    let server = Server::start();
    let mut c = server.client(&server.admin_token()).await;

    let batch = RecordBatch::try_from_iter(vec![(
        "id",
        std::sync::Arc::new(Int64Array::from((0..10_000).collect::<Vec<i64>>())) as _,
    )])
    .unwrap();
    assert_eq!(c.ingest("ingested", vec![batch.clone(), batch]).await.unwrap(), 20_000);
    assert_eq!(
        i64_at(&c.query("SELECT count(*)::BIGINT FROM ingested").await.unwrap(), 0),
        vec![20_000]
    );

    // Transactions through Flight SQL: rollback discards, commit keeps.
    c.execute("CREATE TABLE tx (v BIGINT)").await.unwrap();
    let fs = c.flight_sql();
    let txn = fs.begin_transaction().await.unwrap();
    fs.execute_update("INSERT INTO tx VALUES (1)".into(), Some(txn.clone()))
        .await
        .unwrap();
    fs.end_transaction(txn, arrow_flight::sql::EndTransaction::Rollback)
        .await
        .unwrap();
    let txn = fs.begin_transaction().await.unwrap();
    fs.execute_update("INSERT INTO tx VALUES (2)".into(), Some(txn.clone()))
        .await
        .unwrap();
    fs.end_transaction(txn, arrow_flight::sql::EndTransaction::Commit)
        .await
        .unwrap();
    assert_eq!(
        i64_at(&c.query("SELECT coalesce(sum(v), 0)::BIGINT FROM tx").await.unwrap(), 0),
        vec![2]
    );

    // The session keeps its database and temporary tables (the client carries the cookie).
    c.execute("CREATE DATABASE analytics").await.unwrap();
    c.execute("USE analytics").await.unwrap();
    c.execute("CREATE TABLE only_here (x BIGINT)").await.unwrap();
    c.execute("CREATE TEMP TABLE scratch AS SELECT 5::BIGINT AS x")
        .await
        .unwrap();
    let b = c.query("SELECT current_database()").await.unwrap();
    assert_eq!(strings_at(&b, 0), vec!["analytics"]);
    assert_eq!(i64_at(&c.query("SELECT x FROM scratch").await.unwrap(), 0), vec![5]);
    let b = c.query("SHOW DATABASES").await.unwrap();
    assert_eq!(strings_at(&b, 0), vec!["analytics", "my_db"]);
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn databases_persist_and_users_are_isolated() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start_on(&data);
    let alice = server.token("alice", false);
    let bob = server.token("bob", false);
    let mut a = server.client(&alice).await;
    a.execute("CREATE TABLE secrets AS SELECT 'alice-only' AS s")
        .await
        .unwrap();
    a.execute("CREATE DATABASE sales").await.unwrap();
    a.execute("CREATE TABLE sales.main.orders AS SELECT range AS id FROM range(10)")
        .await
        .unwrap();

    let mut b = server.client(&bob).await;
    let err = b.query("SELECT * FROM secrets").await.unwrap_err();
    assert!(err.to_string().contains("secrets"), "{err}");
    let err = b.query("SELECT * FROM sales.main.orders").await.unwrap_err();
    assert_eq!(err.code(), Some(tonic::Code::InvalidArgument), "{err}");
    let dbs = strings_at(&b.query("SHOW DATABASES").await.unwrap(), 0);
    assert_eq!(dbs, vec!["my_db"]);
    let catalogs = strings_at(
        &b.query("SELECT database_name FROM duckdb_databases() WHERE NOT internal ORDER BY 1")
            .await
            .unwrap(),
        0,
    );
    assert!(!catalogs.contains(&"sales".to_string()), "{catalogs:?}");
    server.stop();

    let server = Server::start_on(&data);
    let mut a = server.client(&alice).await;
    assert_eq!(
        strings_at(&a.query("SELECT s FROM secrets").await.unwrap(), 0),
        vec!["alice-only"]
    );
    assert_eq!(
        i64_at(
            &a.query("SELECT count(*)::BIGINT FROM sales.main.orders").await.unwrap(),
            0
        ),
        vec![10]
    );
    a.execute("DROP DATABASE sales").await.unwrap();
    assert!(a.query("SELECT * FROM sales.main.orders").await.is_err());
    a.execute("UNDROP DATABASE sales").await.unwrap();
    assert_eq!(
        i64_at(
            &a.query("SELECT count(*)::BIGINT FROM sales.main.orders").await.unwrap(),
            0
        ),
        vec![10]
    );
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_bad_tokens_and_escapes() {
    let server = Server::start();
    let bad = PondClient::connect(&format!("{}?token=not-a-token", server.url))
        .await
        .unwrap()
        .query("SELECT 1")
        .await;
    assert_eq!(bad.unwrap_err().code(), Some(tonic::Code::Unauthenticated));
    let mut none = PondClient::connect(&server.url).await.unwrap();
    assert_eq!(
        none.query("SELECT 1").await.unwrap_err().code(),
        Some(tonic::Code::Unauthenticated)
    );

    let mut c = server.client(&server.admin_token()).await;
    let marker = std::env::temp_dir().join(format!("pond_escape_{}", std::process::id()));
    let attempts = [
        "SELECT * FROM read_csv('/etc/passwd')".to_string(),
        format!("COPY (SELECT 1) TO '{}'", marker.display()),
        format!("ATTACH '{}' AS x", marker.display()),
        "INSTALL httpfs".into(),
        "LOAD httpfs".into(),
        "SET enable_external_access = true".into(),
        "SELECT * FROM arrow_scan(1, 2, 3)".into(),
        "select * from READ_TEXT('/etc/hostname')".into(),
    ];
    for sql in attempts {
        let err = c.query(&sql).await.expect_err(&sql);
        assert!(
            matches!(
                err.code(),
                Some(tonic::Code::PermissionDenied) | Some(tonic::Code::InvalidArgument)
            ),
            "{sql}: {err}"
        );
        assert_eq!(
            i64_at(&c.query("SELECT 1::BIGINT").await.unwrap(), 0),
            vec![1],
            "usable after {sql}"
        );
    }
    assert!(!marker.exists(), "a file escaped the sandbox");

    let ro = server.token("reader", true);
    let mut r = server.client(&ro).await;
    assert_eq!(i64_at(&r.query("SELECT 3::BIGINT").await.unwrap(), 0), vec![3]);
    let err = r.execute("CREATE TABLE nope (x INT)").await.unwrap_err();
    assert_eq!(err.code(), Some(tonic::Code::PermissionDenied), "{err}");

    // A read-only token cannot hide a write in front of a query, nor behind SQL PREPARE.
    let mut w = server.client(&server.token("reader", false)).await;
    w.execute("CREATE TABLE kept AS SELECT 1 AS x").await.unwrap();
    for sql in ["DELETE FROM kept; SELECT 1", "PREPARE p AS DELETE FROM kept"] {
        let err = r.query(sql).await.expect_err(sql);
        assert_eq!(err.code(), Some(tonic::Code::PermissionDenied), "{sql}: {err}");
    }
    assert_eq!(
        i64_at(&r.query("SELECT count(*)::BIGINT FROM kept").await.unwrap(), 0),
        vec![1]
    );

    // A decimal parameter DuckDB cannot hold (negative scale, too many digits) is an error,
    // not a crash.
    let mut stmt = c.prepare("SELECT $1::VARCHAR").await.unwrap();
    let odd = arrow::array::Decimal128Array::from(vec![123i128])
        .with_precision_and_scale(3, -2)
        .unwrap();
    let params = RecordBatch::try_from_iter(vec![("p", std::sync::Arc::new(odd) as _)]).unwrap();
    stmt.set_parameters(params).unwrap();
    let info = stmt.execute().await.unwrap();
    let ticket = info.endpoint[0].ticket.clone().unwrap();
    let fetched: Result<Vec<RecordBatch>, _> = match c.flight_sql().do_get(ticket).await {
        Ok(s) => s.try_collect().await,
        Err(e) => Err(e),
    };
    if let Ok(b) = fetched {
        // If DuckDB took it, it took it as the exact value.
        assert_eq!(strings_at(&b, 0), vec!["12300"]);
    }
    assert_eq!(
        i64_at(&c.query("SELECT 5::BIGINT").await.unwrap(), 0),
        vec![5],
        "the server survived"
    );
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_concurrent_clients() {
    let server = Server::start();
    let token = server.admin_token();
    let mut tasks = Vec::new();
    for i in 0..8i64 {
        let url = format!("{}?token={token}", server.url);
        tasks.push(tokio::spawn(async move {
            let mut c = PondClient::connect(&url).await.unwrap();
            for j in 0..20i64 {
                let b = c
                    .query(&format!(
                        "SELECT ({i} * 1000 + {j})::BIGINT, count(*)::BIGINT FROM range(10000)"
                    ))
                    .await
                    .unwrap();
                assert_eq!(i64_at(&b, 0), vec![i * 1000 + j]);
                assert_eq!(i64_at(&b, 1), vec![10000]);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_stream_cancels_the_query() {
    let server = Server::start();
    let mut c = server.client(&server.admin_token()).await;
    let mut stream = c
        .query_stream("SELECT range AS i FROM range(1000000000000)")
        .await
        .unwrap();
    let first = stream.try_next().await.unwrap().unwrap();
    assert!(first.num_rows() > 0);
    drop(stream);
    // The server interrupted the query and the session is immediately usable again.
    let t = Instant::now();
    assert_eq!(i64_at(&c.query("SELECT 9::BIGINT").await.unwrap(), 0), vec![9]);
    assert!(t.elapsed() < Duration::from_secs(10));
    server.stop();
}

/// DoGet of `ticket` on `c`, every batch.
async fn fetch_all(c: &mut PondClient, ticket: arrow_flight::Ticket) -> Vec<RecordBatch> {
    c.flight_sql()
        .do_get(ticket)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap()
}

/// GetFlightInfo for `sql` as Pond's client sends it: asking for the result inline.
async fn plan_inline(c: &mut PondClient, token: &str, sql: &str) -> Result<arrow_flight::FlightInfo, tonic::Status> {
    use arrow_flight::sql::ProstMessageExt;
    use prost::Message;
    let cmd = arrow_flight::sql::CommandStatementQuery {
        query: sql.into(),
        transaction_id: None,
    };
    let mut request = tonic::Request::new(arrow_flight::FlightDescriptor::new_cmd(cmd.as_any().encode_to_vec()));
    request
        .metadata_mut()
        .insert(pond_proto::inline::REQUEST_HEADER, "65536".parse().unwrap());
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    c.flight_sql()
        .inner_mut()
        .get_flight_info(request)
        .await
        .map(|r| r.into_inner())
}

/// A small result travels inside the FlightInfo when the client asks (one round trip); a
/// large one is parked with the rows already gathered and streams in order; standard
/// clients, which do not ask, get standard Flight SQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_results_come_with_the_flight_info() {
    let server = Server::start();
    let token = server.admin_token();
    let mut c = server.client(&token).await;

    let info = plan_inline(&mut c, &token, "SELECT 41 + 1 AS answer").await.unwrap();
    assert!(info.endpoint.is_empty(), "{info:?}");
    assert!(info.app_metadata.starts_with(pond_proto::inline::MAGIC));
    assert_eq!(info.total_records, 1);
    // The schema comes once, in the result's IPC stream; the command is not echoed back.
    assert!(info.schema.is_empty() && info.flight_descriptor.is_none(), "{info:?}");
    assert_eq!(i64_at(&c.query("SELECT (41 + 1)::BIGINT").await.unwrap(), 0), vec![42]);

    // Past the limit: parked, and DoGet streams every row, the gathered ones first.
    let info = plan_inline(&mut c, &token, "SELECT range AS i FROM range(300000)")
        .await
        .unwrap();
    assert!(info.app_metadata.is_empty());
    let ticket = info.endpoint[0].ticket.clone().unwrap();
    let batches = fetch_all(&mut c, ticket).await;
    let values = i64_at(&batches, 0);
    assert_eq!(values.len(), 300_000);
    assert!(values.iter().enumerate().all(|(n, v)| *v == n as i64));

    // An error is the GetFlightInfo's own.
    let err = plan_inline(&mut c, &token, "SELECT error('boom at planning')")
        .await
        .unwrap_err();
    assert!(err.message().contains("boom at planning"), "{err}");

    // A client that does not ask gets an endpoint to fetch.
    let info = c.flight_sql().execute("SELECT 1::BIGINT".into(), None).await.unwrap();
    assert_eq!(info.endpoint.len(), 1);
    assert!(info.app_metadata.is_empty());
    assert!(!info.schema.is_empty());
    let ticket = info.endpoint[0].ticket.clone().unwrap();
    let batches = fetch_all(&mut c, ticket).await;
    assert_eq!(i64_at(&batches, 0), vec![1]);

    // A statement answered inline has released the session's connection: the next one sees
    // its temporary table.
    for n in 0..50i64 {
        c.query(&format!("CREATE OR REPLACE TEMP TABLE t AS SELECT {n}::BIGINT AS v"))
            .await
            .unwrap();
        assert_eq!(i64_at(&c.query("SELECT v FROM t").await.unwrap(), 0), vec![n]);
    }

    // Queries planned and not fetched yet hold nothing the session needs, and are fetched
    // whenever the client comes for them, in any order.
    let mut tickets = Vec::new();
    for n in 0..40i64 {
        let sql = format!("SELECT range + {n} AS v FROM range(100000)");
        let info = c.flight_sql().execute(sql, None).await.unwrap();
        tickets.push(info.endpoint[0].ticket.clone().unwrap());
    }
    assert_eq!(i64_at(&c.query("SELECT 7::BIGINT").await.unwrap(), 0), vec![7]);
    for (n, ticket) in tickets.into_iter().enumerate().rev() {
        let values = i64_at(&fetch_all(&mut c, ticket).await, 0);
        assert_eq!((values.len(), values[0]), (100_000, n as i64));
    }
    // A query started and not fetched gives the session's connection back to a transaction
    // and to the session's temporary tables, and still returns every row at DoGet.
    let sql = "SELECT range AS v FROM range(2000000)";
    let info = c.flight_sql().execute(sql.into(), None).await.unwrap();
    c.query("CREATE OR REPLACE TEMP TABLE t2 AS SELECT 5::BIGINT AS v")
        .await
        .unwrap();
    assert_eq!(i64_at(&c.query("SELECT v FROM t2").await.unwrap(), 0), vec![5]);
    let fs = c.flight_sql();
    let txn = tokio::time::timeout(Duration::from_secs(20), fs.begin_transaction())
        .await
        .expect("BeginTransaction waited for a query nobody fetched")
        .unwrap();
    fs.end_transaction(txn, arrow_flight::sql::EndTransaction::Commit)
        .await
        .unwrap();
    let ticket = info.endpoint[0].ticket.clone().unwrap();
    let batches = fetch_all(&mut c, ticket).await;
    let values = i64_at(&batches, 0);
    assert_eq!(values.len(), 2_000_000);
    assert!(values.iter().enumerate().all(|(n, v)| *v == n as i64));

    // One left unfetched does not hold up shutdown.
    c.flight_sql()
        .execute("SELECT range FROM range(100000000)".into(), None)
        .await
        .unwrap();
    server.stop();
}

/// Runs the data-driven SQL files in `tests/sql/` (a sqllogictest dialect: `statement ok`,
/// `statement error <substring>`, `query <types>` followed by `----` and tab-separated rows).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_files() {
    let server = Server::start();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sql");
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert!(!files.is_empty());
    let mut records = 0;
    for file in files {
        let mut c = server.client(&server.admin_token()).await;
        let text = std::fs::read_to_string(&file).unwrap();
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        for record in text
            .split("\n\n")
            .map(str::trim)
            .filter(|r| !r.is_empty() && !r.starts_with('#'))
        {
            records += 1;
            run_record(&mut c, &name, record).await;
        }
    }
    assert!(records > 20, "only {records} records ran");
    server.stop();
}

async fn run_record(c: &mut PondClient, file: &str, record: &str) {
    let mut lines = record.lines();
    let header = lines.next().unwrap();
    let rest: Vec<&str> = lines.collect();
    let (sql_lines, expected) = match rest.iter().position(|l| *l == "----") {
        Some(i) => (&rest[..i], rest[i + 1..].to_vec()),
        None => (&rest[..], vec![]),
    };
    let sql = sql_lines.join("\n");
    let at = format!("{file}: {sql}");
    if header == "statement ok" {
        c.query(&sql).await.unwrap_or_else(|e| panic!("{at}: {e}"));
    } else if let Some(fragment) = header.strip_prefix("statement error") {
        let err = c.query(&sql).await.expect_err(&at);
        assert!(
            err.to_string().contains(fragment.trim()),
            "{at}: expected {fragment:?}, got {err}"
        );
    } else if header.starts_with("query") {
        let batches = c.query(&sql).await.unwrap_or_else(|e| panic!("{at}: {e}"));
        let mut got = Vec::new();
        for b in &batches {
            for row in 0..b.num_rows() {
                let cells: Vec<String> = b
                    .columns()
                    .iter()
                    .map(|col| {
                        if col.is_null(row) {
                            "NULL".to_string()
                        } else {
                            arrow::util::display::array_value_to_string(col, row).unwrap()
                        }
                    })
                    .collect();
                got.push(cells.join("\t"));
            }
        }
        assert_eq!(got, expected, "{at}");
    } else {
        panic!("{file}: unknown record header {header:?}");
    }
}

/// The benchmarks run end to end at tiny sizes and print `name: value unit` lines (their
/// figures are reported by `pond bench`, never asserted here).
#[test]
fn benchmarks_run_at_small_scale() {
    for args in [
        vec!["bench", "flight", "--iterations", "20", "--rows", "100000"],
        vec!["bench", "tpch", "--scale", "0.01", "--runs", "1"],
        vec!["bench", "storage", "--sizes", "8MiB", "--iterations", "20"],
        vec!["bench", "dual", "--scale", "0.002"],
        vec!["bench", "shares", "--sizes", "4MiB,8MiB", "--iterations", "5"],
    ] {
        let out = pond().args(&args).env("POND_LOG", "warn").output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let figures: Vec<&str> = text.lines().collect();
        assert!(figures.len() >= 10, "{args:?} printed {text}");
        for line in figures {
            let (name, rest) = line.split_once(": ").unwrap_or_else(|| panic!("not a figure: {line}"));
            assert!(!name.contains(' '), "{line}");
            let value = rest.split(' ').next().unwrap();
            assert!(value.parse::<f64>().is_ok(), "{line}");
        }
        if args[1] == "tpch" {
            assert!(text.contains("tpch_q22_flight:"), "{text}");
        }
        if args[1] == "storage" {
            assert!(text.contains("storage_reader_next_snapshot_bytes_8mib:"), "{text}");
        }
        if args[1] == "shares" {
            assert!(text.contains("shares_automatic_commit_to_reader_p99:"), "{text}");
            assert!(
                text.contains("shares_create_and_attach_store_bytes_8mib: 0.000 bytes"),
                "{text}"
            );
        }
        if args[1] == "dual" {
            assert!(
                text.contains("dual_100mbit_worst_selective_time_vs_download_all:"),
                "{text}"
            );
        }
    }
}

/// Generates a CA and a server certificate for 127.0.0.1 with the openssl CLI.
fn test_certificates(dir: &Path) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl").args(args).current_dir(dir).output().unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=Pond test CA",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_client_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    test_certificates(dir.path());
    let cert = dir.path().join("server.pem");
    let key = dir.path().join("server.key");
    let server = Server::start_with(
        &dir.path().join("data"),
        &["--tls-cert", cert.to_str().unwrap(), "--tls-key", key.to_str().unwrap()],
    );
    let mut options = pond_client::ConnectOptions::parse(&format!("{}?tls=true", server.url)).unwrap();
    options.token = Some(server.admin_token());
    // The system roots do not know the test CA: refused.
    let untrusted = match PondClient::connect_with(options.clone()).await {
        Ok(mut c) => c.query("SELECT 1").await.err().map(|e| e.to_string()),
        Err(e) => Some(e.to_string()),
    };
    assert!(untrusted.is_some(), "a client that does not trust the CA got through");
    options.tls_ca_pem = Some(std::fs::read(dir.path().join("ca.pem")).unwrap());
    let mut c = PondClient::connect_with(options).await.unwrap();
    assert_eq!(i64_at(&c.query("SELECT 42::BIGINT").await.unwrap(), 0), vec![42]);
    server.stop();
}

/// A SQL `BEGIN` holds the session's connection: a statement that arrives while that
/// connection is busy streaming waits for it instead of running (and committing) elsewhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_transactions_keep_their_connection() {
    let server = Server::start();
    let mut c = server.client(&server.admin_token()).await;
    c.execute("CREATE TABLE sqltx (v BIGINT)").await.unwrap();
    c.execute("BEGIN TRANSACTION").await.unwrap();
    let mut stream = c.query_stream("SELECT range FROM range(1000000000000)").await.unwrap();
    stream.try_next().await.unwrap();
    // Same session (the clone shares the cookie jar), while the stream holds the connection.
    let mut other = c.flight_sql().clone();
    let insert = tokio::spawn(async move { other.execute_update("INSERT INTO sqltx VALUES (1)".into(), None).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(stream);
    assert_eq!(insert.await.unwrap().unwrap(), 1);
    c.execute("ROLLBACK").await.unwrap();
    assert_eq!(
        i64_at(&c.query("SELECT count(*)::BIGINT FROM sqltx").await.unwrap(), 0),
        vec![0]
    );
    server.stop();
}

/// Every batch of `sql` as a standard Flight SQL client fetches it: GetFlightInfo without the
/// inline header, then DoGet (on `c`'s session, whose cookie it carries).
async fn two_calls(c: &mut PondClient, sql: &str) -> Result<Vec<RecordBatch>, String> {
    let info = c
        .flight_sql()
        .execute(sql.into(), None)
        .await
        .map_err(|e| e.to_string())?;
    let ticket = info.endpoint[0].ticket.clone().expect("a ticket");
    let stream = c.flight_sql().do_get(ticket).await.map_err(|e| e.to_string())?;
    stream.try_collect().await.map_err(|e| e.to_string())
}

/// A text whose last run was a quick read runs on the async worker (`quick_reads.rs`), for
/// Pond's client (result inline) and a standard one (GetFlightInfo, then DoGet) alike; it
/// still answers as DuckDB does once its table grew past a quick read, changed a column's
/// type, or vanished, and it reads the session's temporary tables. Whether a run is quick
/// depends on how long it took: the server counts runs of up to 100 ms as quick (by default
/// 250 µs, which a loaded or slower machine may not meet), and the test still repeats until
/// its counters show the path it checks was taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quick_reads_answer_as_before_when_their_data_changes() {
    let metrics = free_address();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(
        &dir.path().join("data"),
        &["--metrics-listen", &metrics, "--quick-read-time", "100ms"],
    );
    let counter = |name: &str| metric(&scrape(&metrics), name);
    let mut c = server.client(&server.admin_token()).await;
    let sql = "SELECT v FROM grows ORDER BY v";
    let total = |b: &[RecordBatch]| b.iter().map(RecordBatch::num_rows).sum::<usize>();

    // Quick runs answer as slow ones, for a standard client, then for Pond's (result inline).
    c.execute("CREATE TABLE grows AS SELECT range AS v FROM range(3)")
        .await
        .unwrap();
    let quick = counter("pond_quick_reads_total");
    for _ in 0..200 {
        assert_eq!(i64_at(&two_calls(&mut c, sql).await.unwrap(), 0), vec![0, 1, 2]);
        if counter("pond_quick_reads_total") > quick {
            break;
        }
    }
    assert!(counter("pond_quick_reads_total") > quick, "no quick run in 200 (DoGet)");
    let quick = counter("pond_quick_reads_total");
    for _ in 0..200 {
        assert_eq!(i64_at(&c.query(sql).await.unwrap(), 0), vec![0, 1, 2]);
        if counter("pond_quick_reads_total") > quick {
            break;
        }
    }
    assert!(
        counter("pond_quick_reads_total") > quick,
        "no quick run in 200 (inline)"
    );

    // Its table grew (a write drops the kept statements a quick read needs): whole answers.
    c.execute("INSERT INTO grows SELECT range + 3 FROM range(200000)")
        .await
        .unwrap();
    for _ in 0..3 {
        let standard = two_calls(&mut c, sql).await.unwrap();
        assert_eq!(total(&standard), 200_003);
        assert_eq!(i64_at(&standard, 0).last(), Some(&200_002));
        let pond = c.query(sql).await.unwrap();
        assert_eq!(total(&pond), 200_003);
    }

    // A quick text whose answer grows past what a quick read may return with nothing written
    // (`now()` differs from one statement to the next): the quick run stops, and the statement
    // runs again on a blocking thread, whole, after its schema was announced.
    let flips = "SELECT range AS v FROM range(100000) \
                 LIMIT CASE WHEN epoch_ms(now()) % 2 = 0 THEN 3 ELSE 100000 END";
    let declined = counter("pond_quick_reads_declined_total");
    for _ in 0..300 {
        let b = two_calls(&mut c, flips).await.unwrap();
        let mut got = i64_at(&b, 0);
        got.sort_unstable();
        assert!(got.len() == 3 || got.len() == 100_000, "{} rows", got.len());
        assert_eq!(got, (0..got.len() as i64).collect::<Vec<_>>());
        if counter("pond_quick_reads_declined_total") > declined {
            break;
        }
    }
    assert!(
        counter("pond_quick_reads_declined_total") > declined,
        "no quick run of a grown answer was stopped in 300 tries"
    );

    // More batches than the stream's window (five of DuckDB's 2,048 rows), joined into one. A
    // run that streams them waits for its DoGet and is never quick itself: the text becomes
    // quick inline.
    let many = "SELECT range::INTEGER AS v FROM range(8500)";
    let ints = |b: &[RecordBatch]| -> Vec<i32> {
        b.iter()
            .flat_map(|b| {
                b.column(0)
                    .as_primitive::<arrow::datatypes::Int32Type>()
                    .values()
                    .to_vec()
            })
            .collect()
    };
    let mut joined = false;
    for _ in 0..100 {
        assert_eq!(ints(&c.query(many).await.unwrap()), (0..8500).collect::<Vec<i32>>());
        let before = counter("pond_quick_reads_total");
        assert_eq!(
            ints(&two_calls(&mut c, many).await.unwrap()),
            (0..8500).collect::<Vec<i32>>()
        );
        if counter("pond_quick_reads_total") > before {
            joined = true;
            break;
        }
    }
    assert!(joined, "no quick DoGet run of five batches in 100");

    // A column's type changed under a quick text: the new schema, not the old one.
    c.execute("CREATE OR REPLACE TABLE grows AS SELECT range AS v FROM range(3)")
        .await
        .unwrap();
    for _ in 0..5 {
        assert_eq!(i64_at(&two_calls(&mut c, sql).await.unwrap(), 0), vec![0, 1, 2]);
    }
    c.execute("ALTER TABLE grows ALTER v TYPE VARCHAR").await.unwrap();
    assert_eq!(
        strings_at(&two_calls(&mut c, sql).await.unwrap(), 0),
        vec!["0", "1", "2"]
    );
    assert_eq!(strings_at(&c.query(sql).await.unwrap(), 0), vec!["0", "1", "2"]);
    // Its table gone: DuckDB's error, naming it.
    c.execute("DROP TABLE grows").await.unwrap();
    let standard = two_calls(&mut c, sql).await.unwrap_err();
    assert!(standard.contains("grows"), "{standard}");
    let pond = c.query(sql).await.unwrap_err().to_string();
    assert!(pond.contains("grows"), "{pond}");
    // The session's temporary tables live on its own connection, which a quick read takes.
    c.execute("CREATE TEMP TABLE scratch AS SELECT 7::BIGINT AS x")
        .await
        .unwrap();
    for _ in 0..5 {
        assert_eq!(i64_at(&c.query("SELECT x FROM scratch").await.unwrap(), 0), vec![7]);
        assert_eq!(
            i64_at(&two_calls(&mut c, "SELECT x FROM scratch").await.unwrap(), 0),
            vec![7]
        );
    }
    server.stop();
}

/// The dual-execution corpus: `-- name: …` headers, one query each.
fn corpus() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/dual/corpus.sql")).unwrap();
    let mut out = Vec::new();
    for block in text.split("-- name: ").skip(1) {
        let (name, sql) = block.split_once('\n').unwrap();
        out.push((name.trim().to_string(), sql.trim().trim_end_matches(';').to_string()));
    }
    out
}

fn dual_fixture(name: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/dual").join(name)).unwrap()
}

/// Whether a query has an ORDER BY outside all parentheses (its row order is defined).
fn ordered(sql: &str) -> bool {
    let lower = sql.to_ascii_lowercase();
    let mut depth = 0i32;
    let bytes = lower.as_bytes();
    for i in 0..bytes.len() {
        match bytes[i] {
            b'(' => depth += 1,
            b')' => depth -= 1,
            b'o' if depth == 0 && lower[i..].starts_with("order by") => return true,
            _ => {}
        }
    }
    false
}

/// Rows as text, for comparing results across engines and transports.
fn rows_as_text(batches: &[RecordBatch]) -> Vec<String> {
    let options = arrow::util::display::FormatOptions::default().with_null("NULL");
    let mut rows = Vec::new();
    for b in batches {
        let formatters: Vec<_> = b
            .columns()
            .iter()
            .map(|c| arrow::util::display::ArrayFormatter::try_new(c.as_ref(), &options).unwrap())
            .collect();
        for r in 0..b.num_rows() {
            rows.push(
                formatters
                    .iter()
                    .map(|f| f.value(r).to_string())
                    .collect::<Vec<_>>()
                    .join(" | "),
            );
        }
    }
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dual_execution_matches_all_local() {
    use pond_client::{LocalDb, Venue};
    let server = Server::start();
    let token = server.token("dana", false);
    let mut cloud = server.client(&token).await;
    cloud.execute("CREATE DATABASE shop").await.unwrap();
    cloud.execute("USE shop").await.unwrap();
    for statement in pond_client::split_statements(&dual_fixture("cloud.sql")) {
        cloud.execute(&statement).await.unwrap();
    }

    // The reference: one local DuckDB holding both sides' tables under the same names.
    let reference = LocalDb::open(None).unwrap();
    reference.execute(&dual_fixture("local.sql")).unwrap();
    reference.execute("ATTACH ':memory:' AS cloud; USE cloud;").unwrap();
    reference.execute(&dual_fixture("cloud.sql")).unwrap();
    reference.execute("USE memory").unwrap();

    let mut session = server.dual_session(&token, None).await;
    session.run_script(&dual_fixture("local.sql")).await.unwrap();
    session.run("ATTACH 'pond:shop' AS cloud").await.unwrap();

    let queries = corpus();
    assert!(queries.len() >= 150, "the corpus has {} queries", queries.len());
    let mut venues = std::collections::BTreeMap::new();
    let mut filtered_by_or = std::collections::BTreeSet::new();
    let mut failures = Vec::new();
    // `split` is `auto` with every split the plan can take, whatever it costs: each
    // fragment's answer is checked, not only those the cost model picks for this data.
    for mode in ["auto", "local", "remote", "split"] {
        let run = if mode == "split" { "auto" } else { mode };
        session.set_prefer_fragments(mode == "split");
        session.run(&format!("SET pond_run = '{run}'")).await.unwrap();
        // The forced splits cross in zstd, as over a slow link (the link was probed fast).
        session.cloud().unwrap().set_compression(mode == "split");
        for (name, sql) in &queries {
            let (_, expected) = reference
                .query(sql)
                .unwrap_or_else(|e| panic!("{name} fails in DuckDB: {e}"));
            let mut expected = rows_as_text(&expected);
            // Forced splits are read as streams: the final fragment runs as it is read.
            let outcome = match mode {
                "split" => match session.query_stream(sql).await {
                    Ok(stream) => {
                        let (venue, plan) = (stream.venue(), stream.plan().cloned());
                        stream
                            .try_collect::<Vec<_>>()
                            .await
                            .map(|batches| (venue, plan, batches, 0))
                    }
                    Err(e) => Err(e),
                },
                _ => session
                    .run(sql)
                    .await
                    .map(|o| (o.venue, o.plan, o.batches, o.bytes_moved)),
            };
            let (venue, plan, batches, bytes_moved) = match outcome {
                Ok(o) => o,
                Err(e) => {
                    failures.push(format!("{mode}/{name}: error {e}"));
                    continue;
                }
            };
            if mode == "split"
                && let Some(plan) = &plan
            {
                *venues.entry("split fragments".to_string()).or_insert(0) += plan.fragments.len();
                if plan.strategy.contains("aggregated before crossing") {
                    *venues.entry("split aggregated".to_string()).or_insert(0) += 1;
                }
            }
            // A relation read under different filters moves the rows any read keeps.
            if name.starts_with("cte_read_under_")
                && let Some(plan) = &plan
                && plan.bridges.iter().any(|b| b.sql.contains(")) OR (("))
            {
                filtered_by_or.insert(name.to_string());
            }
            if mode == "auto" {
                *venues.entry(format!("{venue:?}")).or_insert(0) += 1;
                if let Some(plan) = &plan {
                    let key = if plan.strategy.contains("whole tables") {
                        "fallback"
                    } else {
                        "datafusion"
                    };
                    *venues.entry(key.to_string()).or_insert(0) += 1;
                    if !plan.fragments.is_empty() {
                        *venues.entry("fragments".to_string()).or_insert(0) += 1;
                    }
                }
                if name.starts_with("local_") {
                    assert_eq!(venue, Venue::Local, "{name} ran {venue:?}");
                    assert_eq!(bytes_moved, 0, "{name} is local-only but moved bytes");
                }
                if name.starts_with("cloud_") {
                    assert_eq!(venue, Venue::Remote, "{name} ran {venue:?}");
                }
            }
            let mut actual = rows_as_text(&batches);
            if !ordered(sql) {
                expected.sort();
                actual.sort();
            }
            if actual != expected {
                failures.push(format!(
                    "{mode}/{name}: {} rows, expected {}; first difference: {:?}",
                    actual.len(),
                    expected.len(),
                    actual.iter().zip(&expected).find(|(a, e)| a != e)
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} differences:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(venues.get("Dual").copied().unwrap_or(0) >= 60, "{venues:?}");
    // DataFusion plans most of DuckDB's SQL; the rest moves whole relations, still correctly.
    assert!(venues.get("datafusion").copied().unwrap_or(0) >= 40, "{venues:?}");
    // Subqueries that read one side run there in a good share of the corpus, and DuckDB
    // accepted every split.
    assert!(venues.get("fragments").copied().unwrap_or(0) >= 20, "{venues:?}");
    // Forced, join groups aggregate early wherever the SELECT allows it (the `partial_*`
    // queries and TPC-H-like joins of the corpus).
    assert!(venues.get("split aggregated").copied().unwrap_or(0) >= 35, "{venues:?}");
    assert_eq!(
        filtered_by_or.len(),
        2,
        "each cte_read_under_ query moves a relation filtered by its reads' OR: {filtered_by_or:?}"
    );
    assert_eq!(session.fragment_fallbacks(), 0, "plans with fragments failed");
    eprintln!("dual corpus: {venues:?}");

    // No temporary table outlives its statement, on either side.
    let (_, left) = session
        .local()
        .query("SELECT count(*) FROM duckdb_tables() WHERE temporary")
        .unwrap();
    assert_eq!(i64_at(&left, 0), vec![0]);
    let (_, remote) = session
        .cloud()
        .unwrap()
        .query_with_schema("SELECT count(*) FROM duckdb_tables() WHERE temporary")
        .await
        .unwrap();
    assert_eq!(i64_at(&remote, 0), vec![0]);
    server.stop();
}

/// `DualSession::query_stream` reads a split plan's final fragment as the caller reads: a
/// caller that stops after the first batch moves a fraction of the result, and the plan's
/// temporary tables go when the stream ends (locally at once, remotely at the next statement).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_split_query_streams_its_final_fragment() {
    use pond_client::Venue;
    let server = Server::start();
    let token = server.token("ravi", false);
    let mut cloud = server.client(&token).await;
    cloud.execute("CREATE DATABASE shop").await.unwrap();
    cloud
        .execute("CREATE TABLE shop.events AS SELECT range AS id, range % 100 AS k FROM range(1000000)")
        .await
        .unwrap();
    let mut session = server.dual_session(&token, None).await;
    session
        .run("CREATE TABLE keys AS SELECT range AS k, 'label ' || range AS label FROM range(100)")
        .await
        .unwrap();
    session.run("ATTACH 'pond:shop' AS cloud").await.unwrap();
    let query = "SELECT e.id, e.k, k.label FROM cloud.events e JOIN keys k USING (k)";
    let temporary = "SELECT count(*) FROM duckdb_tables() WHERE temporary";

    for run in ["local", "remote"] {
        session.run(&format!("SET pond_run = '{run}'")).await.unwrap();
        // Read to the end: every row, in batches, and no table left behind.
        let before = session.link().moved();
        let stream = session.query_stream(query).await.unwrap();
        assert_eq!(stream.venue(), Venue::Dual, "{run}");
        assert_eq!(stream.schema().fields().len(), 3, "{run}");
        let batches: Vec<RecordBatch> = stream.try_collect().await.unwrap();
        assert!(batches.len() > 1, "{run}: {} batches", batches.len());
        assert_eq!(
            batches.iter().map(RecordBatch::num_rows).sum::<usize>(),
            1_000_000,
            "{run}"
        );
        let whole = session.link().moved() - before;
        let (_, left) = session.local().query(temporary).unwrap();
        assert_eq!(i64_at(&left, 0), vec![0], "{run}: local temporary tables after the end");
        let (_, remote) = session.cloud().unwrap().query_with_schema(temporary).await.unwrap();
        assert_eq!(
            i64_at(&remote, 0),
            vec![0],
            "{run}: remote temporary tables after the end"
        );

        // Stop after the first batch.
        let before = session.link().moved();
        let mut stream = session.query_stream(query).await.unwrap();
        let first = stream.try_next().await.unwrap().expect("a first batch");
        assert!(first.num_rows() > 0);
        drop(stream);
        let stopped = session.link().moved() - before;
        if run == "remote" {
            // The final fragment ran in the cloud: only what flow control let ahead crossed.
            assert!(stopped * 2 < whole, "stopping early moved {stopped} bytes of {whole}");
        }
        let (_, left) = session.local().query(temporary).unwrap();
        assert_eq!(
            i64_at(&left, 0),
            vec![0],
            "{run}: local temporary tables after an early drop"
        );
        // The drop waits for the session's connection, which the stopped query holds until
        // the server sees the stream go.
        session.run("SELECT 42").await.unwrap();
        let (_, remote) = session.cloud().unwrap().query_with_schema(temporary).await.unwrap();
        assert_eq!(
            i64_at(&remote, 0),
            vec![0],
            "{run}: remote temporary tables after the next statement"
        );

        // A call cancelled part way (its plan made, its bridges moving, or its stream ready)
        // leaves the next statement as it would be: answered whole, and no table behind.
        for after_ms in [1, 5, 20, 200] {
            let call = session.query_stream(query);
            let _ = tokio::time::timeout(Duration::from_millis(after_ms), call).await;
            let outcome = session.run("SELECT count(*) FROM keys").await.unwrap();
            assert_eq!(
                i64_at(&outcome.batches, 0),
                vec![100],
                "{run}: after a cancel at {after_ms} ms"
            );
        }
        let (_, left) = session.local().query(temporary).unwrap();
        assert_eq!(
            i64_at(&left, 0),
            vec![0],
            "{run}: local temporary tables after cancelled calls"
        );
        session.run("SELECT 42").await.unwrap();
        let (_, remote) = session.cloud().unwrap().query_with_schema(temporary).await.unwrap();
        assert_eq!(
            i64_at(&remote, 0),
            vec![0],
            "{run}: remote temporary tables after cancelled calls"
        );
    }
    server.stop();
}

/// The value of an unlabelled counter in Prometheus text.
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in the scrape"))
}

fn scrape(address: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream
        .write_all(format!("GET /metrics HTTP/1.0\r\nHost: {address}\r\n\r\n").as_bytes())
        .unwrap();
    let mut out = String::new();
    stream.read_to_string(&mut out).unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cloud_table_is_measured_once_per_snapshot() {
    use pond_client::Venue;
    let metrics = free_address();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(&dir.path().join("data"), &["--metrics-listen", &metrics]);
    let token = server.token("fay", false);
    let mut cloud = server.client(&token).await;
    cloud
        .execute("CREATE TABLE orders AS SELECT range AS id, range % 100 AS customer FROM range(10000)")
        .await
        .unwrap();
    // A session of its own keeps no statistics of the cloud's tables yet.
    let new_session = || {
        let (server, token) = (&server, &token);
        async move {
            let mut session = server.dual_session(token, None).await;
            session.run("ATTACH 'pond:'").await.unwrap();
            session
                .run("CREATE TABLE customers AS SELECT range AS id FROM range(100)")
                .await
                .unwrap();
            session
        }
    };
    let mut session = new_session().await;
    let q = "SELECT count(*) FROM customers c JOIN my_db.orders o ON o.customer = c.id WHERE c.id < 3";
    let counted = |outcome: &pond_client::Outcome| {
        assert_eq!(outcome.venue, Venue::Dual);
        i64_at(&outcome.batches, 0)
    };
    let first = session.run(q).await.unwrap();
    assert_eq!(counted(&first), vec![300]);
    assert!(first.planning_bytes > 0);
    let text = scrape(&metrics);
    let measured = metric(&text, "pond_dual_statistics_measured_total");
    let reused = metric(&text, "pond_dual_statistics_reused_total");
    assert!(measured >= 1.0, "{measured}");
    // The session plans again by itself, from the statistics the first plan returned: no
    // round trip, nothing asked of the coordinator.
    let again = session.run(q).await.unwrap();
    assert_eq!(counted(&again), vec![300]);
    assert_eq!(again.planning_bytes, 0);
    let text = scrape(&metrics);
    assert_eq!(metric(&text, "pond_dual_statistics_measured_total"), measured);
    assert_eq!(metric(&text, "pond_dual_statistics_reused_total"), reused);
    // Another session asks the coordinator: nothing committed since, so it plans from what
    // was measured.
    assert_eq!(counted(&new_session().await.run(q).await.unwrap()), vec![300]);
    let text = scrape(&metrics);
    assert_eq!(metric(&text, "pond_dual_statistics_measured_total"), measured);
    assert!(metric(&text, "pond_dual_statistics_reused_total") > reused);
    // A commit: the table is measured again, and the answer counts the new rows. The first
    // session's statistics are older than the table now, which changes no answer.
    cloud.execute("INSERT INTO orders VALUES (10000, 1)").await.unwrap();
    assert_eq!(counted(&session.run(q).await.unwrap()), vec![301]);
    assert_eq!(counted(&new_session().await.run(q).await.unwrap()), vec![301]);
    assert!(metric(&scrape(&metrics), "pond_dual_statistics_measured_total") > measured);
    // The session's own write to the cloud makes it ask again.
    session.run("INSERT INTO my_db.orders VALUES (10001, 2)").await.unwrap();
    let after_write = session.run(q).await.unwrap();
    assert_eq!(counted(&after_write), vec![302]);
    assert!(after_write.planning_bytes > 0);
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dual_execution_explains_moves_and_copies_databases() {
    use pond_client::Venue;
    let server = Server::start();
    let token = server.token("erin", false);
    let mut cloud = server.client(&token).await;
    cloud
        .execute("CREATE TABLE orders AS SELECT range AS id, range % 1000 AS customer, range * 0.5 AS amount FROM range(200000)")
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let local_file = dir.path().join("laptop.duckdb");
    let mut session = server.dual_session(&token, Some(&local_file)).await;
    session.run("ATTACH 'pond:'").await.unwrap();
    session
        .run("CREATE TABLE customers AS SELECT range AS id, 'c' || range AS name FROM range(1000)")
        .await
        .unwrap();

    // A selective local filter: the plan moves a few keys or rows, not 200,000 orders.
    let q = "SELECT c.name, sum(o.amount) AS total FROM customers c JOIN my_db.orders o ON o.customer = c.id \
             WHERE c.id < 3 GROUP BY c.name ORDER BY c.name";
    let outcome = session.run(q).await.unwrap();
    assert_eq!(outcome.venue, Venue::Dual);
    assert_eq!(strings_at(&outcome.batches, 0), vec!["c0", "c1", "c2"]);
    // The session's first mixed query probes the link (512 KiB), counted as planning.
    assert!(outcome.planning_bytes > 512 << 10, "{}", outcome.planning_bytes);
    let data = outcome.bytes_moved - outcome.planning_bytes;
    assert!(data < 100_000, "moved {data} bytes");
    let again = session.run(q).await.unwrap();
    // Neither probed nor planned by the coordinator again: the plan is made here.
    assert_eq!(again.planning_bytes, 0);

    let explain = session.run(&format!("EXPLAIN {q}")).await.unwrap();
    let text = strings_at(&explain.batches, 0).join("\n");
    assert!(text.contains("(L)") && text.contains("(R)"), "{text}");
    assert!(text.contains("estimated bytes moved"), "{text}");
    // The probe timed both sides too: the plan's time includes running its query.
    assert!(text.contains("Estimated time running"), "{text}");
    let analyzed = session.run(&format!("EXPLAIN ANALYZE {q}")).await.unwrap();
    let text = strings_at(&analyzed.batches, 0).join("\n");
    assert!(
        text.contains("Actual bridge 1") && text.contains("Actual time: local"),
        "{text}"
    );
    let actual = text.lines().find(|l| l.starts_with("Actual bridge 1")).unwrap();
    assert!(actual.contains(" (estimated ~"), "{actual}");
    // Run remotely, the three customers' rows go inside the remote SQL, and say so.
    session.run("SET pond_run = 'remote'").await.unwrap();
    let analyzed = session.run(&format!("EXPLAIN ANALYZE {q}")).await.unwrap();
    let text = strings_at(&analyzed.batches, 0).join("\n");
    assert!(
        text.lines()
            .any(|l| l.starts_with("Actual bridge") && l.contains("3 rows, inline in the remote SQL")),
        "{text}"
    );
    session.run("SET pond_run = 'auto'").await.unwrap();

    // Each side aggregates where it lives; only the groups cross: a thousand customers' totals,
    // never 200,000 orders.
    let split = "SELECT c.id, c.name, o.total FROM (SELECT id, name FROM customers WHERE id % 2 = 0) c \
                 JOIN (SELECT customer, sum(amount) AS total FROM my_db.orders GROUP BY customer) o ON o.customer = c.id \
                 ORDER BY c.id LIMIT 3";
    let outcome_split = session.run(split).await.unwrap();
    assert_eq!(
        rows_as_text(&outcome_split.batches),
        vec!["0 | c0 | 9950000.0", "2 | c2 | 9950200.0", "4 | c4 | 9950400.0"]
    );
    assert!(!outcome_split.plan.as_ref().unwrap().fragments.is_empty());
    assert!(
        outcome_split.bytes_moved < 100_000,
        "moved {} bytes",
        outcome_split.bytes_moved
    );
    let text = strings_at(
        &session.run(&format!("EXPLAIN ANALYZE {split}")).await.unwrap().batches,
        0,
    )
    .join("\n");
    assert!(
        text.contains("Fragment 1 (") && text.contains("its result crosses"),
        "{text}"
    );
    assert!(text.contains("__pond_frag_"), "{text}");

    // A union of both sides: each branch aggregates where its data lives and only the groups
    // cross, not a thousand customers' ids nor 200,000 orders. The cloud's branch names no
    // column; the union pairs its columns by position, so it is read under names of Pond's own.
    let union = "SELECT 'local' AS src, CAST(id % 2 AS VARCHAR) AS k, count(*) AS n FROM customers GROUP BY id % 2 \
                 UNION ALL SELECT 'cloud', CAST(customer % 3 AS VARCHAR), count(*) FROM my_db.orders GROUP BY customer % 3 \
                 ORDER BY src, k";
    let branches = session.run(union).await.unwrap();
    assert_eq!(
        rows_as_text(&branches.batches),
        vec![
            "cloud | 0 | 66800",
            "cloud | 1 | 66600",
            "cloud | 2 | 66600",
            "local | 0 | 500",
            "local | 1 | 500"
        ]
    );
    session.set_split_subqueries(false);
    let whole = session.run(union).await.unwrap();
    session.set_split_subqueries(true);
    assert_eq!(rows_as_text(&whole.batches), rows_as_text(&branches.batches));
    let data = |o: &pond_client::Outcome| o.bytes_moved - o.planning_bytes;
    assert!(
        data(&branches) * 4 < data(&whole),
        "split {} bytes, whole {}",
        data(&branches),
        data(&whole)
    );
    let text = strings_at(&session.run(&format!("EXPLAIN {union}")).await.unwrap().batches, 0).join("\n");
    assert!(
        text.contains("Fragment 1 (") && text.contains("AS __pond_branch(__pond_c0, __pond_c1, __pond_c2)"),
        "{text}"
    );

    // In a comma join, the cloud's two relations join in the cloud, filtered there: five rows
    // cross, not 200,000 orders or a thousand customers.
    cloud
        .execute("CREATE TABLE items AS SELECT range AS item_id, range % 200000 AS item_order, (range % 5)::INTEGER AS units FROM range(400000)")
        .await
        .unwrap();
    let comma = "SELECT c.name, units FROM customers c, my_db.orders o, my_db.items \
                 WHERE item_order = o.id AND customer = c.id AND item_id < 5 ORDER BY c.name";
    let joined = session.run(comma).await.unwrap();
    assert_eq!(
        rows_as_text(&joined.batches),
        vec!["c0 | 0", "c1 | 1", "c2 | 2", "c3 | 3", "c4 | 4"]
    );
    assert_eq!(joined.plan.as_ref().unwrap().fragments.len(), 1);
    assert!(joined.bytes_moved < 20_000, "moved {} bytes", joined.bytes_moved);
    let text = strings_at(&session.run(&format!("EXPLAIN {comma}")).await.unwrap().batches, 0).join("\n");
    assert!(
        text.contains("Fragment 1 (R)")
            && text.contains("AS \"o\", ")
            && text.contains("WHERE item_order = o.id AND item_id < 5"),
        "{text}"
    );

    // A join that aggregates: the cloud's orders are summed per customer where they live and
    // the sums finished on the laptop, against 20,000 local visits: a thousand partial rows
    // cross, not 200,000 orders nor the visits.
    session
        .run("CREATE TABLE visits AS SELECT range AS visit, range % 1000 AS customer, 'page' || (range % 7) AS page FROM range(20000)")
        .await
        .unwrap();
    let grouped = "SELECT v.page, count(*) AS n, sum(o.amount) AS total, max(o.id) AS last \
                   FROM visits v, my_db.orders o WHERE o.customer = v.customer GROUP BY v.page ORDER BY v.page";
    let aggregated = session.run(grouped).await.unwrap();
    let plan = aggregated.plan.as_ref().unwrap();
    assert!(
        plan.strategy.contains("1 aggregated before crossing"),
        "{}",
        plan.strategy
    );
    assert!(
        aggregated.bytes_moved < 100_000,
        "moved {} bytes",
        aggregated.bytes_moved
    );
    session.set_split_subqueries(false);
    let whole = session.run(grouped).await.unwrap();
    session.set_split_subqueries(true);
    assert!(whole.plan.as_ref().unwrap().fragments.is_empty());
    assert_eq!(rows_as_text(&aggregated.batches), rows_as_text(&whole.batches));
    assert_eq!(rows_as_text(&aggregated.batches).len(), 7);
    let types =
        |o: &pond_client::Outcome| -> Vec<_> { o.schema.fields().iter().map(|f| f.data_type().clone()).collect() };
    assert_eq!(types(&aggregated), types(&whole));
    let text = strings_at(&session.run(&format!("EXPLAIN {grouped}")).await.unwrap().batches, 0).join("\n");
    assert!(
        text.contains("Fragment 1 (R)") && text.contains("GROUP BY \"o\".\"customer\""),
        "{text}"
    );

    // A macro could hide an aggregate: with one after the join, the group keeps its rows whole,
    // even when told to split wherever it can. `iszero` is a scalar function to DataFusion, so
    // the cost model plans it; to DuckDB it is this sum, which over rows grouped on `customer`
    // below the `count(*)` would lose their repeats. The macro is the laptop's: the query runs
    // there.
    session.run("CREATE MACRO iszero(x) AS sum(x)").await.unwrap();
    session.run("SET pond_run = 'local'").await.unwrap();
    let hiding = "SELECT o.customer, count(*) AS n, iszero(o.customer) AS total FROM visits v, my_db.orders o \
                  WHERE o.customer = v.customer AND o.customer < 3 GROUP BY o.customer ORDER BY o.customer";
    session.set_prefer_fragments(true);
    let hidden = session.run(hiding).await.unwrap();
    session.set_prefer_fragments(false);
    session.run("SET pond_run = 'auto'").await.unwrap();
    let strategy = &hidden.plan.as_ref().unwrap().strategy;
    assert!(!strategy.contains("aggregated"), "{strategy}");
    // 20 visits × 200 orders per customer: 4,000 rows each.
    assert_eq!(
        rows_as_text(&hidden.batches),
        vec!["0 | 4000 | 0", "1 | 4000 | 4000", "2 | 4000 | 8000"]
    );

    // A reader of remote data runs in the cloud, next to the data, unless told otherwise.
    let explain = session
        .run("EXPLAIN SELECT count(*) FROM read_parquet('s3://lake/v.parquet')")
        .await
        .unwrap();
    let text = strings_at(&explain.batches, 0).join("\n");
    let reader = text
        .lines()
        .find(|l| l.contains("s3://lake/v.parquet"))
        .unwrap_or_default();
    assert!(reader.contains("(R)"), "{text}");

    // Overrides force a side without changing the answer.
    session.run("SET pond_run = 'remote'").await.unwrap();
    let remote = session.run(q).await.unwrap();
    assert_eq!(remote.plan.as_ref().unwrap().run_on, pond_client::Side::Remote as i32);
    assert_eq!(rows_as_text(&remote.batches), rows_as_text(&outcome.batches));
    session.run("SET md_run = 'auto'").await.unwrap();

    // A local-only query sends nothing.
    let before = session.link().moved();
    let local = session.run("SELECT count(*) FROM customers").await.unwrap();
    assert_eq!(local.venue, Venue::Local);
    assert_eq!(session.link().moved(), before);

    // Local dev → cloud: upload the laptop's database; cloud → local: copy it back down.
    let up = session
        .run("CREATE DATABASE laptop_copy FROM CURRENT_DATABASE()")
        .await
        .unwrap();
    assert_eq!(up.venue, Venue::Client);
    let n = cloud
        .query("SELECT count(*) FROM laptop_copy.main.customers")
        .await
        .unwrap();
    assert_eq!(i64_at(&n, 0), vec![1000]);
    session.run("ATTACH ':memory:' AS scratch").await.unwrap();
    session.run("COPY FROM DATABASE my_db TO scratch").await.unwrap();
    let (_, down) = session
        .local()
        .query("SELECT count(*), sum(customer) FROM scratch.main.orders")
        .unwrap();
    assert_eq!(i64_at(&down, 0), vec![200_000]);

    // A mixed CREATE TABLE … AS lands on its target's side.
    session
        .run("CREATE TABLE big_spenders AS SELECT c.id FROM customers c JOIN my_db.orders o ON o.customer = c.id WHERE o.amount > 99990")
        .await
        .unwrap();
    let (_, spenders) = session.local().query("SELECT count(*) FROM big_spenders").unwrap();
    assert_eq!(i64_at(&spenders, 0), vec![19]);

    // Errors keep DuckDB's message.
    let e = session
        .run("SELECT * FROM customers JOIN my_db.nope USING (id)")
        .await
        .unwrap_err();
    assert!(e.to_string().contains("nope"), "{e}");

    // A read-only token cannot upload; its mixed queries still run, on downloads only.
    let mut reader = server.dual_session(&server.token("erin", true), None).await;
    reader.run("ATTACH 'pond:'").await.unwrap();
    reader
        .run("CREATE TABLE customers AS SELECT range AS id, 'c' || range AS name FROM range(1000)")
        .await
        .unwrap();
    reader.run("SET pond_run = 'remote'").await.unwrap();
    // A few rows go inside the remote SQL as literals: nothing to upload, so the plan runs as
    // planned, remotely.
    let read = reader.run(q).await.unwrap();
    assert_eq!(rows_as_text(&read.batches), rows_as_text(&outcome.batches));
    let plan = read.plan.unwrap();
    assert_eq!(plan.run_on, pond_client::Side::Remote as i32);
    assert!(plan.bridges.iter().any(|b| b.from == pond_client::Side::Local as i32));
    // More would need an upload, which the token may not make: the plan runs on downloads.
    let many = "SELECT count(*) FROM customers c JOIN my_db.orders o ON o.customer = c.id WHERE c.id < 900";
    let read = reader.run(many).await.unwrap();
    assert_eq!(i64_at(&read.batches, 0), vec![180_000]);
    assert!(
        read.plan
            .unwrap()
            .bridges
            .iter()
            .all(|b| b.from == pond_client::Side::Remote as i32)
    );
    server.stop();
}

#[test]
fn pond_sql_runs_scripts_with_exit_codes() {
    let server = Server::start();
    let token = server.token("fay", false);
    let run = |args: &[&str]| {
        pond()
            .arg("sql")
            .args(args)
            .env("POND_SERVER", &server.url)
            .env("POND_TOKEN", &token)
            .output()
            .unwrap()
    };
    let out = run(&[
        "-c",
        "CREATE TABLE my_db.t AS SELECT 42 AS answer; SELECT answer FROM my_db.t",
        "--format",
        "csv",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "answer\n42\n");
    let out = run(&[
        "-c",
        "SELECT * FROM range(2) r JOIN my_db.t ON true",
        "--format",
        "json",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        r#"[{"range":0,"answer":42},{"range":1,"answer":42}]"#
    );
    let out = run(&["-c", "SELECT 1; SELECT * FROM no_such_table; SELECT 2"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no_such_table"), "{stderr}");
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains('2'),
        "stopped at the error"
    );
    let out = pond()
        .args(["sql", "-c", "SELECT 7 AS x", "--format", "line"])
        .env_remove("POND_TOKEN")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "x = 7\n\n");
    server.stop();
}

#[test]
fn pond_shell_reads_statements_and_dot_commands() {
    use std::io::Write;
    let server = Server::start();
    let token = server.token("gus", false);
    let mut child = pond()
        .arg("shell")
        .env("POND_SERVER", &server.url)
        .env("POND_TOKEN", &token)
        .env("HOME", tempfile::tempdir().unwrap().path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(
            b".mode csv\nCREATE TABLE my_db.t AS\n  SELECT 'a;b' AS s;\nSELECT s, 42 AS n\nFROM my_db.t;\n.databases\nSELECT * FROM nope;\nSELECT 'still here' AS ok;\n.quit\n",
        )
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("s,n\na;b,42\n"), "{stdout}");
    assert!(stdout.contains("my_db,cloud"), ".databases lists the cloud: {stdout}");
    assert!(stderr.contains("nope"), "errors carry DuckDB's message: {stderr}");
    assert!(
        stdout.contains("ok\nstill here"),
        "an error does not end the shell: {stdout}"
    );
    server.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_grpc_health_service_answers_without_a_token_and_says_not_serving_at_shutdown() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    let ask = |service: &str| HealthCheckRequest {
        service: service.to_string(),
    };
    for mode in [&[][..], &["--ducklings", "process"][..]] {
        let dir = tempfile::tempdir().unwrap();
        let mut server = Server::start_with(&dir.path().join("data"), mode);
        let address = server.url.trim_start_matches("pond://").to_string();
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{address}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut health = HealthClient::new(channel);
        for service in ["", "arrow.flight.protocol.FlightService"] {
            let status = health.check(ask(service)).await.unwrap().into_inner().status;
            assert_eq!(status, ServingStatus::Serving as i32, "{mode:?} {service:?}");
        }
        let unknown = health.check(ask("nope")).await.unwrap_err();
        assert_eq!(unknown.code(), tonic::Code::NotFound);
        let mut watch = health.watch(ask("")).await.unwrap().into_inner();
        assert_eq!(
            watch.message().await.unwrap().unwrap().status,
            ServingStatus::Serving as i32
        );
        let pid = server.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert_eq!(
            watch.message().await.unwrap().unwrap().status,
            ServingStatus::NotServing as i32,
            "{mode:?}"
        );
        // The watch ends, and the server exits: an open watch does not hold the shutdown.
        assert!(matches!(watch.message().await, Ok(None) | Err(_)));
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = server.child.try_wait().unwrap() {
                assert!(status.success(), "{mode:?}: pond serve exited with {status}");
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{mode:?}: pond serve did not stop with a watch open"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// zstd on the wire: a client that asks gets the same rows in fewer bytes and uploads them in
/// fewer, to an in-process duckling and through the proxy in front of duckling processes; a
/// compressed request other than an upload is refused, not inflated; and a dual session over
/// a slow link asks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_answers_move_fewer_bytes_for_the_same_rows() {
    // The rows, and the bytes their download and their upload moved.
    async fn moved(client: &mut PondClient, link: &pond_client::Link, compress: bool) -> (Vec<RecordBatch>, u64, u64) {
        client.set_compression(compress);
        let before = link.moved();
        let batches = client.query("SELECT i, k, s FROM t ORDER BY i").await.unwrap();
        let down = link.moved() - before;
        let before = link.moved();
        let rows = client.ingest("copy_of_t", batches.clone()).await.unwrap();
        assert_eq!(rows, 300_000);
        let up = link.moved() - before;
        let copied = client
            .query("SELECT count(*) FROM copy_of_t JOIN t USING (i, k, s)")
            .await
            .unwrap();
        assert_eq!(i64_at(&copied, 0), vec![300_000]);
        client.execute("DROP TABLE copy_of_t").await.unwrap();
        (batches, down, up)
    }
    for mode in [&[][..], &["--ducklings", "process"][..]] {
        let dir = tempfile::tempdir().unwrap();
        let server = Server::start_with(&dir.path().join("data"), mode);
        let token = server.token("gus", false);
        let (options, mut client, link) = server.metered_client(&token).await;
        client
            .execute(
                "CREATE TABLE t AS SELECT range AS i, range % 7 AS k, 'row ' || (range % 100) AS s FROM range(300000)",
            )
            .await
            .unwrap();
        let (plain, plain_down, plain_up) = moved(&mut client, &link, false).await;
        let (zstd, zstd_down, zstd_up) = moved(&mut client, &link, true).await;
        assert_eq!(i64_at(&plain, 0), i64_at(&zstd, 0), "{mode:?}");
        assert_eq!(strings_at(&plain, 2), strings_at(&zstd, 2), "{mode:?}");
        assert!(
            zstd_down * 2 < plain_down,
            "{mode:?}: {zstd_down} bytes compressed, {plain_down} plain"
        );
        assert!(
            zstd_up * 2 < plain_up,
            "{mode:?}: {zstd_up} bytes compressed, {plain_up} plain"
        );
        // A compressed request other than an upload: refused before anything is inflated.
        let channel =
            tonic::transport::Endpoint::from_shared(format!("http://{}", server.url.trim_start_matches("pond://")))
                .unwrap()
                .connect()
                .await
                .unwrap();
        let mut raw = arrow_flight::flight_service_client::FlightServiceClient::new(channel)
            .send_compressed(tonic::codec::CompressionEncoding::Zstd);
        let refused = raw
            .get_flight_info(arrow_flight::FlightDescriptor::new_cmd(vec![0u8; 64 << 10]))
            .await
            .unwrap_err();
        assert!(refused.message().contains("compress"), "{mode:?}: {refused:?}");

        // A dual session measures its link first: over 100 Mbit/s it asks for zstd, and its
        // mixed queries answer as before.
        let mut session =
            pond_client::DualSession::open_over(None, Some(options), pond_client::Link::throttled(100_000_000))
                .await
                .unwrap();
        session.run("ATTACH 'pond:'").await.unwrap();
        session
            .run("CREATE TABLE keys AS SELECT range AS k FROM range(3)")
            .await
            .unwrap();
        let outcome = session
            .run("SELECT count(*) FROM keys JOIN my_db.t USING (k)")
            .await
            .unwrap();
        assert_eq!(i64_at(&outcome.batches, 0), vec![128_572], "{mode:?}");
        assert!(session.cloud().unwrap().compressed(), "{mode:?}");
        server.stop();
    }
}

/// Over a slow link Pond's client frames its downloads and its bridges' uploads in one zstd
/// stream per call: what repeats from one Arrow message to the next (here each 2,048-row batch
/// repeats the last, but no row repeats within one) crosses once, where message-by-message
/// compression would send it again in every message. A framed upload that claims a message
/// over the server's limit is refused, not inflated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn framed_transfers_send_what_repeats_across_messages_once() {
    /// What the batches' Flight messages cost compressed one at a time, as gRPC compresses
    /// them (at tonic's level).
    async fn message_by_message(batches: Vec<RecordBatch>) -> u64 {
        let messages: Vec<arrow_flight::FlightData> = arrow_flight::encode::FlightDataEncoderBuilder::new()
            .build(futures::stream::iter(batches.into_iter().map(Ok)))
            .try_collect()
            .await
            .unwrap();
        messages
            .iter()
            .map(|m| {
                zstd::bulk::compress(&prost::Message::encode_to_vec(m), 3)
                    .unwrap()
                    .len() as u64
            })
            .sum()
    }
    for mode in [&[][..], &["--ducklings", "process"][..]] {
        let dir = tempfile::tempdir().unwrap();
        let server = Server::start_with(&dir.path().join("data"), mode);
        let token = server.token("fay", false);
        let (_, mut client, link) = server.metered_client(&token).await;
        client
            .execute("CREATE TABLE r AS SELECT range AS i, (hash(range % 2048) >> 1)::BIGINT AS h FROM range(200000)")
            .await
            .unwrap();
        let query = "SELECT i % 2048 AS j, h FROM r ORDER BY i";
        let plain = client.query(query).await.unwrap();
        client.set_compression(true);
        let before = link.moved();
        let (schema, batches) = client.query_with_schema(query).await.unwrap();
        let down = link.moved() - before;
        assert_eq!(i64_at(&batches, 0), i64_at(&plain, 0), "{mode:?}");
        assert_eq!(i64_at(&batches, 1), i64_at(&plain, 1), "{mode:?}");
        let one_by_one = message_by_message(batches.clone()).await;
        assert!(
            down * 3 < one_by_one,
            "{mode:?}: downloaded {down} bytes framed, {one_by_one} message by message"
        );

        let before = link.moved();
        let rows = client.upload_temp("r_copy", schema, batches).await.unwrap();
        let up = link.moved() - before;
        assert_eq!(rows, 200_000, "{mode:?}");
        assert!(
            up * 3 < one_by_one,
            "{mode:?}: uploaded {up} bytes framed, {one_by_one} message by message"
        );
        let same = client
            .query("SELECT count(*) FROM r_copy JOIN (SELECT i % 2048 AS j, h FROM r) USING (j, h)")
            .await
            .unwrap();
        // Each (j, h) pair is in r about 98 times, and in the copy as often.
        let pairs = client
            .query("SELECT sum(n * n)::BIGINT FROM (SELECT count(*) AS n FROM r GROUP BY i % 2048)")
            .await
            .unwrap();
        assert_eq!(i64_at(&same, 0), i64_at(&pairs, 0), "{mode:?}");

        // A carrier that claims a gigabyte: refused by its length, in a few kilobytes.
        let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
        std::io::Write::write_all(&mut encoder, &(1u32 << 30).to_le_bytes()).unwrap();
        for _ in 0..64 {
            std::io::Write::write_all(&mut encoder, &[0u8; 1 << 20]).unwrap();
        }
        let carrier = arrow_flight::FlightData {
            app_metadata: pond_proto::frames::MARK.to_vec().into(),
            data_body: encoder.finish().unwrap().into(),
            ..Default::default()
        };
        let cmd = arrow_flight::sql::CommandStatementIngest {
            table: "bomb".into(),
            temporary: true,
            ..Default::default()
        };
        let descriptor = arrow_flight::FlightDescriptor::new_cmd(prost::Message::encode_to_vec(
            &arrow_flight::sql::ProstMessageExt::as_any(&cmd),
        ));
        let upload = vec![arrow_flight::FlightData::new().with_descriptor(descriptor), carrier];
        let channel =
            tonic::transport::Endpoint::from_shared(format!("http://{}", server.url.trim_start_matches("pond://")))
                .unwrap()
                .connect()
                .await
                .unwrap();
        let mut raw = arrow_flight::flight_service_client::FlightServiceClient::new(channel);
        let mut request = tonic::Request::new(futures::stream::iter(upload));
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        let refused = match raw.do_put(request).await {
            Ok(response) => response.into_inner().message().await.unwrap_err(),
            Err(status) => status,
        };
        assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{mode:?}: {refused:?}");
        assert!(
            refused.message().contains("larger than the limit"),
            "{mode:?}: {refused:?}"
        );
        assert_eq!(tables_named(&mut client, "bomb").await, 0, "{mode:?}");

        // An ingest whose source fails part way is all or nothing, framed or not: nothing has
        // landed when the error comes back.
        for framed in [true, false] {
            client.set_compression(framed);
            let first = client.query("SELECT i, h FROM r LIMIT 5000").await.unwrap();
            let source = futures::stream::iter(
                first
                    .into_iter()
                    .map(Ok)
                    .chain([Err(pond_client::ClientError::Invalid("the source failed".into()))]),
            );
            let target = pond_client::IngestTarget::table("aborted");
            let failed = client.ingest_stream(target, source).await.unwrap_err();
            assert!(
                matches!(&failed, pond_client::ClientError::Invalid(m) if m == "the source failed"),
                "{mode:?} {framed}: {failed:?}"
            );
            assert_eq!(tables_named(&mut client, "aborted").await, 0, "{mode:?} {framed}");
        }
        server.stop();
    }
}

/// An ingest is all or nothing in the caller's transaction too: one whose source fails aborts
/// that transaction, as a failing statement does in DuckDB, so committing it keeps neither the
/// ingest's rows nor what the transaction did before; one refused before it wrote leaves the
/// transaction to go on. And an ingest whose stream ends after
/// `--query-timeout` is answered with the timeout and keeps nothing, however late its end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_or_timed_out_ingest_keeps_nothing() {
    for mode in [&[][..], &["--ducklings", "process"][..]] {
        let dir = tempfile::tempdir().unwrap();
        let args: Vec<&str> = mode.iter().copied().chain(["--query-timeout", "1s"]).collect();
        let server = Server::start_with(&dir.path().join("data"), &args);
        let token = server.token("gus", false);
        let mut client = server.client(&token).await;
        client.execute("CREATE TABLE kept (i BIGINT)").await.unwrap();
        let rows = client.query("SELECT range AS i FROM range(5000)").await.unwrap();
        let in_time = pond_client::IngestTarget::table("in_time");
        let ingested = client
            .ingest_stream(in_time, futures::stream::iter(rows.clone().into_iter().map(Ok)))
            .await
            .unwrap();
        assert_eq!(ingested, 5000, "{mode:?}");

        // Refused before it writes (no such schema): the transaction goes on, as in DuckDB.
        client.execute("BEGIN TRANSACTION").await.unwrap();
        client.execute("INSERT INTO kept VALUES (1)").await.unwrap();
        let nowhere = pond_client::IngestTarget {
            schema: Some("no_such_schema".into()),
            ..pond_client::IngestTarget::table("nowhere")
        };
        let source = futures::stream::iter(rows.clone().into_iter().map(Ok));
        client.ingest_stream(nowhere, source).await.unwrap_err();
        client.execute("COMMIT").await.unwrap();
        let kept = client.query("SELECT count(*) FROM kept").await.unwrap();
        assert_eq!(i64_at(&kept, 0), [1], "{mode:?}");

        client.execute("BEGIN TRANSACTION").await.unwrap();
        client.execute("INSERT INTO kept VALUES (2)").await.unwrap();
        let failing = futures::stream::iter(
            rows.clone()
                .into_iter()
                .map(Ok)
                .chain([Err(pond_client::ClientError::Invalid("the source failed".into()))]),
        );
        let half = pond_client::IngestTarget::table("half");
        client.ingest_stream(half, failing).await.unwrap_err();
        let refused = client.query("SELECT count(*) FROM kept").await.unwrap_err();
        assert!(refused.to_string().contains("aborted"), "{mode:?}: {refused}");
        // DuckDB's COMMIT of an aborted transaction rolls it back (with or without an error).
        let _ = client.execute("COMMIT").await;
        assert_eq!(tables_named(&mut client, "half").await, 0, "{mode:?}");
        let kept = client.query("SELECT count(*) FROM kept").await.unwrap();
        assert_eq!(i64_at(&kept, 0), [1], "{mode:?}");

        // The stream's end comes 2.5 s after its rows: after the timeout's answer (at most
        // twice the timeout), so a commit at the end would land after the caller was told.
        let late_end = futures::StreamExt::filter_map(
            futures::stream::once(tokio::time::sleep(Duration::from_millis(2500))),
            |()| async { None::<Result<RecordBatch, pond_client::ClientError>> },
        );
        let slow = futures::StreamExt::chain(futures::stream::iter(rows.into_iter().map(Ok)), late_end);
        let started = Instant::now();
        let timed_out = client
            .ingest_stream(pond_client::IngestTarget::table("slow"), slow)
            .await
            .unwrap_err();
        assert!(timed_out.to_string().contains("query timeout"), "{mode:?}: {timed_out}");
        tokio::time::sleep(Duration::from_millis(3500).saturating_sub(started.elapsed())).await;
        assert_eq!(tables_named(&mut client, "slow").await, 0, "{mode:?}");
        assert_eq!(tables_named(&mut client, "in_time").await, 1, "{mode:?}");
        server.stop();
    }
}

/// Pond's client sends its token under its own header, which HTTP/2 compresses to an index
/// after the first call: what a call costs does not depend on the token's length. Either
/// header authenticates, `authorization` first, so a request is judged by one credential
/// everywhere, through the proxy of duckling processes too (which forwards only its own).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_crosses_the_link_once_per_connection() {
    /// Bytes the client sends per `SELECT` once its connection is warm.
    async fn sent_per_call(server: &Server, token: &str) -> u64 {
        let mut options = pond_client::ConnectOptions::parse(&server.url).unwrap();
        options.token = Some(token.to_string());
        let link = pond_client::Link::unlimited();
        let mut client = PondClient::connect_over(options, std::sync::Arc::clone(&link))
            .await
            .unwrap();
        assert_eq!(i64_at(&client.query("SELECT 42::BIGINT").await.unwrap(), 0), vec![42]);
        let (before, _) = link.totals();
        for i in 0..5 {
            let answer = client.query(&format!("SELECT {i}::BIGINT")).await.unwrap();
            assert_eq!(i64_at(&answer, 0), vec![i]);
        }
        (link.totals().0 - before) / 5
    }
    for mode in [&[][..], &["--ducklings", "process"][..]] {
        let dir = tempfile::tempdir().unwrap();
        let server = Server::start_with(&dir.path().join("data"), mode);
        let short = server.token("ida", false);
        let long = server.token(&format!("ida_{}", "x".repeat(56)), false);
        assert!(long.len() >= short.len() + 70);
        let (short_call, long_call) = (
            sent_per_call(&server, &short).await,
            sent_per_call(&server, &long).await,
        );
        assert!(
            short_call.abs_diff(long_call) <= 4,
            "{mode:?}: a call sent {short_call} bytes with a {}-byte token, {long_call} with a {}-byte one",
            short.len(),
            long.len()
        );

        // Only a valid token passes under that header.
        let mut forged = short.clone();
        forged.pop();
        let bad = PondClient::connect(&format!("{}?token={forged}", server.url))
            .await
            .unwrap()
            .query("SELECT 1")
            .await;
        assert_eq!(bad.unwrap_err().code(), Some(tonic::Code::Unauthenticated), "{mode:?}");

        // With both headers, `authorization` decides: ida's table answers to ida's
        // `authorization` beside another user's header, and a bad `authorization` beside
        // ida's header is refused.
        let mut ida = server.client(&short).await;
        ida.execute("CREATE TABLE my_db.mine AS SELECT 7::BIGINT AS v")
            .await
            .unwrap();
        let other = server.token("otto", false);
        let mut otto = server.client(&other).await;
        let info = plan_inline(&mut otto, &short, "SELECT v FROM my_db.mine")
            .await
            .unwrap();
        assert!(info.app_metadata.starts_with(pond_proto::inline::MAGIC), "{mode:?}");
        let refused = plan_inline(&mut otto, &other, "SELECT v FROM my_db.mine")
            .await
            .unwrap_err();
        assert_ne!(refused.code(), tonic::Code::Ok, "{mode:?}");
        let refused = plan_inline(&mut ida, "not-a-token", "SELECT v FROM my_db.mine")
            .await
            .unwrap_err();
        assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{mode:?}");
        server.stop();
    }
}

/// A session plans from the cloud's statistics it kept, but another session may change a
/// table's columns meanwhile: every answer still follows the table as it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plans_from_kept_statistics_follow_columns_changed_elsewhere() {
    let server = Server::start();
    let token = server.token("hal", false);
    let mut cloud = server.client(&token).await;
    cloud
        .execute("CREATE TABLE m AS SELECT range AS k, range AS x FROM range(1000)")
        .await
        .unwrap();
    let mut session = server.dual_session(&token, None).await;
    session.run("ATTACH 'pond:'").await.unwrap();
    session
        .run("CREATE TABLE keys AS SELECT range AS k FROM range(100)")
        .await
        .unwrap();
    let count = |outcome: pond_client::Outcome| i64_at(&outcome.batches, 0);
    let filtered = "SELECT count(*) FROM keys JOIN my_db.m USING (k) WHERE m.x > 1.0";
    assert_eq!(count(session.run(filtered).await.unwrap()), vec![98]);
    // Planned here from then on, but not the filtered query: its pushed filter casts x.
    let joined = "SELECT count(*) FROM keys JOIN my_db.m USING (k)";
    assert_eq!(count(session.run(joined).await.unwrap()), vec![100]);
    assert_eq!(session.run(joined).await.unwrap().planning_bytes, 0);
    assert!(session.run(filtered).await.unwrap().planning_bytes > 0);

    // Retyped elsewhere: x = k + 0.04 now, so k = 1 passes too (a filter cast to the old
    // type's precision would drop it).
    cloud.execute("ALTER TABLE m ALTER COLUMN x TYPE DOUBLE").await.unwrap();
    cloud.execute("UPDATE m SET x = x + 0.04").await.unwrap();
    assert_eq!(count(session.run(filtered).await.unwrap()), vec![99]);

    // Added elsewhere: a query naming the new column, and one expanding `*`, see it.
    cloud
        .execute("ALTER TABLE m ADD COLUMN extra INTEGER DEFAULT 7")
        .await
        .unwrap();
    let summed = session
        .run("SELECT sum(m.extra)::BIGINT FROM keys JOIN my_db.m USING (k)")
        .await
        .unwrap();
    assert_eq!(count(summed), vec![700]);
    let star = session
        .run("SELECT * FROM keys JOIN my_db.m USING (k) ORDER BY k LIMIT 1")
        .await
        .unwrap();
    assert_eq!(star.batches[0].num_columns(), 3);
    server.stop();
}
