//! The answers the document reuses: each error as a JSON [`ErrorBody`](shared::api::ErrorBody)
//! in `#/components/responses`, and the groups of them ([`Always`],
//! [`Guarded`], [`Mutation`]) that the middleware may answer any operation
//! of a kind with, which handlers name in their `responses(...)`.

use std::collections::BTreeMap;

use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{Object, Type};
use utoipa::openapi::{ContentBuilder, Ref, RefOr};

/// A JSON [`ErrorBody`](shared::api::ErrorBody) answer; 429s also say when to try again.
fn error_response(name: &str, description: &str) -> Response {
    let mut response = ResponseBuilder::new().description(description).content(
        "application/json",
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("ErrorBody")))
            .build(),
    );
    if name == "TooManyRequests" {
        response = response.header(
            "retry-after",
            HeaderBuilder::new()
                .schema(Some(Object::with_type(Type::Integer)))
                .description(Some(
                    "Seconds to wait before trying again (when the client is throttled)",
                ))
                .build(),
        );
    }
    response.build()
}

/// Reusable error answers, in `#/components/responses`: each a JSON
/// [`ErrorBody`](shared::api::ErrorBody) whose stable `code` its description names.
macro_rules! error_responses {
    ($($(#[$meta:meta])* $name:ident => $description:expr;)*) => {$(
        $(#[$meta])*
        #[derive(Debug)]
        pub struct $name;

        impl $name {
            /// What the answer means, as documented.
            pub const DESCRIPTION: &'static str = $description;
        }

        impl<'r> utoipa::ToResponse<'r> for $name {
            fn response() -> (&'r str, RefOr<Response>) {
                let name = stringify!($name);
                (name, error_response(name, Self::DESCRIPTION).into())
            }
        }
    )*};
}

error_responses! {
    /// 400.
    BadRequest => "`bad_request`: the query string or the body cannot be read (an unknown \
        query parameter, a value of the wrong type, a body that is not UTF-8)";
    /// 401.
    Unauthorized => "`unauthorized`: no API token, or an unknown one \
        (`Authorization: Bearer <token>`)";
    /// 403.
    Forbidden => "`forbidden`: the token's role does not allow this (viewer < operator < admin)";
    /// 404.
    NotFound => "`not_found`: no such job, template or endpoint";
    /// 413.
    PayloadTooLarge => "`payload_too_large`: the body is larger than 2 MiB";
    /// 415.
    UnsupportedMediaType => "`unsupported_media_type`: the body's `Content-Type` is not one \
        this operation reads (see its request body); a mutation without one is refused";
    /// 421.
    MisdirectedRequest => "`misdirected_host`: the `Host` header names a host this server \
        does not answer for (only IP literals, `localhost` and `--allowed-host` names)";
    /// 429.
    TooManyRequests => "`limit_reached`: a server-wide limit on running jobs, workers or \
        queued items would be passed; or too many requests with bad tokens from this client \
        (`Retry-After` says when to try again)";
    /// 500.
    Internal => "`internal`: a failure on the server's side; the message says nothing \
        more, the request id finds it in the server's log";
    /// 503.
    Unavailable => "`unavailable`: the server is shutting down, or the system refused the \
        threads the request needs; try again later";
}

/// A group of reusable answers, by status code.
fn refs(answers: &[(&str, &str)]) -> BTreeMap<String, RefOr<Response>> {
    answers
        .iter()
        .map(|(status, name)| {
            (
                (*status).to_owned(),
                RefOr::Ref(Ref::from_response_name(*name)),
            )
        })
        .collect()
}

/// What any request may be answered, whatever the operation: 421 (the
/// `Host` check runs first) and 500.
#[derive(Debug)]
pub struct Always;

impl utoipa::IntoResponses for Always {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        refs(&[("421", "MisdirectedRequest"), ("500", "Internal")])
    }
}

/// What an operation behind the token check may be answered: 401, 403,
/// 429 (see [`Always`] too).
#[derive(Debug)]
pub struct Guarded;

impl utoipa::IntoResponses for Guarded {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let mut all = Always::responses();
        all.extend(refs(&[
            ("401", "Unauthorized"),
            ("403", "Forbidden"),
            ("429", "TooManyRequests"),
        ]));
        all
    }
}

/// What a guarded `POST`/`PATCH` with a body may be answered: 413, 415
/// (and what [`Guarded`] lists).
#[derive(Debug)]
pub struct Mutation;

impl utoipa::IntoResponses for Mutation {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let mut all = Guarded::responses();
        all.extend(refs(&[
            ("413", "PayloadTooLarge"),
            ("415", "UnsupportedMediaType"),
        ]));
        all
    }
}
