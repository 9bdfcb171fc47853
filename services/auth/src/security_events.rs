//! Security events: logged (tracing, `event` field), counted
//! (`aurum_auth_security_events_total{event}`) and kept for the person they concern. They carry
//! who and from where, never a password, secret or token.

use std::sync::Arc;

use actix_web::HttpRequest;
use aurum_ports::auth::{SecurityEventRecord, SecurityEventStore};
use chrono::Utc;
use uuid::Uuid;

use crate::metrics::AuthMetrics;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    LoginSucceeded,
    LoginFailed,
    LoginLocked,
    /// A spent refresh token presented again: its family was revoked.
    RefreshTokenReuse,
    /// A spent authorization code presented again: its grant was revoked.
    CodeReuse,
    InvalidClientAuth,
    UserCreated,
    UserUpdated,
    UserAnonymised,
    ClientCreated,
    ClientDeleted,
    KeyRotated,
    Logout,
    AccessDenied,
    /// A sign-in through an upstream identity provider.
    FederatedLoginSucceeded,
    /// A refused upstream sign-in (bad or spent state, nonce, unmapped identity, ...).
    FederatedLoginFailed,
    DeviceProvisioned,
    DeviceRevoked,
    DeviceCertificateIssued,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::LoginSucceeded => "login_succeeded",
            EventKind::LoginFailed => "login_failed",
            EventKind::LoginLocked => "login_locked",
            EventKind::RefreshTokenReuse => "refresh_token_reuse",
            EventKind::CodeReuse => "authorization_code_reuse",
            EventKind::InvalidClientAuth => "invalid_client_auth",
            EventKind::UserCreated => "user_created",
            EventKind::UserUpdated => "user_updated",
            EventKind::UserAnonymised => "user_anonymised",
            EventKind::ClientCreated => "client_created",
            EventKind::ClientDeleted => "client_deleted",
            EventKind::KeyRotated => "key_rotated",
            EventKind::Logout => "logout",
            EventKind::AccessDenied => "access_denied",
            EventKind::FederatedLoginSucceeded => "federated_login_succeeded",
            EventKind::FederatedLoginFailed => "federated_login_failed",
            EventKind::DeviceProvisioned => "device_provisioned",
            EventKind::DeviceRevoked => "device_revoked",
            EventKind::DeviceCertificateIssued => "device_certificate_issued",
        }
    }

    /// Events that point at an attack or a misuse: logged as warnings.
    fn is_alarm(self) -> bool {
        matches!(
            self,
            EventKind::LoginFailed
                | EventKind::LoginLocked
                | EventKind::RefreshTokenReuse
                | EventKind::CodeReuse
                | EventKind::InvalidClientAuth
                | EventKind::AccessDenied
                | EventKind::FederatedLoginFailed
        )
    }
}

/// Where a request came from.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

impl Origin {
    pub fn of(req: &HttpRequest, trusted: &aurum_http::TrustedProxies) -> Self {
        let ip = aurum_http::client_ip(req, trusted).map(|ip| ip.to_string());
        let user_agent = req
            .headers()
            .get(actix_web::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.chars().filter(|c| !c.is_control()).take(256).collect());
        Self { ip, user_agent }
    }
}

/// One event being described.
#[derive(Debug, Clone, Default)]
pub struct Subject {
    pub tenant: Option<String>,
    pub user_id: Option<Uuid>,
    pub username: Option<String>,
    pub client_id: Option<String>,
}

#[derive(Debug, Clone)]
pub struct SecurityEvents {
    store: Arc<dyn SecurityEventStore>,
    metrics: AuthMetrics,
}

impl SecurityEvents {
    pub fn new(store: Arc<dyn SecurityEventStore>, metrics: AuthMetrics) -> Self {
        Self { store, metrics }
    }

    /// Logs, counts and stores the event (a storage failure is logged, not raised: the
    /// request it belongs to goes on).
    pub async fn record(&self, kind: EventKind, who: Subject, from: &Origin) {
        let event = kind.as_str();
        self.metrics
            .security_events
            .with_label_values(&[event])
            .inc();
        let user = who.user_id.map(|u| u.to_string());
        if kind.is_alarm() {
            tracing::warn!(
                event,
                user = user.as_deref(),
                username = who.username.as_deref(),
                client_id = who.client_id.as_deref(),
                tenant = who.tenant.as_deref(),
                ip = from.ip.as_deref(),
                user_agent = from.user_agent.as_deref(),
                "security event"
            );
        } else {
            tracing::info!(
                event,
                user = user.as_deref(),
                username = who.username.as_deref(),
                client_id = who.client_id.as_deref(),
                tenant = who.tenant.as_deref(),
                ip = from.ip.as_deref(),
                user_agent = from.user_agent.as_deref(),
                "security event"
            );
        }
        let record = SecurityEventRecord {
            at: Utc::now(),
            event: event.to_owned(),
            tenant: who.tenant,
            user_id: who.user_id,
            username: who.username,
            client_id: who.client_id,
            ip: from.ip.clone(),
            user_agent: from.user_agent.clone(),
        };
        if let Err(e) = self.store.record_event(&record).await {
            tracing::error!(error = %e, event, "cannot store security event");
        }
    }
}
