//! The enveloped XML signature of one element, verified with a key the org configured (never a
//! key the message carries): the one profile SAML uses, and nothing else.
//!
//! Accepted: exactly one `ds:Signature` as a direct child of the signed element, exactly one
//! `Reference` whose URI is `#` + that element's `ID` (unique in the document), the transforms
//! enveloped-signature then exclusive canonicalization, SHA-256/384/512 digests, and RSA
//! (PKCS #1 v1.5, 2048 bits or more) or ECDSA P-256/P-384 signatures. Everything else (SHA-1,
//! other transforms, XPath, several references, `Object`s) is refused.
//!
//! [`verify_enveloped`] returns the canonical text of the element without its signature: the
//! exact bytes the digest covered. Callers read facts only from a fresh parse of that text, so
//! nothing outside the signed bytes (a wrapped second assertion, an unsigned sibling) can be
//! read as signed.

use base64::Engine as _;
use ring::digest;
use ring::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use roxmltree::Node;
use x509_parser::prelude::FromDer as _;

use super::c14n::{self, C14nError};

/// The XML Signature namespace.
pub const DSIG_NS: &str = "http://www.w3.org/2000/09/xmldsig#";
const ENVELOPED: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";

/// Why a signature was refused. Fixed reasons, no document content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DsigError {
    /// The element carries no signature.
    #[error("unsigned")]
    Unsigned,
    /// The signature's structure is not the accepted profile.
    #[error("signature structure")]
    Structure,
    /// The reference does not point at the signed element, or its ID is not unique.
    #[error("reference")]
    Reference,
    /// An algorithm outside the accepted set.
    #[error("algorithm")]
    Algorithm,
    /// The signed element does not canonicalize.
    #[error("canonicalization")]
    Canonicalization,
    /// The digest does not match the element (it was changed after signing).
    #[error("digest")]
    Digest,
    /// The signature does not verify with the configured key.
    #[error("signature value")]
    Signature,
}

impl From<C14nError> for DsigError {
    fn from(_: C14nError) -> Self {
        Self::Canonicalization
    }
}

/// Why a configured certificate is unusable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Not a PEM X.509 certificate.
    #[error("the certificate is not a PEM X.509 certificate")]
    NotACertificate,
    /// A key type or size that is not accepted.
    #[error("the certificate's key must be RSA of 2048 bits or more, or ECDSA P-256 or P-384")]
    UnsupportedKey,
}

impl KeyError {
    /// The fixed message of the error.
    pub fn message(self) -> &'static str {
        match self {
            Self::NotACertificate => "the certificate is not a PEM X.509 certificate",
            Self::UnsupportedKey => {
                "the certificate's key must be RSA of 2048 bits or more, or ECDSA P-256 or P-384"
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    Rsa,
    P256,
    P384,
}

/// An identity provider's signing key, from the certificate the org configured.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKey {
    kind: KeyKind,
    public: Vec<u8>,
    certificate_der: Vec<u8>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kind", &self.kind)
            .field("fingerprint", &self.fingerprint())
            .finish()
    }
}

impl SigningKey {
    /// Reads the key of a PEM certificate. Its validity dates are not checked: the certificate
    /// is pinned by configuration, as SAML metadata pins it, not trusted through a chain.
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let (_, pem) = x509_parser::pem::parse_x509_pem(pem.trim().as_bytes())
            .map_err(|_| KeyError::NotACertificate)?;
        if pem.label != "CERTIFICATE" {
            return Err(KeyError::NotACertificate);
        }
        Self::from_der(&pem.contents)
    }

    /// Reads the key of a DER certificate.
    pub fn from_der(der: &[u8]) -> Result<Self, KeyError> {
        let (rest, cert) = x509_parser::certificate::X509Certificate::from_der(der)
            .map_err(|_| KeyError::NotACertificate)?;
        if !rest.is_empty() {
            return Err(KeyError::NotACertificate);
        }
        let spki = cert.public_key();
        let parsed = spki.parsed().map_err(|_| KeyError::UnsupportedKey)?;
        let kind = match parsed {
            x509_parser::public_key::PublicKey::RSA(rsa) if rsa.key_size() >= 2048 => KeyKind::Rsa,
            x509_parser::public_key::PublicKey::EC(_) => {
                let curve = spki
                    .algorithm
                    .parameters
                    .as_ref()
                    .and_then(|params| params.as_oid().ok())
                    .ok_or(KeyError::UnsupportedKey)?;
                if curve == x509_parser::oid_registry::OID_EC_P256 {
                    KeyKind::P256
                } else if curve == x509_parser::oid_registry::OID_NIST_EC_P384 {
                    KeyKind::P384
                } else {
                    return Err(KeyError::UnsupportedKey);
                }
            }
            _ => return Err(KeyError::UnsupportedKey),
        };
        Ok(Self {
            kind,
            public: spki.subject_public_key.data.to_vec(),
            certificate_der: der.to_vec(),
        })
    }

    /// The certificate in DER.
    pub fn certificate_der(&self) -> &[u8] {
        &self.certificate_der
    }

    /// The certificate's SHA-256 fingerprint, lowercase hex.
    pub fn fingerprint(&self) -> String {
        digest::digest(&digest::SHA256, &self.certificate_der)
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    fn algorithm(&self, uri: &str) -> Result<&'static dyn VerificationAlgorithm, DsigError> {
        const MORE: &str = "http://www.w3.org/2001/04/xmldsig-more#";
        let name = uri.strip_prefix(MORE).ok_or(DsigError::Algorithm)?;
        Ok(match (self.kind, name) {
            (KeyKind::Rsa, "rsa-sha256") => &signature::RSA_PKCS1_2048_8192_SHA256,
            (KeyKind::Rsa, "rsa-sha384") => &signature::RSA_PKCS1_2048_8192_SHA384,
            (KeyKind::Rsa, "rsa-sha512") => &signature::RSA_PKCS1_2048_8192_SHA512,
            (KeyKind::P256, "ecdsa-sha256") => &signature::ECDSA_P256_SHA256_FIXED,
            (KeyKind::P384, "ecdsa-sha384") => &signature::ECDSA_P384_SHA384_FIXED,
            _ => return Err(DsigError::Algorithm),
        })
    }
}

fn digest_algorithm(uri: &str) -> Result<&'static digest::Algorithm, DsigError> {
    match uri {
        "http://www.w3.org/2001/04/xmlenc#sha256" => Ok(&digest::SHA256),
        "http://www.w3.org/2001/04/xmldsig-more#sha384" => Ok(&digest::SHA384),
        "http://www.w3.org/2001/04/xmlenc#sha512" => Ok(&digest::SHA512),
        _ => Err(DsigError::Algorithm),
    }
}

fn is_dsig(node: Node<'_, '_>, name: &str) -> bool {
    node.is_element()
        && node.tag_name().namespace() == Some(DSIG_NS)
        && node.tag_name().name() == name
}

/// The element children of `node`, each required to be a `ds:` element named as listed, in
/// order; `optional` names may be missing at the end.
fn dsig_children<'a, 'i>(
    node: Node<'a, 'i>,
    required: &[&str],
    optional: &[&str],
) -> Result<Vec<Node<'a, 'i>>, DsigError> {
    let children: Vec<_> = node.children().filter(Node::is_element).collect();
    if children.len() < required.len() || children.len() > required.len() + optional.len() {
        return Err(DsigError::Structure);
    }
    let names = required.iter().chain(optional);
    if children
        .iter()
        .zip(names)
        .all(|(child, name)| is_dsig(*child, name))
    {
        Ok(children)
    } else {
        Err(DsigError::Structure)
    }
}

fn algorithm_of<'a>(node: Node<'a, '_>) -> Result<&'a str, DsigError> {
    node.attribute("Algorithm").ok_or(DsigError::Structure)
}

/// The prefix list of an exclusive canonicalization step, from its optional
/// `InclusiveNamespaces` child.
fn inclusive_prefixes<'a>(method: Node<'a, '_>) -> Result<Vec<&'a str>, DsigError> {
    if algorithm_of(method)? != c14n::EXCLUSIVE {
        return Err(DsigError::Algorithm);
    }
    let mut children = method.children().filter(Node::is_element);
    let prefixes = match children.next() {
        None => Vec::new(),
        Some(child)
            if child.tag_name().namespace() == Some(c14n::EXCLUSIVE)
                && child.tag_name().name() == "InclusiveNamespaces" =>
        {
            child
                .attribute("PrefixList")
                .unwrap_or("")
                .split_ascii_whitespace()
                .collect()
        }
        Some(_) => return Err(DsigError::Structure),
    };
    if children.next().is_some() {
        return Err(DsigError::Structure);
    }
    Ok(prefixes)
}

fn base64_content(node: Node<'_, '_>) -> Result<Vec<u8>, DsigError> {
    let text: String = node
        .text()
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|_| DsigError::Structure)
}

/// Verifies the enveloped signature of `element` with `key` and returns the element's canonical
/// text without its signature (what the digest covered).
pub fn verify_enveloped(element: Node<'_, '_>, key: &SigningKey) -> Result<String, DsigError> {
    let mut signatures = element.children().filter(|n| is_dsig(*n, "Signature"));
    let signature = signatures.next().ok_or(DsigError::Unsigned)?;
    if signatures.next().is_some() {
        return Err(DsigError::Structure);
    }
    let parts = dsig_children(signature, &["SignedInfo", "SignatureValue"], &["KeyInfo"])?;
    let (signed_info, signature_value) = (parts[0], parts[1]);
    let info = dsig_children(
        signed_info,
        &["CanonicalizationMethod", "SignatureMethod", "Reference"],
        &[],
    )?;
    let info_prefixes = inclusive_prefixes(info[0])?;
    let verifier = key.algorithm(algorithm_of(info[1])?)?;
    if info[1].children().any(|n| n.is_element()) {
        return Err(DsigError::Structure);
    }
    let reference = info[2];

    let id = element
        .attribute("ID")
        .filter(|id| !id.is_empty())
        .ok_or(DsigError::Reference)?;
    let uri = reference.attribute("URI").ok_or(DsigError::Reference)?;
    if uri.strip_prefix('#') != Some(id) {
        return Err(DsigError::Reference);
    }
    let same_id = element
        .document()
        .descendants()
        .filter(|n| {
            n.attributes()
                .any(|a| matches!(a.name(), "ID" | "Id" | "id" | "AssertionID") && a.value() == id)
        })
        .count();
    if same_id != 1 {
        return Err(DsigError::Reference);
    }

    let reference_parts = dsig_children(
        reference,
        &["Transforms", "DigestMethod", "DigestValue"],
        &[],
    )?;
    let transforms = dsig_children(reference_parts[0], &["Transform", "Transform"], &[])?;
    if algorithm_of(transforms[0])? != ENVELOPED || transforms[0].children().any(|n| n.is_element())
    {
        return Err(DsigError::Algorithm);
    }
    let element_prefixes = inclusive_prefixes(transforms[1])?;
    let digest_with = digest_algorithm(algorithm_of(reference_parts[1])?)?;
    let expected_digest = base64_content(reference_parts[2])?;

    let canonical = c14n::exclusive(element, Some(signature.id()), &element_prefixes)?;
    let actual = digest::digest(digest_with, canonical.as_bytes());
    if actual.as_ref() != expected_digest.as_slice() {
        return Err(DsigError::Digest);
    }

    let signed_info_text = c14n::exclusive(signed_info, None, &info_prefixes)?;
    let value = base64_content(signature_value)?;
    UnparsedPublicKey::new(verifier, &key.public)
        .verify(signed_info_text.as_bytes(), &value)
        .map_err(|_| DsigError::Signature)?;
    Ok(canonical)
}
