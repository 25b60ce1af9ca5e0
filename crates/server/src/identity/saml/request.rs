//! What this service provider sends: the `AuthnRequest` (HTTP-Redirect binding: raw DEFLATE,
//! base64, URL-encoded into `SAMLRequest`) and the SP metadata an IdP imports.
//!
//! Requests are not signed: the IdP learns the ACS URL from the metadata it was given, and the
//! response is bound to the request by `InResponseTo` and to the browser by a cookie.

use std::io::Write as _;

use base64::Engine as _;

use super::response::{ASSERTION_NS, PROTOCOL_NS, SpEndpoints};

const POST_BINDING: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST";
const EMAIL_FORMAT: &str = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress";

/// Escapes text for an XML attribute value or element content.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

fn instant(at: i64) -> String {
    chrono::DateTime::from_timestamp(at, 0)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// The `AuthnRequest` document.
pub fn authn_request(sp: SpEndpoints<'_>, request_id: &str, destination: &str, now: i64) -> String {
    format!(
        "<samlp:AuthnRequest xmlns:samlp=\"{PROTOCOL_NS}\" xmlns:saml=\"{ASSERTION_NS}\" \
         ID=\"{id}\" Version=\"2.0\" IssueInstant=\"{at}\" Destination=\"{destination}\" \
         AssertionConsumerServiceURL=\"{acs}\" ProtocolBinding=\"{POST_BINDING}\">\
         <saml:Issuer>{issuer}</saml:Issuer>\
         <samlp:NameIDPolicy Format=\"{EMAIL_FORMAT}\" AllowCreate=\"true\"/>\
         </samlp:AuthnRequest>",
        id = escape(request_id),
        at = instant(now),
        destination = escape(destination),
        acs = escape(sp.acs_url),
        issuer = escape(sp.entity_id),
    )
}

/// The URL that sends the browser to the IdP's SSO service with the request.
pub fn redirect_url(
    sp: SpEndpoints<'_>,
    request_id: &str,
    sso_url: &url::Url,
    now: i64,
) -> Result<String, std::io::Error> {
    let document = authn_request(sp, request_id, sso_url.as_str(), now);
    let mut encoder =
        flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(document.as_bytes())?;
    let deflated = encoder.finish()?;
    let encoded = base64::engine::general_purpose::STANDARD.encode(deflated);
    let mut url = sso_url.clone();
    url.query_pairs_mut().append_pair("SAMLRequest", &encoded);
    Ok(url.into())
}

/// The SP metadata: entity id, the HTTP-POST assertion consumer service, signed assertions
/// wanted, email `NameID`s preferred.
pub fn metadata(sp: SpEndpoints<'_>) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <md:EntityDescriptor xmlns:md=\"urn:oasis:names:tc:SAML:2.0:metadata\" entityID=\"{entity}\">\
         <md:SPSSODescriptor AuthnRequestsSigned=\"false\" WantAssertionsSigned=\"true\" \
         protocolSupportEnumeration=\"urn:oasis:names:tc:SAML:2.0:protocol\">\
         <md:NameIDFormat>{EMAIL_FORMAT}</md:NameIDFormat>\
         <md:AssertionConsumerService Binding=\"{POST_BINDING}\" Location=\"{acs}\" index=\"0\" isDefault=\"true\"/>\
         </md:SPSSODescriptor></md:EntityDescriptor>\n",
        entity = escape(sp.entity_id),
        acs = escape(sp.acs_url),
    )
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use super::*;

    #[test]
    fn the_redirect_carries_a_deflated_request_that_parses() {
        let sp = SpEndpoints {
            entity_id: "https://sp.test/v1/auth/saml/org_1/metadata",
            acs_url: "https://sp.test/v1/auth/saml/org_1/acs",
        };
        let sso = url::Url::parse("https://idp.test/sso?tenant=a&b=1").unwrap();
        let url = url::Url::parse(&redirect_url(sp, "ekc_abc", &sso, 0).unwrap()).unwrap();
        assert_eq!(
            url.query_pairs().find(|(k, _)| k == "tenant").unwrap().1,
            "a"
        );
        let encoded = url
            .query_pairs()
            .find(|(k, _)| k == "SAMLRequest")
            .unwrap()
            .1;
        let deflated = base64::engine::general_purpose::STANDARD
            .decode(encoded.as_bytes())
            .unwrap();
        let mut xml = String::new();
        flate2::read::DeflateDecoder::new(&deflated[..])
            .read_to_string(&mut xml)
            .unwrap();
        let doc = roxmltree::Document::parse(&xml).unwrap();
        let root = doc.root_element();
        assert_eq!(root.attribute("ID"), Some("ekc_abc"));
        assert_eq!(
            root.attribute("AssertionConsumerServiceURL"),
            Some(sp.acs_url)
        );
        assert_eq!(root.attribute("IssueInstant"), Some("1970-01-01T00:00:00Z"));
        assert!(
            xml.contains("<saml:Issuer>https://sp.test/v1/auth/saml/org_1/metadata</saml:Issuer>")
        );
    }

    #[test]
    fn metadata_escapes_what_it_embeds() {
        let sp = SpEndpoints {
            entity_id: "https://sp.test/\"x\"&<",
            acs_url: "https://sp.test/acs",
        };
        let xml = metadata(sp);
        let doc = roxmltree::Document::parse(&xml).unwrap();
        assert_eq!(doc.root_element().attribute("entityID"), Some(sp.entity_id));
    }
}
