//! A small, lenient PEM reader: every `-----BEGIN X-----` … `-----END X-----` block in a
//! file, in order, with text around and between blocks ignored (as OpenSSL does, so an
//! `EC PARAMETERS` block before a key or a certificate bundle with comments both load).

use crate::error::KeyError;
use base64::Engine as _;

/// Largest key or certificate file read.
pub(crate) const MAX_PEM_BYTES: usize = 4 << 20;
/// Most blocks taken from one file.
pub(crate) const MAX_PEM_BLOCKS: usize = 1_000;

#[derive(Debug, Clone)]
pub(crate) struct PemBlock {
    pub label: String,
    pub der: Vec<u8>,
    /// Legacy OpenSSL encryption (`Proc-Type: 4,ENCRYPTED` header).
    pub encrypted: bool,
}

pub(crate) fn parse(text: &[u8]) -> Result<Vec<PemBlock>, KeyError> {
    if text.len() > MAX_PEM_BYTES {
        return Err(KeyError::Pem(format!(
            "file is larger than {MAX_PEM_BYTES} bytes"
        )));
    }
    let text = String::from_utf8_lossy(text);
    let mut blocks = Vec::new();
    let mut lines = text.lines().map(str::trim);
    while let Some(line) = lines.next() {
        let Some(label) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
        else {
            continue;
        };
        if blocks.len() >= MAX_PEM_BLOCKS {
            return Err(KeyError::Pem(format!(
                "more than {MAX_PEM_BLOCKS} PEM blocks"
            )));
        }
        let end = format!("-----END {label}-----");
        let mut body = String::new();
        let mut encrypted = false;
        let mut closed = false;
        for l in lines.by_ref() {
            if l == end {
                closed = true;
                break;
            }
            if let Some((name, value)) = l.split_once(':') {
                if name.trim().eq_ignore_ascii_case("Proc-Type") && value.contains("ENCRYPTED") {
                    encrypted = true;
                }
                continue;
            }
            body.push_str(l);
        }
        if !closed {
            return Err(KeyError::Pem(format!("`{label}` block has no END line")));
        }
        let der = base64::engine::general_purpose::STANDARD
            .decode(body.as_bytes())
            .map_err(|e| KeyError::Pem(format!("`{label}` block is not valid base64: {e}")))?;
        blocks.push(PemBlock {
            label: label.to_string(),
            der,
            encrypted,
        });
    }
    Ok(blocks)
}

/// PEM text of a DER value, as OpenSSL and Python's `cryptography` write it: 64-column
/// base64 lines, LF line ends, a final newline.
pub(crate) fn encode(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        // base64 output is ASCII, so any chunk boundary is a char boundary.
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_blocks_with_text_around_them() {
        let text = "comment\r\n-----BEGIN EC PARAMETERS-----\r\nBggqhkjOPQMBBw==\r\n-----END EC PARAMETERS-----\nx\n-----BEGIN A-----\nAAEC\nAw==\n-----END A-----\n";
        let b = parse(text.as_bytes()).unwrap();
        assert_eq!(b.len(), 2);
        assert_eq!(b[0].label, "EC PARAMETERS");
        assert_eq!(b[1].der, vec![0, 1, 2, 3]);
        assert!(!b[1].encrypted);
    }

    #[test]
    fn flags_legacy_encryption_and_rejects_unclosed_blocks() {
        let enc = "-----BEGIN EC PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nAAAA\n-----END EC PRIVATE KEY-----\n";
        assert!(parse(enc.as_bytes()).unwrap()[0].encrypted);
        assert!(parse(b"-----BEGIN A-----\nAAAA\n").is_err());
        assert!(parse(b"-----BEGIN A-----\n!!!!\n-----END A-----\n").is_err());
    }

    #[test]
    fn encode_wraps_at_64_columns() {
        let pem = encode("PUBLIC KEY", &[7u8; 91]);
        let lines: Vec<&str> = pem.lines().collect();
        assert_eq!(lines[0], "-----BEGIN PUBLIC KEY-----");
        assert_eq!(lines[1].len(), 64);
        assert_eq!(lines.last(), Some(&"-----END PUBLIC KEY-----"));
        assert!(pem.ends_with("-----\n"));
        assert_eq!(parse(pem.as_bytes()).unwrap()[0].der, vec![7u8; 91]);
    }
}
