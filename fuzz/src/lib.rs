//! Helpers shared by the fuzz targets in `fuzz_targets/`.
//!
//! The token targets need an issuer to fetch keys from: [`DocServer`] is a small HTTP/1.1
//! server on 127.0.0.1 that answers each GET with the document last set for its path, so a
//! target can hand the verifier whatever bytes the fuzzer made, through the verifier's own
//! public API.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// Documents served by path (the query string is ignored); other paths get 404.
#[derive(Debug, Clone)]
pub struct DocServer {
    base: String,
    docs: Arc<Mutex<HashMap<String, Vec<u8>>>>,
}

impl DocServer {
    /// Binds a free port on 127.0.0.1 and serves from a thread of its own for the rest of the
    /// process.
    ///
    /// # Panics
    /// When no port can be bound: the target cannot run at all then.
    #[allow(clippy::expect_used)]
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port on 127.0.0.1");
        let port = listener.local_addr().expect("local address").port();
        let docs: Arc<Mutex<HashMap<String, Vec<u8>>>> = Arc::default();
        let served = Arc::clone(&docs);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                answer(stream, &served);
            }
        });
        Self {
            base: format!("http://127.0.0.1:{port}"),
            docs,
        }
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Serves `body` at `path` from now on.
    pub fn set(&self, path: &str, body: Vec<u8>) {
        self.docs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(path.to_owned(), body);
    }
}

/// Reads one request's head and answers it, closing the connection.
fn answer(mut stream: TcpStream, docs: &Mutex<HashMap<String, Vec<u8>>>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut head = Vec::new();
    let mut buf = [0u8; 2048];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 * 1024 {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let line = head.split(|b| *b == b'\r').next().unwrap_or_default();
    let target = line.split(|b| *b == b' ').nth(1).unwrap_or_default();
    let path = target.split(|b| *b == b'?').next().unwrap_or_default();
    let body = std::str::from_utf8(path).ok().and_then(|p| {
        docs.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(p)
            .cloned()
    });
    let (status, body) = match body {
        Some(b) => ("200 OK", b),
        None => ("404 Not Found", Vec::new()),
    };
    let header = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(header.as_bytes());
    let _ = stream.write_all(&body);
    let _ = stream.flush();
}

/// A one-thread tokio runtime for the targets that call async APIs.
///
/// # Panics
/// When the runtime cannot be built.
#[allow(clippy::expect_used)]
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Readings compared by name and by the exact bits of their values (NaN payloads included),
/// whatever their order: decoders build them from maps. The one exception is the sign of zero:
/// prost writes no proto3 map value equal to 0.0, so -0.0 comes back from a re-encoding as 0.0
/// (the same number).
pub fn same_readings(
    a: &[aurum_domain::telemetry::RawReading],
    b: &[aurum_domain::telemetry::RawReading],
) -> bool {
    use aurum_domain::telemetry::RawValue;
    let key = |r: &aurum_domain::telemetry::RawReading| {
        let value = match &r.value {
            RawValue::Number(v) if *v == 0.0 => "n:0".to_owned(),
            RawValue::Number(v) => format!("n:{:016x}", v.to_bits()),
            RawValue::NotANumber(s) => format!("s:{s}"),
        };
        (r.metric.clone(), value)
    };
    let mut x: Vec<_> = a.iter().map(key).collect();
    let mut y: Vec<_> = b.iter().map(key).collect();
    x.sort();
    y.sort();
    x == y
}

/// `data` with each `(placeholder, value)` replaced, left to right, so seeds can name values
/// that exist only at run time (a key made at start-up, a server's port).
pub fn substitute(data: &[u8], pairs: &[(&[u8], &str)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut i = 0;
    'outer: while i < data.len() {
        for (placeholder, value) in pairs {
            if data[i..].starts_with(placeholder) {
                out.extend_from_slice(value.as_bytes());
                i += placeholder.len();
                continue 'outer;
            }
        }
        out.push(data[i]);
        i += 1;
    }
    out
}
