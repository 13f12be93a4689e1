//! The client's link to the server as dual execution's cost model sees it: bandwidth and round
//! trip, probed once per session (and again when the probe is old), kept fresh by every large
//! bridge's measured transfer; and each side's speed, timed with the same calibration query on
//! both (the laptop's DuckDB and the duckling differ: cores, load, the duckling's threads).
//! Over a slow link, what crosses it is compressed from the probe on. The bandwidth is in the
//! planner's unit, Arrow data bytes per second: the probe's text crosses plain, and a bridge
//! counts the Arrow data it moved, so over a compressed link the estimate rises to what
//! compression lets through.
//!
//! Invariant: a probe moves at most [`PROBE_BYTES`] and runs only before a query that moves
//! data anyway (never for `EXPLAIN` without `ANALYZE`).

use std::time::{Duration, Instant};

use pond_proto::dual::LinkEstimate;

use super::DualSession;
use crate::ClientError;

/// How much the bandwidth probe downloads: small enough to come inline with its FlightInfo
/// (one round trip, which the probe subtracts).
const PROBE_BYTES: usize = 512 << 10;
/// A probe older than this is made again.
const PROBE_AGE: Duration = Duration::from_secs(600);
/// Over a link slower than this, calls and answers are compressed (zstd, level 3): it
/// compresses several hundred MB/s on one core, and Arrow data shrinks two to four times.
const COMPRESS_BELOW_BYTES_PER_SECOND: f64 = 64e6;
/// Transfers smaller than this say more about latency than bandwidth.
const OBSERVED_MIN_BYTES: u64 = 256 << 10;
/// The weight of a new observation in the running bandwidth estimate.
const OBSERVED_WEIGHT: f64 = 0.3;
/// Each side of the calibration join: a few milliseconds of DuckDB's work on a laptop.
const CALIBRATION_ROWS: u64 = 1 << 17;

/// The calibration query: a hash join, the operator a split plan places, of two generated
/// ranges, so it reads no data and takes the same work on either side.
fn calibration_sql() -> String {
    format!("SELECT count(*) FROM range({CALIBRATION_ROWS}) a(i) JOIN range({CALIBRATION_ROWS}) b(j) ON a.i = b.j")
}

/// Rows into the calibration join per second, when it took `time`.
fn rows_per_second(time: Duration) -> f64 {
    (2 * CALIBRATION_ROWS) as f64 / time.max(Duration::from_micros(10)).as_secs_f64()
}

/// The measured link, and when it was probed.
#[derive(Debug, Clone, Copy)]
pub(super) struct MeasuredLink {
    estimate: LinkEstimate,
    probed_at: Instant,
}

impl MeasuredLink {
    /// Folds in a bridge's transfer: `bytes` in `time`, one round trip of it waiting.
    pub fn observe(&mut self, bytes: u64, time: Duration) {
        let transfer = time.as_secs_f64() - self.estimate.round_trip_seconds;
        if bytes < OBSERVED_MIN_BYTES || transfer <= 0.0 {
            return;
        }
        let observed = bytes as f64 / transfer;
        self.estimate.bytes_per_second =
            (1.0 - OBSERVED_WEIGHT) * self.estimate.bytes_per_second + OBSERVED_WEIGHT * observed;
    }
}

impl DualSession {
    /// The link as last measured, for a plan request.
    pub(super) fn link_estimate(&self) -> Option<LinkEstimate> {
        self.measured_link.map(|m| m.estimate)
    }

    /// Probes the link when it was never probed or the probe is old: the faster of two
    /// one-row queries is the round trip; a 512 KiB download, less a round trip, the bandwidth;
    /// the faster of two runs of the calibration query on each side, the server's less a round
    /// trip, each side's speed.
    pub(super) async fn probe_link(&mut self) -> Result<(), ClientError> {
        if self.measured_link.is_some_and(|m| m.probed_at.elapsed() < PROBE_AGE) {
            return Ok(());
        }
        let link = std::sync::Arc::clone(&self.link);
        let cloud = self.cloud_client("a query on cloud data")?;
        // The probe's text compresses to nothing: the link is measured as it is.
        cloud.set_compression(false);
        let mut round_trip = Duration::MAX;
        for _ in 0..2 {
            let t = Instant::now();
            cloud.query("SELECT 1").await?;
            round_trip = round_trip.min(t.elapsed());
        }
        let before = link.moved();
        let t = Instant::now();
        cloud.query(&format!("SELECT repeat('x', {PROBE_BYTES})")).await?;
        let elapsed = t.elapsed();
        let bytes = (link.moved() - before).max(PROBE_BYTES as u64) as f64;
        let transfer = elapsed.saturating_sub(round_trip).max(Duration::from_micros(10));
        let bytes_per_second = bytes / transfer.as_secs_f64();
        cloud.set_compression(bytes_per_second < COMPRESS_BELOW_BYTES_PER_SECOND);
        let calibration = calibration_sql();
        let mut remote = Duration::MAX;
        for _ in 0..2 {
            let t = Instant::now();
            cloud.query(&calibration).await?;
            // Net of a round trip, but never below half the call: a noisy round trip must not
            // make the cloud look free to run on.
            let elapsed = t.elapsed();
            remote = remote.min(elapsed.saturating_sub(round_trip).max(elapsed / 2));
        }
        let mut local = Duration::MAX;
        for _ in 0..2 {
            let t = Instant::now();
            self.local.query(&calibration)?;
            local = local.min(t.elapsed());
        }
        self.measured_link = Some(MeasuredLink {
            estimate: LinkEstimate {
                bytes_per_second,
                round_trip_seconds: round_trip.as_secs_f64(),
                local_rows_per_second: rows_per_second(local),
                remote_rows_per_second: rows_per_second(remote),
            },
            probed_at: Instant::now(),
        });
        tracing::debug!(link = ?self.measured_link, "probed the link");
        Ok(())
    }

    /// Measures the link now, as the first mixed query would (and compresses over a slow
    /// one): for a caller that moves data itself, such as a benchmark's baseline.
    pub async fn measure_link(&mut self) -> Result<(), ClientError> {
        self.probe_link().await
    }

    /// Folds a bridge's measured transfer into the link's estimate.
    pub(super) fn observe_transfer(&mut self, bytes: u64, time: Duration) {
        if let Some(m) = self.measured_link.as_mut() {
            m.observe(bytes, time);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_transfers_move_the_bandwidth_estimate_and_small_ones_do_not() {
        let mut m = MeasuredLink {
            estimate: LinkEstimate {
                bytes_per_second: 1e6,
                round_trip_seconds: 0.01,
                ..Default::default()
            },
            probed_at: Instant::now(),
        };
        m.observe(1000, Duration::from_millis(500));
        assert_eq!(m.estimate.bytes_per_second, 1e6);
        // 1 MiB in 0.11 s, 0.01 s of it the round trip: about 10 MB/s observed.
        m.observe(1 << 20, Duration::from_millis(110));
        let expected = 0.7 * 1e6 + 0.3 * ((1 << 20) as f64 / 0.1);
        assert!((m.estimate.bytes_per_second - expected).abs() < 1.0, "{m:?}");
    }
}
