//! Posting batches to a stand-in for the ingestion service.

#![allow(clippy::unwrap_used)] // helpers of tests, not #[test] functions

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aurum_domain::TenantId;
use aurum_proto::{decode_batch, Encoding};
use aurum_simulator::degradation::LifecycleParams;
use aurum_simulator::fleet::FleetSpec;
use aurum_simulator::transport::{HttpOptions, TransportConfig};
use aurum_simulator::{run, RunConfig};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// One request the stand-in received.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    content_type: String,
    tenant: String,
    seqs: Vec<(String, u64)>,
    answered: u16,
}

/// A minimal HTTP/1.1 server: answers 503 to the first request, then 200 with one result per
/// message.
async fn serve(listener: TcpListener, log: Arc<Mutex<Vec<Received>>>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        let log = Arc::clone(&log);
        tokio::spawn(async move {
            let _ = connection(stream, log).await;
        });
    }
}

async fn connection(stream: TcpStream, log: Arc<Mutex<Vec<Received>>>) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).await? == 0 {
            return Ok(());
        }
        let path = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or("")
            .to_owned();
        let (mut length, mut content_type, mut tenant) = (0usize, String::new(), String::new());
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).await?;
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                match k.trim().to_ascii_lowercase().as_str() {
                    "content-length" => length = v.trim().parse().unwrap_or(0),
                    "content-type" => content_type = v.trim().to_owned(),
                    "x-aurum-tenant" => tenant = v.trim().to_owned(),
                    _ => {}
                }
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).await?;
        let encoding = Encoding::from_content_type(Some(&content_type)).unwrap();
        let batch = decode_batch(encoding, &body).unwrap();
        let seqs: Vec<(String, u64)> = batch
            .messages
            .iter()
            .map(|(m, _)| {
                let m = m.as_ref().unwrap();
                (m.machine_id.to_string(), m.seq.get())
            })
            .collect();
        let first = log.lock().unwrap().is_empty();
        let (status, reply) = if first {
            (503, r#"{"error":"warming up"}"#.to_owned())
        } else {
            let results: Vec<String> = seqs
                .iter()
                .map(|(m, s)| format!(r#"{{"machine_id":"{m}","seq":{s},"status":"accepted"}}"#))
                .collect();
            (200, format!(r#"{{"results":[{}]}}"#, results.join(",")))
        };
        log.lock().unwrap().push(Received {
            path,
            content_type,
            tenant,
            seqs,
            answered: status,
        });
        let reason = if status == 200 {
            "OK"
        } else {
            "Service Unavailable"
        };
        let response = format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{reply}",
            reply.len()
        );
        write.write_all(response.as_bytes()).await?;
    }
}

async fn posts_batches(encoding: Encoding) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let log = Arc::new(Mutex::new(Vec::new()));
    let server = tokio::spawn(serve(listener, Arc::clone(&log)));

    let config = RunConfig {
        tenant: TenantId::parse("acme").unwrap(),
        machines: FleetSpec::Numbered(10).machines().unwrap(),
        transport: TransportConfig::Http(HttpOptions {
            ingestion_url: url,
            batch_size: 4,
            concurrency: 1,
            request_timeout: Duration::from_secs(5),
        }),
        encoding,
        rate: 20.0,
        duration: None,
        count: Some(5),
        time_scale: 60.0,
        seed: 3,
        first_seq: 1,
        labels_csv: None,
        drain_timeout: Duration::from_secs(10),
        lifecycle: LifecycleParams::default(),
        progress_every: Duration::from_secs(60),
    };
    let summary = run(config, std::future::pending()).await.unwrap();
    server.abort();
    assert_eq!(summary.published, 50);
    assert_eq!(summary.acked, 50);
    assert_eq!(summary.failed, 0);

    let log = log.lock().unwrap().clone();
    // 10 machines per tick in batches of 4: 4 + 4 + 2, five ticks; plus one retry.
    assert_eq!(log.len(), 16);
    assert_eq!(log[0].answered, 503);
    assert_eq!(
        log[0].seqs, log[1].seqs,
        "the retry carries the same messages"
    );
    for r in &log {
        assert_eq!(r.path, "/v1/telemetry");
        assert_eq!(r.tenant, "acme");
        assert_eq!(r.content_type, encoding.mime());
        assert!(r.seqs.len() <= 4);
    }
    let mut delivered: Vec<(String, u64)> = log
        .iter()
        .filter(|r| r.answered == 200)
        .flat_map(|r| r.seqs.clone())
        .collect();
    delivered.sort();
    assert_eq!(delivered.len(), 50);
    delivered.dedup();
    assert_eq!(delivered.len(), 50, "each message acknowledged once");
    for (machine, seq) in &delivered {
        assert!((1..=5).contains(seq), "{machine} {seq}");
    }
}

#[tokio::test]
async fn json_batches_are_posted_with_the_tenant_and_retried() {
    posts_batches(Encoding::Json).await;
}

#[tokio::test]
async fn protobuf_batches_are_posted_with_the_tenant_and_retried() {
    posts_batches(Encoding::Protobuf).await;
}
