//! TLS to PostgreSQL, asked for as libpq asks: the URL's `sslmode`, `sslrootcert`, `sslcert`
//! and `sslkey` parameters, with libpq's meanings (ADR 0018). rustls (ring) does the TLS.
//!
//! | `sslmode`            | TLS                          | server certificate checked      |
//! |----------------------|------------------------------|---------------------------------|
//! | `disable`            | never                        | -                               |
//! | `allow`, `prefer` (default) | when the server offers it | no                          |
//! | `require`            | always                       | no; as `verify-ca` with `sslrootcert` |
//! | `verify-ca`          | always                       | chain to `sslrootcert`          |
//! | `verify-full`        | always                       | chain and host name             |
//!
//! `sslrootcert` is a PEM file of CA certificates, or `system` for the machine's trusted roots
//! (which, as in libpq, only `verify-full` may use). The verifying modes need it: there is no
//! implicit `~/.postgresql/root.crt`. `sslcert` and `sslkey` (PEM, both or neither) present a
//! client certificate.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use percent_encoding::percent_decode_str;
use r2d2_postgres::postgres::{self, config::SslMode};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::storage::StorageError;

/// The connection parameters this module takes out of the URL before the driver reads it.
const TLS_PARAMETERS: [&str; 4] = ["sslmode", "sslrootcert", "sslcert", "sslkey"];

/// How connections to the database are protected, as the operator's log states it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protection {
    /// `sslmode=disable`: plain TCP.
    Plain,
    /// `prefer` (the default) or `allow`: TLS when the server offers it, plain otherwise; the
    /// server's certificate is not checked.
    Opportunistic,
    /// `require`: TLS, the server's certificate not checked.
    Unverified,
    /// `verify-ca`, or `require` with `sslrootcert`: TLS, the certificate chains to a trusted
    /// root; the host name is not checked.
    VerifiedChain,
    /// `verify-full`: TLS, the certificate chains to a trusted root and names the host.
    Verified,
}

impl Protection {
    /// Whether a network observer or a server in the middle could read or change the traffic.
    pub fn resists_interception(self) -> bool {
        matches!(self, Self::VerifiedChain | Self::Verified)
    }
}

impl fmt::Display for Protection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Plain => "plain TCP (sslmode=disable)",
            Self::Opportunistic => "TLS if offered, certificate unchecked (sslmode=prefer)",
            Self::Unverified => "TLS, certificate unchecked (sslmode=require)",
            Self::VerifiedChain => "TLS, certificate chain verified (sslmode=verify-ca)",
            Self::Verified => "TLS, certificate and host name verified (sslmode=verify-full)",
        })
    }
}

/// A database to connect to: the driver's configuration and the TLS that goes with it.
pub struct Target {
    /// The driver's configuration, its `ssl_mode` set.
    pub config: postgres::Config,
    /// The TLS connector handed to the driver.
    pub tls: MakeRustlsConnect,
    /// What [`Self::tls`] guarantees.
    pub protection: Protection,
}

impl Target {
    /// Reads a `postgres://` URL: its TLS parameters here, the rest by the driver.
    pub fn from_url(url: &str) -> Result<Self, StorageError> {
        let (rest, tls) = TlsParameters::split(url)?;
        let mut config: postgres::Config = rest
            .parse()
            .map_err(|_| unusable("the database URL cannot be read"))?;
        let protection = tls.protection()?;
        config.ssl_mode(match protection {
            Protection::Plain => SslMode::Disable,
            Protection::Opportunistic => SslMode::Prefer,
            _ => SslMode::Require,
        });
        let client = tls.client_config(protection)?;
        Ok(Self {
            config,
            tls: MakeRustlsConnect::new(client),
            protection,
        })
    }

    /// Whether every host the configuration names is this machine (loopback or a socket
    /// folder), where an unverified connection crosses no network.
    pub fn is_local(&self) -> bool {
        self.config.get_hosts().iter().all(|host| match host {
            postgres::config::Host::Tcp(name) => {
                name == "localhost"
                    || name
                        .parse::<std::net::IpAddr>()
                        .is_ok_and(|ip| ip.is_loopback())
            }
            #[cfg(unix)]
            postgres::config::Host::Unix(_) => true,
        })
    }
}

/// The TLS parameters of a URL, decoded.
#[derive(Debug, Default)]
struct TlsParameters {
    mode: Option<String>,
    root_cert: Option<String>,
    client_cert: Option<PathBuf>,
    client_key: Option<PathBuf>,
}

impl TlsParameters {
    /// Splits `url` into the URL without its TLS parameters and those parameters.
    fn split(url: &str) -> Result<(String, Self), StorageError> {
        let Some((base, query)) = url.split_once('?') else {
            return Ok((url.to_owned(), Self::default()));
        };
        let mut tls = Self::default();
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|pair| !pair.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            if !TLS_PARAMETERS.contains(&key) {
                kept.push(pair);
                continue;
            }
            let value = percent_decode_str(value)
                .decode_utf8()
                .map_err(|_| unusable("a TLS parameter of the database URL is not UTF-8"))?
                .into_owned();
            match key {
                "sslmode" => tls.mode = Some(value),
                "sslrootcert" => tls.root_cert = Some(value),
                "sslcert" => tls.client_cert = Some(value.into()),
                _ => tls.client_key = Some(value.into()),
            }
        }
        let rest = if kept.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        Ok((rest, tls))
    }

    fn protection(&self) -> Result<Protection, StorageError> {
        let with_roots = self.root_cert.is_some();
        let protection = match self.mode.as_deref().unwrap_or("prefer") {
            "disable" => Protection::Plain,
            "allow" | "prefer" => Protection::Opportunistic,
            "require" if with_roots => Protection::VerifiedChain,
            "require" => Protection::Unverified,
            "verify-ca" => Protection::VerifiedChain,
            "verify-full" => Protection::Verified,
            _ => {
                return Err(unusable(
                    "sslmode is one of disable, allow, prefer, require, verify-ca, verify-full",
                ));
            }
        };
        if protection.resists_interception() && !with_roots {
            return Err(unusable(
                "sslmode=verify-ca and verify-full need sslrootcert: a CA file, or `system`",
            ));
        }
        if self.root_cert.as_deref() == Some("system") && protection != Protection::Verified {
            return Err(unusable(
                "sslrootcert=system trusts every public CA: it needs sslmode=verify-full",
            ));
        }
        Ok(protection)
    }

    fn client_config(&self, protection: Protection) -> Result<rustls::ClientConfig, StorageError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| unusable(&e.to_string()))?;
        let verifier: Arc<dyn ServerCertVerifier> = if protection.resists_interception() {
            let roots = self.roots()?;
            let full = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| unusable(&format!("sslrootcert: {e}")))?;
            if protection == Protection::Verified {
                full
            } else {
                Arc::new(ChainOnly(full))
            }
        } else {
            Arc::new(Unchecked(provider))
        };
        let builder = builder
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        match (&self.client_cert, &self.client_key) {
            (None, None) => Ok(builder.with_no_client_auth()),
            (Some(cert), Some(key)) => builder
                .with_client_auth_cert(read_certificates(cert, "sslcert")?, read_key(key)?)
                .map_err(|e| unusable(&format!("sslcert and sslkey: {e}"))),
            _ => Err(unusable("sslcert and sslkey go together")),
        }
    }

    fn roots(&self) -> Result<RootCertStore, StorageError> {
        let mut roots = RootCertStore::empty();
        match self.root_cert.as_deref() {
            Some("system") => {
                let found = rustls_native_certs::load_native_certs();
                roots.add_parsable_certificates(found.certs);
            }
            Some(path) => {
                for certificate in read_certificates(Path::new(path), "sslrootcert")? {
                    roots
                        .add(certificate)
                        .map_err(|e| unusable(&format!("sslrootcert: {e}")))?;
                }
            }
            None => {}
        }
        if roots.is_empty() {
            return Err(unusable("sslrootcert names no CA certificate"));
        }
        Ok(roots)
    }
}

fn read_certificates(
    path: &Path,
    parameter: &str,
) -> Result<Vec<CertificateDer<'static>>, StorageError> {
    let pem = read_pem(path, parameter)?;
    let certificates = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| unusable(&format!("{parameter} {}: {e}", path.display())))?;
    if certificates.is_empty() {
        return Err(unusable(&format!(
            "{parameter} {} holds no PEM certificate",
            path.display()
        )));
    }
    Ok(certificates)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, StorageError> {
    let pem = zeroize::Zeroizing::new(read_pem(path, "sslkey")?);
    rustls_pemfile::private_key(&mut pem.as_slice())
        .ok()
        .flatten()
        .ok_or_else(|| {
            unusable(&format!(
                "sslkey {} holds no PEM private key",
                path.display()
            ))
        })
}

fn read_pem(path: &Path, parameter: &str) -> Result<Vec<u8>, StorageError> {
    std::fs::read(path).map_err(|e| unusable(&format!("{parameter} {}: {e}", path.display())))
}

fn unusable(why: &str) -> StorageError {
    StorageError::Unusable(why.to_owned())
}

/// `verify-ca`: the chain must lead to a trusted root; the name it is issued to is not checked.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// `prefer` and `require`: any certificate is taken (the handshake's signatures are still
/// checked, so the session is with whoever holds the certificate's key).
#[derive(Debug)]
struct Unchecked(Arc<CryptoProvider>);

impl ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn protection(url: &str) -> Protection {
        Target::from_url(url)
            .unwrap_or_else(|e| panic!("{url}: {e}"))
            .protection
    }

    #[test]
    fn the_tls_parameters_leave_the_url_and_the_rest_stays() {
        let (rest, tls) = TlsParameters::split(
            "postgres://u:p%40w@db:5432/edgekeep?application_name=a%20b&sslmode=verify-full\
             &sslrootcert=%2Fetc%2Fca%20file.pem&connect_timeout=3",
        )
        .unwrap();
        assert_eq!(
            rest,
            "postgres://u:p%40w@db:5432/edgekeep?application_name=a%20b&connect_timeout=3"
        );
        assert_eq!(tls.mode.as_deref(), Some("verify-full"));
        assert_eq!(tls.root_cert.as_deref(), Some("/etc/ca file.pem"));
        let (rest, tls) = TlsParameters::split("postgres://db/x?sslmode=disable").unwrap();
        assert_eq!(rest, "postgres://db/x");
        assert_eq!(tls.mode.as_deref(), Some("disable"));
    }

    #[test]
    fn modes_mean_what_they_mean_to_libpq() {
        assert_eq!(protection("postgres://db/x"), Protection::Opportunistic);
        assert_eq!(
            protection("postgres://db/x?sslmode=disable"),
            Protection::Plain
        );
        assert_eq!(
            protection("postgres://db/x?sslmode=require"),
            Protection::Unverified
        );
        assert_eq!(
            protection("postgres://db/x?sslmode=verify-full&sslrootcert=system"),
            Protection::Verified
        );
    }

    #[test]
    fn verifying_without_roots_or_with_unreadable_files_is_a_clear_error() {
        for (url, says) in [
            ("postgres://db/x?sslmode=verify-full", "need sslrootcert"),
            ("postgres://db/x?sslmode=verify-ca", "need sslrootcert"),
            ("postgres://db/x?sslmode=strict", "sslmode is one of"),
            (
                "postgres://db/x?sslmode=require&sslrootcert=system",
                "needs sslmode=verify-full",
            ),
            (
                "postgres://db/x?sslmode=verify-full&sslrootcert=/absent/ca.pem",
                "/absent/ca.pem",
            ),
            (
                "postgres://db/x?sslmode=require&sslcert=/absent/c.pem",
                "go together",
            ),
        ] {
            match Target::from_url(url) {
                Err(StorageError::Unusable(why)) => assert!(why.contains(says), "{url}: {why}"),
                Err(other) => panic!("{url}: {other}"),
                Ok(_) => panic!("{url} was accepted"),
            }
        }
    }

    #[test]
    fn a_file_without_certificates_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("ca.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let url = format!(
            "postgres://db/x?sslmode=verify-full&sslrootcert={}",
            empty.display()
        );
        assert!(matches!(
            Target::from_url(&url),
            Err(StorageError::Unusable(why)) if why.contains("no PEM certificate")
        ));
    }

    #[test]
    fn only_loopback_hosts_are_local() {
        let local = |url: &str| Target::from_url(url).unwrap().is_local();
        assert!(local("postgres://127.0.0.1/x"));
        assert!(local("postgres://localhost/x"));
        assert!(local("postgres://[::1]/x"));
        assert!(!local("postgres://db.internal/x"));
        assert!(!local("postgres://10.0.0.5/x"));
    }
}
