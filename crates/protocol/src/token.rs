//! Formats of the bearer secrets: API keys, bootstrap tokens, access and refresh tokens.
//!
//! Every secret reads `<kind>_<lookup><secret>`: a kind prefix (`ek`, `ekb`, `eka`, `ekr`, `eks`,
//! `eki`, `ekc`, `ekscim`), then
//! 12 base64url characters of random lookup id (shown in listings so an operator can tell keys
//! apart) and 43 base64url characters (256 bits) of random secret. The server stores only the
//! SHA-256 of the whole text ([`token_hash`]); the text itself is shown once.

use ring::digest;
use ring::rand::SecureRandom;
use zeroize::Zeroizing;

const LOOKUP_BYTES: usize = 9;
const SECRET_BYTES: usize = 32;
/// Length of the lookup id in characters.
pub const LOOKUP_LEN: usize = 12;
const SECRET_LEN: usize = 43;

/// What a bearer secret is for; each kind has its own prefix so one can never pass for another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenKind {
    /// An org API key used by an app backend or operator (`ek_`).
    ApiKey,
    /// A single-use enrollment token minted for one device (`ekb_`).
    Bootstrap,
    /// A short-lived device access token, bound to the device key by proofs (`eka_`).
    Access,
    /// A device refresh credential, rotated on every use (`ekr_`).
    Refresh,
    /// A person's session, held in a cookie (`eks_`).
    Session,
    /// A single-use invitation into an org (`eki_`).
    Invitation,
    /// A login or registration ceremony in progress (`ekc_`).
    Ceremony,
    /// An org's SCIM provisioning token, valid only on `/scim/v2` (`ekscim_`).
    Scim,
}

impl TokenKind {
    /// The prefix, including the trailing underscore.
    pub fn prefix(self) -> &'static str {
        match self {
            Self::ApiKey => "ek_",
            Self::Bootstrap => "ekb_",
            Self::Access => "eka_",
            Self::Refresh => "ekr_",
            Self::Session => "eks_",
            Self::Invitation => "eki_",
            Self::Ceremony => "ekc_",
            Self::Scim => "ekscim_",
        }
    }
}

/// Why a token text was rejected. Never carries the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The text does not have the shape of a token of the expected kind.
    #[error("token is malformed or of the wrong kind")]
    Malformed,
    /// The system random generator failed.
    #[error("random generator failed")]
    Random,
}

/// A freshly minted secret. The text is zeroized on drop and redacted from `Debug`.
pub struct MintedToken {
    kind: TokenKind,
    text: Zeroizing<String>,
}

impl MintedToken {
    /// Mints a new random token of `kind`.
    ///
    /// Fails only if the random generator fails.
    pub fn mint(kind: TokenKind, rng: &dyn SecureRandom) -> Result<Self, TokenError> {
        let mut bytes = Zeroizing::new([0u8; LOOKUP_BYTES + SECRET_BYTES]);
        rng.fill(bytes.as_mut()).map_err(|_| TokenError::Random)?;
        let mut text = Zeroizing::new(String::with_capacity(
            kind.prefix().len() + LOOKUP_LEN + SECRET_LEN,
        ));
        text.push_str(kind.prefix());
        text.push_str(&crate::b64_encode(&bytes[..LOOKUP_BYTES]));
        text.push_str(&crate::b64_encode(&bytes[LOOKUP_BYTES..]));
        Ok(Self { kind, text })
    }

    /// The kind of the token.
    pub fn kind(&self) -> TokenKind {
        self.kind
    }

    /// The full secret text, to hand to its holder exactly once.
    pub fn expose(&self) -> &str {
        &self.text
    }

    /// The public lookup id (safe to show and log).
    pub fn lookup(&self) -> &str {
        let start = self.kind.prefix().len();
        &self.text[start..start + LOOKUP_LEN]
    }

    /// The SHA-256 of the full text, which is what the server stores.
    pub fn hash(&self) -> [u8; 32] {
        token_hash(&self.text)
    }
}

impl std::fmt::Debug for MintedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MintedToken")
            .field("kind", &self.kind)
            .field("lookup", &self.lookup())
            .finish_non_exhaustive()
    }
}

/// A token text checked for shape, borrowed from the request.
#[derive(Clone, Copy)]
pub struct ParsedToken<'a> {
    text: &'a str,
    kind: TokenKind,
}

impl<'a> ParsedToken<'a> {
    /// Checks that `text` is a well-formed token of `kind`.
    ///
    /// Fails with [`TokenError::Malformed`] on a wrong prefix, length or alphabet.
    pub fn parse(text: &'a str, kind: TokenKind) -> Result<Self, TokenError> {
        let body = text
            .strip_prefix(kind.prefix())
            .ok_or(TokenError::Malformed)?;
        let well_formed = body.len() == LOOKUP_LEN + SECRET_LEN
            && body
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !well_formed {
            return Err(TokenError::Malformed);
        }
        Ok(Self { text, kind })
    }

    /// The kind of the token.
    pub fn kind(&self) -> TokenKind {
        self.kind
    }

    /// The public lookup id.
    pub fn lookup(&self) -> &'a str {
        let start = self.kind.prefix().len();
        &self.text[start..start + LOOKUP_LEN]
    }

    /// The SHA-256 of the full text.
    pub fn hash(&self) -> [u8; 32] {
        token_hash(self.text)
    }
}

impl std::fmt::Debug for ParsedToken<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParsedToken")
            .field("kind", &self.kind)
            .field("lookup", &self.lookup())
            .finish_non_exhaustive()
    }
}

/// SHA-256 of a token text: the form in which the server stores every secret.
pub fn token_hash(text: &str) -> [u8; 32] {
    let digest = digest::digest(&digest::SHA256, text.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// The `ath` claim of a proof: unpadded base64url of the SHA-256 of the token text.
pub fn access_token_hash_claim(text: &str) -> String {
    crate::b64_encode(&token_hash(text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use ring::rand::SystemRandom;

    #[test]
    fn minted_token_parses_back_with_same_lookup_and_hash() {
        let rng = SystemRandom::new();
        for kind in [
            TokenKind::ApiKey,
            TokenKind::Bootstrap,
            TokenKind::Access,
            TokenKind::Refresh,
        ] {
            let minted = MintedToken::mint(kind, &rng).unwrap();
            let parsed = ParsedToken::parse(minted.expose(), kind).unwrap();
            assert_eq!(parsed.lookup(), minted.lookup());
            assert_eq!(parsed.hash(), minted.hash());
        }
    }

    #[test]
    fn kind_confusion_is_rejected() {
        let rng = SystemRandom::new();
        let access = MintedToken::mint(TokenKind::Access, &rng).unwrap();
        assert_eq!(
            ParsedToken::parse(access.expose(), TokenKind::Refresh).unwrap_err(),
            TokenError::Malformed
        );
        assert!(ParsedToken::parse(access.expose(), TokenKind::ApiKey).is_err());
        let scim = MintedToken::mint(TokenKind::Scim, &rng).unwrap();
        assert!(ParsedToken::parse(scim.expose(), TokenKind::Scim).is_ok());
        for other in [TokenKind::ApiKey, TokenKind::Session, TokenKind::Access] {
            assert!(ParsedToken::parse(scim.expose(), other).is_err());
        }
    }

    #[test]
    fn debug_never_shows_secret() {
        let rng = SystemRandom::new();
        let minted = MintedToken::mint(TokenKind::ApiKey, &rng).unwrap();
        let secret_part = &minted.expose()[3 + LOOKUP_LEN..];
        assert!(!format!("{minted:?}").contains(secret_part));
    }

    proptest! {
        #[test]
        fn parse_never_panics(text in ".{0,80}") {
            let _ = ParsedToken::parse(&text, TokenKind::ApiKey);
        }

        #[test]
        fn truncated_or_extended_tokens_fail(cut in 0usize..58, extra in "[a-z]{1,3}") {
            let rng = SystemRandom::new();
            let minted = MintedToken::mint(TokenKind::ApiKey, &rng).unwrap();
            let text = minted.expose();
            prop_assert!(ParsedToken::parse(&text[..cut.min(text.len() - 1)], TokenKind::ApiKey).is_err());
            let longer = format!("{text}{extra}");
            prop_assert!(ParsedToken::parse(&longer, TokenKind::ApiKey).is_err());
        }
    }
}
