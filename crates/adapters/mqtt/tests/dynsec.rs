//! Device accounts on a real Mosquitto with the dynamic-security plugin: the broker lets a
//! device use its own machine's topics and nothing else, and locks it out once revoked.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use aurum_domain::auth::DeviceGrant;
use aurum_domain::{MachineId, TenantId};
use aurum_mqtt::{DynsecBroker, Publisher};
use aurum_ports::auth::DeviceBroker;
use aurum_testkit::{eventually, Broker};
use paho_mqtt as mqtt;
use secrecy::SecretString;

fn grant(username: &str, tenant: &str, machine: &str) -> DeviceGrant {
    DeviceGrant {
        username: username.to_owned(),
        tenant: TenantId::parse(tenant).unwrap(),
        machine: MachineId::parse(machine).unwrap(),
    }
}

fn admin(broker: &Broker) -> DynsecBroker {
    DynsecBroker::new(
        broker.settings("aurum-auth-test", broker.admin()),
        Duration::from_secs(5),
    )
}

/// Subscribes as the plugin's admin to every `aurum/` topic and collects what arrives.
async fn watch_everything(
    broker: &Broker,
) -> (
    mqtt::AsyncClient,
    mqtt::AsyncReceiver<Option<mqtt::Message>>,
) {
    let (user, password) = broker.admin().unwrap();
    let mut client = mqtt::AsyncClient::new(format!("tcp://127.0.0.1:{}", broker.port)).unwrap();
    let stream = client.get_stream(100);
    let opts = mqtt::ConnectOptionsBuilder::new_v5()
        .user_name(user)
        .password(password)
        .finalize();
    client.connect(opts).await.unwrap();
    client.subscribe("aurum/#", mqtt::QOS_1).await.unwrap();
    (client, stream)
}

async fn topics_received(
    stream: &mqtt::AsyncReceiver<Option<mqtt::Message>>,
    quiet: Duration,
) -> Vec<String> {
    let mut topics = Vec::new();
    while let Ok(Ok(Some(msg))) = tokio::time::timeout(quiet, stream.recv()).await {
        topics.push(msg.topic().to_owned());
    }
    topics
}

async fn connect_device(
    broker: &Broker,
    user: &str,
    password: &str,
) -> Result<Publisher, aurum_mqtt::MqttError> {
    Publisher::connect(
        &broker.settings(&format!("{user}-client"), Some((user, password))),
        10,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_publishes_its_own_telemetry_and_status_and_nothing_else() {
    let broker = Broker::start_with_dynsec();
    let admin = admin(&broker);
    admin
        .grant(
            &grant("dev-truck-7", "acme", "TRUCK-7"),
            &SecretString::from("s3cret-device-pass"),
        )
        .await
        .unwrap();
    let (_watcher, seen) = watch_everything(&broker).await;

    let device = connect_device(&broker, "dev-truck-7", "s3cret-device-pass")
        .await
        .unwrap();
    let publish = |topic: &str| device.publish(topic, b"{}".to_vec(), "application/json", None);
    publish("aurum/v1/acme/TRUCK-7/telemetry").await.unwrap();
    publish("aurum/v1/acme/TRUCK-7/status").await.unwrap();
    // Another machine of the same tenant, the same machine id in another tenant, and a
    // command topic: refused by the broker (PUBACK "not authorized").
    assert!(publish("aurum/v1/acme/TRUCK-8/telemetry").await.is_err());
    assert!(publish("aurum/v1/globex/TRUCK-7/telemetry").await.is_err());
    assert!(publish("aurum/v1/acme/TRUCK-7/commands").await.is_err());

    let received = topics_received(&seen, Duration::from_millis(700)).await;
    assert_eq!(
        received,
        [
            "aurum/v1/acme/TRUCK-7/telemetry",
            "aurum/v1/acme/TRUCK-7/status"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_subscribes_to_its_own_commands_only() {
    let broker = Broker::start_with_dynsec();
    admin(&broker)
        .grant(
            &grant("dev-mill-1", "acme", "MILL-1"),
            &SecretString::from("mill-device-pass"),
        )
        .await
        .unwrap();
    let client = mqtt::AsyncClient::new(format!("tcp://127.0.0.1:{}", broker.port)).unwrap();
    let opts = mqtt::ConnectOptionsBuilder::new_v5()
        .user_name("dev-mill-1")
        .password("mill-device-pass")
        .finalize();
    client.connect(opts).await.unwrap();
    assert!(client
        .subscribe("aurum/v1/acme/MILL-1/commands", mqtt::QOS_1)
        .await
        .is_ok());
    for filter in [
        "aurum/v1/acme/MILL-2/commands",
        "aurum/v1/acme/+/commands",
        "aurum/#",
        "#",
    ] {
        assert!(
            client.subscribe(filter, mqtt::QOS_1).await.is_err(),
            "{filter} must be refused"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_or_unknown_credentials_cannot_connect() {
    let broker = Broker::start_with_dynsec();
    admin(&broker)
        .grant(
            &grant("dev-pump-3", "acme", "PUMP-3"),
            &SecretString::from("pump-device-pass"),
        )
        .await
        .unwrap();
    assert!(connect_device(&broker, "dev-pump-3", "not-the-password")
        .await
        .is_err());
    assert!(connect_device(&broker, "nobody", "pump-device-pass")
        .await
        .is_err());
    // No anonymous access either.
    let anonymous = mqtt::AsyncClient::new(format!("tcp://127.0.0.1:{}", broker.port)).unwrap();
    assert!(anonymous
        .connect(mqtt::ConnectOptionsBuilder::new_v5().finalize())
        .await
        .is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_device_is_disconnected_and_locked_out() {
    let broker = Broker::start_with_dynsec();
    let admin = admin(&broker);
    admin
        .grant(
            &grant("dev-boiler-2", "acme", "BOILER-2"),
            &SecretString::from("boiler-device-pass"),
        )
        .await
        .unwrap();
    let device = connect_device(&broker, "dev-boiler-2", "boiler-device-pass")
        .await
        .unwrap();
    assert!(device.is_connected());

    admin.revoke("dev-boiler-2").await.unwrap();
    assert!(
        eventually(Duration::from_secs(5), || async { !device.is_connected() }).await,
        "the live connection must be dropped"
    );
    assert!(
        connect_device(&broker, "dev-boiler-2", "boiler-device-pass")
            .await
            .is_err()
    );
    // Revoking again, or revoking an unknown device, is not an error.
    admin.revoke("dev-boiler-2").await.unwrap();
    admin.revoke("never-existed").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn granting_again_rotates_the_password() {
    let broker = Broker::start_with_dynsec();
    let admin = admin(&broker);
    let device = grant("dev-truck-9", "acme", "TRUCK-9");
    admin
        .grant(&device, &SecretString::from("first-password-1"))
        .await
        .unwrap();
    admin
        .grant(&device, &SecretString::from("second-password-2"))
        .await
        .unwrap();
    assert!(connect_device(&broker, "dev-truck-9", "first-password-1")
        .await
        .is_err());
    assert!(connect_device(&broker, "dev-truck-9", "second-password-2")
        .await
        .is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_broker_is_reported_as_unavailable() {
    let broker = Broker::start_with_dynsec();
    let mut settings = broker.settings("aurum-auth-test", broker.admin());
    settings.url = format!("mqtt://127.0.0.1:{}", aurum_testkit::free_port());
    let admin = DynsecBroker::new(settings, Duration::from_secs(2));
    let err = admin.revoke("dev-x").await.unwrap_err();
    assert!(
        matches!(err, aurum_ports::auth::BrokerAdminError::Unavailable(_)),
        "{err}"
    );
}
