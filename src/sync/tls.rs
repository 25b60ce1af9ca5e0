//! TLS for the control-plane connection: rustls with the `ring` provider, the public roots
//! or a custom root (self-hosted control planes), and optional SPKI pinning.

use std::sync::Arc;

use ring::digest;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::error::SyncError;

/// SHA-256 of a certificate's DER SubjectPublicKeyInfo: what a pin names.
pub type SpkiPin = [u8; 32];

/// Computes the SPKI pin of a DER certificate (to configure pins from a known certificate).
pub fn spki_pin_of_certificate(der: &[u8]) -> Result<SpkiPin, SyncError> {
    let cert = CertificateDer::from(der);
    let parsed = webpki::EndEntityCert::try_from(&cert)
        .map_err(|_| SyncError::Config("certificate does not parse"))?;
    Ok(sha256(parsed.subject_public_key_info().as_ref()))
}

/// Computes the SPKI pins of every certificate in a PEM bundle.
pub fn spki_pins_of_pem(pem: &[u8]) -> Result<Vec<SpkiPin>, SyncError> {
    CertificateDer::pem_slice_iter(pem)
        .map(|cert| {
            let cert = cert.map_err(|_| SyncError::Config("certificate PEM does not parse"))?;
            spki_pin_of_certificate(&cert)
        })
        .collect()
}

fn sha256(bytes: &[u8]) -> SpkiPin {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, bytes).as_ref());
    out
}

/// Builds the client TLS configuration.
pub(crate) fn client_config(
    custom_roots_pem: &[Vec<u8>],
    pins: &[SpkiPin],
) -> Result<rustls::ClientConfig, SyncError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    if custom_roots_pem.is_empty() {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    for pem in custom_roots_pem {
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|_| SyncError::Config("root certificate does not parse"))?;
            roots
                .add(cert)
                .map_err(|_| SyncError::Config("root certificate is not a valid anchor"))?;
        }
    }
    if roots.is_empty() {
        return Err(SyncError::Config("no root certificate"));
    }
    let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|_| SyncError::Config("TLS verifier could not be built"))?;
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|_| SyncError::Config("TLS protocol versions"))?;
    let config = if pins.is_empty() {
        builder.with_webpki_verifier(webpki).with_no_client_auth()
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinnedVerifier {
                inner: webpki,
                pins: pins.to_vec(),
            }))
            .with_no_client_auth()
    };
    Ok(config)
}

/// Normal WebPKI verification, then: some certificate of the chain must carry a pinned key.
#[derive(Debug)]
struct PinnedVerifier {
    inner: Arc<WebPkiServerVerifier>,
    pins: Vec<SpkiPin>,
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verified = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )?;
        let pinned = std::iter::once(end_entity)
            .chain(intermediates)
            .filter_map(|cert| spki_pin_of_certificate(cert).ok())
            .any(|pin| self.pins.contains(&pin));
        if pinned {
            Ok(verified)
        } else {
            Err(rustls::Error::General("server key is not pinned".into()))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
