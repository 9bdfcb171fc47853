//! When the certificates a service loads from files expire, as Prometheus metrics:
//! `aurum_tls_certificate_expiry_timestamp_seconds{certificate}` (the notAfter, in Unix
//! seconds; for a bundle, the earliest one) and
//! `aurum_tls_certificate_read_failures_total{certificate}`.
//!
//! The files are read once when the metrics are registered (an unreadable certificate stops
//! the service: it could not connect with it anyway) and again at every scrape, so a
//! certificate rotated on disk shows its new expiry without a restart. A read that fails at
//! scrape time keeps the last good value and is counted.

use std::path::{Path, PathBuf};

use openssl::asn1::Asn1Time;
use openssl::error::ErrorStack;
use openssl::x509::X509;
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{IntCounterVec, IntGaugeVec, Opts, Registry};

const SECONDS_PER_DAY: i64 = 86_400;

/// Why PEM text yields no expiry.
#[derive(Debug, thiserror::Error)]
pub enum PemError {
    #[error("not a PEM X.509 certificate: {0}")]
    Parse(#[source] ErrorStack),
    #[error("no PEM certificate found")]
    Empty,
    #[error("cannot convert notAfter to Unix time: {0}")]
    Time(#[source] ErrorStack),
}

#[derive(Debug, thiserror::Error)]
pub enum CertificateMetricError {
    #[error("cannot read certificate {name} from {}: {source}", path.display())]
    Read {
        name: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("certificate {name} in {}: {source}", path.display())]
    Pem {
        name: String,
        path: PathBuf,
        #[source]
        source: PemError,
    },
    #[error("cannot register the certificate metrics: {0}")]
    Register(#[from] prometheus::Error),
}

/// The earliest notAfter, in Unix seconds, of the certificates in `pem` (one certificate or a
/// bundle).
pub fn earliest_not_after(pem: &[u8]) -> Result<i64, PemError> {
    let certs = X509::stack_from_pem(pem).map_err(PemError::Parse)?;
    let epoch = Asn1Time::from_unix(0).map_err(PemError::Time)?;
    let mut earliest: Option<i64> = None;
    for cert in &certs {
        let d = epoch.diff(cert.not_after()).map_err(PemError::Time)?;
        let at = i64::from(d.days) * SECONDS_PER_DAY + i64::from(d.secs);
        earliest = Some(earliest.map_or(at, |e| e.min(at)));
    }
    earliest.ok_or(PemError::Empty)
}

/// Reads `path` and returns the earliest notAfter of the certificates in it.
fn read_not_after(name: &str, path: &Path) -> Result<i64, CertificateMetricError> {
    let pem = std::fs::read(path).map_err(|source| CertificateMetricError::Read {
        name: name.to_owned(),
        path: path.to_owned(),
        source,
    })?;
    earliest_not_after(&pem).map_err(|source| CertificateMetricError::Pem {
        name: name.to_owned(),
        path: path.to_owned(),
        source,
    })
}

#[derive(Debug)]
struct Watched {
    name: String,
    path: PathBuf,
}

/// A Prometheus collector that re-reads the certificate files at every scrape.
#[derive(Debug)]
pub struct CertificateExpiry {
    watched: Vec<Watched>,
    expiry: IntGaugeVec,
    failures: IntCounterVec,
}

impl CertificateExpiry {
    /// Reads every certificate once; the first that cannot be read or parsed is the error.
    /// `certificates` pairs a name (the `certificate` label) with its file.
    pub fn new(certificates: &[(&str, &Path)]) -> Result<Self, CertificateMetricError> {
        let expiry = IntGaugeVec::new(
            Opts::new(
                "aurum_tls_certificate_expiry_timestamp_seconds",
                "notAfter of a certificate the service loads (earliest of a bundle), in Unix seconds",
            ),
            &["certificate"],
        )?;
        let failures = IntCounterVec::new(
            Opts::new(
                "aurum_tls_certificate_read_failures_total",
                "Failed re-reads of a certificate file at scrape time (the expiry keeps its last value)",
            ),
            &["certificate"],
        )?;
        let mut watched = Vec::with_capacity(certificates.len());
        for (name, path) in certificates {
            let not_after = read_not_after(name, path)?;
            expiry.with_label_values(&[name]).set(not_after);
            failures.with_label_values(&[name]);
            watched.push(Watched {
                name: (*name).to_owned(),
                path: path.to_path_buf(),
            });
        }
        Ok(Self {
            watched,
            expiry,
            failures,
        })
    }

    fn refresh(&self) {
        for w in &self.watched {
            match read_not_after(&w.name, &w.path) {
                Ok(not_after) => self.expiry.with_label_values(&[&w.name]).set(not_after),
                Err(e) => {
                    self.failures.with_label_values(&[&w.name]).inc();
                    tracing::warn!(
                        certificate = %w.name,
                        error = %e,
                        "cannot re-read a certificate; its expiry metric keeps the last value"
                    );
                }
            }
        }
    }
}

impl Collector for CertificateExpiry {
    fn desc(&self) -> Vec<&Desc> {
        let mut d = self.expiry.desc();
        d.extend(self.failures.desc());
        d
    }

    fn collect(&self) -> Vec<MetricFamily> {
        self.refresh();
        let mut families = self.expiry.collect();
        families.extend(self.failures.collect());
        families
    }
}

/// Registers [`CertificateExpiry`] for `certificates` on `registry`. Nothing is registered
/// when the list is empty.
pub fn register_certificate_expiry(
    registry: &Registry,
    certificates: &[(&str, &Path)],
) -> Result<(), CertificateMetricError> {
    if certificates.is_empty() {
        return Ok(());
    }
    let collector = CertificateExpiry::new(certificates)?;
    registry.register(Box::new(collector))?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use openssl::ec::{EcGroup, EcKey};
    use openssl::hash::MessageDigest;
    use openssl::nid::Nid;
    use openssl::pkey::PKey;
    use openssl::x509::X509NameBuilder;

    /// A self-signed certificate valid until `not_after` (Unix seconds).
    fn certificate(cn: &str, not_after: i64) -> Vec<u8> {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
        let key = PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap();
        let mut name = X509NameBuilder::new().unwrap();
        name.append_entry_by_text("CN", cn).unwrap();
        let name = name.build();
        let mut b = X509::builder().unwrap();
        b.set_version(2).unwrap();
        b.set_subject_name(&name).unwrap();
        b.set_issuer_name(&name).unwrap();
        b.set_pubkey(&key).unwrap();
        b.set_not_before(&Asn1Time::from_unix(1_600_000_000).unwrap())
            .unwrap();
        b.set_not_after(&Asn1Time::from_unix(not_after).unwrap())
            .unwrap();
        b.sign(&key, MessageDigest::sha256()).unwrap();
        b.build().to_pem().unwrap()
    }

    // 2031-05-06T07:08:09Z and 2029-01-02T03:04:05Z.
    const LATER: i64 = 1_935_990_489;
    const EARLIER: i64 = 1_862_017_445;

    /// The value of `family{certificate="..."}` in the registry's text exposition.
    fn gathered(registry: &Registry, family: &str, certificate: &str) -> Option<f64> {
        use prometheus::Encoder as _;
        let mut text = Vec::new();
        prometheus::TextEncoder::new()
            .encode(&registry.gather(), &mut text)
            .unwrap();
        let series = format!("{family}{{certificate=\"{certificate}\"}} ");
        String::from_utf8(text)
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix(&series)?.trim().parse().ok())
    }

    #[test]
    fn the_not_after_of_one_certificate_is_its_unix_time() {
        assert_eq!(earliest_not_after(&certificate("a", LATER)).unwrap(), LATER);
    }

    #[test]
    fn a_bundle_reports_its_earliest_expiry() {
        let mut bundle = certificate("later", LATER);
        bundle.extend(certificate("earlier", EARLIER));
        bundle.extend(certificate("later too", LATER + 1));
        assert_eq!(earliest_not_after(&bundle).unwrap(), EARLIER);
    }

    #[test]
    fn garbage_and_empty_input_are_errors() {
        assert!(matches!(
            earliest_not_after(b"not a certificate"),
            Err(PemError::Empty)
        ));
        assert!(matches!(earliest_not_after(b""), Err(PemError::Empty)));
        let broken = b"-----BEGIN CERTIFICATE-----\nAAAA!!!!\n-----END CERTIFICATE-----\n";
        assert!(matches!(
            earliest_not_after(broken),
            Err(PemError::Parse(_))
        ));
    }

    #[test]
    fn a_missing_or_unparsable_file_stops_registration() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let registry = Registry::new();
        let e = register_certificate_expiry(&registry, &[("mqtt_ca", &missing)]).unwrap_err();
        assert!(matches!(e, CertificateMetricError::Read { .. }), "{e}");
        assert!(e.to_string().contains("mqtt_ca"), "{e}");

        let garbage = dir.path().join("garbage.pem");
        std::fs::write(&garbage, "hello").unwrap();
        let e = register_certificate_expiry(&registry, &[("mqtt_ca", &garbage)]).unwrap_err();
        assert!(matches!(e, CertificateMetricError::Pem { .. }), "{e}");
        assert!(registry.gather().is_empty());
    }

    #[test]
    fn the_registry_gathers_each_expiry_and_follows_rotation_and_failures() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        let client = dir.path().join("client.pem");
        let mut bundle = certificate("root", LATER);
        bundle.extend(certificate("intermediate", EARLIER));
        std::fs::write(&ca, bundle).unwrap();
        std::fs::write(&client, certificate("client", LATER)).unwrap();
        let registry = Registry::new();
        register_certificate_expiry(&registry, &[("mqtt_ca", &ca), ("mqtt_client", &client)])
            .unwrap();

        let expiry = "aurum_tls_certificate_expiry_timestamp_seconds";
        let failures = "aurum_tls_certificate_read_failures_total";
        assert_eq!(gathered(&registry, expiry, "mqtt_ca"), Some(EARLIER as f64));
        assert_eq!(
            gathered(&registry, expiry, "mqtt_client"),
            Some(LATER as f64)
        );
        assert_eq!(gathered(&registry, failures, "mqtt_ca"), Some(0.0));

        // Rotated on disk: the next scrape shows the new expiry.
        std::fs::write(&client, certificate("client", LATER + 86_400)).unwrap();
        assert_eq!(
            gathered(&registry, expiry, "mqtt_client"),
            Some((LATER + 86_400) as f64)
        );

        // Broken on disk: the last good value stays and each failed read is counted.
        std::fs::write(&ca, "half-written").unwrap();
        assert_eq!(gathered(&registry, expiry, "mqtt_ca"), Some(EARLIER as f64));
        assert_eq!(gathered(&registry, failures, "mqtt_ca"), Some(2.0));
        assert_eq!(gathered(&registry, failures, "mqtt_client"), Some(0.0));
    }

    #[test]
    fn no_certificates_register_nothing() {
        let registry = Registry::new();
        register_certificate_expiry(&registry, &[]).unwrap();
        assert!(registry.gather().is_empty());
    }
}
