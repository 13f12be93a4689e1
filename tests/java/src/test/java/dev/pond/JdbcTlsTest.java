package dev.pond;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The JDBC driver over grpc+tls://, trusting a CA the test generates with openssl. */
@Timeout(120)
class JdbcTlsTest {
  private static final Pattern LISTENING = Pattern.compile("listening on grpc\\+tls://127\\.0\\.0\\.1:(\\d+)");
  private static Path dir;
  private static Process server;
  private static int port;
  private static String token;

  private static void openssl(String... args) throws Exception {
    List<String> cmd = new java.util.ArrayList<>();
    cmd.add("openssl");
    cmd.addAll(List.of(args));
    Process p = new ProcessBuilder(cmd).directory(dir.toFile()).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertEquals(0, p.waitFor(), "openssl " + cmd + ": " + out);
  }

  @BeforeAll
  static void start() throws Exception {
    dir = Files.createTempDirectory("pond-jdbc-tls");
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
        "-days", "2", "-subj", "/CN=Pond test CA");
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
        "-subj", "/CN=localhost");
    Files.writeString(dir.resolve("ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n");
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf");
    String bin = System.getenv().getOrDefault("POND_BIN",
        System.getProperty("user.home") + "/.cache/pond-target/release/pond");
    server = new ProcessBuilder(bin, "serve", "--listen", "127.0.0.1:0",
        "--data-dir", dir.resolve("data").toString(),
        "--tls-cert", dir.resolve("server.pem").toString(),
        "--tls-key", dir.resolve("server.key").toString())
        .redirectError(ProcessBuilder.Redirect.INHERIT)
        .start();
    BufferedReader out = new BufferedReader(new InputStreamReader(server.getInputStream(), StandardCharsets.UTF_8));
    String line = out.readLine();
    Matcher m = LISTENING.matcher(line == null ? "" : line);
    assertTrue(m.find(), "no grpc+tls listening line: " + line);
    port = Integer.parseInt(m.group(1));
    token = Files.readString(dir.resolve("data").resolve("admin.token")).trim();
  }

  @AfterAll
  static void stop() throws Exception {
    if (server != null) {
      server.destroy();
      assertTrue(server.waitFor(30, TimeUnit.SECONDS), "pond serve did not stop");
      assertEquals(0, server.exitValue());
    }
  }

  @Test
  void queriesWithTheTestCa() throws Exception {
    String url = "jdbc:arrow-flight-sql://localhost:" + port + "?useEncryption=true&token=" + token
        + "&tlsRootCerts=" + dir.resolve("ca.pem");
    try (Connection c = DriverManager.getConnection(url);
        Statement s = c.createStatement();
        ResultSet rs = s.executeQuery("SELECT 40 + 2 AS v")) {
      assertTrue(rs.next());
      assertEquals(42, rs.getInt(1));
    }
  }

  @Test
  void refusedWithoutTrustingTheCa() {
    String url = "jdbc:arrow-flight-sql://localhost:" + port + "?useEncryption=true&token=" + token;
    assertThrows(SQLException.class, () -> {
      try (Connection c = DriverManager.getConnection(url);
          Statement s = c.createStatement();
          ResultSet rs = s.executeQuery("SELECT 1")) {
        rs.next();
      }
    });
  }
}
