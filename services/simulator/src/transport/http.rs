//! HTTP transport: batches of messages posted to the ingestion service's
//! `POST /v1/telemetry`, several batches in flight.

use std::sync::Arc;
use std::time::Duration;

use aurum_domain::TenantId;
use aurum_proto::{encode_batch, Encoding, OutgoingMessage};
use futures::FutureExt;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use reqwest::StatusCode;

use super::window::{Outcome, Window};
use crate::error::SimError;
use crate::fleet::MachineInfo;
use crate::machine::Sample;

/// The header that names the tenant of a batch.
pub const TENANT_HEADER: &str = "X-Aurum-Tenant";

/// Retries of a batch that failed with a network error, 429 or 5xx.
pub const POST_RETRIES: u32 = 3;

/// How a batch is posted.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// Base URL of the ingestion service, e.g. `http://127.0.0.1:8081`.
    pub ingestion_url: String,
    pub batch_size: usize,
    /// Batches in flight at once.
    pub concurrency: usize,
    pub request_timeout: Duration,
}

/// The endpoint batches are posted to.
pub fn telemetry_endpoint(ingestion_url: &str) -> String {
    format!("{}/v1/telemetry", ingestion_url.trim_end_matches('/'))
}

/// Posts telemetry in batches.
#[derive(Debug)]
pub struct HttpSink {
    client: reqwest::Client,
    endpoint: Arc<str>,
    tenant: Arc<str>,
    ids: Vec<Arc<str>>,
    encoding: Encoding,
    batch_size: usize,
    pending: Vec<(usize, Sample)>,
    window: Window,
    published: u64,
}

impl HttpSink {
    pub fn new(
        options: &HttpOptions,
        tenant: &TenantId,
        machines: &[MachineInfo],
        encoding: Encoding,
    ) -> Result<Self, SimError> {
        let concurrency = options.concurrency.max(1);
        let client = reqwest::Client::builder()
            .timeout(options.request_timeout)
            .pool_max_idle_per_host(concurrency)
            .build()?;
        let endpoint = telemetry_endpoint(&options.ingestion_url);
        tracing::info!(endpoint = %endpoint, batch_size = options.batch_size, concurrency, "posting telemetry over HTTP");
        Ok(Self {
            client,
            endpoint: Arc::from(endpoint),
            tenant: Arc::from(tenant.as_str()),
            ids: machines.iter().map(|m| Arc::from(m.id.as_str())).collect(),
            encoding,
            batch_size: options.batch_size.max(1),
            pending: Vec::new(),
            window: Window::new(concurrency),
            published: 0,
        })
    }

    /// Queues a message; a full batch is posted (waiting first if too many are in flight).
    pub async fn submit(&mut self, machine: usize, sample: Sample) {
        self.pending.push((machine, sample));
        if self.pending.len() >= self.batch_size {
            self.flush().await;
        }
    }

    /// Posts the queued messages, if any, as one batch.
    pub async fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.pending);
        let messages: Vec<OutgoingMessage<'_>> = batch
            .iter()
            .filter_map(|(machine, s)| {
                Some(OutgoingMessage {
                    machine_id: self.ids.get(*machine)?,
                    seq: s.seq,
                    ts: s.ts,
                    metrics: &s.metrics,
                })
            })
            .collect();
        let n = messages.len() as u64;
        let body = encode_batch(self.encoding, &messages);
        let send = post_with_retry(
            self.client.clone(),
            Arc::clone(&self.endpoint),
            Arc::clone(&self.tenant),
            self.encoding.mime(),
            body,
            n,
        );
        self.published += n;
        self.window.push(send.boxed()).await;
    }

    pub fn published(&self) -> u64 {
        self.published
    }

    pub fn window(&mut self) -> &mut Window {
        &mut self.window
    }
}

async fn post_with_retry(
    client: reqwest::Client,
    endpoint: Arc<str>,
    tenant: Arc<str>,
    mime: &'static str,
    body: Vec<u8>,
    n: u64,
) -> Outcome {
    let mut attempt = 0;
    loop {
        let response = client
            .post(&*endpoint)
            .header(CONTENT_TYPE, mime)
            .header(ACCEPT, "application/json")
            .header(TENANT_HEADER, &*tenant)
            .body(body.clone())
            .send()
            .await;
        let retry_reason = match response {
            Ok(resp) if resp.status().is_success() => {
                let status = resp.status();
                return match resp.bytes().await {
                    Ok(bytes) => summarize_response(&bytes, n),
                    Err(e) => {
                        tracing::debug!(%status, error = %e, "could not read the response body");
                        Outcome::acked(n)
                    }
                };
            }
            Ok(resp)
                if resp.status() == StatusCode::TOO_MANY_REQUESTS
                    || resp.status().is_server_error() =>
            {
                format!("HTTP {}", resp.status())
            }
            Ok(resp) => {
                let status = resp.status();
                let text = resp.text().await.unwrap_or_default();
                let text: String = text.chars().take(500).collect();
                tracing::warn!(%status, body = %text, messages = n, "ingestion refused the batch");
                return Outcome::failed(n);
            }
            Err(e) => e.to_string(),
        };
        if attempt >= POST_RETRIES {
            tracing::warn!(reason = %retry_reason, messages = n, "batch failed after retries");
            return Outcome::failed(n);
        }
        attempt += 1;
        tracing::debug!(reason = %retry_reason, attempt, "batch failed; retrying");
        tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
    }
}

/// How ingestion classified one message of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Accepted,
    Rejected,
    Duplicate,
}

fn verdict_of(item: &serde_json::Value) -> Verdict {
    let status = ["status", "result", "outcome"]
        .iter()
        .find_map(|k| item.get(*k).and_then(|v| v.as_str()))
        .map(str::to_ascii_lowercase);
    if let Some(status) = status {
        if status.contains("dup") || status.contains("already") {
            return Verdict::Duplicate;
        }
        if status.contains("reject")
            || status.contains("quarantin")
            || status.contains("invalid")
            || status.contains("error")
        {
            return Verdict::Rejected;
        }
        return Verdict::Accepted;
    }
    if let Some(accepted) = item.get("accepted").and_then(|v| v.as_bool()) {
        return if accepted {
            Verdict::Accepted
        } else {
            Verdict::Rejected
        };
    }
    if item.get("error").is_some_and(|e| !e.is_null()) {
        return Verdict::Rejected;
    }
    Verdict::Accepted
}

/// Counts accepted / rejected / duplicate messages in a 2xx response of ingestion. Reads
/// either top-level counters (`accepted`, `rejected` or `quarantined`, `duplicates`) or a
/// per-message `results` array whose items carry a `status`; without either, every message
/// counts as accepted.
pub fn summarize_response(body: &[u8], n: u64) -> Outcome {
    let mut outcome = Outcome::acked(n);
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        outcome.accepted = n;
        return outcome;
    };
    let count = |k: &str| value.get(k).and_then(|v| v.as_u64());
    if let Some(accepted) = count("accepted") {
        outcome.accepted = accepted;
        outcome.rejected = count("rejected")
            .or_else(|| count("quarantined"))
            .unwrap_or(0);
        outcome.duplicates = count("duplicates")
            .or_else(|| count("duplicate"))
            .unwrap_or(0);
        return outcome;
    }
    if let Some(results) = value.get("results").and_then(|v| v.as_array()) {
        for item in results {
            match verdict_of(item) {
                Verdict::Accepted => outcome.accepted += 1,
                Verdict::Rejected => outcome.rejected += 1,
                Verdict::Duplicate => outcome.duplicates += 1,
            }
        }
        return outcome;
    }
    outcome.accepted = n;
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_joins_cleanly() {
        assert_eq!(
            telemetry_endpoint("http://h:8081/"),
            "http://h:8081/v1/telemetry"
        );
        assert_eq!(
            telemetry_endpoint("http://h:8081"),
            "http://h:8081/v1/telemetry"
        );
    }

    #[test]
    fn per_message_results_are_counted() {
        let body = br#"{"results":[
            {"seq":1,"status":"accepted"},
            {"seq":2,"status":"duplicate"},
            {"seq":3,"status":"rejected","reason":"malformed_payload"},
            {"seq":4,"status":"partially_accepted","rejected":[{"metric":"rpm"}]},
            {"seq":5,"status":"quarantined"}
        ]}"#;
        let o = summarize_response(body, 5);
        assert_eq!(
            (o.acked, o.accepted, o.rejected, o.duplicates),
            (5, 2, 2, 1)
        );
    }

    #[test]
    fn top_level_counters_win() {
        let o = summarize_response(
            br#"{"accepted":7,"quarantined":2,"duplicates":1,"results":[]}"#,
            10,
        );
        assert_eq!((o.accepted, o.rejected, o.duplicates), (7, 2, 1));
    }

    #[test]
    fn an_opaque_success_counts_everything_accepted() {
        assert_eq!(summarize_response(b"", 3).accepted, 3);
        assert_eq!(summarize_response(b"{}", 3).accepted, 3);
    }
}
