//! The two heads of an HTTP/1.1 exchange on the lean path: the request written as bytes, and the response head
//! parsed with `httparse` into [`Headers`] that keep the head's bytes and the fields' offsets (nothing copied or
//! built per header), then the body's framing decided by RFC 9112 §6.3 from the fields read during the parse.

use bytes::{Bytes, BytesMut};
use http::header::{CONTENT_LENGTH, EXPECT, TRANSFER_ENCODING, UPGRADE};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};

use crate::error::Failure;
use crate::headers::{MAX_FIELDS, NameSet, Raw, parse_head};
use crate::{ErrorKind, Headers};

/// Most bytes of one response head (status line and headers); a larger one fails the request.
pub(crate) const MAX_HEAD: usize = 64 * 1024;

/// A parsed response head, with what the client itself needs of its fields, found in the same pass.
#[derive(Debug)]
pub(crate) struct Head {
    pub(crate) status: StatusCode,
    pub(crate) headers: Headers,
    /// The connection may carry another request after this response (HTTP/1.1 without `Connection: close`, or
    /// HTTP/1.0 with `Connection: keep-alive`).
    pub(crate) keep_alive: bool,
    /// With a `Transfer-Encoding`: whether its last coding is `chunked`.
    chunked: Option<bool>,
    /// The `Content-Length`, or what is wrong with it.
    length: Result<Option<u64>, &'static str>,
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

/// Whether a request with the user's `headers` can take the lean path (the defaults added to them never change
/// the answer): a plain request with a body of known length. Upgrades,
/// `Expect: 100-continue`, a request's own `Transfer-Encoding`, a `Content-Length` other than the body's, or
/// CONNECT go to hyper.
pub(crate) fn eligible(method: &Method, headers: &HeaderMap, body: &Bytes) -> bool {
    if headers.is_empty() {
        return method != Method::CONNECT;
    }
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

/// Appends the request head to `out`: request line, `fields` (names lowercase, as hyper writes them), a
/// `Content-Length` for a body when the fields have none (`has_length`), and the blank line.
pub(crate) fn encode<'a>(
    method: &Method,
    target: &str,
    fields: impl Iterator<Item = (&'a HeaderName, &'a HeaderValue)>,
    body_len: usize,
    has_length: bool,
    out: &mut Vec<u8>,
) {
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(if target.is_empty() { b"/" } else { target.as_bytes() });
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in fields {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if body_len > 0 && !has_length {
        length_line(body_len, out);
    }
    out.extend_from_slice(b"\r\n");
}

/// The header fields of a request that has none of the user's own (most requests): `Host` and the defaults that
/// apply, which [`Prepared::fields`](crate::prepare::Prepared::fields) gives in this order.
pub(crate) struct Plain<'a> {
    pub(crate) host: &'a HeaderValue,
    pub(crate) accept_encoding: Option<&'a HeaderValue>,
    pub(crate) content_type: Option<&'a HeaderValue>,
    /// `Content-Length: 0`, for a body-less POST, PUT or PATCH.
    pub(crate) zero_length: bool,
    pub(crate) cookie: Option<&'a HeaderValue>,
}

/// [`encode`] for a request without headers of the user's own: the same bytes, written in fewer, larger pieces
/// (the constant parts of the head are single literals) instead of field by field.
pub(crate) fn encode_plain(method: &Method, target: &str, fields: &Plain<'_>, body_len: usize, out: &mut Vec<u8>) {
    const USER_AGENT_LINE: &[u8] = concat!("\r\nuser-agent: nest/", env!("CARGO_PKG_VERSION"), "\r\n").as_bytes();
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(if target.is_empty() { b"/" } else { target.as_bytes() });
    out.extend_from_slice(b" HTTP/1.1\r\nhost: ");
    out.extend_from_slice(fields.host.as_bytes());
    out.extend_from_slice(USER_AGENT_LINE);
    let mut field = |name: &[u8], value: Option<&HeaderValue>| {
        if let Some(value) = value {
            out.extend_from_slice(name);
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    };
    field(b"accept-encoding: ", fields.accept_encoding);
    field(b"content-type: ", fields.content_type);
    if fields.zero_length {
        out.extend_from_slice(b"content-length: 0\r\n");
    }
    if let Some(cookie) = fields.cookie {
        out.extend_from_slice(b"cookie: ");
        out.extend_from_slice(cookie.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if body_len > 0 {
        length_line(body_len, out);
    }
    out.extend_from_slice(b"\r\n");
}

/// `content-length: N` and its line end, with no `String` for the number.
fn length_line(n: usize, out: &mut Vec<u8>) {
    use std::io::Write as _;
    // Writing to a `Vec` cannot fail.
    let _ = write!(out, "content-length: {n}\r\n");
}

/// Takes one complete response head off the front of `buf`; `Ok(None)` while it is incomplete.
///
/// Nothing is built per field: the head's bytes are kept with the set of their names, and the fields that frame
/// the body or decide keep-alive are read during the same pass.
pub(crate) fn parse(buf: &mut BytesMut) -> Result<Option<Head>, Failure> {
    let mut fields = [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_FIELDS];
    let mut response = httparse::Response::new(&mut []);
    // Nothing here is zeroed in advance (that cost more than the parse).
    let len = match parse_head(&mut response, buf, &mut fields) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(protocol(format!("the response has more than {MAX_FIELDS} header fields")));
        }
        Err(e) => return Err(protocol(format!("invalid HTTP response head: {e}"))),
    };
    let (code, minor, count) = (response.code.unwrap_or(0), response.version.unwrap_or(1), response.headers.len());
    let status = StatusCode::from_u16(code).map_err(|_| protocol(format!("invalid status code {code}")))?;
    // httparse accepts names and values by the same rules as `http` (tokens; visible bytes, tab and obs-text); the
    // case of names is normalised only if the headers are read (see `Raw`).
    let mut seen = Seen::default();
    let mut names = NameSet::default();
    for f in response.headers.iter() {
        names.add(f.name.as_bytes());
        seen.field(f.name.as_bytes(), f.value);
    }
    let head = buf.split_to(len).freeze();
    let keep_alive = if minor == 0 { seen.keep_alive } else { !seen.close };
    let headers = Headers::from_raw(Raw::new(head, count, names));
    Ok(Some(Head { status, headers, keep_alive, chunked: seen.chunked, length: seen.length }))
}

/// What the client needs of a response head's fields.
#[derive(Debug)]
struct Seen {
    close: bool,
    keep_alive: bool,
    chunked: Option<bool>,
    length: Result<Option<u64>, &'static str>,
}

impl Default for Seen {
    fn default() -> Seen {
        Seen { close: false, keep_alive: false, chunked: None, length: Ok(None) }
    }
}

impl Seen {
    /// One field, whatever the case of its name (compared only when its length is that of a name that matters).
    fn field(&mut self, name: &[u8], value: &[u8]) {
        let is = |known: &[u8]| folds_to(name, known);
        match name.len() {
            10 if is(b"connection") => {
                // One pass over the tokens for both answers.
                for token in value.split(|&b| b == b',') {
                    let token = token.trim_ascii();
                    self.close |= folds_to(token, b"close");
                    self.keep_alive |= folds_to(token, b"keep-alive");
                }
            }
            17 if is(b"transfer-encoding") => {
                // The last coding of the last field counts.
                self.chunked = Some(
                    value
                        .rsplit(|&b| b == b',')
                        .next()
                        .is_some_and(|t| t.trim_ascii().eq_ignore_ascii_case(b"chunked")),
                );
            }
            14 if is(b"content-length") => {
                self.length = self.length.and_then(|length| content_length(length, value));
            }
            _ => {}
        }
    }
}

/// `bytes` equals `known` ignoring ASCII case, where `known` holds only lowercase letters and `-`, and `bytes` comes
/// from a header field (no CR in it). Setting bit 5 of a byte folds it to such a `known` byte only from that byte
/// itself, from its uppercase letter, or (for `-`) from CR, so one OR per byte answers, with no branch per byte:
/// `eq_ignore_ascii_case` cost several times more per response.
fn folds_to(bytes: &[u8], known: &[u8]) -> bool {
    debug_assert!(known.iter().all(|&b| b.is_ascii_lowercase() || b == b'-'));
    bytes.len() == known.len() && bytes.iter().zip(known).fold(0, |diff, (&b, &k)| diff | ((b | 0x20) ^ k)) == 0
}

/// The length so far combined with one more `Content-Length` field: `5, 5` and repeated equal fields are one
/// length; anything else is an error.
fn content_length(mut length: Option<u64>, value: &[u8]) -> Result<Option<u64>, &'static str> {
    for part in value.split(|&b| b == b',') {
        let n = decimal(part.trim_ascii()).ok_or("invalid Content-Length in the response")?;
        if length.is_some_and(|l| l != n) {
            return Err("conflicting Content-Length values in the response");
        }
        length = Some(n);
    }
    Ok(length)
}

/// The value of ASCII decimal digits (at least one, nothing else), unless it overflows a `u64`.
fn decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &b| {
        let digit = b.checked_sub(b'0').filter(|d| *d <= 9)?;
        n.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

/// The body's framing (RFC 9112 §6.3).
pub(crate) fn framing(head: &Head, method: &Method) -> Result<Framing, Failure> {
    if method == Method::HEAD || head.status == StatusCode::NO_CONTENT || head.status == StatusCode::NOT_MODIFIED {
        return Ok(Framing::Empty);
    }
    if let Some(chunked) = head.chunked {
        return Ok(if chunked { Framing::Chunked } else { Framing::Eof });
    }
    Ok(match head.length.map_err(|message| protocol(message.into()))? {
        Some(0) => Framing::Empty,
        Some(n) => Framing::Length(n),
        None => Framing::Eof,
    })
}

/// True when one of the `Connection` field values lists `token`.
pub(crate) fn lists_token<'a>(mut values: impl Iterator<Item = &'a [u8]>, token: &str) -> bool {
    values.any(|v| v.split(|&b| b == b',').any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes())))
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
        assert_eq!(h.headers.get_all("X-A").collect::<Vec<_>>(), ["1", "2"]);
        let pairs: Vec<(String, String)> = h.headers.iter().map(|(n, v)| (n.to_owned(), v.into_owned())).collect();
        let want = [("content-length", "5"), ("x-a", "1"), ("x-a", "2")].map(|(n, v)| (n.to_owned(), v.to_owned()));
        assert_eq!(pairs, want, "names lowercase, in wire order");
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
    fn framing_fields_are_read_whatever_their_case_and_repetition() {
        let h = parsed("HTTP/1.1 200 OK\r\nTRANSFER-encoding: chunked\r\ntransfer-encoding: gzip\r\n\r\n");
        assert_eq!(framing(&h, &Method::GET).unwrap(), Framing::Eof, "the last field's last coding counts");
        let h = parsed("HTTP/1.1 200 OK\r\nCONTENT-LENGTH: 7\r\nContent-Length: 7\r\nConnection: keep-alive\r\n\r\n");
        assert_eq!(framing(&h, &Method::GET).unwrap(), Framing::Length(7));
        assert!(h.keep_alive);
        let h = parsed("HTTP/1.1 200 OK\r\nContent-Length: 7\r\ncontent-length: 8\r\n\r\n");
        assert!(framing(&h, &Method::GET).unwrap_err().message.contains("conflicting"));
        assert_eq!(framing(&h, &Method::HEAD).unwrap(), Framing::Empty, "no body, so no length is read");
        assert!(!parsed("HTTP/1.1 200 OK\r\nconnection: keep-alive\r\nCONNECTION: Close\r\n\r\n").keep_alive);
    }

    #[test]
    fn known_names_fold_from_their_own_cases_only() {
        for yes in [&b"keep-alive"[..], b"Keep-Alive", b"KEEP-ALIVE", b"kEeP-aLiVe"] {
            assert!(folds_to(yes, b"keep-alive"), "{}", String::from_utf8_lossy(yes));
        }
        for no in
            [&b"keep_alive"[..], b"keep-aliv", b"keep-alivee", b"keep-alivf", b"keep alive", b"keep-al\xe9ve", b""]
        {
            assert!(!folds_to(no, b"keep-alive"), "{}", String::from_utf8_lossy(no));
        }
        // Every byte but a letter's two cases (and CR for `-`) differs from each known byte once folded.
        for k in (b'a'..=b'z').chain([b'-']) {
            let folding: Vec<u8> = (0..=255u8).filter(|&b| folds_to(&[b], &[k])).collect();
            let want = if k == b'-' { vec![b'\r', b'-'] } else { vec![k.to_ascii_uppercase(), k] };
            assert_eq!(folding, want);
        }
    }

    #[test]
    fn bad_heads_and_lengths_are_protocol_errors() {
        let mut partial = BytesMut::from("HTTP/1.1 200 OK\r\nContent-Le");
        assert!(parse(&mut partial).unwrap().is_none());
        let mut bad = BytesMut::from("HTTP/1.1 2x0 OK\r\n\r\n");
        assert_eq!(parse(&mut bad).unwrap_err().kind, ErrorKind::Protocol);
        let many: String = (0..=MAX_FIELDS).map(|i| format!("h{i}: v\r\n")).collect();
        let mut buf = BytesMut::from(format!("HTTP/1.1 200 OK\r\n{many}\r\n").as_str());
        assert!(parse(&mut buf).unwrap_err().message.contains("more than 100 header fields"));
        for cl in ["5, 6", "-1", "+1", "x", "", "1 2", "18446744073709551616", "1x"] {
            let h = parsed(&format!("HTTP/1.1 200 OK\r\nContent-Length: {cl}\r\n\r\n"));
            assert_eq!(framing(&h, &Method::GET).unwrap_err().kind, ErrorKind::Protocol, "{cl:?}");
        }
        assert_eq!(
            framing(&parsed("HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\n"), &Method::GET).unwrap(),
            Framing::Length(5)
        );
        let max = "HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551615\r\n\r\n";
        assert_eq!(framing(&parsed(max), &Method::GET).unwrap(), Framing::Length(u64::MAX));
        assert_eq!(
            framing(&parsed("HTTP/1.1 200 OK\r\nContent-Length: 007\r\n\r\n"), &Method::GET).unwrap(),
            Framing::Length(7)
        );
    }

    /// A request without headers of the user's own is written byte for byte as the field-by-field encoder writes
    /// the fields `Prepared` gives, in every combination of what decides them.
    #[test]
    fn plain_requests_are_encoded_as_the_general_encoder_does() {
        use crate::prepare::Prepared;
        let host = HeaderValue::from_static("h.test:8080");
        let json = HeaderValue::from_static("application/json");
        let gzip = HeaderValue::from_static("gzip, br");
        let cookie = HeaderValue::from_static("a=1; b=2");
        let methods = [Method::GET, Method::HEAD, Method::POST, Method::PUT, Method::PATCH, Method::DELETE];
        let mut cases = 0;
        for method in methods {
            for body in [Bytes::new(), Bytes::from_static(b"abc")] {
                for content_type in [None, Some(&json)] {
                    for accept_encoding in [None, Some(&gzip)] {
                        for cookie in [None, Some(&cookie)] {
                            for target in ["", "/a/b?x=1"] {
                                let p = Prepared {
                                    method: method.clone(),
                                    url: url::Url::parse("http://h.test:8080/").unwrap(),
                                    headers: HeaderMap::new(),
                                    body: body.clone(),
                                    content_type: content_type.cloned(),
                                    accept_encoding: accept_encoding.cloned(),
                                };
                                let mut general = Vec::new();
                                encode(&method, target, p.fields(&host, cookie), body.len(), false, &mut general);
                                let fields = Plain {
                                    host: &host,
                                    accept_encoding,
                                    content_type,
                                    zero_length: p.zero_length(),
                                    cookie,
                                };
                                let mut plain = Vec::new();
                                encode_plain(&method, target, &fields, body.len(), &mut plain);
                                assert_eq!(
                                    String::from_utf8(plain).unwrap(),
                                    String::from_utf8(general).unwrap(),
                                    "{method} {target:?}, body {body:?}, {content_type:?}, {accept_encoding:?}, {cookie:?}"
                                );
                                cases += 1;
                            }
                        }
                    }
                }
            }
        }
        assert_eq!(cases, 6 * 2 * 2 * 2 * 2 * 2);
    }

    #[test]
    fn requests_are_encoded_with_a_length() {
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("h:1"));
        let mut out = Vec::new();
        encode(&Method::POST, "/a?b=1", headers.iter(), 3, headers.contains_key(CONTENT_LENGTH), &mut out);
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
