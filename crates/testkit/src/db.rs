//! A fresh database per test.

use aurum_config::{DatabaseSettings, SslMode};
use tokio_postgres::NoTls;

/// The local server tests use; `AURUM_TEST_PG_HOST`/`_PORT`/`_USER` override it.
fn server() -> (String, u16, String) {
    let host = std::env::var("AURUM_TEST_PG_HOST").unwrap_or_else(|_| "127.0.0.1".into());
    let port = std::env::var("AURUM_TEST_PG_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(5432);
    let user = std::env::var("AURUM_TEST_PG_USER").unwrap_or_else(|_| "postgres".into());
    (host, port, user)
}

/// A uniquely named database, dropped (with its connections) when this value is dropped.
#[derive(Debug)]
pub struct TestDb {
    pub name: String,
}

impl TestDb {
    pub async fn create() -> Self {
        let name = format!("aurum_test_{}", uuid::Uuid::new_v4().simple());
        let client = admin_client("postgres").await;
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
        Self { name }
    }

    /// Settings for a service: its own role for normal work, the server's superuser for
    /// migrations. Trust authentication on the local server: no passwords.
    pub fn settings(&self, service_role: &str) -> DatabaseSettings {
        let (host, port, user) = server();
        let mut s = DatabaseSettings::local(&self.name, service_role);
        s.host = host;
        s.port = port;
        s.admin_user = Some(user);
        s.sslmode = SslMode::Disable;
        s.pool_max_size = 8;
        s.connect_timeout_ms = 2_000;
        s
    }

    /// A superuser connection to this database, for assertions.
    pub async fn client(&self) -> tokio_postgres::Client {
        admin_client(&self.name).await
    }

    /// Runs a query as `role` (via SET ROLE), returning the error text if it fails.
    pub async fn as_role(&self, role: &str, sql: &str) -> Result<u64, String> {
        let c = self.client().await;
        c.batch_execute(&format!("SET ROLE {role}"))
            .await
            .map_err(|e| e.to_string())?;
        c.execute(sql, &[]).await.map_err(|e| {
            e.as_db_error()
                .map(|d| d.message().to_owned())
                .unwrap_or_else(|| e.to_string())
        })
    }

    pub async fn count(&self, sql: &str) -> i64 {
        self.client()
            .await
            .query_one(sql, &[])
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .get(0)
    }
}

async fn admin_client(dbname: &str) -> tokio_postgres::Client {
    let (host, port, user) = server();
    let (client, conn) = tokio_postgres::Config::new()
        .host(&host)
        .port(port)
        .user(&user)
        .dbname(dbname)
        .connect(NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot reach PostgreSQL at {host}:{port} as {user}: {e}"));
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs outside async context guarantees: use a thread with its own runtime.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                let client = admin_client("postgres").await;
                let _ = client
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await;
            });
        })
        .join();
    }
}
