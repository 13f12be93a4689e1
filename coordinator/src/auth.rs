//! Tokens: JWTs signed with the server's own key, and their revocation list.
//!
//! Invariants:
//! - One algorithm (HS256) is accepted; `alg: none` or any other algorithm fails validation.
//! - Every failure is reported as the same [`CoordinatorError::Unauthenticated`], so a caller
//!   learns nothing about why a token was refused.
//! - The signing key never leaves the data directory (mode 0600) and is never logged.
//! - Revocations are a file of token ids; the server re-reads it when it changes, so
//!   `pond token revoke` takes effect on a running server within [`REVOCATION_POLL`].

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

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
    revoked_path: Option<PathBuf>,
    revoked: Mutex<Revoked>,
    /// Tokens whose signature and claims were checked, with what they carry and when they
    /// expire: a client sends the same token with every call, and checking its signature again
    /// each time was a twentieth of a point query's work. Revocation is still checked per call.
    verified: Mutex<HashMap<String, (Principal, u64)>>,
}

/// Verified tokens kept; the cache starts over when full.
const VERIFIED_TOKENS: usize = 4096;

struct Revoked {
    ids: HashSet<String>,
    checked: Instant,
    modified: Option<std::time::SystemTime>,
}

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
    /// Loads the signing key from `data_dir`, creating it on first start; revocations are
    /// read from `<data_dir>/revoked_tokens`.
    pub fn open(data_dir: &Path) -> Result<Self> {
        let key = load_or_create_key(&data_dir.join("signing.key"))?;
        Ok(Self::from_secret(&key, Some(data_dir.join("revoked_tokens"))))
    }

    /// An authority over a key held elsewhere, such as the cluster secret that coordinator and
    /// duckling processes share. Without a revocation file nothing is revoked: such tokens are
    /// short-lived.
    pub fn from_secret(key: &[u8], revoked_path: Option<PathBuf>) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        validation.set_required_spec_claims(&["exp", "sub", "iat", "jti"]);
        Self {
            encoding: EncodingKey::from_secret(key),
            decoding: DecodingKey::from_secret(key),
            validation,
            revoked_path,
            revoked: Mutex::new(Revoked {
                ids: HashSet::new(),
                checked: Instant::now() - REVOCATION_POLL * 2,
                modified: None,
            }),
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

    /// Revokes token id `id` (appends it to the revocation file).
    pub fn revoke(&self, id: &str) -> Result<()> {
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(CoordinatorError::InvalidArgument(format!("invalid token id {id:?}")));
        }
        let path = self
            .revoked_path
            .as_ref()
            .ok_or_else(|| CoordinatorError::InvalidArgument("this server keeps no revocation list".into()))?;
        let mut f = std::fs::OpenOptions::new().append(true).create(true).open(path)?;
        writeln!(f, "{id}")?;
        f.sync_all()?;
        self.revoked.lock().ids.insert(id.to_string());
        Ok(())
    }

    fn is_revoked(&self, id: &str) -> bool {
        let Some(path) = &self.revoked_path else {
            return false;
        };
        let mut r = self.revoked.lock();
        if r.checked.elapsed() >= REVOCATION_POLL {
            r.checked = Instant::now();
            let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
            if modified != r.modified {
                r.modified = modified;
                if let Ok(text) = std::fs::read_to_string(path) {
                    r.ids = text
                        .lines()
                        .map(str::trim)
                        .filter(|l| !l.is_empty())
                        .map(String::from)
                        .collect();
                }
            }
        }
        r.ids.contains(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mints_verifies_and_refuses() {
        let dir = tempfile::tempdir().unwrap();
        let a = TokenAuthority::open(dir.path()).unwrap();
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
        let other_dir = tempfile::tempdir().unwrap();
        let other = TokenAuthority::open(other_dir.path()).unwrap();
        assert!(other.verify(&t).is_err());
        // Revoked.
        a.revoke(&id).unwrap();
        assert!(a.verify(&t).is_err());
    }

    #[test]
    fn a_verified_token_is_checked_again_once_its_expiry_passed() {
        let a = TokenAuthority::from_secret(&[7u8; 32], None);
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
