//! What a SAML `Response` must prove before anyone is signed in.
//!
//! The envelope (the `Response`) is not signed in the usual IdP configuration and is read only
//! to find the assertion and refuse early (status, destination, issuer, `InResponseTo`). The
//! assertion must carry its own enveloped signature by the org's pinned certificate; every
//! decision is then taken on a fresh parse of the signed canonical bytes:
//! issuer, audience, the bearer confirmation's recipient, `InResponseTo` and expiry, the
//! conditions' validity window, an authentication statement, the name and the attributes.

use base64::Engine as _;
use roxmltree::{Document, Node, ParsingOptions};

use super::SamlRejection;
use super::dsig::{self, SigningKey};

/// The SAML assertion namespace.
pub const ASSERTION_NS: &str = "urn:oasis:names:tc:SAML:2.0:assertion";
/// The SAML protocol namespace.
pub const PROTOCOL_NS: &str = "urn:oasis:names:tc:SAML:2.0:protocol";
const SUCCESS: &str = "urn:oasis:names:tc:SAML:2.0:status:Success";
const BEARER: &str = "urn:oasis:names:tc:SAML:2.0:cm:bearer";
const EMAIL_FORMAT: &str = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress";
const PERSISTENT_FORMAT: &str = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent";

/// Largest decoded response accepted, bytes.
pub const MAX_RESPONSE_BYTES: usize = 48 * 1024;
/// Most XML nodes in a response.
const MAX_NODES: u32 = 4096;
/// Clock skew tolerated on every time check, seconds.
pub const CLOCK_SKEW_SECS: i64 = 60;

const EMAIL_ATTRIBUTES: &[&str] = &[
    "email",
    "mail",
    "emailAddress",
    "urn:oid:0.9.2342.19200300.100.1.3",
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
];
const NAME_ATTRIBUTES: &[&str] = &[
    "displayName",
    "name",
    "cn",
    "urn:oid:2.16.840.1.113730.3.1.241",
    "urn:oid:2.5.4.3",
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name",
];

/// This service provider as one org's IdP knows it.
#[derive(Debug, Clone, Copy)]
pub struct SpEndpoints<'a> {
    /// The SP's entity id (the audience).
    pub entity_id: &'a str,
    /// The assertion consumer service URL (the recipient and destination).
    pub acs_url: &'a str,
}

/// The identity a verified assertion proves.
#[derive(Clone, PartialEq, Eq)]
pub struct SamlIdentity {
    /// The assertion's ID.
    pub assertion_id: String,
    /// The `NameID`.
    pub name_id: String,
    /// The `NameID` when its format is persistent: a stable subject to link the person to.
    pub persistent_name_id: Option<String>,
    /// The email, from an email attribute or an email-format `NameID`, lowercased.
    pub email: Option<String>,
    /// A display name, when the IdP sent one.
    pub display_name: Option<String>,
    /// Until when the assertion could be presented (Unix seconds).
    pub valid_until: i64,
}

impl std::fmt::Debug for SamlIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SamlIdentity")
            .field("valid_until", &self.valid_until)
            .finish_non_exhaustive()
    }
}

fn parse(text: &str) -> Result<Document<'_>, SamlRejection> {
    let options = ParsingOptions {
        allow_dtd: false,
        nodes_limit: MAX_NODES,
        ..ParsingOptions::default()
    };
    Document::parse_with_options(text, options).map_err(|_| SamlRejection::Malformed)
}

fn is(node: Node<'_, '_>, namespace: &str, name: &str) -> bool {
    node.is_element()
        && node.tag_name().namespace() == Some(namespace)
        && node.tag_name().name() == name
}

fn children<'a, 'i>(
    node: Node<'a, 'i>,
    namespace: &'a str,
    name: &'a str,
) -> impl Iterator<Item = Node<'a, 'i>> + 'a {
    node.children().filter(move |n| is(*n, namespace, name))
}

fn child<'a, 'i>(node: Node<'a, 'i>, namespace: &'a str, name: &'a str) -> Option<Node<'a, 'i>> {
    children(node, namespace, name).next()
}

fn text_of<'a>(node: Node<'a, '_>) -> &'a str {
    node.text().unwrap_or("").trim()
}

/// Reads an `xs:dateTime` in UTC as Unix seconds.
fn instant(text: &str) -> Result<i64, SamlRejection> {
    chrono::DateTime::parse_from_rfc3339(text.trim())
        .map(|t| t.timestamp())
        .map_err(|_| SamlRejection::Content)
}

/// Decodes the `SAMLResponse` form field.
pub fn decode(field: &str) -> Result<String, SamlRejection> {
    let compact: String = field.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    if compact.len() > MAX_RESPONSE_BYTES.div_ceil(3) * 4 {
        return Err(SamlRejection::Malformed);
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(compact)
        .map_err(|_| SamlRejection::Malformed)?;
    String::from_utf8(bytes).map_err(|_| SamlRejection::Malformed)
}

/// Verifies a decoded `Response` for the request `request_id`, signed by `key` for the IdP
/// `idp_entity_id`, at time `now` (Unix seconds).
pub fn verify_response(
    xml: &str,
    idp_entity_id: &str,
    key: &SigningKey,
    sp: SpEndpoints<'_>,
    request_id: &str,
    now: i64,
) -> Result<SamlIdentity, SamlRejection> {
    if xml.len() > MAX_RESPONSE_BYTES {
        return Err(SamlRejection::Malformed);
    }
    let document = parse(xml)?;
    let response = document.root_element();
    if !is(response, PROTOCOL_NS, "Response") || response.attribute("Version") != Some("2.0") {
        return Err(SamlRejection::Structure);
    }
    if response
        .attribute("Destination")
        .is_some_and(|d| d != sp.acs_url)
    {
        return Err(SamlRejection::Recipient);
    }
    if response
        .attribute("InResponseTo")
        .is_some_and(|r| r != request_id)
    {
        return Err(SamlRejection::InResponseTo);
    }
    if child(response, ASSERTION_NS, "Issuer").is_some_and(|i| text_of(i) != idp_entity_id) {
        return Err(SamlRejection::Issuer);
    }
    let status = child(response, PROTOCOL_NS, "Status")
        .and_then(|s| child(s, PROTOCOL_NS, "StatusCode"))
        .and_then(|c| c.attribute("Value"));
    if status != Some(SUCCESS) {
        return Err(SamlRejection::ProviderRefused);
    }
    if child(response, ASSERTION_NS, "EncryptedAssertion").is_some() {
        return Err(SamlRejection::Encrypted);
    }
    let mut assertions = children(response, ASSERTION_NS, "Assertion");
    let assertion = assertions.next().ok_or(SamlRejection::Structure)?;
    if assertions.next().is_some() {
        return Err(SamlRejection::Structure);
    }
    let signed = dsig::verify_enveloped(assertion, key)?;
    read_signed_assertion(&signed, idp_entity_id, sp, request_id, now)
}

/// Takes every decision on the signed bytes alone.
fn read_signed_assertion(
    signed: &str,
    idp_entity_id: &str,
    sp: SpEndpoints<'_>,
    request_id: &str,
    now: i64,
) -> Result<SamlIdentity, SamlRejection> {
    let document = parse(signed)?;
    let assertion = document.root_element();
    if !is(assertion, ASSERTION_NS, "Assertion") || assertion.attribute("Version") != Some("2.0") {
        return Err(SamlRejection::Structure);
    }
    let assertion_id = assertion.attribute("ID").ok_or(SamlRejection::Structure)?;
    let issuer = child(assertion, ASSERTION_NS, "Issuer").ok_or(SamlRejection::Issuer)?;
    if text_of(issuer) != idp_entity_id {
        return Err(SamlRejection::Issuer);
    }

    let conditions = child(assertion, ASSERTION_NS, "Conditions").ok_or(SamlRejection::Audience)?;
    let mut valid_until = match conditions.attribute("NotOnOrAfter") {
        Some(text) => instant(text)?,
        None => i64::MAX,
    };
    let not_before = conditions.attribute("NotBefore").map(instant).transpose()?;
    if not_before.is_some_and(|at| at > now + CLOCK_SKEW_SECS) {
        return Err(SamlRejection::NotYetValid);
    }
    let restrictions: Vec<_> = children(conditions, ASSERTION_NS, "AudienceRestriction").collect();
    let audience_ok = !restrictions.is_empty()
        && restrictions.iter().all(|restriction| {
            children(*restriction, ASSERTION_NS, "Audience").any(|a| text_of(a) == sp.entity_id)
        });
    if !audience_ok {
        return Err(SamlRejection::Audience);
    }

    let subject = child(assertion, ASSERTION_NS, "Subject").ok_or(SamlRejection::Content)?;
    let name_id = child(subject, ASSERTION_NS, "NameID").ok_or(SamlRejection::Content)?;
    let confirmation_until = bearer_confirmation(subject, sp, request_id, now)?;
    valid_until = valid_until.min(confirmation_until);
    if valid_until <= now - CLOCK_SKEW_SECS {
        return Err(SamlRejection::Expired);
    }
    if child(assertion, ASSERTION_NS, "AuthnStatement").is_none() {
        return Err(SamlRejection::Content);
    }

    let name = text_of(name_id);
    if name.is_empty() {
        return Err(SamlRejection::Content);
    }
    let email = attribute_value(assertion, EMAIL_ATTRIBUTES)
        .or_else(|| (name_id.attribute("Format") == Some(EMAIL_FORMAT)).then_some(name))
        .map(str::to_ascii_lowercase);
    Ok(SamlIdentity {
        assertion_id: assertion_id.to_owned(),
        name_id: name.to_owned(),
        persistent_name_id: (name_id.attribute("Format") == Some(PERSISTENT_FORMAT))
            .then(|| name.to_owned()),
        email,
        display_name: attribute_value(assertion, NAME_ATTRIBUTES).map(str::to_owned),
        valid_until,
    })
}

/// The expiry of the bearer confirmation that fits this request and endpoint. Several
/// confirmations may be present; one must fit in every respect.
fn bearer_confirmation(
    subject: Node<'_, '_>,
    sp: SpEndpoints<'_>,
    request_id: &str,
    now: i64,
) -> Result<i64, SamlRejection> {
    let mut refusal = SamlRejection::Content;
    for confirmation in children(subject, ASSERTION_NS, "SubjectConfirmation") {
        if confirmation.attribute("Method") != Some(BEARER) {
            continue;
        }
        let Some(data) = child(confirmation, ASSERTION_NS, "SubjectConfirmationData") else {
            continue;
        };
        if data.attribute("Recipient") != Some(sp.acs_url) {
            refusal = SamlRejection::Recipient;
            continue;
        }
        if data.attribute("InResponseTo") != Some(request_id) {
            refusal = SamlRejection::InResponseTo;
            continue;
        }
        if data.attribute("NotBefore").is_some() {
            refusal = SamlRejection::Content;
            continue;
        }
        let Some(until) = data.attribute("NotOnOrAfter") else {
            refusal = SamlRejection::Content;
            continue;
        };
        let until = instant(until)?;
        if until <= now - CLOCK_SKEW_SECS {
            refusal = SamlRejection::Expired;
            continue;
        }
        return Ok(until);
    }
    Err(refusal)
}

/// The first non-empty value of the first attribute named one of `names`.
fn attribute_value<'a>(assertion: Node<'a, '_>, names: &[&str]) -> Option<&'a str> {
    let statement = child(assertion, ASSERTION_NS, "AttributeStatement")?;
    names.iter().find_map(|wanted| {
        children(statement, ASSERTION_NS, "Attribute")
            .filter(|attribute| attribute.attribute("Name") == Some(*wanted))
            .flat_map(|attribute| children(attribute, ASSERTION_NS, "AttributeValue"))
            .map(text_of)
            .find(|value| !value.is_empty())
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::super::DsigError;
    use super::*;

    fn key() -> SigningKey {
        let cert = rcgen::CertificateParams::new(vec!["idp.test".to_owned()])
            .unwrap()
            .self_signed(&rcgen::KeyPair::generate().unwrap())
            .unwrap();
        SigningKey::from_pem(&cert.pem()).unwrap()
    }

    const SP: SpEndpoints<'static> = SpEndpoints {
        entity_id: "https://sp.test/metadata",
        acs_url: "https://sp.test/acs",
    };

    fn response(assertion: &str) -> String {
        format!(
            "<samlp:Response xmlns:samlp=\"{PROTOCOL_NS}\" xmlns:saml=\"{ASSERTION_NS}\" \
             Version=\"2.0\" ID=\"r1\"><saml:Issuer>https://idp.test</saml:Issuer>\
             <samlp:Status><samlp:StatusCode Value=\"{SUCCESS}\"/></samlp:Status>{assertion}\
             </samlp:Response>"
        )
    }

    fn verify(xml: &str) -> Result<SamlIdentity, SamlRejection> {
        verify_response(xml, "https://idp.test", &key(), SP, "ekc_1", 0)
    }

    #[test]
    fn the_envelope_is_checked_before_any_signature() {
        let unsigned = "<saml:Assertion Version=\"2.0\" ID=\"a1\"><saml:Issuer>https://idp.test</saml:Issuer></saml:Assertion>";
        assert_eq!(
            verify(&response(unsigned)),
            Err(SamlRejection::Signature(DsigError::Unsigned))
        );
        assert_eq!(verify(&response("")), Err(SamlRejection::Structure));
        assert_eq!(
            verify(&response(&format!("{unsigned}{unsigned}"))),
            Err(SamlRejection::Structure)
        );
        let encrypted = "<saml:EncryptedAssertion/>";
        assert_eq!(verify(&response(encrypted)), Err(SamlRejection::Encrypted));
        let refused =
            response(unsigned).replace(SUCCESS, "urn:oasis:names:tc:SAML:2.0:status:Requester");
        assert_eq!(verify(&refused), Err(SamlRejection::ProviderRefused));
        let elsewhere =
            response(unsigned).replace("ID=\"r1\"", "ID=\"r1\" Destination=\"https://x.test/acs\"");
        assert_eq!(verify(&elsewhere), Err(SamlRejection::Recipient));
        let other = response(unsigned).replace("ID=\"r1\"", "ID=\"r1\" InResponseTo=\"ekc_2\"");
        assert_eq!(verify(&other), Err(SamlRejection::InResponseTo));
        assert_eq!(verify("<not xml"), Err(SamlRejection::Malformed));
        let bomb = format!(
            "<!DOCTYPE r [<!ENTITY a \"aaaa\"><!ENTITY b \"&a;&a;&a;\">]>{}",
            response(unsigned)
        );
        assert_eq!(verify(&bomb), Err(SamlRejection::Malformed));
    }

    #[test]
    fn oversized_and_undecodable_fields_are_malformed() {
        assert_eq!(decode("not base64!"), Err(SamlRejection::Malformed));
        assert_eq!(
            decode(&"A".repeat(MAX_RESPONSE_BYTES * 2)),
            Err(SamlRejection::Malformed)
        );
        assert_eq!(decode("//79"), Err(SamlRejection::Malformed));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Arbitrary text, and arbitrary damage to a response, is refused with a typed
        /// rejection and never panics.
        #[test]
        fn untrusted_text_never_panics(text in ".{0,400}", cut in 0usize..400, insert in ".{0,20}") {
            let _ = verify(&text);
            let _ = decode(&text);
            let base = response("<saml:Assertion Version=\"2.0\" ID=\"a1\"><ds:Signature xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\"><ds:SignedInfo/></ds:Signature></saml:Assertion>");
            let at = cut.min(base.len());
            if base.is_char_boundary(at) {
                let damaged = format!("{}{insert}{}", &base[..at], &base[at..]);
                prop_assert!(verify(&damaged).is_err());
            }
        }
    }
}
