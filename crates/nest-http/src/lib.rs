//! `nest-http`: the per-virtual-user HTTP client of the nest load tester.
//!
//! Each virtual user (VU) owns one [`VuClient`], like a browser session: its own cookie
//! jar and its own HTTP/1.1 keep-alive connections (one idle connection per origin).
//! Thousands of VUs share one thread, so the client uses `Rc` internally and is not
//! `Send`; run-wide settings (TLS roots, timeouts) live in one shared [`ClientConfig`].
//!
//! [`VuClient::send`] never fails: a transport problem yields a [`Response`] with
//! `status == 0` and an [`ErrorKind`], which is what a load tester wants to count.
//!
//! ```no_run
//! use std::sync::Arc;
//! use nest_http::{ClientConfig, Request, VuClient};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let config = Arc::new(ClientConfig::new(false)?);
//! let vu = VuClient::new(config, Some("http://127.0.0.1:8080".parse()?));
//! let mut req = Request::new(http::Method::GET, "/items");
//! req.query.push(("page".into(), "2".into()));
//! let resp = vu.send(req).await;
//! match resp.error_kind {
//!     None => println!("{} in {:?}, {} bytes", resp.status, resp.elapsed, resp.body.len()),
//!     Some(kind) => println!("failed ({kind}): {}", resp.error.unwrap_or_default()),
//! }
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

mod body;
pub use body::{fmt_bytes, parse_size};
mod client;
mod config;
mod conn;
mod error;
mod h1;
mod headers;
mod message;
mod prepare;
mod redirect;
mod session;
mod source;
mod stream;
mod tls;
mod url_cache;

pub use client::VuClient;
pub use config::{ClientConfig, DEFAULT_ACCEPT_ENCODING, DEFAULT_MAX_BODY, accept_encoding_value, check_source_addr};
pub use error::{Error, ErrorKind};
pub use headers::Headers;
pub use message::{Body, Request, Response};
pub use prepare::{redact, redact_url, redact_word};
