//! Rate limits: a burst over the limit gets 429 with Retry-After; the limit recovers.

use std::time::Duration;

use aurum_gateway::config::Limit;

use crate::helpers::spawn_app_with;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_over_the_principals_limit_gets_429_then_recovers() {
    let app = spawn_app_with(|c| {
        c.rate_limit.per_principal = Limit {
            requests: 5,
            per_s: 2,
        };
    })
    .await;
    let token = app.token("viewer");
    let mut remaining = Vec::new();
    for _ in 0..5 {
        let r = app.get("/api/v1/machines", &token).await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["ratelimit-limit"], "5");
        assert!(r.headers().contains_key("ratelimit-reset"));
        remaining.push(
            r.headers()["ratelimit-remaining"]
                .to_str()
                .unwrap()
                .parse::<u32>()
                .unwrap(),
        );
    }
    assert_eq!(remaining, vec![4, 3, 2, 1, 0]);
    let r = app.get("/api/v1/machines", &token).await;
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry), "Retry-After {retry}");
    assert_eq!(r.headers()["ratelimit-remaining"], "0");
    assert_eq!(r.headers()["content-type"], "application/problem+json");

    // Another user of the same tenant has their own allowance.
    assert_eq!(
        app.get("/api/v1/machines", &app.token("admin"))
            .await
            .status(),
        200
    );

    // The hit is counted.
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let hits = aurum_testkit::metric_value(
        &metrics,
        "aurum_gateway_rate_limited_total{scope=\"principal\"}",
    );
    assert_eq!(hits, Some(1.0), "{metrics}");

    // After the window the limit has recovered.
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    for _ in 0..5 {
        assert_eq!(app.get("/api/v1/machines", &token).await.status(), 200);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_and_anonymous_callers_have_their_own_limits() {
    let app = spawn_app_with(|c| {
        c.rate_limit.per_tenant = Limit {
            requests: 3,
            per_s: 60,
        };
        c.rate_limit.per_ip_anonymous = Limit {
            requests: 2,
            per_s: 60,
        };
    })
    .await;
    for role in ["viewer", "operator", "admin"] {
        assert_eq!(
            app.get("/api/v1/machines", &app.token(role)).await.status(),
            200
        );
    }
    let r = app.get("/api/v1/machines", &app.token("viewer")).await;
    assert_eq!(
        r.status(),
        429,
        "the tenant's allowance is shared by its users"
    );
    // Another tenant is not affected.
    let other = app
        .issuer
        .token("u", crate::helpers::OTHER_TENANT, &["viewer"]);
    assert_eq!(app.get("/api/v1/machines", &other).await.status(), 200);

    // Without a token: 401 twice, then 429 (an IP guessing tokens is slowed down).
    let statuses: Vec<u16> = futures_statuses(&app, 3).await;
    assert_eq!(statuses, vec![401, 401, 429]);
    // Open endpoints are not limited.
    assert_eq!(
        app.client
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

async fn futures_statuses(app: &crate::helpers::TestApp, n: usize) -> Vec<u16> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(
            app.client
                .get(app.url("/api/v1/machines"))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16(),
        );
    }
    out
}
