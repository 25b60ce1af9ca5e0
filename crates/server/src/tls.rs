//! TLS: a development CA and server certificate generated at `init`, and the rustls server
//! configuration (ring provider, TLS 1.2/1.3, ALPN h2 and http/1.1).

use std::path::Path;
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::ServerError;

/// PEM files of a freshly generated development certificate.
pub struct DevCertificates {
    /// The development CA certificate clients should trust.
    pub ca_pem: String,
    /// The server certificate, signed by the CA, for `localhost` and `127.0.0.1`.
    pub cert_pem: String,
    /// The server's private key (PKCS#8).
    pub key_pem: String,
}

impl std::fmt::Debug for DevCertificates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevCertificates").finish_non_exhaustive()
    }
}

/// Generates a development CA (its key is discarded) and a server certificate it signs for
/// `localhost`, `127.0.0.1` and `::1`.
pub fn generate_dev_certificates() -> Result<DevCertificates, ServerError> {
    let failed = |_| ServerError::Tls("certificate generation failed");
    let ca_key = KeyPair::generate().map_err(failed)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(failed)?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "edgekeep development CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params.self_signed(&ca_key).map_err(failed)?;

    let server_key = KeyPair::generate().map_err(failed)?;
    let names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    let mut params = CertificateParams::new(names).map_err(failed)?;
    params
        .distinguished_name
        .push(DnType::CommonName, "edgekeep-server");
    let cert = params
        .signed_by(&server_key, &ca_cert, &ca_key)
        .map_err(failed)?;
    Ok(DevCertificates {
        ca_pem: ca_cert.pem(),
        cert_pem: cert.pem(),
        key_pem: server_key.serialize_pem(),
    })
}

/// Builds the rustls server configuration from a PEM certificate chain and private key.
pub fn server_config(
    cert_pem: &[u8],
    key_pem: &[u8],
) -> Result<Arc<rustls::ServerConfig>, ServerError> {
    let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut &cert_pem[..])
        .collect::<Result<_, _>>()
        .map_err(|_| ServerError::Tls("certificate file is not valid PEM"))?;
    if certs.is_empty() {
        return Err(ServerError::Tls("certificate file holds no certificate"));
    }
    let key: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut &key_pem[..])
        .map_err(|_| ServerError::Tls("key file is not valid PEM"))?
        .ok_or(ServerError::Tls("key file holds no private key"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|_| ServerError::Tls("protocol versions unsupported"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|_| ServerError::Tls("certificate and key do not match or are unsupported"))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Reads the PEM files and builds the server configuration.
pub fn load_server_config(
    cert: &Path,
    key: &Path,
) -> Result<Arc<rustls::ServerConfig>, ServerError> {
    let cert_pem = std::fs::read(cert).map_err(ServerError::io("reading the TLS certificate"))?;
    let key_pem = std::fs::read(key).map_err(ServerError::io("reading the TLS key"))?;
    server_config(&cert_pem, &key_pem)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_certificates_load() {
        let certs = generate_dev_certificates().unwrap();
        assert!(certs.ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        server_config(certs.cert_pem.as_bytes(), certs.key_pem.as_bytes()).unwrap();
        assert!(server_config(certs.cert_pem.as_bytes(), b"garbage").is_err());
    }
}
