//! [`Headers`]: the response headers a caller sees. Most scripts never read them, so nothing is built for them
//! per response: the lean HTTP/1.1 path hands over the head's raw bytes and the parser's offsets of each field
//! (lookups scan them, case-insensitively), and hyper's path hands over its `http::HeaderMap`. Each name or value
//! becomes a string only when asked for, and both forms answer alike.

use std::borrow::Cow;
use std::fmt;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};

/// Response headers: names lowercase, in wire order with repeated names grouped together at the place of their
/// first occurrence (as `http::HeaderMap` iterates them), values decoded lossily when they are not UTF-8.
#[derive(Clone, Default)]
pub struct Headers(Repr);

#[derive(Clone)]
enum Repr {
    Map(HeaderMap),
    Raw(Raw),
}

impl Default for Repr {
    fn default() -> Repr {
        Repr::Map(HeaderMap::new())
    }
}

/// A response head as it came off the wire, names lowercased in place, with where each field lies in it.
#[derive(Clone, Debug)]
pub(crate) struct Raw {
    head: Bytes,
    fields: Fields,
}

/// A head's fields. (Held inline in a `SmallVec`, they saved an allocation but made every response 180 bytes
/// larger, and the copies of it through the futures cost more than the allocation.)
pub(crate) type Fields = Vec<Field>;

/// Where one field's name and value lie in the head.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Field {
    pub(crate) name_at: u32,
    pub(crate) name_len: u32,
    pub(crate) value_at: u32,
    pub(crate) value_len: u32,
}

impl Raw {
    /// `head` with the fields at `fields`. Names must be lowercase header-name tokens and values valid header
    /// values (httparse checks both, by the same rules as `http`).
    pub(crate) fn new(head: Bytes, fields: Fields) -> Raw {
        Raw { head, fields }
    }

    fn name(&self, f: &Field) -> &[u8] {
        &self.head[f.name_at as usize..(f.name_at + f.name_len) as usize]
    }

    fn value(&self, f: &Field) -> &[u8] {
        &self.head[f.value_at as usize..(f.value_at + f.value_len) as usize]
    }

    /// The field at `i` as a pair; names are ASCII tokens, so the `str` conversion never fails.
    fn pair(&self, i: usize) -> (&str, &[u8]) {
        let f = &self.fields[i];
        (std::str::from_utf8(self.name(f)).unwrap_or_default(), self.value(f))
    }
}

impl Headers {
    /// Wraps the headers of a response.
    pub fn new(map: HeaderMap) -> Headers {
        Headers(Repr::Map(map))
    }

    pub(crate) fn from_raw(raw: Raw) -> Headers {
        Headers(Repr::Raw(raw))
    }

    /// The first value of header `name` (case-insensitive), if present.
    pub fn get(&self, name: &str) -> Option<Cow<'_, str>> {
        self.get_bytes(name).map(String::from_utf8_lossy)
    }

    /// Every value of header `name` (case-insensitive), in wire order.
    pub fn get_all<'a>(&'a self, name: &str) -> impl Iterator<Item = Cow<'a, str>> + 'a {
        self.values(name).map(String::from_utf8_lossy)
    }

    /// `(name, value)` pairs: see the type's documentation for their order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, Cow<'_, str>)> {
        self.iter_bytes().map(|(name, value)| (name, String::from_utf8_lossy(value)))
    }

    /// Number of values (a header repeated three times counts three).
    pub fn len(&self) -> usize {
        match &self.0 {
            Repr::Map(map) => map.len(),
            Repr::Raw(raw) => raw.fields.len(),
        }
    }

    /// True when the response had no headers.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The headers as an `http::HeaderMap`, with the raw bytes of every value (built on each call for headers
    /// that came from the lean path).
    pub fn to_map(&self) -> HeaderMap {
        match &self.0 {
            Repr::Map(map) => map.clone(),
            Repr::Raw(raw) => {
                let mut map = HeaderMap::with_capacity(raw.fields.len());
                for f in &raw.fields {
                    let value_at = f.value_at as usize;
                    let value = raw.head.slice(value_at..value_at + f.value_len as usize);
                    // Both always succeed: httparse accepts names and values by `http`'s own rules.
                    if let (Ok(name), Ok(value)) =
                        (HeaderName::from_bytes(raw.name(f)), HeaderValue::from_maybe_shared(value))
                    {
                        map.append(name, value);
                    }
                }
                map
            }
        }
    }

    /// The first value of `name` (case-insensitive), as bytes.
    pub(crate) fn get_bytes(&self, name: &str) -> Option<&[u8]> {
        self.values(name).next()
    }

    /// Every value of `name` (case-insensitive), as bytes, in wire order.
    pub(crate) fn values<'a>(&'a self, name: &str) -> Values<'a> {
        match &self.0 {
            Repr::Map(map) => Values::Map(map.get_all(name).into_iter()),
            Repr::Raw(raw) => {
                // The first field of that name, found ignoring case; the rest are compared with its name as it is
                // in the head (lowercase), so nothing of `name` is kept. Lengths first: most fields differ in it.
                let first = raw.fields.iter().position(|f| {
                    f.name_len as usize == name.len() && raw.name(f).eq_ignore_ascii_case(name.as_bytes())
                });
                match first {
                    Some(i) => Values::Raw { raw, name: raw.name(&raw.fields[i]), next: i },
                    None => Values::Raw { raw, name: b"", next: raw.fields.len() },
                }
            }
        }
    }

    fn iter_bytes(&self) -> Pairs<'_> {
        match &self.0 {
            Repr::Map(map) => Pairs::Map(map.iter()),
            Repr::Raw(raw) => Pairs::Raw { raw, first: 0, next: 0 },
        }
    }
}

/// The values of one name.
pub(crate) enum Values<'a> {
    Map(http::header::ValueIter<'a, HeaderValue>),
    /// `name`: lowercase, as in the head; `next`: the next field to look at.
    Raw {
        raw: &'a Raw,
        name: &'a [u8],
        next: usize,
    },
}

impl<'a> Iterator for Values<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        match self {
            Values::Map(values) => values.next().map(HeaderValue::as_bytes),
            Values::Raw { raw, name, next } => {
                while let Some(f) = raw.fields.get(*next) {
                    *next += 1;
                    if f.name_len as usize == name.len() && raw.name(f) == *name {
                        return Some(raw.value(f));
                    }
                }
                None
            }
        }
    }
}

/// All pairs, repeated names grouped at their first place.
enum Pairs<'a> {
    Map(http::header::Iter<'a, HeaderValue>),
    /// `first`: the field whose group is being given; `next`: where the search for the rest of its group goes on
    /// (equal to `first` before the group's first field was given).
    Raw {
        raw: &'a Raw,
        first: usize,
        next: usize,
    },
}

impl<'a> Iterator for Pairs<'a> {
    type Item = (&'a str, &'a [u8]);

    fn next(&mut self) -> Option<(&'a str, &'a [u8])> {
        let (raw, first, next) = match self {
            Pairs::Map(pairs) => return pairs.next().map(|(name, value)| (name.as_str(), value.as_bytes())),
            Pairs::Raw { raw, first, next } => (*raw, first, next),
        };
        let n = raw.fields.len();
        let name = |i: usize| raw.name(&raw.fields[i]);
        while *first < n {
            if *next == *first {
                *next += 1;
                // A name seen before was given with its first occurrence's group.
                if (0..*first).any(|j| name(j) == name(*first)) {
                    *first += 1;
                    continue;
                }
                return Some(raw.pair(*first));
            }
            while *next < n {
                let i = *next;
                *next += 1;
                if name(i) == name(*first) {
                    return Some(raw.pair(i));
                }
            }
            *first += 1;
            *next = *first;
        }
        None
    }
}

impl From<HeaderMap> for Headers {
    fn from(map: HeaderMap) -> Headers {
        Headers::new(map)
    }
}

/// Equal when they hold the same pairs in the same order, whichever form each has.
impl PartialEq for Headers {
    fn eq(&self, other: &Headers) -> bool {
        self.len() == other.len() && self.iter_bytes().eq(other.iter_bytes())
    }
}

impl Eq for Headers {}

impl fmt::Debug for Headers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: [(&str, &[u8]); 6] = [
        ("Content-Type", b"text/plain"),
        ("Set-Cookie", b"a=1"),
        ("X-Custom", b"caf\xc3\xa9"),
        ("set-cookie", b"b=2; Expires=Wed, 21 Oct 2026 07:28:00 GMT"),
        ("X-Raw", b"bad\xffbyte"),
        ("SET-COOKIE", b"c=3"),
    ];

    /// The pairs as the eager conversion this type replaced produced them.
    fn eager(map: &HeaderMap) -> Vec<(String, String)> {
        map.iter().map(|(n, v)| (n.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned())).collect()
    }

    fn sample_map() -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in SAMPLE {
            let name = HeaderName::from_bytes(name.as_bytes()).unwrap();
            map.append(name, HeaderValue::from_bytes(value).unwrap());
        }
        map
    }

    /// The same fields as a raw head, the way the lean path leaves it: names lowercased in place.
    fn sample_raw() -> Headers {
        let mut head = b"HTTP/1.1 200 OK\r\n".to_vec();
        let mut fields = Fields::new();
        for (name, value) in SAMPLE {
            let name_at = head.len() as u32;
            head.extend(name.bytes().map(|b| b.to_ascii_lowercase()));
            head.extend_from_slice(b": ");
            let value_at = head.len() as u32;
            head.extend_from_slice(value);
            head.extend_from_slice(b"\r\n");
            fields.push(Field { name_at, name_len: name.len() as u32, value_at, value_len: value.len() as u32 });
        }
        Headers::from_raw(Raw::new(Bytes::from(head), fields))
    }

    fn both() -> [Headers; 2] {
        [Headers::new(sample_map()), sample_raw()]
    }

    fn pairs(headers: &Headers) -> Vec<(String, String)> {
        headers.iter().map(|(n, v)| (n.to_owned(), v.into_owned())).collect()
    }

    #[test]
    fn same_pairs_in_the_same_order_as_the_eager_conversion() {
        for headers in both() {
            let lazy = pairs(&headers);
            assert_eq!(lazy, eager(&sample_map()));
            assert_eq!(lazy[0], ("content-type".to_owned(), "text/plain".to_owned()));
            let names: Vec<&str> = lazy.iter().map(|(n, _)| n.as_str()).collect();
            assert_eq!(names, ["content-type", "set-cookie", "set-cookie", "set-cookie", "x-custom", "x-raw"]);
            assert_eq!(headers.len(), 6);
            assert!(!headers.is_empty());
        }
        assert!(Headers::default().is_empty());
        let [map, raw] = both();
        assert_eq!(map, raw, "either form compares by its pairs");
        assert_eq!(raw.to_map(), sample_map());
        assert_eq!(format!("{raw:?}"), format!("{map:?}"));
    }

    #[test]
    fn lookup_is_case_insensitive_and_returns_the_first_value() {
        for headers in both() {
            assert_eq!(headers.get("CONTENT-type").as_deref(), Some("text/plain"));
            assert_eq!(headers.get("Set-Cookie").as_deref(), Some("a=1"));
            let all: Vec<String> = headers.get_all("SET-COOKIE").map(Cow::into_owned).collect();
            assert_eq!(all, ["a=1", "b=2; Expires=Wed, 21 Oct 2026 07:28:00 GMT", "c=3"]);
            assert_eq!(headers.get("x-missing"), None);
            assert_eq!(headers.get("not a name"), None);
            assert_eq!(headers.get(""), None);
        }
    }

    #[test]
    fn non_utf8_values_are_decoded_lossily_and_utf8_ones_are_kept() {
        for headers in both() {
            assert_eq!(headers.get("x-custom").as_deref(), Some("café"));
            assert!(matches!(headers.get("x-custom"), Some(Cow::Borrowed(_))));
            assert_eq!(headers.get("x-raw").as_deref(), Some("bad\u{fffd}byte"));
            assert_eq!(headers.get_bytes("X-RAW"), Some(&b"bad\xffbyte"[..]));
            assert_eq!(headers.to_map()["x-raw"].as_bytes(), b"bad\xffbyte");
        }
    }
}
