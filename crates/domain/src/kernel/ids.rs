//! Identifiers that parse at the edge.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a string is not a valid identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("{kind} is empty")]
    Empty { kind: &'static str },
    #[error("{kind} is longer than {max} characters")]
    TooLong { kind: &'static str, max: usize },
    #[error("{kind} contains {found:?}; allowed: {allowed}")]
    InvalidChar {
        kind: &'static str,
        found: char,
        allowed: &'static str,
    },
    #[error("{kind} must start with {allowed}")]
    InvalidStart {
        kind: &'static str,
        allowed: &'static str,
    },
}

/// Checks `s` against a charset: non-empty, bounded, first char alphanumeric.
fn check(
    kind: &'static str,
    s: &str,
    max: usize,
    allowed: &'static str,
    ok: impl Fn(char) -> bool,
    first_ok: impl Fn(char) -> bool,
) -> Result<(), IdError> {
    let Some(first) = s.chars().next() else {
        return Err(IdError::Empty { kind });
    };
    if s.len() > max {
        return Err(IdError::TooLong { kind, max });
    }
    if let Some(found) = s.chars().find(|c| !ok(*c)) {
        return Err(IdError::InvalidChar {
            kind,
            found,
            allowed,
        });
    }
    if !first_ok(first) {
        return Err(IdError::InvalidStart { kind, allowed });
    }
    Ok(())
}

macro_rules! slug_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $max:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Parses an identifier: 1 to the maximum length of ASCII letters, digits, `-` and
            /// `_`, starting with a letter or digit. Tenant and machine ids appear in MQTT
            /// topics, so `/`, `+`, `#` and whitespace must never get in.
            pub fn parse(s: &str) -> Result<Self, IdError> {
                check(
                    $kind,
                    s,
                    $max,
                    "ASCII letters, digits, '-' and '_'",
                    |c| c.is_ascii_alphanumeric() || c == '-' || c == '_',
                    |c| c.is_ascii_alphanumeric(),
                )?;
                Ok(Self(s.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                Self::parse(&s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

slug_id!(
    /// A customer organisation; everything else belongs to exactly one tenant.
    TenantId,
    "tenant id",
    64
);
slug_id!(
    /// A physical site (mine, plant) of a tenant.
    SiteId,
    "site id",
    64
);
slug_id!(
    /// A machine's id, unique within its tenant (`TRUCK-21`).
    MachineId,
    "machine id",
    64
);

/// A metric's name in the catalogue: lower-case snake case (`fuel_rate_lh`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MetricName(String);

impl MetricName {
    pub const MAX_LEN: usize = 64;

    pub fn parse(s: &str) -> Result<Self, IdError> {
        check(
            "metric name",
            s,
            Self::MAX_LEN,
            "lower-case ASCII letters, digits and '_'",
            |c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_',
            |c| c.is_ascii_lowercase(),
        )?;
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for MetricName {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, IdError> {
        Self::parse(&s)
    }
}

impl From<MetricName> for String {
    fn from(m: MetricName) -> String {
        m.0
    }
}

impl fmt::Display for MetricName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn machine_ids_from_the_seed_fleet_parse() {
        for id in ["TRUCK-21", "MILL-3", "BOILER-7", "a", "x_1"] {
            assert_eq!(
                MachineId::parse(id).map(|m| m.to_string()),
                Ok(id.to_owned())
            );
        }
    }

    #[test]
    fn topic_wildcards_and_separators_are_refused() {
        for bad in ["", "a/b", "+", "#", "a b", "-lead", "é", &"x".repeat(65)] {
            assert!(MachineId::parse(bad).is_err(), "{bad:?} must be refused");
            assert!(TenantId::parse(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn metric_names_are_snake_case() {
        assert!(MetricName::parse("fuel_rate_lh").is_ok());
        for bad in ["Rpm", "1rpm", "rpm-x", "", "_rpm"] {
            assert!(MetricName::parse(bad).is_err(), "{bad:?} must be refused");
        }
    }

    proptest! {
        #[test]
        fn machine_id_parse_never_panics_and_roundtrips(s in "\\PC{0,80}") {
            if let Ok(id) = MachineId::parse(&s) {
                prop_assert_eq!(id.as_str(), s.as_str());
                prop_assert!(!id.as_str().contains(['/', '+', '#']));
            }
        }

        #[test]
        fn valid_machine_ids_always_parse(s in "[A-Za-z0-9][A-Za-z0-9_-]{0,63}") {
            prop_assert!(MachineId::parse(&s).is_ok());
        }

        #[test]
        fn metric_parse_accepts_exactly_the_grammar(s in "\\PC{0,70}") {
            let grammar = !s.is_empty()
                && s.len() <= MetricName::MAX_LEN
                && s.starts_with(|c: char| c.is_ascii_lowercase())
                && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            prop_assert_eq!(MetricName::parse(&s).is_ok(), grammar);
        }
    }
}
