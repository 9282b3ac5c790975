//! Undoing `Transfer-Encoding: chunked` on the bytes of the read buffer, one step at a time: each step either
//! takes a piece of body data off the buffer (shared, not copied), says more bytes must be read, or ends the body.
//! Chunk extensions and trailer fields are read and ignored.

use bytes::{Bytes, BytesMut};

use super::head::{MAX_HEAD, protocol};
use crate::error::Failure;

/// Where the decoder is in the chunked stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Chunked {
    /// Expecting a chunk-size line.
    Size,
    /// Inside a chunk: this many data bytes are still to come.
    Data(u64),
    /// After a chunk's data: expecting its CRLF.
    DataEnd,
    /// After the last (zero-size) chunk: skipping trailer fields up to the blank line; the count is the trailer
    /// bytes seen so far.
    Trailer(usize),
}

/// The result of one decoding step.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// A piece of body data.
    Data(Bytes),
    /// The buffer holds no complete next element: read more.
    More,
    /// The body ended (its trailers consumed).
    Done,
}

impl Chunked {
    /// Decodes from the front of `buf` until some data, the end, or the need for more bytes.
    pub(crate) fn step(&mut self, buf: &mut BytesMut) -> Result<Step, Failure> {
        loop {
            match *self {
                Chunked::Size => match httparse::parse_chunk_size(buf) {
                    Ok(httparse::Status::Complete((used, size))) => {
                        let _ = buf.split_to(used);
                        *self = if size == 0 { Chunked::Trailer(0) } else { Chunked::Data(size) };
                    }
                    Ok(httparse::Status::Partial) if buf.len() < 1024 => return Ok(Step::More),
                    _ => return Err(protocol("invalid chunk size line in the response body".into())),
                },
                Chunked::Data(left) => {
                    if buf.is_empty() {
                        return Ok(Step::More);
                    }
                    let take = (buf.len() as u64).min(left);
                    *self = if take == left { Chunked::DataEnd } else { Chunked::Data(left - take) };
                    return Ok(Step::Data(buf.split_to(take as usize).freeze()));
                }
                Chunked::DataEnd => {
                    if buf.len() < 2 {
                        return Ok(Step::More);
                    }
                    if &buf[..2] != b"\r\n" {
                        return Err(protocol("a chunk of the response body does not end with CRLF".into()));
                    }
                    let _ = buf.split_to(2);
                    *self = Chunked::Size;
                }
                Chunked::Trailer(seen) => {
                    let Some(end) = buf.windows(2).position(|w| w == b"\r\n") else {
                        if seen + buf.len() > MAX_HEAD {
                            return Err(protocol("the response's trailer fields are too large".into()));
                        }
                        return Ok(Step::More);
                    };
                    let _ = buf.split_to(end + 2);
                    if end == 0 {
                        return Ok(Step::Done);
                    }
                    *self = Chunked::Trailer(seen + end + 2);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `wire` in pieces of `piece` bytes and collects the body and the count of bytes left after it.
    fn decode_in(wire: &[u8], piece: usize) -> Result<(Vec<u8>, usize), Failure> {
        let (mut state, mut buf, mut out) = (Chunked::Size, BytesMut::new(), Vec::new());
        for (i, part) in wire.chunks(piece).enumerate() {
            buf.extend_from_slice(part);
            loop {
                match state.step(&mut buf)? {
                    Step::Data(d) => out.extend_from_slice(&d),
                    Step::More => break,
                    Step::Done => return Ok((out, buf.len() + wire.len().saturating_sub((i + 1) * piece))),
                }
            }
        }
        Err(protocol("incomplete".into()))
    }

    /// One byte at a time, as the slowest network would deliver it.
    fn decode_bytewise(wire: &[u8]) -> Result<(Vec<u8>, usize), Failure> {
        decode_in(wire, 1)
    }

    #[test]
    fn chunks_extensions_and_trailers() {
        let wire = b"5;ext=1\r\nhello\r\n1\r\n \r\nA\r\n0123456789\r\n0\r\nTrailer: x\r\nMore: y\r\n\r\nNEXT";
        let (body, left) = decode_bytewise(wire).unwrap();
        assert_eq!(body, b"hello 0123456789");
        assert_eq!(left, 4, "bytes after the body stay in the buffer");
        assert_eq!(decode_bytewise(b"0\r\n\r\n").unwrap().0, b"");
    }

    #[test]
    fn malformed_chunks_are_protocol_errors() {
        assert!(decode_bytewise(b"zz\r\n").is_err());
        assert!(decode_bytewise(b"3\r\nabcX\r\n0\r\n\r\n").unwrap_err().message.contains("CRLF"));
        let long = format!("0\r\nx: {}", "y".repeat(MAX_HEAD + 1));
        assert!(decode_in(long.as_bytes(), 4096).unwrap_err().message.contains("too large"));
    }
}
