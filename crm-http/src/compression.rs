//! Response compression: gzip for the clients that accept it, of the answers worth it.
//!
//! Browsers and most HTTP clients send `Accept-Encoding: gzip` on every request, so this
//! sits on the hot path of every API call. What it does, and why (measured in
//! `BENCHMARKS.md`, "Request path at the floor"):
//!
//! * **Only bodies of at least [`MIN_COMPRESSED_BYTES`]** are compressed. A single record is
//!   a few hundred bytes: gzip would save a few hundred bytes on a response whose headers
//!   alone are about as large, for a deflate pass that costs more than the whole rest of the
//!   request. Lists, searches, the OpenAPI document and error lists of many fields are
//!   compressed.
//! * **Level 1** ("fastest"): on JSON lists it keeps most of the size reduction of the
//!   default level 6 at a fraction of the CPU.
//! * **No encoder state is allocated per response.** A deflate compressor carries a few
//!   hundred KiB of tables; allocating, zeroing and freeing them per response (what a
//!   streaming encoder layer does) shows up in profiles as `memset`, page faults and TLB
//!   shoot-downs. Each thread keeps one raw-deflate compressor and resets it per response;
//!   the gzip framing (RFC 1952 header, CRC-32, length) is written around its output here.
//! * Only bodies whose size is known (the adapter's JSON answers are built in memory) are
//!   compressed; a streaming body passes through untouched, so nothing is buffered that
//!   was not already in memory.
//!
//! `Accept-Encoding` is honoured with its q-values (`gzip;q=0` refuses gzip; `*` accepts
//! it). Compressible responses carry `Vary: Accept-Encoding`. The `ETag` is left as it is:
//! it names the record's version, which `If-Match` must keep matching whatever the transfer
//! coding.

use std::cell::RefCell;

use axum::body::{Body, HttpBody as _};
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use flate2::{Compress, Compression, FlushCompress, Status};

/// Smallest body compressed, in bytes. Below it gzip saves less than the size of the
/// response's headers and costs more CPU than the rest of the request.
pub const MIN_COMPRESSED_BYTES: usize = 1024;

/// Largest body compressed in memory, in bytes (larger ones pass through uncompressed).
const MAX_COMPRESSED_BYTES: usize = 16 << 20;

thread_local! {
    /// One raw-deflate compressor per thread, reset per response (see the module docs).
    static DEFLATE: RefCell<Compress> = RefCell::new(Compress::new(Compression::fast(), false));
}

/// Whether the request's `Accept-Encoding` accepts gzip (RFC 9110 §12.5.3).
fn accepts_gzip(headers: &HeaderMap) -> bool {
    let mut gzip = None;
    let mut any = None;
    for value in headers.get_all(header::ACCEPT_ENCODING) {
        let Ok(value) = value.to_str() else { continue };
        for item in value.split(',') {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or("").trim();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q=").or(p.trim().strip_prefix("Q=")))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
                gzip = Some(q > 0.0);
            } else if coding == "*" {
                any = Some(q > 0.0);
            }
        }
    }
    gzip.or(any).unwrap_or(false)
}

/// Whether a response of this type is text worth compressing.
fn compressible(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| {
            let t = t.trim_start();
            t.starts_with("application/json")
                || t.starts_with("application/problem+json")
                || t.starts_with("text/")
        })
}

/// `data` as a gzip member (RFC 1952), compressed at level 1 with this thread's compressor.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    // Header: magic, deflate, no flags, no mtime, no extra flags, OS unknown.
    const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];
    let mut out = Vec::with_capacity(HEADER.len() + data.len() / 3 + 64);
    out.extend_from_slice(&HEADER);
    DEFLATE.with(|cell| {
        let mut deflate = cell.borrow_mut();
        deflate.reset();
        loop {
            let consumed = usize::try_from(deflate.total_in()).unwrap_or(usize::MAX);
            let status = deflate
                .compress_vec(
                    &data[consumed.min(data.len())..],
                    &mut out,
                    FlushCompress::Finish,
                )
                .expect("deflate of an in-memory buffer cannot fail");
            if status == Status::StreamEnd {
                break;
            }
            // Out of room: grow and go on.
            out.reserve(out.capacity().max(256));
        }
    });
    let mut crc = flate2::Crc::new();
    crc.update(data);
    out.extend_from_slice(&crc.sum().to_le_bytes());
    // ISIZE: the input length modulo 2^32, as the format defines it.
    out.extend_from_slice(&(data.len() as u64 as u32).to_le_bytes());
    out
}

/// The compression middleware; see the [module docs](self).
pub(crate) async fn compress(req: Request, next: Next) -> Response {
    let wants_gzip = accepts_gzip(req.headers()) && req.method() != Method::HEAD;
    let response = next.run(req).await;
    let status = response.status();
    if !compressible(response.headers())
        || response.headers().contains_key(header::CONTENT_ENCODING)
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
        || status.is_informational()
    {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    parts
        .headers
        .append(header::VARY, HeaderValue::from_static("accept-encoding"));
    let size = body.size_hint().exact();
    let worth = size
        .is_some_and(|n| (MIN_COMPRESSED_BYTES as u64..=MAX_COMPRESSED_BYTES as u64).contains(&n));
    if !wants_gzip || !worth {
        return Response::from_parts(parts, body);
    }
    let bytes = match axum::body::to_bytes(body, MAX_COMPRESSED_BYTES).await {
        Ok(bytes) => bytes,
        // A body that fails while being read fails the same way uncompressed.
        Err(e) => {
            tracing::warn!(error = %e, "response body failed while being compressed");
            parts.headers.remove(header::CONTENT_LENGTH);
            return Response::from_parts(parts, Body::empty());
        }
    };
    let compressed = gzip(&bytes);
    parts
        .headers
        .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    parts
        .headers
        .insert(header::CONTENT_LENGTH, compressed.len().into());
    Response::from_parts(parts, Body::from(compressed))
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn accepts(v: &str) -> bool {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT_ENCODING, HeaderValue::from_str(v).unwrap());
        accepts_gzip(&h)
    }

    #[test]
    fn accept_encoding_is_read_with_its_q_values() {
        assert!(accepts("gzip"));
        assert!(accepts("gzip, deflate, br, zstd"));
        assert!(accepts("br;q=1.0, gzip;q=0.8"));
        assert!(accepts("*"));
        assert!(accepts("identity, *;q=0.5"));
        assert!(!accepts("gzip;q=0"));
        assert!(!accepts("gzip;q=0, *"));
        assert!(!accepts("identity"));
        assert!(!accepts("br, *;q=0"));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn gzip_output_decodes_to_the_input_every_time() {
        // Several sizes, including ones that make the output outgrow its first buffer
        // (incompressible bytes), through the one reused compressor.
        let mut seed = 0x2545_f491_u32;
        let mut noise = || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            (seed & 0xff) as u8
        };
        for size in [0usize, 1, 1023, 4096, 100_000, 300_000] {
            let text: Vec<u8> = (0..size).map(|i| b"{\"id\":\"abc\"}"[i % 12]).collect();
            let random: Vec<u8> = (0..size).map(|_| noise()).collect();
            for input in [text, random] {
                let packed = gzip(&input);
                let mut back = Vec::new();
                flate2::read::GzDecoder::new(packed.as_slice())
                    .read_to_end(&mut back)
                    .unwrap();
                assert_eq!(back, input, "size {size}");
            }
        }
    }
}
