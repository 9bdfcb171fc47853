//! `/v1/devices`: operators provision and revoke their tenant's devices; anyone of the tenant
//! lists them. Another tenant's device is 404, as if it did not exist.

use actix_web::http::header::{CacheControl, CacheDirective};
use actix_web::{web, HttpRequest, HttpResponse};
use aurum_domain::auth::DeviceTopics;
use aurum_domain::{MachineId, Role};
use aurum_http::Problem;
use aurum_ports::auth::DeviceRecord;
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::{DeviceError, DeviceService};
use crate::app::AppState;
use crate::bearer::Caller;
use crate::security_events::{EventKind, Origin};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/devices", web::get().to(list))
        .route("/devices", web::post().to(provision))
        .route("/devices/{id}", web::get().to(get))
        .route("/devices/{id}", web::delete().to(revoke))
        .route("/devices/{id}/certificate", web::post().to(certificate));
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewDeviceBody {
    pub machine_id: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CsrBody {
    /// PEM-encoded PKCS#10 certificate signing request.
    pub csr: String,
}

fn view(d: &DeviceRecord) -> serde_json::Value {
    let topics = DeviceTopics::of(&d.tenant, &d.machine);
    json!({
        "id": d.id,
        "tenant": d.tenant.as_str(),
        "machine_id": d.machine.as_str(),
        "username": d.username,
        "topics": {
            "publish": [topics.telemetry, topics.status],
            "subscribe": [topics.commands],
        },
        "created_by": d.created_by,
        "created_at": d.created_at,
        "revoked_at": d.revoked_at,
        "revoked_by": d.revoked_by,
        "certificate_serials": d.cert_serials,
    })
}

fn service(state: &AppState) -> Result<&DeviceService, Problem> {
    state.devices.as_deref().ok_or_else(|| {
        Problem::new(
            actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
            "devices-not-configured",
            "Device provisioning is not configured",
        )
        .detail("this auth service has no broker administration account (auth.devices)")
    })
}

fn problem(e: DeviceError) -> Problem {
    match e {
        DeviceError::NotFound => Problem::not_found("no such device"),
        DeviceError::Revoked => Problem::conflict("the device is revoked"),
        DeviceError::MachineTaken(e) => Problem::conflict(e.to_string()),
        DeviceError::NoCa => Problem::new(
            actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
            "device-ca-not-configured",
            "Device certificates are not enabled",
        ),
        DeviceError::Csr(e @ super::CsrError::Signing(_)) => {
            tracing::error!(error = %e, "cannot sign a device certificate");
            Problem::internal()
        }
        DeviceError::Csr(e) => Problem::unprocessable(e.to_string()),
        DeviceError::Broker(e) => {
            tracing::error!(error = %e, "the broker did not apply a device change");
            Problem::unavailable()
        }
        DeviceError::Store(e) => {
            tracing::error!(error = %e, "device storage failed");
            Problem::unavailable()
        }
    }
}

fn device_id(raw: &str) -> Result<Uuid, Problem> {
    // An id that cannot exist is "not found", like an unknown one.
    Uuid::parse_str(raw).map_err(|_| Problem::not_found("no such device"))
}

fn actor(caller: &Caller) -> String {
    caller.claims.sub.clone()
}

async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
) -> Result<HttpResponse, Problem> {
    let tenant = caller.require(&state, Role::Viewer, &req).await?;
    let devices = service(&state)?.list(&tenant).await.map_err(problem)?;
    Ok(HttpResponse::Ok().json(json!({ "devices": devices.iter().map(view).collect::<Vec<_>>() })))
}

async fn get(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let tenant = caller.require(&state, Role::Viewer, &req).await?;
    let device = service(&state)?
        .get(&tenant, device_id(&path)?)
        .await
        .map_err(problem)?;
    Ok(HttpResponse::Ok().json(view(&device)))
}

async fn provision(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    body: web::Json<NewDeviceBody>,
) -> Result<HttpResponse, Problem> {
    let tenant = caller.require(&state, Role::Operator, &req).await?;
    let machine = MachineId::parse(&body.machine_id)
        .map_err(|e| Problem::unprocessable(format!("machine_id: {e}")))?;
    let provisioned = service(&state)?
        .provision(tenant, machine, &actor(&caller))
        .await
        .map_err(problem)?;
    state
        .events
        .record(
            EventKind::DeviceProvisioned,
            caller.subject(),
            &Origin::of(&req, &state.settings.trusted_proxies),
        )
        .await;
    let mut body = view(&provisioned.device);
    body["password"] = json!(provisioned.password.expose_secret());
    // The password is shown once: no cache may keep it.
    Ok(HttpResponse::Created()
        .insert_header(CacheControl(vec![CacheDirective::NoStore]))
        .json(body))
}

async fn revoke(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let tenant = caller.require(&state, Role::Operator, &req).await?;
    let device = service(&state)?
        .revoke(&tenant, device_id(&path)?, &actor(&caller))
        .await
        .map_err(problem)?;
    state
        .events
        .record(
            EventKind::DeviceRevoked,
            caller.subject(),
            &Origin::of(&req, &state.settings.trusted_proxies),
        )
        .await;
    Ok(HttpResponse::Ok().json(view(&device)))
}

async fn certificate(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<CsrBody>,
) -> Result<HttpResponse, Problem> {
    let tenant = caller.require(&state, Role::Operator, &req).await?;
    let (device, issued) = service(&state)?
        .issue_certificate(&tenant, device_id(&path)?, body.csr.as_bytes())
        .await
        .map_err(problem)?;
    state
        .events
        .record(
            EventKind::DeviceCertificateIssued,
            caller.subject(),
            &Origin::of(&req, &state.settings.trusted_proxies),
        )
        .await;
    Ok(HttpResponse::Created().json(json!({
        "device_id": device.id,
        "username": device.username,
        "certificate": issued.pem,
        "serial": issued.serial,
        "not_after": issued.not_after,
    })))
}
