//! Which duckling processes run, across every coordinator of a catalog: each coordinator
//! reports its own every second, and `pond_ducklings()` lists what every coordinator reported
//! lately, wherever the admin asks.
//!
//! Invariants (both backends):
//! - A coordinator's report replaces its previous one whole: a duckling it no longer runs is
//!   gone from the next report.
//! - A report's age is measured by the catalog's clock; a coordinator that stops reporting (it
//!   died) drops out of the listing once its last report is older than the reader allows.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::coordinator::DucklingInfo;
use crate::error::Result;

/// The ducklings every coordinator runs, as they report them.
pub trait DucklingDirectory: Send + Sync {
    /// Replaces what `coordinator` reported of its ducklings with `ducklings`.
    fn report_ducklings(&self, coordinator: &str, ducklings: &[DucklingInfo]) -> Result<()>;
    /// Every duckling reported no longer than `fresh` ago.
    fn ducklings(&self, fresh: Duration) -> Result<Vec<DucklingInfo>>;
}

/// The directory of a catalog one coordinator uses (the embedded file): in memory.
#[derive(Debug, Default)]
pub struct LocalDirectory {
    reports: Mutex<HashMap<String, (Vec<DucklingInfo>, Instant)>>,
}

impl DucklingDirectory for LocalDirectory {
    fn report_ducklings(&self, coordinator: &str, ducklings: &[DucklingInfo]) -> Result<()> {
        self.reports
            .lock()
            .insert(coordinator.to_string(), (ducklings.to_vec(), Instant::now()));
        Ok(())
    }

    fn ducklings(&self, fresh: Duration) -> Result<Vec<DucklingInfo>> {
        Ok(self
            .reports
            .lock()
            .values()
            .filter(|(_, at)| at.elapsed() < fresh)
            .flat_map(|(ducklings, _)| ducklings.iter().cloned())
            .collect())
    }
}
