// A Flight SQL load test for Pond (k6, gRPC). Two scenarios (K6_SCENARIO):
//   mixed (default) - each virtual user runs, per iteration:
//     - short queries: GetFlightInfo(CommandStatementQuery) then DoGet of its ticket;
//     - metadata calls: CommandGetCatalogs and CommandGetTables, the same way;
//     - one long stream: a 200k-row result (3.2 MB of Arrow) read to its end; k6 decodes every
//       message into JavaScript, so larger streams measure k6 rather than the server.
//     It ramps to 64 virtual users (K6_SMOKE=1: a 30-second run to 8).
//   point - point queries only (GetFlightInfo then DoGet of a one-row result), as fast as 64
//     virtual users go: throughput and tail latency of the two-call path every standard client
//     takes, with nothing k6 decodes slowly. Any Flight SQL server can be measured with it (a
//     server without authentication ignores the tokens; without POND_TOKENS none is sent).
// Environment:
//   POND_ADDR    host:port of the server (plaintext gRPC)
//   POND_TOKENS  comma-separated bearer tokens; virtual users take them round-robin, so
//                several users (and ducklings) share the load
//   K6_SUMMARY   a file to write the point scenario's figures to (JSON)
// Run it with k6/run.sh, which starts the servers and mints the tokens.
import grpc from 'k6/net/grpc';
import { check } from 'k6';
import { Counter, Trend } from 'k6/metrics';
import encoding from 'k6/encoding';

const SMOKE = __ENV.K6_SMOKE === '1';
const POINT = __ENV.K6_SCENARIO === 'point';
const ADDR = __ENV.POND_ADDR || '127.0.0.1:31337';
const TOKENS = (__ENV.POND_TOKENS || '').split(',').filter((t) => t.length > 0);

const mixed = {
  executor: 'ramping-vus',
  startVUs: 1,
  stages: SMOKE
    ? [
        { duration: '10s', target: 8 },
        { duration: '15s', target: 8 },
        { duration: '5s', target: 0 },
      ]
    : [
        { duration: '30s', target: 64 },
        { duration: '60s', target: 64 },
        { duration: '10s', target: 0 },
      ],
  gracefulRampDown: '30s',
};

// A fixed crowd, so the throughput is that of 64 clients throughout (a ramp would blend in
// fewer); the first seconds warm the server up and are left out of nothing: both servers get
// the same.
const point = {
  executor: 'constant-vus',
  vus: SMOKE ? 8 : 64,
  duration: __ENV.POINT_DURATION || (SMOKE ? '10s' : '30s'),
};

export const options = POINT
  ? {
      scenarios: { point },
      thresholds: {
        flight_errors: ['count==0'],
        checks: ['rate==1.0'],
      },
      summaryTrendStats: ['avg', 'med', 'p(95)', 'p(99)', 'max'],
    }
  : {
      scenarios: { flight_sql: mixed },
      // Set from measured runs on a 2-core machine (README, "Load test") with about 2-3x
      // headroom for a noisier CI machine. Measured, smoke (8 VUs): short p95 40 ms, metadata
      // p95 38 ms, long stream p95 93 ms; full (64 VUs): short p95 359 / p99 442 ms, metadata
      // p95 353 / p99 429 ms, long stream p95 1.36 / p99 2.02 s.
      thresholds: {
        flight_errors: ['count==0'],
        checks: ['rate==1.0'],
        flight_short_query_ms: SMOKE ? ['p(95)<150', 'p(99)<300'] : ['p(95)<900', 'p(99)<1200'],
        flight_metadata_ms: SMOKE ? ['p(95)<150', 'p(99)<300'] : ['p(95)<900', 'p(99)<1200'],
        flight_long_stream_ms: SMOKE ? ['p(95)<400', 'p(99)<800'] : ['p(95)<3500', 'p(99)<5000'],
      },
    };

const errors = new Counter('flight_errors');
const shortQuery = new Trend('flight_short_query_ms', true);
const metadata = new Trend('flight_metadata_ms', true);
const longStream = new Trend('flight_long_stream_ms', true);
const pointQuery = new Trend('flight_point_query_ms', true);

const client = new grpc.Client();
client.load(['.'], 'flight.proto');

// ---- protobuf, by hand: the Flight SQL commands are small messages packed in an Any --------

function varint(n) {
  const out = [];
  while (n > 127) {
    out.push((n & 127) | 128);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
}

function utf8(s) {
  const out = [];
  for (const ch of unescape(encodeURIComponent(s))) out.push(ch.charCodeAt(0));
  return out;
}

function field(number, bytes) {
  return [...varint((number << 3) | 2), ...varint(bytes.length), ...bytes];
}

function anyOf(typeName, value) {
  const typeUrl = utf8('type.googleapis.com/arrow.flight.protocol.sql.' + typeName);
  return encoding.b64encode(new Uint8Array([...field(1, typeUrl), ...field(2, value)]).buffer);
}

const command = {
  query: (sql) => anyOf('CommandStatementQuery', field(1, utf8(sql))),
  catalogs: () => anyOf('CommandGetCatalogs', []),
  // include_schema = false (field 5) is the default; the filter is on the default database.
  tables: () => anyOf('CommandGetTables', field(1, utf8('my_db'))),
};

// ---- one Flight SQL call: GetFlightInfo, then DoGet every endpoint --------------------------


const state = { cookie: null };

function callMetadata() {
  const md = {};
  if (TOKENS.length > 0) md.authorization = 'Bearer ' + TOKENS[(__VU - 1) % TOKENS.length];
  if (state.cookie) md.cookie = state.cookie;
  return md;
}

function doGet(ticket) {
  return new Promise((resolve, reject) => {
    let messages = 0;
    let bytes = 0;
    const stream = new grpc.Stream(client, 'arrow.flight.protocol.FlightService/DoGet', {
      metadata: callMetadata(),
      timeout: '120s',
    });
    stream.on('data', (m) => {
      messages += 1;
      bytes += m.dataBody ? m.dataBody.length : 0;
    });
    stream.on('error', (e) => reject(new Error(`DoGet failed: ${e.message || JSON.stringify(e)}`)));
    stream.on('end', () => resolve({ messages, bytes }));
    stream.write(ticket);
    stream.end();
  });
}

async function flightSql(cmd) {
  const info = client.invoke(
    'arrow.flight.protocol.FlightService/GetFlightInfo',
    { type: 'CMD', cmd },
    { metadata: callMetadata(), timeout: '60s' },
  );
  if (info.status !== grpc.StatusOK) {
    throw new Error(`GetFlightInfo failed: ${info.error ? info.error.message : info.status}`);
  }
  const cookie = info.headers && info.headers['set-cookie'];
  if (cookie) state.cookie = String(cookie).split(';')[0];
  let messages = 0;
  for (const endpoint of info.message.endpoint || []) {
    const got = await doGet(endpoint.ticket);
    messages += got.messages;
  }
  return messages;
}

async function timed(trend, name, fn) {
  // Microseconds where k6 has them: a point query takes about a millisecond.
  const now = () => (typeof performance !== 'undefined' ? performance.now() : Date.now());
  const started = now();
  try {
    const result = await fn();
    trend.add(now() - started);
    return result;
  } catch (e) {
    errors.add(1, { call: name });
    console.error(`${name}: ${e.message}`);
    return null;
  }
}

export default async function () {
  if (__ITER === 0) {
    client.connect(ADDR, { plaintext: true, timeout: '10s' });
  }
  if (POINT) {
    // Five texts, as a client with a few hot statements sends them.
    const v = __ITER % 5;
    const n = await timed(pointQuery, 'point query', () => flightSql(command.query(`SELECT ${v} + 1 AS v`)));
    check(n, { 'point query answered': (m) => m !== null && m >= 1 });
    return;
  }
  for (let i = 0; i < 5; i++) {
    const n = await timed(shortQuery, 'short query', () => flightSql(command.query(`SELECT ${i} + 1 AS v`)));
    check(n, { 'short query answered': (m) => m !== null && m >= 1 });
  }
  const c = await timed(metadata, 'catalogs', () => flightSql(command.catalogs()));
  check(c, { 'catalogs answered': (m) => m !== null && m >= 1 });
  const t = await timed(metadata, 'tables', () => flightSql(command.tables()));
  check(t, { 'tables answered': (m) => m !== null && m >= 1 });
  const rows = SMOKE ? 100000 : 200000;
  const l = await timed(longStream, 'long stream', () =>
    flightSql(command.query(`SELECT range AS id, range * 2 AS twice FROM range(${rows})`)),
  );
  // One schema message, then one batch per 2,048 rows.
  check(l, { 'long stream read to its end': (m) => m !== null && m >= rows / 2048 });
}

export function handleSummary(data) {
  const out = { stdout: '' };
  if (POINT) {
    const t = data.metrics.flight_point_query_ms;
    const figures = {
      queries_per_s: data.metrics.iterations ? data.metrics.iterations.values.rate : 0,
      queries: data.metrics.iterations ? data.metrics.iterations.values.count : 0,
      p50_ms: t ? t.values.med : null,
      p95_ms: t ? t.values['p(95)'] : null,
      p99_ms: t ? t.values['p(99)'] : null,
      errors: data.metrics.flight_errors ? data.metrics.flight_errors.values.count : 0,
    };
    out.stdout = JSON.stringify(figures) + '\n';
    if (__ENV.K6_SUMMARY) out[__ENV.K6_SUMMARY] = JSON.stringify(figures);
    return out;
  }
  // The mixed scenario: each metric's figures, one line each.
  for (const [name, metric] of Object.entries(data.metrics)) {
    const values = Object.entries(metric.values)
      .map(([k, v]) => `${k}=${typeof v === 'number' ? Math.round(v * 1000) / 1000 : v}`)
      .join(' ');
    const crossed = metric.thresholds && Object.values(metric.thresholds).some((t) => !t.ok) ? '  THRESHOLD CROSSED' : '';
    out.stdout += `${name}: ${values}${crossed}\n`;
  }
  return out;
}
