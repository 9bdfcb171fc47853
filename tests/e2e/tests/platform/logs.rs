//! No secret, token or password ever reaches a log line: the whole platform runs the
//! workload with debug logging, then every line of every service's log is searched for
//! every secret it was given or handed out.

use crate::harness::Platform;
use crate::workload;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_token_or_password_appears_in_any_log_line() {
    let mut platform = Platform::start().await;
    workload::run(&mut platform).await;
    platform.stop();

    let mut lines = 0;
    let mut leaks = Vec::new();
    for service in &platform.services {
        let log = std::fs::read_to_string(&service.log).unwrap();
        for line in log.lines() {
            lines += 1;
            // JSON logs, one object per line, as collectors expect.
            assert!(
                serde_json::from_str::<serde_json::Value>(line).is_ok(),
                "{}: not JSON: {line}",
                service.name
            );
            for (name, secret) in &platform.secrets.0 {
                // A JWT's signature alone is enough to replay it: look for every part.
                let needles: Vec<&str> = if secret.matches('.').count() == 2 {
                    secret.split('.').filter(|p| p.len() > 16).collect()
                } else {
                    vec![secret.as_str()]
                };
                if needles.iter().any(|n| line.contains(n)) {
                    leaks.push(format!("{}: {name}", service.name));
                }
            }
        }
    }
    // The search covered a real run: debug logging of four services.
    assert!(lines > 100, "only {lines} log lines");
    assert!(
        platform.secrets.0.len() >= 7,
        "{:?}",
        platform.secrets.0.len()
    );
    assert!(leaks.is_empty(), "secrets in the logs: {leaks:?}");
}
