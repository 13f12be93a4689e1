//! Users' secrets (`CREATE SECRET … IN POND`): checked, sealed at rest, and made temporary
//! DuckDB secrets inside their owner's duckling only.
//!
//! Invariants:
//! - A secret's option values never appear in a log, trace, error or listing: [`SecretOptions`]'
//!   `Debug` hides them, an error from DuckDB about a secret is reported with them masked
//!   ([`SecretSpec::mask`]), and listings show name, type, scope and creation time alone.
//! - At rest (the catalog file) the options are sealed with ChaCha20-Poly1305 under a key
//!   derived (HKDF-SHA256) from the server's signing key, which the catalog does not hold. The
//!   owner and the name are the associated data: a sealed secret copied to another user or name
//!   does not open.
//! - Only reviewed types and options pass ([`ALLOWED_OPTIONS`]): no provider that reads the
//!   server's own credentials (`credential_chain`), and no endpoint on a link-local address
//!   (where cloud metadata services answer).

use std::collections::BTreeMap;
use std::fmt;

use pond_duckling::engine::{quote_ident, quote_literal};
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::hkdf;
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

use crate::error::{CoordinatorError, Result};

/// The secret types Pond stores, and the options each may set beyond [`S3_OPTIONS`] (besides
/// `TYPE` and `SCOPE`): all three are DuckDB's S3-compatible secrets.
pub const ALLOWED_OPTIONS: &[(&str, &[&str])] = &[("s3", &[]), ("r2", &["account_id"]), ("gcs", &[])];

/// The options every S3-compatible secret may set.
const S3_OPTIONS: &[&str] = &[
    "key_id",
    "secret",
    "region",
    "session_token",
    "endpoint",
    "url_style",
    "use_ssl",
    "url_compatibility_mode",
    "provider",
];

/// Options DuckDB takes as booleans, written bare.
const BOOLEAN_OPTIONS: &[&str] = &["use_ssl", "url_compatibility_mode"];

/// A secret's options (lowercased names → values), whose values are never shown.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretOptions(pub BTreeMap<String, String>);

impl fmt::Debug for SecretOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

/// A secret as a user states it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretSpec {
    pub name: String,
    pub secret_type: String,
    /// The path prefix it serves; `None`: every path of its type.
    pub scope: Option<String>,
    pub options: SecretOptions,
}

/// A stored secret, as the catalog returns it to its owner's duckling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretEntry {
    pub spec: SecretSpec,
    pub created_ms: u64,
}

impl SecretSpec {
    /// Checks a secret a user stated: its name, type, options and endpoint.
    pub fn checked(self, private_endpoints: bool) -> Result<Self> {
        crate::catalog::validate_name("secret", &self.name)?;
        let Some((_, extra)) = ALLOWED_OPTIONS.iter().find(|(t, _)| *t == self.secret_type) else {
            let types: Vec<&str> = ALLOWED_OPTIONS.iter().map(|(t, _)| *t).collect();
            return Err(CoordinatorError::InvalidArgument(format!(
                "secret type {:?} is not supported (supported: {})",
                self.secret_type,
                types.join(", ")
            )));
        };
        let allowed: Vec<&str> = S3_OPTIONS.iter().chain(extra.iter()).copied().collect();
        for (key, value) in &self.options.0 {
            if !allowed.contains(&key.as_str()) {
                return Err(CoordinatorError::InvalidArgument(format!(
                    "a {} secret has no option {key} (options: TYPE, SCOPE, {})",
                    self.secret_type,
                    allowed.join(", ").to_uppercase()
                )));
            }
            if key == "provider" && !value.eq_ignore_ascii_case("config") {
                return Err(CoordinatorError::PermissionDenied(
                    "a secret's PROVIDER must be config: the server's own credentials are not the user's".into(),
                ));
            }
            if BOOLEAN_OPTIONS.contains(&key.as_str())
                && !matches!(value.to_ascii_lowercase().as_str(), "true" | "false")
            {
                return Err(CoordinatorError::InvalidArgument(format!("{key} takes true or false")));
            }
        }
        // Both become part of a host name DuckDB builds (`<account_id>.r2.cloudflarestorage.com`,
        // `s3.<region>.amazonaws.com`).
        for key in ["region", "account_id"] {
            if let Some(value) = self.options.0.get(key)
                && !value.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            {
                return Err(CoordinatorError::InvalidArgument(format!(
                    "a secret's {} is letters, digits and '-'",
                    key.to_uppercase()
                )));
            }
        }
        if let Some(endpoint) = self.options.0.get("endpoint") {
            check_endpoint(endpoint, private_endpoints)?;
        }
        if let Some(scope) = &self.scope
            && !scope.contains("://")
        {
            return Err(CoordinatorError::InvalidArgument(
                "a secret's SCOPE is a URL prefix such as 's3://bucket/path'".into(),
            ));
        }
        Ok(self)
    }

    /// The host SQL that makes it a temporary secret of a duckling.
    pub fn create_sql(&self) -> String {
        let mut parts = vec![format!("TYPE {}", self.secret_type)];
        for (key, value) in &self.options.0 {
            let value = if BOOLEAN_OPTIONS.contains(&key.as_str()) {
                value.to_ascii_lowercase()
            } else {
                quote_literal(value)
            };
            parts.push(format!("{} {value}", key.to_uppercase()));
        }
        if let Some(scope) = &self.scope {
            parts.push(format!("SCOPE {}", quote_literal(scope)));
        }
        format!(
            "CREATE OR REPLACE TEMPORARY SECRET {} ({})",
            quote_ident(&self.name),
            parts.join(", ")
        )
    }

    /// `message` with every option value of this secret masked: for an error about it.
    pub fn mask(&self, message: &str) -> String {
        let mut masked = message.to_string();
        for value in self.options.0.values().filter(|v| v.len() >= 3) {
            masked = masked.replace(value.as_str(), "***");
        }
        masked
    }
}

/// Refuses an endpoint whose host is link-local (cloud metadata services), or loopback or
/// private unless `private_endpoints`: a secret must not turn the duckling into a client of
/// the server's own network. The duckling's egress proxy judges every connection again
/// (`pond_duckling::egress`); this check tells the user at `CREATE SECRET`.
fn check_endpoint(endpoint: &str, private_endpoints: bool) -> Result<()> {
    let without_scheme = endpoint.split_once("://").map_or(endpoint, |(_, rest)| rest);
    let authority = without_scheme.split('/').next().unwrap_or_default();
    if authority.is_empty() || authority.contains(['@', '?', '#', '\\', ' ']) {
        return Err(CoordinatorError::InvalidArgument(
            "a secret's ENDPOINT is host[:port], without user, query or fragment".into(),
        ));
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !port.contains(']') => (
            host,
            port.parse::<u16>()
                .map_err(|_| CoordinatorError::InvalidArgument("the ENDPOINT's port is not a number".into()))?,
        ),
        _ => (authority, 443),
    };
    pond_duckling::egress::allowed_address(host, port, private_endpoints)
        .map(|_| ())
        .map_err(|unreached| match unreached {
            pond_duckling::egress::Unreached::Refused(why) => {
                CoordinatorError::PermissionDenied(format!("the secret's ENDPOINT {why}"))
            }
            pond_duckling::egress::Unreached::Unreachable(why) => {
                CoordinatorError::InvalidArgument(format!("the secret's ENDPOINT {why}"))
            }
        })
}

/// The key that seals secrets at rest.
pub struct SecretsKey(LessSafeKey);

impl SecretsKey {
    /// Derives the key from the server's key material.
    pub fn derive(server_key: &[u8]) -> Self {
        let salt = hkdf::Salt::new(hkdf::HKDF_SHA256, b"pond secrets at rest v1");
        let prk = salt.extract(server_key);
        let info: &[&[u8]] = &[b"chacha20-poly1305"];
        let okm = prk
            .expand(info, &CHACHA20_POLY1305)
            .expect("a 32-byte key is a valid HKDF output length");
        Self(LessSafeKey::new(UnboundKey::from(okm)))
    }

    fn aad(owner: &str, name: &str) -> Vec<u8> {
        format!("pond-secret\0{owner}\0{name}").into_bytes()
    }

    /// Seals `options` for secret `name` of `owner`: a fresh nonce followed by the ciphertext.
    pub fn seal(&self, owner: &str, name: &str, options: &SecretOptions) -> Result<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| CoordinatorError::Internal("no randomness for a nonce".into()))?;
        let mut data = serde_json::to_vec(options).map_err(|e| CoordinatorError::Internal(e.to_string()))?;
        self.0
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(Self::aad(owner, name)),
                &mut data,
            )
            .map_err(|_| CoordinatorError::Internal("sealing a secret failed".into()))?;
        Ok([nonce.as_slice(), &data].concat())
    }

    /// Opens what [`Self::seal`] sealed for the same owner and name.
    pub fn open(&self, owner: &str, name: &str, sealed: &[u8]) -> Result<SecretOptions> {
        let unreadable = || {
            CoordinatorError::Internal(format!(
                "secret {name} cannot be opened with this server's key (was the signing key rotated? \
                 create it again with CREATE OR REPLACE SECRET)"
            ))
        };
        if sealed.len() < NONCE_LEN {
            return Err(unreadable());
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| unreadable())?;
        let mut data = ciphertext.to_vec();
        let plain = self
            .0
            .open_in_place(nonce, Aad::from(Self::aad(owner, name)), &mut data)
            .map_err(|_| unreadable())?;
        serde_json::from_slice(plain).map_err(|_| unreadable())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(options: &[(&str, &str)]) -> SecretSpec {
        SecretSpec {
            name: "lake".into(),
            secret_type: "s3".into(),
            scope: Some("s3://bucket/prefix/".into()),
            options: SecretOptions(options.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
        }
    }

    #[test]
    fn sealed_options_open_only_for_their_owner_and_name_under_the_same_key() {
        let key = SecretsKey::derive(&[7u8; 32]);
        let options = spec(&[("key_id", "AKIAEXAMPLE"), ("secret", "hunter2-very-secret")]).options;
        let sealed = key.seal("alice", "lake", &options).unwrap();
        let text = String::from_utf8_lossy(&sealed);
        assert!(!text.contains("hunter2") && !text.contains("AKIAEXAMPLE"));
        assert_eq!(key.open("alice", "lake", &sealed).unwrap(), options);
        assert!(key.open("bob", "lake", &sealed).is_err());
        assert!(key.open("alice", "other", &sealed).is_err());
        assert!(SecretsKey::derive(&[8u8; 32]).open("alice", "lake", &sealed).is_err());
        // Two seals of the same options differ (a fresh nonce each).
        assert_ne!(key.seal("alice", "lake", &options).unwrap(), sealed);
    }

    #[test]
    fn values_never_show_in_debug_or_errors() {
        let s = spec(&[("key_id", "AKIAEXAMPLE"), ("secret", "hunter2-very-secret")]);
        let debug = format!("{s:?}");
        assert!(debug.contains("key_id") && !debug.contains("hunter2") && !debug.contains("AKIAEXAMPLE"));
        assert_eq!(
            s.mask("bad secret hunter2-very-secret for AKIAEXAMPLE"),
            "bad secret *** for ***"
        );
    }

    #[test]
    fn only_reviewed_types_options_and_endpoints_pass() {
        assert!(spec(&[("key_id", "k"), ("secret", "s")]).checked(false).is_ok());
        let err = |s: SecretSpec, private: bool| s.checked(private).unwrap_err().to_string();
        assert!(err(spec(&[("provider", "credential_chain")]), false).contains("PROVIDER"));
        assert!(err(spec(&[("kms_key_id", "x")]), false).contains("no option kms_key_id"));
        assert!(err(spec(&[("use_ssl", "maybe")]), false).contains("true or false"));
        assert!(err(spec(&[("endpoint", "169.254.169.254")]), true).contains("link-local"));
        assert!(err(spec(&[("endpoint", "http://[fe80::1]:80")]), true).contains("link-local"));
        assert!(err(spec(&[("endpoint", "127.0.0.1:9000")]), false).contains("--private-endpoints"));
        assert!(err(spec(&[("endpoint", "[::ffff:169.254.169.254]:80")]), true).contains("link-local"));
        assert!(err(spec(&[("endpoint", "10.0.0.5:8080?@example.com")]), true).contains("without user"));
        let mut r2 = spec(&[("account_id", "169.254.169.254/x?")]);
        r2.secret_type = "r2".into();
        assert!(err(r2, true).contains("ACCOUNT_ID"));
        assert!(err(spec(&[("region", "us-east-1.evil/")]), true).contains("REGION"));
        assert!(spec(&[("endpoint", "127.0.0.1:9000")]).checked(true).is_ok());
        let mut other = spec(&[]);
        other.secret_type = "azure".into();
        assert!(err(other, false).contains("not supported"));
        let mut bad_scope = spec(&[]);
        bad_scope.scope = Some("/etc".into());
        assert!(err(bad_scope, false).contains("SCOPE"));
    }

    #[test]
    fn creates_a_temporary_duckdb_secret_with_quoted_values() {
        let s = spec(&[("key_id", "k'1"), ("use_ssl", "FALSE"), ("url_style", "path")]);
        assert_eq!(
            s.create_sql(),
            "CREATE OR REPLACE TEMPORARY SECRET \"lake\" (TYPE s3, KEY_ID 'k''1', URL_STYLE 'path', USE_SSL false, \
             SCOPE 's3://bucket/prefix/')"
        );
    }
}
