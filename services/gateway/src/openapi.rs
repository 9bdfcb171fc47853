//! The OpenAPI 3 document of the public API, generated from the route table, and a plain
//! HTML page listing it (no scripts).

use actix_web::HttpResponse;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    ComponentsBuilder, InfoBuilder, OpenApi, OpenApiBuilder, Paths, Required, ResponseBuilder,
    ServerBuilder,
};

use crate::routes::oidc::OIDC_PREFIX;
use crate::routes::{Method, RouteSpec, Target, PREFIX, ROUTES};

fn http_method(m: Method) -> HttpMethod {
    match m {
        Method::Get => HttpMethod::Get,
        Method::Post => HttpMethod::Post,
        Method::Put => HttpMethod::Put,
        Method::Patch => HttpMethod::Patch,
        Method::Delete => HttpMethod::Delete,
    }
}

fn tag(r: &RouteSpec) -> &'static str {
    match r.target {
        Target::Ingestion => "ingestion",
        Target::Prediction => "prediction",
        Target::Auth => "accounts",
        Target::Local(_) => "gateway",
    }
}

fn path_params(path: &str) -> Vec<&str> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .collect()
}

/// The document.
pub fn document() -> OpenApi {
    let mut paths = Paths::new();
    for r in ROUTES.iter() {
        let mut op = OperationBuilder::new()
            .operation_id(Some(format!(
                "{}_{}",
                r.method.as_str().to_lowercase(),
                r.path
                    .trim_start_matches('/')
                    .replace(['/', '{', '}', '.'], "_")
            )))
            .summary(Some(r.summary))
            .description(Some(format!("Least role: `{}`.", r.role)))
            .tag(tag(r))
            .security(SecurityRequirement::new("bearer", Vec::<String>::new()))
            .response("200", ResponseBuilder::new().description("Success").build())
            .response(
                "401",
                ResponseBuilder::new()
                    .description("Missing or invalid access token")
                    .build(),
            )
            .response(
                "403",
                ResponseBuilder::new()
                    .description(format!("The {} role or a tenant is required", r.role))
                    .build(),
            )
            .response(
                "429",
                ResponseBuilder::new()
                    .description("Rate limited; see Retry-After")
                    .build(),
            );
        for p in path_params(r.path) {
            op = op.parameter(
                ParameterBuilder::new()
                    .name(p)
                    .parameter_in(ParameterIn::Path)
                    .required(Required::True)
                    .build(),
            );
        }
        paths.add_path_operation(r.public_path(), vec![http_method(r.method)], op.build());
    }
    let components = ComponentsBuilder::new()
        .security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("An access token (RS256, typ at+jwt) of the AurumAI issuer, audience aurumai-api"))
                    .build(),
            ),
        )
        .build();
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("AurumAI API")
                .version("1")
                .description(Some(format!(
                    "The public API of the AurumAI platform. Every route needs a bearer access \
                     token; the tenant and the acting user come from the token. Tokens come \
                     from the platform's OpenID Connect provider, public on this host under \
                     `{OIDC_PREFIX}` (issuer `https://<host>{OIDC_PREFIX}`, discovery at \
                     `{OIDC_PREFIX}/.well-known/openid-configuration`); those endpoints take no \
                     bearer token and are not listed here."
                )))
                .build(),
        )
        .servers(Some(vec![ServerBuilder::new().url("/").build()]))
        .paths(paths)
        .components(Some(components))
        .build()
}

pub async fn openapi_json(doc: actix_web::web::Data<String>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(doc.get_ref().clone())
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A static HTML page listing every route.
pub fn docs_html() -> String {
    let mut rows = String::new();
    for r in ROUTES.iter() {
        rows.push_str(&format!(
            "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            r.method.as_str(),
            escape(&r.public_path()),
            r.role,
            tag(r),
            escape(r.summary)
        ));
    }
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>AurumAI API</title></head>\
         <body><h1>AurumAI API v1</h1><p>Machine-readable: <a href=\"{PREFIX}/openapi.json\">{PREFIX}/openapi.json</a> \
         (OpenAPI 3). Every route needs <code>Authorization: Bearer &lt;access token&gt;</code>; \
         tokens come from the OpenID Connect provider at <a href=\"{OIDC_PREFIX}/.well-known/openid-configuration\">{OIDC_PREFIX}</a>.</p>\
         <table><thead><tr><th>Method</th><th>Path</th><th>Least role</th><th>Service</th><th>What</th></tr></thead>\
         <tbody>\n{rows}</tbody></table></body></html>\n"
    )
}

pub async fn docs(page: actix_web::web::Data<DocsPage>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(page.0.clone())
}

#[derive(Debug, Clone)]
pub struct DocsPage(pub String);
