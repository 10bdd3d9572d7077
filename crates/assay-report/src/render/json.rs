use crate::Report;
use std::io::{self, Write};

/// The stable JSON report shape documented in ARCHITECTURE.md.
pub fn render_json(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, report).map_err(io::Error::other)?;
    out.write_all(b"\n")
}
