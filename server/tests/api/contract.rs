//! The OpenAPI document is a contract, and the server answers what it
//! says; these tests pin the server bugs schemathesis found.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::Value;
use shared::api::ErrorBody;

use crate::helpers::{TestApp, get_json, spawn_app};

/// The document as served.
async fn document(app: &TestApp) -> Value {
    get_json(app, "/api/v1/openapi.json").await
}

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Every operation: (method, path, operation object).
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            if let Some(op) = item.get(method) {
                out.push((method.to_owned(), path.clone(), op.clone()));
            }
        }
    }
    assert!(out.len() >= 18, "{} operations", out.len());
    out
}

/// A concrete path for a documented one (`{id}` → a job that may not exist).
fn concrete(path: &str) -> String {
    path.replace("{id}", "j-none")
        .replace("{name}", shared::templates::ALL[0].name)
}

#[tokio::test]
async fn every_documented_mutation_needs_its_media_type() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let client = reqwest::Client::new();
    for (method, path, _) in operations(&doc) {
        if method != "post" && method != "patch" {
            continue;
        }
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        for ct in [None, Some("text/plain")] {
            let mut req = client
                .request(method.clone(), app.url(&concrete(&path)))
                .body("{}");
            if let Some(ct) = ct {
                req = req.header("content-type", ct);
            }
            let resp = req.send().await.unwrap();
            assert_eq!(resp.status(), 415, "{method} {path} with {ct:?}");
            let err: ErrorBody = resp.json().await.unwrap();
            assert_eq!(err.code, "unsupported_media_type");
        }
    }
}

/// Found by schemathesis: a `POST` to a path without one answered 415 when
/// it had no media type (the media-type check ran before routing); it is a
/// 405 with `Allow`, whatever the media type, for every documented path.
#[tokio::test]
async fn an_undocumented_method_is_a_405_with_allow_whatever_the_media_type() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let client = reqwest::Client::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        let documented: BTreeSet<String> = METHODS
            .iter()
            .filter(|m| item.get(**m).is_some())
            .map(|m| m.to_uppercase())
            .collect();
        for method in ["POST", "PATCH", "PUT", "DELETE"] {
            if documented.contains(method) {
                continue;
            }
            let resp = client
                .request(
                    Method::from_bytes(method.as_bytes()).unwrap(),
                    app.url(&concrete(path)),
                )
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 405, "{method} {path}");
            let allow = resp.headers()["allow"].to_str().unwrap().to_owned();
            for m in &documented {
                assert!(allow.contains(m.as_str()), "{method} {path}: Allow {allow}");
            }
            let err: ErrorBody = resp.json().await.unwrap();
            assert_eq!(err.code, "method_not_allowed");
        }
    }
}
