//! Security headers on every answer.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{
    HeaderName, HeaderValue, CACHE_CONTROL, CONTENT_SECURITY_POLICY, REFERRER_POLICY,
    STRICT_TRANSPORT_SECURITY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use actix_web::middleware::Next;

/// The API serves JSON and one static page without scripts: nothing may load or frame it.
pub const CSP: &str =
    "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// Marks an answer of the OpenID Connect passthrough (a response extension): the auth
/// service's own `Content-Security-Policy`, `X-Frame-Options`, `X-Content-Type-Options` and
/// `Referrer-Policy` stay (its login page posts a form, which the API's policy forbids); the
/// gateway's apply where the service sent none.
#[derive(Debug, Clone, Copy)]
pub struct UpstreamPolicy;

/// Middleware (`from_fn(security_headers)`).
pub async fn security_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let mut res = next.call(req).await?;
    let keep = res.response().extensions().contains::<UpstreamPolicy>();
    let h = res.headers_mut();
    let mut set = |name: HeaderName, value: &'static str| {
        if !(keep && h.contains_key(&name)) {
            h.insert(name, HeaderValue::from_static(value));
        }
    };
    set(X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(X_FRAME_OPTIONS, "DENY");
    set(REFERRER_POLICY, "no-referrer");
    set(CONTENT_SECURITY_POLICY, CSP);
    h.insert(
        STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static("max-age=63072000; includeSubDomains"),
    );
    h.insert(
        HeaderName::from_static("cross-origin-resource-policy"),
        HeaderValue::from_static("same-origin"),
    );
    if !h.contains_key(CACHE_CONTROL) {
        h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    Ok(res)
}
