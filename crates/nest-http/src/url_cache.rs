//! Relative URLs resolved before, kept per thread. A script sends the same few paths again and again, and resolving
//! one against the base (the URL parser's path and query setters) costs more than the rest of preparing the
//! request; a copy of the URL it gave last time costs a fraction. The cache is per thread, not per VU, so thousands
//! of VUs on a thread share a few entries and no VU holds more memory for it.

use std::cell::RefCell;

use url::Url;

/// Entries kept per thread; the oldest makes room for a new one.
const ENTRIES: usize = 16;

/// A base and a relative reference with the URL they resolve to.
struct Entry {
    base: Box<str>,
    raw: Box<str>,
    url: Url,
}

#[derive(Default)]
struct Cache {
    entries: Vec<Entry>,
    /// The entry the next new one replaces once the cache is full.
    next: usize,
}

thread_local! {
    static CACHE: RefCell<Cache> = RefCell::default();
}

/// `raw` resolved against `base`: a copy of the URL found for them before, else `resolve()`'s, which is kept.
/// `resolve` must depend on nothing but `base` and `raw`.
pub(crate) fn resolved(base: &Url, raw: &str, resolve: impl FnOnce() -> Url) -> Url {
    let hit = CACHE.with_borrow(|cache| {
        cache.entries.iter().find(|e| *e.raw == *raw && *e.base == *base.as_str()).map(|e| e.url.clone())
    });
    if let Some(url) = hit {
        return url;
    }
    let url = resolve();
    CACHE.with_borrow_mut(|cache| {
        let entry = Entry { base: base.as_str().into(), raw: raw.into(), url: url.clone() };
        if cache.entries.len() < ENTRIES {
            cache.entries.push(entry);
        } else {
            let next = cache.next;
            cache.entries[next] = entry;
            cache.next = (next + 1) % ENTRIES;
        }
    });
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_is_resolved_once_per_base_and_reference_and_the_oldest_entry_goes_first() {
        let a = Url::parse("http://a.test/v1/").unwrap();
        let b = Url::parse("http://b.test/").unwrap();
        let mut calls = 0;
        let mut get = |base: &Url, raw: &str| {
            resolved(base, raw, || {
                calls += 1;
                base.join(raw).unwrap()
            })
        };
        assert_eq!(get(&a, "x").as_str(), "http://a.test/v1/x");
        assert_eq!(get(&a, "x").as_str(), "http://a.test/v1/x");
        assert_eq!(get(&b, "x").as_str(), "http://b.test/x", "another base is another entry");
        assert_eq!(get(&a, "y").as_str(), "http://a.test/v1/y");
        for i in 0..ENTRIES - 3 {
            get(&b, &format!("p{i}"));
        }
        // Full now, and every entry still answers.
        get(&b, "x");
        get(&a, "x");
        get(&b, "new");
        assert_eq!(get(&b, "x").as_str(), "http://b.test/x");
        assert_eq!(get(&a, "x").as_str(), "http://a.test/v1/x");
        assert_eq!(calls, ENTRIES + 2, "hits call nothing; the oldest entry (`a` + `x`) made room for `new`");
    }
}
