//! With `auth` configured the service verifies every token itself and checks the rule declared
//! for the route the router matched, however the path is spelled.

use aurum_authn::testing::TestIssuer;
use aurum_contract::ingestion::ROUTES;
use serde_json::json;

use crate::helpers::spawn_app_with_auth;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_an_encoded_path_as_its_plain_one() {
    let issuer = TestIssuer::start().await;
    let app = spawn_app_with_auth(&issuer).await;
    let viewer = issuer.token("viewer-of-acme", "acme", &["viewer"]);
    let operator = issuer.token("operator-of-acme", "acme", &["operator"]);
    for route in ROUTES {
        let plain = format!("/v1{}", route.path.replace("{id}", "TRUCK-1"));
        let method = reqwest::Method::from_bytes(route.method.as_str().as_bytes()).unwrap();
        for token in [&viewer, &operator] {
            let mut statuses = Vec::new();
            for path in [
                plain.clone(),
                aurum_testkit::percent_encoded_path(&plain, 2, false),
            ] {
                let r = app
                    .client
                    .request(method.clone(), app.url(&path))
                    .bearer_auth(token)
                    .json(&json!({}))
                    .send()
                    .await
                    .unwrap();
                statuses.push((path, r.status().as_u16()));
            }
            assert_eq!(statuses[0].1, statuses[1].1, "{statuses:?}");
        }
    }
    // A viewer's write is refused in either spelling.
    for path in [
        "/v1/machines",
        "/v1/%6Dachines",
        "/v1/telemetry",
        "/v1/%74elemetry",
    ] {
        let r = app
            .client
            .post(app.url(path))
            .bearer_auth(&viewer)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{path}");
    }
}
