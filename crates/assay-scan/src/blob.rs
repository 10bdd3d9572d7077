//! Bytes to scan: a memory map of a file, a slice of one, or decompressed data held in
//! memory or — past a threshold — in an anonymous temporary file that is memory-mapped.
#![allow(unsafe_code)]

use std::fs::File;
use std::io::{self, Write};
use std::ops::Deref;

pub enum Blob {
    Mem(Vec<u8>),
    Map(memmap2::Mmap),
}

impl Deref for Blob {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Blob::Mem(v) => v,
            Blob::Map(m) => m,
        }
    }
}

/// Maps a file read-only.
///
/// Safety of the mapping: the scanner only reads, and a file truncated underneath a
/// running scan can at worst raise SIGBUS; it cannot make safe code unsound in a way an
/// attacker controls, since the bytes are treated as untrusted anyway.
pub fn map_file(file: &File, len: u64) -> io::Result<Blob> {
    if len == 0 {
        return Ok(Blob::Mem(Vec::new()));
    }
    // SAFETY: read-only private mapping of a file we opened; see above.
    let map = unsafe { memmap2::MmapOptions::new().map(file)? };
    #[cfg(unix)]
    {
        let _ = map.advise(memmap2::Advice::Sequential);
    }
    Ok(Blob::Map(map))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpillStop {
    /// `max_expanded_size` reached.
    Size,
    /// Expansion ratio beyond `max_ratio`.
    Ratio,
}

/// A writer for decompressed data that enforces size and ratio limits and spills to a
/// temporary file past a threshold.
pub struct SpillWriter {
    mem: Vec<u8>,
    file: Option<File>,
    pub written: u64,
    input_len: u64,
    threshold: u64,
    max_size: u64,
    max_ratio: u64,
    bomb_min: u64,
    pub stopped: Option<SpillStop>,
}

impl SpillWriter {
    pub fn new(input_len: u64, limits: &crate::Limits, budget_left: u64) -> Self {
        SpillWriter {
            mem: Vec::new(),
            file: None,
            written: 0,
            input_len,
            threshold: limits.spill_threshold,
            max_size: limits.max_expanded_size.min(budget_left),
            max_ratio: limits.max_ratio,
            bomb_min: limits.bomb_min_size,
            stopped: None,
        }
    }

    pub fn finish(mut self) -> io::Result<Blob> {
        match self.file.take() {
            None => Ok(Blob::Mem(self.mem)),
            Some(mut f) => {
                f.flush()?;
                let len = self.written;
                map_file(&f, len)
            }
        }
    }
}

impl Write for SpillWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let next = self.written + buf.len() as u64;
        if next > self.max_size {
            self.stopped = Some(SpillStop::Size);
            return Err(io::Error::other("size limit"));
        }
        if next > self.bomb_min && next > self.input_len.saturating_mul(self.max_ratio) {
            self.stopped = Some(SpillStop::Ratio);
            return Err(io::Error::other("ratio limit"));
        }
        if self.file.is_none() && next > self.threshold {
            let mut f = tempfile::tempfile()?;
            f.write_all(&self.mem)?;
            self.mem = Vec::new();
            self.file = Some(f);
        }
        match &mut self.file {
            Some(f) => f.write_all(buf)?,
            None => self.mem.extend_from_slice(buf),
        }
        self.written = next;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
