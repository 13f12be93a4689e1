//! What a front door counts for Prometheus, and the operator's HTTP endpoint that serves it
//! beside liveness and readiness (`--metrics-listen`): `/metrics` (OpenMetrics text, written by
//! `prometheus-client`), `/healthz` (the process answers) and `/readyz` (it serves; 503 once
//! shutdown begins, while running queries drain).
//!
//! Invariants:
//! - Off unless `--metrics-listen` is given: nothing counted, no endpoint.
//! - No label holds a user's name, SQL text, token or secret: calls are labelled by gRPC
//!   method and status code only (counted by `crate::calls`).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use pond_clock::{LATENCY_WORDS, LatencyCounts};
pub use pond_coordinator::{COUNTERS, HISTOGRAMS, REPORTED_WORDS};

/// A call's labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    /// `/package.Service/Method`.
    method: String,
    /// The gRPC status code, as its number.
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: String,
}

/// A finished statement's labels: how it ended (`ok`, `error`, `cancelled`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    status: &'static str,
}

/// What the server's own state shows at a scrape: gauges, its ducklings by state, and its
/// [`COUNTERS`] and [`HISTOGRAMS`] as the coordinator reports them
/// (`Coordinator::reported_metrics`).
#[derive(Debug, Clone)]
pub struct Sample {
    pub sessions: i64,
    /// Statements running now (planned and not yet fully fetched included).
    pub running_statements: i64,
    /// Statements waiting for a turn (`--max-concurrent-queries`).
    pub queued_statements: i64,
    pub ducklings: Vec<(String, i64)>,
    pub reported: [u64; REPORTED_WORDS],
}

/// A histogram whose buckets are counted elsewhere (by the coordinator and its duckling
/// processes, see `pond_clock::LatencyHistogram`) and copied in at each scrape.
#[derive(Debug, Clone, Default)]
struct ReportedHistogram(Arc<parking_lot::Mutex<[u64; LATENCY_WORDS]>>);

impl prometheus_client::encoding::EncodeMetric for ReportedHistogram {
    fn encode(&self, mut encoder: prometheus_client::encoding::MetricEncoder) -> std::fmt::Result {
        let words = *self.0.lock();
        let counts = LatencyCounts(&words);
        encoder.encode_histogram::<prometheus_client::encoding::NoLabelSet>(
            counts.sum_seconds(),
            counts.count(),
            &counts.buckets(),
            None,
        )
    }

    fn metric_type(&self) -> prometheus_client::metrics::MetricType {
        prometheus_client::metrics::MetricType::Histogram
    }
}

/// The front door's metrics.
pub struct Metrics {
    registry: Registry,
    calls: Family<CallLabels, Counter>,
    seconds: Family<MethodLabels, Histogram>,
    sessions: Gauge,
    running_statements: Gauge,
    queued_statements: Gauge,
    statements: Family<StatusLabels, Counter>,
    statement_seconds: Family<StatusLabels, Histogram>,
    rows: Counter,
    bytes: Counter,
    ducklings: Family<StateLabels, Gauge>,
    /// [`COUNTERS`], and the values they last took (each scrape adds what is new).
    counters: [(Counter, std::sync::atomic::AtomicU64); COUNTERS.len()],
    /// [`HISTOGRAMS`], as last reported.
    histograms: [ReportedHistogram; HISTOGRAMS.len()],
    ready: AtomicBool,
    sample: Box<dyn Fn() -> Sample + Send + Sync>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("ready", &self.ready)
            .finish_non_exhaustive()
    }
}

impl Metrics {
    /// Metrics whose gauges `sample` reads at each scrape.
    pub fn new(sample: impl Fn() -> Sample + Send + Sync + 'static) -> Arc<Self> {
        let mut registry = Registry::with_prefix("pond");
        let calls = Family::<CallLabels, Counter>::default();
        registry.register(
            "rpc_calls",
            "Flight SQL calls, by gRPC method and status code",
            calls.clone(),
        );
        let seconds = Family::<MethodLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.000_05, 2.0, 20))
        });
        registry.register(
            "rpc_seconds",
            "Time from a call's arrival to its response headers, by gRPC method",
            seconds.clone(),
        );
        let sessions = Gauge::default();
        registry.register("sessions", "Open client sessions", sessions.clone());
        let running_statements = Gauge::default();
        registry.register(
            "running_statements",
            "Statements running now, from their start to the last row fetched",
            running_statements.clone(),
        );
        let statements = Family::<StatusLabels, Counter>::default();
        registry.register(
            "statements",
            "Statements finished, by how they ended (ok, error, cancelled)",
            statements.clone(),
        );
        let statement_seconds = Family::<StatusLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.000_1, 2.0, 24))
        });
        registry.register(
            "statement_seconds",
            "Statements' time from their start to their end (the last row fetched), by how they ended",
            statement_seconds.clone(),
        );
        let queued_statements = Gauge::default();
        registry.register(
            "queued_statements",
            "Statements waiting for a turn (--max-concurrent-queries)",
            queued_statements.clone(),
        );
        let rows = Counter::default();
        registry.register("statement_rows", "Rows statements returned or changed", rows.clone());
        let bytes = Counter::default();
        registry.register("statement_bytes", "Arrow bytes statements returned", bytes.clone());
        let ducklings = Family::<StateLabels, Gauge>::default();
        registry.register("ducklings", "Ducklings, by state", ducklings.clone());
        let counters = COUNTERS.map(|spec| {
            let counter = Counter::default();
            registry.register(spec.name, spec.help, counter.clone());
            (counter, std::sync::atomic::AtomicU64::new(0))
        });
        let histograms = HISTOGRAMS.map(|spec| {
            let histogram = ReportedHistogram::default();
            registry.register(spec.name, spec.help, histogram.clone());
            histogram
        });
        Arc::new(Self {
            registry,
            calls,
            seconds,
            sessions,
            running_statements,
            queued_statements,
            statements,
            statement_seconds,
            rows,
            bytes,
            ducklings,
            counters,
            histograms,
            ready: AtomicBool::new(true),
            sample: Box::new(sample),
        })
    }

    /// Shutdown began: `/readyz` answers 503 from now on.
    pub fn draining(&self) {
        self.ready.store(false, Ordering::SeqCst);
    }

    /// Counts a finished call (see `crate::calls`).
    pub(crate) fn record_call(&self, method: &'static str, code: i64, started: Instant) {
        self.calls
            .get_or_create(&CallLabels {
                method: method.to_string(),
                code: code.to_string(),
            })
            .inc();
        self.seconds
            .get_or_create(&MethodLabels {
                method: method.to_string(),
            })
            .observe(started.elapsed().as_secs_f64());
    }

    /// Counts a finished statement (the coordinator's query observer).
    pub fn statement_finished(&self, r: &pond_coordinator::history::QueryRecord) {
        let labels = StatusLabels {
            status: r.status.as_str(),
        };
        self.statements.get_or_create(&labels).inc();
        self.statement_seconds
            .get_or_create(&labels)
            .observe(r.duration_ms() / 1000.0);
        self.rows.inc_by(r.rows);
        self.bytes.inc_by(r.bytes);
    }

    /// The OpenMetrics text of every metric, gauges sampled now.
    pub fn text(&self) -> String {
        let sample = (self.sample)();
        self.sessions.set(sample.sessions);
        self.running_statements.set(sample.running_statements);
        self.queued_statements.set(sample.queued_statements);
        self.ducklings.clear();
        for (state, n) in sample.ducklings {
            self.ducklings.get_or_create(&StateLabels { state }).set(n);
        }
        let (counters, histograms) = sample.reported.split_at(COUNTERS.len());
        for ((counter, seen), &now) in self.counters.iter().zip(counters) {
            let before = seen.swap(now, Ordering::Relaxed);
            counter.inc_by(now.saturating_sub(before));
        }
        for (histogram, words) in self.histograms.iter().zip(histograms.chunks_exact(LATENCY_WORDS)) {
            // Monotonic, as the counters: a count that went down (a report lost) is not shown.
            for (shown, &now) in histogram.0.lock().iter_mut().zip(words) {
                *shown = (*shown).max(now);
            }
        }
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::warn!(error = %e, "could not encode the metrics");
        }
        out
    }

    /// Serves `/metrics`, `/healthz` and `/readyz` on `listener` until aborted.
    pub async fn serve_http(self: Arc<Self>, listener: tokio::net::TcpListener) {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let metrics = Arc::clone(&self);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request: http::Request<hyper::body::Incoming>| {
                    let metrics = Arc::clone(&metrics);
                    async move { Ok::<_, Infallible>(metrics.answer(request.uri().path())) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    }

    fn answer(&self, path: &str) -> http::Response<Full<Bytes>> {
        let (status, content_type, body) = match path {
            "/metrics" => (
                http::StatusCode::OK,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                self.text(),
            ),
            "/healthz" => (http::StatusCode::OK, "text/plain", "ok\n".to_string()),
            "/readyz" if self.ready.load(Ordering::SeqCst) => {
                (http::StatusCode::OK, "text/plain", "ready\n".to_string())
            }
            "/readyz" => (
                http::StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                "draining\n".to_string(),
            ),
            _ => (http::StatusCode::NOT_FOUND, "text/plain", "not found\n".to_string()),
        };
        let mut response = http::Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = status;
        response
            .headers_mut()
            .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static(content_type));
        response
    }
}

/// Binds the operator's endpoint at `address` and serves it until the returned task is aborted.
pub async fn spawn_http(metrics: Arc<Metrics>, address: SocketAddr) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(address).await?;
    tracing::info!(address = %listener.local_addr()?, "serving /metrics, /healthz and /readyz");
    Ok(tokio::spawn(metrics.serve_http(listener)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calls::method_label;

    #[test]
    fn calls_are_labelled_by_known_methods_only_and_gauges_are_sampled() {
        let metrics = Metrics::new(|| Sample {
            sessions: 3,
            running_statements: 4,
            queued_statements: 6,
            ducklings: vec![("running".into(), 2)],
            reported: {
                let mut words = [0; REPORTED_WORDS];
                words[..4].copy_from_slice(&[1, 100, 2, 200]);
                words[COUNTERS.len() - 1] = 5;
                // Two commits: one of 150 µs (second bucket), one past every bound.
                let commits = &mut words[COUNTERS.len()..COUNTERS.len() + LATENCY_WORDS];
                commits[1] = 1;
                commits[LATENCY_WORDS - 2] = 1;
                commits[LATENCY_WORDS - 1] = 100_000_150;
                words
            },
        });
        metrics.record_call(
            method_label("/arrow.flight.protocol.FlightService/DoGet"),
            0,
            Instant::now(),
        );
        metrics.record_call(method_label("/evil/${jndi}"), 12, Instant::now());
        let text = metrics.text();
        assert!(
            text.contains(r#"pond_rpc_calls_total{method="/arrow.flight.protocol.FlightService/DoGet",code="0"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"pond_rpc_calls_total{method="other",code="12"} 1"#),
            "{text}"
        );
        assert!(!text.contains("jndi"));
        assert!(
            text.contains("pond_sessions 3") && text.contains(r#"pond_ducklings{state="running"} 2"#),
            "{text}"
        );
        assert!(text.contains("pond_store_put_bytes_total 100"), "{text}");
        assert!(
            text.contains("pond_running_statements 4")
                && text.contains("pond_queued_statements 6")
                && text.contains("pond_query_history_dropped_total 5"),
            "{text}"
        );
        assert!(
            text.contains("pond_commit_seconds_count 2")
                && text.contains("pond_commit_seconds_sum 100.00015")
                && text.contains(r#"pond_commit_seconds_bucket{le="0.0001"} 0"#)
                && text.contains(r#"pond_commit_seconds_bucket{le="0.0002"} 1"#)
                && text.contains(r#"pond_commit_seconds_bucket{le="+Inf"} 2"#)
                && text.contains("pond_duckling_cold_start_seconds_count 0"),
            "{text}"
        );
        assert!(
            metrics.text().contains("pond_store_put_bytes_total 100"),
            "a scrape adds only what is new"
        );
        assert_eq!(metrics.answer("/readyz").status(), http::StatusCode::OK);
        metrics.draining();
        assert_eq!(
            metrics.answer("/readyz").status(),
            http::StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(metrics.answer("/healthz").status(), http::StatusCode::OK);
        assert_eq!(metrics.answer("/nope").status(), http::StatusCode::NOT_FOUND);
    }
}
