//! Redirect policy: which statuses are followed, how the next hop's method, body and
//! headers are derived (RFC 9110 §15.4, browser behaviour), and the hop limit.

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, COOKIE, HOST, PROXY_AUTHORIZATION, TRANSFER_ENCODING};
use http::{Method, StatusCode};

use crate::ErrorKind;
use crate::error::Failure;
use crate::prepare::{Prepared, redact_word, take_credentials};

/// Redirects followed before giving up with [`ErrorKind::TooManyRedirects`].
pub(crate) const MAX_REDIRECTS: usize = 10;

/// True for the statuses that carry a `Location` to follow.
pub(crate) fn is_redirect(status: StatusCode) -> bool {
    matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
}

/// Rewrites `p` into the next hop after a `status` redirect to `location`.
///
/// 301/302/303 become a body-less GET (HEAD stays HEAD); 307/308 keep method and body.
/// Credentials and an explicit `Host` are dropped when the origin changes.
pub(crate) fn follow(p: &mut Prepared, status: StatusCode, location: &[u8]) -> Result<(), Failure> {
    let bad = |why: String| Failure::new(ErrorKind::Protocol, why);
    let text = std::str::from_utf8(location).map_err(|_| bad("redirect Location is not valid UTF-8".to_string()))?;
    let mut next =
        p.url.join(text).map_err(|e| bad(format!("invalid redirect Location {:?}: {e}", redact_word(text))))?;
    let credentials = take_credentials(&mut next);

    if next.origin() != p.url.origin() {
        for name in [AUTHORIZATION, PROXY_AUTHORIZATION, COOKIE, HOST] {
            p.headers.remove(name);
        }
    }
    if matches!(status.as_u16(), 301..=303) {
        if p.method != Method::HEAD {
            p.method = Method::GET;
        }
        p.body = Bytes::new();
        p.content_type = None;
        for name in [CONTENT_TYPE, CONTENT_LENGTH, TRANSFER_ENCODING] {
            p.headers.remove(name);
        }
    }
    if let Some(basic) = credentials {
        p.headers.insert(AUTHORIZATION, basic);
    }
    p.url = next;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Body;
    use crate::prepare::prepare;

    fn post() -> Prepared {
        let base = crate::prepare::Base::new(url::Url::parse("http://a.test/").unwrap());
        prepare(
            Some(&base),
            "/dir/page",
            &[],
            vec![("Authorization".into(), "x".into()), ("Content-Type".into(), "text/plain".into())],
            Method::POST,
            Body::Text("hi".into()),
        )
        .unwrap()
    }

    #[test]
    fn see_other_becomes_get_without_body() {
        let mut p = post();
        follow(&mut p, StatusCode::SEE_OTHER, b"next").unwrap();
        assert_eq!(p.method, Method::GET);
        assert!(p.body.is_empty());
        assert!(!p.headers.contains_key(CONTENT_TYPE));
        assert!(p.headers.contains_key(AUTHORIZATION));
        assert_eq!(p.url.as_str(), "http://a.test/dir/next");
    }

    #[test]
    fn temporary_redirect_keeps_method_and_body() {
        let mut p = post();
        follow(&mut p, StatusCode::TEMPORARY_REDIRECT, b"https://b.test/x").unwrap();
        assert_eq!(p.method, Method::POST);
        assert_eq!(&p.body[..], b"hi");
        assert!(!p.headers.contains_key(AUTHORIZATION));
    }

    #[test]
    fn statuses() {
        assert!(is_redirect(StatusCode::FOUND));
        assert!(is_redirect(StatusCode::PERMANENT_REDIRECT));
        assert!(!is_redirect(StatusCode::NOT_MODIFIED));
    }
}
