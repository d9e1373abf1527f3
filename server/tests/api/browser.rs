//! A browser must not be turned against the server: cross-site simple
//! requests, DNS rebinding, foreign WebSocket origins, oversized frames,
//! framing; and every response carries the security headers.

use futures_util::{SinkExt, StreamExt};
use shared::api::{ErrorBody, JobDetail};
use shared::metrics::JobState;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::helpers::{TestApp, get_json, running_job, spawn_app, spawn_configured, stop};

#[tokio::test]
async fn a_cross_site_text_plain_stop_is_refused_and_the_job_keeps_running() {
    let app = spawn_app().await;
    let id = running_job(&app).await;
    // What a page on another site can send without a preflight.
    for (ct, body) in [
        (Some("text/plain"), r#"{"mode":"abort"}"#),
        (Some("application/x-www-form-urlencoded"), "mode=abort"),
        (None, ""),
    ] {
        let mut req = reqwest::Client::new()
            .post(app.url(&format!("/api/v1/jobs/{id}/stop")))
            .header("origin", "https://evil.example")
            .body(body);
        if let Some(ct) = ct {
            req = req.header("content-type", ct);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 415, "{ct:?}");
        let err: ErrorBody = resp.json().await.unwrap();
        assert_eq!(err.code, "unsupported_media_type");
    }
    let d: JobDetail = get_json(&app, &format!("/api/v1/jobs/{id}")).await;
    assert_eq!(d.summary.state, JobState::Running);
    // The same request as JSON works.
    assert_eq!(stop(&app, &id, "abort").await.status(), 202);
}

#[tokio::test]
async fn specs_without_a_media_type_are_refused() {
    let app = spawn_app().await;
    let resp = reqwest::Client::new()
        .post(app.url("/api/v1/jobs"))
        .body(r#"{"template":"thread-io-pool"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 415);
}

/// A GET with a chosen `Host` header (reqwest always sends the real one).
async fn get_with_host(app: &TestApp, host: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let req = format!("GET /api/v1/jobs HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw);
    text.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test]
async fn unknown_host_names_are_refused_so_dns_rebinding_gets_nothing() {
    let app = spawn_configured(None, tempfile::tempdir().unwrap().keep(), |s| {
        s.with_allowed_hosts(&["queuelab.staging.example".into()])
    })
    .await;
    let port = app.addr.port();
    assert_eq!(get_with_host(&app, &format!("127.0.0.1:{port}")).await, 200);
    assert_eq!(get_with_host(&app, &format!("localhost:{port}")).await, 200);
    assert_eq!(
        get_with_host(&app, &format!("queuelab.staging.example:{port}")).await,
        200
    );
    assert_eq!(
        get_with_host(&app, &format!("rebind.evil.example:{port}")).await,
        421
    );
}

#[tokio::test]
async fn websockets_from_foreign_origins_are_refused() {
    let app = spawn_app().await;
    let mut req = app.ws_url().into_client_request().unwrap();
    req.headers_mut()
        .insert("origin", "https://evil.example".parse().unwrap());
    let err = tokio_tungstenite::connect_async(req).await.unwrap_err();
    match err {
        tokio_tungstenite::tungstenite::Error::Http(resp) => assert_eq!(resp.status(), 403),
        other => panic!("expected a 403, got {other}"),
    }
    // The dashboard's own origin is welcome.
    let mut req = app.ws_url().into_client_request().unwrap();
    req.headers_mut()
        .insert("origin", format!("http://{}", app.addr).parse().unwrap());
    let (mut ws, resp) = tokio_tungstenite::connect_async(req).await.unwrap();
    assert_eq!(resp.status(), 101);
    ws.close(None).await.unwrap();
}

#[tokio::test]
async fn an_oversized_websocket_message_closes_the_connection() {
    let app = spawn_app().await;
    let (mut ws, _) = tokio_tungstenite::connect_async(app.ws_url())
        .await
        .unwrap();
    let big = "x".repeat(1 << 20);
    // The server may cut the connection while the message is still
    // being written; either way it must not take it.
    let _ = ws.send(Message::Text(big.into())).await;
    let mut closed = false;
    for _ in 0..100 {
        match tokio::time::timeout(std::time::Duration::from_secs(10), ws.next()).await {
            Ok(Some(Ok(Message::Close(frame)))) => {
                if let Some(f) = frame {
                    assert_eq!(u16::from(f.code), 1009, "message too big");
                }
                closed = true;
                break;
            }
            Ok(Some(Ok(_))) => continue,
            Ok(Some(Err(_)) | None) => {
                closed = true;
                break;
            }
            Err(_) => break,
        }
    }
    assert!(closed, "the server closed the connection");
}

#[tokio::test]
async fn every_response_carries_the_security_headers_and_a_request_id() {
    let app = spawn_app().await;
    for path in [
        "/",
        "/api/v1/jobs",
        "/api/v1/nope",
        "/api/docs/",
        "/healthz",
    ] {
        let resp = reqwest::get(app.url(path)).await.unwrap();
        let h = resp.headers();
        let csp = h
            .get("content-security-policy")
            .unwrap_or_else(|| panic!("{path}: CSP"))
            .to_str()
            .unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(!csp.contains("'unsafe-eval'"), "{path}: {csp}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
        assert!(h.contains_key("cache-control"), "{path}");
        assert_eq!(h["x-request-id"].len(), 16, "{path}");
    }
    let resp = reqwest::get(app.url("/api/v1/jobs")).await.unwrap();
    assert_eq!(resp.headers()["cache-control"], "no-store");
    // Errors quote the request id of their response.
    let resp = reqwest::get(app.url("/api/v1/jobs/nope")).await.unwrap();
    let id = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    let err: ErrorBody = resp.json().await.unwrap();
    assert_eq!(err.request_id.as_deref(), Some(id.as_str()));
}

#[tokio::test]
async fn the_test_target_is_mounted_on_a_shared_server_only_when_asked_for() {
    let shared = crate::helpers::spawn_app_with_auth().await;
    let r = reqwest::get(shared.url("/target/anything?status=418"))
        .await
        .unwrap();
    assert_ne!(r.status(), 418, "not mounted when tokens are asked for");
    let asked = spawn_configured(None, tempfile::tempdir().unwrap().keep(), |s| {
        s.with_auth(true).with_target(Some(true))
    })
    .await;
    let r = reqwest::get(asked.url("/target/anything?status=418"))
        .await
        .unwrap();
    assert_eq!(r.status(), 418, "mounted with --target on, no token needed");
    let r = reqwest::get(asked.url("/api/v1/jobs")).await.unwrap();
    assert_eq!(r.status(), 401, "the API still asks for one");
}
