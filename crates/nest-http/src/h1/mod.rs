//! The lean HTTP/1.1 path: the VU's task owns the connection and, for each request, writes its bytes and parses
//! the response straight off the socket with `httparse`. hyper's client hands each request over a channel to a
//! spawned connection task and back, which costs more than the exchange itself on a fast target; here nothing is
//! spawned and nothing crosses a channel. It handles plain keep-alive requests with a body of known length
//! ([`eligible`]); anything else goes to hyper (see `conn.rs`).
//!
//! One request is in flight per connection (no pipelining): bytes left over after a response, or arriving on an
//! idle connection, make the connection unusable. 1xx informational responses are skipped. A connection holds no
//! buffer while idle: its read buffer goes to a small pool of the thread's once a response is read, and the next
//! response read on the thread takes it back (its memory is reused once the response that shares it is dropped);
//! the request is written from one buffer per thread.

mod chunked;
mod head;

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::Poll;

use bytes::{Bytes, BytesMut};
use http::header::CONNECTION;
use http::{HeaderMap, Method, StatusCode};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, ReadBuf};

pub(crate) use head::{Framing, Plain, eligible, encode, encode_plain};
use head::{MAX_HEAD, lists_token, protocol};

use crate::error::{Failure, chain};
use crate::stream::Stream;
use crate::{ErrorKind, Headers};
use chunked::{Chunked, Step};

/// The read buffer's first size: room for a typical response head and a small body in one read. Every request in
/// flight holds one, so it counts in the memory of many synchronised VUs.
const FIRST_READ: usize = 2 * 1024;
/// How much the read buffer grows by when a response needs more.
const MORE_READ: usize = 16 * 1024;
/// A body up to this size is copied behind the head and written with it, in one write.
const INLINE_BODY: usize = 16 * 1024;
/// The per-thread write buffer is kept between requests only up to this capacity.
const KEEP_WRITE_BUF: usize = 64 * 1024;

/// Most read buffers a thread keeps for the next responses.
const KEEP_READ_BUFS: usize = 64;

thread_local! {
    /// The buffer requests are encoded into: one per worker thread, not one per connection.
    static WRITE_BUF: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
    /// Read buffers of the first size that connections let go of once a response was read. Each may still share its
    /// memory with that response's head and body; `reserve` reclaims the memory when they are gone, else allocates.
    static READ_BUFS: RefCell<Vec<BytesMut>> = const { RefCell::new(Vec::new()) };
}

/// The thread's write buffer, empty, to encode a request into (see [`encode`]); [`Conn::send`] gives it back.
pub(crate) fn write_buffer() -> Vec<u8> {
    let mut out = WRITE_BUF.take();
    out.clear();
    out
}

/// How an attempt to send a request on a connection ended.
pub(crate) enum Sent {
    /// The response head arrived.
    Head(StatusCode, Headers, Framing),
    /// The request failed without any byte of a response: it may be sent again on a fresh connection (the caller
    /// decides, by whether it was written and whether its method is idempotent).
    NoResponse { failure: Failure, written: bool },
    /// Any other failure.
    Failed(Failure),
}

/// A lean HTTP/1.1 connection.
#[derive(Debug)]
pub(crate) struct Conn {
    stream: Stream,
    /// Bytes read and not yet consumed; empty (and unallocated) while the connection is idle.
    buf: BytesMut,
    /// Bytes read from the connection so far (plaintext).
    read: u64,
    /// The connection carried a request before, so the server may have closed it while it sat idle.
    used: bool,
    /// The current response allows another request afterwards.
    keep_alive: bool,
    /// The last response was read completely and the connection can be parked.
    reusable: bool,
    /// The read buffer grew beyond its first size (it is not pooled then).
    grown: bool,
}

impl Conn {
    pub(crate) fn new(stream: Stream) -> Conn {
        Conn { stream, buf: BytesMut::new(), read: 0, used: false, keep_alive: false, reusable: false, grown: false }
    }

    /// The stream and the bytes read from it so far, to hand the connection to hyper. Only for a connection that
    /// is idle (no bytes pending).
    pub(crate) fn into_stream(self) -> (Stream, u64) {
        debug_assert!(self.buf.is_empty());
        (self.stream, self.read)
    }

    /// The last exchange ended cleanly and the connection may carry another request.
    pub(crate) fn reusable(&self) -> bool {
        self.reusable
    }

    /// Writes one request, whose head `head` holds (from [`write_buffer`]), and reads its response head (skipping
    /// 1xx responses). `closes`: the request says `Connection: close`.
    pub(crate) async fn send(&mut self, method: &Method, head: Vec<u8>, body: &Bytes, closes: bool) -> Sent {
        self.reusable = false;
        if self.used
            && let Err(failure) = self.check_idle().await
        {
            return Sent::NoResponse { failure, written: false };
        }
        self.used = true;
        let read_before = self.read;
        let wrote = self.write_request(head, body).await;
        self.take_pooled_buffer();
        // Read even when the write failed: a server may answer (an error, say) before reading the request, then
        // close.
        match self.read_head(method).await {
            Ok((status, head_headers, keep_alive, framing)) => {
                self.keep_alive = keep_alive && wrote.is_ok() && !closes;
                if framing == Framing::Empty {
                    self.finish();
                }
                Sent::Head(status, head_headers, framing)
            }
            Err(failure) => {
                let failure = wrote.err().unwrap_or(failure);
                if self.read == read_before && matches!(failure.kind, ErrorKind::Closed | ErrorKind::Io) {
                    Sent::NoResponse { failure, written: true }
                } else {
                    Sent::Failed(failure)
                }
            }
        }
    }

    /// The body of the response whose head [`send`](Self::send) returned.
    pub(crate) fn body(&mut self, framing: Framing) -> Body<'_> {
        let state = match framing {
            Framing::Empty => BodyState::Done,
            Framing::Length(n) => BodyState::Length(n),
            Framing::Chunked => BodyState::Chunked(Chunked::Size),
            Framing::Eof => BodyState::Eof,
        };
        Body {
            conn: self,
            state,
            exact: match framing {
                Framing::Empty => Some(0),
                Framing::Length(n) => Some(n),
                _ => None,
            },
        }
    }

    /// Fails when the server closed the idle connection or sent something on it (a request cannot follow that).
    async fn check_idle(&mut self) -> Result<(), Failure> {
        let mut probe = [0u8; 1];
        let stream = &mut self.stream;
        poll_fn(|cx| {
            let mut buf = ReadBuf::new(&mut probe);
            Poll::Ready(match Pin::new(&mut *stream).poll_read(cx, &mut buf) {
                Poll::Pending => Ok(()),
                Poll::Ready(Ok(())) if buf.filled().is_empty() => {
                    Err(Failure::new(ErrorKind::Closed, "connection closed before the request was sent"))
                }
                Poll::Ready(Ok(())) => Err(protocol("the server sent data on an idle connection".into())),
                Poll::Ready(Err(e)) => Err(io_failure(&e, "connection failed before the request was sent")),
            })
        })
        .await
    }

    async fn write_request(&mut self, mut out: Vec<u8>, body: &Bytes) -> Result<(), Failure> {
        let inline = body.len() <= INLINE_BODY;
        if inline {
            out.extend_from_slice(body);
        }
        let mut result = self.stream.write_all(&out).await;
        if result.is_ok() && !inline {
            result = self.stream.write_all(body).await;
        }
        if result.is_ok() {
            result = self.stream.flush().await;
        }
        if out.capacity() <= KEEP_WRITE_BUF {
            WRITE_BUF.set(out);
        }
        result.map_err(|e| io_failure(&e, "request failed"))
    }

    /// Reads up to the final response head: its status, headers, keep-alive and body framing.
    async fn read_head(&mut self, method: &Method) -> Result<(StatusCode, Headers, bool, Framing), Failure> {
        loop {
            if !self.buf.is_empty() {
                if let Some(head) = head::parse(&mut self.buf)? {
                    if head.status == StatusCode::SWITCHING_PROTOCOLS {
                        return Err(protocol("unexpected 101 Switching Protocols: no upgrade was asked for".into()));
                    }
                    if head.status.is_informational() {
                        continue;
                    }
                    let framing = head::framing(&head, method)?;
                    let keep_alive = head.keep_alive && framing != Framing::Eof;
                    return Ok((head.status, head.headers, keep_alive, framing));
                }
                if self.buf.len() >= MAX_HEAD {
                    return Err(protocol(format!(
                        "the response head is larger than {} KiB (the most nest reads)",
                        MAX_HEAD / 1024
                    )));
                }
            }
            if self.fill().await? == 0 {
                let message = if self.buf.is_empty() {
                    "request failed: connection closed before a response arrived"
                } else {
                    "request failed: connection closed in the middle of the response head"
                };
                return Err(Failure::new(ErrorKind::Closed, message));
            }
        }
    }

    /// Before a response is read: the thread's pooled read buffer, if there is one, with its first size (its memory
    /// reclaimed if the response that shared it is gone, else new).
    fn take_pooled_buffer(&mut self) {
        if self.buf.capacity() == 0
            && let Some(pooled) = READ_BUFS.with_borrow_mut(Vec::pop)
        {
            self.buf = pooled;
            self.buf.reserve(FIRST_READ);
            self.grown = false;
        }
    }

    /// Reads more bytes into the buffer (allocating or growing it as needed); 0 at end of stream.
    async fn fill(&mut self) -> Result<usize, Failure> {
        if self.buf.capacity() - self.buf.len() < 1024 {
            let first = self.buf.capacity() == 0;
            self.grown |= !first;
            self.buf.reserve(if first { FIRST_READ } else { MORE_READ });
        }
        let n = self.stream.read_buf(&mut self.buf).await.map_err(|e| io_failure(&e, "reading the response failed"))?;
        self.read += n as u64;
        Ok(n)
    }

    /// The response is complete: the connection is reusable if the response allows it and nothing else arrived
    /// behind it; the read buffer is let go, to the thread's pool unless it grew.
    fn finish(&mut self) {
        self.reusable = self.keep_alive && self.buf.is_empty();
        if self.buf.is_empty() {
            let buf = std::mem::take(&mut self.buf);
            if !std::mem::take(&mut self.grown) {
                READ_BUFS.with_borrow_mut(|pool| {
                    if pool.len() < KEEP_READ_BUFS {
                        pool.push(buf);
                    }
                });
            }
        }
    }
}

/// True when the server announced (`Connection: close`) that it will close the connection after this response.
pub(crate) fn closes(headers: &Headers) -> bool {
    lists_token(headers.values(CONNECTION.as_str()), "close")
}

/// True when a request with the user's `headers` asks for `Connection: close` (the defaults never do).
pub(crate) fn request_closes(headers: &HeaderMap) -> bool {
    !headers.is_empty() && lists_token(headers.get_all(CONNECTION).iter().map(|v| v.as_bytes()), "close")
}

/// An I/O failure: a reset or an unexpected end of stream is a closed connection for the caller's retry rule.
fn io_failure(e: &io::Error, context: &str) -> Failure {
    let kind = match e.kind() {
        io::ErrorKind::UnexpectedEof => ErrorKind::Closed,
        _ => ErrorKind::Io,
    };
    Failure::new(kind, format!("{context}: {}", chain(e)))
}

/// Where a body reader is.
#[derive(Debug)]
enum BodyState {
    Length(u64),
    Chunked(Chunked),
    Eof,
    Done,
}

/// Reads one response body off a [`Conn`], piece by piece, sharing the read buffer's bytes.
pub(crate) struct Body<'a> {
    conn: &'a mut Conn,
    state: BodyState,
    exact: Option<u64>,
}

impl Body<'_> {
    /// The body's length when known before reading it (`Content-Length`, or 0 when there is no body).
    pub(crate) fn exact_len(&self) -> Option<u64> {
        self.exact
    }

    /// The next piece of the body; `None` at its end.
    pub(crate) async fn frame(&mut self) -> Option<Result<Bytes, Failure>> {
        loop {
            let buf = &mut self.conn.buf;
            match &mut self.state {
                BodyState::Done => return None,
                BodyState::Length(left) if !buf.is_empty() => {
                    let take = (buf.len() as u64).min(*left);
                    *left -= take;
                    let data = buf.split_to(take as usize).freeze();
                    if *left == 0 {
                        self.done();
                    }
                    return Some(Ok(data));
                }
                BodyState::Chunked(chunked) => match chunked.step(buf) {
                    Ok(Step::Data(data)) => return Some(Ok(data)),
                    Ok(Step::Done) => {
                        self.done();
                        return None;
                    }
                    Ok(Step::More) => {}
                    Err(failure) => return Some(Err(failure)),
                },
                BodyState::Eof if !buf.is_empty() => return Some(Ok(buf.split().freeze())),
                BodyState::Length(_) | BodyState::Eof => {}
            }
            match self.conn.fill().await {
                Ok(0) if matches!(self.state, BodyState::Eof) => {
                    self.done();
                    return None;
                }
                Ok(0) => {
                    return Some(Err(Failure::new(
                        ErrorKind::Closed,
                        "reading response body failed: connection closed before the body was complete",
                    )));
                }
                Ok(_) => {}
                Err(failure) => return Some(Err(failure)),
            }
        }
    }

    fn done(&mut self) {
        self.state = BodyState::Done;
        self.conn.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_close_detection() {
        let mut h = HeaderMap::new();
        assert!(!closes(&Headers::new(h.clone())) && !request_closes(&h));
        h.insert(CONNECTION, "keep-alive".parse().unwrap());
        assert!(!closes(&Headers::new(h.clone())) && !request_closes(&h));
        h.insert(CONNECTION, "Upgrade, Close".parse().unwrap());
        assert!(closes(&Headers::new(h.clone())) && request_closes(&h));
    }
}
