//! Building paho clients and connect options from settings.

use std::path::Path;
use std::time::Duration;

use aurum_config::MqttSettings;
use paho_mqtt as mqtt;
use secrecy::ExposeSecret;

#[derive(Debug, thiserror::Error)]
pub enum MqttError {
    #[error("invalid MQTT settings: {0}")]
    Settings(String),
    #[error("MQTT client error: {0}")]
    Client(#[from] mqtt::Error),
}

/// paho wants `tcp://` or `ssl://`; settings say `mqtt://` or `mqtts://`.
pub fn server_uri(url: &str) -> Result<String, MqttError> {
    if let Some(rest) = url.strip_prefix("mqtt://") {
        Ok(format!("tcp://{rest}"))
    } else if let Some(rest) = url.strip_prefix("mqtts://") {
        Ok(format!("ssl://{rest}"))
    } else if url.starts_with("tcp://") || url.starts_with("ssl://") {
        Ok(url.to_owned())
    } else {
        Err(MqttError::Settings(format!(
            "mqtt.url must start with mqtt:// or mqtts://, got {url:?}"
        )))
    }
}

/// An MQTT v5 client with in-memory persistence: durability of received messages is the
/// application's job (see the ingestion spool), not the client library's.
pub fn create_client(settings: &MqttSettings) -> Result<mqtt::AsyncClient, MqttError> {
    let opts = mqtt::CreateOptionsBuilder::new()
        .server_uri(server_uri(&settings.url)?)
        .client_id(&settings.client_id)
        .mqtt_version(mqtt::MQTT_VERSION_5)
        .persistence(None)
        // Publishes queued behind the in-flight window count as "buffered"; paho's default of
        // 100 would refuse a pipelining publisher's messages.
        .max_buffered_messages(10_000)
        .finalize();
    Ok(mqtt::AsyncClient::new(opts)?)
}

/// Connect options: MQTT v5, automatic reconnect, TLS when the URL asks for it, and a session
/// that outlives disconnections unless `clean_start`.
pub fn connect_options(
    settings: &MqttSettings,
    clean_start: bool,
) -> Result<mqtt::ConnectOptionsBuilder, MqttError> {
    let mut b = mqtt::ConnectOptionsBuilder::new_v5();
    b.keep_alive_interval(Duration::from_secs(settings.keep_alive_s.max(5)))
        .clean_start(clean_start)
        .connect_timeout(Duration::from_secs(10))
        .automatic_reconnect(Duration::from_millis(250), Duration::from_secs(5));
    if !clean_start {
        let mut props = mqtt::Properties::new();
        props.push_u32(
            mqtt::PropertyCode::SessionExpiryInterval,
            settings.session_expiry_s,
        )?;
        b.properties(props);
    }
    if let Some(user) = &settings.username {
        b.user_name(user);
    }
    if let Some(pw) = &settings.password {
        b.password(pw.expose_secret());
    }
    if settings.is_tls() {
        let mut ssl = mqtt::SslOptionsBuilder::new();
        if let Some(ca) = &settings.ca_file {
            ssl.trust_store(ca)?;
        }
        if let (Some(cert), Some(key)) = (&settings.cert_file, &settings.key_file) {
            ssl.key_store(cert)?;
            ssl.private_key(key)?;
        }
        ssl.enable_server_cert_auth(true).verify(true);
        b.ssl_options(ssl.finalize());
    }
    Ok(b)
}

/// The certificate files [`connect_options`] hands to the TLS layer, named for their expiry
/// metrics: `mqtt_ca` (the broker's CA bundle) and `mqtt_client` (the client certificate of
/// mutual TLS). None over plaintext, where they are not read.
pub fn certificate_files(settings: &MqttSettings) -> Vec<(&'static str, &Path)> {
    let mut files = Vec::new();
    if !settings.is_tls() {
        return files;
    }
    if let Some(ca) = &settings.ca_file {
        files.push(("mqtt_ca", ca.as_path()));
    }
    if let (Some(cert), Some(_)) = (&settings.cert_file, &settings.key_file) {
        files.push(("mqtt_client", cert.as_path()));
    }
    files
}

/// Drops a client whose connection attempt failed, later and off the caller's thread.
///
/// paho may still be finishing the failed attempt on its own thread, holding a handle of the
/// client; if that thread dropped the last handle, destroying the client there would deadlock
/// on the library's global lock. Keeping ours for a while lets it finish first, even on a
/// loaded machine (500 ms proved too short under a full test run).
pub(crate) fn drop_failed_client(client: mqtt::AsyncClient) {
    let spawned = std::thread::Builder::new()
        .name("mqtt-drop-failed".into())
        .spawn(move || {
            std::thread::sleep(Duration::from_secs(5));
            drop(client);
        });
    if let Err(e) = spawned {
        // Without a thread to drop it safely, keep the client rather than risk the deadlock.
        tracing::warn!(error = %e, "cannot start a thread to drop a failed MQTT client");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_files_are_those_tls_reads() {
        let mut s = MqttSettings::local("test");
        s.ca_file = Some("ca.pem".into());
        s.cert_file = Some("client.pem".into());
        assert!(certificate_files(&s).is_empty(), "plaintext reads no file");

        s.url = "mqtts://broker:8883".into();
        let names: Vec<_> = certificate_files(&s).into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            ["mqtt_ca"],
            "a client certificate without its key is not used"
        );

        s.key_file = Some("client.key".into());
        let files = certificate_files(&s);
        assert_eq!(
            files,
            [
                ("mqtt_ca", Path::new("ca.pem")),
                ("mqtt_client", Path::new("client.pem"))
            ]
        );
    }
}
