//! TLS between coordinators and duckling processes, used whenever the front door serves TLS.
//!
//! Invariants:
//! - The cluster CA's key is derived from the cluster secret (Ed25519, whose signatures are
//!   deterministic), so every coordinator and remote duckling holding the secret makes the
//!   same CA and nothing else can. A duckling a coordinator spawns holds only its own key and
//!   the leaf certificate issued for it, never the CA's key.
//! - Both ends verify each other against the cluster CA under one name, [`CLUSTER_NAME`]: an
//!   address never decides trust, so ducklings on any host need no certificate naming it.
//! - A duckling answers the coordinator with its cluster leaf (the coordinator asks for
//!   [`CLUSTER_NAME`]) and, with direct endpoints, clients with the public certificate
//!   (anything else they ask for). Its coordinator must present a cluster certificate unless
//!   clients connect directly; every call still carries its token either way.
//! - A coordinator's cluster port (where the ducklings it spawns register) accepts only
//!   cluster certificates.

use std::sync::Arc;

use futures::Stream;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PKCS_ED25519, SerialNumber,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;
use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};
use tracing::debug;

use crate::error::{ClusterError, Result};
use crate::protocol::ClusterKey;

/// The name both ends of a cluster connection verify.
pub const CLUSTER_NAME: &str = "pond-cluster";

/// The scheme of a Flight address, with TLS or without.
pub fn scheme(tls: bool) -> &'static str {
    if tls { "grpc+tls" } else { "grpc" }
}

/// The environment a spawned duckling gets its TLS material in (PEM).
pub const CA_ENV: &str = "POND_CLUSTER_TLS_CA";
pub const CERT_ENV: &str = "POND_CLUSTER_TLS_CERT";
pub const KEY_ENV: &str = "POND_CLUSTER_TLS_KEY";

/// How long a TLS handshake on a duckling's port may take.
const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// A PKCS#8 v1 Ed25519 private key, before its 32-byte seed (RFC 8410).
const ED25519_PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// One holder's cluster TLS material: the cluster CA and its own leaf, PEM-encoded.
#[derive(Clone)]
pub struct ClusterTls {
    ca_pem: String,
    cert_pem: String,
    key_pem: String,
}

impl std::fmt::Debug for ClusterTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterTls").finish_non_exhaustive()
    }
}

fn tls_error(what: &str, e: impl std::fmt::Display) -> ClusterError {
    ClusterError::Config(format!("cluster TLS: {what}: {e}"))
}

/// The cluster CA of `key`'s secret: its certificate parameters and signing key, the same
/// wherever they are made.
fn cluster_ca(key: &ClusterKey) -> Result<(CertificateParams, KeyPair)> {
    let mut pkcs8 = ED25519_PKCS8_PREFIX.to_vec();
    pkcs8.extend_from_slice(&key.derive("pond cluster CA v1"));
    let signing = KeyPair::from_pkcs8_der_and_sign_algo(&PrivatePkcs8KeyDer::from(pkcs8), &PKCS_ED25519)
        .map_err(|e| tls_error("the CA key", e))?;
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, "Pond cluster CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
    // Fixed, so every holder of the secret makes the same certificate.
    params.serial_number = Some(SerialNumber::from_slice(&[1]));
    params.not_before = rcgen::date_time_ymd(2025, 1, 1);
    params.not_after = rcgen::date_time_ymd(2125, 1, 1);
    Ok((params, signing))
}

impl ClusterTls {
    /// The cluster CA of `key`'s secret and a new leaf for `holder` (a coordinator or a
    /// duckling id), signed by it. A leaf lives as long as the secret: rotating the cluster
    /// key retires every leaf, as it retires every duckling key.
    pub fn issue(key: &ClusterKey, holder: &str) -> Result<Self> {
        let (ca_params, ca_key) = cluster_ca(key)?;
        let ca_pem = ca_params
            .self_signed(&ca_key)
            .map_err(|e| tls_error("the CA", e))?
            .pem();
        let issuer = Issuer::new(ca_params, ca_key);
        let leaf_key = KeyPair::generate_for(&PKCS_ED25519).map_err(|e| tls_error("a leaf key", e))?;
        let mut params = CertificateParams::new(vec![CLUSTER_NAME.to_string()]).map_err(|e| tls_error("a leaf", e))?;
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, holder);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
        params.use_authority_key_identifier_extension = true;
        let cert = params
            .signed_by(&leaf_key, &issuer)
            .map_err(|e| tls_error("signing a leaf", e))?;
        Ok(Self {
            ca_pem,
            cert_pem: cert.pem(),
            key_pem: leaf_key.serialize_pem(),
        })
    }

    /// What a spawned duckling was handed in its environment, if anything.
    pub fn from_env() -> Option<Self> {
        let var = |name| std::env::var(name).ok().filter(|v: &String| !v.is_empty());
        Some(Self {
            ca_pem: var(CA_ENV)?,
            cert_pem: var(CERT_ENV)?,
            key_pem: var(KEY_ENV)?,
        })
    }

    /// The environment that hands this material to a spawned duckling.
    pub fn env(&self) -> [(&'static str, &str); 3] {
        [
            (CA_ENV, &self.ca_pem),
            (CERT_ENV, &self.cert_pem),
            (KEY_ENV, &self.key_pem),
        ]
    }

    /// The client side of a cluster connection: the peer verified against the cluster CA as
    /// [`CLUSTER_NAME`], this holder's leaf presented.
    pub fn client(&self) -> ClientTlsConfig {
        ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&self.ca_pem))
            .identity(Identity::from_pem(&self.cert_pem, &self.key_pem))
            .domain_name(CLUSTER_NAME)
    }

    /// A coordinator's cluster port: its leaf, and only clients with a cluster certificate.
    pub fn server(&self) -> ServerTlsConfig {
        ServerTlsConfig::new()
            .identity(Identity::from_pem(&self.cert_pem, &self.key_pem))
            .client_ca_root(Certificate::from_pem(&self.ca_pem))
    }

    /// A duckling's port: its leaf to whoever asks for [`CLUSTER_NAME`], `public` (the front
    /// door's certificate and key, with direct endpoints) to anyone else, in which case a
    /// client certificate is optional.
    pub fn duckling_server(&self, public: Option<(&[u8], &[u8])>) -> Result<Arc<rustls::ServerConfig>> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(self.ca_pem.as_bytes()) {
            roots
                .add(cert.map_err(|e| tls_error("the CA", e))?)
                .map_err(|e| tls_error("the CA", e))?;
        }
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider));
        let verifier = if public.is_some() {
            verifier.allow_unauthenticated()
        } else {
            verifier
        }
        .build()
        .map_err(|e| tls_error("the client verifier", e))?;
        let cluster = certified(self.cert_pem.as_bytes(), self.key_pem.as_bytes(), &provider)?;
        let public = public.map(|(cert, key)| certified(cert, key, &provider)).transpose()?;
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_error("protocol versions", e))?
            .with_client_cert_verifier(verifier)
            .with_cert_resolver(Arc::new(ByServerName { cluster, public }));
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Arc::new(config))
    }
}

fn certified(cert_pem: &[u8], key_pem: &[u8], provider: &rustls::crypto::CryptoProvider) -> Result<Arc<CertifiedKey>> {
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| tls_error("a certificate", e))?;
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| tls_error("a private key", e))?;
    let signing = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| tls_error("a private key", e))?;
    Ok(Arc::new(CertifiedKey::new(chain, signing)))
}

/// The duckling's certificate for the name a client asks for.
#[derive(Debug)]
struct ByServerName {
    cluster: Arc<CertifiedKey>,
    public: Option<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for ByServerName {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        match (&self.public, hello.server_name()) {
            (Some(public), name) if name != Some(CLUSTER_NAME) => Some(Arc::clone(public)),
            _ => Some(Arc::clone(&self.cluster)),
        }
    }
}

/// The TLS connections accepted on `listener`, each handshake on a task of its own so a slow
/// or silent client holds up no other; failed handshakes are dropped.
pub fn incoming(
    listener: TcpListener,
    config: Arc<rustls::ServerConfig>,
) -> impl Stream<Item = std::io::Result<TlsStream<TcpStream>>> {
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                // The server stopped: so does accepting.
                () = tx.closed() => return,
            };
            let (stream, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    if tx.send(Err(e)).await.is_err() {
                        return;
                    }
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let (acceptor, tx) = (acceptor.clone(), tx.clone());
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(tls)) => {
                        let _ = tx.send(Ok(tls)).await;
                    }
                    Ok(Err(e)) => debug!(%peer, error = %e, "a TLS handshake failed"),
                    Err(_) => debug!(%peer, "a TLS handshake timed out"),
                }
            });
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

#[cfg(test)]
mod tests {
    use rustls::pki_types::UnixTime;
    use rustls::server::danger::ClientCertVerifier;

    use super::*;

    fn verifier(ca_pem: &str) -> Arc<dyn ClientCertVerifier> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            roots.add(cert.unwrap()).unwrap();
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .unwrap()
    }

    fn leaf(tls: &ClusterTls) -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(tls.cert_pem.as_bytes()).unwrap()
    }

    #[test]
    fn every_holder_of_a_secret_makes_one_ca_and_only_its_leaves_verify() {
        let key = ClusterKey::new(&[7u8; 32]);
        let (coordinator, duckling) = (
            ClusterTls::issue(&key, "coordinator").unwrap(),
            ClusterTls::issue(&key, "d_1").unwrap(),
        );
        assert_eq!(coordinator.ca_pem, duckling.ca_pem, "the CA is derived, not random");
        assert_ne!(coordinator.key_pem, duckling.key_pem, "each leaf has a key of its own");
        let stranger = ClusterTls::issue(&ClusterKey::new(&[8u8; 32]), "d_1").unwrap();
        assert_ne!(stranger.ca_pem, coordinator.ca_pem);

        let trusts = verifier(&coordinator.ca_pem);
        let now = UnixTime::now();
        assert!(trusts.verify_client_cert(&leaf(&duckling), &[], now).is_ok());
        assert!(trusts.verify_client_cert(&leaf(&stranger), &[], now).is_err());
        assert!(!coordinator.key_pem.is_empty() && !format!("{coordinator:?}").contains("PRIVATE"));
    }

    #[test]
    fn a_duckling_port_builds_with_and_without_the_public_certificate() {
        let key = ClusterKey::new(&[7u8; 32]);
        let tls = ClusterTls::issue(&key, "d_1").unwrap();
        let public = ClusterTls::issue(&ClusterKey::new(&[9u8; 32]), "public").unwrap();
        assert_eq!(tls.duckling_server(None).unwrap().alpn_protocols, vec![b"h2".to_vec()]);
        tls.duckling_server(Some((public.cert_pem.as_bytes(), public.key_pem.as_bytes())))
            .unwrap();
        assert!(tls.duckling_server(Some((b"not a certificate", b"nor a key"))).is_err());
    }
}
