//! `client`: the VU's HTTP session as the script sees it.
//!
//! `client` itself carries no state: each call finds the running VU and uses that VU's own connection and cookie
//! jar. A request suspends the VU's fiber until the response is in, records it (a transport error is a failed
//! request with status 0, never a script error), and returns a [`HttpResponse`].

use http::Method;
use nest_core::fiber::{self, Cancelled};
use nest_core::stats::{Failure, FailureKind, Sample};
use rhai::{Engine, EvalAltResult, ImmutableString, Map};

use super::options;
use super::response::HttpResponse;
use crate::engine::{VuCtx, terminate};

/// The `client` value of scripts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Client;

type Res<T> = Result<T, Box<EvalAltResult>>;

pub(super) fn register(engine: &mut Engine) {
    engine.register_type_with_name::<Client>("Client");
    macro_rules! verb {
        ($name:literal, $method:expr) => {
            engine.register_fn($name, |_: Client, path: ImmutableString| send($method, path, None));
            engine.register_fn($name, |_: Client, path: ImmutableString, opts: Map| send($method, path, Some(opts)));
        };
    }
    verb!("get", Method::GET);
    verb!("post", Method::POST);
    verb!("put", Method::PUT);
    verb!("patch", Method::PATCH);
    verb!("delete", Method::DELETE);
    verb!("head", Method::HEAD);
    verb!("options", Method::OPTIONS);
    engine.register_fn("request", |_: Client, method: &str, path: ImmutableString| {
        send(parse_method(method)?, path, None)
    });
    engine.register_fn("request", |_: Client, method: &str, path: ImmutableString, opts: Map| {
        send(parse_method(method)?, path, Some(opts))
    });
}

fn parse_method(method: &str) -> Res<Method> {
    Method::from_bytes(method.to_ascii_uppercase().as_bytes())
        .map_err(|_| format!("`{method}` is not an HTTP method").into())
}

fn send(method: Method, path: ImmutableString, opts: Option<Map>) -> Res<HttpResponse> {
    let vu = VuCtx::current("client")?;
    let mut request = nest_http::Request::new(method.clone(), path.as_str());
    request.keep_body = !vu.discard_bodies.get();
    let options = match opts {
        Some(opts) => options::apply(&mut request, method.as_str(), opts)?,
        None => options::Options { name: None, expect: Vec::new() },
    };
    let response = match fiber::suspend_with(|| vu.client.send(request)) {
        Ok(response) => response,
        Err(Cancelled::Stopped) => {
            vu.cancelled.set(true);
            return Err(terminate("run stopped"));
        }
        Err(Cancelled::NotInFiber) => {
            return Err("`client` can only be used inside a task, on_start or on_stop".into());
        }
    };
    // A full URL's password never becomes part of a request name (shown in every report). Without a `:` there is no
    // `://` to redact, and the name shares the script's string.
    let name: ImmutableString = match options.name {
        Some(name) => name.into(),
        None if path.contains(':') => nest_http::redact_url(&path).into_owned().into(),
        None => path,
    };
    let mut reason = String::new();
    let failure = failure_reason(&response, &options.expect, &mut reason);
    // Open model: the task's first request counts from the task's scheduled start (the wait for a free VU and for
    // the worker included); later requests of the task from their own send.
    let corrected = vu.open.get().then(|| match vu.scheduled.take() {
        Some(scheduled) => scheduled.elapsed().max(response.elapsed),
        None => response.elapsed,
    });
    let sample = Sample {
        latency: response.elapsed,
        corrected,
        bytes: response.body_bytes,
        failure,
        wire_bytes: response.wire_bytes,
        status: response.status,
    };
    vu.env.recorder.request(method.as_str(), &name, sample);
    let failed = failure.is_some();
    Ok(HttpResponse::new(method, name, response, failed))
}

/// Why a response counts as failed, or `None` when it succeeded.
fn failure_reason<'a>(response: &nest_http::Response, expect: &[u16], text: &'a mut String) -> Option<Failure<'a>> {
    let kind = if response.status == 0 {
        *text = match &response.error_kind {
            Some(kind) => kind.to_string(),
            None => "transport error".to_owned(),
        };
        FailureKind::Transport
    } else {
        let ok = if expect.is_empty() { response.status < 400 } else { expect.contains(&response.status) };
        if ok {
            return None;
        }
        *text = format!("HTTP {}", response.status);
        FailureKind::Status
    };
    Some(Failure { kind, reason: text.as_str() })
}
