//! A standard OIDC client library this project did not write (Python authlib) runs discovery,
//! the PKCE code flow, ID token and access token verification against the JWKS, refresh and
//! client credentials against the service.

use std::path::PathBuf;
use std::process::Command;

use crate::helpers::*;

/// `AURUM_TEST_PYTHON`, else the venv `make deps` creates.
fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("AURUM_TEST_PYTHON") {
        return PathBuf::from(p);
    }
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    workspace.join(".aurumai/venv/bin/python")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authlib_completes_discovery_code_flow_refresh_and_client_credentials() {
    let python = python();
    let probe = Command::new(&python)
        .args(["-c", "import authlib, requests, joserfc"])
        .output();
    match probe {
        Ok(o) if o.status.success() => {}
        Ok(o) => panic!(
            "python at {} lacks authlib/requests/joserfc ({}); run `make deps` to create the venv",
            python.display(),
            String::from_utf8_lossy(&o.stderr).trim()
        ),
        Err(e) => panic!(
            "no python at {} ({e}); run `make deps` (or set AURUM_TEST_PYTHON)",
            python.display()
        ),
    }
    let app = spawn_app().await;
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/oidc_client/authlib_flow.py");
    let out = tokio::process::Command::new(&python)
        .arg(&script)
        .args(["--issuer", &app.config.auth.issuer])
        .args(["--client-id", WEB_CLIENT, "--client-secret", WEB_SECRET])
        .args(["--redirect-uri", REDIRECT])
        .args(["--username", ADMIN, "--password", ADMIN_PASSWORD])
        .args([
            "--service-client-id",
            SVC_CLIENT,
            "--service-client-secret",
            SVC_SECRET,
        ])
        .args(["--audience", "aurumai-ingestion"])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "authlib flow failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("authlib flow OK"), "{stdout}");
}
