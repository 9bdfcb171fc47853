//! A Mosquitto broker per test, on a free port, with persistence so it can be restarted
//! without losing queued messages; optionally with the dynamic-security plugin enforcing
//! credentials and topic ACLs.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aurum_config::MqttSettings;
use secrecy::SecretString;

#[derive(Debug)]
pub struct Broker {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
    admin: Option<(String, String)>,
    /// The mutual-TLS listener's port, when started with one.
    pub tls_port: Option<u16>,
}

/// PEM files of a TLS listener: the CA that client certificates must chain to, and the
/// broker's own certificate and key. They must be readable by the broker's user.
#[derive(Debug, Clone)]
pub struct BrokerTls {
    pub ca_file: PathBuf,
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

const ADMIN_USER: &str = "aurum-admin";

/// Where Debian's mosquitto package puts the dynamic-security plugin.
fn dynsec_plugin() -> PathBuf {
    std::env::var_os("AURUM_TEST_MOSQUITTO_DYNSEC")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so"))
}

fn mosquitto_binary() -> PathBuf {
    std::env::var_os("AURUM_TEST_MOSQUITTO")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/sbin/mosquitto"))
}

impl Broker {
    /// A broker that lets anyone connect and use any topic.
    pub fn start() -> Self {
        Self::start_with(false, None)
    }

    /// A broker that authenticates every client and enforces topics through the
    /// dynamic-security plugin: only the plugin's admin account (see [`Broker::admin`]) exists
    /// at first; devices are added through the plugin's control topic.
    pub fn start_with_dynsec() -> Self {
        Self::start_with(true, None)
    }

    /// A dynamic-security broker that also listens with mutual TLS (see [`Broker::tls_port`]):
    /// clients must present a certificate signed by `tls.ca_file`, and the certificate's
    /// common name is their username, so the plugin applies that account's topic rights.
    pub fn start_with_dynsec_mtls(tls: &BrokerTls) -> Self {
        Self::start_with(true, Some(tls))
    }

    /// An open (or, with `dynsec`, a dynamic-security) broker with `extra` appended to its
    /// configuration, e.g. the packet and queue limits of a deployed broker.
    pub fn start_with_extra_config(dynsec: bool, extra: &str) -> Self {
        Self::start_configured(dynsec, None, extra)
    }

    fn start_with(dynsec: bool, tls: Option<&BrokerTls>) -> Self {
        Self::start_configured(dynsec, tls, "")
    }

    fn start_configured(dynsec: bool, tls: Option<&BrokerTls>, extra: &str) -> Self {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        // Started as root, mosquitto drops to its own user: let it write its state here.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777))
            .unwrap_or_else(|e| panic!("chmod the broker's directory: {e}"));
        let port = crate::free_port();
        let mut conf = format!(
            "listener {port} 127.0.0.1\n\
             persistence true\n\
             persistence_location {}/\n\
             max_queued_messages 0\n\
             max_inflight_messages 1000\n\
             log_dest file {}/mosquitto.log\n",
            dir.path().display(),
            dir.path().display(),
        );
        let admin = dynsec.then(|| {
            let password = uuid::Uuid::new_v4().simple().to_string();
            let state = dir.path().join("dynamic-security.json");
            let out = Command::new("mosquitto_ctrl")
                .args(["dynsec", "init"])
                .arg(&state)
                .args([ADMIN_USER, &password])
                .output()
                .unwrap_or_else(|e| panic!("cannot run mosquitto_ctrl (make deps): {e}"));
            assert!(
                out.status.success(),
                "mosquitto_ctrl dynsec init failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o666))
                .unwrap_or_else(|e| panic!("chmod the plugin's state: {e}"));
            conf.push_str(&format!(
                "allow_anonymous false\n\
                 plugin {}\n\
                 plugin_opt_config_file {}\n",
                dynsec_plugin().display(),
                state.display()
            ));
            (ADMIN_USER.to_owned(), password)
        });
        if admin.is_none() {
            conf.push_str("allow_anonymous true\n");
        }
        let tls_port = tls.map(|t| {
            let port = crate::free_port();
            conf.push_str(&format!(
                "listener {port} 127.0.0.1\n\
                 cafile {}\n\
                 certfile {}\n\
                 keyfile {}\n\
                 require_certificate true\n\
                 use_identity_as_username true\n",
                t.ca_file.display(),
                t.cert_file.display(),
                t.key_file.display(),
            ));
            port
        });
        conf.push_str(extra);
        conf.push('\n');
        std::fs::write(dir.path().join("mosquitto.conf"), conf)
            .unwrap_or_else(|e| panic!("write mosquitto.conf: {e}"));
        let mut b = Self {
            port,
            dir,
            child: None,
            admin,
            tls_port,
        };
        b.start_again();
        b
    }

    /// The dynamic-security admin's username and password (`None` on an open broker).
    pub fn admin(&self) -> Option<(&str, &str)> {
        self.admin.as_ref().map(|(u, p)| (u.as_str(), p.as_str()))
    }

    /// Client settings for this broker, logging in as `credentials` when given.
    pub fn settings(&self, client_id: &str, credentials: Option<(&str, &str)>) -> MqttSettings {
        let mut s = MqttSettings::local(client_id);
        s.url = self.url();
        if let Some((user, password)) = credentials {
            s.username = Some(user.to_owned());
            s.password = Some(SecretString::from(password.to_owned()));
        }
        s
    }

    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    /// Starts the broker (again, after `stop`) on its port, with its saved state.
    pub fn start_again(&mut self) {
        let child = Command::new(mosquitto_binary())
            .arg("-c")
            .arg(self.dir.path().join("mosquitto.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start mosquitto (apt install mosquitto): {e}"));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err()
            || self
                .tls_port
                .is_some_and(|p| std::net::TcpStream::connect(("127.0.0.1", p)).is_err())
        {
            assert!(
                Instant::now() < deadline,
                "mosquitto did not start on {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops gracefully (SIGTERM: the broker saves its state) and waits for the exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            crate::sigterm(child.id());
            let _ = child.wait();
        }
    }

    pub fn restart(&mut self) {
        self.stop();
        self.start_again();
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
