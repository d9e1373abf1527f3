//! The auth matrix: no token, viewer, operator, admin × every route kind.

use reqwest::{Method, StatusCode};
use serde_json::json;
use shared::api::{ErrorBody, JobDetail};

use crate::helpers::{TestApp, spawn_app_with_auth};

pub(crate) fn token(app: &TestApp, role: &str) -> String {
    let t = server::auth::generate();
    app.state
        .jobs()
        .store()
        .add_token(&format!("{role}-token"), role, &server::auth::hash(&t))
        .unwrap();
    t
}

async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: serde_json::Value,
) -> StatusCode {
    let mut req = reqwest::Client::new()
        .request(method, app.url(path))
        .json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    if status == 401 || status == 403 {
        let err: ErrorBody = resp.json().await.unwrap();
        assert_eq!(
            err.code,
            if status == 401 {
                "unauthorized"
            } else {
                "forbidden"
            }
        );
    }
    status
}

/// A finished job for deletions, and a running one for tunes and stops.
async fn jobs(app: &TestApp, admin: &str) -> (String, String) {
    let client = reqwest::Client::new();
    let mk = |count: u64| {
        client
            .post(app.url("/api/v1/jobs"))
            .bearer_auth(admin)
            .json(&json!({"name": "j", "source": {"kind": "synthetic", "count": count, "rate": 100.0}}))
            .send()
    };
    let done: JobDetail = mk(1).await.unwrap().json().await.unwrap();
    let running: JobDetail = mk(1_000_000).await.unwrap().json().await.unwrap();
    for _ in 0..200 {
        let d: JobDetail = client
            .get(app.url(&format!("/api/v1/jobs/{}", done.summary.id)))
            .bearer_auth(admin)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if d.report.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    (done.summary.id, running.summary.id)
}

#[tokio::test]
async fn every_role_gets_exactly_its_rights() {
    let app = spawn_app_with_auth().await;
    let (viewer, operator, admin) = (
        token(&app, "viewer"),
        token(&app, "operator"),
        token(&app, "admin"),
    );
    let bogus = "ql_not_a_real_token".to_owned();
    let (done, running) = jobs(&app, &admin).await;
    let spec = json!({"name": "x", "source": {"kind": "synthetic", "count": 1}});
    // (method, path, body, least role: 0 viewer, 1 operator, 2 admin)
    let routes: Vec<(Method, String, serde_json::Value, usize)> = vec![
        (Method::GET, "/api/v1/jobs".into(), json!(null), 0),
        (
            Method::GET,
            format!("/api/v1/jobs/{running}"),
            json!(null),
            0,
        ),
        (Method::GET, "/api/v1/templates".into(), json!(null), 0),
        (Method::POST, "/api/v1/validate".into(), spec.clone(), 0),
        (Method::POST, "/api/v1/jobs".into(), spec.clone(), 1),
        (
            Method::PATCH,
            format!("/api/v1/jobs/{running}"),
            json!({"stage": "nope"}),
            1,
        ),
        (Method::GET, "/api/v1/audit".into(), json!(null), 2),
        (
            Method::DELETE,
            format!("/api/v1/jobs/{done}"),
            json!(null),
            2,
        ),
    ];
    let tokens = [
        (None, usize::MAX),
        (Some(&bogus), usize::MAX),
        (Some(&viewer), 0),
        (Some(&operator), 1),
        (Some(&admin), 2),
    ];
    for (method, path, body, least) in &routes {
        for (tok, level) in &tokens {
            let status = call(
                &app,
                method.clone(),
                path,
                tok.map(String::as_str),
                body.clone(),
            )
            .await;
            let expect_ok = *level != usize::MAX && level >= least;
            let what = format!(
                "{method} {path} with {}",
                match level {
                    0 => "viewer",
                    1 => "operator",
                    2 => "admin",
                    _ => "no/unknown token",
                }
            );
            if *level == usize::MAX {
                assert_eq!(status, 401, "{what}");
            } else if expect_ok {
                assert!(status != 401 && status != 403, "{what}: {status}");
            } else {
                assert_eq!(status, 403, "{what}");
            }
        }
    }
    // Stopping is the operator's too; the audit log names who did what.
    assert_eq!(
        call(
            &app,
            Method::POST,
            &format!("/api/v1/jobs/{running}/stop"),
            Some(&viewer),
            json!({"mode": "abort"})
        )
        .await,
        403
    );
    assert_eq!(
        call(
            &app,
            Method::POST,
            &format!("/api/v1/jobs/{running}/stop"),
            Some(&operator),
            json!({"mode": "abort"})
        )
        .await,
        202
    );
    let audit: Vec<serde_json::Value> = reqwest::Client::new()
        .get(app.url("/api/v1/audit"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(audit[0]["action"], "stop");
    assert_eq!(audit[0]["who"], "operator-token");
    // Health and metrics stay open for probes.
    assert_eq!(
        reqwest::get(app.url("/healthz")).await.unwrap().status(),
        200
    );
    assert_eq!(
        reqwest::get(app.url("/metrics")).await.unwrap().status(),
        200
    );
}

#[tokio::test]
async fn the_websocket_needs_a_token_too() {
    let app = spawn_app_with_auth().await;
    let viewer = token(&app, "viewer");
    let refused = tokio_tungstenite::connect_async(app.ws_url()).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 401),
        other => panic!("expected 401, got {other:?}"),
    }
    let ok = tokio_tungstenite::connect_async(format!("{}?token={viewer}", app.ws_url())).await;
    assert!(ok.is_ok());
}

#[tokio::test]
async fn framework_errors_are_json_too() {
    let app = spawn_app_with_auth().await;
    let admin = token(&app, "admin");
    let client = reqwest::Client::new();
    let put = client
        .put(app.url("/api/v1/jobs"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 405);
    assert_eq!(
        put.json::<ErrorBody>().await.unwrap().code,
        "method_not_allowed"
    );
    let huge = "x".repeat(server::MAX_BODY + 1);
    let big = client
        .post(app.url("/api/v1/validate"))
        .bearer_auth(&admin)
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(big.status(), 413);
    assert_eq!(
        big.json::<ErrorBody>().await.unwrap().code,
        "payload_too_large"
    );
}

#[tokio::test]
async fn unknown_tokens_are_throttled_per_address_good_ones_included() {
    let app = spawn_app_with_auth().await;
    let good = token(&app, "viewer");
    let client = reqwest::Client::new();
    let get = |client: &reqwest::Client, t: &str| {
        client
            .get(app.url("/api/v1/jobs"))
            .bearer_auth(t.to_owned())
            .send()
    };
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for i in 0..20 {
        let r = get(&client, &format!("ql_guess_{i}")).await.unwrap();
        statuses.push(r.status().as_u16());
        if r.status() == 429 {
            retry_after = r.headers().get("retry-after").cloned();
            assert_eq!(
                r.json::<ErrorBody>().await.unwrap().code,
                "too_many_requests"
            );
        }
    }
    let allowed = server::auth::FAILURES_PER_MINUTE as usize;
    assert!(
        statuses[..allowed].iter().all(|s| *s == 401),
        "the first {allowed} failures are plain 401s: {statuses:?}"
    );
    assert!(
        statuses[allowed..].iter().filter(|s| **s == 429).count() >= 9,
        "then the address is throttled: {statuses:?}"
    );
    let secs: u64 = retry_after
        .expect("429 carries Retry-After")
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&secs), "{secs}");
    // While throttled, the address is refused even with a good token: a
    // guesser learns nothing from hitting one.
    assert_eq!(get(&client, &good).await.unwrap().status(), 429);
    // Another address is not throttled (Linux routes all of 127/8 to lo).
    let elsewhere = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .build()
        .unwrap();
    assert_eq!(get(&elsewhere, &good).await.unwrap().status(), 200);
}

#[tokio::test]
async fn a_query_token_opens_only_the_websocket() {
    let app = spawn_app_with_auth().await;
    let viewer = token(&app, "viewer");
    let r = reqwest::get(app.url(&format!("/api/v1/jobs?token={viewer}")))
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(
        r.json::<ErrorBody>()
            .await
            .unwrap()
            .message
            .contains("only on the WebSocket")
    );
    let ws = tokio_tungstenite::connect_async(format!("{}?token={viewer}", app.ws_url())).await;
    assert!(ws.is_ok(), "the WebSocket still takes ?token=");
}
