//! Token signing keys: RS256 key pairs generated here (OpenSSL), stored in the database
//! (optionally encrypted at rest), published in the JWKS, rotated on demand.
//!
//! Rotation adds a new key that signs from then on; older keys stop signing but stay
//! published until the last token they signed has expired. Every replica reloads the key set
//! periodically and whenever it meets a `kid` it does not know.
//!
//! Rotation is bounded: at most one per [`MIN_ROTATION_INTERVAL`] and never past
//! [`MAX_PUBLISHED_KEYS`] published keys. Unbounded, a loop of rotations would grow the JWKS
//! past what the verifiers accept and every token would fail, platform-wide.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use aurum_ports::auth::{SigningKeyRecord, SigningKeyStore};
use aurum_ports::StoreError;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use hkdf::Hkdf;
use jsonwebtoken::{DecodingKey, EncodingKey};
use openssl::pkey::PKey;
use openssl::rsa::Rsa;
use openssl::symm::{decrypt_aead, encrypt_aead, Cipher};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const RSA_BITS: u32 = 2048;
/// The least time between two rotations (measured from the newest key, so across replicas).
pub const MIN_ROTATION_INTERVAL: Duration = Duration::from_secs(60);
/// The most keys the JWKS publishes: the signing one and those whose tokens may still be
/// valid. About 0.5 KiB each, far below the verifiers' 256 KiB limit.
pub const MAX_PUBLISHED_KEYS: usize = 4;
/// Sealed under the HKDF-derived key (what `seal` writes).
const SEALED_V2: &str = "enc:v2:";
/// Sealed under the bare SHA-256 of the secret, before the KDF: still opened, never written.
const SEALED_V1: &str = "enc:v1:";
/// A replica looks for keys another replica added at most this often on an unknown `kid`.
const MIN_RELOAD_INTERVAL: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("key material: {0}")]
    Crypto(String),
    #[error("no signing key is available")]
    NoSigningKey,
    #[error("the last rotation was less than {min_interval_s} s ago; retry in {retry_after_s} s")]
    TooSoon {
        retry_after_s: u64,
        min_interval_s: u64,
    },
    #[error(
        "{published} keys are published (at most {MAX_PUBLISHED_KEYS}); the oldest expires in \
         {retry_after_s} s"
    )]
    TooManyKeys {
        published: usize,
        retry_after_s: u64,
    },
}

fn crypto(e: impl std::fmt::Display) -> KeyError {
    KeyError::Crypto(e.to_string())
}

/// A key ready to sign and verify.
pub struct LoadedKey {
    pub kid: String,
    pub encoding: EncodingKey,
    pub decoding: DecodingKey,
    pub jwk: Value,
    pub created_at: DateTime<Utc>,
    pub retire_after: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for LoadedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedKey")
            .field("kid", &self.kid)
            .field("created_at", &self.created_at)
            .field("retire_after", &self.retire_after)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl LoadedKey {
    fn signs_at(&self, now: DateTime<Utc>) -> bool {
        self.retire_after.is_none_or(|r| r > now) && self.created_at <= now
    }
}

#[derive(Debug)]
struct Loaded {
    keys: Vec<Arc<LoadedKey>>,
    at: Instant,
}

/// The AES-256-GCM keys derived from `auth.key_encryption_key`.
#[derive(Clone, Copy)]
struct Kek {
    /// HKDF-SHA256 (RFC 5869) of the secret: seals and opens `enc:v2:`.
    current: [u8; 32],
    /// SHA-256 of the secret: opens `enc:v1:` keys sealed before the KDF, until they expire.
    legacy: [u8; 32],
}

impl Kek {
    fn derive(secret: &SecretString) -> Self {
        let ikm = secret.expose_secret().as_bytes();
        let mut current = [0u8; 32];
        // 32 bytes is far below HKDF-SHA256's 8160-byte limit: expand cannot fail.
        let _ = Hkdf::<Sha256>::new(Some(b"aurum-auth key-encryption-key"), ikm)
            .expand(b"aes-256-gcm signing keys v2", &mut current);
        let mut legacy = [0u8; 32];
        legacy.copy_from_slice(&Sha256::digest(ikm));
        Self { current, legacy }
    }
}

/// The published key set and the current signing key.
pub struct KeyRing {
    store: Arc<dyn SigningKeyStore>,
    kek: Option<Kek>,
    /// How long after its retirement a key may still have valid tokens out there.
    max_token_lifetime: chrono::Duration,
    loaded: RwLock<Loaded>,
    /// One rotation at a time in this replica, so the limits are checked against the keys the
    /// previous rotation added (the store serialises replicas).
    rotating: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("encrypted_at_rest", &self.kek.is_some())
            .field("max_token_lifetime", &self.max_token_lifetime)
            .finish()
    }
}

impl KeyRing {
    pub fn new(
        store: Arc<dyn SigningKeyStore>,
        key_encryption_key: Option<&SecretString>,
        max_token_lifetime: Duration,
    ) -> Self {
        let kek = key_encryption_key.map(Kek::derive);
        Self {
            store,
            kek,
            max_token_lifetime: chrono::Duration::from_std(max_token_lifetime)
                .unwrap_or(chrono::Duration::hours(1)),
            loaded: RwLock::new(Loaded {
                keys: Vec::new(),
                at: Instant::now(),
            }),
            rotating: tokio::sync::Mutex::new(()),
        }
    }

    /// Loads the key set and creates the first key when none signs.
    pub async fn ensure_signing_key(&self) -> Result<(), KeyError> {
        self.reload().await?;
        if self.signing_key().is_err() {
            let _one = self.rotating.lock().await;
            self.add_signing_key(Utc::now()).await?;
        }
        Ok(())
    }

    /// Adds a new signing key; the previous ones stay published until their tokens expired.
    /// Refused when the last rotation is too recent or the JWKS is full.
    pub async fn rotate(&self) -> Result<String, KeyError> {
        let _one = self.rotating.lock().await;
        let now = Utc::now();
        let published = self.store.published_keys(now).await?;
        rotation_allowed(&published, now)?;
        self.add_signing_key(now).await
    }

    async fn add_signing_key(&self, now: DateTime<Utc>) -> Result<String, KeyError> {
        // RSA generation takes tens of milliseconds of CPU: not on an HTTP worker.
        let kek = self.kek;
        let record = tokio::task::spawn_blocking(move || generate(kek.map(|k| k.current), now))
            .await
            .map_err(crypto)??;
        let kid = record.kid.clone();
        // Leeway on top of the lifetime: a token signed a moment ago is still verifiable.
        let old_expire = now + self.max_token_lifetime + chrono::Duration::seconds(60);
        self.store.add_key(&record, old_expire).await?;
        self.reload().await?;
        tracing::info!(kid = %kid, "signing key rotated");
        Ok(kid)
    }

    /// Re-reads the published keys from the store.
    pub async fn reload(&self) -> Result<(), KeyError> {
        let records = self.store.published_keys(Utc::now()).await?;
        let mut keys = Vec::with_capacity(records.len());
        for r in records {
            match self.load(&r) {
                Ok(k) => keys.push(Arc::new(k)),
                // One unreadable key (e.g. encrypted under another key-encryption key) must
                // not take the others down.
                Err(e) => tracing::error!(kid = %r.kid, error = %e, "cannot load signing key"),
            }
        }
        let mut loaded = self.loaded.write().unwrap_or_else(|p| p.into_inner());
        loaded.keys = keys;
        loaded.at = Instant::now();
        Ok(())
    }

    fn keys(&self) -> Vec<Arc<LoadedKey>> {
        self.loaded
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .keys
            .clone()
    }

    /// The newest key that signs now.
    pub fn signing_key(&self) -> Result<Arc<LoadedKey>, KeyError> {
        let now = Utc::now();
        self.keys()
            .into_iter()
            .filter(|k| k.signs_at(now))
            .max_by_key(|k| k.created_at)
            .ok_or(KeyError::NoSigningKey)
    }

    /// The key with this `kid`, reloading once (rate-limited) when it is unknown: another
    /// replica may have rotated.
    pub async fn verification_key(&self, kid: &str) -> Option<Arc<LoadedKey>> {
        let now = Utc::now();
        let find = |keys: Vec<Arc<LoadedKey>>| {
            keys.into_iter()
                .find(|k| k.kid == kid && k.expires_at.is_none_or(|e| e > now))
        };
        if let Some(k) = find(self.keys()) {
            return Some(k);
        }
        let stale = self
            .loaded
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .at
            .elapsed()
            >= MIN_RELOAD_INTERVAL;
        if stale {
            if let Err(e) = self.reload().await {
                tracing::warn!(error = %e, "cannot reload signing keys");
            }
            return find(self.keys());
        }
        None
    }

    /// The JWKS document: every published key.
    pub fn jwks(&self) -> Value {
        let now = Utc::now();
        let keys: Vec<Value> = self
            .keys()
            .iter()
            .filter(|k| k.expires_at.is_none_or(|e| e > now))
            .map(|k| k.jwk.clone())
            .collect();
        json!({ "keys": keys })
    }

    fn load(&self, r: &SigningKeyRecord) -> Result<LoadedKey, KeyError> {
        let pem = unseal(self.kek.as_ref(), &r.private_key)?;
        let rsa = PKey::private_key_from_pem(&pem)
            .and_then(|k| k.rsa())
            .map_err(crypto)?;
        let der = rsa.private_key_to_der().map_err(crypto)?;
        let decoding = DecodingKey::from_rsa_raw_components(&rsa.n().to_vec(), &rsa.e().to_vec());
        Ok(LoadedKey {
            kid: r.kid.clone(),
            encoding: EncodingKey::from_rsa_der(&der),
            decoding,
            jwk: r.public_jwk.clone(),
            created_at: r.created_at,
            retire_after: r.retire_after,
            expires_at: r.expires_at,
        })
    }
}

/// A stored private key as PEM: sealed (either version) or, without a key-encryption key at
/// the time, as it is.
fn unseal(kek: Option<&Kek>, stored: &str) -> Result<Vec<u8>, KeyError> {
    let sealed = [(SEALED_V2, false), (SEALED_V1, true)]
        .into_iter()
        .find_map(|(prefix, legacy)| stored.strip_prefix(prefix).map(|b| (b, legacy)));
    let Some((body, legacy)) = sealed else {
        return Ok(stored.as_bytes().to_vec());
    };
    let kek = kek.ok_or_else(|| {
        KeyError::Crypto("key is encrypted but no key_encryption_key is set".into())
    })?;
    open(if legacy { &kek.legacy } else { &kek.current }, body)
}

/// AES-256-GCM: `enc:v2:` + base64(nonce ‖ tag ‖ ciphertext).
fn seal(kek: &[u8; 32], plain: &[u8]) -> Result<String, KeyError> {
    let nonce: [u8; 12] = rand::random();
    let mut tag = [0u8; 16];
    let ct = encrypt_aead(
        Cipher::aes_256_gcm(),
        kek,
        Some(&nonce),
        b"aurum-auth-signing-key",
        plain,
        &mut tag,
    )
    .map_err(crypto)?;
    let mut out = Vec::with_capacity(12 + 16 + ct.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&tag);
    out.extend_from_slice(&ct);
    Ok(format!("{SEALED_V2}{}", STANDARD.encode(out)))
}

fn open(kek: &[u8; 32], sealed: &str) -> Result<Vec<u8>, KeyError> {
    let raw = STANDARD.decode(sealed).map_err(crypto)?;
    if raw.len() < 28 {
        return Err(KeyError::Crypto("sealed key too short".into()));
    }
    let (nonce, rest) = raw.split_at(12);
    let (tag, ct) = rest.split_at(16);
    decrypt_aead(
        Cipher::aes_256_gcm(),
        kek,
        Some(nonce),
        b"aurum-auth-signing-key",
        ct,
        tag,
    )
    .map_err(|_| KeyError::Crypto("cannot decrypt: wrong key_encryption_key?".into()))
}

/// The rotation limits, checked against the keys published now.
fn rotation_allowed(published: &[SigningKeyRecord], now: DateTime<Utc>) -> Result<(), KeyError> {
    let min_interval =
        chrono::Duration::from_std(MIN_ROTATION_INTERVAL).unwrap_or(chrono::Duration::seconds(60));
    if let Some(newest) = published.iter().map(|k| k.created_at).max() {
        let next = newest + min_interval;
        if next > now {
            return Err(KeyError::TooSoon {
                retry_after_s: seconds_until(next, now),
                min_interval_s: MIN_ROTATION_INTERVAL.as_secs(),
            });
        }
    }
    if published.len() >= MAX_PUBLISHED_KEYS {
        let oldest_expiry = published.iter().filter_map(|k| k.expires_at).min();
        return Err(KeyError::TooManyKeys {
            published: published.len(),
            retry_after_s: oldest_expiry.map_or(60, |e| seconds_until(e, now)),
        });
    }
    Ok(())
}

/// Whole seconds from `now` until `t`, at least 1.
fn seconds_until(t: DateTime<Utc>, now: DateTime<Utc>) -> u64 {
    u64::try_from((t - now).num_seconds()).unwrap_or(0).max(1)
}

fn generate(kek: Option<[u8; 32]>, now: DateTime<Utc>) -> Result<SigningKeyRecord, KeyError> {
    let rsa = Rsa::generate(RSA_BITS).map_err(crypto)?;
    let n = URL_SAFE_NO_PAD.encode(rsa.n().to_vec());
    let e = URL_SAFE_NO_PAD.encode(rsa.e().to_vec());
    // RFC 7638 thumbprint: members in lexicographic order, no whitespace.
    let thumbprint_input = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
    let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(thumbprint_input.as_bytes()));
    let pem = PKey::from_rsa(rsa)
        .and_then(|k| k.private_key_to_pem_pkcs8())
        .map_err(crypto)?;
    let pem = String::from_utf8(pem).map_err(crypto)?;
    let private_key = match kek {
        Some(kek) => seal(&kek, pem.as_bytes())?,
        None => pem,
    };
    Ok(SigningKeyRecord {
        public_jwk: json!({
            "kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid, "n": n, "e": e,
        }),
        kid,
        algorithm: "RS256".into(),
        private_key,
        created_at: now,
        retire_after: None,
        expires_at: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_keys_open_only_with_their_key() {
        let kek = [7u8; 32];
        let sealed = seal(&kek, b"private").unwrap_or_default();
        let body = sealed.strip_prefix(SEALED_V2).unwrap_or_default();
        assert_eq!(open(&kek, body).ok().as_deref(), Some(&b"private"[..]));
        assert!(open(&[8u8; 32], body).is_err());
    }

    #[test]
    fn the_sealing_key_is_derived_with_hkdf_not_a_bare_digest() {
        let secret = SecretString::from("k".repeat(40));
        let kek = Kek::derive(&secret);
        assert_ne!(kek.current, kek.legacy);
        assert_eq!(
            kek.legacy[..],
            Sha256::digest("k".repeat(40).as_bytes())[..]
        );
        // Deterministic (every replica derives the same key), and another secret differs.
        assert_eq!(Kek::derive(&secret).current, kek.current);
        assert_ne!(
            Kek::derive(&SecretString::from("j".repeat(40))).current,
            kek.current
        );
    }

    #[test]
    fn keys_sealed_before_the_kdf_still_open_and_new_ones_are_v2() {
        let kek = Kek::derive(&SecretString::from("k".repeat(40)));
        let new = seal(&kek.current, b"new").unwrap_or_default();
        assert!(new.starts_with(SEALED_V2));
        // What the previous version wrote: the same envelope under the bare digest.
        let old = seal(&kek.legacy, b"old")
            .unwrap_or_default()
            .replacen(SEALED_V2, SEALED_V1, 1);
        assert_eq!(unseal(Some(&kek), &new).ok().as_deref(), Some(&b"new"[..]));
        assert_eq!(unseal(Some(&kek), &old).ok().as_deref(), Some(&b"old"[..]));
        assert!(unseal(None, &new).is_err());
        let other = Kek::derive(&SecretString::from("j".repeat(40)));
        assert!(unseal(Some(&other), &new).is_err());
        assert_eq!(unseal(None, "PEM").ok().as_deref(), Some(&b"PEM"[..]));
    }
}
