//! Small HTTP helpers for the shop handlers: building responses, reading
//! bounded JSON bodies, and picking values out of query strings and headers.
//!
//! They keep the handlers about the API rather than about hyper plumbing.

use std::borrow::Cow;

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use http::{HeaderMap, Response, StatusCode};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The shop's response type.
pub(crate) type Resp = Response<Full<Bytes>>;

/// Largest request body accepted; larger ones get 413.
pub(crate) const BODY_LIMIT: usize = 1 << 20;

/// A response with a body and its content type.
pub(crate) fn with_body(status: StatusCode, content_type: &'static str, body: Bytes) -> Resp {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// A response without a body.
pub(crate) fn empty(status: StatusCode) -> Resp {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    response
}

/// A JSON response.
pub(crate) fn json(status: StatusCode, value: &impl Serialize) -> Resp {
    match serde_json::to_vec(value) {
        Ok(body) => with_body(status, "application/json", Bytes::from(body)),
        Err(_) => with_body(
            StatusCode::INTERNAL_SERVER_ERROR,
            "text/plain",
            Bytes::from_static(b"cannot encode the response\n"),
        ),
    }
}

/// A JSON error: `{"error": message}`.
pub(crate) fn error(status: StatusCode, message: &str) -> Resp {
    json(status, &serde_json::json!({ "error": message }))
}

/// Reads the whole body (at most [`BODY_LIMIT`]) and parses it as JSON.
/// The error is the response to send: 413 when too large, 400 otherwise.
pub(crate) async fn read_json<T: DeserializeOwned>(headers: &HeaderMap, body: Incoming) -> Result<T, Resp> {
    let too_large = || error(StatusCode::PAYLOAD_TOO_LARGE, "body too large");
    let declared = headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > BODY_LIMIT as u64) {
        return Err(too_large());
    }
    let bytes = match Limited::new(body, BODY_LIMIT).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<LengthLimitError>() => return Err(too_large()),
        Err(_) => return Err(error(StatusCode::BAD_REQUEST, "cannot read the body")),
    };
    serde_json::from_slice(&bytes).map_err(|e| error(StatusCode::BAD_REQUEST, &format!("invalid JSON body: {e}")))
}

/// The first value of `key` in a query string, percent-decoded (`+` is a
/// space). `None` if absent.
pub(crate) fn query_param<'a>(query: Option<&'a str>, key: &str) -> Option<Cow<'a, str>> {
    query?
        .split('&')
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
        .find(|(k, _)| percent_decode(k) == key)
        .map(|(_, v)| percent_decode(v))
}

/// Decodes `%XX` escapes and `+`; bad escapes are kept as they are.
fn percent_decode(s: &str) -> Cow<'_, str> {
    if !s.contains(['%', '+']) {
        return Cow::Borrowed(s);
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

/// Parses exactly 32 hex digits as a `u128` (tokens and session ids).
pub(crate) fn parse_id(s: &str) -> Option<u128> {
    if s.len() != 32 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u128::from_str_radix(s, 16).ok()
}

/// Formats an id as 32 lowercase hex digits.
pub(crate) fn format_id(id: u128) -> String {
    format!("{id:032x}")
}

/// The token of an `Authorization: Bearer <token>` header, if well formed.
pub(crate) fn bearer_token(headers: &HeaderMap) -> Option<u128> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    parse_id(token.trim())
}

/// The value of cookie `name` from the `Cookie` header(s), if present.
pub(crate) fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_params() {
        let q = Some("page=2&q=red+mug&x=%41%zz&flag");
        assert_eq!(query_param(q, "page").as_deref(), Some("2"));
        assert_eq!(query_param(q, "q").as_deref(), Some("red mug"));
        assert_eq!(query_param(q, "x").as_deref(), Some("A%zz"));
        assert_eq!(query_param(q, "flag").as_deref(), Some(""));
        assert_eq!(query_param(q, "missing"), None);
        assert_eq!(query_param(None, "page"), None);
    }

    #[test]
    fn ids_and_headers() {
        let id = 0x0123_4567_89ab_cdef_0011_2233_4455_6677_u128;
        assert_eq!(parse_id(&format_id(id)), Some(id));
        assert_eq!(parse_id("+123"), None);
        assert_eq!(parse_id(&format!("+{}", &format_id(id)[1..])), None);

        let mut headers = HeaderMap::new();
        let auth = format!("Bearer {}", format_id(id));
        headers.insert(http::header::AUTHORIZATION, HeaderValue::from_str(&auth).unwrap());
        headers.append(http::header::COOKIE, HeaderValue::from_static("a=1"));
        headers.append(http::header::COOKIE, HeaderValue::from_static("b=2; session=abc"));
        assert_eq!(bearer_token(&headers), Some(id));
        assert_eq!(cookie(&headers, "session"), Some("abc"));
        assert_eq!(cookie(&headers, "a"), Some("1"));
        assert_eq!(cookie(&headers, "c"), None);
    }
}
