//! The user and client admin API: roles, tenant isolation (404 across tenants).

use serde_json::{json, Value};

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_manages_the_users_of_their_tenant() {
    let app = spawn_app().await;
    let admin = app.admin_tokens().await.access_token;
    let u = app.create_user(&admin, "olga", &["operator"]).await;
    let id = u["id"].as_str().unwrap().to_owned();
    assert_eq!(u["tenant"], TENANT);
    assert_eq!(u["roles"], json!(["operator"]));
    assert!(u.get("password_hash").is_none());

    let list: Value = app
        .get_with(&admin, "/v1/users")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["users"].as_array().unwrap().len(), 2);

    let r = app
        .client
        .patch(app.url(&format!("/v1/users/{id}")))
        .bearer_auth(&admin)
        .json(&json!({ "roles": ["viewer"], "display_name": "Olga V." }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let u: Value = r.json().await.unwrap();
    assert_eq!(u["roles"], json!(["viewer"]));
    assert_eq!(u["display_name"], "Olga V.");

    // The new user signs in with the new role in the token.
    let t = app.sign_in("olga@acme", "olga-password").await;
    assert_eq!(claims_of(&t.access_token)["roles"], json!(["viewer"]));

    // Duplicate usernames, short passwords and unknown roles are refused.
    let dup = app
        .client
        .post(app.url("/v1/users"))
        .bearer_auth(&admin)
        .json(&json!({"username": "OLGA", "password": "long-enough-password", "roles": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(dup.status(), 409);
    for body in [
        json!({"username": "pat", "password": "short", "roles": []}),
        json!({"username": "pat", "password": "long-enough-password", "roles": ["root"]}),
    ] {
        let r = app
            .client
            .post(app.url("/v1/users"))
            .bearer_auth(&admin)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 422, "{body}");
    }
    // Disabling ends the user's sessions.
    let r = app
        .client
        .patch(app.url(&format!("/v1/users/{id}")))
        .bearer_auth(&admin)
        .json(&json!({ "disabled": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        app.refresh(t.refresh_token.as_deref().unwrap())
            .await
            .status(),
        400
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewers_and_operators_cannot_manage_users_or_clients() {
    let app = spawn_app().await;
    let admin = app.admin_tokens().await.access_token;
    app.create_user(&admin, "vera", &["viewer"]).await;
    app.create_user(&admin, "otto", &["operator"]).await;
    for name in ["vera", "otto"] {
        let t = app
            .sign_in(&format!("{name}@acme"), &format!("{name}-password"))
            .await
            .access_token;
        assert_eq!(app.get_with(&t, "/v1/users").await.status(), 403, "{name}");
        assert_eq!(
            app.get_with(&t, "/v1/clients").await.status(),
            403,
            "{name}"
        );
        let r = app
            .client
            .post(app.url("/v1/users"))
            .bearer_auth(&t)
            .json(&json!({"username": "x", "password": "long-enough-password", "roles": ["admin"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{name}");
        let r = app
            .client
            .post(app.url("/v1/keys/rotate"))
            .bearer_auth(&t)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{name}");
        // Their own profile is theirs to read.
        assert_eq!(app.get_with(&t, "/v1/me").await.status(), 200);
    }
    assert_eq!(
        app.client
            .get(app.url("/v1/users"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_tenants_users_and_clients_are_not_found() {
    let app = spawn_app_with(|c| {
        c.auth.clients.push(aurum_auth::config::SeedClient {
            client_id: "globex-app".into(),
            secret: Some(secrecy::SecretString::from(
                "globex-app-secret-0123456789abcdef".to_owned(),
            )),
            secret_file: None,
            name: None,
            redirect_uris: vec![REDIRECT.into()],
            post_logout_redirect_uris: vec![],
            grant_types: vec!["authorization_code".into()],
            audiences: vec![],
            tenant: Some("globex".into()),
            roles: vec![],
        });
    })
    .await;
    let acme_admin = app.admin_tokens().await.access_token;
    let acme_user = app.create_user(&acme_admin, "alice", &["viewer"]).await;

    let globex_admin = second_tenant_admin(&app).await;

    let id = acme_user["id"].as_str().unwrap();
    let path = format!("/v1/users/{id}");
    assert_eq!(app.get_with(&globex_admin, &path).await.status(), 404);
    let r = app
        .client
        .delete(app.url(&path))
        .bearer_auth(&globex_admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = app
        .client
        .patch(app.url(&path))
        .bearer_auth(&globex_admin)
        .json(&json!({"roles": ["admin"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let list: Value = app
        .get_with(&globex_admin, "/v1/users")
        .await
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = list["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["admin@globex"]);

    // Clients: globex's is invisible to acme, and the reverse.
    assert_eq!(
        app.get_with(&acme_admin, "/v1/clients/globex-app")
            .await
            .status(),
        404
    );
    assert_eq!(
        app.get_with(&globex_admin, "/v1/clients/globex-app")
            .await
            .status(),
        200
    );
    let r = app
        .client
        .delete(app.url("/v1/clients/globex-app"))
        .bearer_auth(&acme_admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    // And the acme user cannot sign in to globex's app.
    let (_, challenge) = pkce();
    let form = app
        .login_form(&app.authorize_url("globex-app", Some(&challenge), &[]))
        .await;
    let r = app.post_login(&form, "alice@acme", "alice-password").await;
    assert_eq!(r.status(), 303);
    let q = query_of(r.headers()["location"].to_str().unwrap());
    assert_eq!(q["error"], "access_denied");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_clients_secret_is_shown_once_and_works() {
    let app = spawn_app().await;
    let admin = app.admin_tokens().await.access_token;
    let r = app
        .client
        .post(app.url("/v1/clients"))
        .bearer_auth(&admin)
        .json(&json!({
            "client_id": "acme-integration",
            "grant_types": ["client_credentials"],
            "audiences": ["aurumai-api"],
            "roles": ["viewer"],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let c: Value = r.json().await.unwrap();
    let secret = c["client_secret"].as_str().unwrap().to_owned();
    assert!(secret.len() >= 43, "256 bits");
    let shown: Value = app
        .get_with(&admin, "/v1/clients/acme-integration")
        .await
        .json()
        .await
        .unwrap();
    assert!(shown.get("client_secret").is_none());
    let stored = app
        .db
        .client()
        .await
        .query_one(
            "SELECT secret_hash FROM auth.clients WHERE client_id = 'acme-integration'",
            &[],
        )
        .await
        .unwrap()
        .get::<_, String>(0);
    assert!(stored.starts_with("$argon2id$"));

    let r = app
        .client_credentials("acme-integration", &secret, &[])
        .await;
    assert_eq!(r.status(), 200);
    let t = tokens(r.json().await.unwrap());
    let claims = claims_of(&t.access_token);
    assert_eq!(claims["tenant"], TENANT);
    assert_eq!(claims["aud"], "aurumai-api");

    let list: Value = app
        .get_with(&admin, "/v1/clients")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["clients"].as_array().unwrap().len(), 1);
    let r = app
        .client
        .delete(app.url("/v1/clients/acme-integration"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = app
        .client_credentials("acme-integration", &secret, &[])
        .await;
    assert_eq!(r.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_admin_cannot_give_the_platform_operators_role() {
    let app = spawn_app().await;
    let admin = app.admin_tokens().await.access_token;

    let r = app
        .client
        .post(app.url("/v1/users"))
        .bearer_auth(&admin)
        .json(
            &json!({"username": "mallory", "password": "long-enough-password",
                      "roles": ["platform_admin"]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    let u = app.create_user(&admin, "olga", &["viewer"]).await;
    let r = app
        .client
        .patch(app.url(&format!("/v1/users/{}", u["id"].as_str().unwrap())))
        .bearer_auth(&admin)
        .json(&json!({ "roles": ["admin", "platform_admin"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    let r = app
        .client
        .post(app.url("/v1/clients"))
        .bearer_auth(&admin)
        .json(&json!({
            "client_id": "acme-escalation",
            "grant_types": ["client_credentials"],
            "audiences": ["aurumai-api"],
            "roles": ["platform_admin"],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    // Nothing was stored with the role.
    let holders: i64 = app
        .db
        .client()
        .await
        .query_one(
            "SELECT (SELECT count(*) FROM auth.users WHERE 'platform_admin' = ANY (roles)) + \
                    (SELECT count(*) FROM auth.clients \
                      WHERE 'platform_admin' = ANY (roles) AND client_id <> $1)",
            &[&PLATFORM_CLIENT],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(holders, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_configured_platform_operator_holds_the_role_in_its_tokens() {
    let app = spawn_app_with(|c| {
        if let Some(a) = c.auth.bootstrap_admin.as_mut() {
            a.platform_admin = true;
        }
    })
    .await;
    let t = app.admin_tokens().await.access_token;
    assert_eq!(claims_of(&t)["roles"], json!(["platform_admin"]));
    assert_eq!(claims_of(&t)["tenant"], TENANT);
    // Still its own tenant's admin.
    assert_eq!(app.get_with(&t, "/v1/users").await.status(), 200);
}

/// A second tenant, globex, with its own admin (bootstrapped by a second replica's config):
/// that admin's access token.
async fn second_tenant_admin(app: &TestApp) -> String {
    let mut globex = app.config.clone();
    globex.http.port = 0;
    globex.auth.clients.clear();
    globex.auth.bootstrap_admin = Some(aurum_auth::config::BootstrapAdmin {
        tenant: "globex".into(),
        username: "admin@globex".into(),
        password: secrecy::SecretString::from("globex-admin-password".to_owned()),
        platform_admin: false,
    });
    start(globex).await;
    let globex_admin = app
        .sign_in("admin@globex", "globex-admin-password")
        .await
        .access_token;
    assert_eq!(claims_of(&globex_admin)["tenant"], "globex");
    globex_admin
}

/// Usernames are unique across tenants, so an admin creating a name that another tenant has
/// would learn of it from a conflict. Names are created `<name>@<tenant>`: two tenants' admins
/// each create their "carol", and neither can create a name of the other's tenant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creating_a_user_tells_nothing_of_another_tenants_usernames() {
    let app = spawn_app().await;
    let acme_admin = app.admin_tokens().await.access_token;
    let globex_admin = second_tenant_admin(&app).await;
    let create = |token: &str, username: &str| {
        app.client
            .post(app.url("/v1/users"))
            .bearer_auth(token)
            .json(&json!({"username": username, "password": "long-enough-password", "roles": []}))
            .send()
    };
    let r = create(&acme_admin, "carol").await.unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.json::<Value>().await.unwrap()["username"], "carol@acme");
    let r = create(&globex_admin, "carol").await.unwrap();
    assert_eq!(r.status(), 201, "globex learnt that acme has a carol");
    assert_eq!(r.json::<Value>().await.unwrap()["username"], "carol@globex");
    // Another tenant's name is refused for its form, whether it exists or not.
    for name in ["carol@acme", "nobody@acme"] {
        let r = create(&globex_admin, name).await.unwrap();
        assert_eq!(r.status(), 422, "{name}");
    }
    // Within the tenant a conflict is still a conflict, however it is spelt.
    let r = create(&acme_admin, "CAROL@acme").await.unwrap();
    assert_eq!(r.status(), 409);
    // The created user signs in with the whole name.
    let t = app.sign_in("carol@globex", "long-enough-password").await;
    assert_eq!(claims_of(&t.access_token)["tenant"], "globex");
}
