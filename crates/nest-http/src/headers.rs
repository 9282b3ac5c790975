//! [`Headers`]: the response headers a caller sees. Most scripts never read them, so they stay the
//! `http::HeaderMap` the connection produced, and each name or value becomes a string only when asked for.
//! Any connection path (hyper's, or a hand-parsed one) hands over a `HeaderMap` and nothing more.

use std::borrow::Cow;

use http::HeaderMap;

/// Response headers: names lowercase (as `http` stores them), in wire order with repeated names grouped
/// together at the place of their first occurrence, values decoded lossily when they are not UTF-8.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(HeaderMap);

impl Headers {
    /// Wraps the headers of a response.
    pub fn new(map: HeaderMap) -> Headers {
        Headers(map)
    }

    /// The first value of header `name` (case-insensitive), if present.
    pub fn get(&self, name: &str) -> Option<Cow<'_, str>> {
        self.0.get(name).map(|v| String::from_utf8_lossy(v.as_bytes()))
    }

    /// Every value of header `name` (case-insensitive), in wire order.
    pub fn get_all<'a>(&'a self, name: &str) -> impl Iterator<Item = Cow<'a, str>> + 'a {
        self.0.get_all(name).into_iter().map(|v| String::from_utf8_lossy(v.as_bytes()))
    }

    /// `(name, value)` pairs: see the type's documentation for their order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, Cow<'_, str>)> {
        self.0.iter().map(|(name, value)| (name.as_str(), String::from_utf8_lossy(value.as_bytes())))
    }

    /// Number of values (a header repeated three times counts three).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when the response had no headers.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The underlying map, with the raw bytes of every value.
    pub fn as_map(&self) -> &HeaderMap {
        &self.0
    }
}

impl From<HeaderMap> for Headers {
    fn from(map: HeaderMap) -> Headers {
        Headers(map)
    }
}

#[cfg(test)]
mod tests {
    use http::{HeaderName, HeaderValue};

    use super::*;

    /// The pairs as the eager conversion this type replaced produced them.
    fn eager(map: &HeaderMap) -> Vec<(String, String)> {
        map.iter().map(|(n, v)| (n.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned())).collect()
    }

    fn sample() -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in [
            ("Content-Type", &b"text/plain"[..]),
            ("Set-Cookie", b"a=1"),
            ("X-Custom", b"caf\xc3\xa9"),
            ("set-cookie", b"b=2; Expires=Wed, 21 Oct 2026 07:28:00 GMT"),
            ("X-Raw", b"bad\xffbyte"),
        ] {
            let name = HeaderName::from_bytes(name.as_bytes()).unwrap();
            map.append(name, HeaderValue::from_bytes(value).unwrap());
        }
        map
    }

    #[test]
    fn same_pairs_in_the_same_order_as_the_eager_conversion() {
        let map = sample();
        let headers = Headers::new(map.clone());
        let lazy: Vec<(String, String)> = headers.iter().map(|(n, v)| (n.to_owned(), v.into_owned())).collect();
        assert_eq!(lazy, eager(&map));
        assert_eq!(lazy[0], ("content-type".to_owned(), "text/plain".to_owned()));
        assert_eq!(lazy[1].0, "set-cookie");
        assert_eq!(lazy[2].0, "set-cookie", "repeated names are grouped at their first place");
        assert_eq!(headers.len(), 5);
        assert!(!headers.is_empty());
        assert!(Headers::default().is_empty());
    }

    #[test]
    fn lookup_is_case_insensitive_and_returns_the_first_value() {
        let headers = Headers::new(sample());
        assert_eq!(headers.get("CONTENT-type").as_deref(), Some("text/plain"));
        assert_eq!(headers.get("Set-Cookie").as_deref(), Some("a=1"));
        assert_eq!(headers.get_all("SET-COOKIE").count(), 2);
        assert_eq!(headers.get("x-missing"), None);
        assert_eq!(headers.get("not a name"), None);
    }

    #[test]
    fn non_utf8_values_are_decoded_lossily_and_utf8_ones_are_kept() {
        let headers = Headers::new(sample());
        assert_eq!(headers.get("x-custom").as_deref(), Some("café"));
        assert!(matches!(headers.get("x-custom"), Some(Cow::Borrowed(_))));
        assert_eq!(headers.get("x-raw").as_deref(), Some("bad\u{fffd}byte"));
        assert_eq!(headers.as_map()["x-raw"].as_bytes(), b"bad\xffbyte");
    }
}
