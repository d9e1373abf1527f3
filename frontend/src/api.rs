//! REST calls to the server, with the API token from the browser's
//! storage, and errors turned into readable messages.

use gloo_net::http::{Request, RequestBuilder};
use serde::Serialize;
use serde::de::DeserializeOwned;
use shared::api::ErrorBody;

/// Key of the API token in `localStorage`.
pub const TOKEN_KEY: &str = "queuelab.token";

/// The stored API token, if any.
pub fn token() -> Option<String> {
    web_sys::window()?
        .local_storage()
        .ok()??
        .get_item(TOKEN_KEY)
        .ok()?
        .filter(|t| !t.is_empty())
}

fn authed(req: RequestBuilder) -> RequestBuilder {
    match token() {
        Some(t) => req.header("Authorization", &format!("Bearer {t}")),
        None => req,
    }
}

async fn finish<T: DeserializeOwned>(
    resp: Result<gloo_net::http::Response, gloo_net::Error>,
) -> Result<T, String> {
    let resp = resp.map_err(|e| format!("cannot reach the server: {e}"))?;
    if resp.ok() {
        return resp
            .json::<T>()
            .await
            .map_err(|e| format!("unexpected answer: {e}"));
    }
    let status = resp.status();
    match resp.json::<ErrorBody>().await {
        Ok(e) if !e.errors.is_empty() => Err(e
            .errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")),
        Ok(e) => Err(match e.field {
            Some(f) if !f.is_empty() => format!("{f}: {}", e.message),
            _ => e.message,
        }),
        Err(_) => Err(format!("the server answered {status}")),
    }
}

/// The HTTP status of a `GET`, or `None` when the server cannot be reached.
pub async fn status(path: &str) -> Option<u16> {
    authed(Request::get(path))
        .send()
        .await
        .ok()
        .map(|r| r.status())
}

/// `GET` a JSON resource.
pub async fn get<T: DeserializeOwned>(path: &str) -> Result<T, String> {
    finish(authed(Request::get(path)).send().await).await
}

/// `DELETE`s a resource; the answer has no body.
pub async fn delete(path: &str) -> Result<(), String> {
    let resp = authed(Request::delete(path))
        .send()
        .await
        .map_err(|e| format!("cannot reach the server: {e}"))?;
    if resp.ok() {
        return Ok(());
    }
    finish::<serde_json::Value>(Ok(resp)).await.map(|_| ())
}

/// Sends a JSON body with `method` and decodes the answer.
pub async fn send<B: Serialize, T: DeserializeOwned>(
    method: &str,
    path: &str,
    body: &B,
) -> Result<T, String> {
    let req = match method {
        "PATCH" => Request::patch(path),
        _ => Request::post(path),
    };
    let req = authed(req).json(body).map_err(|e| e.to_string())?;
    finish(req.send().await).await
}

/// Posts a spec written as text, TOML or JSON (told apart as the server
/// does: JSON starts with `{`), and decodes the answer.
pub async fn post_text<T: DeserializeOwned>(path: &str, text: &str) -> Result<T, ApiError> {
    let content_type = match shared::spec::SpecFormat::sniff(text) {
        shared::spec::SpecFormat::Json => "application/json",
        shared::spec::SpecFormat::Toml => "application/toml",
    };
    post_raw(path, content_type, text.to_owned()).await
}

/// Posts a spec held as JSON and decodes the answer.
pub async fn post_spec<T: DeserializeOwned>(
    path: &str,
    spec: &serde_json::Value,
) -> Result<T, ApiError> {
    post_raw(path, "application/json", spec.to_string()).await
}

/// Posts a spec and decodes the answer, or every problem by field path.
async fn post_raw<T: DeserializeOwned>(
    path: &str,
    content_type: &str,
    body: String,
) -> Result<T, ApiError> {
    let req = authed(Request::post(path))
        .header("Content-Type", content_type)
        .body(body)
        .map_err(|e| ApiError::message(e.to_string()))?;
    let resp = req
        .send()
        .await
        .map_err(|e| ApiError::message(format!("cannot reach the server: {e}")))?;
    if resp.ok() {
        return resp
            .json::<T>()
            .await
            .map_err(|e| ApiError::message(format!("unexpected answer: {e}")));
    }
    let status = resp.status();
    match resp.json::<ErrorBody>().await {
        Ok(e) => Err(ApiError {
            message: e.message.clone(),
            fields: if e.errors.is_empty() {
                e.field.map(|f| vec![(f, e.message)]).unwrap_or_default()
            } else {
                e.errors.into_iter().map(|f| (f.path, f.message)).collect()
            },
        }),
        Err(_) => Err(ApiError::message(format!("the server answered {status}"))),
    }
}

/// A failed request: a message, and the problems by field path.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ApiError {
    /// The first problem, or what went wrong.
    pub message: String,
    /// Every problem with the path of its field.
    pub fields: Vec<(String, String)>,
}

impl ApiError {
    fn message(message: String) -> Self {
        Self {
            message,
            fields: Vec::new(),
        }
    }
}
