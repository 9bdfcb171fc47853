//! The `Authorization: Bearer <token>` header (RFC 6750 section 2.1).

use actix_web::http::header::{HeaderMap, AUTHORIZATION};

/// The token of an `Authorization: Bearer` header, if there is exactly one well-formed one.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let mut values = headers.get_all(AUTHORIZATION);
    let first = values.next()?;
    if values.next().is_some() {
        return None;
    }
    parse_bearer(first.to_str().ok()?)
}

/// Parses the value of an `Authorization` header: the scheme `Bearer` (any case), one or more
/// spaces, then a token of RFC 6750 `b64token` characters. Anything else is `None`.
pub fn parse_bearer(value: &str) -> Option<&str> {
    let (scheme, rest) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = rest.trim_start_matches(' ').trim_end_matches(' ');
    // b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=": padding alone
    // is not a token.
    let body = token.trim_end_matches('=');
    let valid = !body.is_empty()
        && token.len() <= MAX_TOKEN_LEN
        && body.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        });
    valid.then_some(token)
}

/// Tokens longer than this are refused before any parsing.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_the_usual_forms() {
        assert_eq!(parse_bearer("Bearer abc.def.ghi"), Some("abc.def.ghi"));
        assert_eq!(parse_bearer("bearer abc"), Some("abc"));
        assert_eq!(parse_bearer("BEARER  abc== "), Some("abc=="));
    }

    #[test]
    fn refuses_other_schemes_and_junk() {
        for bad in [
            "",
            "Bearer",
            "Bearer ",
            "Basic abc",
            "Bearerabc",
            "Bearer a b",
            "Bearer a\tb",
            "Bearer =abc",
            "Bearer =",
            "bearer  ==",
        ] {
            assert_eq!(parse_bearer(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn two_authorization_headers_are_refused() {
        use actix_web::http::header::HeaderValue;
        let mut headers = HeaderMap::new();
        headers.append(AUTHORIZATION, HeaderValue::from_static("Bearer a"));
        assert_eq!(bearer_token(&headers), Some("a"));
        headers.append(AUTHORIZATION, HeaderValue::from_static("Bearer b"));
        assert_eq!(bearer_token(&headers), None);
    }

    proptest! {
        #[test]
        fn never_panics_and_returns_a_substring(value in ".{0,200}") {
            if let Some(token) = parse_bearer(&value) {
                prop_assert!(value.contains(token));
                prop_assert!(!token.is_empty());
                prop_assert!(!token.contains(' '));
            }
        }

        #[test]
        fn round_trips_any_b64token(token in "[A-Za-z0-9._~+/-]{1,300}={0,2}", scheme in "(?i)bearer", spaces in " {1,3}") {
            let header = format!("{scheme}{spaces}{token}");
            prop_assert_eq!(parse_bearer(&header), Some(token.as_str()));
        }

        #[test]
        fn other_schemes_never_match(scheme in "[A-Za-z]{1,10}", token in "[A-Za-z0-9]{1,20}") {
            prop_assume!(!scheme.eq_ignore_ascii_case("bearer"));
            let header = format!("{scheme} {token}");
            prop_assert_eq!(parse_bearer(&header), None);
        }
    }
}
