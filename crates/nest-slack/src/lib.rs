//! nest's Slack side: load tests started from a `/nest` slash command, and results posted to chat.
//!
//! - [`verify`]: Slack's request signing ([`verify::Verifier`]), checked before anything else, with the replay
//!   cache of [`replay`];
//! - [`command`]: the command's text parsed and checked against the presets' allowed overrides;
//! - [`jobs`]: the one run at a time, a child `nest run --preset` (or `nest scale --preset`) process, stopped with
//!   SIGTERM, whose result is posted to the command's `response_url`;
//! - [`server`]: the HTTP service of `nest slack serve` (axum), and the read-only reports folder;
//! - [`blocks`]: a report as a Block Kit message;
//! - [`notify`]: `--notify` delivery, with a timeout, retries and backoff, and URLs shown redacted.
//!
//! ```
//! use nest_slack::verify::{Signed, Verifier, FORM, sign};
//! let secret = b"8f742231b10e8888abcd99yyyzzz85a5".to_vec();
//! let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs().to_string();
//! let body = b"command=%2Fnest&text=status";
//! let signature = sign(&secret, &now, body);
//! let verifier = Verifier::new(vec![secret]);
//! let headers = Signed { timestamp: Some(&now), signature: Some(&signature), content_type: Some(FORM) };
//! assert!(verifier.verify(headers, body).is_ok());
//! assert!(verifier.verify(headers, body).is_err(), "a replay");
//! ```

#![deny(missing_docs)]

pub mod blocks;
pub mod command;
pub mod jobs;
pub mod notify;
pub mod replay;
pub mod server;
pub mod verify;
