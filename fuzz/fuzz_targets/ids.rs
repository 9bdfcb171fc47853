//! Identifiers and names parsed at the edge (`crates/domain/src/kernel/`): `TenantId`,
//! `SiteId`, `MachineId` and `MetricName::parse`, `MachineType` and `Role` (`FromStr`), and
//! their serde forms (they come in JSON bodies, tokens and CSV headers).
//!
//! Properties: each parser accepts exactly its documented grammar (an independent predicate
//! here); parse -> display -> parse gives the same value and the same text; serde accepts what
//! `parse` accepts and round-trips; errors name what they found.
#![no_main]

use std::fmt::Display;
use std::str::FromStr;

use aurum_domain::{IdError, MachineId, MachineType, MetricName, Role, SiteId, TenantId};
use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;
use serde::Serialize;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let slug = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    let slug_ok =
        s.len() <= 64 && s.starts_with(|c: char| c.is_ascii_alphanumeric()) && s.chars().all(slug);
    let metric_ok = s.len() <= MetricName::MAX_LEN
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');

    check_id(s, slug_ok, TenantId::parse, TenantId::as_str);
    check_id(s, slug_ok, SiteId::parse, SiteId::as_str);
    check_id(s, slug_ok, MachineId::parse, MachineId::as_str);
    check_id(s, metric_ok, MetricName::parse, MetricName::as_str);

    check_enum::<MachineType>(s, MachineType::ALL.iter().any(|t| t.as_str() == s));
    check_enum::<Role>(
        s,
        matches!(s, "viewer" | "operator" | "admin" | "platform_admin"),
    );
});

fn check_id<T>(
    s: &str,
    grammar: bool,
    parse: fn(&str) -> Result<T, IdError>,
    as_str: fn(&T) -> &str,
) where
    T: Display + PartialEq + std::fmt::Debug + Serialize + DeserializeOwned,
{
    let parsed = parse(s);
    assert_eq!(parsed.is_ok(), grammar, "{s:?}: {parsed:?}");
    let from_json = serde_json::from_value::<T>(serde_json::Value::String(s.to_owned()));
    assert_eq!(
        from_json.is_ok(),
        grammar,
        "serde disagrees with parse on {s:?}"
    );
    match parsed {
        Ok(id) => {
            assert_eq!(as_str(&id), s);
            let shown = id.to_string();
            assert_eq!(shown, s);
            assert_eq!(parse(&shown).as_ref(), Ok(&id));
            assert_eq!(from_json.ok().as_ref(), Some(&id));
            let json = serde_json::to_value(&id).ok();
            assert_eq!(json, Some(serde_json::Value::String(s.to_owned())));
        }
        Err(e) => {
            let text = e.to_string();
            assert!(!text.is_empty());
            match e {
                IdError::Empty { .. } => assert!(s.is_empty()),
                IdError::TooLong { max, .. } => assert!(s.len() > max),
                IdError::InvalidChar { found, .. } => assert!(s.contains(found)),
                IdError::InvalidStart { .. } => assert!(!s.is_empty()),
            }
        }
    }
}

fn check_enum<T>(s: &str, known: bool)
where
    T: FromStr + Display + PartialEq + std::fmt::Debug + Serialize + DeserializeOwned,
    T::Err: Display,
{
    let parsed = s.parse::<T>();
    assert_eq!(parsed.is_ok(), known, "{s:?}");
    let from_json = serde_json::from_value::<T>(serde_json::Value::String(s.to_owned()));
    match (parsed, from_json) {
        (Ok(v), Ok(w)) => {
            assert_eq!(v, w);
            assert_eq!(v.to_string(), s);
            assert_eq!(
                serde_json::to_value(&v).ok(),
                Some(serde_json::Value::String(s.to_owned()))
            );
        }
        (Err(e), Err(_)) => assert!(!e.to_string().is_empty()),
        (p, j) => panic!(
            "FromStr and serde disagree on {s:?}: {:?} vs {:?}",
            p.is_ok(),
            j.is_ok()
        ),
    }
}
