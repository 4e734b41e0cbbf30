//! Request bodies: read within bounds, parsed into a JSON object, then into
//! the call's own type, with refusals that name the field at fault and
//! never an internal type.

use std::time::Duration;

use axum::body::Body;
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use ciam_core::admin::invalid;
use ciam_core::{CiamError, ErrorCode, Reason};
use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

/// How long a request body may take to arrive once its head has: a body
/// is at most tens of KiB, so a client that stalls longer is gone (or
/// holding the connection on purpose), and is answered 408 before the
/// request's deadline would answer 500.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(3);

fn declares_json(parts: &Parts) -> bool {
    parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
}

/// Whether a body error is the size limit (rather than bad framing or a
/// broken connection).
pub(crate) fn over_limit(error: &axum::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = cause {
        if e.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        cause = e.source();
    }
    false
}

/// Reads a body declared as JSON, of at most `limit` bytes, that is one JSON
/// object. Refusals use the SDK's codes; the admin API answers its own for
/// each (see [`ErrorCode::in_admin`]).
pub(crate) async fn object(parts: &Parts, body: Body, limit: usize) -> Result<Map<String, Value>, CiamError> {
    if !declares_json(parts) {
        return Err(CiamError::refused(ErrorCode::ContentTypeInvalid));
    }
    let bytes = match tokio::time::timeout(BODY_TIMEOUT, axum::body::to_bytes(body, limit)).await {
        Err(_) => return Err(CiamError::refused(ErrorCode::BodyTimeout)),
        Ok(Err(e)) if over_limit(&e) => return Err(CiamError::refused(ErrorCode::BodyTooLarge)),
        Ok(Err(_)) => return Err(CiamError::refused(ErrorCode::RequestUnreadable)),
        Ok(Ok(bytes)) => bytes,
    };
    match serde_json::from_slice(&bytes) {
        // serde would read `[]` as a struct of defaults: only an object will do.
        Ok(Unique(Value::Object(map))) => Ok(map),
        Ok(_) => Err(CiamError::refused(ErrorCode::BodyShapeInvalid)),
        Err(_) => Err(CiamError::refused(ErrorCode::BodyNotJson)),
    }
}

/// A JSON value in which no object names a key twice. serde_json keeps the
/// last of duplicate keys, while a proxy or a WAF in front may read the
/// first: such a body is refused like a malformed one, so that what was
/// checked is what ciam acts on.
struct Unique(Value);

impl<'de> Deserialize<'de> for Unique {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(UniqueVisitor).map(Unique)
    }
}

struct UniqueVisitor;

impl<'de> serde::de::Visitor<'de> for UniqueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value without duplicate keys")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Unique(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(A::Error::custom("duplicate key"));
            }
            let Unique(value) = map.next_value()?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

/// An admin body: a JSON object of `T`'s shape, or 422 naming the field
/// at fault and why, in words a client's author reads (never a Rust type).
pub(crate) fn fields<T: DeserializeOwned>(map: Map<String, Value>) -> Result<T, CiamError> {
    serde_path_to_error::deserialize(Value::Object(map)).map_err(|e| {
        let path = e.path().to_string();
        let why = plain(&e.into_inner().to_string());
        match unknown_field(&why) {
            Some(field) => invalid(&field, Reason::new("is not a field of this call", "不是此接口的字段")),
            None if path == "." => invalid("body", reason(&why)),
            None => invalid(&path, reason(&why)),
        }
    })
}

/// serde's message as a reason, in plain words (its detail stays in
/// English in both languages: it quotes the value).
pub(crate) fn reason(why: &str) -> Reason {
    let why = plain(why);
    Reason::new(why.clone(), format!("值的类型或格式不对({why})"))
}

/// The field an "unknown field" error names.
fn unknown_field(why: &str) -> Option<String> {
    let rest = why.strip_prefix("unknown field `")?;
    Some(rest.split('`').next()?.to_owned())
}

/// serde's message without Rust's names for types.
pub(crate) fn plain(why: &str) -> String {
    let mut text = why.split(" at line ").next().unwrap_or(why).to_owned();
    for (rust, words) in [
        ("expected u8", "expected a whole number"),
        ("expected u16", "expected a whole number"),
        ("expected u32", "expected a whole number"),
        ("expected u64", "expected a whole number"),
        ("expected i32", "expected a whole number"),
        ("expected i64", "expected a whole number"),
        ("expected a sequence", "expected a list"),
        ("expected a map", "expected an object"),
        ("floating point", "number"),
        ("invalid digit found in string", "expected a whole number"),
        ("number too large to fit in target type", "too large"),
        ("cannot parse integer from empty string", "expected a whole number"),
    ] {
        text = text.replace(rust, words);
    }
    text
}

/// A whole number, also when written with a zero fraction (`60.0`): JSON
/// Schema counts that as an integer too.
pub(crate) fn whole<'de, D: Deserializer<'de>, T: TryFrom<i64>>(d: D) -> Result<T, D::Error> {
    let number = serde_json::Number::deserialize(d)?;
    let value = match (number.as_i64(), number.as_f64()) {
        (Some(n), _) => n,
        (None, Some(f)) if f.fract() == 0.0 && f.abs() < 9.0e15 => f as i64,
        _ => return Err(D::Error::custom(format!("expected a whole number, not {number}"))),
    };
    T::try_from(value).map_err(|_| D::Error::custom(format!("{value} is out of range")))
}

/// An optional whole number that, when present, may not be `null`.
pub(crate) fn some_whole<'de, D: Deserializer<'de>, T: TryFrom<i64>>(d: D) -> Result<Option<T>, D::Error> {
    whole(d).map(Some)
}

/// An optional field that, when present, may not be `null`.
pub(crate) fn some<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// A field where an absent value (`None`) differs from `null` (`Some(None)`).
pub(crate) fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ciam_core::Lang;
    use serde_json::json;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body {
        #[serde(default, deserialize_with = "some_whole")]
        ttl: Option<u32>,
        #[serde(default, deserialize_with = "some")]
        name: Option<String>,
    }

    fn parse(value: Value) -> Result<Body, String> {
        let Value::Object(map) = value else { panic!("an object") };
        fields::<Body>(map).map_err(|e| e.message(Lang::En))
    }

    #[test]
    fn a_key_named_twice_at_any_depth_is_refused() {
        let read = |text: &str| serde_json::from_str::<Unique>(text).map(|u| u.0);
        assert!(read(r#"{"mobile": "1", "mobile": "2"}"#).is_err());
        assert!(read(r#"{"a": {"b": 1, "b": 1}}"#).is_err());
        assert!(read(r#"[{"b": 1}, {"b": 2, "b": 3}]"#).is_err());
        let same = r#"{"a": [1, -2, 3.5, "x", null, true], "b": {"c": {}}, "c": 18446744073709551615}"#;
        assert_eq!(read(same).expect("no duplicates"), serde_json::from_str::<Value>(same).expect("json"));
        assert!(read(r#"{"a": 1,}"#).is_err(), "still strict JSON");
    }

    #[test]
    fn refusals_name_the_field_in_plain_words() {
        assert_eq!(parse(json!({"ttl": 60.0})).expect("whole").ttl, Some(60));
        assert_eq!(parse(json!({})).expect("empty").ttl, None);
        assert_eq!(parse(json!({"name": "x"})).expect("name").name.as_deref(), Some("x"));
        let cases = [
            (json!({"ttl": 60.5}), "'ttl'"),
            (json!({"ttl": null}), "'ttl'"),
            (json!({"ttl": -1}), "'ttl'"),
            (json!({"ttl": "60"}), "'ttl'"),
            (json!({"name": null}), "'name'"),
            (json!({"nmae": "x"}), "'nmae': is not a field of this call"),
        ];
        for (body, names) in cases {
            let why = parse(body.clone()).expect_err("refused");
            assert!(why.contains(names), "{body}: {why}");
            for rust in ["u32", "i64", "struct", "Body", "Option"] {
                assert!(!why.contains(rust), "{body}: {why}");
            }
        }
    }
}
