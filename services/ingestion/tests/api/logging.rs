//! Logs are JSON lines that carry the request id and the trace id, and never a secret.

use crate::helpers::ProcessFixture;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_log_line_of_a_request_carries_its_request_id_and_trace_id() {
    let (f, mut service) = ProcessFixture::start().await;
    let port = f.port;

    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let r = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/v1/machines/NOPE"))
        .header("X-Aurum-Tenant", "demo")
        .header("X-Request-ID", "log-test-42")
        .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    service.child.kill().ok();
    service.child.wait().ok();

    let text = f.log_text();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect();
    let served = lines
        .iter()
        .find(|l| l["message"] == "request served" && l["span"]["request_id"] == "log-test-42")
        .unwrap_or_else(|| panic!("no access log line for the request in:\n{text}"));
    assert_eq!(
        served["span"]["trace_id"], trace_id,
        "the caller's trace continues"
    );
    assert_eq!(served["status"], 404);
    assert_eq!(served["level"], "INFO");
}
