//! The OpenAPI document is a contract: every path parameter, status code
//! and error body is in it, and the server answers what it says. These
//! tests keep that from regressing without schemathesis (which
//! `tests/contract/run` runs against a real server), and pin the server
//! bugs schemathesis found.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use shared::api::{ErrorBody, JobPage};

use crate::helpers::{TestApp, get_json, spawn_app, spawn_app_with_auth, start};

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

/// A response object, with a `$ref` to `#/components/responses` resolved.
fn resolve<'a>(doc: &'a Value, response: &'a Value) -> &'a Value {
    match response["$ref"].as_str() {
        Some(r) => {
            let name = r
                .strip_prefix("#/components/responses/")
                .unwrap_or_else(|| panic!("{r} is not a response component"));
            let found = &doc["components"]["responses"][name];
            assert!(found.is_object(), "{r} is defined");
            found
        }
        None => response,
    }
}

/// Whether `schema` is (or may be) the ErrorBody schema.
fn is_error_body(doc: &Value, schema: &Value) -> bool {
    match schema["$ref"].as_str() {
        Some("#/components/schemas/ErrorBody") => true,
        Some(r) => r
            .strip_prefix("#/components/schemas/")
            .is_some_and(|name| is_error_body(doc, &doc["components"]["schemas"][name])),
        None => schema["oneOf"]
            .as_array()
            .is_some_and(|items| items.iter().any(|s| is_error_body(doc, s))),
    }
}

fn path_params(path: &str) -> BTreeSet<String> {
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn openapi_declares_every_path_parameter_of_every_operation() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    for (method, path, op) in operations(&doc) {
        let declared: BTreeSet<String> = op["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["in"] == "path")
            .map(|p| {
                assert_eq!(p["required"], true, "{method} {path}: {p}");
                assert!(p["schema"].is_object(), "{method} {path}: {p}");
                p["name"].as_str().unwrap().to_owned()
            })
            .collect();
        assert_eq!(declared, path_params(&path), "{method} {path}");
    }
}

#[tokio::test]
async fn openapi_documents_the_errors_of_every_operation_as_error_bodies() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    for (method, path, op) in operations(&doc) {
        let responses = op["responses"].as_object().unwrap();
        let has = |status: &str| responses.contains_key(status);
        let must = |statuses: &[&str], why: &str| {
            for s in statuses {
                assert!(has(s), "{method} {path} documents {s} ({why})");
            }
        };
        must(&["421", "500"], "every request");
        let guarded = op["security"].as_array().is_some_and(|s| !s.is_empty());
        if guarded {
            must(&["401", "403", "429"], "behind the token check");
        }
        if method == "post" || method == "patch" {
            must(&["413", "415"], "a mutation with a body");
            assert!(
                op["requestBody"]["content"].is_object(),
                "{method} {path} names its media types"
            );
        }
        if !path_params(&path).is_empty() && path.starts_with("/api/v1/jobs/") {
            must(&["404"], "a job that does not exist");
        }
        let queries = op["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|p| p["in"] == "query");
        if queries {
            must(&["400"], "a query string that cannot be read");
        }
        assert!(
            responses.keys().any(|s| s.starts_with('2')),
            "{method} {path} documents its success"
        );
        for (status, response) in responses {
            let response = resolve(&doc, response);
            assert!(
                response["headers"]["x-request-id"].is_object(),
                "{method} {path} {status} documents x-request-id"
            );
            if status.starts_with('4') || status.starts_with('5') {
                let schema = &response["content"]["application/json"]["schema"];
                assert!(
                    is_error_body(&doc, schema),
                    "{method} {path} {status} is an ErrorBody: {response}"
                );
            }
        }
    }
}

#[tokio::test]
async fn openapi_ranges_and_names_are_the_servers() {
    let app = spawn_app().await;
    let doc = document(&app).await;
    let schemas = &doc["components"]["schemas"];
    let param = |path: &str, name: &str| -> Value {
        doc["paths"][path]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{path} ?{name}"))["schema"]
            .clone()
    };
    assert_eq!(
        param("/api/v1/jobs/{id}/metrics", "step_ms")["maximum"],
        json!(server::routes::jobs::MAX_STEP_MS)
    );
    let limits = |field: &str| schemas["TuneRequest"]["properties"][field].clone();
    use shared::spec::limits;
    assert_eq!(limits("workers")["maximum"], json!(limits::MAX_WORKERS));
    assert_eq!(
        limits("concurrency")["maximum"],
        json!(limits::MAX_CONCURRENCY)
    );
    assert_eq!(
        limits("rate_limit")["minimum"].as_f64(),
        Some(limits::MIN_RATE)
    );
    assert_eq!(
        limits("rate_limit")["maximum"].as_f64(),
        Some(limits::MAX_RATE)
    );
    assert_eq!(
        schemas["StopRequest"]["properties"]["deadline_ms"]["maximum"],
        json!(limits::MAX_DRAIN_DEADLINE_MS)
    );
    let spec = &schemas["PipelineSpec"]["properties"];
    assert_eq!(
        spec["drain_deadline_ms"]["maximum"],
        json!(limits::MAX_DRAIN_DEADLINE_MS)
    );
    assert_eq!(spec["stages"]["maxItems"], json!(limits::MAX_STAGES));
    // A number (within the limit), "auto", or an auto range.
    let fixed_max = |field: &str| {
        // A `$ref` to the limit's own schema: alone, beside its
        // description in an `allOf`, or beside `null` in a `oneOf`.
        let prop = &schemas["StageSpec"]["properties"][field];
        let r = [
            &prop["$ref"],
            &prop["allOf"][0]["$ref"],
            &prop["oneOf"][0]["$ref"],
            &prop["oneOf"][1]["$ref"],
        ]
        .into_iter()
        .find_map(|v| v.as_str())
        .unwrap_or_else(|| panic!("{field}: {prop}"));
        let schema = &schemas[r.trim_start_matches("#/components/schemas/")];
        let items = schema["oneOf"]
            .as_array()
            .unwrap_or_else(|| panic!("{field}: {schema}"));
        items
            .iter()
            .find(|s| s["type"] == "integer")
            .map(|s| s["maximum"].clone())
            .unwrap_or_else(|| panic!("{field}: {schema}"))
    };
    assert_eq!(fixed_max("workers"), json!(limits::MAX_WORKERS));
    assert_eq!(fixed_max("concurrency"), json!(limits::MAX_CONCURRENCY));
    // A `parse_json` schema: as many fields as validation allows, each
    // one of the type names it knows.
    let parse_json = schemas["OpSpec"]["oneOf"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["properties"]["kind"]["enum"] == json!(["parse_json"]))
        .expect("OpSpec documents parse_json");
    let schema = &parse_json["properties"]["schema"];
    assert_eq!(schema["maxProperties"], json!(limits::MAX_SCHEMA_FIELDS));
    let field_type = &schema["additionalProperties"];
    let field_type = match field_type["$ref"].as_str() {
        Some(r) => &schemas[r.trim_start_matches("#/components/schemas/")],
        None => field_type,
    };
    let names: Vec<String> = shared::spec::JsonType::ALL
        .into_iter()
        .flat_map(|t| [t.to_string(), format!("{t}?")])
        .collect();
    assert_eq!(field_type["enum"], json!(names), "{parse_json:#}");
    // The template names are the built-in ones.
    let names: Vec<&str> = shared::templates::ALL.iter().map(|t| t.name).collect();
    assert_eq!(schemas["TemplateName"]["enum"], json!(names));
    let template_ref = json!("#/components/schemas/TemplateName");
    assert_eq!(
        schemas["FromTemplate"]["properties"]["template"]["$ref"],
        template_ref
    );
    assert_eq!(
        doc["paths"]["/api/v1/templates/{name}"]["get"]["parameters"][0]["schema"]["$ref"],
        template_ref
    );
    // The documented ingest counts are the engine's.
    let counts = serde_json::to_value(engine::source::Ingested::default()).unwrap();
    let documented: BTreeSet<&String> = schemas["IngestCounts"]["properties"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(
        documented,
        counts.as_object().unwrap().keys().collect::<BTreeSet<_>>()
    );
}

/// A concrete path for a documented one (`{id}` → a job that may not exist).
fn concrete(path: &str) -> String {
    path.replace("{id}", "j-none")
        .replace("{name}", shared::templates::ALL[0].name)
}

#[tokio::test]
async fn openapi_security_is_what_the_token_check_does() {
    let app = spawn_app_with_auth().await;
    let doc = document(&app).await;
    let client = reqwest::Client::new();
    for (method, path, op) in operations(&doc) {
        let guarded = op["security"].as_array().is_some_and(|s| !s.is_empty());
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let resp = client
            .request(method.clone(), app.url(&concrete(&path)))
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.status() == StatusCode::UNAUTHORIZED,
            guarded,
            "{method} {path} without a token: {}",
            resp.status()
        );
    }
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

/// Whether a query parameter's schema admits the empty string: a plain
/// string, or a `oneOf` with an item that does.
fn admits_empty(doc: &Value, schema: &Value) -> bool {
    if let Some(r) = schema["$ref"].as_str() {
        let name = r.strip_prefix("#/components/schemas/").unwrap();
        return admits_empty(doc, &doc["components"]["schemas"][name]);
    }
    if let Some(items) = schema["oneOf"].as_array() {
        return items.iter().any(|s| admits_empty(doc, s));
    }
    let is_string = schema["type"] == "string"
        || schema["type"]
            .as_array()
            .is_some_and(|t| t.contains(&json!("string")));
    is_string
        && schema["enum"]
            .as_array()
            .is_none_or(|values| values.contains(&json!("")))
}

/// Found by schemathesis: `state=` (what a form or a query builder sends
/// for an unset filter) was a 400; an empty filter filters nothing, as the
/// document says. And `finished=` was accepted while the document said
/// "boolean": every filter that takes an empty value says so.
#[tokio::test]
async fn empty_list_filters_filter_nothing() {
    let app = spawn_app().await;
    start(
        &app,
        json!({"name": "one", "source": {"kind": "synthetic", "count": 1}}),
    )
    .await;
    for query in [
        "",
        "?state=",
        "?template=",
        "?q=",
        "?finished=",
        "?state=&template=&q=&finished=&offset=0",
    ] {
        let resp = reqwest::get(app.url(&format!("/api/v1/jobs{query}")))
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{query}");
        let page: JobPage = resp.json().await.unwrap();
        assert_eq!(page.total, 1, "{query}");
    }
    let doc = document(&app).await;
    let params = doc["paths"]["/api/v1/jobs"]["get"]["parameters"]
        .as_array()
        .unwrap();
    for name in ["state", "template", "q", "finished"] {
        let param = params
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("`{name}` is documented"));
        assert!(
            admits_empty(&doc, &param["schema"]),
            "`{name}=` is accepted, so the document admits it: {}",
            param["schema"]
        );
    }
    for bad in ["state=sleeping", "finished=yes"] {
        let resp = reqwest::get(app.url(&format!("/api/v1/jobs?{bad}")))
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{bad}");
        let err: ErrorBody = resp.json().await.unwrap();
        assert_eq!(err.code, "bad_request");
    }
}

/// Found by schemathesis: an `offset` (or a time) past 64 bits was a 400,
/// though the document allows any non-negative integer; skipping more than
/// there is gives an empty page.
#[tokio::test]
async fn counts_and_times_past_64_bits_are_not_errors() {
    let app = spawn_app().await;
    let id = start(
        &app,
        json!({"name": "one", "source": {"kind": "synthetic", "count": 1}}),
    )
    .await;
    let huge = "965169791111869890560";
    let resp = reqwest::get(app.url(&format!("/api/v1/jobs?offset={huge}")))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let page: JobPage = resp.json().await.unwrap();
    assert_eq!((page.jobs.len(), page.total), (0, 1));
    for path in [
        format!("/api/v1/jobs/{id}/metrics?from_ms=0&to_ms={huge}"),
        format!("/api/v1/jobs/{id}/metrics?from_ms={huge}"),
        format!("/api/v1/jobs/{id}/leftovers?offset={huge}"),
        format!("/api/v1/jobs/{id}/dead_letters?offset={huge}"),
    ] {
        let resp = reqwest::get(app.url(&path)).await.unwrap();
        assert_eq!(resp.status(), 200, "{path}");
    }
    for path in [
        "/api/v1/jobs?offset=-1".to_owned(),
        format!("/api/v1/jobs/{id}/metrics?to_ms=soon"),
    ] {
        let resp = reqwest::get(app.url(&path)).await.unwrap();
        assert_eq!(resp.status(), 400, "{path}");
    }
}

/// A job whose drain takes about a minute: a full queue of slow items.
async fn slow_drainer(app: &TestApp) -> String {
    let id = start(
        app,
        json!({"name": "slow", "source": {"kind": "synthetic", "count": 1_000_000},
            "stages": [{"name": "s", "workers": 1, "queue": {"capacity": 1000},
                "op": {"kind": "sleep", "latency": {"dist": "fixed", "ms": 60.0}}}]}),
    )
    .await;
    crate::helpers::wait_job(app, &id, "a full queue", |d| {
        d.snapshot.nodes.iter().any(|n| n.depth >= 500)
    })
    .await;
    id
}

async fn stop(app: &TestApp, id: &str, body: Value) -> StatusCode {
    reqwest::Client::new()
        .post(app.url(&format!("/api/v1/jobs/{id}/stop")))
        .json(&body)
        .send()
        .await
        .unwrap()
        .status()
}

/// Found by the contract run: a second drain with a shorter deadline was a
/// 202 and changed nothing, so the job drained for the first one's hour.
/// A deadline on a draining job brings its abort closer.
#[tokio::test]
async fn a_shorter_drain_deadline_shortens_a_drain_under_way() {
    let app = spawn_app().await;
    let id = slow_drainer(&app).await;
    assert_eq!(
        stop(&app, &id, json!({"deadline_ms": 3_600_000})).await,
        202
    );
    assert_eq!(stop(&app, &id, json!({"deadline_ms": 1})).await, 202);
    let d =
        crate::helpers::wait_job(&app, &id, "the abort", |d| d.summary.state.is_finished()).await;
    assert_eq!(d.summary.state, shared::metrics::JobState::Aborted);
    // A longer one does not put it off.
    let id = slow_drainer(&app).await;
    assert_eq!(stop(&app, &id, json!({"deadline_ms": 300})).await, 202);
    assert_eq!(
        stop(&app, &id, json!({"deadline_ms": 3_600_000})).await,
        202
    );
    let d =
        crate::helpers::wait_job(&app, &id, "the abort", |d| d.summary.state.is_finished()).await;
    assert_eq!(d.summary.state, shared::metrics::JobState::Aborted);
}

/// Found by the contract run: a server shutting down waited for a drain a
/// client had given an hour, past its own shutdown drain deadline (5 s in
/// tests; `shutdown` fails after 10 s).
#[tokio::test]
async fn shutdown_is_not_held_up_by_a_long_drain_under_way() {
    let app = spawn_app().await;
    let id = slow_drainer(&app).await;
    assert_eq!(
        stop(&app, &id, json!({"deadline_ms": 3_600_000})).await,
        202
    );
    app.shutdown().await;
}
