//! Reading request bodies: JSON into a type with the field at fault
//! named, and the spec a create or validate request describes (JSON, TOML,
//! or a template with overrides). Below the routes, so every route module
//! reads bodies the same way without importing another.

use axum::body::Bytes;
use axum::http::{HeaderMap, header};
use serde::de::DeserializeOwned;
use serde_json::Value;
use shared::spec::{PipelineSpec, SpecFormat};
use shared::templates;

use crate::api::bodies::FromTemplate;
use crate::error::AppError;

/// Parses a JSON body into `T`, naming the field at fault.
pub(crate) fn json_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        AppError::InvalidField {
            field: if path == "." { String::new() } else { path },
            message: e.inner().to_string(),
        }
    })
}

/// The format of a spec body, from its `Content-Type` (JSON by default).
fn spec_format(headers: &HeaderMap) -> Result<SpecFormat, AppError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "application/json" | "" => Ok(SpecFormat::Json),
        "application/toml" | "application/x-toml" | "text/x-toml" | "text/toml" => {
            Ok(SpecFormat::Toml)
        }
        other => Err(AppError::UnsupportedMediaType(format!(
            "`{other}` is not a spec format: send application/json or application/toml"
        ))),
    }
}

/// Merges `patch` into `target`: objects key by key, arrays element by
/// element (so `{"stages": [{"workers": 16}]}` changes only the first
/// stage's workers), anything else replaced; `null` removes a key.
pub fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (Value::Array(t), Value::Array(p)) => {
            for (i, v) in p.iter().enumerate() {
                match t.get_mut(i) {
                    Some(slot) => merge(slot, v),
                    None => t.push(v.clone()),
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}

/// The spec a create or validate request describes, and its template.
pub(crate) fn requested_spec(
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<(PipelineSpec, Option<String>), AppError> {
    let format = spec_format(headers)?;
    let text = std::str::from_utf8(body)
        .map_err(|_| AppError::BadRequest("the body must be UTF-8 text".into()))?;
    if format == SpecFormat::Json
        && let Ok(Value::Object(map)) = serde_json::from_str::<Value>(text)
        && map.contains_key("template")
    {
        let req: FromTemplate = json_body(body)?;
        let t = templates::get(&req.template).ok_or_else(|| AppError::InvalidField {
            field: "template".into(),
            message: format!("no template `{}`; see GET /api/v1/templates", req.template),
        })?;
        let base = t.spec().map_err(|e| AppError::Internal(e.to_string()))?;
        let mut value =
            serde_json::to_value(&base).map_err(|e| AppError::Internal(e.to_string()))?;
        if !req.overrides.is_null() {
            merge(&mut value, &req.overrides);
        }
        let spec = PipelineSpec::parse(&value.to_string(), SpecFormat::Json)
            .map_err(AppError::InvalidSpec)?;
        return Ok((spec, Some(req.template)));
    }
    let spec = PipelineSpec::parse(text, format).map_err(AppError::InvalidSpec)?;
    Ok((spec, None))
}

#[cfg(test)]
mod tests {
    use super::merge;
    use serde_json::json;

    #[test]
    fn merge_patches_objects_and_arrays_by_index() {
        let mut v = json!({"a": 1, "stages": [{"w": 1, "n": "x"}, {"w": 2}], "drop": true});
        merge(
            &mut v,
            &json!({"stages": [{"w": 16}], "drop": null, "b": {"c": 3}}),
        );
        assert_eq!(
            v,
            json!({"a": 1, "stages": [{"w": 16, "n": "x"}, {"w": 2}], "b": {"c": 3}})
        );
    }
}
