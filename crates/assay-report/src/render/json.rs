use crate::Report;
use std::io::{self, Write};

/// The stable JSON report shape documented in ARCHITECTURE.md.
pub fn render_json(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, report).map_err(json_io_error)?;
    out.write_all(b"\n")
}

/// Keeps the I/O error kind (a broken pipe stays a broken pipe).
pub(crate) fn json_io_error(e: serde_json::Error) -> io::Error {
    match e.io_error_kind() {
        Some(kind) => io::Error::from(kind),
        None => io::Error::other(e),
    }
}
