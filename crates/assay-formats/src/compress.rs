//! Bounded decompression for every compressor a model file may come wrapped in.
//!
//! Decompressors write into any `Write` through a [`LimitedWriter`], so the caller
//! decides whether output goes to memory or to a spill file, and a decompression bomb
//! stops at the limit instead of filling memory or disk.

use std::io::{self, Read, Write};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    Gzip,
    /// A raw zlib stream (RFC 1950), as joblib's `zlib` compressor writes.
    Zlib,
    Bzip2,
    Xz,
    /// The legacy `.lzma` ("alone") format, as joblib's `lzma` compressor writes.
    Lzma,
    Lz4Frame,
}

impl Compression {
    pub fn name(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Zlib => "zlib",
            Compression::Bzip2 => "bzip2",
            Compression::Xz => "xz",
            Compression::Lzma => "lzma",
            Compression::Lz4Frame => "lz4",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DecompressError {
    #[error("decompressed size exceeds the limit of {limit} bytes")]
    LimitExceeded { limit: u64 },
    #[error("corrupt {format} stream: {message}")]
    Corrupt {
        format: &'static str,
        message: String,
    },
    #[error("I/O error while decompressing: {0}")]
    Io(io::Error),
}

/// Counts bytes and refuses to write past `limit`.
pub struct LimitedWriter<W: Write> {
    pub inner: W,
    pub written: u64,
    pub limit: u64,
    pub exceeded: bool,
}

impl<W: Write> LimitedWriter<W> {
    pub fn new(inner: W, limit: u64) -> Self {
        LimitedWriter {
            inner,
            written: 0,
            limit,
            exceeded: false,
        }
    }
}

impl<W: Write> Write for LimitedWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = self.limit.saturating_sub(self.written);
        if buf.len() as u64 > room {
            self.exceeded = true;
            return Err(io::Error::other("decompression limit reached"));
        }
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Decompresses all of `input` into `out`, writing at most `limit` bytes.
/// Returns the number of bytes written.
pub fn decompress_to<W: Write>(
    kind: Compression,
    input: &[u8],
    out: W,
    limit: u64,
) -> Result<u64, DecompressError> {
    let mut w = LimitedWriter::new(out, limit);
    let res: Result<(), String> = match kind {
        Compression::Gzip => copy(flate2::read::MultiGzDecoder::new(input), &mut w),
        Compression::Zlib => copy(flate2::read::ZlibDecoder::new(input), &mut w),
        Compression::Bzip2 => copy(bzip2::read::MultiBzDecoder::new(input), &mut w),
        Compression::Lz4Frame => copy(lz4_flex::frame::FrameDecoder::new(input), &mut w),
        // lzma-rs has arithmetic that can overflow on crafted headers (found by
        // `cargo fuzz run compress`); a panic there must become an error, not a crash.
        Compression::Xz => no_panic(|| {
            let mut r = io::BufReader::new(input);
            lzma_rs::xz_decompress(&mut r, &mut w).map_err(|e| e.to_string())
        }),
        Compression::Lzma => no_panic(|| {
            let mut r = io::BufReader::new(input);
            lzma_rs::lzma_decompress(&mut r, &mut w).map_err(|e| e.to_string())
        }),
    };
    if w.exceeded {
        return Err(DecompressError::LimitExceeded { limit });
    }
    match res {
        Ok(()) => {
            w.flush().map_err(DecompressError::Io)?;
            Ok(w.written)
        }
        Err(message) => Err(DecompressError::Corrupt {
            format: kind.name(),
            message,
        }),
    }
}

/// Runs a third-party decoder, turning a panic inside it into an error.
fn no_panic(f: impl FnOnce() -> Result<(), String>) -> Result<(), String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .unwrap_or_else(|_| Err("decoder failed on malformed input".to_string()))
}

fn copy<R: Read, W: Write>(mut r: R, w: &mut W) -> Result<(), String> {
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        match r.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => w.write_all(&buf[..n]).map_err(|e| e.to_string())?,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// Decompresses into memory (for small payloads found inside pickles).
pub fn decompress_vec(
    kind: Compression,
    input: &[u8],
    limit: u64,
) -> Result<Vec<u8>, DecompressError> {
    let mut v = Vec::new();
    decompress_to(kind, input, &mut v, limit)?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An xz stream whose index size overflowed inside lzma-rs: an error, not a panic.
    #[test]
    fn crafted_xz_index_is_an_error() {
        let mut xz = b"\xfd7zXZ\0\0\x04\xe6\xd6\xb4\x46".to_vec();
        xz.extend([0u8; 12]);
        xz.extend(b"\xff\xff\xff\xff\0\0YZ");
        for kind in [Compression::Xz, Compression::Lzma] {
            let _ = decompress_vec(kind, &xz, 1 << 20);
        }
    }
}
