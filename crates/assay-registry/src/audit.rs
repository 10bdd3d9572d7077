//! The audit log: one JSON object per line, per decision. Never a token or a key.

use serde_json::{Map, Value};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Mutex;

pub struct Audit {
    file: Mutex<File>,
}

impl Audit {
    pub fn open(path: &Path) -> io::Result<Audit> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)?;
        Ok(Audit {
            file: Mutex::new(file),
        })
    }

    /// Records `action` by `who` (tenant/token id) with its `decision` and details.
    pub fn log(
        &self,
        action: &str,
        who: Option<&crate::auth::Caller>,
        decision: &str,
        kv: &[(&str, &str)],
    ) {
        let mut m = Map::new();
        m.insert("ts".into(), crate::now_rfc3339().into());
        m.insert("action".into(), action.into());
        m.insert("decision".into(), decision.into());
        if let Some(c) = who {
            m.insert("tenant".into(), c.tenant.clone().into());
            m.insert("token_id".into(), c.token_id.into());
            m.insert("scope".into(), c.scope.as_str().into());
        }
        for (k, v) in kv {
            m.insert((*k).into(), Value::String((*v).into()));
        }
        let mut line = Value::Object(m).to_string();
        line.push('\n');
        let mut f = self.file.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = f.write_all(line.as_bytes()) {
            tracing::error!(error = %e, "cannot write the audit log");
        }
    }
}
