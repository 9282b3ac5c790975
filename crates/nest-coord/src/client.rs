//! The segment's side of the protocol: one HTTP/1 request per connection, out to the coordinator.
//!
//! A segment talks to its coordinator a few times a second at most, so each request opens its own connection
//! (nothing to keep alive, nothing stale after a coordinator restart). Long polls are repeated until they carry an
//! answer. Errors are typed: a refusal (the segment exits "refused"), a cancellation, or an unreachable or
//! confused coordinator.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde::Serialize;
use serde::de::DeserializeOwned;

use nest_report::model::Report;

use crate::protocol::{
    ErrorBody, ErrorKind, Live, LiveReply, LoadDoneReply, Member, POLL, Ready, ReadyReply, Register, Registered, Upload,
};
use crate::token::Token;

/// How long one request may take beyond a long poll's hold.
const SLACK: Duration = Duration::from_secs(10);

/// Why a request to the coordinator did not get its answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The coordinator refused this segment (plan hash, index, duplicate, token): exit "refused".
    #[error("{0}")]
    Refused(String),
    /// The run was cancelled before its start.
    #[error("{0}")]
    Cancelled(String),
    /// No answer, or one that is not the protocol's.
    #[error("{0}")]
    Unreachable(String),
    /// The coordinator's URL cannot be used.
    #[error("--coordinator {url}: {reason}")]
    BadUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// A coordinator's address and the run's token.
#[derive(Debug, Clone)]
pub struct Client {
    /// `host:port`, to connect to.
    authority: String,
    /// The path prefix before `/v1/...` (empty, or without a trailing slash).
    base_path: String,
    token: Token,
}

impl Client {
    /// A client of the coordinator at `url` (`http://host:port`).
    pub fn new(url: &str, token: Token) -> Result<Client, ClientError> {
        let bad = |reason: &str| ClientError::BadUrl { url: url.to_owned(), reason: reason.to_owned() };
        let parsed = url::Url::parse(url).map_err(|e| bad(&e.to_string()))?;
        if parsed.scheme() != "http" {
            return Err(bad("only http:// is supported (keep the coordinator on a private network or a tunnel)"));
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(bad("put no credentials in the URL: the token comes from NEST_COORDINATOR_TOKEN"));
        }
        let host = parsed.host_str().ok_or_else(|| bad("no host"))?;
        let port = parsed.port_or_known_default().unwrap_or(80);
        let authority = if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") };
        let base_path = parsed.path().trim_end_matches('/').to_owned();
        Ok(Client { authority, base_path, token })
    }

    /// Posts `body` to `route` (`register`, `ready`...) and decodes the answer.
    pub async fn post<B: Serialize, R: DeserializeOwned>(&self, route: &str, body: &B) -> Result<R, ClientError> {
        let body = serde_json::to_vec(body).map_err(|e| ClientError::Unreachable(e.to_string()))?;
        let (status, bytes) = tokio::time::timeout(POLL + SLACK, self.send(route, body))
            .await
            .map_err(|_| ClientError::Unreachable(format!("the coordinator at {} did not answer", self.authority)))??;
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|e| {
                ClientError::Unreachable(format!("the coordinator's answer to {route} is not understood: {e}"))
            });
        }
        let message = match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(e) => e,
            Err(_) => {
                let text = String::from_utf8_lossy(&bytes).chars().take(200).collect::<String>();
                ErrorBody { kind: ErrorKind::Invalid, error: format!("{status}: {}", text.trim()) }
            }
        };
        Err(match message.kind {
            ErrorKind::Refused | ErrorKind::Unauthorized | ErrorKind::Stranger => ClientError::Refused(message.error),
            ErrorKind::Invalid | ErrorKind::TooLarge => ClientError::Unreachable(format!("{route}: {}", message.error)),
        })
    }

    async fn send(&self, route: &str, body: Vec<u8>) -> Result<(hyper::StatusCode, Bytes), ClientError> {
        let unreachable = |e: &dyn std::fmt::Display| {
            ClientError::Unreachable(format!("cannot reach the coordinator at {}: {e}", self.authority))
        };
        let stream = tokio::net::TcpStream::connect(&self.authority).await.map_err(|e| unreachable(&e))?;
        let _ = stream.set_nodelay(true);
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| unreachable(&e))?;
        tokio::spawn(conn);
        let request = Request::post(format!("{}/v1/{route}", self.base_path))
            .header(hyper::header::HOST, &self.authority)
            .header(hyper::header::AUTHORIZATION, format!("Bearer {}", self.token.expose()))
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| unreachable(&e))?;
        let response = sender.send_request(request).await.map_err(|e| unreachable(&e))?;
        let status = response.status();
        let bytes = response.into_body().collect().await.map_err(|e| unreachable(&e))?.to_bytes();
        Ok((status, bytes))
    }
}

/// One segment of a coordinated run, as its process sees it.
#[derive(Debug, Clone)]
pub struct Session {
    client: Client,
    member: Member,
    register: Register,
    /// The common start, once the coordinator handed it out (for the live feed's start skew).
    start: Arc<OnceLock<SystemTime>>,
}

/// The common start, as handed out by the coordinator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Start {
    /// The instant, on the wall clock.
    pub at: SystemTime,
    /// Segment 0's encoded `setup()` value.
    pub setup: Option<Vec<u8>>,
}

impl Session {
    /// Segment `index` of `segments`, with its plan hash, host and own run id.
    pub fn new(client: Client, register: Register) -> Session {
        let member = Member { index: register.index, run_id: register.run_id.clone() };
        Session { client, member, register, start: Arc::default() }
    }

    /// This segment's index.
    pub fn index(&self) -> u32 {
        self.member.index
    }

    /// The common start the coordinator handed out, once [`Session::ready`] returned it.
    pub fn start_at(&self) -> Option<SystemTime> {
        self.start.get().copied()
    }

    /// Who this segment is, for its requests.
    pub fn member(&self) -> &Member {
        &self.member
    }

    /// Joins the run; refused with the coordinator's reason. A coordinator not reachable yet (started at the same
    /// time, a pod still being scheduled) is asked again every half second for up to `patience`.
    pub async fn register(&self, patience: Duration) -> Result<Registered, ClientError> {
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            match self.client.post("register", &self.register).await {
                Err(ClientError::Unreachable(_)) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                other => return other,
            }
        }
    }

    /// Says this segment is ready (segment 0: with its encoded `setup()` value) and waits for the common start.
    pub async fn ready(&self, setup: Option<Vec<u8>>) -> Result<Start, ClientError> {
        let setup = setup.map(|v| base64::engine::general_purpose::STANDARD.encode(v));
        let ready = Ready { member: self.member.clone(), setup };
        loop {
            match self.client.post("ready", &ready).await? {
                ReadyReply::Wait => continue,
                ReadyReply::Cancelled { reason } => return Err(ClientError::Cancelled(reason)),
                ReadyReply::Start { at_unix_us, setup } => {
                    let setup = setup
                        .map(|s| base64::engine::general_purpose::STANDARD.decode(s))
                        .transpose()
                        .map_err(|e| ClientError::Unreachable(format!("the setup() value does not decode: {e}")))?;
                    let at = SystemTime::UNIX_EPOCH + Duration::from_micros(at_unix_us);
                    let _ = self.start.set(at);
                    return Ok(Start { at, setup });
                }
            }
        }
    }

    /// Pushes live figures; the answer says whether to stop.
    pub async fn push(&self, live: &Live) -> Result<LiveReply, ClientError> {
        self.client.post("live", live).await
    }

    /// Says this segment's load is over and waits until `teardown()` may run (every segment's load is over).
    pub async fn load_done(&self) -> Result<(), ClientError> {
        while self.client.post::<_, LoadDoneReply>("load-done", &self.member).await? == LoadDoneReply::Wait {}
        Ok(())
    }

    /// Hands in the final result.
    pub async fn upload(&self, report: &Report) -> Result<(), ClientError> {
        let upload = Upload { member: self.member.clone(), report: Box::new(report.clone()) };
        self.client.post::<_, crate::protocol::Ack>("result", &upload).await.map(|_| ())
    }
}
