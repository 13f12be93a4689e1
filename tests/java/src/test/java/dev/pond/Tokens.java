package dev.pond;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

/** Tokens for the suites' users, minted as an operator would, with `pond token create`. */
final class Tokens {
  private Tokens() {}

  /** A token for `user` (created on the server at its first call) of the server in `dataDir`. */
  static String create(Path bin, Path dataDir, String user) throws Exception {
    Process p =
        new ProcessBuilder(bin.toString(), "token", "create", "--user", user, "--data-dir", dataDir.toString())
            .redirectErrorStream(false)
            .start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
    assertTrue(p.waitFor(60, TimeUnit.SECONDS), "token create hung");
    assertEquals(0, p.exitValue(), "token create failed: " + out);
    return out.lines().filter(l -> !l.isBlank()).reduce((a, b) -> b).orElseThrow().trim();
  }
}
