//! How query strings read values, so that what a handler accepts is what
//! its documented schema says.

use serde::de::{DeserializeOwned, Error as _, IntoDeserializer};
use serde::{Deserialize, Deserializer};

/// An integer type whose largest value stands for "more than it holds".
pub trait Saturating: TryFrom<u128> {
    /// The largest value.
    const MAX: Self;
}

impl Saturating for u64 {
    const MAX: Self = u64::MAX;
}

impl Saturating for usize {
    const MAX: Self = usize::MAX;
}

/// Reads a non-negative integer.
fn non_negative<E: serde::de::Error, T: Saturating>(text: &str) -> Result<T, E> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(E::custom(format!("`{text}` is not a non-negative integer")));
    }
    Ok(text
        .parse::<u128>()
        .ok()
        .and_then(|n| T::try_from(n).ok())
        .unwrap_or(T::MAX))
}

/// A count or a time where any non-negative integer means something
/// (skip that many; from that time on): one too large for the type is its
/// largest value, not an error. The document says "integer, minimum 0"
/// and nothing more.
pub fn saturating<'de, D, T>(de: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Saturating,
{
    non_negative(&String::deserialize(de)?)
}

/// [`saturating`], for an optional value.
pub fn saturating_opt<'de, D, T>(de: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Saturating,
{
    Option::<String>::deserialize(de)?
        .map(|text| non_negative(&text))
        .transpose()
}

/// An optional filter where an empty value (`state=`, as a form or a query
/// builder sends one that is not set) means "not given".
pub fn empty_as_none<'de, D, T>(de: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    match Option::<String>::deserialize(de)?.as_deref() {
        None | Some("") => Ok(None),
        Some(text) => T::deserialize(IntoDeserializer::<D::Error>::into_deserializer(text))
            .map(Some)
            .map_err(|e| D::Error::custom(e.to_string())),
    }
}

/// An optional yes/no filter: `true` or `false`; empty means "not given".
pub fn flag<'de, D>(de: D) -> Result<Option<bool>, D::Error>
where
    D: Deserializer<'de>,
{
    match Option::<String>::deserialize(de)?.as_deref() {
        None | Some("") => Ok(None),
        Some("true") => Ok(Some(true)),
        Some("false") => Ok(Some(false)),
        Some(text) => Err(D::Error::custom(format!(
            "`{text}` is neither `true` nor `false`"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Q {
        #[serde(default, deserialize_with = "saturating")]
        offset: usize,
        #[serde(default, deserialize_with = "saturating_opt")]
        to_ms: Option<u64>,
        #[serde(default, deserialize_with = "empty_as_none")]
        state: Option<shared::metrics::JobState>,
        #[serde(default, deserialize_with = "flag")]
        finished: Option<bool>,
    }

    fn q(text: &str) -> Result<Q, axum::extract::rejection::QueryRejection> {
        let uri: axum::http::Uri = format!("/?{text}").parse().unwrap();
        axum::extract::Query::try_from_uri(&uri).map(|q| q.0)
    }

    #[test]
    fn counts_saturate_and_empty_filters_filter_nothing() {
        let big = q("offset=965169791111869890560&to_ms=99999999999999999999999").unwrap();
        assert_eq!(big.offset, usize::MAX);
        assert_eq!(big.to_ms, Some(u64::MAX));
        let none = q("state=").unwrap();
        assert_eq!((none.offset, none.to_ms, none.state), (0, None, None));
        let some = q("state=running&offset=3").unwrap();
        assert_eq!(some.state, Some(shared::metrics::JobState::Running));
        assert_eq!(some.offset, 3);
        assert_eq!(q("finished=true").unwrap().finished, Some(true));
        assert_eq!(q("finished=false").unwrap().finished, Some(false));
        assert_eq!(q("finished=").unwrap().finished, None);
        for bad in [
            "offset=-1",
            "offset=1.5",
            "offset=",
            "to_ms=x",
            "state=sleeping",
            "finished=yes",
        ] {
            assert!(q(bad).is_err(), "{bad}");
        }
    }
}
