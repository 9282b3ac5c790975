//! Turns a script-level [`Request`] into wire form. The expensive, fallible work (URL
//! resolution, header validation, body encoding) happens once per `send` in [`prepare`];
//! [`Prepared::build`] then assembles a cheap `http::Request` for each hop or retry,
//! cloning only reference-counted header values and body bytes.

use bytes::Bytes;
use http::header::{
    ACCEPT_ENCODING, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, COOKIE, HOST, TRANSFER_ENCODING, USER_AGENT,
};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use http_body_util::Full;
use url::{Position, Url};

use crate::error::Failure;
use crate::{Body, ErrorKind};

/// Sent unless the request sets its own `User-Agent`.
pub(crate) const USER_AGENT_VALUE: HeaderValue = HeaderValue::from_static(concat!("nest/", env!("CARGO_PKG_VERSION")));
const JSON: HeaderValue = HeaderValue::from_static("application/json");
const FORM: HeaderValue = HeaderValue::from_static("application/x-www-form-urlencoded");
const ZERO: HeaderValue = HeaderValue::from_static("0");

/// A validated request, ready to be turned into one `http::Request` per hop.
#[derive(Debug)]
pub(crate) struct Prepared {
    pub(crate) method: Method,
    /// The URL of the current hop.
    pub(crate) url: Url,
    /// The user's headers, validated.
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
    /// `Content-Type` implied by the body kind, used when the user gave none.
    pub(crate) content_type: Option<HeaderValue>,
    /// `Accept-Encoding` sent when the user gave none.
    pub(crate) accept_encoding: Option<HeaderValue>,
}

/// The base URL relative paths resolve against, with its credentials (`http://user:pw@host/`) taken out once,
/// when the client is created, as the ready `Basic` header that relative requests send.
#[derive(Debug)]
pub(crate) struct Base {
    url: Url,
    auth: Option<HeaderValue>,
}

impl Base {
    pub(crate) fn new(mut url: Url) -> Base {
        let auth = take_credentials(&mut url);
        Base { url, auth }
    }

    /// The base URL, without credentials.
    pub(crate) fn url(&self) -> &Url {
        &self.url
    }
}

/// Resolves `raw` against `base` and appends `query`. Also says whether the URL came from the base's authority
/// (a relative path, not `//host/x` or a full URL), and so is owed the base's credentials.
pub(crate) fn resolve_url(base: Option<&Url>, raw: &str, query: &[(String, String)]) -> Result<(Url, bool), Failure> {
    let shown = || redact_word(raw);
    // A path (`/x`, not `//host/x`) has no scheme, so parsing it as a full URL would only fail.
    let parsed = if raw.starts_with('/') && !raw.starts_with("//") {
        Err(url::ParseError::RelativeUrlWithoutBase)
    } else {
        Url::parse(raw)
    };
    let (mut url, from_base) = match parsed {
        Ok(url) => (url, false),
        Err(url::ParseError::RelativeUrlWithoutBase) => match base {
            Some(base) => (
                append_to_base(base, raw).map_err(|e| invalid_url(format!("invalid URL {:?}: {e}", shown())))?,
                !raw.starts_with("//"),
            ),
            None => {
                return Err(invalid_url(format!(
                    "relative URL {:?} needs a base URL, and none is configured",
                    shown()
                )));
            }
        },
        Err(e) => return Err(invalid_url(format!("invalid URL {:?}: {e}", shown()))),
    };
    if !query.is_empty() {
        url.query_pairs_mut().extend_pairs(query);
    }
    Ok((url, from_base))
}

/// Appends a relative `raw` to the base URL's path, as Locust does (`base_url + path`), with exactly one `/` at the
/// join: `/v1/` + `/a`, `/v1` + `a` and `/v1` + `/a` all give `/v1/a`. A query or fragment (`?x=1`) attaches to the
/// base path as it is; a scheme-relative `//host/x` keeps only the base's scheme. The base's own query is dropped.
fn append_to_base(base: &Url, raw: &str) -> Result<Url, url::ParseError> {
    if raw.starts_with("//") {
        return base.join(raw);
    }
    if is_plain(raw) {
        Ok(crate::url_cache::resolved(base, raw, || append_plain(base, raw)))
    } else {
        append_parsed(base, raw)
    }
}

/// True when `raw` holds only printable ASCII without `\` or `#`: text that the URL parser takes as it is (no
/// whitespace to trim or drop, no backslash to turn into `/`, no fragment), so [`append_plain`] gives the same URL as
/// [`append_parsed`].
fn is_plain(raw: &str) -> bool {
    raw.bytes().all(|b| b.is_ascii_graphic() && b != b'\\' && b != b'#')
}

/// [`append_to_base`] without parsing the base's scheme and host again: the base's path with `raw` appended goes
/// through the URL parser's own path and query parsing (the `url` crate's setters), which the full parse of
/// [`append_parsed`] also uses. Only for a [`is_plain`] `raw` that does not start with `//`.
fn append_plain(base: &Url, raw: &str) -> Url {
    let (path, query) = match raw.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (raw, None),
    };
    let mut url = base.clone();
    url.set_fragment(None);
    url.set_query(query);
    if !path.is_empty() {
        let base_path = base.path();
        let base_path = base_path.strip_suffix('/').unwrap_or(base_path);
        if base_path.is_empty() && path.starts_with('/') {
            // A base without a path of its own (the usual `http://host:port`): nothing to join.
            url.set_path(path);
        } else {
            let sep = if path.starts_with('/') { "" } else { "/" };
            url.set_path(&format!("{base_path}{sep}{path}"));
        }
    }
    url
}

/// [`append_to_base`] by parsing the joined text as a whole URL.
fn append_parsed(base: &Url, raw: &str) -> Result<Url, url::ParseError> {
    let path = &base[..Position::AfterPath];
    if raw.is_empty() || raw.starts_with(['?', '#']) {
        return Url::parse(&format!("{path}{raw}"));
    }
    let path = path.strip_suffix('/').unwrap_or(path);
    let sep = if raw.starts_with('/') { "" } else { "/" };
    Url::parse(&format!("{path}{sep}{raw}"))
}

/// Removes `user:password@` from `url` and returns it as a `Basic` `Authorization` value (RFC 7617), if present.
pub(crate) fn take_credentials(url: &mut Url) -> Option<HeaderValue> {
    if url.username().is_empty() && url.password().is_none() {
        return None;
    }
    let decode = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned();
    let pair = format!("{}:{}", decode(url.username()), decode(url.password().unwrap_or("")));
    // Both calls only fail on URLs that cannot have credentials, and this one has them.
    let _ = url.set_username("");
    let _ = url.set_password(None);
    let encoded = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, pair);
    let mut value = HeaderValue::from_str(&format!("Basic {encoded}")).ok()?;
    value.set_sensitive(true);
    Some(value)
}

/// `url` without its credentials: `http://***@host/` for `http://user:password@host/` or `http://token@host/`.
/// For every place a parsed URL is shown to a person.
pub fn redact(url: &Url) -> std::borrow::Cow<'_, str> {
    if url.username().is_empty() && url.password().is_none() {
        return std::borrow::Cow::Borrowed(url.as_str());
    }
    let mut shown = url.clone();
    // Both calls only fail on URLs that cannot have credentials, and this one has them.
    let _ = shown.set_password(None);
    let _ = shown.set_username("***");
    std::borrow::Cow::Owned(shown.into())
}

/// Text holding URLs (a message, a command line) with the whole user part of each (`user:password@`,
/// `token@`) replaced by `***@`: `http://***@host/`. A URL there ends at whitespace, so one whose raw password
/// holds a space must be redacted alone, with [`redact_word`]; a parsed [`Url`] never holds one.
pub fn redact_url(text: &str) -> std::borrow::Cow<'_, str> {
    redact_with(text, |c| matches!(c, '/' | '?' | '#') || c.is_whitespace())
}

/// One word that may be a URL as a person typed it (a command-line argument, a script's URL), with its whole
/// user part replaced by `***@`. Its authority runs to the first `/`, `?` or `#`, so a raw password holding
/// quotes, spaces, `:` or `@` is redacted whole.
pub fn redact_word(word: &str) -> std::borrow::Cow<'_, str> {
    redact_with(word, |c| matches!(c, '/' | '?' | '#'))
}

fn redact_with(text: &str, ends_authority: impl Fn(char) -> bool) -> std::borrow::Cow<'_, str> {
    let mut out = String::new();
    let mut copied = 0;
    let mut search = 0;
    while let Some(found) = text[search..].find("://") {
        let start = search + found + 3;
        let rest = &text[start..];
        let authority = &rest[..rest.find(&ends_authority).unwrap_or(rest.len())];
        search = start;
        // The host follows the last `@`: a raw password may hold more.
        let Some(at) = authority.rfind('@') else { continue };
        out.push_str(&text[copied..start]);
        out.push_str("***");
        copied = start + at;
        search = copied;
    }
    if copied == 0 {
        return std::borrow::Cow::Borrowed(text);
    }
    out.push_str(&text[copied..]);
    std::borrow::Cow::Owned(out)
}

fn invalid_url(message: String) -> Failure {
    Failure::new(ErrorKind::InvalidUrl, message)
}

/// Validates and encodes `req` (minus timeout/redirect settings, which the caller keeps).
pub(crate) fn prepare(
    base: Option<&Base>,
    url: &str,
    query: &[(String, String)],
    headers: Vec<(String, String)>,
    method: Method,
    body: Body,
) -> Result<Prepared, Failure> {
    let (mut url, from_base) = resolve_url(base.map(Base::url), url, query)?;
    // The base's credentials were taken out once; a URL with its own gives them up here.
    let credentials = match base {
        Some(base) if from_base => base.auth.clone(),
        _ => take_credentials(&mut url),
    };
    // No allocation for the usual request without headers of its own.
    let mut map = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        let header_name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| Failure::new(ErrorKind::InvalidRequest, format!("invalid header name {name:?}")))?;
        // Moving the String into Bytes avoids copying the value.
        let header_value = HeaderValue::from_maybe_shared(Bytes::from(value))
            .map_err(|_| Failure::new(ErrorKind::InvalidRequest, format!("invalid value for header {name:?}")))?;
        map.append(header_name, header_value);
    }
    if let Some(basic) = credentials
        && !map.contains_key(AUTHORIZATION)
    {
        map.insert(AUTHORIZATION, basic);
    }
    let (body, content_type) = match body {
        Body::Empty => (Bytes::new(), None),
        Body::Text(text) => (Bytes::from(text), None),
        Body::Json(value) => (Bytes::from(value.to_string()), Some(JSON)),
        Body::Form(pairs) => {
            let encoded = form_urlencoded::Serializer::new(String::new()).extend_pairs(&pairs).finish();
            (Bytes::from(encoded), Some(FORM))
        }
    };
    Ok(Prepared { method, url, headers: map, body, content_type, accept_encoding: None })
}

/// The `Host` header text of `url`: host plus port when non-default (the `url` crate
/// omits default ports from its serialization).
pub(crate) fn host_and_port(url: &Url) -> &str {
    &url[Position::BeforeHost..Position::AfterPort]
}

/// Names of the defaults, as statics: the header iterator hands out references to them.
static HOST_NAME: HeaderName = HOST;
static USER_AGENT_NAME: HeaderName = USER_AGENT;
static ACCEPT_ENCODING_NAME: HeaderName = ACCEPT_ENCODING;
static CONTENT_TYPE_NAME: HeaderName = CONTENT_TYPE;
static CONTENT_LENGTH_NAME: HeaderName = CONTENT_LENGTH;
static COOKIE_NAME: HeaderName = COOKIE;
static USER_AGENT_DEFAULT: HeaderValue = USER_AGENT_VALUE;
static ZERO_LENGTH: HeaderValue = ZERO;

impl Prepared {
    /// The request target of the current hop (path and query). The URL parser percent-encodes every byte that
    /// `http` refuses in a target, so only an overlong target fails, as hyper's path fails it (a test checks this).
    pub(crate) fn target(&self) -> Result<&str, Failure> {
        let target = &self.url[Position::BeforePath..Position::AfterQuery];
        if target.len() > MAX_TARGET {
            // The same message as hyper's path gives.
            Uri::try_from(target).map_err(|e| bad_target(target, &e))?;
        }
        Ok(target)
    }

    /// The `Cookie` value for the current hop: the jar's pairs (`a=1; b=2`) for it, after the user's own `Cookie`
    /// when there is one.
    pub(crate) fn cookie_value(&self, jar: Option<String>) -> Result<Option<HeaderValue>, Failure> {
        let Some(jar) = jar else { return Ok(None) };
        let merged = match self.headers.get(COOKIE) {
            Some(user) => {
                let mut v = user.as_bytes().to_vec();
                v.extend_from_slice(b"; ");
                v.extend_from_slice(jar.as_bytes());
                Bytes::from(v)
            }
            None => Bytes::from(jar),
        };
        HeaderValue::from_maybe_shared(merged)
            .map(Some)
            .map_err(|_| Failure::new(ErrorKind::InvalidRequest, "invalid cookie value in jar"))
    }

    /// The header fields of the current hop, in the order they go on the wire: `Host` (`host` unless the user set
    /// one), the user's headers (repeated names grouped at their first place, as an `http::HeaderMap` holds them),
    /// then the defaults the user did not set: `User-Agent`, `Accept-Encoding`, the body's `Content-Type`, and
    /// `Content-Length: 0` for a body-less POST, PUT or PATCH. `cookie` (from [`cookie_value`](Self::cookie_value))
    /// takes the place of the user's `Cookie`, or comes last.
    ///
    /// The checks ask the user's headers: the user's map is usually empty, where a lookup is only a length check,
    /// and no name appears both as a user's header and a default, so collecting the fields into a map gives them
    /// back in this order.
    pub(crate) fn fields<'a>(
        &'a self,
        host: &'a HeaderValue,
        cookie: Option<&'a HeaderValue>,
    ) -> impl Iterator<Item = (&'a HeaderName, &'a HeaderValue)> + 'a {
        let user = &self.headers;
        let missing = |name: &HeaderName| user.is_empty() || !user.contains_key(name);
        let mut user_cookie = false;
        let users = user.iter().filter_map(move |(name, value)| match cookie {
            Some(merged) if name == COOKIE => (!std::mem::replace(&mut user_cookie, true)).then_some((name, merged)),
            _ => Some((name, value)),
        });
        let length = self.zero_length() && missing(&CONTENT_LENGTH) && missing(&TRANSFER_ENCODING);
        let defaults = [
            missing(&USER_AGENT).then_some((&USER_AGENT_NAME, &USER_AGENT_DEFAULT)),
            self.accept_encoding.as_ref().filter(|_| missing(&ACCEPT_ENCODING)).map(|v| (&ACCEPT_ENCODING_NAME, v)),
            self.content_type.as_ref().filter(|_| missing(&CONTENT_TYPE)).map(|v| (&CONTENT_TYPE_NAME, v)),
            // Like browsers and Go: servers may answer 411 to a length-less POST.
            length.then_some((&CONTENT_LENGTH_NAME, &ZERO_LENGTH)),
            cookie.filter(|_| missing(&COOKIE)).map(|v| (&COOKIE_NAME, v)),
        ];
        missing(&HOST).then_some((&HOST_NAME, host)).into_iter().chain(users).chain(defaults.into_iter().flatten())
    }

    /// A body-less POST, PUT or PATCH: it is sent with `Content-Length: 0` unless the user frames it.
    pub(crate) fn zero_length(&self) -> bool {
        self.body.is_empty() && matches!(self.method, Method::POST | Method::PUT | Method::PATCH)
    }

    /// Builds the wire request for the current hop, for hyper: see [`fields`](Self::fields) for its headers.
    pub(crate) fn build(
        &self,
        host: HeaderValue,
        cookies: Option<String>,
    ) -> Result<http::Request<Full<Bytes>>, Failure> {
        let target = &self.url[Position::BeforePath..Position::AfterQuery];
        let uri = Uri::try_from(target).map_err(|e| bad_target(target, &e))?;
        let cookie = self.cookie_value(cookies)?;
        let mut headers = HeaderMap::with_capacity(self.headers.len() + 5);
        for (name, value) in self.fields(&host, cookie.as_ref()) {
            headers.append(name.clone(), value.clone());
        }
        let mut req = http::Request::new(Full::new(self.body.clone()));
        *req.method_mut() = self.method.clone();
        *req.uri_mut() = uri;
        *req.headers_mut() = headers;
        Ok(req)
    }
}

/// The longest request target `http` accepts.
const MAX_TARGET: usize = u16::MAX as usize - 1;

fn bad_target(target: &str, e: &http::uri::InvalidUri) -> Failure {
    Failure::new(ErrorKind::InvalidUrl, format!("cannot send request target {target:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Base {
        Base::new(Url::parse("http://127.0.0.1:8080/app/").unwrap())
    }

    #[test]
    fn relative_paths_append_to_the_base_path() {
        let at = |base: &str, raw: &str| resolve_url(Some(&Url::parse(base).unwrap()), raw, &[]).unwrap().0.to_string();
        assert_eq!(at("http://h/v1/", "/a"), "http://h/v1/a");
        assert_eq!(at("http://h/v1/", "a"), "http://h/v1/a");
        assert_eq!(at("http://h/v1", "a"), "http://h/v1/a");
        assert_eq!(at("http://h/v1", "/a"), "http://h/v1/a");
        assert_eq!(at("http://h/v1/", "a/b?x=1"), "http://h/v1/a/b?x=1");
        assert_eq!(at("http://h/v1/", "?x=1"), "http://h/v1/?x=1");
        assert_eq!(at("http://h/v1/", ""), "http://h/v1/");
        assert_eq!(at("http://h", "/a"), "http://h/a");
        assert_eq!(at("http://h/", "a"), "http://h/a");
        assert_eq!(at("http://h/v1/?k=1", "/a"), "http://h/v1/a");
        assert_eq!(at("https://h/v1/", "//cdn.test/x"), "https://cdn.test/x");
        assert_eq!(at("http://h/v1/", "http://other.test/z"), "http://other.test/z");
    }

    /// The shortcut for plain relative paths builds exactly the URL the full parse builds.
    #[test]
    fn plain_paths_append_as_the_full_parse_does() {
        let bases = ["http://h/v1/", "http://h/v1", "http://h", "https://h:8443/a/b/?k=1#f", "http://[::1]:81/x%20y/"];
        let raws = [
            "/",
            "",
            "/a",
            "a",
            "a/b?x=1",
            "?x=1",
            "?",
            "/a?",
            "/a?b?c",
            "/./a/../b",
            "/a/%2e%2e/c",
            "/%7Euser/x%zz",
            "/a|b/{c}?x=^y|z",
            "/x'y\"z<>`",
            "/items/42?q=a+b&r=%20",
            "..",
            "/..",
            "a/./b/.",
            "/caf%C3%A9",
        ];
        for base in bases {
            let base = Url::parse(base).unwrap();
            for raw in raws {
                assert!(is_plain(raw), "{raw}");
                assert_eq!(append_plain(&base, raw), append_parsed(&base, raw).unwrap(), "{base} + {raw}");
            }
        }
        for raw in [" /a", "/a b", "/a\tb", "/a\\b", "/a#f", "/é"] {
            assert!(!is_plain(raw), "{raw}");
        }
        let base = Url::parse("http://h/v1/").unwrap();
        assert_eq!(resolve_url(Some(&base), "/a\\b#f", &[]).unwrap().0.as_str(), "http://h/v1/a/b#f");
        assert_eq!(resolve_url(Some(&base), "/a b", &[]).unwrap().0.as_str(), "http://h/v1/a%20b");
    }

    #[test]
    fn credentials_become_basic_auth_and_leave_the_url() {
        let mut u = Url::parse("http://al%40ice:p%3Ass@h/x").unwrap();
        let v = take_credentials(&mut u).unwrap();
        assert_eq!(u.as_str(), "http://h/x");
        // base64("al@ice:p:ss")
        assert_eq!(v, "Basic YWxAaWNlOnA6c3M=");
        assert!(v.is_sensitive());
        assert_eq!(take_credentials(&mut u), None);
        let p = prepare(Some(&base()), "http://u:pw@h/", &[], vec![], Method::GET, Body::Empty).unwrap();
        assert_eq!(p.headers[AUTHORIZATION], "Basic dTpwdw==");
        let own = vec![("Authorization".into(), "Bearer t".into())];
        let p = prepare(Some(&base()), "http://u:pw@h/", &[], own, Method::GET, Body::Empty).unwrap();
        assert_eq!(p.headers[AUTHORIZATION], "Bearer t");
    }

    #[test]
    fn base_credentials_are_taken_once_and_sent_only_under_the_base() {
        let base = Base::new(Url::parse("http://tok%20en@h/v1/").unwrap());
        assert_eq!(base.url().as_str(), "http://h/v1/");
        // base64("tok en:")
        let auth = |raw: &str| {
            let p = prepare(Some(&base), raw, &[], vec![], Method::GET, Body::Empty).unwrap();
            (p.url.to_string(), p.headers.get(AUTHORIZATION).map(|v| v.to_str().unwrap().to_owned()))
        };
        assert_eq!(auth("/a"), ("http://h/v1/a".into(), Some("Basic dG9rIGVuOg==".into())));
        assert_eq!(auth("//other/x"), ("http://other/x".into(), None));
        assert_eq!(auth("http://h/v1/a"), ("http://h/v1/a".into(), None));
    }

    #[test]
    fn passwords_are_redacted_wherever_a_url_is_shown() {
        assert_eq!(redact_url("http://u:secret@h:8080/x"), "http://***@h:8080/x");
        assert_eq!(redact_url("a http://u:s@h/ and https://v:t@g/?q=@x"), "a http://***@h/ and https://***@g/?q=@x");
        assert_eq!(redact_url("http://tok@h/p:q@r"), "http://***@h/p:q@r");
        assert_eq!(redact_url("http://h/x"), "http://h/x");
        assert_eq!(redact_url("no url: a@b"), "no url: a@b");
        assert_eq!(redact_url("-H http://h:1 --tag a@b/"), "-H http://h:1 --tag a@b/");
        assert_eq!(
            redact_url(r#"url "http://bob:pa'ss@h/" and 'http://b:p"q@h'"#),
            r#"url "http://***@h/" and 'http://***@h'"#
        );
        for raw in ["http://bob:pa ss@h/", "http://bob:p@s:s'\"q@h?x", "http://a b@h#f", "http://bob:x@h"] {
            let shown = redact_word(raw);
            assert!(shown.starts_with("http://***@h"), "{raw} -> {shown}");
        }
        let e = resolve_url(None, "http://u:secret@", &[]).unwrap_err();
        assert!(!e.message.contains("secret"), "{}", e.message);
        let e = resolve_url(None, "http://u:sec ret@h:x/", &[]).unwrap_err();
        assert!(!e.message.contains("sec"), "{}", e.message);
        for raw in ["http://bob:pa'ss@h/", "http://bob:pa%22ss@h/", "http://bob:pa%20ss@h/", "http://TOKEN@h/"] {
            let url = Url::parse(raw).unwrap();
            assert_eq!(redact(&url), "http://***@h/", "{raw}");
            assert_eq!(redact_url(url.as_str()), "http://***@h/", "{raw}");
        }
        assert_eq!(redact(&Url::parse("http://h:1/x").unwrap()), "http://h:1/x");
    }

    #[test]
    fn relative_and_absolute_urls() {
        let (u, _) = resolve_url(Some(base().url()), "/items?x=1", &[]).unwrap();
        assert_eq!(u.as_str(), "http://127.0.0.1:8080/app/items?x=1");
        let (u, _) = resolve_url(Some(base().url()), "https://example.com/a", &[]).unwrap();
        assert_eq!(u.as_str(), "https://example.com/a");
        let e = resolve_url(None, "/items", &[]).unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidUrl);
        let e = resolve_url(None, "http://", &[]).unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidUrl);
    }

    #[test]
    fn query_pairs_are_encoded() {
        let q = vec![("q".to_string(), "a b&c".to_string())];
        let (u, _) = resolve_url(Some(base().url()), "/s?x=1", &q).unwrap();
        assert_eq!(u.query(), Some("x=1&q=a+b%26c"));
    }

    #[test]
    fn host_header_has_port_only_when_non_default() {
        let h = |s: &str| host_and_port(&Url::parse(s).unwrap()).to_string();
        assert_eq!(h("http://a.example:8080/x"), "a.example:8080");
        assert_eq!(h("http://a.example:80/x"), "a.example");
        assert_eq!(h("https://user:pw@a.example/x"), "a.example");
        assert_eq!(h("http://[::1]:81/"), "[::1]:81");
    }

    /// The lean path writes the target without `http`'s check: the URL parser must leave no byte it refuses.
    #[test]
    fn every_target_the_url_parser_gives_is_one_http_accepts() {
        let base = Url::parse("http://h/v1/").unwrap();
        for byte in 0u8..=127 {
            let c = char::from(byte);
            for raw in [format!("/a{c}b"), format!("/a?q={c}&{c}"), format!("/{c}?{c}")] {
                let Ok((url, _)) = resolve_url(Some(&base), &raw, &[("k".into(), c.to_string())]) else { continue };
                let p = Prepared {
                    method: Method::GET,
                    url,
                    headers: HeaderMap::new(),
                    body: Bytes::new(),
                    content_type: None,
                    accept_encoding: None,
                };
                let target = p.target().unwrap();
                assert!(Uri::try_from(target).is_ok(), "{raw:?} gives {target:?}");
            }
        }
        let long = format!("/{}", "a".repeat(MAX_TARGET));
        let p = prepare(Some(&Base::new(base)), &long, &[], vec![], Method::GET, Body::Empty).unwrap();
        let e = p.target().unwrap_err();
        assert_eq!(e.message, p.build(HeaderValue::from_static("h"), None).unwrap_err().message);
    }

    #[test]
    fn odd_but_legal_targets_are_accepted() {
        let p = prepare(Some(&base()), "/a|b/{c}?x=^y|z#frag", &[], vec![], Method::GET, Body::Empty).unwrap();
        let req = p.build(HeaderValue::from_static("h"), None).unwrap();
        assert!(req.uri().to_string().starts_with("/a"));
        assert!(!req.uri().to_string().contains("frag"));
    }

    #[test]
    fn defaults_and_overrides() {
        let p = prepare(
            Some(&base()),
            "/",
            &[],
            vec![("Content-Type".into(), "text/x".into())],
            Method::POST,
            Body::Json(serde_json::json!({"a": 1})),
        )
        .unwrap();
        let req = p.build(HeaderValue::from_static("h:1"), Some("s=1".into())).unwrap();
        let h = req.headers();
        assert_eq!(h[CONTENT_TYPE], "text/x");
        assert_eq!(h[HOST], "h:1");
        assert_eq!(h[COOKIE], "s=1");
        assert!(h[USER_AGENT].to_str().unwrap().starts_with("nest/"));
    }

    #[test]
    fn empty_post_gets_zero_length_and_bad_header_fails() {
        let p = prepare(Some(&base()), "/", &[], vec![], Method::POST, Body::Empty).unwrap();
        let req = p.build(HeaderValue::from_static("h"), None).unwrap();
        assert_eq!(req.headers()[CONTENT_LENGTH], "0");
        let e = prepare(Some(&base()), "/", &[], vec![("bad name".into(), "v".into())], Method::GET, Body::Empty)
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidRequest);
    }
}
