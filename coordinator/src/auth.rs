//! Tokens: JWTs signed with the server's own key, and their revocation list.
//!
//! Invariants:
//! - One algorithm (HS256) is accepted; `alg: none` or any other algorithm fails validation.
//! - Every failure is reported as the same [`CoordinatorError::Unauthenticated`], so a caller
//!   learns nothing about why a token was refused.
//! - The signing key lives in the catalog's token store (`crate::catalog::TokenStore`: a file
//!   of mode 0600 in the data directory, or the PostgreSQL catalog every coordinator shares)
//!   and is never logged.
//! - Revocations are kept by the same store; a running server reads them again every
//!   [`REVOCATION_POLL`] (off the calls' path), so `pond token revoke` takes effect on every
//!   coordinator within it. Verifying a token does no I/O.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use parking_lot::Mutex;
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::catalog::now_ms;
use crate::error::{CoordinatorError, Result};

/// How often a running server looks for new revocations.
pub const REVOCATION_POLL: Duration = Duration::from_secs(2);

/// What a token allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    ReadWrite,
    ReadOnly,
}

/// A token's claims.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub iat: u64,
    pub exp: u64,
    pub jti: String,
    pub scope: Scope,
}

/// Who is calling: the verified content of a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user: String,
    pub read_only: bool,
    pub token_id: String,
}

/// Signs and verifies tokens.
pub struct TokenAuthority {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    /// Ids of revoked tokens, as the token store last said.
    revoked: parking_lot::RwLock<HashSet<String>>,
    /// Tokens whose signature and claims were checked, with what they carry and when they
    /// expire: a client sends the same token with every call, and checking its signature again
    /// each time was a twentieth of a point query's work. Revocation is still checked per call.
    verified: Mutex<HashMap<String, (Principal, u64)>>,
}

/// Verified tokens kept; the cache starts over when full.
const VERIFIED_TOKENS: usize = 4096;

/// Writes a file only its owner can read (mode 0600), durably.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Reads a 32-byte secret key from `path`, creating it (mode 0600) if missing.
pub fn load_or_create_key(path: &Path) -> Result<Vec<u8>> {
    match std::fs::read(path) {
        Ok(k) if k.len() >= 32 => Ok(k),
        Ok(_) => Err(CoordinatorError::Internal(format!("{} is too short", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut k = vec![0u8; 32];
            rand::rng().fill_bytes(&mut k);
            write_private(path, &k)?;
            Ok(k)
        }
        Err(e) => Err(e.into()),
    }
}

impl TokenAuthority {
    /// An authority over `key`: the catalog's signing key, or the cluster secret that
    /// coordinator and duckling processes share (whose tokens are short-lived and never
    /// revoked). Nothing is revoked until [`Self::set_revoked`] says.
    pub fn from_secret(key: &[u8]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        validation.set_required_spec_claims(&["exp", "sub", "iat", "jti"]);
        Self {
            encoding: EncodingKey::from_secret(key),
            decoding: DecodingKey::from_secret(key),
            validation,
            revoked: parking_lot::RwLock::new(HashSet::new()),
            verified: Mutex::new(HashMap::new()),
        }
    }

    /// Mints a token for `user`, valid for `ttl`. Returns the token and its id.
    pub fn mint(&self, user: &str, read_only: bool, ttl: Duration) -> Result<(String, String)> {
        crate::catalog::validate_name("user", user)?;
        self.sign(user, if read_only { Scope::ReadOnly } else { Scope::ReadWrite }, ttl)
    }

    /// Mints a token for a service subject that is not a user name (cluster peers); returns
    /// the token.
    pub fn mint_service(&self, subject: &str, ttl: Duration) -> Result<String> {
        if crate::catalog::validate_name("user", subject).is_ok() {
            return Err(CoordinatorError::Internal(format!(
                "{subject} is a valid user name; a service subject must not be one"
            )));
        }
        Ok(self.sign(subject, Scope::ReadOnly, ttl)?.0)
    }

    fn sign(&self, subject: &str, scope: Scope, ttl: Duration) -> Result<(String, String)> {
        let iat = now_ms() / 1000;
        let claims = Claims {
            sub: subject.to_string(),
            iat,
            exp: iat + ttl.as_secs().max(1),
            jti: uuid::Uuid::new_v4().simple().to_string(),
            scope,
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| CoordinatorError::Internal(format!("could not sign a token: {e}")))?;
        Ok((token, claims.jti))
    }

    /// Verifies a token: signature, algorithm, expiry, revocation.
    pub fn verify(&self, token: &str) -> Result<Principal> {
        let now = jsonwebtoken::get_current_timestamp();
        let known = self.verified.lock().get(token).cloned();
        let principal = match known {
            // The same expiry rule as the validation's, leeway included.
            Some((principal, exp)) if now <= exp + self.validation.leeway => principal,
            _ => {
                let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
                    .map_err(|_| CoordinatorError::Unauthenticated)?;
                let claims = data.claims;
                let principal = Principal {
                    user: claims.sub,
                    read_only: claims.scope == Scope::ReadOnly,
                    token_id: claims.jti,
                };
                let mut verified = self.verified.lock();
                if verified.len() >= VERIFIED_TOKENS {
                    verified.clear();
                }
                verified.insert(token.to_string(), (principal.clone(), claims.exp));
                principal
            }
        };
        if self.is_revoked(&principal.token_id) {
            return Err(CoordinatorError::Unauthenticated);
        }
        Ok(principal)
    }

    /// The revoked token ids, as the token store holds them now.
    pub fn set_revoked(&self, ids: HashSet<String>) {
        *self.revoked.write() = ids;
    }

    fn is_revoked(&self, id: &str) -> bool {
        self.revoked.read().contains(id)
    }
}

/// Checks a token id given to revoke: the `jti` Pond mints is alphanumeric.
pub fn check_token_id(id: &str) -> Result<()> {
    if id.is_empty() || id.len() > 64 || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(CoordinatorError::InvalidArgument(format!("invalid token id {id:?}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mints_verifies_and_refuses() {
        let a = TokenAuthority::from_secret(&[1u8; 32]);
        let (t, id) = a.mint("alice", true, Duration::from_secs(60)).unwrap();
        let p = a.verify(&t).unwrap();
        assert_eq!(p.user, "alice");
        assert!(p.read_only);
        assert_eq!(p.token_id, id);
        // Tampered payload.
        let mut parts: Vec<&str> = t.split('.').collect();
        let forged = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            br#"{"sub":"bob","iat":1,"exp":99999999999,"jti":"x","scope":"read_write"}"#,
        );
        parts[1] = &forged;
        assert!(matches!(
            a.verify(&parts.join(".")),
            Err(CoordinatorError::Unauthenticated)
        ));
        // alg none.
        let none = format!(
            "{}.{}.",
            base64::Engine::encode(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                br#"{"alg":"none","typ":"JWT"}"#
            ),
            forged
        );
        assert!(a.verify(&none).is_err());
        // Another server's key.
        let other = TokenAuthority::from_secret(&[2u8; 32]);
        assert!(other.verify(&t).is_err());
        // Revoked, even once verified and cached.
        a.set_revoked([id.clone()].into());
        assert!(a.verify(&t).is_err());
        a.set_revoked(HashSet::new());
        assert!(a.verify(&t).is_ok());
        assert!(check_token_id("../x").is_err() && check_token_id(&id).is_ok());
    }

    #[test]
    fn a_verified_token_is_checked_again_once_its_expiry_passed() {
        let a = TokenAuthority::from_secret(&[7u8; 32]);
        let (t, _) = a.mint("alice", false, Duration::from_secs(60)).unwrap();
        let p = a.verify(&t).unwrap();
        assert_eq!(
            a.verified.lock().get(&t).map(|(q, _)| q.user.clone()),
            Some("alice".into())
        );
        // An entry past its expiry (and leeway) is not trusted: the text is decoded again,
        // and a text that is no token fails.
        a.verified.lock().insert("not-a-token".into(), (p.clone(), 1));
        assert!(matches!(
            a.verify("not-a-token"),
            Err(CoordinatorError::Unauthenticated)
        ));
        let now = jsonwebtoken::get_current_timestamp();
        a.verified.lock().insert("still-fresh".into(), (p, now + 60));
        assert_eq!(a.verify("still-fresh").unwrap().user, "alice");
    }
}
