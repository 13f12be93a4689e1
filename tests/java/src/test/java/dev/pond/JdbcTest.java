package dev.pond;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.BufferedReader;
import java.io.File;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.ResultSetMetaData;
import java.sql.SQLException;
import java.sql.Statement;
import java.sql.Types;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * End-to-end tests of Pond through the Arrow Flight SQL JDBC driver
 * (org.apache.arrow:flight-sql-jdbc-driver), against the real `pond serve` binary.
 *
 * <p>The binary is taken from the POND_BIN environment variable, or
 * $HOME/.cache/pond-target/release/pond. It is started once for the class, in a fresh temporary
 * data directory, on a port chosen by the OS.
 *
 * <p>Every test creates its own tables (names prefixed with the test's name), so tests do not depend
 * on each other or on their order.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class JdbcTest {
  private static final Pattern LISTENING = Pattern.compile("listening on grpc://127\\.0\\.0\\.1:(\\d+)");
  private static final long STARTUP_SECONDS = 90;
  private static final long SHUTDOWN_SECONDS = 30;

  private static Path tempDir;
  private static Path dataDir;
  private static Path stderrLog;
  private static Process server;
  private static final StringBuffer serverStdout = new StringBuffer();
  private static int port;
  private static String token;

  // ---------------------------------------------------------------------------------------------
  // Server lifecycle
  // ---------------------------------------------------------------------------------------------

  @BeforeAll
  static void startServer() throws Exception {
    Path bin = pondBinary();
    assertTrue(
        Files.isRegularFile(bin) && Files.isExecutable(bin),
        "pond binary not found or not executable at " + bin + " (set POND_BIN)");

    tempDir = Files.createTempDirectory("pond-jdbc-");
    // The server must create its data directory itself on first start.
    dataDir = tempDir.resolve("data");
    stderrLog = tempDir.resolve("server.stderr.log");

    ProcessBuilder pb =
        new ProcessBuilder(
            bin.toString(),
            "serve",
            "--data-dir",
            dataDir.toString(),
            "--listen",
            "127.0.0.1:0",
            // The S3 test's moto server listens on loopback.
            "--private-endpoints");
    pb.redirectError(stderrLog.toFile());
    pb.redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")));
    server = pb.start();
    Runtime.getRuntime()
        .addShutdownHook(
            new Thread(
                () -> {
                  if (server != null && server.isAlive()) {
                    server.destroyForcibly();
                  }
                }));

    CompletableFuture<Integer> portFuture = new CompletableFuture<>();
    Thread reader =
        new Thread(
            () -> {
              try (BufferedReader r =
                  new BufferedReader(
                      new InputStreamReader(server.getInputStream(), StandardCharsets.UTF_8))) {
                String line;
                while ((line = r.readLine()) != null) {
                  serverStdout.append(line).append('\n');
                  Matcher m = LISTENING.matcher(line);
                  if (!portFuture.isDone() && m.find()) {
                    portFuture.complete(Integer.parseInt(m.group(1)));
                  }
                }
              } catch (IOException e) {
                // The stream closes when the process ends.
              }
              portFuture.completeExceptionally(
                  new IllegalStateException("server stdout closed before it was listening"));
            },
            "pond-stdout");
    reader.setDaemon(true);
    reader.start();

    try {
      port = portFuture.get(STARTUP_SECONDS, TimeUnit.SECONDS);
    } catch (TimeoutException | java.util.concurrent.ExecutionException e) {
      String why =
          e instanceof TimeoutException
              ? "no 'listening on grpc://127.0.0.1:PORT' line within " + STARTUP_SECONDS + " s"
              : e.getCause().getMessage();
      server.destroyForcibly();
      fail("pond serve did not start: " + why + "\n" + diagnostics());
    }
    assertTrue(port > 0 && port < 65536, "bad port " + port);

    Path tokenFile = dataDir.resolve("admin.token");
    assertTrue(Files.isRegularFile(tokenFile), "missing " + tokenFile + "\n" + diagnostics());
    List<String> lines = Files.readAllLines(tokenFile, StandardCharsets.UTF_8);
    assertFalse(lines.isEmpty(), "admin.token is empty");
    token = lines.get(0).trim();
    assertFalse(token.isEmpty(), "admin.token's first line is empty");
  }

  @AfterAll
  static void stopServer() throws Exception {
    if (server == null) {
      return;
    }
    try {
      // Process.destroy() sends SIGTERM on Unix: the server must shut down gracefully.
      server.destroy();
      boolean exited = server.waitFor(SHUTDOWN_SECONDS, TimeUnit.SECONDS);
      if (!exited) {
        server.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
      }
      assertTrue(exited, "pond serve did not exit within " + SHUTDOWN_SECONDS + " s of SIGTERM");
      assertEquals(
          0, server.exitValue(), "pond serve exit code after SIGTERM\n" + diagnostics());
    } finally {
      deleteRecursively(tempDir);
    }
  }

  private static Path pondBinary() {
    String env = System.getenv("POND_BIN");
    if (env != null && !env.isBlank()) {
      return Paths.get(env);
    }
    return Paths.get(System.getProperty("user.home"), ".cache", "pond-target", "release", "pond");
  }

  private static String diagnostics() {
    String err;
    try {
      err = stderrLog != null && Files.exists(stderrLog) ? Files.readString(stderrLog) : "";
    } catch (IOException e) {
      err = "(unreadable: " + e + ")";
    }
    return "--- server stdout ---\n" + tail(serverStdout.toString()) + "--- server stderr ---\n"
        + tail(err);
  }

  private static String tail(String s) {
    int max = 4000;
    return s.length() <= max ? s : "..." + s.substring(s.length() - max);
  }

  private static void deleteRecursively(Path dir) {
    if (dir == null || !Files.exists(dir)) {
      return;
    }
    try (Stream<Path> paths = Files.walk(dir)) {
      paths.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
    } catch (IOException e) {
      // best effort
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Helpers
  // ---------------------------------------------------------------------------------------------

  private static String url(String tok) {
    return "jdbc:arrow-flight-sql://127.0.0.1:" + port + "?useEncryption=false&token=" + tok;
  }

  private static Connection connect() throws SQLException {
    return DriverManager.getConnection(url(token));
  }

  /** Reads a result set's rows as strings (SQL NULL as null). */
  private static List<List<String>> rows(ResultSet rs) throws SQLException {
    int n = rs.getMetaData().getColumnCount();
    List<List<String>> out = new ArrayList<>();
    while (rs.next()) {
      List<String> row = new ArrayList<>();
      for (int i = 1; i <= n; i++) {
        row.add(rs.getString(i));
      }
      out.add(row);
    }
    return out;
  }

  private static List<String> column(ResultSet rs, String label) throws SQLException {
    List<String> out = new ArrayList<>();
    while (rs.next()) {
      out.add(rs.getString(label));
    }
    return out;
  }

  /** Every message in an exception's cause chain, joined. */
  private static String messages(Throwable t) {
    StringBuilder sb = new StringBuilder();
    for (Throwable c = t; c != null; c = c.getCause()) {
      sb.append(c.getClass().getName()).append(": ").append(c.getMessage()).append('\n');
      if (c.getCause() == c) {
        break;
      }
    }
    return sb.toString();
  }

  private static long count(Connection c, String table) throws SQLException {
    try (Statement s = c.createStatement();
        ResultSet rs = s.executeQuery("SELECT count(*) FROM " + table)) {
      assertTrue(rs.next(), "count(*) returned no row");
      long n = rs.getLong(1);
      assertFalse(rs.next(), "count(*) returned more than one row");
      return n;
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Connecting
  // ---------------------------------------------------------------------------------------------

  /**
   * A user's S3 data through JDBC: a secret IN POND, a COPY to S3 and a read of it back, against
   * a real S3-compatible server (moto, from the Python suite's environment; POND_PYTHON names
   * another interpreter that has it).
   */
  @Test
  @Timeout(120)
  void readsAndWritesS3ThroughASecret() throws Exception {
    String python =
        System.getenv()
            .getOrDefault(
                "POND_PYTHON", System.getProperty("user.home") + "/.cache/pond-venv/bin/python");
    assertTrue(
        Files.isExecutable(Paths.get(python)),
        "no Python with moto at " + python + " (run tests/python/run.sh first, or set POND_PYTHON)");
    int s3Port;
    try (ServerSocket free = new ServerSocket(0)) {
      s3Port = free.getLocalPort();
    }
    Process moto =
        new ProcessBuilder(python, "-m", "moto.server", "-H", "127.0.0.1", "-p", String.valueOf(s3Port))
            .redirectErrorStream(true)
            .redirectOutput(tempDir.resolve("moto.log").toFile())
            .start();
    try {
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
      while (true) {
        try (Socket probe = new Socket("127.0.0.1", s3Port)) {
          break;
        } catch (IOException notYet) {
          assertTrue(moto.isAlive() && System.nanoTime() < deadline, "moto did not start");
          Thread.sleep(100);
        }
      }
      HttpResponse<String> bucket =
          HttpClient.newHttpClient()
              .send(
                  HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + s3Port + "/jdbc-lake"))
                      .PUT(HttpRequest.BodyPublishers.noBody())
                      .build(),
                  HttpResponse.BodyHandlers.ofString());
      assertEquals(200, bucket.statusCode(), bucket.body());
      try (Connection c = connect();
          Statement s = c.createStatement()) {
        s.execute(
            "CREATE OR REPLACE SECRET jdbc_lake IN POND (TYPE s3, KEY_ID 'jdbc-key', SECRET 'jdbc-secret', "
                + "REGION 'us-east-1', ENDPOINT '127.0.0.1:"
                + s3Port
                + "', URL_STYLE 'path', USE_SSL false, SCOPE 's3://jdbc-lake/')");
        s.execute(
            "COPY (SELECT range AS n FROM range(10)) TO 's3://jdbc-lake/n.parquet' (FORMAT parquet)");
        try (ResultSet rs = s.executeQuery("SELECT sum(n), count(*) FROM 's3://jdbc-lake/n.parquet'")) {
          assertTrue(rs.next());
          assertEquals(45, rs.getLong(1));
          assertEquals(10, rs.getLong(2));
        }
        try (ResultSet rs = s.executeQuery("SELECT name, storage FROM duckdb_secrets()")) {
          assertEquals(List.of(List.of("jdbc_lake", "pond")), rows(rs));
        }
        s.execute("DROP SECRET jdbc_lake");
      }
    } finally {
      moto.destroy();
      moto.waitFor(10, TimeUnit.SECONDS);
    }
  }

  @Test
  void connectsWithTokenWithoutEncryption() throws Exception {
    try (Connection c = connect()) {
      assertFalse(c.isClosed());
      DatabaseMetaData md = c.getMetaData();
      assertNotNull(md);
      assertTrue(md.getURL() == null || md.getURL().startsWith("jdbc:arrow-flight-sql://"));
      try (Statement s = c.createStatement();
          ResultSet rs = s.executeQuery("SELECT 1 AS one")) {
        assertTrue(rs.next());
        assertEquals(1, rs.getInt(1));
        assertFalse(rs.next());
      }
    }
  }

  @Test
  void badTokenIsRefused() {
    SQLException e =
        assertThrows(
            SQLException.class,
            () -> {
              try (Connection c = DriverManager.getConnection(url("not-a-valid-token"));
                  Statement s = c.createStatement();
                  ResultSet rs = s.executeQuery("SELECT 1")) {
                rs.next();
              }
            },
            "a bogus token must not be able to run a query");
    String msg = messages(e).toLowerCase();
    assertTrue(
        msg.contains("unauthenticated") || msg.contains("token") || msg.contains("auth"),
        "expected an authentication error, got:\n" + messages(e));
  }

  // ---------------------------------------------------------------------------------------------
  // DatabaseMetaData
  // ---------------------------------------------------------------------------------------------

  @Test
  void catalogsContainMyDb() throws Exception {
    try (Connection c = connect();
        ResultSet rs = c.getMetaData().getCatalogs()) {
      List<String> cats = column(rs, "TABLE_CAT");
      assertTrue(cats.contains("my_db"), "getCatalogs() = " + cats);
    }
  }

  @Test
  void schemasContainMain() throws Exception {
    try (Connection c = connect()) {
      DatabaseMetaData md = c.getMetaData();
      List<String> all = new ArrayList<>();
      boolean mainInMyDb = false;
      try (ResultSet rs = md.getSchemas()) {
        while (rs.next()) {
          String schem = rs.getString("TABLE_SCHEM");
          String cat = rs.getString("TABLE_CATALOG");
          all.add(cat + "." + schem);
          mainInMyDb |= "main".equals(schem) && "my_db".equals(cat);
        }
      }
      assertTrue(mainInMyDb, "getSchemas() = " + all);

      try (ResultSet rs = md.getSchemas("my_db", "main")) {
        List<String> filtered = column(rs, "TABLE_SCHEM");
        assertEquals(List.of("main"), filtered, "getSchemas(\"my_db\", \"main\")");
      }
    }
  }

  @Test
  void tableTypesAreListed() throws Exception {
    try (Connection c = connect();
        ResultSet rs = c.getMetaData().getTableTypes()) {
      List<String> types = column(rs, "TABLE_TYPE");
      assertTrue(
          types.contains("TABLE") || types.contains("BASE TABLE"), "getTableTypes() = " + types);
      assertTrue(types.contains("VIEW"), "getTableTypes() = " + types);
    }
  }

  @Test
  void getTablesFindsCreatedTable() throws Exception {
    try (Connection c = connect()) {
      try (Statement s = c.createStatement()) {
        s.executeUpdate("CREATE TABLE jdbc_tables_t (id INTEGER, name VARCHAR)");
        s.executeUpdate("CREATE VIEW jdbc_tables_v AS SELECT id FROM jdbc_tables_t");
      }
      DatabaseMetaData md = c.getMetaData();
      try (ResultSet rs = md.getTables("my_db", "main", "jdbc_tables_t", null)) {
        List<List<String>> found = new ArrayList<>();
        while (rs.next()) {
          found.add(
              List.of(
                  String.valueOf(rs.getString("TABLE_CAT")),
                  String.valueOf(rs.getString("TABLE_SCHEM")),
                  String.valueOf(rs.getString("TABLE_NAME")),
                  String.valueOf(rs.getString("TABLE_TYPE"))));
        }
        assertEquals(1, found.size(), "getTables(my_db, main, jdbc_tables_t) = " + found);
        List<String> row = found.get(0);
        assertEquals("my_db", row.get(0));
        assertEquals("main", row.get(1));
        assertEquals("jdbc_tables_t", row.get(2));
        assertTrue(
            row.get(3).equals("TABLE") || row.get(3).equals("BASE TABLE"),
            "TABLE_TYPE = " + row.get(3));
      }

      // A LIKE pattern finds both the table and the view, each with its type.
      try (ResultSet rs = md.getTables("my_db", "main", "jdbc_tables_%", null)) {
        List<String> names = new ArrayList<>();
        String viewType = null;
        while (rs.next()) {
          names.add(rs.getString("TABLE_NAME"));
          if ("jdbc_tables_v".equals(rs.getString("TABLE_NAME"))) {
            viewType = rs.getString("TABLE_TYPE");
          }
        }
        assertTrue(
            names.contains("jdbc_tables_t") && names.contains("jdbc_tables_v"),
            "getTables(my_db, main, jdbc_tables_%) = " + names);
        assertEquals("VIEW", viewType);
      }

      // The missing table is not found.
      try (ResultSet rs = md.getTables("my_db", "main", "jdbc_tables_nope", null)) {
        assertFalse(rs.next(), "getTables found a table that does not exist");
      }
    }
  }

  @Test
  void getColumnsReturnsNamesAndJdbcTypes() throws Exception {
    try (Connection c = connect()) {
      try (Statement s = c.createStatement()) {
        s.executeUpdate(
            "CREATE TABLE jdbc_cols_t (id INTEGER, name VARCHAR, big BIGINT, score DOUBLE, ok BOOLEAN)");
      }
      List<String> names = new ArrayList<>();
      List<Integer> types = new ArrayList<>();
      List<Integer> positions = new ArrayList<>();
      try (ResultSet rs = c.getMetaData().getColumns("my_db", "main", "jdbc_cols_t", null)) {
        while (rs.next()) {
          assertEquals("jdbc_cols_t", rs.getString("TABLE_NAME"));
          assertEquals("my_db", rs.getString("TABLE_CAT"));
          assertEquals("main", rs.getString("TABLE_SCHEM"));
          names.add(rs.getString("COLUMN_NAME"));
          types.add(rs.getInt("DATA_TYPE"));
          positions.add(rs.getInt("ORDINAL_POSITION"));
        }
      }
      assertEquals(List.of("id", "name", "big", "score", "ok"), names, "column names");
      assertEquals(
          List.of(Types.INTEGER, Types.VARCHAR, Types.BIGINT, Types.DOUBLE, Types.BOOLEAN),
          types,
          "JDBC types of " + names);
      assertEquals(List.of(1, 2, 3, 4, 5), positions, "ORDINAL_POSITION");

      // A column name pattern narrows the result.
      try (ResultSet rs = c.getMetaData().getColumns("my_db", "main", "jdbc_cols_t", "na%")) {
        assertEquals(List.of("name"), column(rs, "COLUMN_NAME"));
      }
    }
  }

  @Test
  void getPrimaryKeysReturnsKeyColumns() throws Exception {
    try (Connection c = connect()) {
      try (Statement s = c.createStatement()) {
        s.executeUpdate(
            "CREATE TABLE jdbc_pk_t (a INTEGER, b VARCHAR, c DOUBLE, PRIMARY KEY (a, b))");
        s.executeUpdate("CREATE TABLE jdbc_nopk_t (x INTEGER)");
      }
      DatabaseMetaData md = c.getMetaData();
      List<String> cols = new ArrayList<>();
      List<Integer> seqs = new ArrayList<>();
      try (ResultSet rs = md.getPrimaryKeys("my_db", "main", "jdbc_pk_t")) {
        while (rs.next()) {
          assertEquals("jdbc_pk_t", rs.getString("TABLE_NAME"));
          assertEquals("my_db", rs.getString("TABLE_CAT"));
          assertEquals("main", rs.getString("TABLE_SCHEM"));
          cols.add(rs.getString("COLUMN_NAME"));
          seqs.add(rs.getInt("KEY_SEQ"));
        }
      }
      // JDBC orders primary key rows by COLUMN_NAME; pair them up to check KEY_SEQ.
      assertEquals(2, cols.size(), "primary key columns = " + cols);
      assertTrue(cols.contains("a") && cols.contains("b"), "primary key columns = " + cols);
      assertEquals(1, seqs.get(cols.indexOf("a")), "KEY_SEQ of a; cols=" + cols + " seqs=" + seqs);
      assertEquals(2, seqs.get(cols.indexOf("b")), "KEY_SEQ of b; cols=" + cols + " seqs=" + seqs);

      try (ResultSet rs = md.getPrimaryKeys("my_db", "main", "jdbc_nopk_t")) {
        assertFalse(rs.next(), "a table without a primary key has no primary key rows");
      }
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Statements
  // ---------------------------------------------------------------------------------------------

  @Test
  void selectLiteral() throws Exception {
    try (Connection c = connect();
        Statement s = c.createStatement();
        ResultSet rs = s.executeQuery("SELECT 42")) {
      assertEquals(1, rs.getMetaData().getColumnCount());
      assertTrue(rs.next(), "SELECT 42 returned no row");
      assertEquals(42, rs.getInt(1));
      assertFalse(rs.next(), "SELECT 42 returned more than one row");
    }
  }

  @Test
  void selectTypedValues() throws Exception {
    try (Connection c = connect();
        Statement s = c.createStatement();
        ResultSet rs =
            s.executeQuery(
                "SELECT 42 AS answer, 'héllo' AS greeting, 1.5::DOUBLE AS half, true AS yes,"
                    + " NULL::INTEGER AS nothing, 9007199254740993::BIGINT AS big")) {
      ResultSetMetaData md = rs.getMetaData();
      assertEquals(6, md.getColumnCount());
      assertEquals("answer", md.getColumnLabel(1));
      assertEquals("greeting", md.getColumnLabel(2));
      assertEquals(Types.INTEGER, md.getColumnType(1));
      assertEquals(Types.VARCHAR, md.getColumnType(2));
      assertEquals(Types.DOUBLE, md.getColumnType(3));
      assertEquals(Types.BOOLEAN, md.getColumnType(4));
      assertEquals(Types.BIGINT, md.getColumnType(6));
      assertTrue(rs.next());
      assertEquals(42, rs.getInt("answer"));
      assertEquals("héllo", rs.getString("greeting"));
      assertEquals(1.5, rs.getDouble("half"));
      assertTrue(rs.getBoolean("yes"));
      assertEquals(0, rs.getInt("nothing"));
      assertTrue(rs.wasNull(), "NULL::INTEGER must read as SQL NULL");
      assertEquals(9007199254740993L, rs.getLong("big"));
      assertFalse(rs.next());
    }
  }

  @Test
  void queryOverCreatedTable() throws Exception {
    try (Connection c = connect();
        Statement s = c.createStatement()) {
      s.executeUpdate("CREATE TABLE jdbc_query_t (id INTEGER, name VARCHAR, amount DOUBLE)");
      s.executeUpdate(
          "INSERT INTO jdbc_query_t VALUES (1, 'alpha', 10.5), (2, 'beta', 20.25), (3, NULL, 30)");
      try (ResultSet rs = s.executeQuery("SELECT id, name, amount FROM jdbc_query_t ORDER BY id")) {
        assertEquals(
            List.of(
                List.of("1", "alpha", "10.5"),
                List.of("2", "beta", "20.25"),
                java.util.Arrays.asList("3", null, "30.0")),
            rows(rs));
      }
      try (ResultSet rs =
          s.executeQuery(
              "SELECT count(*) AS n, sum(amount) AS total, max(name) AS last FROM jdbc_query_t")) {
        assertTrue(rs.next());
        assertEquals(3, rs.getLong("n"));
        assertEquals(60.75, rs.getDouble("total"), 1e-9);
        assertEquals("beta", rs.getString("last"));
        assertFalse(rs.next());
      }
    }
  }

  @Test
  void largeResultIsStreamedCompletely() throws Exception {
    try (Connection c = connect();
        Statement s = c.createStatement();
        ResultSet rs = s.executeQuery("SELECT i, i * 2 AS j FROM range(200000) t(i) ORDER BY i")) {
      long n = 0;
      long sum = 0;
      while (rs.next()) {
        assertEquals(n, rs.getLong(1));
        sum += rs.getLong(2);
        n++;
      }
      assertEquals(200000, n);
      assertEquals(2L * (199999L * 200000L / 2), sum);
    }
  }

  @Test
  void executeUpdateReturnsCounts() throws Exception {
    try (Connection c = connect();
        Statement s = c.createStatement()) {
      assertEquals(
          0,
          s.executeUpdate("CREATE TABLE jdbc_update_t (id INTEGER, name VARCHAR)"),
          "executeUpdate(CREATE TABLE) must return 0");
      assertEquals(
          3,
          s.executeUpdate("INSERT INTO jdbc_update_t VALUES (1, 'a'), (2, 'b'), (3, 'c')"),
          "executeUpdate(INSERT 3 rows)");
      assertEquals(
          5,
          s.executeUpdate("INSERT INTO jdbc_update_t SELECT i + 10, 'x' FROM range(5) t(i)"),
          "executeUpdate(INSERT ... SELECT 5 rows)");
      assertEquals(
          2,
          s.executeUpdate("UPDATE jdbc_update_t SET name = 'z' WHERE id IN (1, 2)"),
          "executeUpdate(UPDATE 2 rows)");
      assertEquals(
          1, s.executeUpdate("DELETE FROM jdbc_update_t WHERE id = 3"), "executeUpdate(DELETE)");
      assertEquals(7, count(c, "jdbc_update_t"));
      try (ResultSet rs =
          s.executeQuery("SELECT name FROM jdbc_update_t WHERE id <= 3 ORDER BY id")) {
        assertEquals(List.of("z", "z"), column(rs, "name"));
      }
    }
  }

  @Test
  void scriptWhoseLastQueryNeedsTheStatementsBeforeItReturnsItsRows() throws Exception {
    try (Connection c = connect();
        Statement s = c.createStatement()) {
      // The driver prepares the text first; preparing learns the result schema by rehearsing the
      // script's CREATE in a rolled-back transaction, so the script's effects happen once.
      assertTrue(
          s.execute(
              "CREATE TABLE jdbc_script_t (i INTEGER); INSERT INTO jdbc_script_t VALUES (1), (2);"
                  + " SELECT sum(i) AS total, count(*) AS n FROM jdbc_script_t"),
          "the script's last statement is a query: execute must return a result set");
      try (ResultSet rs = s.getResultSet()) {
        assertEquals(List.of(List.of("3", "2")), rows(rs));
      }
      assertEquals(2, count(c, "jdbc_script_t"));
      // The last statement is only prepared in a rehearsal, so its nextval runs once.
      assertTrue(s.execute("CREATE SEQUENCE jdbc_script_seq; SELECT nextval('jdbc_script_seq') AS v"));
      try (ResultSet rs = s.getResultSet()) {
        assertEquals(List.of(List.of("1")), rows(rs));
      }
      // A sequence does not roll back: a script that advances one before its last statement is
      // not rehearsed (the driver then runs it as an update), and it still runs exactly once.
      s.execute(
          "SELECT nextval('jdbc_script_seq'); CREATE TABLE jdbc_script_seq_t AS SELECT 1 AS one;"
              + " SELECT one FROM jdbc_script_seq_t");
      try (ResultSet rs = s.executeQuery("SELECT nextval('jdbc_script_seq') AS v")) {
        assertEquals(List.of(List.of("3")), rows(rs));
      }
    }
  }

  @Test
  void writesAreVisibleToAnotherConnection() throws Exception {
    try (Connection c1 = connect();
        Statement s = c1.createStatement()) {
      s.executeUpdate("CREATE TABLE jdbc_shared_t (v INTEGER)");
      assertEquals(2, s.executeUpdate("INSERT INTO jdbc_shared_t VALUES (7), (8)"));
    }
    try (Connection c2 = connect();
        Statement s = c2.createStatement();
        ResultSet rs = s.executeQuery("SELECT sum(v) FROM my_db.main.jdbc_shared_t")) {
      assertTrue(rs.next());
      assertEquals(15, rs.getLong(1));
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Prepared statements
  // ---------------------------------------------------------------------------------------------

  @Test
  void preparedSelectWithParameters() throws Exception {
    try (Connection c = connect()) {
      try (Statement s = c.createStatement()) {
        s.executeUpdate("CREATE TABLE jdbc_psel_t (id INTEGER, name VARCHAR)");
        s.executeUpdate(
            "INSERT INTO jdbc_psel_t VALUES (1, 'one'), (2, 'two'), (3, 'three'), (4, 'four')");
      }
      try (PreparedStatement ps =
          c.prepareStatement("SELECT id, name FROM jdbc_psel_t WHERE id > ? AND name <> ? ORDER BY id")) {
        assertEquals(2, ps.getParameterMetaData().getParameterCount(), "parameter count");
        ResultSetMetaData md = ps.getMetaData();
        if (md != null) {
          assertEquals(2, md.getColumnCount(), "prepared result columns");
          assertEquals("id", md.getColumnLabel(1));
          assertEquals("name", md.getColumnLabel(2));
        }

        ps.setInt(1, 1);
        ps.setString(2, "three");
        try (ResultSet rs = ps.executeQuery()) {
          assertEquals(List.of(List.of("2", "two"), List.of("4", "four")), rows(rs));
        }

        // Re-executing with other values uses the new values.
        ps.setInt(1, 0);
        ps.setString(2, "two");
        try (ResultSet rs = ps.executeQuery()) {
          assertEquals(
              List.of(List.of("1", "one"), List.of("3", "three"), List.of("4", "four")), rows(rs));
        }
      }
    }
  }

  @Test
  void preparedInsertWithParameters() throws Exception {
    try (Connection c = connect()) {
      try (Statement s = c.createStatement()) {
        s.executeUpdate("CREATE TABLE jdbc_pins_t (id INTEGER, name VARCHAR)");
      }
      try (PreparedStatement ps = c.prepareStatement("INSERT INTO jdbc_pins_t VALUES (?, ?)")) {
        assertEquals(2, ps.getParameterMetaData().getParameterCount(), "parameter count");
        ps.setInt(1, 10);
        ps.setString(2, "ten");
        assertEquals(1, ps.executeUpdate(), "first prepared INSERT");
        ps.setInt(1, 20);
        ps.setString(2, "it's twenty");
        assertEquals(1, ps.executeUpdate(), "second prepared INSERT");
      }
      try (PreparedStatement ps =
          c.prepareStatement(
              "INSERT INTO jdbc_pins_t SELECT id + ?::INTEGER, name FROM jdbc_pins_t")) {
        ps.setInt(1, 100);
        assertEquals(2, ps.executeUpdate(), "prepared INSERT ... SELECT of 2 rows");
      }
      try (Statement s = c.createStatement();
          ResultSet rs = s.executeQuery("SELECT id, name FROM jdbc_pins_t ORDER BY id")) {
        assertEquals(
            List.of(
                List.of("10", "ten"),
                List.of("20", "it's twenty"),
                List.of("110", "ten"),
                List.of("120", "it's twenty")),
            rows(rs));
      }
    }
  }

  @Test
  void parametersWhoseTypeDuckDbInfersLate() throws Exception {
    // DuckDB cannot give these parameters a type at prepare time. Pond announces them as text
    // (the JDBC driver 18.3 binds neither Null nor union parameters) and DuckDB casts the text
    // where the statement says so; the result type is the one the bound value produced.
    try (Connection c = connect()) {
      try (PreparedStatement ps = c.prepareStatement("SELECT 41 + ?::INTEGER AS v")) {
        ps.setInt(1, 1);
        try (ResultSet rs = ps.executeQuery()) {
          assertTrue(rs.next());
          assertEquals(42, rs.getInt(1));
          assertFalse(rs.next());
        }
      }
      try (PreparedStatement ps = c.prepareStatement("SELECT ? AS v")) {
        ps.setString(1, "hello");
        try (ResultSet rs = ps.executeQuery()) {
          assertTrue(rs.next());
          assertEquals("hello", rs.getString(1));
          assertFalse(rs.next());
        }
      }
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Shares
  // ---------------------------------------------------------------------------------------------

  /**
   * A RESTRICTED share: its owner creates it and grants READ to one user, who attaches it
   * read-only (the attachment outlives the connection); a user without a grant cannot attach it;
   * both sides see it in pond_information_schema.
   */
  @Test
  void aShareIsReadThroughJdbcByWhomItsOwnerGrants() throws Exception {
    String owner = "jdbc_share_owner";
    String reader = "jdbc_share_reader";
    String stranger = "jdbc_share_stranger";
    String ownerToken = Tokens.create(pondBinary(), dataDir, owner);
    String readerToken = Tokens.create(pondBinary(), dataDir, reader);
    String strangerToken = Tokens.create(pondBinary(), dataDir, stranger);

    // A user exists on the server once they have connected: the reader connects before the GRANT.
    try (Connection b = DriverManager.getConnection(url(readerToken));
        Statement s = b.createStatement();
        ResultSet rs = s.executeQuery("SELECT 1")) {
      assertTrue(rs.next());
      assertEquals(1, rs.getInt(1));
    }

    String shareUrl;
    try (Connection a = DriverManager.getConnection(url(ownerToken));
        Statement s = a.createStatement()) {
      s.execute("CREATE DATABASE sales");
      s.execute("CREATE TABLE sales.t AS SELECT range AS i FROM range(10)");
      assertTrue(
          s.execute("CREATE SHARE s FROM sales (ACCESS RESTRICTED)"),
          "CREATE SHARE must return a result set");
      try (ResultSet rs = s.getResultSet()) {
        ResultSetMetaData md = rs.getMetaData();
        assertEquals(1, md.getColumnCount(), "CREATE SHARE's columns");
        assertEquals("share_url", md.getColumnLabel(1));
        List<List<String>> got = rows(rs);
        assertEquals(1, got.size(), "CREATE SHARE's rows = " + got);
        shareUrl = got.get(0).get(0);
      }
      assertNotNull(shareUrl, "share_url is NULL");
      assertTrue(
          shareUrl.matches("pond:_share/sales/[0-9a-f]{32}"), "share_url = " + shareUrl);
      s.execute("GRANT READ ON SHARE s TO " + reader);

      try (ResultSet rs =
          s.executeQuery(
              "SELECT name, url, source_db_name, access, list_contains(granted_to, '"
                  + reader
                  + "') FROM pond_information_schema.owned_shares")) {
        assertEquals(
            List.of(List.of("s", shareUrl, "sales", "RESTRICTED", "true")),
            rows(rs),
            "the owner's owned_shares (name, url, source_db_name, access, granted to the reader)");
      }
    }

    try (Connection b = DriverManager.getConnection(url(readerToken));
        Statement s = b.createStatement()) {
      s.execute("ATTACH '" + shareUrl + "' AS theirs");
      assertEquals(10, count(b, "theirs.t"));

      String insert = "INSERT INTO theirs.t VALUES (1)";
      SQLException e = assertThrows(SQLException.class, () -> s.executeUpdate(insert));
      assertTrue(
          messages(e).replace(insert, "").contains("read-only"),
          "writing to an attached share must fail as read-only:\n" + messages(e));
      assertEquals(10, count(b, "theirs.t"), "the refused INSERT wrote nothing");

      try (ResultSet rs = b.getMetaData().getCatalogs()) {
        List<String> cats = column(rs, "TABLE_CAT");
        assertTrue(
            cats.contains("theirs") && cats.contains("my_db"), "the reader's getCatalogs() = " + cats);
      }

      try (ResultSet rs =
          s.executeQuery(
              "SELECT name, owner, url, source_db_name, access FROM pond_information_schema.shared_with_me"
                  + " WHERE attached_as = 'theirs'")) {
        assertEquals(
            List.of(List.of("s", owner, shareUrl, "sales", "RESTRICTED")),
            rows(rs),
            "the reader's shared_with_me row attached as theirs");
      }
    }

    // A new connection of the reader still has the share attached.
    try (Connection b = DriverManager.getConnection(url(readerToken))) {
      try (ResultSet rs = b.getMetaData().getCatalogs()) {
        List<String> cats = column(rs, "TABLE_CAT");
        assertTrue(cats.contains("theirs"), "getCatalogs() of the reader's new connection = " + cats);
      }
      assertEquals(10, count(b, "theirs.t"));
    }

    // A user without a grant cannot attach it.
    try (Connection c = DriverManager.getConnection(url(strangerToken));
        Statement s = c.createStatement()) {
      String attach = "ATTACH '" + shareUrl + "' AS x";
      SQLException e = assertThrows(SQLException.class, () -> s.execute(attach));
      String msg = messages(e).replace(attach, "");
      assertTrue(
          msg.contains("RESTRICTED") || msg.toLowerCase().contains("not granted"),
          "attaching a RESTRICTED share without a grant must be refused as such:\n" + messages(e));
      try (ResultSet rs = c.getMetaData().getCatalogs()) {
        List<String> cats = column(rs, "TABLE_CAT");
        assertFalse(cats.contains("x"), "the refused ATTACH left a catalog: " + cats);
      }
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Errors
  // ---------------------------------------------------------------------------------------------

  @Test
  void missingTableErrorNamesTableAndConnectionSurvives() throws Exception {
    try (Connection c = connect()) {
      String sql = "SELECT * FROM jdbc_no_such_table_q7";
      SQLException e =
          assertThrows(
              SQLException.class,
              () -> {
                try (Statement s = c.createStatement();
                    ResultSet rs = s.executeQuery(sql)) {
                  rs.next();
                }
              });
      // The driver may echo the SQL text in its message; the server's own error must name the
      // table too, so strip the echoed SQL before looking.
      String all = messages(e);
      assertTrue(
          all.replace(sql, "").contains("jdbc_no_such_table_q7"),
          "the error should name the missing table:\n" + all);

      // The same connection still works.
      try (Statement s = c.createStatement();
          ResultSet rs = s.executeQuery("SELECT 42")) {
        assertTrue(rs.next());
        assertEquals(42, rs.getInt(1));
      }

      // A prepared statement on a missing table fails the same way, and again the connection
      // survives and can write.
      String psql = "INSERT INTO jdbc_no_such_table_p8 VALUES (?)";
      SQLException pe =
          assertThrows(
              SQLException.class,
              () -> {
                try (PreparedStatement ps = c.prepareStatement(psql)) {
                  ps.setInt(1, 1);
                  ps.executeUpdate();
                }
              });
      String pall = messages(pe);
      assertTrue(
          pall.replace(psql, "").contains("jdbc_no_such_table_p8"),
          "the error should name the missing table:\n" + pall);

      try (Statement s = c.createStatement()) {
        s.executeUpdate("CREATE TABLE jdbc_after_error_t (v INTEGER)");
        assertEquals(1, s.executeUpdate("INSERT INTO jdbc_after_error_t VALUES (1)"));
      }
      assertEquals(1, count(c, "jdbc_after_error_t"));
    }
  }

  @Test
  void syntaxErrorIsSqlException() throws Exception {
    try (Connection c = connect()) {
      SQLException e =
          assertThrows(
              SQLException.class,
              () -> {
                try (Statement s = c.createStatement();
                    ResultSet rs = s.executeQuery("SELEC 1")) {
                  rs.next();
                }
              });
      assertTrue(
          messages(e).toLowerCase().contains("syntax"),
          "expected a syntax error:\n" + messages(e));
      try (Statement s = c.createStatement();
          ResultSet rs = s.executeQuery("SELECT 'still here'")) {
        assertTrue(rs.next());
        assertEquals("still here", rs.getString(1));
      }
    }
  }
}
