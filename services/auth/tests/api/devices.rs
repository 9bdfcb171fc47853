//! Devices end to end: provisioned through the API, enforced by a real Mosquitto with the
//! dynamic-security plugin (password logins and mutual TLS), locked out once revoked.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use aurum_auth::config::{DeviceSettings, SeedClient};
use aurum_mqtt::Publisher;
use aurum_testkit::{eventually, Broker, BrokerTls};
use openssl::asn1::Asn1Time;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::x509::extension::{BasicConstraints, SubjectAlternativeName, SubjectKeyIdentifier};
use openssl::x509::{X509NameBuilder, X509ReqBuilder, X509};
use secrecy::SecretString;
use serde_json::{json, Value};

use crate::helpers::{spawn_app_with, TestApp, TENANT};

const OUTSIDER: &str = "globex-integration";
const OUTSIDER_SECRET: &str = "globex-integration-secret-0123456789";

fn p256() -> PKey<Private> {
    PKey::from_ec_key(
        EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap()).unwrap(),
    )
    .unwrap()
}

fn name(cn: &str) -> openssl::x509::X509Name {
    let mut n = X509NameBuilder::new().unwrap();
    n.append_entry_by_nid(Nid::COMMONNAME, cn).unwrap();
    n.build()
}

fn write(dir: &Path, file: &str, pem: &[u8]) -> std::path::PathBuf {
    let path = dir.join(file);
    std::fs::write(&path, pem).unwrap();
    // The broker drops to its own user: it must read these.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    path
}

/// A device CA (which also signs the broker's server certificate, for 127.0.0.1).
struct Pki {
    dir: tempfile::TempDir,
    tls: BrokerTls,
    ca_key_file: std::path::PathBuf,
}

fn pki() -> Pki {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let ca_key = p256();
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    b.set_subject_name(&name("AurumAI test device CA")).unwrap();
    b.set_issuer_name(&name("AurumAI test device CA")).unwrap();
    b.set_pubkey(&ca_key).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(30).unwrap())
        .unwrap();
    b.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
        .unwrap();
    let ski = SubjectKeyIdentifier::new()
        .build(&b.x509v3_context(None, None))
        .unwrap();
    b.append_extension(ski).unwrap();
    b.sign(&ca_key, MessageDigest::sha256()).unwrap();
    let ca = b.build();

    let server_key = p256();
    let mut s = X509::builder().unwrap();
    s.set_version(2).unwrap();
    s.set_subject_name(&name("127.0.0.1")).unwrap();
    s.set_issuer_name(ca.subject_name()).unwrap();
    s.set_pubkey(&server_key).unwrap();
    s.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    s.set_not_after(&Asn1Time::days_from_now(30).unwrap())
        .unwrap();
    let san = SubjectAlternativeName::new()
        .ip("127.0.0.1")
        .build(&s.x509v3_context(Some(&ca), None))
        .unwrap();
    s.append_extension(san).unwrap();
    s.sign(&ca_key, MessageDigest::sha256()).unwrap();
    let server = s.build();

    let tls = BrokerTls {
        ca_file: write(dir.path(), "ca.crt", &ca.to_pem().unwrap()),
        cert_file: write(dir.path(), "server.crt", &server.to_pem().unwrap()),
        key_file: write(
            dir.path(),
            "server.key",
            &server_key.private_key_to_pem_pkcs8().unwrap(),
        ),
    };
    let ca_key_file = write(
        dir.path(),
        "ca.key",
        &ca_key.private_key_to_pem_pkcs8().unwrap(),
    );
    Pki {
        dir,
        tls,
        ca_key_file,
    }
}

struct DeviceApp {
    app: TestApp,
    broker: Broker,
    pki: Pki,
}

async fn spawn_with_broker() -> DeviceApp {
    let pki = pki();
    let broker = Broker::start_with_dynsec_mtls(&pki.tls);
    let settings = DeviceSettings {
        broker: broker.settings("aurum-auth-devices", broker.admin()),
        broker_timeout_ms: 5_000,
        ca_cert_file: Some(pki.tls.ca_file.clone()),
        ca_key_file: Some(pki.ca_key_file.clone()),
        cert_validity_days: 30,
    };
    let app = spawn_app_with(|c| {
        c.devices = Some(settings);
        // An integration client of another tenant, administrator there.
        c.auth.clients.push(SeedClient {
            client_id: OUTSIDER.into(),
            secret: Some(SecretString::from(OUTSIDER_SECRET.to_owned())),
            secret_file: None,
            name: None,
            redirect_uris: vec![],
            post_logout_redirect_uris: vec![],
            grant_types: vec!["client_credentials".into()],
            audiences: vec!["aurumai-api".into()],
            tenant: Some("globex".into()),
            roles: vec!["admin".into()],
        });
    })
    .await;
    DeviceApp { app, broker, pki }
}

impl DeviceApp {
    async fn token_with(&self, roles: &[&str]) -> String {
        let admin = self.app.admin_tokens().await.access_token;
        let name = format!("user-{}", roles.join("-"));
        self.app.create_user(&admin, &name, roles).await;
        self.app
            .sign_in(&format!("{name}@acme"), &format!("{name}-password"))
            .await
            .access_token
    }

    async fn provision(&self, token: &str, machine: &str) -> reqwest::Response {
        self.app
            .client
            .post(self.app.url("/v1/devices"))
            .bearer_auth(token)
            .json(&json!({ "machine_id": machine }))
            .send()
            .await
            .unwrap()
    }

    async fn revoke(&self, token: &str, id: &str) -> reqwest::Response {
        self.app
            .client
            .delete(self.app.url(&format!("/v1/devices/{id}")))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    async fn connect(
        &self,
        username: &str,
        password: &str,
    ) -> Result<Publisher, aurum_mqtt::MqttError> {
        let settings = self
            .broker
            .settings(&format!("{username}-c"), Some((username, password)));
        Publisher::connect(&settings, 10).await
    }

    async fn connect_tls(
        &self,
        cert: &Path,
        key: &Path,
    ) -> Result<Publisher, aurum_mqtt::MqttError> {
        let mut settings = self.broker.settings("tls-device", None);
        settings.url = format!("mqtts://127.0.0.1:{}", self.broker.tls_port.unwrap());
        settings.ca_file = Some(self.pki.tls.ca_file.clone());
        settings.cert_file = Some(cert.to_owned());
        settings.key_file = Some(key.to_owned());
        Publisher::connect(&settings, 10).await
    }
}

async fn publish(device: &Publisher, topic: &str) -> bool {
    device
        .publish(topic, b"{}".to_vec(), "application/json", None)
        .await
        .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provisioned_device_publishes_its_own_telemetry_and_nothing_else() {
    let app = spawn_with_broker().await;
    let operator = app.token_with(&["operator"]).await;
    let r = app.provision(&operator, "TRUCK-7").await;
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let device: Value = r.json().await.unwrap();
    let username = device["username"].as_str().unwrap();
    let password = device["password"].as_str().unwrap();
    assert!(password.len() >= 43, "256-bit password");
    assert_eq!(
        device["topics"]["publish"][0],
        format!("aurum/v1/{TENANT}/TRUCK-7/telemetry")
    );

    let mqtt = app.connect(username, password).await.unwrap();
    assert!(publish(&mqtt, &format!("aurum/v1/{TENANT}/TRUCK-7/telemetry")).await);
    assert!(publish(&mqtt, &format!("aurum/v1/{TENANT}/TRUCK-7/status")).await);
    assert!(!publish(&mqtt, &format!("aurum/v1/{TENANT}/TRUCK-8/telemetry")).await);
    assert!(!publish(&mqtt, "aurum/v1/other/TRUCK-7/telemetry").await);
    assert!(app.connect(username, "a-wrong-password").await.is_err());

    // The password is never shown again.
    let id = device["id"].as_str().unwrap();
    let shown: Value = app
        .app
        .get_with(&operator, &format!("/v1/devices/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(shown["username"], username);
    assert!(shown.get("password").is_none());
    // One live device per machine.
    assert_eq!(app.provision(&operator, "TRUCK-7").await.status(), 409);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_device_is_disconnected_and_cannot_log_in_again() {
    let app = spawn_with_broker().await;
    let operator = app.token_with(&["operator"]).await;
    let device: Value = app
        .provision(&operator, "MILL-3")
        .await
        .json()
        .await
        .unwrap();
    let (username, password) = (
        device["username"].as_str().unwrap(),
        device["password"].as_str().unwrap(),
    );
    let mqtt = app.connect(username, password).await.unwrap();

    let r = app.revoke(&operator, device["id"].as_str().unwrap()).await;
    assert_eq!(r.status(), 200);
    let revoked: Value = r.json().await.unwrap();
    assert!(revoked["revoked_at"].is_string());
    assert!(
        eventually(Duration::from_secs(5), || async { !mqtt.is_connected() }).await,
        "the broker must drop the revoked device's connection"
    );
    assert!(app.connect(username, password).await.is_err());
    let metrics = app.app.metrics().await;
    assert!(metrics.contains("event=\"device_revoked\""), "{metrics}");
    // The machine can get a new device once the old one is revoked.
    assert_eq!(app.provision(&operator, "MILL-3").await.status(), 201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_device_cas_expiry_and_the_pool_are_on_metrics() {
    let app = spawn_with_broker().await;
    let metrics = app.app.metrics().await;
    let expiry = aurum_testkit::metric_value(
        &metrics,
        "aurum_tls_certificate_expiry_timestamp_seconds{certificate=\"device_ca\"}",
    )
    .unwrap_or_else(|| panic!("no device CA expiry in\n{metrics}"));
    // The test CA expires 30 days from now.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let in_30_days = now + 30.0 * 86_400.0;
    assert!(
        (expiry - in_30_days).abs() < 3_600.0,
        "{expiry} vs {in_30_days}"
    );
    assert_eq!(
        aurum_testkit::metric_value(
            &metrics,
            "aurum_tls_certificate_read_failures_total{certificate=\"device_ca\"}"
        ),
        Some(0.0)
    );
    for series in [
        "aurum_db_pool_connections{state=\"in_use\"}",
        "aurum_db_pool_max_connections",
        "aurum_db_pool_gets_timed_out_total",
        "aurum_db_pool_gets_waited_total",
    ] {
        assert!(
            aurum_testkit::metric_value(&metrics, series).is_some(),
            "no {series} in\n{metrics}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_certificate_authenticates_over_mutual_tls_until_revoked() {
    let app = spawn_with_broker().await;
    let operator = app.token_with(&["operator"]).await;
    let device: Value = app
        .provision(&operator, "BOILER-7")
        .await
        .json()
        .await
        .unwrap();
    let id = device["id"].as_str().unwrap();

    // The device makes its key and asks for a certificate under any name: it gets its own.
    let key = p256();
    let mut req = X509ReqBuilder::new().unwrap();
    req.set_subject_name(&name("somebody-else")).unwrap();
    req.set_pubkey(&key).unwrap();
    req.sign(&key, MessageDigest::sha256()).unwrap();
    let csr = String::from_utf8(req.build().to_pem().unwrap()).unwrap();
    let r = app
        .app
        .client
        .post(app.app.url(&format!("/v1/devices/{id}/certificate")))
        .bearer_auth(&operator)
        .json(&json!({ "csr": csr }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let issued: Value = r.json().await.unwrap();
    let cert_file = write(
        app.pki.dir.path(),
        "device.crt",
        issued["certificate"].as_str().unwrap().as_bytes(),
    );
    let key_file = write(
        app.pki.dir.path(),
        "device.key",
        &key.private_key_to_pem_pkcs8().unwrap(),
    );

    let mqtt = app.connect_tls(&cert_file, &key_file).await.unwrap();
    assert!(publish(&mqtt, &format!("aurum/v1/{TENANT}/BOILER-7/telemetry")).await);
    assert!(!publish(&mqtt, &format!("aurum/v1/{TENANT}/TRUCK-7/telemetry")).await);

    // Revoked: the certificate still completes the TLS handshake, but its identity has no
    // rights left on the broker.
    assert_eq!(app.revoke(&operator, id).await.status(), 200);
    if let Ok(again) = app.connect_tls(&cert_file, &key_file).await {
        assert!(!publish(&again, &format!("aurum/v1/{TENANT}/BOILER-7/telemetry")).await);
    }
    // And a revoked device gets no new certificate.
    let r = app
        .app
        .client
        .post(app.app.url(&format!("/v1/devices/{id}/certificate")))
        .bearer_auth(&operator)
        .json(&json!({ "csr": csr }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewers_list_operators_provision_and_other_tenants_see_nothing() {
    let app = spawn_with_broker().await;
    let viewer = app.token_with(&["viewer"]).await;
    let operator = app.token_with(&["operator"]).await;
    assert_eq!(app.provision(&viewer, "TRUCK-1").await.status(), 403);
    let device: Value = app
        .provision(&operator, "TRUCK-1")
        .await
        .json()
        .await
        .unwrap();
    let id = device["id"].as_str().unwrap();
    assert_eq!(app.revoke(&viewer, id).await.status(), 403);
    let listed: Value = app
        .app
        .get_with(&viewer, "/v1/devices")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["devices"].as_array().unwrap().len(), 1);
    assert!(listed["devices"][0].get("password").is_none());

    // Another tenant's administrator: the device does not exist for them.
    let r = app
        .app
        .client_credentials(OUTSIDER, OUTSIDER_SECRET, &[])
        .await;
    assert_eq!(r.status(), 200);
    let outsider = crate::helpers::tokens(r.json().await.unwrap()).access_token;
    assert_eq!(
        app.app
            .get_with(&outsider, &format!("/v1/devices/{id}"))
            .await
            .status(),
        404
    );
    assert_eq!(app.revoke(&outsider, id).await.status(), 404);
    let theirs: Value = app
        .app
        .get_with(&outsider, "/v1/devices")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(theirs["devices"].as_array().unwrap().len(), 0);

    let unknown = "00000000-0000-0000-0000-000000000000";
    assert_eq!(
        app.app
            .get_with(&viewer, &format!("/v1/devices/{unknown}"))
            .await
            .status(),
        404
    );
    assert_eq!(
        app.provision(&operator, "not a machine/#").await.status(),
        422
    );
    assert_eq!(
        app.app
            .get_with("not-a-token", "/v1/devices")
            .await
            .status(),
        401
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_broker_device_provisioning_is_unavailable_not_faked() {
    let app = spawn_app_with(|_| {}).await;
    let admin = app.admin_tokens().await.access_token;
    let r = app
        .client
        .post(app.url("/v1/devices"))
        .bearer_auth(&admin)
        .json(&json!({ "machine_id": "TRUCK-1" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
}
