//! Device identities on Mosquitto through its dynamic-security plugin: the broker itself
//! checks each device's password and topics, and changes apply without a restart.
//!
//! Commands go as JSON to `$CONTROL/dynamic-security/v1`; the broker answers on
//! `.../response`, echoing each command's `correlationData`. The connecting account needs the
//! plugin's admin role.

use std::time::Duration;

use aurum_config::MqttSettings;
use aurum_domain::auth::DeviceGrant;
use aurum_ports::auth::{BrokerAdminError, DeviceBroker};
use paho_mqtt as mqtt;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};

use crate::connection::{connect_options, create_client, drop_failed_client};

const CONTROL_TOPIC: &str = "$CONTROL/dynamic-security/v1";
const RESPONSE_TOPIC: &str = "$CONTROL/dynamic-security/v1/response";

/// The broker's answers that mean "already in the wanted state" for an idempotent change.
const ABSENT: [&str; 2] = ["Client not found", "Role not found"];

/// Administers device accounts on one broker. Commands are serialised: provisioning is rare,
/// and one connection with one outstanding batch keeps answers unambiguous.
pub struct DynsecBroker {
    settings: MqttSettings,
    timeout: Duration,
    session: tokio::sync::Mutex<Option<Session>>,
}

struct Session {
    client: mqtt::AsyncClient,
    answers: mqtt::AsyncReceiver<Option<mqtt::Message>>,
}

impl std::fmt::Debug for DynsecBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynsecBroker")
            .field("url", &self.settings.url)
            .field("username", &self.settings.username)
            .finish()
    }
}

/// The role that carries one device's topic rights.
fn device_role(username: &str) -> String {
    format!("device-{username}")
}

/// Forgets a session that failed mid-command (its client is dropped safely, later).
fn discard(session: &mut Option<Session>) {
    if let Some(s) = session.take() {
        drop_failed_client(s.client);
    }
}

fn unavailable(e: impl std::fmt::Display) -> BrokerAdminError {
    BrokerAdminError::Unavailable(e.to_string())
}

impl DynsecBroker {
    /// `settings` name the broker and the admin account; nothing connects until first use.
    pub fn new(settings: MqttSettings, timeout: Duration) -> Self {
        Self {
            settings,
            timeout,
            session: tokio::sync::Mutex::new(None),
        }
    }

    async fn open(&self) -> Result<Session, BrokerAdminError> {
        let mut client = create_client(&self.settings).map_err(unavailable)?;
        let answers = client.get_stream(16);
        let opts = connect_options(&self.settings, true)
            .map_err(unavailable)?
            .finalize();
        let connected = match tokio::time::timeout(self.timeout, client.connect(opts)).await {
            Err(_) => Err(unavailable("timed out connecting to the broker")),
            Ok(Err(e)) => Err(unavailable(e)),
            Ok(Ok(_)) => {
                match tokio::time::timeout(
                    self.timeout,
                    client.subscribe(RESPONSE_TOPIC, mqtt::QOS_1),
                )
                .await
                {
                    Err(_) => Err(unavailable("timed out subscribing to the plugin's answers")),
                    Ok(Err(e)) => Err(unavailable(e)),
                    Ok(Ok(_)) => Ok(()),
                }
            }
        };
        match connected {
            Ok(()) => Ok(Session { client, answers }),
            Err(e) => {
                drop_failed_client(client);
                Err(e)
            }
        }
    }

    /// Sends one batch and checks every answer; an answer whose error is in `tolerated` counts
    /// as success.
    async fn execute(
        &self,
        commands: Vec<Value>,
        tolerated: &[&str],
    ) -> Result<(), BrokerAdminError> {
        let mut guard = self.session.lock().await;
        if guard.as_ref().is_none_or(|s| !s.client.is_connected()) {
            *guard = Some(self.open().await?);
        }
        let Some(session) = guard.as_mut() else {
            return Err(unavailable("no broker session"));
        };
        let batch = uuid::Uuid::new_v4().simple().to_string();
        let mut expected = Vec::with_capacity(commands.len());
        let commands: Vec<Value> = commands
            .into_iter()
            .enumerate()
            .map(|(i, mut c)| {
                let id = format!("{batch}-{i}");
                c["correlationData"] = Value::String(id.clone());
                expected.push((id, c["command"].as_str().unwrap_or("?").to_owned()));
                c
            })
            .collect();
        let payload = json!({ "commands": commands }).to_string();
        let msg = mqtt::Message::new(CONTROL_TOPIC, payload, mqtt::QOS_1);
        let sent = tokio::time::timeout(self.timeout, session.client.publish(msg)).await;
        if let Err(e) = sent
            .map_err(|_| "timed out")
            .and_then(|r| r.map_err(|_| "refused"))
        {
            discard(&mut guard);
            return Err(unavailable(format!("cannot send to the plugin: {e}")));
        }

        let deadline = tokio::time::Instant::now() + self.timeout;
        let mut pending = expected;
        while !pending.is_empty() {
            let next = tokio::time::timeout_at(deadline, session.answers.recv()).await;
            let msg = match next {
                Ok(Ok(Some(msg))) => msg,
                Ok(Ok(None)) | Ok(Err(_)) => {
                    discard(&mut guard);
                    return Err(unavailable("lost the broker connection awaiting an answer"));
                }
                Err(_) => {
                    discard(&mut guard);
                    return Err(unavailable("the plugin did not answer in time"));
                }
            };
            if msg.topic() != RESPONSE_TOPIC {
                continue;
            }
            let answer: Value = serde_json::from_slice(msg.payload()).unwrap_or(Value::Null);
            for response in answer["responses"].as_array().into_iter().flatten() {
                let Some(id) = response["correlationData"].as_str() else {
                    continue;
                };
                let Some(at) = pending.iter().position(|(p, _)| p == id) else {
                    continue;
                };
                let (_, command) = pending.swap_remove(at);
                if let Some(error) = response["error"].as_str() {
                    if !tolerated.contains(&error) {
                        return Err(BrokerAdminError::Refused {
                            command,
                            reason: error.to_owned(),
                        });
                    }
                }
            }
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl DeviceBroker for DynsecBroker {
    async fn grant(
        &self,
        device: &DeviceGrant,
        password: &SecretString,
    ) -> Result<(), BrokerAdminError> {
        let role = device_role(&device.username);
        let topics = device.topics();
        // Replace whatever this username had: a re-grant is a credential rotation.
        self.execute(
            vec![
                json!({ "command": "deleteClient", "username": device.username }),
                json!({ "command": "deleteRole", "rolename": role }),
            ],
            &ABSENT,
        )
        .await?;
        let acl =
            |kind: &str, topic: &str| json!({ "acltype": kind, "topic": topic, "allow": true });
        self.execute(
            vec![
                json!({
                    "command": "createRole",
                    "rolename": role,
                    "acls": [
                        acl("publishClientSend", &topics.telemetry),
                        acl("publishClientSend", &topics.status),
                        acl("subscribePattern", &topics.commands),
                        acl("publishClientReceive", &topics.commands),
                    ],
                }),
                json!({
                    "command": "createClient",
                    "username": device.username,
                    "password": password.expose_secret(),
                    "textname": format!("device of {}/{}", device.tenant.as_str(), device.machine.as_str()),
                    "roles": [{ "rolename": role }],
                }),
            ],
            &[],
        )
        .await
    }

    async fn revoke(&self, username: &str) -> Result<(), BrokerAdminError> {
        // Deleting the client also disconnects a live session of it.
        self.execute(
            vec![
                json!({ "command": "deleteClient", "username": username }),
                json!({ "command": "deleteRole", "rolename": device_role(username) }),
            ],
            &ABSENT,
        )
        .await
    }
}
