//! Who runs a user's writer duckling, across every coordinator of a catalog: a lease per user.
//!
//! A coordinator claims a user's lease before it starts (or assigns) the user's primary
//! duckling, names the duckling once it runs, and renews the lease while the duckling serves.
//! Another coordinator that meets a live lease sends the user's calls to the named duckling
//! instead of starting its own. A coordinator that dies stops renewing; once the lease expires
//! the next coordinator to need the user claims it.
//!
//! Invariants (both backends):
//! - At most one coordinator holds a user's live lease. A claim succeeds only when no lease
//!   exists, the lease expired, or the claimant already holds it; each success gives the lease
//!   a new generation.
//! - Only the holder of the current generation names its duckling, renews or releases it; a
//!   stale holder's publish, renewal or release changes nothing. A released lease stays as a
//!   row that has expired, so generations only grow.
//! - Expiry is decided by the backend's clock (PostgreSQL's `clock_timestamp()`), never by
//!   comparing the clocks of two hosts; a lease is told as the time it has left.
//! - Storage fencing stays the last line of defence: a lease that passes while its old holder
//!   still writes costs that holder its commits (a higher epoch fences it), never a row.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::error::Result;

/// A user's writer lease, as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriterLease {
    pub user: String,
    /// The holder's id (one per coordinator process).
    pub coordinator: String,
    /// The fingerprint of the holder's cluster key: a coordinator with another key cannot
    /// reach the holder's duckling.
    pub key_id: String,
    /// Grows each time the lease is claimed.
    pub generation: u64,
    /// The duckling serving the user, and its address; empty while it starts.
    pub duckling_id: String,
    pub address: String,
    /// How long the lease had left when it was read.
    pub expires_in: Duration,
}

impl WriterLease {
    /// Whether its duckling runs (the holder named it).
    pub fn is_published(&self) -> bool {
        !self.address.is_empty()
    }
}

/// What a claim found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The caller holds the lease now (a new generation).
    Won(WriterLease),
    /// Another coordinator holds a live lease.
    Held(WriterLease),
}

/// The claimant of a lease.
#[derive(Debug, Clone, Copy)]
pub struct Claimant<'a> {
    pub coordinator: &'a str,
    pub key_id: &'a str,
}

/// Writer leases, kept with the catalog.
pub trait WriterLeases: Send + Sync {
    /// Claims `user`'s lease for `ttl` unless another coordinator holds a live one.
    fn claim_writer(&self, user: &str, claimant: Claimant<'_>, ttl: Duration) -> Result<Claim>;
    /// Names the duckling of the lease `coordinator` holds at `generation`; false when the
    /// lease is no longer that.
    fn publish_writer(
        &self,
        user: &str,
        coordinator: &str,
        generation: u64,
        duckling_id: &str,
        address: &str,
    ) -> Result<bool>;
    /// Extends, by `ttl` from now, the `(user, generation)` leases `coordinator` still holds
    /// (even expired, while nobody claimed them since, unless released); answers those it
    /// extended.
    fn renew_writers(&self, coordinator: &str, leases: &[(String, u64)], ttl: Duration) -> Result<Vec<(String, u64)>>;
    /// Ends the lease `coordinator` holds on `user` at `generation`, if it still does.
    fn release_writer(&self, user: &str, coordinator: &str, generation: u64) -> Result<()>;
    /// The live leases of `users`.
    fn writers(&self, users: &[String]) -> Result<Vec<WriterLease>>;
}

/// The leases of a catalog only one coordinator uses (the embedded file): in memory, since
/// they mean nothing to the next process.
#[derive(Debug, Default)]
pub struct LocalLeases {
    /// Each user's lease and when it expires (`None`: released).
    leases: Mutex<HashMap<String, (WriterLease, Option<Instant>)>>,
}

impl LocalLeases {
    fn live(lease: &(WriterLease, Option<Instant>), now: Instant) -> Option<WriterLease> {
        let left = lease.1?.checked_duration_since(now).filter(|d| !d.is_zero())?;
        Some(WriterLease {
            expires_in: left,
            ..lease.0.clone()
        })
    }
}

impl WriterLeases for LocalLeases {
    fn claim_writer(&self, user: &str, claimant: Claimant<'_>, ttl: Duration) -> Result<Claim> {
        let now = Instant::now();
        let mut leases = self.leases.lock();
        let generation = match leases.get(user) {
            Some(held) => match Self::live(held, now) {
                Some(lease) if lease.coordinator != claimant.coordinator => return Ok(Claim::Held(lease)),
                _ => held.0.generation + 1,
            },
            None => 1,
        };
        let lease = WriterLease {
            user: user.to_string(),
            coordinator: claimant.coordinator.to_string(),
            key_id: claimant.key_id.to_string(),
            generation,
            duckling_id: String::new(),
            address: String::new(),
            expires_in: ttl,
        };
        leases.insert(user.to_string(), (lease.clone(), Some(now + ttl)));
        Ok(Claim::Won(lease))
    }

    fn publish_writer(
        &self,
        user: &str,
        coordinator: &str,
        generation: u64,
        duckling_id: &str,
        address: &str,
    ) -> Result<bool> {
        let mut leases = self.leases.lock();
        match leases.get_mut(user) {
            Some((lease, _)) if lease.coordinator == coordinator && lease.generation == generation => {
                lease.duckling_id = duckling_id.to_string();
                lease.address = address.to_string();
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    fn renew_writers(&self, coordinator: &str, asked: &[(String, u64)], ttl: Duration) -> Result<Vec<(String, u64)>> {
        let until = Instant::now() + ttl;
        let mut leases = self.leases.lock();
        Ok(asked
            .iter()
            .filter(|(user, generation)| match leases.get_mut(user.as_str()) {
                Some((lease, expires @ Some(_)))
                    if lease.coordinator == coordinator && lease.generation == *generation =>
                {
                    *expires = Some(until);
                    true
                }
                _ => false,
            })
            .cloned()
            .collect())
    }

    fn release_writer(&self, user: &str, coordinator: &str, generation: u64) -> Result<()> {
        if let Some((lease, expires)) = self.leases.lock().get_mut(user)
            && lease.coordinator == coordinator
            && lease.generation == generation
        {
            lease.duckling_id.clear();
            lease.address.clear();
            *expires = None;
        }
        Ok(())
    }

    fn writers(&self, users: &[String]) -> Result<Vec<WriterLease>> {
        let now = Instant::now();
        let leases = self.leases.lock();
        Ok(users
            .iter()
            .filter_map(|u| leases.get(u.as_str()).and_then(|l| Self::live(l, now)))
            .collect())
    }
}
