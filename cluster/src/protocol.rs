//! The wire side of the cluster protocol (`proto/proto/cluster.proto`): action names, message
//! encoding, the cluster secret's tokens and signed tickets.
//!
//! Invariants:
//! - Everything that crosses between coordinator and duckling is authenticated with the
//!   duckling's own key, derived from the cluster secret and its id
//!   ([`ClusterKey::for_duckling`]). A duckling the coordinator spawns gets only its own key,
//!   so it can neither act as another duckling nor mint tokens another duckling accepts.
//! - User tokens are signed with another key, so a user's token never opens a duckling, and a
//!   cluster token never comes from a user.
//! - Tokens minted for the hop to a duckling live for [`HOP_TOKEN_TTL`]; signed tickets for
//!   [`TICKET_TTL`].

use std::time::Duration;

use bytes::Bytes;
use pond_coordinator::{Principal, TokenAuthority};
use pond_proto::cluster::SignedTicket;
use prost::Message;

use crate::error::{ClusterError, Result};

pub const REGISTER: &str = "pond.cluster.register";
pub const HEARTBEAT: &str = "pond.cluster.heartbeat";
pub const CATALOG: &str = "pond.cluster.catalog";
pub const DUCKLINGS: &str = "pond.cluster.ducklings";
pub const ASSIGN: &str = "pond.duckling.assign";
pub const STATUS: &str = "pond.duckling.status";
pub const DRAIN: &str = "pond.duckling.drain";

/// The state a duckling reports in its last heartbeat before it stops on its own (idle).
pub const STOPPING: &str = "stopping";

/// The subject of peer tokens (cluster actions). It is not a valid user name, so a peer token
/// never acts as a user and no user's token is a peer token.
pub const DUCKLING_SUBJECT: &str = "@pond-duckling";

/// How long a token for one coordinator→duckling hop lives (it is re-minted well before).
pub const HOP_TOKEN_TTL: Duration = Duration::from_secs(300);

/// How long a signed ticket for a direct endpoint stays valid.
pub const TICKET_TTL: Duration = Duration::from_secs(60);

/// How often a duckling reports to its coordinator.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(1);

/// A duckling silent for this long is considered gone.
pub const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(5);

/// The cluster secret: signs the tokens of both directions and the direct-endpoint tickets.
pub struct ClusterKey {
    secret: Vec<u8>,
    tokens: TokenAuthority,
    mac_key: [u8; 32],
}

impl ClusterKey {
    /// A key from the secret's bytes (32 or more).
    pub fn new(secret: &[u8]) -> Self {
        Self {
            secret: secret.to_vec(),
            tokens: TokenAuthority::from_secret(secret),
            mac_key: blake3::derive_key("pond cluster signed ticket v1", secret),
        }
    }

    /// A hex-encoded secret, as passed in `POND_CLUSTER_SECRET`.
    pub fn from_hex(hex: &str) -> Result<Self> {
        let hex = hex.trim();
        if hex.len() < 64 || !hex.len().is_multiple_of(2) {
            return Err(ClusterError::Config(
                "the cluster secret must be at least 32 bytes, hex-encoded".into(),
            ));
        }
        let bytes = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16))
            .collect::<Result<Vec<u8>, _>>()
            .map_err(|_| ClusterError::Config("the cluster secret is not hex".into()))?;
        Ok(Self::new(&bytes))
    }

    /// The token authority over the secret.
    pub fn tokens(&self) -> &TokenAuthority {
        &self.tokens
    }

    /// The key of duckling `id`: what it signs and verifies with, and all a spawned duckling
    /// holds.
    pub fn for_duckling(&self, id: &str) -> ClusterKey {
        let mut material = self.secret.clone();
        material.push(0);
        material.extend_from_slice(id.as_bytes());
        ClusterKey::new(&blake3::derive_key("pond cluster duckling key v1", &material))
    }

    /// Another authority over the secret, for a duckling's own coordinator.
    pub fn authority(&self) -> TokenAuthority {
        TokenAuthority::from_secret(&self.secret)
    }

    /// A public name of the secret: coordinators compare theirs to learn whether they can
    /// reach each other's ducklings, without showing the secret.
    pub fn fingerprint(&self) -> String {
        self.derive("pond cluster key fingerprint v1")[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// A key for `context` derived from the secret.
    pub(crate) fn derive(&self, context: &str) -> [u8; 32] {
        blake3::derive_key(context, &self.secret)
    }

    /// The secret, hex-encoded (how a coordinator hands it to the ducklings it spawns).
    pub fn to_hex(&self) -> String {
        self.secret.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// A token that carries `principal` across one hop.
    pub fn mint_for(&self, principal: &Principal) -> Result<String> {
        Ok(self.tokens.mint(&principal.user, principal.read_only, HOP_TOKEN_TTL)?.0)
    }

    /// Verifies a peer token (a cluster action of the coordinator or the duckling).
    pub fn verify_peer(&self, token: &str) -> Result<()> {
        let p = self.tokens.verify(token).map_err(|_| ClusterError::Unauthenticated)?;
        if p.user != DUCKLING_SUBJECT {
            return Err(ClusterError::Unauthenticated);
        }
        Ok(())
    }

    /// A token for cluster actions (duckling → coordinator, coordinator → duckling).
    pub fn peer_token(&self) -> Result<String> {
        Ok(self.tokens.mint_service(DUCKLING_SUBJECT, HOP_TOKEN_TTL)?)
    }

    fn mac(&self, t: &SignedTicket) -> Vec<u8> {
        let mut h = blake3::Hasher::new_keyed(&self.mac_key);
        for part in [t.ticket.as_slice(), t.user.as_bytes(), t.duckling_id.as_bytes()] {
            h.update(&(part.len() as u64).to_le_bytes());
            h.update(part);
        }
        h.update(&[u8::from(t.read_only)]);
        h.update(&t.expires_ms.to_le_bytes());
        h.finalize().as_bytes().to_vec()
    }

    /// Wraps a duckling's ticket so the client may fetch it from the duckling directly.
    pub fn sign_ticket(&self, ticket: &[u8], principal: &Principal, duckling_id: &str) -> Vec<u8> {
        let mut t = SignedTicket {
            ticket: ticket.to_vec(),
            user: principal.user.clone(),
            read_only: principal.read_only,
            expires_ms: now_ms() + TICKET_TTL.as_millis() as u64,
            duckling_id: duckling_id.to_string(),
            mac: Vec::new(),
        };
        t.mac = self.mac(&t);
        t.encode_to_vec()
    }

    /// The principal and inner ticket of a signed ticket meant for `duckling_id`; `None` when
    /// the bytes are not a signed ticket at all (a plain ticket, proxied).
    pub fn open_ticket(&self, bytes: &[u8], duckling_id: &str) -> Option<Result<(Principal, Vec<u8>)>> {
        let t = SignedTicket::decode(bytes).ok()?;
        if t.mac.len() != 32 {
            return None;
        }
        let valid = constant_time_eq(&self.mac(&t), &t.mac) && t.duckling_id == duckling_id && t.expires_ms >= now_ms();
        if !valid {
            return Some(Err(ClusterError::Unauthenticated));
        }
        Some(Ok((
            Principal {
                user: t.user,
                read_only: t.read_only,
                token_id: String::new(),
            },
            t.ticket,
        )))
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub(crate) fn now_ms() -> u64 {
    // Never negative: `unix_ms` reads 0 for a clock set before the epoch.
    pond_clock::system().unix_ms().unsigned_abs()
}

/// An action carrying `message`.
pub fn action(kind: &str, message: &impl Message) -> arrow_flight::Action {
    arrow_flight::Action {
        r#type: kind.to_string(),
        body: Bytes::from(message.encode_to_vec()),
    }
}

/// Decodes an action body or result.
pub fn decode<M: Message + Default>(bytes: &[u8]) -> Result<M> {
    M::decode(bytes).map_err(|e| ClusterError::Protocol(format!("malformed cluster message: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_tickets_open_only_for_their_duckling_and_untampered() {
        let key = ClusterKey::new(&[7u8; 32]);
        let alice = Principal {
            user: "alice".into(),
            read_only: false,
            token_id: String::new(),
        };
        let signed = key.sign_ticket(b"inner", &alice, "d1");
        let (p, inner) = key.open_ticket(&signed, "d1").unwrap().unwrap();
        assert_eq!((p.user.as_str(), inner.as_slice()), ("alice", b"inner".as_slice()));
        assert!(key.open_ticket(&signed, "d2").unwrap().is_err());
        let mut t = SignedTicket::decode(signed.as_slice()).unwrap();
        t.user = "bob".into();
        assert!(key.open_ticket(&t.encode_to_vec(), "d1").unwrap().is_err());
        let other = ClusterKey::new(&[8u8; 32]);
        assert!(other.open_ticket(&signed, "d1").unwrap().is_err());
        assert!(key.open_ticket(b"plain ticket", "d1").is_none());
    }

    #[test]
    fn user_tokens_are_not_peer_tokens() {
        let key = ClusterKey::new(&[7u8; 32]);
        let alice = Principal {
            user: "alice".into(),
            read_only: false,
            token_id: String::new(),
        };
        assert!(key.verify_peer(&key.mint_for(&alice).unwrap()).is_err());
        key.verify_peer(&key.peer_token().unwrap()).unwrap();
        let other = ClusterKey::new(&[8u8; 32]);
        assert!(other.verify_peer(&key.peer_token().unwrap()).is_err());
        // Each duckling's key is its own.
        let (d1, d2) = (key.for_duckling("d1"), key.for_duckling("d2"));
        assert!(d2.verify_peer(&d1.peer_token().unwrap()).is_err());
        key.for_duckling("d1").verify_peer(&d1.peer_token().unwrap()).unwrap();
        assert!(d2.tokens().verify(&d1.mint_for(&alice).unwrap()).is_err());
    }
}
