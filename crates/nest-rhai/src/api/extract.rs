//! Pulling values out of a response: `r.find(regex)`, `r.find_all(regex)` and `r.css(selector)`.
//!
//! Load tests need CSRF tokens, links and ids from the page they just got. Patterns are compiled once per
//! distinct text on each worker and kept in a bounded cache, so a task that calls `r.find("token=(\\w+)")` on
//! every iteration compiles it once. A pattern that does not compile fails the task with the parse error (Rhai
//! adds the call's `file:line:col`).

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use regex::Regex;
use rhai::{Array, Dynamic, Engine, EvalAltResult, Map};
use scraper::{ElementRef, Html, Selector};

use super::HttpResponse;

type Res<T> = Result<T, Box<EvalAltResult>>;

/// Distinct patterns (regexes, and selectors) a worker keeps compiled.
const CACHE_SIZE: usize = 256;

/// A bounded map from pattern text to its compiled form; when full, an arbitrary entry makes room.
struct Cache<T> {
    map: HashMap<String, Rc<T>>,
}

impl<T> Cache<T> {
    fn get(&mut self, text: &str, compile: impl FnOnce(&str) -> Result<T, String>) -> Result<Rc<T>, String> {
        if let Some(hit) = self.map.get(text) {
            return Ok(hit.clone());
        }
        let compiled = Rc::new(compile(text)?);
        if self.map.len() >= CACHE_SIZE
            && let Some(victim) = self.map.keys().next().cloned()
        {
            self.map.remove(&victim);
        }
        self.map.insert(text.to_owned(), compiled.clone());
        Ok(compiled)
    }
}

thread_local! {
    static REGEXES: RefCell<Cache<Regex>> = RefCell::new(Cache { map: HashMap::new() });
    static SELECTORS: RefCell<Cache<Selector>> = RefCell::new(Cache { map: HashMap::new() });
}

/// One element `r.css` found: its text, inner HTML, tag name and attributes.
#[derive(Debug, Clone)]
pub(crate) struct Element(Rc<ElementData>);

#[derive(Debug)]
struct ElementData {
    tag: String,
    text: String,
    html: String,
    attrs: Vec<(String, String)>,
}

impl Element {
    fn of(e: ElementRef<'_>) -> Element {
        let v = e.value();
        Element(Rc::new(ElementData {
            tag: v.name().to_owned(),
            text: e.text().collect(),
            html: e.inner_html(),
            attrs: v.attrs().map(|(k, v)| (k.to_owned(), v.to_owned())).collect(),
        }))
    }

    fn attr(&self, name: &str) -> Dynamic {
        self.0.attrs.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map_or(Dynamic::UNIT, |(_, v)| v.into())
    }
}

pub(super) fn register(engine: &mut Engine) {
    engine.register_fn("find", |r: &mut HttpResponse, pattern: &str| find(r, pattern));
    engine.register_fn("find_all", |r: &mut HttpResponse, pattern: &str| find_all(r, pattern));
    engine.register_fn("css", |r: &mut HttpResponse, selector: &str| css(r, selector));
    engine.register_type_with_name::<Element>("Element");
    engine.register_get("text", |e: &mut Element| e.0.text.clone());
    engine.register_get("html", |e: &mut Element| e.0.html.clone());
    engine.register_get("tag", |e: &mut Element| e.0.tag.clone());
    engine.register_get("attrs", |e: &mut Element| {
        e.0.attrs.iter().map(|(k, v)| (k.as_str().into(), Dynamic::from(v.clone()))).collect::<Map>()
    });
    engine.register_fn("attr", |e: &mut Element, name: &str| e.attr(name));
    engine.register_fn("to_string", |e: &mut Element| format!("<{}> {}", e.0.tag, e.0.text.trim()));
    engine.register_fn("to_debug", |e: &mut Element| format!("<{}> {}", e.0.tag, e.0.text.trim()));
}

fn regex(pattern: &str) -> Res<Rc<Regex>> {
    REGEXES
        .with_borrow_mut(|cache| cache.get(pattern, |p| Regex::new(p).map_err(|e| e.to_string())))
        .map_err(|e| format!("find: `{pattern}` is not a valid regex: {e}").into())
}

/// Capture group 1 when the pattern has one (and it took part), else the whole match.
fn pick(captures: &regex::Captures<'_>) -> Dynamic {
    captures.get(1).or_else(|| captures.get(0)).map_or(Dynamic::UNIT, |m| m.as_str().into())
}

fn find(r: &HttpResponse, pattern: &str) -> Res<Dynamic> {
    let re = regex(pattern)?;
    let body = String::from_utf8_lossy(r.body_bytes());
    Ok(re.captures(&body).map_or(Dynamic::UNIT, |c| pick(&c)))
}

fn find_all(r: &HttpResponse, pattern: &str) -> Res<Array> {
    let re = regex(pattern)?;
    let body = String::from_utf8_lossy(r.body_bytes());
    Ok(re.captures_iter(&body).map(|c| pick(&c)).collect())
}

fn css(r: &HttpResponse, selector: &str) -> Res<Array> {
    let sel = SELECTORS
        .with_borrow_mut(|cache| cache.get(selector, |s| Selector::parse(s).map_err(|e| e.to_string())))
        .map_err(|e| format!("css: `{selector}` is not a valid CSS selector: {e}"))?;
    let page = Html::parse_document(&String::from_utf8_lossy(r.body_bytes()));
    Ok(page.select(&sel).map(|e| Dynamic::from(Element::of(e))).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_compiles_each_pattern_once_and_stays_bounded() {
        let mut cache: Cache<String> = Cache { map: HashMap::new() };
        let mut compiled = 0;
        for _ in 0..3 {
            cache
                .get("a", |p| {
                    compiled += 1;
                    Ok(p.to_owned())
                })
                .unwrap();
        }
        assert_eq!(compiled, 1);
        for i in 0..1000 {
            cache.get(&i.to_string(), |p| Ok(p.to_owned())).unwrap();
        }
        assert_eq!(cache.map.len(), CACHE_SIZE);
        assert!(cache.get("(", |p| Regex::new(p).map(|_| String::new()).map_err(|e| e.to_string())).is_err());
    }
}
