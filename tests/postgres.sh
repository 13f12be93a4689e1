# Sourced by run-all.sh: starts a throwaway PostgreSQL server on loopback for the catalog
# tests (the Rust conformance suite and the Python `--catalog postgres://` tests) and exports
# POND_TEST_POSTGRES, its connection string; stopped when the sourcing shell exits.
# PostgreSQL comes from Debian's packages, installed here when missing.

pg_bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
if [ -z "$pg_bin" ] || [ ! -x "$pg_bin/postgres" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing PostgreSQL (Debian's package)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null \
      || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null; }
    pg_bin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
  else
    echo "PostgreSQL is not installed and cannot be installed here (needs root and apt-get)" >&2
    return 1
  fi
fi

pg_dir="$(mktemp -d /tmp/pond-pg.XXXXXX)"
pg_port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
# initdb refuses to run as root: the server runs as Debian's postgres user then.
pg_as=()
if [ "$(id -u)" = 0 ]; then
  chown postgres "$pg_dir"
  pg_as=(runuser -u postgres --)
fi
"${pg_as[@]}" "$pg_bin/initdb" -D "$pg_dir/data" -U postgres --auth=trust -E UTF8 >"$pg_dir/initdb.log" 2>&1 \
  || { cat "$pg_dir/initdb.log" >&2; return 1; }
# TLS with a certificate of its own, for 127.0.0.1: clients that ask for TLS get it, and verify
# it against PGSSLROOTCERT (libpq's variable, which Pond reads too).
# A CA of its own signs it (a self-signed certificate is a CA's, which verifiers refuse as a
# server's).
{
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=pond test CA" \
    -keyout "$pg_dir/ca.key" -out "$pg_dir/ca.crt" &&
  openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
    -keyout "$pg_dir/server.key" -out "$pg_dir/server.csr" &&
  printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' > "$pg_dir/server.ext" &&
  openssl x509 -req -in "$pg_dir/server.csr" -CA "$pg_dir/ca.crt" -CAkey "$pg_dir/ca.key" -CAcreateserial \
    -days 2 -extfile "$pg_dir/server.ext" -out "$pg_dir/server.crt"
} >/dev/null 2>&1 || { echo "openssl could not make the test server's certificate" >&2; return 1; }
chmod 600 "$pg_dir/server.key"
[ "${#pg_as[@]}" -eq 0 ] || chown postgres "$pg_dir/server.key" "$pg_dir/server.crt"
"${pg_as[@]}" "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/server.log" -w -t 60 \
  -o "-c listen_addresses=127.0.0.1 -p $pg_port -k $pg_dir -c fsync=on -c max_connections=200 -c ssl=on -c ssl_cert_file=$pg_dir/server.crt -c ssl_key_file=$pg_dir/server.key" start >/dev/null \
  || { cat "$pg_dir/server.log" >&2; return 1; }
export POND_TEST_POSTGRES="postgres://postgres@127.0.0.1:$pg_port/postgres"
export PGSSLROOTCERT="$pg_dir/ca.crt"
stop_postgres() {
  "${pg_as[@]}" "$pg_bin/pg_ctl" -D "$pg_dir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$pg_dir"
}
trap stop_postgres EXIT
echo "PostgreSQL $("$pg_bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$pg_port"
