//! Device client certificates for mutual TLS: the platform's device CA signs a device's
//! certificate signing request. The device keeps its private key; the certificate names the
//! device's broker username as its common name, so the broker (with
//! `use_identity_as_username`) applies the same topic rights as to a password login.

use std::path::Path;

use chrono::{DateTime, Utc};
use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, Private};
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectKeyIdentifier,
};
use openssl::x509::{X509NameBuilder, X509Req, X509};

#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{what} is not valid PEM: {source}")]
    Pem {
        what: &'static str,
        source: openssl::error::ErrorStack,
    },
    #[error("the device CA's key does not match its certificate")]
    KeyMismatch,
}

/// Why a signing request was refused (the caller's fault) or failed.
#[derive(Debug, thiserror::Error)]
pub enum CsrError {
    #[error("the certificate signing request is not valid PEM")]
    NotPem,
    #[error("the certificate signing request's signature does not verify")]
    BadSignature,
    #[error("the request's key is too weak or of an unsupported type: {0}")]
    WeakKey(String),
    #[error("cannot sign the certificate: {0}")]
    Signing(#[from] openssl::error::ErrorStack),
}

/// A certificate issued to a device.
#[derive(Debug, Clone)]
pub struct IssuedCertificate {
    pub pem: String,
    /// Hex, for audit and revocation lists.
    pub serial: String,
    pub not_after: DateTime<Utc>,
}

/// The CA that signs device certificates (its certificate is the broker's `cafile` for the
/// mutual-TLS listener).
pub struct DeviceCa {
    cert: X509,
    key: PKey<Private>,
    validity_days: u32,
}

impl std::fmt::Debug for DeviceCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceCa")
            .field("subject", &self.cert.subject_name())
            .field("validity_days", &self.validity_days)
            .finish_non_exhaustive()
    }
}

fn read(path: &Path) -> Result<Vec<u8>, CaError> {
    std::fs::read(path).map_err(|source| CaError::Read {
        path: path.display().to_string(),
        source,
    })
}

impl DeviceCa {
    pub fn load(cert_file: &Path, key_file: &Path, validity_days: u32) -> Result<Self, CaError> {
        let cert = X509::from_pem(&read(cert_file)?).map_err(|source| CaError::Pem {
            what: "the device CA certificate",
            source,
        })?;
        let key = PKey::private_key_from_pem(&read(key_file)?).map_err(|source| CaError::Pem {
            what: "the device CA key",
            source,
        })?;
        let matches = cert
            .public_key()
            .map(|public| public.public_eq(&key))
            .unwrap_or(false);
        if !matches {
            return Err(CaError::KeyMismatch);
        }
        Ok(Self {
            cert,
            key,
            validity_days: validity_days.max(1),
        })
    }

    /// Signs `csr_pem` for `common_name`. Only the request's public key is taken: the subject
    /// and any extensions it asks for are replaced, so a device cannot name itself another
    /// device or a CA.
    pub fn sign(&self, csr_pem: &[u8], common_name: &str) -> Result<IssuedCertificate, CsrError> {
        let req = X509Req::from_pem(csr_pem).map_err(|_| CsrError::NotPem)?;
        let public = req.public_key().map_err(|_| CsrError::NotPem)?;
        if !req.verify(&public).unwrap_or(false) {
            return Err(CsrError::BadSignature);
        }
        check_key_strength(&public)?;

        let mut name = X509NameBuilder::new()?;
        name.append_entry_by_nid(Nid::COMMONNAME, common_name)?;
        let name = name.build();

        let mut serial = BigNum::new()?;
        serial.rand(127, MsbOption::MAYBE_ZERO, false)?;
        let not_after_unix = Utc::now().timestamp() + i64::from(self.validity_days) * 86_400;

        let mut b = X509::builder()?;
        b.set_version(2)?;
        let serial_number = serial.to_asn1_integer()?;
        b.set_serial_number(&serial_number)?;
        b.set_subject_name(&name)?;
        b.set_issuer_name(self.cert.subject_name())?;
        b.set_pubkey(&public)?;
        let not_before = Asn1Time::days_from_now(0)?;
        let not_after = Asn1Time::from_unix(not_after_unix)?;
        b.set_not_before(&not_before)?;
        b.set_not_after(&not_after)?;
        b.append_extension(BasicConstraints::new().critical().build()?)?;
        b.append_extension(KeyUsage::new().critical().digital_signature().build()?)?;
        b.append_extension(ExtendedKeyUsage::new().client_auth().build()?)?;
        let ski = SubjectKeyIdentifier::new().build(&b.x509v3_context(Some(&self.cert), None))?;
        b.append_extension(ski)?;
        // Links the certificate to the CA key when the CA names its key (any CA made with
        // `openssl req -x509` does).
        if self.cert.subject_key_id().is_some() {
            let aki = AuthorityKeyIdentifier::new()
                .keyid(false)
                .build(&b.x509v3_context(Some(&self.cert), None))?;
            b.append_extension(aki)?;
        }
        b.sign(&self.key, MessageDigest::sha256())?;
        let cert = b.build();

        Ok(IssuedCertificate {
            pem: String::from_utf8_lossy(&cert.to_pem()?).into_owned(),
            serial: serial.to_hex_str()?.to_ascii_lowercase(),
            not_after: DateTime::from_timestamp(not_after_unix, 0).unwrap_or_else(Utc::now),
        })
    }
}

/// RSA of at least 2048 bits, EC on P-256 or P-384, or Ed25519.
fn check_key_strength(key: &PKey<openssl::pkey::Public>) -> Result<(), CsrError> {
    match key.id() {
        Id::RSA if key.bits() >= 2048 => Ok(()),
        Id::RSA => Err(CsrError::WeakKey(format!("RSA {} bits", key.bits()))),
        Id::EC => {
            let curve = key.ec_key().ok().and_then(|k| k.group().curve_name());
            match curve {
                Some(Nid::X9_62_PRIME256V1) | Some(Nid::SECP384R1) => Ok(()),
                other => Err(CsrError::WeakKey(format!("EC curve {other:?}"))),
            }
        }
        Id::ED25519 => Ok(()),
        other => Err(CsrError::WeakKey(format!("{other:?}"))),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use openssl::ec::{EcGroup, EcKey};
    use openssl::rsa::Rsa;
    use openssl::x509::X509ReqBuilder;

    fn ca(dir: &Path) -> DeviceCa {
        let key = PKey::from_ec_key(
            EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap()).unwrap(),
        )
        .unwrap();
        let mut name = X509NameBuilder::new().unwrap();
        name.append_entry_by_nid(Nid::COMMONNAME, "test device CA")
            .unwrap();
        let name = name.build();
        let mut b = X509::builder().unwrap();
        b.set_version(2).unwrap();
        b.set_subject_name(&name).unwrap();
        b.set_issuer_name(&name).unwrap();
        b.set_pubkey(&key).unwrap();
        b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        b.set_not_after(&Asn1Time::days_from_now(30).unwrap())
            .unwrap();
        b.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
            .unwrap();
        b.sign(&key, MessageDigest::sha256()).unwrap();
        std::fs::write(dir.join("ca.crt"), b.build().to_pem().unwrap()).unwrap();
        std::fs::write(dir.join("ca.key"), key.private_key_to_pem_pkcs8().unwrap()).unwrap();
        DeviceCa::load(&dir.join("ca.crt"), &dir.join("ca.key"), 90).unwrap()
    }

    fn csr(key: &PKey<Private>, cn: &str) -> Vec<u8> {
        let mut name = X509NameBuilder::new().unwrap();
        name.append_entry_by_nid(Nid::COMMONNAME, cn).unwrap();
        let mut b = X509ReqBuilder::new().unwrap();
        b.set_subject_name(&name.build()).unwrap();
        b.set_pubkey(key).unwrap();
        b.sign(key, MessageDigest::sha256()).unwrap();
        b.build().to_pem().unwrap()
    }

    fn p256() -> PKey<Private> {
        PKey::from_ec_key(
            EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap()).unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn the_certificate_names_the_device_whatever_the_request_asked() {
        let dir = tempfile::tempdir().unwrap();
        let ca = ca(dir.path());
        let key = p256();
        let issued = ca.sign(&csr(&key, "admin"), "acme.TRUCK-7.ab12").unwrap();
        let cert = X509::from_pem(issued.pem.as_bytes()).unwrap();
        let cn = cert
            .subject_name()
            .entries_by_nid(Nid::COMMONNAME)
            .next()
            .unwrap()
            .data()
            .to_string()
            .unwrap();
        assert_eq!(cn, "acme.TRUCK-7.ab12");
        assert!(cert.public_key().unwrap().public_eq(&key));
        assert!(cert.verify(&ca.cert.public_key().unwrap()).unwrap());
        assert!(!issued.serial.is_empty());
        assert!(issued.not_after > Utc::now() + chrono::Duration::days(89));
    }

    #[test]
    fn weak_garbled_or_forged_requests_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let ca = ca(dir.path());
        let weak = PKey::from_rsa(Rsa::generate(1024).unwrap()).unwrap();
        assert!(matches!(
            ca.sign(&csr(&weak, "x"), "x"),
            Err(CsrError::WeakKey(_))
        ));
        assert!(matches!(ca.sign(b"not a csr", "x"), Err(CsrError::NotPem)));
        // A request whose signature was made by another key than the one it carries.
        let mut name = X509NameBuilder::new().unwrap();
        name.append_entry_by_nid(Nid::COMMONNAME, "x").unwrap();
        let mut b = X509ReqBuilder::new().unwrap();
        b.set_subject_name(&name.build()).unwrap();
        b.set_pubkey(&p256()).unwrap();
        b.sign(&p256(), MessageDigest::sha256()).unwrap();
        let forged = b.build().to_pem().unwrap();
        assert!(matches!(ca.sign(&forged, "x"), Err(CsrError::BadSignature)));
    }

    #[test]
    fn a_key_that_does_not_match_the_ca_certificate_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let _ = ca(dir.path());
        std::fs::write(
            dir.path().join("other.key"),
            p256().private_key_to_pem_pkcs8().unwrap(),
        )
        .unwrap();
        assert!(matches!(
            DeviceCa::load(
                &dir.path().join("ca.crt"),
                &dir.path().join("other.key"),
                30
            ),
            Err(CaError::KeyMismatch)
        ));
    }
}
