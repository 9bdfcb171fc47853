//! `/.well-known/openid-configuration` (OpenID Connect Discovery 1.0, RFC 8414).

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::app::AppState;

pub async fn openid_configuration(state: web::Data<AppState>) -> HttpResponse {
    let iss = &state.tokens.issuer;
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "public, max-age=300"))
        .json(json!({
            "issuer": iss,
            "authorization_endpoint": format!("{iss}/authorize"),
            "token_endpoint": format!("{iss}/token"),
            "userinfo_endpoint": format!("{iss}/userinfo"),
            "jwks_uri": format!("{iss}/jwks"),
            "revocation_endpoint": format!("{iss}/revoke"),
            "introspection_endpoint": format!("{iss}/introspect"),
            "end_session_endpoint": format!("{iss}/logout"),
            "scopes_supported": super::SCOPES,
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": aurum_ports::auth::GRANT_TYPES,
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported":
                ["client_secret_basic", "client_secret_post", "none"],
            "revocation_endpoint_auth_methods_supported":
                ["client_secret_basic", "client_secret_post", "none"],
            "introspection_endpoint_auth_methods_supported":
                ["client_secret_basic", "client_secret_post"],
            "code_challenge_methods_supported": ["S256"],
            "claims_supported": [
                "iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "sid", "name",
                "preferred_username", "email", "tenant", "roles"
            ],
            "authorization_response_iss_parameter_supported": true,
            "frontchannel_logout_supported": false,
            "backchannel_logout_supported": false,
        }))
}
