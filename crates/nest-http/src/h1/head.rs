//! The two heads of an HTTP/1.1 exchange on the lean path: the request written as bytes, and the response head
//! parsed with `httparse` into an `http::HeaderMap` whose values share the read buffer (no copy per header), then
//! the body's framing decided by RFC 9112 §6.3.

use bytes::{Bytes, BytesMut};
use http::header::{CONNECTION, CONTENT_LENGTH, EXPECT, TRANSFER_ENCODING, UPGRADE};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};

use crate::ErrorKind;
use crate::error::Failure;

/// Most bytes of one response head (status line and headers); a larger one fails the request.
pub(crate) const MAX_HEAD: usize = 64 * 1024;
/// Most header fields of one response head.
const MAX_HEADERS: usize = 100;

/// A parsed response head.
#[derive(Debug)]
pub(crate) struct Head {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    /// The connection may carry another request after this response (HTTP/1.1 without `Connection: close`, or
    /// HTTP/1.0 with `Connection: keep-alive`).
    pub(crate) keep_alive: bool,
}

/// How the response body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// No body: a HEAD request, 204 or 304.
    Empty,
    /// `Content-Length` bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Until the server closes the connection (which then cannot be reused).
    Eof,
}

/// Whether a request can take the lean path: a plain request with a body of known length. Upgrades,
/// `Expect: 100-continue`, a request's own `Transfer-Encoding`, a `Content-Length` other than the body's, or
/// CONNECT go to hyper.
pub(crate) fn eligible(method: &Method, headers: &HeaderMap, body: &Bytes) -> bool {
    if method == Method::CONNECT
        || headers.contains_key(UPGRADE)
        || headers.contains_key(EXPECT)
        || headers.contains_key(TRANSFER_ENCODING)
    {
        return false;
    }
    let mut lengths = headers.get_all(CONTENT_LENGTH).iter();
    match (lengths.next(), lengths.next()) {
        (None, _) => true,
        (Some(v), None) => v.to_str().ok().and_then(|s| s.trim().parse::<u64>().ok()) == Some(body.len() as u64),
        _ => false,
    }
}

/// Appends the request head to `out`: request line, headers (names lowercase, as hyper writes them), a
/// `Content-Length` for a body when none is set, and the blank line.
pub(crate) fn encode(method: &Method, target: &str, headers: &HeaderMap, body_len: usize, out: &mut Vec<u8>) {
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(if target.is_empty() { b"/" } else { target.as_bytes() });
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in headers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if body_len > 0 && !headers.contains_key(CONTENT_LENGTH) {
        out.extend_from_slice(b"content-length: ");
        out.extend_from_slice(body_len.to_string().as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// Takes one complete response head off the front of `buf`; `Ok(None)` while it is incomplete.
pub(crate) fn parse(buf: &mut BytesMut) -> Result<Option<Head>, Failure> {
    // Offsets of each field within the head, so the head can be split off the buffer (and its values shared)
    // once the parser's borrow ends. Nothing here is zeroed in advance (that cost more than the parse).
    let (len, code, minor, spans) = {
        let mut fields = [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut []);
        let len =
            match httparse::ParserConfig::default().parse_response_with_uninit_headers(&mut response, buf, &mut fields)
            {
                Ok(httparse::Status::Complete(len)) => len,
                Ok(httparse::Status::Partial) => return Ok(None),
                Err(httparse::Error::TooManyHeaders) => {
                    return Err(protocol(format!("the response has more than {MAX_HEADERS} header fields")));
                }
                Err(e) => return Err(protocol(format!("invalid HTTP response head: {e}"))),
            };
        let start = buf.as_ptr() as usize;
        let at = |s: &[u8]| s.as_ptr() as usize - start;
        let spans: Vec<[usize; 4]> = response
            .headers
            .iter()
            .map(|f| [at(f.name.as_bytes()), f.name.len(), at(f.value), f.value.len()])
            .collect();
        (len, response.code.unwrap_or(0), response.version.unwrap_or(1), spans)
    };
    let head = buf.split_to(len).freeze();
    let status = StatusCode::from_u16(code).map_err(|_| protocol(format!("invalid status code {code}")))?;
    let mut headers = HeaderMap::with_capacity(spans.len());
    for &[name_at, name_len, value_at, value_len] in &spans {
        let name = HeaderName::from_bytes(&head[name_at..name_at + name_len])
            .map_err(|_| protocol("invalid header name in the response".into()))?;
        let value = HeaderValue::from_maybe_shared(head.slice(value_at..value_at + value_len))
            .map_err(|_| protocol(format!("invalid value of response header {name}")))?;
        headers.append(name, value);
    }
    let keep_alive = if minor == 0 { has_token(&headers, "keep-alive") } else { !has_token(&headers, "close") };
    Ok(Some(Head { status, headers, keep_alive }))
}

/// The body's framing (RFC 9112 §6.3); `reusable` is cleared when the framing leaves the connection unusable.
pub(crate) fn framing(head: &Head, method: &Method) -> Result<Framing, Failure> {
    if method == Method::HEAD || head.status == StatusCode::NO_CONTENT || head.status == StatusCode::NOT_MODIFIED {
        return Ok(Framing::Empty);
    }
    if let Some(last) = head.headers.get_all(TRANSFER_ENCODING).iter().next_back() {
        let chunked = last
            .as_bytes()
            .rsplit(|&b| b == b',')
            .next()
            .is_some_and(|t| t.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        return Ok(if chunked { Framing::Chunked } else { Framing::Eof });
    }
    let mut length = None;
    for value in head.headers.get_all(CONTENT_LENGTH) {
        // `Content-Length: 5, 5` and repeated equal fields are one length; anything else is an error.
        for part in value.as_bytes().split(|&b| b == b',') {
            let n = std::str::from_utf8(part.trim_ascii())
                .ok()
                .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|s| s.parse::<u64>().ok())
                .ok_or_else(|| protocol("invalid Content-Length in the response".into()))?;
            if length.is_some_and(|l| l != n) {
                return Err(protocol("conflicting Content-Length values in the response".into()));
            }
            length = Some(n);
        }
    }
    Ok(match length {
        Some(0) => Framing::Empty,
        Some(n) => Framing::Length(n),
        None => Framing::Eof,
    })
}

/// True when a `Connection` field lists `token`.
pub(crate) fn has_token(headers: &HeaderMap, token: &str) -> bool {
    headers
        .get_all(CONNECTION)
        .iter()
        .any(|v| v.as_bytes().split(|&b| b == b',').any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes())))
}

pub(crate) fn protocol(message: String) -> Failure {
    Failure::new(ErrorKind::Protocol, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> Head {
        let mut buf = BytesMut::from(text);
        let head = parse(&mut buf).unwrap().unwrap();
        assert!(buf.is_empty(), "the head is taken off the buffer");
        head
    }

    #[test]
    fn a_head_is_parsed_and_its_framing_decided() {
        let h = parsed("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\nx-a: 2\r\n\r\n");
        assert_eq!(h.status, 200);
        assert!(h.keep_alive);
        assert_eq!(h.headers.get_all("x-a").iter().collect::<Vec<_>>(), ["1", "2"]);
        assert_eq!(framing(&h, &Method::GET).unwrap(), Framing::Length(5));
        assert_eq!(framing(&h, &Method::HEAD).unwrap(), Framing::Empty);
        let h = parsed("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 5\r\n\r\n");
        assert_eq!(framing(&h, &Method::GET).unwrap(), Framing::Chunked);
        let h = parsed("HTTP/1.0 200 OK\r\n\r\n");
        assert!(!h.keep_alive);
        assert_eq!(framing(&h, &Method::GET).unwrap(), Framing::Eof);
        assert!(parsed("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\n\r\n").keep_alive);
        assert!(!parsed("HTTP/1.1 200 OK\r\nConnection: x, close\r\n\r\n").keep_alive);
        assert_eq!(
            framing(&parsed("HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n"), &Method::GET).unwrap(),
            Framing::Empty
        );
    }

    #[test]
    fn bad_heads_and_lengths_are_protocol_errors() {
        let mut partial = BytesMut::from("HTTP/1.1 200 OK\r\nContent-Le");
        assert!(parse(&mut partial).unwrap().is_none());
        let mut bad = BytesMut::from("HTTP/1.1 2x0 OK\r\n\r\n");
        assert_eq!(parse(&mut bad).unwrap_err().kind, ErrorKind::Protocol);
        let many: String = (0..=MAX_HEADERS).map(|i| format!("h{i}: v\r\n")).collect();
        let mut buf = BytesMut::from(format!("HTTP/1.1 200 OK\r\n{many}\r\n").as_str());
        assert!(parse(&mut buf).unwrap_err().message.contains("more than 100 header fields"));
        for cl in ["5, 6", "-1", "x", ""] {
            let h = parsed(&format!("HTTP/1.1 200 OK\r\nContent-Length: {cl}\r\n\r\n"));
            assert_eq!(framing(&h, &Method::GET).unwrap_err().kind, ErrorKind::Protocol, "{cl:?}");
        }
        assert_eq!(
            framing(&parsed("HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\n"), &Method::GET).unwrap(),
            Framing::Length(5)
        );
    }

    #[test]
    fn requests_are_encoded_with_a_length() {
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("h:1"));
        let mut out = Vec::new();
        encode(&Method::POST, "/a?b=1", &headers, 3, &mut out);
        assert_eq!(out, b"POST /a?b=1 HTTP/1.1\r\nhost: h:1\r\ncontent-length: 3\r\n\r\n");
        let body = Bytes::from_static(b"abc");
        assert!(eligible(&Method::POST, &headers, &body));
        headers.insert(CONTENT_LENGTH, HeaderValue::from_static("4"));
        assert!(!eligible(&Method::POST, &headers, &body));
        headers.insert(CONTENT_LENGTH, HeaderValue::from_static("3"));
        assert!(eligible(&Method::POST, &headers, &body));
        headers.insert(EXPECT, HeaderValue::from_static("100-continue"));
        assert!(!eligible(&Method::POST, &headers, &body));
    }
}
