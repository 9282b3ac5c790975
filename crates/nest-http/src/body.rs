//! Reading a response body safely from a server nest does not trust.
//!
//! A load tester must survive a hostile or broken server: a 2 GB body, an endless chunked body, a gzip bomb. So a
//! body is read frame by frame, decoded on the fly when its `Content-Encoding` is `gzip`, `deflate` or `br`, and
//! kept only up to a cap (`max_body`): past it the read stops with [`ErrorKind::BodyTooLarge`] and the connection
//! is dropped. A body the script does not want is streamed and only counted, whatever its size. Both the bytes on
//! the wire and the decoded bytes are counted. The same code reads the bodies of both kinds of connection: hyper's
//! `Incoming` and the lean HTTP/1.1 path's reader are both [`Frames`].

use std::io::{self, Write};

use bytes::Bytes;
use http::header::CONTENT_ENCODING;
use hyper::body::{Body as _, Incoming};

use crate::error::Failure;
use crate::{ErrorKind, Headers};

/// What to do with a body: keep it (up to `max` decoded bytes) or only count it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Keep the decoded body for the caller; `false` streams it and only counts.
    pub(crate) keep: bool,
    /// Most decoded bytes kept when `keep` is set.
    pub(crate) max: u64,
}

/// A body as read: the decoded bytes (empty when discarded) and the two counts.
#[derive(Debug, Default)]
pub(crate) struct ReadBody {
    pub(crate) body: Bytes,
    /// Body bytes as they came off the connection (after de-chunking, before decoding).
    pub(crate) wire: u64,
    /// Decoded body bytes (equal to `wire` when the body was not encoded).
    pub(crate) decoded: u64,
}

/// A response body as a sequence of data pieces (after de-chunking; trailers are skipped).
pub(crate) trait Frames {
    /// The body's length when known before reading it: the `Content-Length` of a response that has a body (not of
    /// a HEAD, 204 or 304 response).
    fn exact_len(&self) -> Option<u64>;

    /// The next piece of data; `None` at the end of the body.
    async fn frame(&mut self) -> Option<Result<Bytes, Failure>>;
}

impl Frames for Incoming {
    fn exact_len(&self) -> Option<u64> {
        self.size_hint().exact()
    }

    async fn frame(&mut self) -> Option<Result<Bytes, Failure>> {
        loop {
            match http_body_util::BodyExt::frame(self).await? {
                Ok(frame) => {
                    if let Ok(data) = frame.into_data() {
                        return Some(Ok(data));
                    }
                }
                Err(e) => return Some(Err(Failure::from_hyper(&e, "reading response body failed"))),
            }
        }
    }
}

/// Reads the whole body of a response with `headers`, decoding and capping it as `limits` says.
pub(crate) async fn read(headers: &Headers, mut frames: impl Frames, limits: Limits) -> Result<ReadBody, Failure> {
    let mut decoder = Decoder::for_headers(headers, limits);
    if let Decoder::Identity { .. } = decoder
        && limits.keep
        && let Some(length) = frames.exact_len()
        && length > limits.max
    {
        return Err(too_large(limits.max, format!("Content-Length is {length} bytes")));
    }
    let mut wire = 0u64;
    while let Some(data) = frames.frame().await {
        let data = data?;
        wire += data.len() as u64;
        decoder.push(data, limits)?;
    }
    if wire == 0 {
        // No body at all (HEAD, 204, 304): there is nothing to decode, even when a Content-Encoding is announced.
        return Ok(ReadBody::default());
    }
    let (body, decoded) = decoder.finish(limits)?;
    Ok(ReadBody { body, wire, decoded })
}

fn too_large(max: u64, seen: String) -> Failure {
    Failure::new(
        ErrorKind::BodyTooLarge,
        format!(
            "response body is larger than max_body ({}): {seen}; raise max_body or pass `body: false` to stream it",
            fmt_bytes(max)
        ),
    )
}

/// A byte count for people, in binary units with at most one decimal: `16 MiB`, `1.5 KiB`, `300 B`.
pub fn fmt_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    let text = format!("{value:.1}");
    format!("{} {}", text.strip_suffix(".0").unwrap_or(&text), UNITS[unit])
}

/// Parses a byte size: `1048576`, `512KiB`, `16 MiB`, `1.5MB`, `2g` (binary units for `Ki`/`Mi`/`Gi`, decimal for
/// `k`/`KB`/`M`/`MB`/`G`/`GB`, case-insensitive). The error says what is expected.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (number, unit) = (&t[..split], t[split..].trim());
    let factor: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "ki" | "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mi" | "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gi" | "gib" => 1 << 30,
        _ => return Err(format!("`{text}` is not a size: expected bytes like 1048576, 512KiB, 16MiB or 1GB")),
    };
    let value: f64 = number.parse().map_err(|_| format!("`{text}` is not a size: expected a number like 16MiB"))?;
    let bytes = value * factor as f64;
    if bytes.is_finite() && bytes >= 1.0 && bytes < u64::MAX as f64 {
        Ok(bytes as u64)
    } else {
        Err(format!("`{text}`: a size must be at least 1 byte"))
    }
}

/// Where decoded bytes go: counted always, kept only when asked and only up to the cap.
#[derive(Debug)]
struct Sink {
    data: Vec<u8>,
    count: u64,
    limits: Limits,
    over: bool,
}

impl Sink {
    fn new(limits: Limits) -> Sink {
        Sink { data: Vec::new(), count: 0, limits, over: false }
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.count += buf.len() as u64;
        if self.limits.keep {
            if self.count > self.limits.max {
                self.over = true;
                return Err(io::Error::other("decoded body over max_body"));
            }
            self.data.extend_from_slice(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The content coding being undone.
enum Decoder {
    /// Not encoded (or an encoding nest does not decode): chunks are kept as they are, without copying.
    Identity {
        /// Most bodies arrive in one piece: held inline, no allocation for it.
        chunks: smallvec::SmallVec<[Bytes; 1]>,
        count: u64,
    },
    // The decoders are boxed: they are large, and an unencoded body (the common case) should not pay for them in
    // every in-flight request's future.
    Gzip(Box<flate2::write::MultiGzDecoder<Sink>>),
    /// `deflate` before its first byte: servers send either zlib (RFC 1950, as specified) or raw deflate.
    Deflate(Sink),
    Zlib(Box<flate2::write::ZlibDecoder<Sink>>),
    RawDeflate(Box<flate2::write::DeflateDecoder<Sink>>),
    Brotli(Box<brotli_decompressor::DecompressorWriter<Sink>>),
}

impl Decoder {
    fn for_headers(headers: &Headers, limits: Limits) -> Decoder {
        let coding = headers
            .get_bytes(CONTENT_ENCODING.as_str())
            .and_then(|v| std::str::from_utf8(v).ok())
            .map(str::trim)
            .unwrap_or("");
        if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
            Decoder::Gzip(Box::new(flate2::write::MultiGzDecoder::new(Sink::new(limits))))
        } else if coding.eq_ignore_ascii_case("deflate") {
            Decoder::Deflate(Sink::new(limits))
        } else if coding.eq_ignore_ascii_case("br") {
            Decoder::Brotli(Box::new(brotli_decompressor::DecompressorWriter::new(Sink::new(limits), 8192)))
        } else {
            Decoder::Identity { chunks: smallvec::SmallVec::new(), count: 0 }
        }
    }

    fn push(&mut self, data: Bytes, limits: Limits) -> Result<(), Failure> {
        if let Decoder::Deflate(_) = self {
            let Decoder::Deflate(sink) =
                std::mem::replace(self, Decoder::Identity { chunks: smallvec::SmallVec::new(), count: 0 })
            else {
                unreachable!("matched just above")
            };
            *self = if is_zlib(&data) {
                Decoder::Zlib(Box::new(flate2::write::ZlibDecoder::new(sink)))
            } else {
                Decoder::RawDeflate(Box::new(flate2::write::DeflateDecoder::new(sink)))
            };
        }
        let result = match self {
            Decoder::Identity { chunks, count } => {
                *count += data.len() as u64;
                if limits.keep {
                    if *count > limits.max {
                        return Err(too_large(limits.max, format!("more than {count} bytes arrived")));
                    }
                    chunks.push(data);
                }
                Ok(())
            }
            Decoder::Gzip(d) => d.write_all(&data),
            Decoder::Zlib(d) => d.write_all(&data),
            Decoder::RawDeflate(d) => d.write_all(&data),
            Decoder::Brotli(d) => d.write_all(&data),
            Decoder::Deflate(_) => unreachable!("replaced above"),
        };
        result.map_err(|e| self.decode_error(e))
    }

    fn sink(&self) -> Option<&Sink> {
        match self {
            Decoder::Identity { .. } => None,
            Decoder::Gzip(d) => Some(d.get_ref()),
            Decoder::Deflate(s) => Some(s),
            Decoder::Zlib(d) => Some(d.get_ref()),
            Decoder::RawDeflate(d) => Some(d.get_ref()),
            Decoder::Brotli(d) => Some(d.get_ref()),
        }
    }

    fn sink_mut(&mut self) -> Option<&mut Sink> {
        match self {
            Decoder::Identity { .. } => None,
            Decoder::Gzip(d) => Some(d.get_mut()),
            Decoder::Deflate(s) => Some(s),
            Decoder::Zlib(d) => Some(d.get_mut()),
            Decoder::RawDeflate(d) => Some(d.get_mut()),
            Decoder::Brotli(d) => Some(d.get_mut()),
        }
    }

    fn decode_error(&self, e: io::Error) -> Failure {
        match self.sink() {
            Some(sink) if sink.over => {
                too_large(sink.limits.max, format!("it decodes to more than {} bytes", sink.limits.max))
            }
            _ => Failure::new(ErrorKind::Decode, format!("decoding the response body failed: {e}")),
        }
    }

    /// Ends the stream: the body (empty when discarded) and the decoded byte count.
    fn finish(mut self, limits: Limits) -> Result<(Bytes, u64), Failure> {
        let finished = match &mut self {
            Decoder::Identity { chunks, count } => {
                let body = match chunks.len() {
                    0 => Bytes::new(),
                    1 => chunks.pop().unwrap_or_default(),
                    _ => Bytes::from(chunks.concat()),
                };
                return Ok((body, *count));
            }
            Decoder::Gzip(d) => d.try_finish(),
            Decoder::Zlib(d) => d.try_finish(),
            Decoder::RawDeflate(d) => d.try_finish(),
            Decoder::Brotli(d) => d.close().map_err(|e| io::Error::other(format!("{e:?}"))),
            // An empty `deflate` body: nothing to decode.
            Decoder::Deflate(_) => Ok(()),
        };
        finished.map_err(|e| self.decode_error(e))?;
        let sink = self.sink_mut().unwrap_or_else(|| unreachable!("identity returned above"));
        // Moved out, not copied: the decoder is dropped right after.
        let body = if limits.keep { Bytes::from(std::mem::take(&mut sink.data)) } else { Bytes::new() };
        Ok((body, sink.count))
    }
}

/// A zlib stream starts with CM = 8 (deflate) and a header checksum divisible by 31 (RFC 1950 §2.2).
fn is_zlib(data: &[u8]) -> bool {
    match data {
        [cmf, flg, ..] => cmf & 0x0f == 8 && (u16::from(*cmf) << 8 | u16::from(*flg)) % 31 == 0,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEEP: Limits = Limits { keep: true, max: 1024 };

    fn decode(coding: &str, encoded: &[u8], limits: Limits) -> Result<(Bytes, u64), Failure> {
        let mut headers = http::HeaderMap::new();
        headers.insert(CONTENT_ENCODING, coding.parse().unwrap());
        let mut d = Decoder::for_headers(&Headers::new(headers), limits);
        // Feed in two pieces, as the wire might.
        let (a, b) = encoded.split_at(encoded.len() / 2);
        d.push(Bytes::copy_from_slice(a), limits)?;
        d.push(Bytes::copy_from_slice(b), limits)?;
        d.finish(limits)
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn gzip_and_both_deflate_flavours_decode() {
        let text = b"hello hello hello hello";
        assert_eq!(&decode("gzip", &gzip(text), KEEP).unwrap().0[..], text);
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(text).unwrap();
        assert_eq!(&decode("deflate", &z.finish().unwrap(), KEEP).unwrap().0[..], text);
        let mut raw = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        raw.write_all(text).unwrap();
        assert_eq!(decode("Deflate", &raw.finish().unwrap(), KEEP).unwrap(), (Bytes::from_static(text), 23));
    }

    #[test]
    fn a_decompression_bomb_stops_at_the_cap() {
        let bomb = gzip(&vec![0u8; 1 << 20]);
        assert!(bomb.len() < 4096);
        let e = decode("gzip", &bomb, KEEP).unwrap_err();
        assert_eq!(e.kind, ErrorKind::BodyTooLarge, "{}", e.message);
        assert!(e.message.contains("max_body (1 KiB)"), "{}", e.message);
        // Discarded, it is only counted.
        let (body, decoded) = decode("gzip", &bomb, Limits { keep: false, max: 1024 }).unwrap();
        assert!(body.is_empty());
        assert_eq!(decoded, 1 << 20);
    }

    #[test]
    fn corrupt_data_is_a_decode_error() {
        let e = decode("gzip", b"this is not gzip at all", KEEP).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Decode, "{}", e.message);
    }

    #[test]
    fn unknown_codings_pass_through() {
        assert_eq!(decode("zstd", b"abc", KEEP).unwrap(), (Bytes::from_static(b"abc"), 3));
    }

    #[test]
    fn sizes_parse_with_units() {
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert_eq!(parse_size("512KiB"), Ok(512 << 10));
        assert_eq!(parse_size(" 16 MiB "), Ok(16 << 20));
        assert_eq!(parse_size("1.5MB"), Ok(1_500_000));
        assert_eq!(parse_size("2gi"), Ok(2 << 30));
        assert!(parse_size("16 furlongs").unwrap_err().contains("16MiB"));
        assert!(parse_size("0").unwrap_err().contains("at least 1 byte"));
        assert!(parse_size("MiB").is_err());
    }

    #[test]
    fn byte_sizes_read_well() {
        assert_eq!(fmt_bytes(300), "300 B");
        assert_eq!(fmt_bytes(1024), "1 KiB");
        assert_eq!(fmt_bytes(1536), "1.5 KiB");
        assert_eq!(fmt_bytes(16 << 20), "16 MiB");
    }
}
