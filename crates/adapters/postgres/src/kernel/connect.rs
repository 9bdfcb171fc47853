//! The connection pool: bb8 + diesel-async over tokio-postgres, with TLS per `sslmode`.

use std::path::Path;
use std::time::Duration;

use aurum_config::{DatabaseSettings, SslMode};
use diesel::ConnectionError;
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig};
use diesel_async::AsyncPgConnection;
use futures::FutureExt;
use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::X509;
use postgres_openssl::MakeTlsConnector;
use secrecy::ExposeSecret;

pub type PgPool = bb8::Pool<AsyncDieselConnectionManager<AsyncPgConnection>>;

#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    #[error("invalid database TLS settings: {0}")]
    Tls(String),
}

/// Which credentials to connect with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum As {
    Service,
    Admin,
}

pub(crate) fn pg_config(s: &DatabaseSettings, who: As) -> tokio_postgres::Config {
    let mut c = tokio_postgres::Config::new();
    c.host(&s.host)
        .port(s.port)
        .dbname(&s.name)
        .connect_timeout(Duration::from_millis(s.connect_timeout_ms))
        .application_name("aurumai");
    let (user, password) = match who {
        As::Admin => (
            s.admin_user.as_deref().unwrap_or(&s.user),
            s.admin_password.as_ref().or(s.password.as_ref()),
        ),
        As::Service => (s.user.as_str(), s.password.as_ref()),
    };
    c.user(user);
    if let Some(pw) = password {
        c.password(pw.expose_secret());
    }
    c.ssl_mode(match s.sslmode {
        SslMode::Disable => tokio_postgres::config::SslMode::Disable,
        SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
        SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
            tokio_postgres::config::SslMode::Require
        }
    });
    c
}

/// An OpenSSL connector implementing libpq's sslmode semantics: `prefer`/`require` encrypt
/// without verifying, `verify-ca` checks the chain against `sslrootcert`, `verify-full` also
/// the host name.
pub(crate) fn tls(s: &DatabaseSettings) -> Result<MakeTlsConnector, PoolError> {
    let err = |e: openssl::error::ErrorStack| PoolError::Tls(e.to_string());
    let mut b = SslConnector::builder(SslMethod::tls_client()).map_err(err)?;
    let verify = verifies(s.sslmode);
    if verify {
        let ca = s
            .sslrootcert
            .as_ref()
            .ok_or_else(|| PoolError::Tls("sslrootcert is required to verify".into()))?;
        // Trust exactly the given CA, as libpq does: not the system's store as well.
        let pem = std::fs::read(ca).map_err(|e| {
            PoolError::Tls(format!("cannot read sslrootcert {}: {e}", ca.display()))
        })?;
        let mut store = X509StoreBuilder::new().map_err(err)?;
        for cert in X509::stack_from_pem(&pem).map_err(err)? {
            store.add_cert(cert).map_err(err)?;
        }
        b.set_cert_store(store.build());
        b.set_verify(SslVerifyMode::PEER);
    } else {
        b.set_verify(SslVerifyMode::NONE);
    }
    let mut connector = MakeTlsConnector::new(b.build());
    let check_host = s.sslmode == SslMode::VerifyFull;
    connector.set_callback(move |config, _domain| {
        config.set_verify_hostname(check_host);
        Ok(())
    });
    Ok(connector)
}

fn verifies(mode: SslMode) -> bool {
    matches!(mode, SslMode::VerifyCa | SslMode::VerifyFull)
}

/// The certificate files the pool reads, named for their expiry metrics: `database_ca`, the
/// `sslrootcert` bundle, when `sslmode` verifies the server (otherwise it is never read).
pub fn certificate_files(s: &DatabaseSettings) -> Vec<(&'static str, &Path)> {
    match &s.sslrootcert {
        Some(ca) if verifies(s.sslmode) => vec![("database_ca", ca.as_path())],
        _ => Vec::new(),
    }
}

pub(crate) async fn connect_one(
    s: &DatabaseSettings,
    who: As,
) -> Result<AsyncPgConnection, ConnectionError> {
    let config = pg_config(s, who);
    let tls = tls(s).map_err(|e| ConnectionError::BadConnection(e.to_string()))?;
    let (client, conn) = config
        .connect(tls)
        .await
        .map_err(|e| ConnectionError::BadConnection(e.to_string()))?;
    AsyncPgConnection::try_from_client_and_connection(client, conn).await
}

/// Builds the service's pool. It connects lazily: the service starts (and reports not-ready)
/// while the database is away, and recovers when it returns.
pub fn connect_pool(s: &DatabaseSettings) -> Result<PgPool, PoolError> {
    tls(s)?; // fail fast on unreadable certificates
    let settings = s.clone();
    let mut mc = ManagerConfig::<AsyncPgConnection>::default();
    mc.custom_setup = Box::new(move |_url| {
        let settings = settings.clone();
        async move { connect_one(&settings, As::Service).await }.boxed()
    });
    let manager = AsyncDieselConnectionManager::new_with_config("postgres://configured", mc);
    Ok(bb8::Pool::builder()
        .max_size(s.pool_max_size)
        .connection_timeout(Duration::from_millis(s.connect_timeout_ms))
        .idle_timeout(Some(Duration::from_secs(300)))
        .build_unchecked(manager))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_ca_is_watched_only_when_it_is_used() {
        let mut s = DatabaseSettings::local("aurum", "aurumai_ingestion");
        s.sslrootcert = Some("ca.pem".into());
        for (mode, used) in [
            (SslMode::Disable, false),
            (SslMode::Prefer, false),
            (SslMode::Require, false),
            (SslMode::VerifyCa, true),
            (SslMode::VerifyFull, true),
        ] {
            s.sslmode = mode;
            let files = certificate_files(&s);
            assert_eq!(!files.is_empty(), used, "{mode:?}");
        }
        s.sslrootcert = None;
        assert!(certificate_files(&s).is_empty());
    }
}
