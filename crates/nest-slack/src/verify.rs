//! Slack's request signing, checked before anything else reads a request.
//!
//! Slack signs every request with the app's signing secret: `v0=` + hex(HMAC-SHA256(secret,
//! `v0:{timestamp}:{raw body}`)). A request is accepted only when its signature matches (compared in constant
//! time), its timestamp lies within five minutes of now, its signature was not seen before within that window, its
//! body is at most [`MAX_BODY`] bytes and its content type is `application/x-www-form-urlencoded`. The reason of a
//! refusal is for the local log only: the caller gets a bare status.

use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::replay::ReplayCache;

/// The largest request body accepted: a slash command is a few hundred bytes.
pub const MAX_BODY: usize = 64 * 1024;
/// How far a request's timestamp may lie from now, either way.
pub const WINDOW: Duration = Duration::from_secs(5 * 60);
/// The only content type of a slash command.
pub const FORM: &str = "application/x-www-form-urlencoded";

/// Why a request was refused. Logged locally; the caller sees only the status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    /// No `X-Slack-Signature` or `X-Slack-Request-Timestamp`, or one that is not text.
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    /// The timestamp is not a number of seconds.
    #[error("the timestamp is not a number")]
    BadTimestamp,
    /// The timestamp lies more than five minutes from now.
    #[error("the timestamp is {0} s away from now (more than 5 minutes)")]
    Stale(u64),
    /// The signature does not match the body.
    #[error("the signature does not match")]
    BadSignature,
    /// The same signature was already accepted within the window.
    #[error("replayed request (signature already seen)")]
    Replay,
    /// The body is larger than [`MAX_BODY`].
    #[error("the body is larger than {MAX_BODY} bytes")]
    TooLarge,
    /// The content type is not [`FORM`].
    #[error("content type {0:?} is not {FORM}")]
    ContentType(String),
}

impl Rejection {
    /// The HTTP status the caller gets: 401 for what only a wrong or missing signature explains, 400 otherwise.
    pub fn status(&self) -> u16 {
        match self {
            Rejection::MissingHeader(_) | Rejection::BadSignature | Rejection::Stale(_) | Rejection::Replay => 401,
            Rejection::BadTimestamp | Rejection::TooLarge | Rejection::ContentType(_) => 400,
        }
    }
}

/// The headers of a request that verification reads.
#[derive(Debug, Clone, Copy, Default)]
pub struct Signed<'a> {
    /// `X-Slack-Request-Timestamp`.
    pub timestamp: Option<&'a str>,
    /// `X-Slack-Signature`.
    pub signature: Option<&'a str>,
    /// `Content-Type`.
    pub content_type: Option<&'a str>,
}

/// The signature Slack sends for `body` at `timestamp`: `v0=` and 64 hex digits.
pub fn sign(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(b"v0:");
    mac.update(timestamp.as_bytes());
    mac.update(b":");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut text = String::with_capacity(67);
    text.push_str("v0=");
    for byte in digest {
        text.push_str(&format!("{byte:02x}"));
    }
    text
}

/// Checks requests against one or more signing secrets (the current one, and the previous one for the 24 hours
/// after a rotation), remembering the signatures it accepted.
pub struct Verifier {
    secrets: Vec<Vec<u8>>,
    seen: Mutex<ReplayCache>,
}

impl Verifier {
    /// A verifier of `secrets` (at least one; each non-empty).
    pub fn new(secrets: Vec<Vec<u8>>) -> Verifier {
        Verifier { secrets, seen: Mutex::new(ReplayCache::new(WINDOW)) }
    }

    /// Verifies a request at the current time.
    pub fn verify(&self, headers: Signed<'_>, body: &[u8]) -> Result<(), Rejection> {
        self.verify_at(headers, body, SystemTime::now())
    }

    /// Verifies a request as if it arrived at `now`. The checks run cheapest first, the signature before the
    /// replay cache, so that an unsigned flood cannot fill the cache.
    pub fn verify_at(&self, headers: Signed<'_>, body: &[u8], now: SystemTime) -> Result<(), Rejection> {
        if body.len() > MAX_BODY {
            return Err(Rejection::TooLarge);
        }
        let content_type = headers.content_type.unwrap_or("");
        let essence = content_type.split(';').next().unwrap_or("").trim();
        if !essence.eq_ignore_ascii_case(FORM) {
            return Err(Rejection::ContentType(content_type.to_owned()));
        }
        let timestamp = headers.timestamp.ok_or(Rejection::MissingHeader("X-Slack-Request-Timestamp"))?;
        let signature = headers.signature.ok_or(Rejection::MissingHeader("X-Slack-Signature"))?;
        let at: u64 = timestamp.trim().parse().map_err(|_| Rejection::BadTimestamp)?;
        let now_s = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        let away = now_s.abs_diff(at);
        if away > WINDOW.as_secs() {
            return Err(Rejection::Stale(away));
        }
        let matches = self.secrets.iter().any(|secret| {
            let expected = sign(secret, timestamp, body);
            bool::from(expected.as_bytes().ct_eq(signature.as_bytes()))
        });
        if !matches {
            return Err(Rejection::BadSignature);
        }
        let mut seen = self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if !seen.insert(signature, at, now_s) {
            return Err(Rejection::Replay);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
    const TIMESTAMP: &str = "1531420618";
    const BODY: &str = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&\
channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2F\
hooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.\
803a0bc887a14d10d2c447fce8b6703c";
    const EXPECTED: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

    fn at(seconds: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(seconds)
    }

    fn headers<'a>(signature: &'a str) -> Signed<'a> {
        Signed { timestamp: Some(TIMESTAMP), signature: Some(signature), content_type: Some(FORM) }
    }

    #[test]
    fn slacks_published_example_verifies() {
        assert_eq!(sign(SECRET.as_bytes(), TIMESTAMP, BODY.as_bytes()), EXPECTED);
        let verifier = Verifier::new(vec![SECRET.into()]);
        assert_eq!(verifier.verify_at(headers(EXPECTED), BODY.as_bytes(), at(1531420618 + 10)), Ok(()));
    }

    #[test]
    fn each_tampering_is_refused() {
        let verifier = Verifier::new(vec![SECRET.into()]);
        let now = at(1531420618);
        let mut flipped = EXPECTED.to_owned().into_bytes();
        flipped[10] = if flipped[10] == b'a' { b'b' } else { b'a' };
        let flipped = String::from_utf8(flipped).unwrap();
        assert_eq!(verifier.verify_at(headers(&flipped), BODY.as_bytes(), now), Err(Rejection::BadSignature));
        let mut body = BODY.to_owned();
        body.push('x');
        assert_eq!(verifier.verify_at(headers(EXPECTED), body.as_bytes(), now), Err(Rejection::BadSignature));
        let missing = Signed { signature: None, ..headers(EXPECTED) };
        assert!(matches!(verifier.verify_at(missing, BODY.as_bytes(), now), Err(Rejection::MissingHeader(_))));
        let missing = Signed { timestamp: None, ..headers(EXPECTED) };
        assert!(matches!(verifier.verify_at(missing, BODY.as_bytes(), now), Err(Rejection::MissingHeader(_))));
        let late = at(1531420618 + 6 * 60);
        assert_eq!(verifier.verify_at(headers(EXPECTED), BODY.as_bytes(), late), Err(Rejection::Stale(360)));
        let json = Signed { content_type: Some("application/json"), ..headers(EXPECTED) };
        assert!(matches!(verifier.verify_at(json, BODY.as_bytes(), now), Err(Rejection::ContentType(_))));
        let big = vec![b'a'; MAX_BODY + 1];
        assert_eq!(verifier.verify_at(headers(EXPECTED), &big, now), Err(Rejection::TooLarge));
        // None of those was remembered: the genuine request still passes once, then is a replay.
        assert_eq!(verifier.verify_at(headers(EXPECTED), BODY.as_bytes(), now), Ok(()));
        assert_eq!(verifier.verify_at(headers(EXPECTED), BODY.as_bytes(), now), Err(Rejection::Replay));
    }

    #[test]
    fn a_previous_secret_still_verifies_and_a_charset_is_allowed() {
        let verifier = Verifier::new(vec![b"new".to_vec(), SECRET.into()]);
        let with_charset =
            Signed { content_type: Some("application/x-www-form-urlencoded; charset=utf-8"), ..headers(EXPECTED) };
        assert_eq!(verifier.verify_at(with_charset, BODY.as_bytes(), at(1531420618)), Ok(()));
    }

    #[test]
    fn statuses_say_nothing_more() {
        assert_eq!(Rejection::BadSignature.status(), 401);
        assert_eq!(Rejection::TooLarge.status(), 400);
    }
}
