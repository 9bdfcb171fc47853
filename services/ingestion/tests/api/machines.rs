use crate::helpers::{spawn_app, TENANT};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_machine_is_registered_once_and_read_back() {
    let app = spawn_app().await;
    let r = app.register("TRUCK-21", "haul_truck").await;
    assert_eq!(r.status(), 201);
    let r = app.register("TRUCK-21", "haul_truck").await;
    assert_eq!(r.status(), 409);
    assert_eq!(r.headers()["content-type"], "application/problem+json");

    let r = app
        .client
        .get(app.url("/v1/machines/TRUCK-21"))
        .header("X-Aurum-Tenant", TENANT)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["machine"]["machine_type"], "haul_truck");
    assert!(body["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["name"] == "vibration"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_registrations_are_refused_with_a_reason() {
    let app = spawn_app().await;
    for (id, t) in [
        ("TRUCK 21", "haul_truck"),
        ("T/1", "haul_truck"),
        ("X-1", "Space Ship"),
    ] {
        let r = app.register(id, t).await;
        assert_eq!(r.status(), 400, "{id} {t}");
        let p: serde_json::Value = r.json().await.unwrap();
        assert_eq!(p["type"], "urn:aurumai:problem:invalid-request");
        assert!(p["detail"].as_str().is_some());
    }
    // A well-formed profile id that is neither built in nor one of the tenant's.
    let r = app.register("X-1", "spaceship").await;
    assert_eq!(r.status(), 422);
    let p: serde_json::Value = r.json().await.unwrap();
    assert_eq!(p["errors"][0]["field"], "profile");
    let r = app
        .client
        .post(app.url("/v1/machines"))
        .json(&serde_json::json!({"id": "A", "machine_type": "haul_truck"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "the tenant header is required");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_see_only_their_own_machines() {
    let app = spawn_app().await;
    assert_eq!(
        app.register_as("acme", "MILL-3", "grinding_mill")
            .await
            .status(),
        201
    );
    assert_eq!(
        app.register_as("other", "BOILER-7", "industrial_boiler")
            .await
            .status(),
        201
    );
    let list: serde_json::Value = app
        .client
        .get(app.url("/v1/machines"))
        .header("X-Aurum-Tenant", "acme")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<_> = list["machines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].clone())
        .collect();
    assert_eq!(ids, vec!["MILL-3"]);
    let r = app
        .client
        .get(app.url("/v1/machines/BOILER-7"))
        .header("X-Aurum-Tenant", "acme")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}
