//! Cross-site request forgery defence for requests a session cookie authenticates: besides
//! the `SameSite=Strict` cookie and the per-session token (checked by the caller), a
//! state-changing request must come from the server's own origin, as the browser reports it in
//! `Sec-Fetch-Site` and `Origin`.

use axum::http::{HeaderMap, Method};

/// Whether `method` changes state (everything but `GET`, `HEAD` and `OPTIONS`).
pub fn changes_state(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Whether a request's browser-reported origin is `expected` (`https://host[:port]`):
/// `Sec-Fetch-Site`, when sent, must be `same-origin`; `Origin`, when sent, must equal
/// `expected`; and at least one of the two must be present (every current browser sends at
/// least one on a state-changing request; a client that sends neither is not a browser and
/// should use an API key).
pub fn is_same_origin(headers: &HeaderMap, expected: &str) -> bool {
    let fetch_site = headers
        .get("sec-fetch-site")
        .map(|v| v.to_str().unwrap_or(""));
    let origin = headers.get("origin").map(|v| v.to_str().unwrap_or(""));
    if fetch_site.is_none() && origin.is_none() {
        return false;
    }
    let site_ok = fetch_site.is_none_or(|site| site == "same-origin");
    let origin_ok = origin.is_none_or(|origin| origin.trim_end_matches('/') == expected);
    site_ok && origin_ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn only_the_own_origin_passes() {
        let own = "https://ml.example.com";
        assert!(is_same_origin(
            &headers(&[("origin", "https://ml.example.com")]),
            own
        ));
        assert!(is_same_origin(
            &headers(&[("sec-fetch-site", "same-origin")]),
            own
        ));
        assert!(is_same_origin(
            &headers(&[
                ("sec-fetch-site", "same-origin"),
                ("origin", "https://ml.example.com")
            ]),
            own
        ));
        assert!(!is_same_origin(&headers(&[]), own), "neither header");
        assert!(!is_same_origin(
            &headers(&[("origin", "https://evil.example")]),
            own
        ));
        assert!(!is_same_origin(&headers(&[("origin", "null")]), own));
        assert!(!is_same_origin(
            &headers(&[("sec-fetch-site", "cross-site")]),
            own
        ));
        assert!(!is_same_origin(
            &headers(&[("sec-fetch-site", "same-site")]),
            own
        ));
        assert!(!is_same_origin(
            &headers(&[
                ("sec-fetch-site", "same-origin"),
                ("origin", "https://ml.example.com.evil")
            ]),
            own
        ));
    }

    #[test]
    fn reads_do_not_change_state() {
        assert!(!changes_state(&Method::GET));
        assert!(!changes_state(&Method::HEAD));
        assert!(changes_state(&Method::POST));
        assert!(changes_state(&Method::DELETE));
        assert!(changes_state(&Method::PUT));
        assert!(changes_state(&Method::PATCH));
    }
}
