//! REST calls to the server, with the API token from the browser's
//! storage, and errors turned into readable messages.

use gloo_net::http::{Request, RequestBuilder};
use serde::Serialize;
use serde::de::DeserializeOwned;
use shared::api::ErrorBody;

/// What the dashboard reads of a job the server created: its id. A view
/// that only moves on to the new job's page decodes this, not the whole
/// [`shared::api::JobDetail`] (its spec and report decoders would land in
/// the view's bundle).
#[derive(Debug, serde::Deserialize)]
pub struct Created {
    /// The new job's id.
    pub id: String,
}

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

/// Decodes an answer, or says what went wrong: every problem by field path
/// when the server listed them.
async fn decode<T: DeserializeOwned>(
    resp: Result<gloo_net::http::Response, gloo_net::Error>,
) -> Result<T, ApiError> {
    let resp = resp.map_err(|e| ApiError::message(format!("cannot reach the server: {e}")))?;
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

/// [`decode`], with the error as one readable line.
async fn finish<T: DeserializeOwned>(
    resp: Result<gloo_net::http::Response, gloo_net::Error>,
) -> Result<T, String> {
    decode(resp).await.map_err(|e| e.to_string())
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

/// `GET` a JSON resource that may not exist: `Ok(None)` when the server
/// answers 404 (an unknown job id), so the page can say "not found".
pub async fn get_optional<T: DeserializeOwned>(path: &str) -> Result<Option<T>, String> {
    let resp = authed(Request::get(path)).send().await;
    if resp.as_ref().is_ok_and(|r| r.status() == 404) {
        return Ok(None);
    }
    finish(resp).await.map(Some)
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
    decode(req.send().await).await
}

/// A failed request: a message, and the problems by field path.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ApiError {
    /// The first problem, or what went wrong.
    pub message: String,
    /// Every problem with the path of its field.
    pub fields: Vec<(String, String)>,
}

/// Each problem as `path: message`, joined by `; ` (the message alone when
/// no field is named).
impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.fields.is_empty() {
            return f.write_str(&self.message);
        }
        let all: Vec<String> = self
            .fields
            .iter()
            .map(|(path, message)| {
                if path.is_empty() {
                    message.clone()
                } else {
                    format!("{path}: {message}")
                }
            })
            .collect();
        f.write_str(&all.join("; "))
    }
}

impl ApiError {
    fn message(message: String) -> Self {
        Self {
            message,
            fields: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_reads_as_one_line_naming_each_field() {
        let listed = ApiError {
            message: "must be between 1 and 4096".into(),
            fields: vec![
                (
                    "stages[0].workers".into(),
                    "must be between 1 and 4096".into(),
                ),
                ("sink.path".into(), "must not be empty".into()),
            ],
        };
        assert_eq!(
            listed.to_string(),
            "stages[0].workers: must be between 1 and 4096; sink.path: must not be empty"
        );
        let unnamed = ApiError {
            message: "no job `x`".into(),
            fields: vec![(String::new(), "no job `x`".into())],
        };
        assert_eq!(unnamed.to_string(), "no job `x`");
        assert_eq!(
            ApiError::message("cannot reach the server".into()).to_string(),
            "cannot reach the server"
        );
    }
}
