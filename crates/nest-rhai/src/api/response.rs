//! The response a script gets back from `client`.
//!
//! Its fields are read lazily (the body is turned into a string only when read). `fail(reason)` turns an already
//! recorded request into a failure with the script's reason, at most once per response.

use std::cell::Cell;
use std::rc::Rc;

use http::Method;
use rhai::{Dynamic, Engine, EvalAltResult, ImmutableString, Map};

use crate::engine::VuCtx;

/// An HTTP response as scripts see it. Clones share one response.
#[derive(Clone)]
pub struct HttpResponse(Rc<Inner>);

struct Inner {
    method: Method,
    name: ImmutableString,
    response: nest_http::Response,
    failed: Cell<bool>,
}

impl HttpResponse {
    pub(crate) fn new(
        method: Method,
        name: ImmutableString,
        response: nest_http::Response,
        failed: bool,
    ) -> HttpResponse {
        HttpResponse(Rc::new(Inner { method, name, response, failed: Cell::new(failed) }))
    }

    /// The status code, 0 on a transport error.
    pub fn status(&self) -> u16 {
        self.0.response.status
    }

    /// Whether the request counts as successful (so far: `fail()` may change it).
    pub fn ok(&self) -> bool {
        !self.0.failed.get()
    }

    fn body(&self) -> String {
        String::from_utf8_lossy(&self.0.response.body).into_owned()
    }

    fn json(&mut self) -> Result<Dynamic, Box<EvalAltResult>> {
        let value: serde_json::Value = serde_json::from_slice(&self.0.response.body)
            .map_err(|e| format!("the response of {} {} is not JSON: {e}", self.0.method, self.0.name))?;
        rhai::serde::to_dynamic(value)
    }

    fn headers(&self) -> Map {
        let mut map = Map::new();
        for (name, value) in self.0.response.headers.iter() {
            match map.get_mut(name) {
                // Repeated headers are joined with ", " as HTTP allows, except Set-Cookie (whose dates contain commas),
                // joined with newlines.
                Some(existing) => {
                    let sep = if name == "set-cookie" { "\n" } else { ", " };
                    *existing = format!("{existing}{sep}{value}").into();
                }
                None => {
                    map.insert(name.into(), value.into_owned().into());
                }
            }
        }
        map
    }

    fn fail(&mut self, reason: &str) -> Result<(), Box<EvalAltResult>> {
        if !self.0.failed.replace(true) {
            let vu = VuCtx::current("fail")?;
            vu.env.recorder.fail_recorded(self.0.method.as_str(), &self.0.name, reason);
        }
        Ok(())
    }
}

pub(super) fn register(engine: &mut Engine) {
    engine.register_type_with_name::<HttpResponse>("Response");
    engine.register_get("status", |r: &mut HttpResponse| i64::from(r.status()));
    engine.register_get("ok", |r: &mut HttpResponse| r.ok());
    engine.register_get("body", |r: &mut HttpResponse| r.body());
    engine.register_get("headers", |r: &mut HttpResponse| r.headers());
    engine.register_get("error", |r: &mut HttpResponse| match &r.0.response.error {
        Some(e) => Dynamic::from(e.clone()),
        None => Dynamic::UNIT,
    });
    engine.register_get("bytes", |r: &mut HttpResponse| r.0.response.body_bytes as i64);
    engine.register_get("wire_bytes", |r: &mut HttpResponse| r.0.response.wire_bytes as i64);
    engine.register_get("elapsed_ms", |r: &mut HttpResponse| r.0.response.elapsed.as_secs_f64() * 1000.0);
    engine.register_get("url", |r: &mut HttpResponse| r.0.response.url.clone());
    engine.register_fn("json", HttpResponse::json);
    engine.register_fn("fail", HttpResponse::fail);
    engine.register_fn("to_string", |r: &mut HttpResponse| {
        format!("Response({} {} -> {})", r.0.method, r.0.response.url, r.status())
    });
    engine.register_fn("to_debug", |r: &mut HttpResponse| {
        format!("Response({} {} -> {})", r.0.method, r.0.response.url, r.status())
    });
}

// For the extraction helpers of `api/extract.rs` (`find`, `find_all`, `css`), which register their own methods.
impl HttpResponse {
    /// The raw response body.
    pub(super) fn body_bytes(&self) -> &[u8] {
        &self.0.response.body
    }
}
