//! [`Headers`]: the response headers a caller sees. Most scripts never read them, so nothing is built for them
//! per response: the lean HTTP/1.1 path hands over the head's raw bytes (where each field lies is found again only
//! when a lookup needs it, and lookups compare case-insensitively), and hyper's path hands over its
//! `http::HeaderMap`. Each name or value becomes a string only when asked for, and both forms answer alike.

use std::borrow::Cow;
use std::fmt;
use std::sync::OnceLock;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};

/// Most header fields of one response head on the lean path; a head with more is refused.
pub(crate) const MAX_FIELDS: usize = 100;

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

/// A response head as it came off the wire. Most responses are never asked for their headers, so where each field
/// lies is found only when a lookup needs it: by parsing the head again with the parser that read it (so the fields
/// are exactly the ones it accepted), into a copy whose names are lowercased. Until then, a lookup of a name the head
/// does not hold is answered from a set of the names taken during the first parse.
#[derive(Clone, Debug)]
pub(crate) struct Raw {
    head: Bytes,
    /// How many fields the head has.
    count: u32,
    names: NameSet,
    read: OnceLock<Lowered>,
}

/// A head with its names lowercased, and where its fields lie.
#[derive(Clone, Debug)]
struct Lowered {
    head: Bytes,
    fields: Fields,
}

/// A head's fields, by where they lie in it.
pub(crate) type Fields = Vec<Field>;

/// Where one field's name and value lie in the head.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Field {
    pub(crate) name_at: u32,
    pub(crate) name_len: u32,
    pub(crate) value_at: u32,
    pub(crate) value_len: u32,
}

/// The names of a head's fields as a 64-bit Bloom filter, case-insensitive: a name whose bit is clear is not there.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct NameSet(u64);

impl NameSet {
    /// Adds a name (any case).
    pub(crate) fn add(&mut self, name: &[u8]) {
        self.0 |= NameSet::bit(name);
    }

    /// Whether `name` (any case) may be in the set; it is not when this is false.
    fn may_hold(self, name: &[u8]) -> bool {
        self.0 & NameSet::bit(name) != 0
    }

    /// The name's bit, from its length and the case-folded first and last bytes.
    fn bit(name: &[u8]) -> u64 {
        let fold = |b: Option<&u8>| usize::from(b.map_or(0, u8::to_ascii_lowercase));
        1 << ((name.len().wrapping_mul(7) ^ fold(name.first()).wrapping_mul(3) ^ fold(name.last())) & 63)
    }
}

impl Raw {
    /// `head`, a complete response head that [`parse_fields`] accepts, with `count` fields whose names are in
    /// `names`.
    pub(crate) fn new(head: Bytes, count: usize, names: NameSet) -> Raw {
        Raw { head, count: count as u32, names, read: OnceLock::new() }
    }

    fn lowered(&self) -> &Lowered {
        self.read.get_or_init(|| {
            let fields = parse_fields(&self.head);
            let mut head = self.head.to_vec();
            for f in &fields {
                head[f.name_at as usize..(f.name_at + f.name_len) as usize].make_ascii_lowercase();
            }
            Lowered { head: Bytes::from(head), fields }
        })
    }

    fn fields(&self) -> &Fields {
        &self.lowered().fields
    }

    /// A field's name, lowercase.
    fn name(&self, f: &Field) -> &[u8] {
        &self.lowered().head[f.name_at as usize..(f.name_at + f.name_len) as usize]
    }

    fn value(&self, f: &Field) -> &[u8] {
        &self.head[f.value_at as usize..(f.value_at + f.value_len) as usize]
    }

    /// The field at `i` as a pair; names are ASCII tokens, so the `str` conversion never fails.
    fn pair(&self, i: usize) -> (&str, &[u8]) {
        let f = &self.fields()[i];
        (std::str::from_utf8(self.name(f)).unwrap_or_default(), self.value(f))
    }
}

/// Where the fields of a response head lie in it, as the lean path's parser (`httparse`, default settings) reads
/// them; no fields for a head it does not accept (which the lean path never hands over).
pub(crate) fn parse_fields(head: &[u8]) -> Fields {
    let mut fields = [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_FIELDS];
    let mut response = httparse::Response::new(&mut []);
    if !matches!(parse_head(&mut response, head, &mut fields), Ok(httparse::Status::Complete(_))) {
        return Fields::new();
    }
    let start = head.as_ptr() as usize;
    let at = |s: &[u8]| (s.as_ptr() as usize - start) as u32;
    response
        .headers
        .iter()
        .map(|f| Field {
            name_at: at(f.name.as_bytes()),
            name_len: f.name.len() as u32,
            value_at: at(f.value),
            value_len: f.value.len() as u32,
        })
        .collect()
}

/// The lean path's one parse of a response head, with the settings that decide which fields it accepts: the first
/// parse (`h1::head`) and the second ([`parse_fields`]) must agree.
pub(crate) fn parse_head<'h, 'b>(
    response: &mut httparse::Response<'h, 'b>,
    buf: &'b [u8],
    fields: &'h mut [std::mem::MaybeUninit<httparse::Header<'b>>],
) -> httparse::Result<usize> {
    httparse::ParserConfig::default().parse_response_with_uninit_headers(response, buf, fields)
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
            Repr::Raw(raw) => raw.count as usize,
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
                let mut map = HeaderMap::with_capacity(raw.count as usize);
                for f in raw.fields() {
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
            Repr::Raw(raw) if !raw.names.may_hold(name.as_bytes()) => Values::None,
            Repr::Raw(raw) => {
                // The first field of that name, found ignoring case; the rest are compared with its name as it is
                // in the head (lowercase), so nothing of `name` is kept. Lengths first: most fields differ in it.
                let fields = raw.fields();
                let first = fields.iter().position(|f| {
                    f.name_len as usize == name.len() && raw.name(f).eq_ignore_ascii_case(name.as_bytes())
                });
                match first {
                    Some(i) => Values::Raw { raw, name: raw.name(&fields[i]), next: i },
                    None => Values::None,
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
    /// The name is not in the head.
    None,
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
            Values::None => None,
            Values::Map(values) => values.next().map(HeaderValue::as_bytes),
            Values::Raw { raw, name, next } => {
                while let Some(f) = raw.fields().get(*next) {
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
        let fields = raw.fields();
        let n = fields.len();
        let name = |i: usize| raw.name(&fields[i]);
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

    /// The same fields as a raw head, as the lean path hands it over: names in the case they came in.
    fn sample_raw() -> Headers {
        let mut head = b"HTTP/1.1 200 OK\r\n".to_vec();
        let mut names = NameSet::default();
        for (name, value) in SAMPLE {
            head.extend_from_slice(name.as_bytes());
            head.extend_from_slice(b": ");
            head.extend_from_slice(value);
            head.extend_from_slice(b"\r\n");
            names.add(name.as_bytes());
        }
        head.extend_from_slice(b"\r\n");
        Headers::from_raw(Raw::new(Bytes::from(head), SAMPLE.len(), names))
    }

    fn raw(headers: &Headers) -> &Raw {
        match &headers.0 {
            Repr::Raw(raw) => raw,
            Repr::Map(_) => panic!("not a raw head"),
        }
    }

    #[test]
    fn a_name_the_head_lacks_is_answered_without_reading_the_head_again() {
        let headers = sample_raw();
        assert_eq!(headers.get("set-cookie2"), None);
        assert_eq!(headers.get_all("content-encoding").count(), 0);
        assert_eq!(headers.len(), 6);
        assert!(raw(&headers).read.get().is_none(), "absent names and the count need no second parse");
        assert_eq!(headers.get("SET-cookie").as_deref(), Some("a=1"));
        assert!(raw(&headers).read.get().is_some());
        // Every name of the head, in any case, is in its set.
        for (name, _) in SAMPLE {
            for name in [name.to_owned(), name.to_ascii_uppercase(), name.to_ascii_lowercase()] {
                assert!(raw(&headers).names.may_hold(name.as_bytes()), "{name}");
            }
        }
    }

    #[test]
    fn the_second_parse_finds_the_fields_httparse_accepted() {
        // Spaces and tabs around values, an empty value, bare line feeds, obs-text.
        let head = b"HTTP/1.1 200 OK\nA: 1\r\nB:\t x y \t\r\nEmpty:\r\nC:v\nD: \xe9t\xe9\r\n\n";
        let fields = parse_fields(head);
        let got: Vec<(&[u8], &[u8])> = fields
            .iter()
            .map(|f| {
                let (n, v) = (f.name_at as usize, f.value_at as usize);
                (&head[n..n + f.name_len as usize], &head[v..v + f.value_len as usize])
            })
            .collect();
        let want: [(&[u8], &[u8]); 5] =
            [(b"A", b"1"), (b"B", b"x y"), (b"Empty", b""), (b"C", b"v"), (b"D", b"\xe9t\xe9")];
        assert_eq!(got, want);
        assert!(parse_fields(b"HTTP/1.1 200 OK\r\nA: 1\r\n").is_empty(), "an incomplete head has no fields");
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
