//! The OpenAPI document and the docs page.

use aurum_gateway::routes::ROUTES;
use serde_json::Value;

use crate::helpers::spawn_app;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_lists_every_route_with_bearer_security() {
    let app = spawn_app().await;
    let r = app
        .client
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let doc: Value = r.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let paths = doc["paths"].as_object().unwrap();
    let mut operations = 0;
    for route in ROUTES.iter() {
        let item = &paths[&route.public_path()];
        let op = &item[route.method.as_str().to_lowercase()];
        assert!(
            op.is_object(),
            "{} {} missing",
            route.method.as_str(),
            route.public_path()
        );
        assert!(op["security"][0].get("bearer").is_some());
        assert!(op["responses"]["401"].is_object());
        operations += 1;
    }
    let total: usize = paths.values().map(|p| p.as_object().unwrap().len()).sum();
    assert_eq!(total, operations, "no operation outside the route table");

    let r = app
        .client
        .get(app.url("/api/v1/docs"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = r.text().await.unwrap();
    for route in ROUTES.iter() {
        assert!(
            html.contains(&route.public_path()),
            "{}",
            route.public_path()
        );
    }
    assert!(!html.contains("<script"));
}
