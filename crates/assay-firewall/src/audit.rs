//! The audit log: one JSON line per decision (request id, endpoint, direction, verdict, and
//! for each finding its rule, action, place and kind). It is built only from rule codes,
//! fixed descriptions and JSON paths, so it can never hold the matched secret, the PII or
//! the prompt, nor any header. Lines are written by a background thread.

use crate::policy::Action;
use crate::scan::{Direction, Finding};
use serde::Serialize;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex, mpsc};

/// Where audit lines go.
#[derive(Clone)]
pub enum Audit {
    Off,
    /// A writer thread appending to a file.
    File(mpsc::SyncSender<String>),
    /// In memory, for tests.
    Memory(Arc<Mutex<Vec<String>>>),
}

/// Lines queued before the request path starts dropping them rather than waiting.
const QUEUE: usize = 65_536;

#[derive(Serialize)]
pub struct AuditFinding<'a> {
    pub rule: &'a str,
    pub action: Action,
    /// JSON path of the scanned text, e.g. `messages[1].content` or `choices[0].delta`.
    pub location: &'a str,
    pub detail: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f32>,
}

#[derive(Serialize)]
pub struct Record<'a> {
    pub ts_ms: u128,
    pub request_id: &'a str,
    pub endpoint: &'a str,
    pub direction: Direction,
    pub verdict: Action,
    pub stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_status: Option<u16>,
    pub findings: Vec<AuditFinding<'a>>,
}

impl Audit {
    /// Appends to `path` (created if missing) from a background thread.
    pub fn file(path: &Path) -> std::io::Result<Audit> {
        let mut f = std::io::BufWriter::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)?,
        );
        let (tx, rx) = mpsc::sync_channel::<String>(QUEUE);
        std::thread::Builder::new()
            .name("assay-firewall-audit".into())
            .spawn(move || {
                while let Ok(line) = rx.recv() {
                    let _ = f.write_all(line.as_bytes());
                    // Flush when the queue is drained, so a quiet proxy's log is current.
                    if let Ok(more) = rx.try_recv() {
                        let _ = f.write_all(more.as_bytes());
                    } else {
                        let _ = f.flush();
                    }
                }
                let _ = f.flush();
            })?;
        Ok(Audit::File(tx))
    }

    pub fn memory() -> (Audit, Arc<Mutex<Vec<String>>>) {
        let v = Arc::new(Mutex::new(Vec::new()));
        (Audit::Memory(v.clone()), v)
    }

    pub fn record(&self, r: &Record<'_>) {
        if matches!(self, Audit::Off) {
            return;
        }
        let Ok(mut line) = serde_json::to_string(r) else {
            return;
        };
        line.push('\n');
        match self {
            Audit::Off => {}
            Audit::File(tx) => {
                let _ = tx.try_send(line);
            }
            Audit::Memory(v) => v.lock().unwrap_or_else(|p| p.into_inner()).push(line),
        }
    }
}

/// Audit view of located findings.
pub fn findings<'a>(located: &'a [(String, Finding)]) -> Vec<AuditFinding<'a>> {
    located
        .iter()
        .map(|(loc, f)| AuditFinding {
            rule: f.rule,
            action: f.action,
            location: loc,
            detail: f.detail,
            score: f.score.map(|s| (s * 1000.0).round() / 1000.0),
        })
        .collect()
}

pub fn now_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}
