//! The `Authorization` header: `aurum_authn::parse_bearer` on any text and `bearer_token` on
//! header maps built from the raw bytes (one or more header lines, as a client may send).
//!
//! Properties: a token is a part of the value, at most `MAX_TOKEN_LEN` bytes, an RFC 6750
//! `b64token` (at least one of its characters, then `=` padding) after a case-insensitive
//! `Bearer` and spaces; rebuilding the header as `Bearer <token>` gives the same token back;
//! `bearer_token` accepts exactly one header and agrees with `parse_bearer` on it.
#![no_main]

use actix_web::http::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use aurum_authn::{bearer_token, parse_bearer};
use libfuzzer_sys::fuzz_target;

/// `bearer.rs`'s limit (not exported).
const MAX_TOKEN_LEN: usize = 16 * 1024;

fuzz_target!(|data: &[u8]| {
    if let Ok(value) = std::str::from_utf8(data) {
        check_value(value);
    }

    // Each line of the input is one Authorization header of a request.
    let mut headers = HeaderMap::new();
    let mut lines = 0;
    for line in data.split(|b| *b == b'\n') {
        if let Ok(v) = HeaderValue::from_bytes(line) {
            headers.append(AUTHORIZATION, v);
            lines += 1;
        }
    }
    let token = bearer_token(&headers);
    if let Some(token) = token {
        assert_eq!(lines, 1, "a token from {lines} Authorization headers");
        let only = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok());
        assert_eq!(only.and_then(parse_bearer), Some(token));
    }
    if lines == 1 {
        let only = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok());
        assert_eq!(token, only.and_then(parse_bearer));
    }
});

fn check_value(value: &str) {
    let Some(token) = parse_bearer(value) else {
        return;
    };
    assert!(!token.is_empty() && token.len() <= MAX_TOKEN_LEN);
    assert!(value.contains(token));
    let (scheme, _) = value.split_once(' ').unwrap_or_default();
    assert!(scheme.eq_ignore_ascii_case("bearer"), "{value:?}");
    let body = token.trim_end_matches('=');
    assert!(!body.is_empty(), "a token of padding only: {value:?}");
    assert!(body
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b)));
    assert!(value.trim_end_matches(' ').ends_with(token));
    assert_eq!(parse_bearer(&format!("Bearer {token}")), Some(token));
    assert_eq!(parse_bearer(&format!("bEaReR   {token}  ")), Some(token));
}
