//! HTTPS: a rustls server configuration from PEM files (HTTP/1.1 over TLS 1.2 and 1.3,
//! ring as the crypto provider).

use std::path::Path;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::BoxError;

/// The certificates of the PEM file at `path`, in order; `name` (e.g. `"--database-ca "`)
/// goes before the path in the messages.
///
/// # Errors
/// The file cannot be read, or a certificate in it is malformed.
pub fn pem_certificates(path: &Path, name: &str) -> Result<Vec<CertificateDer<'static>>, BoxError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("cannot read {name}{}: {e}", path.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("bad certificate in {name}{}: {e}", path.display()))?;
    Ok(certs)
}

/// An acceptor for the certificate chain and private key in the given PEM files.
///
/// # Errors
/// A file cannot be read, holds no certificate or key, or the key does not match.
pub fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, BoxError> {
    let certs = pem_certificates(cert, "")?;
    if certs.is_empty() {
        return Err(format!("no certificate in {}", cert.display()).into());
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("no usable private key in {}: {e}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("TLS certificate and key: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
