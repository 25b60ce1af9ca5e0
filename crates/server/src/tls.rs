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
    let authority = DevAuthority::generate("edgekeep development CA")?;
    let (cert_pem, key_pem) =
        authority.issue("edgekeep-server", &["localhost", "127.0.0.1", "::1"])?;
    Ok(DevCertificates {
        ca_pem: authority.ca_pem(),
        cert_pem,
        key_pem,
    })
}

/// A certificate authority made on the spot, for development and tests: a self-signed CA that
/// signs certificates for servers and clients.
pub struct DevAuthority {
    key: KeyPair,
    certificate: rcgen::Certificate,
}

impl std::fmt::Debug for DevAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevAuthority").finish_non_exhaustive()
    }
}

impl DevAuthority {
    /// A new CA named `common_name`, which signs end-entity certificates only.
    pub fn generate(common_name: &str) -> Result<Self, ServerError> {
        let key = KeyPair::generate().map_err(generation_failed)?;
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(generation_failed)?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let certificate = params.self_signed(&key).map_err(generation_failed)?;
        Ok(Self { key, certificate })
    }

    /// The CA certificate, PEM.
    pub fn ca_pem(&self) -> String {
        self.certificate.pem()
    }

    /// A certificate for `common_name` and the DNS names or IP addresses `names` (none for a
    /// client), signed by this CA; returns it and its private key (PKCS#8), PEM.
    pub fn issue(
        &self,
        common_name: &str,
        names: &[&str],
    ) -> Result<(String, String), ServerError> {
        let key = KeyPair::generate().map_err(generation_failed)?;
        let names: Vec<String> = names.iter().map(|name| (*name).to_owned()).collect();
        let mut params = CertificateParams::new(names).map_err(generation_failed)?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        let certificate = params
            .signed_by(&key, &self.certificate, &self.key)
            .map_err(generation_failed)?;
        Ok((certificate.pem(), key.serialize_pem()))
    }
}

fn generation_failed(_: rcgen::Error) -> ServerError {
    ServerError::Tls("certificate generation failed")
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
