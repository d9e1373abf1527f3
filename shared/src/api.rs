//! Bodies of the REST API under `/api/v1`.

use serde::{Deserialize, Serialize};

/// Answer of `GET /api/v1/version`: lets scripts and the dashboard check
/// which server they talk to before relying on newer endpoints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VersionInfo {
    /// Always `"queuelab"`, so a client can tell it reached the right service.
    pub name: String,
    /// Version of the `queuelab` binary.
    pub version: String,
    /// Protocol revision of the REST and WebSocket API.
    pub protocol: u32,
}

/// The JSON body of every API error: a stable machine-readable `code`, a
/// human `message`, and the offending `field` path when one input is to blame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Stable identifier such as `not_found` or `invalid_field`.
    pub code: String,
    /// One sentence a person can act on.
    pub message: String,
    /// Path of the input field at fault (`stages[1].queue.capacity`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_body_omits_absent_field() {
        let body = ErrorBody {
            code: "not_found".into(),
            message: "no route".into(),
            field: None,
        };
        let json = serde_json::to_value(&body).unwrap();
        assert!(json.get("field").is_none());
        let back: ErrorBody = serde_json::from_value(json).unwrap();
        assert_eq!(back, body);
    }

    #[test]
    fn version_info_rejects_unknown_fields() {
        let err = serde_json::from_str::<VersionInfo>(
            r#"{"name":"queuelab","version":"1","protocol":1,"extra":true}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("extra"));
    }
}
