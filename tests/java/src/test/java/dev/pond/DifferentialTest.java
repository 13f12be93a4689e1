package dev.pond;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.BufferedReader;
import java.io.File;
import java.io.IOException;
import java.io.InputStreamReader;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.security.MessageDigest;
import java.sql.Blob;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.ResultSetMetaData;
import java.sql.SQLException;
import java.sql.Statement;
import java.sql.Types;
import java.time.Instant;
import java.time.LocalDate;
import java.time.LocalDateTime;
import java.time.LocalTime;
import java.time.OffsetDateTime;
import java.time.OffsetTime;
import java.time.ZoneOffset;
import java.time.ZonedDateTime;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.duckdb.DuckDBConnection;
import org.duckdb.DuckDBStruct;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The differential test through JDBC: the corpus in tests/differential (shared with the Python
 * harness, whose differential.py documents the format), through Pond with the Arrow Flight SQL
 * JDBC driver and through in-process DuckDB with DuckDB's own JDBC driver of the same version
 * (org.duckdb:duckdb_jdbc, pinned in pom.xml).
 *
 * <p>Values are compared as strings made from {@code getObject} (nested values, arrays, structs
 * and maps walked recursively; numbers compared by value; temporal values in ISO form); types
 * loosely, by the family of their java.sql.Types code. Each corpus file runs on a fresh Pond user
 * and a fresh DuckDB (with {@code my_db} attached and in use). Both sides erroring is a match;
 * PERMISSION_DENIED from Pond is a refusal, reported apart. Every mismatch must be listed in
 * tests/differential/known-mismatches-jdbc.txt, and every listed record must still mismatch.
 *
 * <p>The report goes to stdout and to target/differential/jdbc-report.txt, with a regenerated list
 * (known-mismatches-jdbc.suggested.txt) next to it. Run alone: {@code tests/java/run.sh
 * -Dtest=DifferentialTest}.
 */
@Timeout(value = 1800, unit = TimeUnit.SECONDS)
class DifferentialTest {
  private static final Pattern LISTENING = Pattern.compile("listening on grpc://127\\.0\\.0\\.1:(\\d+)");
  private static final Pattern SEPARATOR = Pattern.compile("^----\\s*$");
  private static final Pattern DIRECTIVE = Pattern.compile("^--\\s*@(\\w+)\\s*(.*?)\\s*$");
  private static final Pattern ERROR_CLASS = Pattern.compile("\\b((?:[A-Z][a-z]+ )*?[A-Z][a-z]+) Error:");

  private static Path tempDir;
  private static Path dataDir;
  private static Path bin;
  private static Process server;
  private static int port;

  // ------------------------------------------------------------------------------------------
  // Server
  // ------------------------------------------------------------------------------------------

  @BeforeAll
  static void startServer() throws Exception {
    String env = System.getenv("POND_BIN");
    bin =
        env != null && !env.isBlank()
            ? Paths.get(env)
            : Paths.get(System.getProperty("user.home"), ".cache", "pond-target", "release", "pond");
    assertTrue(Files.isExecutable(bin), "pond binary not found at " + bin + " (set POND_BIN)");
    tempDir = Files.createTempDirectory("pond-diff-");
    dataDir = tempDir.resolve("data");
    ProcessBuilder pb =
        new ProcessBuilder(
            bin.toString(), "serve", "--data-dir", dataDir.toString(), "--listen", "127.0.0.1:0",
            "--drain-timeout", "3s");
    pb.redirectError(tempDir.resolve("server.stderr.log").toFile());
    pb.redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")));
    server = pb.start();
    CompletableFuture<Integer> found = new CompletableFuture<>();
    Thread reader =
        new Thread(
            () -> {
              try (BufferedReader r =
                  new BufferedReader(new InputStreamReader(server.getInputStream(), StandardCharsets.UTF_8))) {
                String line;
                while ((line = r.readLine()) != null) {
                  Matcher m = LISTENING.matcher(line);
                  if (!found.isDone() && m.find()) {
                    found.complete(Integer.parseInt(m.group(1)));
                  }
                }
              } catch (IOException e) {
                // closed with the process
              }
              found.completeExceptionally(new IllegalStateException("server stdout closed"));
            },
            "pond-stdout");
    reader.setDaemon(true);
    reader.start();
    port = found.get(90, TimeUnit.SECONDS);
  }

  @AfterAll
  static void stopServer() throws Exception {
    if (server == null) {
      return;
    }
    server.destroy();
    if (!server.waitFor(30, TimeUnit.SECONDS)) {
      server.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
    }
    try (Stream<Path> paths = Files.walk(tempDir)) {
      paths.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
    } catch (IOException e) {
      // best effort
    }
  }

  // ------------------------------------------------------------------------------------------
  // Corpus (same format and record keys as tests/python/differential.py)
  // ------------------------------------------------------------------------------------------

  record Rec(String file, int line, String sql, String conn, Boolean ordered, String key) {
    boolean isOrdered() {
      return ordered != null ? ordered : hasTopLevelOrderBy(sql);
    }
  }

  static Path corpusDir() {
    String env = System.getenv("POND_DIFF_CORPUS");
    return env != null && !env.isBlank() ? Paths.get(env) : Paths.get("..", "differential").toAbsolutePath().normalize();
  }

  static List<Rec> loadFile(Path path) throws Exception {
    List<String> lines = Files.readAllLines(path, StandardCharsets.UTF_8);
    List<Rec> out = new ArrayList<>();
    Map<String, Integer> seen = new HashMap<>();
    List<String> chunk = new ArrayList<>();
    List<Integer> chunkLines = new ArrayList<>();
    for (int i = 0; i <= lines.size(); i++) {
      if (i == lines.size() || SEPARATOR.matcher(lines.get(i)).matches()) {
        flush(path.getFileName().toString(), chunk, chunkLines, seen, out);
        chunk.clear();
        chunkLines.clear();
      } else {
        chunk.add(lines.get(i));
        chunkLines.add(i + 1);
      }
    }
    return out;
  }

  private static void flush(String file, List<String> chunk, List<Integer> lineNos, Map<String, Integer> seen, List<Rec> out)
      throws Exception {
    String conn = "main";
    Boolean ordered = null;
    boolean head = true;
    List<String> body = new ArrayList<>();
    int first = -1;
    for (int i = 0; i < chunk.size(); i++) {
      String l = chunk.get(i);
      if (head) {
        Matcher m = DIRECTIVE.matcher(l.strip());
        if (m.matches()) {
          String name = m.group(1).toLowerCase();
          switch (name) {
            case "conn" -> conn = m.group(2).isEmpty() ? "main" : m.group(2);
            case "ordered" -> ordered = true;
            case "unordered" -> ordered = false;
            default -> throw new IllegalArgumentException(file + ":" + lineNos.get(i) + ": unknown directive @" + name);
          }
          continue;
        }
        if (!l.isBlank()) {
          head = false;
        }
      }
      if (first < 0 && !l.isBlank()) {
        first = lineNos.get(i);
      }
      body.add(l);
    }
    String text = String.join("\n", body).strip();
    if (text.isEmpty() || text.lines().allMatch(l -> l.isBlank() || l.strip().startsWith("--"))) {
      return;
    }
    String normalized = String.join(" ", text.split("\\s+"));
    byte[] sha = MessageDigest.getInstance("SHA-1").digest(normalized.getBytes(StandardCharsets.UTF_8));
    StringBuilder hex = new StringBuilder();
    for (byte b : sha) {
      hex.append(String.format("%02x", b));
    }
    String key = file + ":" + hex.substring(0, 10);
    int n = seen.merge(key, 1, Integer::sum);
    if (n > 1) {
      key += "#" + n;
    }
    out.add(new Rec(file, first, text, conn, ordered, key));
  }

  static String stripLiteralsAndComments(String sql) {
    StringBuilder out = new StringBuilder();
    int i = 0;
    int n = sql.length();
    while (i < n) {
      char c = sql.charAt(i);
      if (sql.startsWith("--", i)) {
        int j = sql.indexOf('\n', i);
        i = j < 0 ? n : j;
      } else if (sql.startsWith("/*", i)) {
        int j = sql.indexOf("*/", i + 2);
        i = j < 0 ? n : j + 2;
      } else if (c == '\'' || c == '"') {
        int j = i + 1;
        while (j < n) {
          if (sql.charAt(j) == c) {
            if (j + 1 < n && sql.charAt(j + 1) == c) {
              j += 2;
              continue;
            }
            break;
          }
          j++;
        }
        out.append(" x ");
        i = j + 1;
      } else if (sql.startsWith("$$", i)) {
        int j = sql.indexOf("$$", i + 2);
        out.append(" x ");
        i = j < 0 ? n : j + 2;
      } else {
        out.append(c);
        i++;
      }
    }
    return out.toString();
  }

  static boolean hasTopLevelOrderBy(String sql) {
    String[] parts = stripLiteralsAndComments(sql).split(";");
    String last = "";
    for (String p : parts) {
      if (!p.isBlank()) {
        last = p;
      }
    }
    Matcher m = Pattern.compile("[()]|\\border\\s+by\\b", Pattern.CASE_INSENSITIVE).matcher(last);
    int depth = 0;
    while (m.find()) {
      String t = m.group();
      if (t.equals("(")) {
        depth++;
      } else if (t.equals(")")) {
        depth--;
      } else if (depth == 0) {
        return true;
      }
    }
    return false;
  }

  // ------------------------------------------------------------------------------------------
  // Outcomes
  // ------------------------------------------------------------------------------------------

  /** kind: ok (a result set), update (an update count), error, refused. */
  record Outcome(String kind, List<String> labels, List<String> types, List<Integer> typeCodes, List<List<String>> rows,
      long updateCount, String message) {
    static Outcome error(String kind, String message) {
      return new Outcome(kind, List.of(), List.of(), List.of(), List.of(), -1, message);
    }

    String errorClass() {
      String msg = message == null ? "" : message;
      // DuckDB's JDBC wraps a statement's error: "Invalid Input Error: Attempting to execute an
      // unsuccessful or closed pending query result Error: Catalog Error: …".
      int wrapped = msg.indexOf("unsuccessful or closed pending query result");
      if (wrapped >= 0) {
        msg = msg.substring(wrapped);
      }
      Matcher m = ERROR_CLASS.matcher(msg);
      return m.find() ? m.group(1) : "";
    }

    String show() {
      return switch (kind) {
        case "ok" -> {
          StringBuilder sb = new StringBuilder("columns ");
          for (int i = 0; i < labels.size(); i++) {
            sb.append(i == 0 ? "" : ", ").append(labels.get(i)).append(": ").append(types.get(i));
          }
          sb.append(" rows ");
          sb.append(rows.stream().limit(8).map(Object::toString).collect(Collectors.joining(", ", "[", "]")));
          if (rows.size() > 8) {
            sb.append(" … (+").append(rows.size() - 8).append(" rows)");
          }
          yield sb.toString();
        }
        case "update" -> "update count " + updateCount;
        default -> kind.toUpperCase() + ": " + oneLine(message, 300);
      };
    }
  }

  static String oneLine(String s, int limit) {
    String t = String.join(" ", (s == null ? "" : s).strip().split("\\s+"));
    return t.length() <= limit ? t : t.substring(0, limit) + "…";
  }

  static String messages(Throwable t) {
    StringBuilder sb = new StringBuilder();
    for (Throwable c = t; c != null; c = c.getCause()) {
      sb.append(c.getClass().getSimpleName()).append(": ").append(c.getMessage());
      if (c.getClass().getSimpleName().equals("FlightRuntimeException")) {
        try {
          Object status = c.getClass().getMethod("status").invoke(c);
          Object code = status.getClass().getMethod("code").invoke(status);
          sb.append(" [status ").append(code).append(']');
        } catch (ReflectiveOperationException e) {
          // no status to add
        }
      }
      sb.append(" | ");
      if (c.getCause() == c) {
        break;
      }
    }
    return sb.toString();
  }

  static Outcome run(Connection c, String sql, boolean pond) {
    try (Statement st = c.createStatement()) {
      boolean hasRs = st.execute(sql);
      if (!hasRs) {
        return new Outcome("update", List.of(), List.of(), List.of(), List.of(), st.getUpdateCount(), "");
      }
      try (ResultSet rs = st.getResultSet()) {
        ResultSetMetaData md = rs.getMetaData();
        int n = md.getColumnCount();
        List<String> labels = new ArrayList<>();
        List<String> types = new ArrayList<>();
        List<Integer> codes = new ArrayList<>();
        for (int i = 1; i <= n; i++) {
          labels.add(md.getColumnLabel(i));
          types.add(md.getColumnTypeName(i));
          codes.add(md.getColumnType(i));
        }
        List<List<String>> rows = new ArrayList<>();
        while (rs.next()) {
          List<String> row = new ArrayList<>();
          for (int i = 1; i <= n; i++) {
            String v = value(rs, i, codes.get(i - 1));
            if (!pond && types.get(i - 1).equals("BIT") && !v.equals("NULL")) {
              v = bitAsArrowBytes(v);
            }
            row.add(v);
          }
          rows.add(row);
        }
        return new Outcome("ok", labels, types, codes, rows, -1, "");
      }
    } catch (Throwable e) {
      String msg = messages(e);
      // Flight reports gRPC PERMISSION_DENIED (the sandbox) as UNAUTHORIZED.
      boolean refused = pond && (msg.contains("[status UNAUTHORIZED]") || msg.contains("PERMISSION_DENIED"));
      return Outcome.error(refused ? "refused" : "error", msg);
    }
  }

  /**
   * A column's value as a comparable string. The getter depends on the column's JDBC type, to
   * take each driver's most faithful path: the Flight SQL driver's getObject fails on
   * TIMESTAMP WITH TIME ZONE, reads TIME into java.sql.Time (seconds only), and FLOAT as a
   * widened Double.
   */
  static String value(ResultSet rs, int i, int code) throws SQLException {
    try {
      switch (code) {
        case Types.TIMESTAMP_WITH_TIMEZONE -> {
          OffsetDateTime t = rs.getObject(i, OffsetDateTime.class);
          return t == null ? "NULL" : t.toInstant().toString();
        }
        case Types.TIMESTAMP -> {
          LocalDateTime t = rs.getObject(i, LocalDateTime.class);
          return t == null ? "NULL" : t.toString();
        }
        case Types.TIME, Types.TIME_WITH_TIMEZONE -> {
          // Both compared at millisecond precision: the Flight SQL driver keeps no more.
          Object o = rs.getObject(i);
          if (o == null) {
            return "NULL";
          }
          LocalTime t;
          if (o instanceof OffsetTime ot) {
            t = ot.toLocalTime();
          } else if (o instanceof LocalTime lt) {
            t = lt;
          } else {
            t = LocalTime.parse(rs.getString(i));
          }
          return t.truncatedTo(java.time.temporal.ChronoUnit.MILLIS).toString();
        }
        case Types.FLOAT, Types.REAL -> {
          Object o = rs.getObject(i);
          if (o instanceof Double dbl) {
            return norm(dbl.floatValue());
          }
          return norm(o);
        }
        default -> {
          // below
        }
      }
    } catch (SQLException | RuntimeException e) {
      // fall back to getObject
    }
    Object o;
    try {
      o = rs.getObject(i);
    } catch (SQLException | RuntimeException e) {
      try {
        String s = rs.getString(i);
        return s == null ? "NULL" : "str:" + s;
      } catch (SQLException | RuntimeException e2) {
        return "<unreadable: " + e.getClass().getSimpleName() + ">";
      }
    }
    return norm(o);
  }

  /** A value as a comparable string, whichever driver produced it. */
  static String norm(Object o) throws SQLException {
    if (o == null) {
      return "NULL";
    }
    if (o instanceof Double d) {
      return d.isNaN() || d.isInfinite() ? d.toString() : new BigDecimal(d.toString()).stripTrailingZeros().toPlainString();
    }
    if (o instanceof Float f) {
      return f.isNaN() || f.isInfinite() ? f.toString() : new BigDecimal(f.toString()).stripTrailingZeros().toPlainString();
    }
    if (o instanceof BigDecimal b) {
      return b.stripTrailingZeros().toPlainString();
    }
    if (o instanceof Byte || o instanceof Short || o instanceof Integer || o instanceof Long || o instanceof BigInteger) {
      return o.toString();
    }
    if (o instanceof Boolean) {
      return o.toString();
    }
    if (o instanceof byte[] b) {
      return "0x" + hex(b);
    }
    if (o instanceof Blob b) {
      return "0x" + hex(b.getBytes(1, (int) b.length()));
    }
    if (o instanceof java.sql.Timestamp ts) {
      return ts.toLocalDateTime().toString();
    }
    if (o instanceof java.sql.Date dt) {
      return dt.toLocalDate().toString();
    }
    if (o instanceof java.sql.Time t) {
      return t.toLocalTime().toString();
    }
    if (o instanceof LocalDateTime || o instanceof LocalDate || o instanceof LocalTime) {
      return o.toString();
    }
    if (o instanceof OffsetDateTime odt) {
      return odt.toInstant().toString();
    }
    if (o instanceof ZonedDateTime zdt) {
      return zdt.toInstant().toString();
    }
    if (o instanceof Instant inst) {
      return inst.toString();
    }
    if (o instanceof OffsetTime ot) {
      return ot.withOffsetSameInstant(ZoneOffset.UTC).toString();
    }
    if (o instanceof UUID) {
      return o.toString();
    }
    if (o instanceof DuckDBStruct s) {
      return normMap(s.getMap());
    }
    if (o instanceof java.sql.Struct s) {
      Object[] attrs = s.getAttributes();
      List<String> parts = new ArrayList<>();
      for (Object a : attrs) {
        parts.add(norm(a));
      }
      return "(" + String.join(", ", parts) + ")";
    }
    if (o instanceof java.sql.Array a) {
      Object arr = a.getArray();
      List<Object> items = new ArrayList<>();
      if (arr instanceof Object[] objs) {
        items.addAll(java.util.Arrays.asList(objs));
      } else if (arr != null) {
        int len = java.lang.reflect.Array.getLength(arr);
        for (int k = 0; k < len; k++) {
          items.add(java.lang.reflect.Array.get(arr, k));
        }
      }
      return normList(items);
    }
    if (o instanceof List<?> l) {
      // Arrow Java reads a MAP as a list of {key, value} structs.
      if (!l.isEmpty() && l.stream().allMatch(e -> e instanceof Map<?, ?> m && m.size() == 2 && m.containsKey("key") && m.containsKey("value"))) {
        Map<Object, Object> m = new LinkedHashMap<>();
        for (Object e : l) {
          Map<?, ?> entry = (Map<?, ?>) e;
          m.put(entry.get("key"), entry.get("value"));
        }
        return normMap(m);
      }
      return normList(new ArrayList<>(l));
    }
    if (o instanceof Map<?, ?> m) {
      return normMap(m);
    }
    if (o.getClass().getSimpleName().equals("PeriodDuration")) {
      try {
        java.time.Period p = (java.time.Period) o.getClass().getMethod("getPeriod").invoke(o);
        java.time.Duration d = (java.time.Duration) o.getClass().getMethod("getDuration").invoke(o);
        return interval(p.toTotalMonths(), p.getDays(), d.toNanos() / 1000);
      } catch (ReflectiveOperationException e) {
        return o.toString();
      }
    }
    return o.toString();
  }

  static String normList(List<?> items) throws SQLException {
    List<String> parts = new ArrayList<>();
    for (Object x : items) {
      parts.add(norm(x));
    }
    return "[" + String.join(", ", parts) + "]";
  }

  /** Entries with NULL values are left out: the Flight SQL driver's maps and structs omit them. */
  static String normMap(Map<?, ?> m) throws SQLException {
    List<String> parts = new ArrayList<>();
    for (Map.Entry<?, ?> e : m.entrySet()) {
      if (e.getValue() == null) {
        continue;
      }
      parts.add(norm(e.getKey()) + "=" + norm(e.getValue()));
    }
    return "{" + String.join(", ", parts) + "}";
  }

  /**
   * DuckDB's bit string ("101010") as the bytes its Arrow export sends (and the Flight SQL driver
   * reads as VARBINARY): a first byte counting the padding bits, then the bits, padded with ones.
   */
  static String bitAsArrowBytes(String bits) {
    int padding = (8 - bits.length() % 8) % 8;
    String all = "1".repeat(padding) + bits;
    StringBuilder sb = new StringBuilder("0x").append(String.format("%02x", padding));
    for (int i = 0; i < all.length(); i += 8) {
      sb.append(String.format("%02x", Integer.parseInt(all.substring(i, i + 8), 2)));
    }
    return sb.toString();
  }

  /** An interval as DuckDB prints it ("1 year 2 months 3 days 04:05:06.789"). */
  static String interval(long months, long days, long micros) {
    List<String> parts = new ArrayList<>();
    long years = months / 12;
    long mons = months % 12;
    if (years != 0) {
      parts.add(years + (Math.abs(years) == 1 ? " year" : " years"));
    }
    if (mons != 0) {
      parts.add(mons + (Math.abs(mons) == 1 ? " month" : " months"));
    }
    if (days != 0) {
      parts.add(days + (Math.abs(days) == 1 ? " day" : " days"));
    }
    if (micros != 0 || parts.isEmpty()) {
      String sign = micros < 0 ? "-" : "";
      long m = Math.abs(micros);
      long h = m / 3_600_000_000L;
      long mi = (m / 60_000_000L) % 60;
      long sec = (m / 1_000_000L) % 60;
      long frac = m % 1_000_000L;
      String t = String.format("%s%02d:%02d:%02d", sign, h, mi, sec);
      if (frac != 0) {
        t += ("." + String.format("%06d", frac)).replaceAll("0+$", "");
      }
      parts.add(t);
    }
    return String.join(" ", parts);
  }

  static String hex(byte[] b) {
    StringBuilder sb = new StringBuilder();
    for (byte x : b) {
      sb.append(String.format("%02x", x));
    }
    return sb.toString();
  }

  /** The family of a java.sql.Types code: types compare loosely, by family. */
  static String family(int code) {
    return switch (code) {
      case Types.TINYINT, Types.SMALLINT, Types.INTEGER, Types.BIGINT -> "integer";
      case Types.DECIMAL, Types.NUMERIC -> "decimal";
      case Types.REAL, Types.FLOAT, Types.DOUBLE -> "float";
      case Types.CHAR, Types.VARCHAR, Types.LONGVARCHAR, Types.NCHAR, Types.NVARCHAR, Types.LONGNVARCHAR, Types.CLOB -> "string";
      case Types.BINARY, Types.VARBINARY, Types.LONGVARBINARY, Types.BLOB -> "binary";
      case Types.BOOLEAN, Types.BIT -> "boolean";
      case Types.DATE -> "date";
      case Types.TIME, Types.TIME_WITH_TIMEZONE -> "time";
      case Types.TIMESTAMP, Types.TIMESTAMP_WITH_TIMEZONE -> "timestamp";
      case Types.ARRAY -> "array";
      case Types.STRUCT -> "struct";
      case Types.NULL -> "null";
      default -> "other(" + code + ")";
    };
  }

  // ------------------------------------------------------------------------------------------
  // Comparison and report
  // ------------------------------------------------------------------------------------------

  record Verdict(Rec rec, String status, String detail, Outcome pond, Outcome ref, String note) {}

  static boolean noRowsStatement(Outcome o) {
    // DuckDB answers a statement without rows (DDL, SET, BEGIN …) with a result set of one
    // column, Count or Success, and no rows; JDBC drivers may report it as an update count.
    return o.kind.equals("update")
        || (o.kind.equals("ok") && o.rows.isEmpty() && o.labels.size() == 1
            && (o.labels.get(0).equals("Count") || o.labels.get(0).equals("Success")));
  }

  static Verdict compare(Rec rec, Outcome p, Outcome r) {
    if (p.kind.equals("refused")) {
      return new Verdict(rec, "refused", oneLine(p.message, 200), p, r, "");
    }
    if (p.kind.equals("error") && r.kind.equals("error")) {
      String note = p.errorClass().equals(r.errorClass()) ? "" : "error class " + p.errorClass() + " vs " + r.errorClass();
      return new Verdict(rec, "match", "", p, r, note);
    }
    if (p.kind.equals("error") || r.kind.equals("error")) {
      return new Verdict(rec, "mismatch", "Pond " + p.kind + ", DuckDB " + r.kind, p, r, "");
    }
    if (noRowsStatement(p) && noRowsStatement(r)) {
      // DuckDB's JDBC reports -1 for statements without a count (DDL), the Flight SQL driver 0.
      if (p.kind.equals("update") && r.kind.equals("update") && p.updateCount != r.updateCount
          && Math.max(p.updateCount, r.updateCount) > 0) {
        return new Verdict(rec, "mismatch", "update count " + p.updateCount + " vs " + r.updateCount, p, r, "");
      }
      return new Verdict(rec, "match", "", p, r, "");
    }
    if (!p.kind.equals(r.kind)) {
      return new Verdict(rec, "mismatch", "Pond " + p.kind + ", DuckDB " + r.kind, p, r, "");
    }
    List<String> details = new ArrayList<>();
    if (!p.labels.equals(r.labels)) {
      details.add("labels " + p.labels + " vs " + r.labels);
    }
    if (p.typeCodes.size() == r.typeCodes.size()) {
      for (int i = 0; i < p.typeCodes.size(); i++) {
        String fp = family(p.typeCodes.get(i));
        String fr = family(r.typeCodes.get(i));
        // Loosely: DuckDB's own types (OTHER: HUGEINT, UBIGINT, ENUM, JSON, UUID, INTERVAL, MAP,
        // UNION), the Flight SQL driver's JAVA_OBJECT (STRUCT, MAP, UNION, INTERVAL), STRUCT
        // and BIT (a DuckDB bit string, Arrow binary) match anything.
        boolean wild = fp.startsWith("other") || fr.startsWith("other") || fp.equals("struct") || fr.equals("struct")
            || r.types.get(i).equals("BIT");
        if (!wild && !fp.equals(fr)) {
          details.add("column " + (i + 1) + " type " + p.types.get(i) + " (" + fp + ") vs " + r.types.get(i) + " (" + fr + ")");
        }
      }
    }
    if (p.rows.size() != r.rows.size()) {
      details.add(p.rows.size() + " rows vs " + r.rows.size());
    } else if (rec.isOrdered()) {
      if (!p.rows.equals(r.rows)) {
        details.add(sorted(p.rows).equals(sorted(r.rows)) ? "row order differs" : "values differ");
      }
    } else if (!sorted(p.rows).equals(sorted(r.rows))) {
      details.add("values differ");
    }
    if (!details.isEmpty()) {
      return new Verdict(rec, "mismatch", String.join("; ", details), p, r, "");
    }
    return new Verdict(rec, "match", "", p, r, "");
  }

  static List<String> sorted(List<List<String>> rows) {
    return rows.stream().map(Object::toString).sorted().collect(Collectors.toList());
  }

  /** A label grouping mismatches that look alike (the report groups by it). */
  static String cause(Verdict v) {
    Outcome p = v.pond;
    Outcome r = v.ref;
    String types = String.join(" ", r.types);
    if (p.kind.equals("error")) {
      if (p.message.contains("not all nodes, buffers")) {
        return "driver: Arrow Java cannot read a STRUCT whose fields share a name (DuckDB's unnamed fields are all \"\")";
      }
      return "Pond errors where DuckDB answers";
    }
    if (r.kind.equals("error")) {
      return "DuckDB errors where Pond answers";
    }
    if (p.kind.equals("update") && r.kind.equals("ok") && !noRowsStatement(r)) {
      return "multi-statement text whose last statement needs the ones before it, and that cannot be rehearsed (inside"
          + " a transaction, or advancing a sequence before its last statement): CreatePreparedStatement announces no"
          + " schema and the JDBC driver runs the text as an update";
    }
    if (p.kind.equals("ok") && r.kind.equals("ok") && p.labels.size() == 2 * r.labels.size() && p.rows.isEmpty()
        && p.labels.subList(0, r.labels.size()).equals(r.labels)) {
      return "empty result: the Flight SQL JDBC driver (18.3.0, arrow-java#44) doubles the columns of a result without rows (an empty batch does not help)";
    }
    if (types.matches(".*\\bUHUGEINT\\b.*") || types.contains("BIGNUM")) {
      return "Arrow transport: UHUGEINT travels as Decimal128(38,0) and BIGNUM as binary (DuckDB's Arrow export), DuckDB's JDBC reads them exactly";
    }
    if (types.matches(".*\\bU(TINYINT|SMALLINT|INTEGER|BIGINT)\\b.*")) {
      return "driver: the Flight SQL JDBC driver reads Arrow unsigned integers as signed";
    }
    if (types.contains("UNION(")) {
      return "driver: the Flight SQL JDBC driver reads a UNION member that is a STRUCT, MAP, LIST or TIMESTAMPTZ as NULL or fails";
    }
    if (types.contains("MAP(") && (types.contains("[]") || types.contains("UNION"))) {
      return "driver: the Flight SQL JDBC driver reads a MAP nested in a LIST (empty, or with NULL values) as a list";
    }
    if (types.matches(".*(DATE|TIME|TIMESTAMP[A-Z_ ]*|INTERVAL)\\[.*") || types.contains("STRUCT(")) {
      return "driver: the Flight SQL JDBC driver returns temporal values nested in a LIST, ARRAY or STRUCT as raw numbers";
    }
    if (types.contains("DATE")) {
      return "driver: the Flight SQL JDBC driver reads dates before year 1 and infinite dates through java.sql.Date (era lost)";
    }
    if (v.detail.contains("labels")) {
      return "column labels differ";
    }
    if (v.detail.contains(" type ")) {
      return "JDBC type family differs";
    }
    if (v.detail.contains("row order")) {
      return "row order differs";
    }
    return "values differ";
  }

  static Map<String, String> loadKnown(Path path) throws IOException {
    Map<String, String> known = new LinkedHashMap<>();
    if (!Files.exists(path)) {
      return known;
    }
    for (String line : Files.readAllLines(path, StandardCharsets.UTF_8)) {
      String s = line.strip();
      if (s.isEmpty() || s.startsWith("#")) {
        continue;
      }
      int sp = s.indexOf(' ');
      if (sp < 0) {
        throw new IllegalArgumentException(path + ": entry without a reason: " + s);
      }
      if (known.put(s.substring(0, sp), s.substring(sp + 1).strip()) != null) {
        throw new IllegalArgumentException(path + ": listed twice: " + s.substring(0, sp));
      }
    }
    return known;
  }

  // ------------------------------------------------------------------------------------------
  // The test
  // ------------------------------------------------------------------------------------------

  @Test
  void corpusMatchesDuckDb() throws Exception {
    Path dir = corpusDir();
    List<Path> files;
    try (Stream<Path> s = Files.list(dir)) {
      files = s.filter(p -> p.getFileName().toString().endsWith(".sql")).sorted().collect(Collectors.toList());
    }
    assertTrue(!files.isEmpty(), "no corpus files in " + dir);
    Path refDir = tempDir.resolve("reference");
    Files.createDirectories(refDir);

    String pondVersion;
    try (Connection c = DriverManager.getConnection(url(Tokens.create(bin, dataDir, "dvj_probe")));
        Statement st = c.createStatement();
        ResultSet rs = st.executeQuery("SELECT version()")) {
      rs.next();
      pondVersion = rs.getString(1);
    }
    String refVersion;
    try (Connection c = DriverManager.getConnection("jdbc:duckdb:");
        Statement st = c.createStatement();
        ResultSet rs = st.executeQuery("SELECT version()")) {
      rs.next();
      refVersion = rs.getString(1);
    }
    assertEquals(refVersion, pondVersion, "the reference must be the DuckDB Pond runs (pom.xml pins duckdb_jdbc)");

    List<Verdict> verdicts = new ArrayList<>();
    Set<String> allKeys = new java.util.HashSet<>();
    int fileNo = 0;
    for (Path f : files) {
      fileNo++;
      List<Rec> recs = loadFile(f);
      String token = Tokens.create(bin, dataDir, "dvj_" + fileNo + "_" + Long.toHexString(System.nanoTime()));
      Path db = refDir.resolve(f.getFileName().toString().replace(".sql", "") + ".duckdb");
      Map<String, Connection> pondConns = new HashMap<>();
      Map<String, Connection> refConns = new HashMap<>();
      Properties props = new Properties();
      props.setProperty("autoinstall_known_extensions", "false");
      props.setProperty("autoload_known_extensions", "false");
      DuckDBConnection refMain = (DuckDBConnection) DriverManager.getConnection("jdbc:duckdb:", props);
      try (Statement st = refMain.createStatement()) {
        st.execute("ATTACH '" + db + "' AS my_db");
        st.execute("USE my_db");
      }
      refConns.put("main", refMain);
      // DuckDB JDBC's duplicate() copies the session settings of the connection it is called
      // on: new sessions are duplicated from this pristine one, never from `main`.
      DuckDBConnection refBase = refMain.duplicate();
      try (Statement st = refBase.createStatement()) {
        st.execute("USE my_db");
      }
      try {
        for (Rec rec : recs) {
          allKeys.add(rec.key);
          Connection pc = pondConns.get(rec.conn);
          if (pc == null) {
            pc = DriverManager.getConnection(url(token));
            pondConns.put(rec.conn, pc);
          }
          Connection rc = refConns.get(rec.conn);
          if (rc == null) {
            rc = refBase.duplicate();
            try (Statement st = rc.createStatement()) {
              st.execute("USE my_db");
            }
            refConns.put(rec.conn, rc);
          }
          Outcome p = run(pc, rec.sql, true);
          Outcome r = run(rc, rec.sql, false);
          verdicts.add(compare(rec, p, r));
        }
      } finally {
        for (Connection c : pondConns.values()) {
          closeQuietly(c);
        }
        for (Connection c : refConns.values()) {
          closeQuietly(c);
        }
        closeQuietly(refBase);
      }
    }

    Path knownPath = dir.resolve("known-mismatches-jdbc.txt");
    Map<String, String> known = loadKnown(knownPath);
    String report = report(verdicts, known, pondVersion);
    Path out = Paths.get("target", "differential");
    Files.createDirectories(out);
    Files.writeString(out.resolve("jdbc-report.txt"), report);
    Files.writeString(out.resolve("known-mismatches-jdbc.suggested.txt"), suggested(verdicts, known));
    System.out.println(report);
    System.out.println("(report written to " + out.toAbsolutePath().resolve("jdbc-report.txt") + ")");

    List<String> problems = new ArrayList<>();
    for (Verdict v : verdicts) {
      boolean listed = known.containsKey(v.rec.key);
      if (v.status.equals("mismatch") && !listed) {
        problems.add("new mismatch " + v.rec.key + ": " + oneLine(v.rec.sql, 120) + " — " + v.detail);
      }
      if (!v.status.equals("mismatch") && listed) {
        problems.add("listed as a known mismatch but is a " + v.status + " now: " + v.rec.key + " (" + known.get(v.rec.key)
            + "); remove it from the list");
      }
    }
    for (String k : known.keySet()) {
      if (!allKeys.contains(k)) {
        problems.add("known-mismatch entry " + k + " names no record of the corpus");
      }
    }
    long refusals = verdicts.stream().filter(v -> v.status.equals("refused")).count();
    long matches = verdicts.stream().filter(v -> v.status.equals("match")).count();
    long compared = verdicts.size() - refusals;
    double rate = compared == 0 ? 1.0 : (double) matches / compared;
    double floor = compared == 0 ? 1.0 : (double) (compared - known.size()) / compared;
    assertTrue(verdicts.size() >= 1500, "the corpus has only " + verdicts.size() + " records");
    if (!problems.isEmpty()) {
      fail(problems.size() + " differences from " + knownPath.getFileName() + String.format(
          " (match rate %.2f%%, the list allows %.2f%%):%n", rate * 100, floor * 100) + String.join("\n", problems));
    }
    assertTrue(rate >= floor);
  }

  private static String url(String tok) {
    return "jdbc:arrow-flight-sql://127.0.0.1:" + port + "?useEncryption=false&token=" + tok;
  }

  private static void closeQuietly(Connection c) {
    try {
      c.close();
    } catch (Exception e) {
      // ignore
    }
  }

  static String report(List<Verdict> verdicts, Map<String, String> known, String version) {
    long refusals = verdicts.stream().filter(v -> v.status.equals("refused")).count();
    long matches = verdicts.stream().filter(v -> v.status.equals("match")).count();
    List<Verdict> mism = verdicts.stream().filter(v -> v.status.equals("mismatch")).collect(Collectors.toList());
    List<Verdict> bothErr = verdicts.stream().filter(v -> v.status.equals("match") && v.pond.kind.equals("error")).collect(Collectors.toList());
    List<Verdict> classDiff = bothErr.stream().filter(v -> !v.note.isEmpty()).collect(Collectors.toList());
    long compared = verdicts.size() - refusals;
    StringBuilder sb = new StringBuilder();
    sb.append("== Pond (Flight SQL, Arrow Flight SQL JDBC) vs in-process DuckDB (DuckDB JDBC) ==\n");
    sb.append("DuckDB: ").append(version).append('\n');
    sb.append("records: ").append(verdicts.size()).append('\n');
    sb.append("matches: ").append(matches).append(" (of which both sides errored: ").append(bothErr.size())
        .append(", with different error classes: ").append(classDiff.size()).append(")\n");
    sb.append("mismatches: ").append(mism.size()).append(" (known: ")
        .append(mism.stream().filter(v -> known.containsKey(v.rec.key)).count()).append(")\n");
    sb.append("refusals (sandbox, reported apart): ").append(refusals).append('\n');
    sb.append(String.format("match rate: %.2f%% (%d of %d compared)%n", compared == 0 ? 100.0 : 100.0 * matches / compared, matches, compared));
    if (!mism.isEmpty()) {
      sb.append("\n-- mismatches, grouped by cause --\n");
      Map<String, List<Verdict>> groups = new TreeMap<>();
      for (Verdict v : mism) {
        groups.computeIfAbsent(known.getOrDefault(v.rec.key, cause(v)), k -> new ArrayList<>()).add(v);
      }
      groups.entrySet().stream()
          .sorted((a, b) -> b.getValue().size() != a.getValue().size() ? b.getValue().size() - a.getValue().size() : a.getKey().compareTo(b.getKey()))
          .forEach(e -> {
            sb.append('[').append(e.getValue().size()).append("] ").append(e.getKey()).append('\n');
            for (Verdict v : e.getValue()) {
              sb.append("  ").append(v.rec.key).append(" (line ").append(v.rec.line).append(')')
                  .append(known.containsKey(v.rec.key) ? "" : "  (NEW)").append('\n');
              sb.append("    sql:    ").append(oneLine(v.rec.sql, 400)).append('\n');
              sb.append("    why:    ").append(v.detail).append('\n');
              sb.append("    pond:   ").append(v.pond.show()).append('\n');
              sb.append("    duckdb: ").append(v.ref.show()).append('\n');
            }
          });
    }
    List<Verdict> refused = verdicts.stream().filter(v -> v.status.equals("refused")).collect(Collectors.toList());
    if (!refused.isEmpty()) {
      sb.append("\n-- refusals (sandbox) --\n");
      for (Verdict v : refused) {
        sb.append("  ").append(v.rec.key).append(": ").append(oneLine(v.rec.sql, 120)).append('\n');
        sb.append("    pond:   ").append(oneLine(v.pond.message, 200)).append('\n');
        sb.append("    duckdb: ").append(oneLine(v.ref.show(), 200)).append('\n');
      }
    }
    if (!classDiff.isEmpty()) {
      sb.append("\n-- both errored, different error classes (counted as matches) --\n");
      for (Verdict v : classDiff) {
        sb.append("  ").append(v.rec.key).append(": ").append(oneLine(v.rec.sql, 120)).append('\n');
        sb.append("    ").append(v.note).append('\n');
        sb.append("    pond:   ").append(oneLine(v.pond.message, 200)).append('\n');
        sb.append("    duckdb: ").append(oneLine(v.ref.message, 200)).append('\n');
      }
    }
    return sb.toString();
  }

  static String suggested(List<Verdict> verdicts, Map<String, String> known) {
    StringBuilder sb = new StringBuilder();
    sb.append("# Known mismatches: KEY REASON, one a line (generated by the differential test;\n");
    sb.append("# keep a reason for every entry). The SQL is shown in a comment above each entry.\n");
    Map<String, List<Verdict>> groups = new TreeMap<>();
    for (Verdict v : verdicts) {
      if (v.status.equals("mismatch")) {
        groups.computeIfAbsent(known.getOrDefault(v.rec.key, cause(v)), k -> new ArrayList<>()).add(v);
      }
    }
    for (Map.Entry<String, List<Verdict>> e : groups.entrySet()) {
      sb.append('\n');
      for (Verdict v : e.getValue()) {
        sb.append("# ").append(oneLine(v.rec.sql, 200)).append('\n');
        sb.append(v.rec.key).append(' ').append(e.getKey()).append('\n');
      }
    }
    return sb.toString();
  }
}
