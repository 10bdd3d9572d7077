//! Text files and members (UTF-8 without NUL bytes, recognised by content): searched for
//! secrets, labelled `json`, `python` or `text`, and, for Python members of archives,
//! analysed as code. Top-level Python files are analysed by the repository pass
//! (`crate::repo`), which knows which of them `trust_remote_code` would run.
//!
//! Also here: a JSON reader that accepts what Python's `json.loads` accepts (`NaN`,
//! `Infinity`, lone surrogates, duplicate keys with the last one winning), so that a
//! config cannot hide an `auto_map` from Assay behind a construct a stricter parser
//! rejects.

use crate::analyze::{python, secrets};
use crate::engine::{FileScan, Format, Loc};
use crate::rules::code;
use assay_report::Severity;

/// Text larger than this is labelled by its first bytes and not checked as JSON.
const MAX_JSON_LABEL_BYTES: usize = 256 << 20;
/// Python's `json` gives up (RecursionError) near 1000 levels; configs nest a handful.
pub const MAX_JSON_DEPTH: usize = 500;

/// Recognises, labels and scans a text file or member. Returns `Format::Unknown` for
/// anything that is not text (and is not named as Python source).
pub fn scan(ctx: &mut FileScan, data: &[u8], loc: &Loc, _depth: u32) -> Format {
    let name = match &loc.member {
        Some(m) => m.rsplit("!/").next().unwrap_or(m).to_string(),
        None => ctx.path.clone(),
    };
    let is_python = name.ends_with(".py");
    let Some(text) = as_text(data) else {
        if is_python && loc.member.is_some() {
            // Python honours coding cookies; analyse what the ASCII structure says and
            // report that the file could not be read as UTF-8.
            let lossy: String = data.iter().map(|&b| b as char).collect();
            let result = python::analyse(&lossy);
            python::report(ctx, loc, &lossy, result, true, &python::Role::ArchiveMember);
            ctx.add(
                code::HFR020,
                Severity::High,
                loc,
                None,
                "Python source is not UTF-8 text; it could not be analysed completely".into(),
                None,
            );
            ctx.incomplete = true;
            return Format::Python;
        }
        // Top-level Python files are judged by the repository pass.
        return if is_python {
            Format::Python
        } else {
            Format::Unknown
        };
    };
    for s in secrets::find(text) {
        ctx.add(
            s.rule,
            Severity::Medium,
            loc,
            Some(s.offset as u64),
            format!("{} in plain text", s.kind),
            Some(s.masked),
        );
    }
    if data.len() > secrets::MAX_SECRET_SCAN_BYTES {
        ctx.add(
            code::SEC011,
            Severity::Info,
            loc,
            None,
            format!(
                "text larger than {} MiB; only its beginning was searched for secrets",
                secrets::MAX_SECRET_SCAN_BYTES >> 20
            ),
            None,
        );
    }
    if is_python {
        if loc.member.is_some() {
            python::report(
                ctx,
                loc,
                text,
                python::analyse(text),
                false,
                &python::Role::ArchiveMember,
            );
        }
        return Format::Python;
    }
    if looks_like_json(data) {
        Format::Json
    } else {
        Format::Text
    }
}

/// The bytes as text, when they are text: no NUL, valid UTF-8 (a character cut by the
/// secret-scan bound at the very end is allowed). Only the scanned prefix is checked.
pub fn as_text(data: &[u8]) -> Option<&str> {
    let prefix = data.get(..data.len().min(secrets::MAX_SECRET_SCAN_BYTES))?;
    if prefix.contains(&0) {
        return None;
    }
    match std::str::from_utf8(prefix) {
        Ok(t) => Some(t),
        Err(e) if e.error_len().is_none() && prefix.len() < data.len() => {
            std::str::from_utf8(prefix.get(..e.valid_up_to())?).ok()
        }
        Err(_) => None,
    }
}

fn looks_like_json(data: &[u8]) -> bool {
    let first = data.iter().find(|b| !b.is_ascii_whitespace());
    if !matches!(first, Some(b'{' | b'[')) {
        return false;
    }
    if data.len() > MAX_JSON_LABEL_BYTES {
        return true;
    }
    serde_json::from_slice::<serde::de::IgnoredAny>(data).is_ok()
        || std::str::from_utf8(data).is_ok_and(|t| parse_json(t).is_ok())
}

/// A JSON value as Python's `json.loads` builds it.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Number(f64),
    String(String),
    Array(Vec<Json>),
    /// Members in file order; duplicates are kept and [`Json::get`] returns the last,
    /// as a Python dict would.
    Object(Vec<(String, Json)>),
}

impl Json {
    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Object(m) => m.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::String(s) => Some(s),
            _ => None,
        }
    }

    /// Members with duplicates resolved (last wins), in first-seen order.
    pub fn members(&self) -> Vec<(&str, &Json)> {
        let Json::Object(m) = self else {
            return Vec::new();
        };
        let mut out: Vec<(&str, &Json)> = Vec::new();
        for (k, v) in m {
            if let Some(slot) = out.iter_mut().find(|(ok, _)| *ok == k) {
                slot.1 = v;
            } else {
                out.push((k, v));
            }
        }
        out
    }
}

/// Parses JSON the way Python's `json.loads` does.
pub fn parse_json(text: &str) -> Result<Json, String> {
    let mut p = JsonParser {
        s: text.as_bytes(),
        i: 0,
    };
    p.ws();
    let v = p.value(0)?;
    p.ws();
    if p.i != p.s.len() {
        return Err(format!("extra data at byte {}", p.i));
    }
    Ok(v)
}

struct JsonParser<'a> {
    s: &'a [u8],
    i: usize,
}

impl JsonParser<'_> {
    fn ws(&mut self) {
        while matches!(self.s.get(self.i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn err<T>(&self, what: &str) -> Result<T, String> {
        Err(format!("{what} at byte {}", self.i))
    }

    fn eat(&mut self, lit: &str) -> bool {
        if self.s.get(self.i..self.i + lit.len()) == Some(lit.as_bytes()) {
            self.i += lit.len();
            true
        } else {
            false
        }
    }

    fn value(&mut self, depth: usize) -> Result<Json, String> {
        if depth > MAX_JSON_DEPTH {
            return self.err("nested too deeply");
        }
        match self.s.get(self.i) {
            Some(b'{') => self.object(depth),
            Some(b'[') => self.array(depth),
            Some(b'"') => self.string().map(Json::String),
            Some(b'n') if self.eat("null") => Ok(Json::Null),
            Some(b't') if self.eat("true") => Ok(Json::Bool(true)),
            Some(b'f') if self.eat("false") => Ok(Json::Bool(false)),
            Some(b'N') if self.eat("NaN") => Ok(Json::Number(f64::NAN)),
            Some(b'I') if self.eat("Infinity") => Ok(Json::Number(f64::INFINITY)),
            Some(b'-') if self.eat("-Infinity") => Ok(Json::Number(f64::NEG_INFINITY)),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => self.err("expected a value"),
        }
    }

    fn object(&mut self, depth: usize) -> Result<Json, String> {
        self.i += 1;
        let mut members = Vec::new();
        self.ws();
        if self.eat("}") {
            return Ok(Json::Object(members));
        }
        loop {
            self.ws();
            if self.s.get(self.i) != Some(&b'"') {
                return self.err("expected a property name");
            }
            let k = self.string()?;
            self.ws();
            if !self.eat(":") {
                return self.err("expected ':'");
            }
            self.ws();
            let v = self.value(depth + 1)?;
            members.push((k, v));
            self.ws();
            if self.eat(",") {
                continue;
            }
            if self.eat("}") {
                return Ok(Json::Object(members));
            }
            return self.err("expected ',' or '}'");
        }
    }

    fn array(&mut self, depth: usize) -> Result<Json, String> {
        self.i += 1;
        let mut items = Vec::new();
        self.ws();
        if self.eat("]") {
            return Ok(Json::Array(items));
        }
        loop {
            self.ws();
            items.push(self.value(depth + 1)?);
            self.ws();
            if self.eat(",") {
                continue;
            }
            if self.eat("]") {
                return Ok(Json::Array(items));
            }
            return self.err("expected ',' or ']'");
        }
    }

    fn number(&mut self) -> Result<Json, String> {
        let start = self.i;
        self.eat("-");
        match self.s.get(self.i) {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => {
                while matches!(self.s.get(self.i), Some(b'0'..=b'9')) {
                    self.i += 1;
                }
            }
            _ => return self.err("expected a digit"),
        }
        if self.s.get(self.i) == Some(&b'.') && matches!(self.s.get(self.i + 1), Some(b'0'..=b'9'))
        {
            self.i += 1;
            while matches!(self.s.get(self.i), Some(b'0'..=b'9')) {
                self.i += 1;
            }
        }
        if matches!(self.s.get(self.i), Some(b'e' | b'E')) {
            let save = self.i;
            self.i += 1;
            if matches!(self.s.get(self.i), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if matches!(self.s.get(self.i), Some(b'0'..=b'9')) {
                while matches!(self.s.get(self.i), Some(b'0'..=b'9')) {
                    self.i += 1;
                }
            } else {
                // Python's pattern leaves a bare `e` unconsumed (and then fails on it).
                self.i = save;
            }
        }
        let text = std::str::from_utf8(self.s.get(start..self.i).unwrap_or(b"0")).unwrap_or("0");
        // Python makes arbitrarily large integers; a float approximation is enough here.
        Ok(Json::Number(text.parse::<f64>().unwrap_or(f64::INFINITY)))
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let h = self
            .s
            .get(self.i..self.i + 4)
            .and_then(|h| std::str::from_utf8(h).ok())
            .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
            .and_then(|h| u32::from_str_radix(h, 16).ok());
        match h {
            Some(v) => {
                self.i += 4;
                Ok(v)
            }
            None => self.err("invalid \\uXXXX escape"),
        }
    }

    fn string(&mut self) -> Result<String, String> {
        self.i += 1;
        let mut out = String::new();
        loop {
            // Copy a run of plain characters at once.
            let start = self.i;
            while let Some(&b) = self.s.get(self.i) {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.i += 1;
            }
            if let Some(run) = self.s.get(start..self.i) {
                out.push_str(&String::from_utf8_lossy(run));
            }
            match self.s.get(self.i) {
                Some(b'"') => {
                    self.i += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.i += 1;
                    let Some(&e) = self.s.get(self.i) else {
                        return self.err("unterminated string");
                    };
                    self.i += 1;
                    match e {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let mut c = self.hex4()?;
                            if (0xd800..0xdc00).contains(&c)
                                && self.s.get(self.i..self.i + 2) == Some(b"\\u")
                            {
                                let save = self.i;
                                self.i += 2;
                                let lo = self.hex4()?;
                                if (0xdc00..0xe000).contains(&lo) {
                                    c = 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00);
                                } else {
                                    self.i = save;
                                }
                            }
                            // Python keeps lone surrogates; Rust strings cannot.
                            out.push(char::from_u32(c).unwrap_or('\u{fffd}'));
                        }
                        _ => return self.err("invalid escape"),
                    }
                }
                Some(_) => return self.err("control character in string"),
                None => return self.err("unterminated string"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_recognised_by_content() {
        assert!(as_text(b"hello\n").is_some());
        assert!(as_text(b"").is_some());
        assert!(as_text(b"a\0b").is_none());
        assert!(as_text(b"\xff\xfe").is_none());
        assert!(as_text("caf\u{e9}".as_bytes()).is_some());
    }

    #[test]
    fn json_like_python() {
        let v = parse_json(r#"{"a": 1, "auto_map": {"x": "bad.B"}, "auto_map": {"AutoModel": "m.M"}, "n": NaN, "i": -Infinity, "s": "\ud800\u00e9\ud83d\ude00"}"#).unwrap();
        assert_eq!(
            v.get("auto_map")
                .and_then(|m| m.get("AutoModel"))
                .and_then(Json::as_str),
            Some("m.M")
        );
        assert_eq!(
            v.get("s").and_then(Json::as_str),
            Some("\u{fffd}\u{e9}\u{1f600}")
        );
        assert!(parse_json("{\"a\": 1} x").is_err());
        assert!(parse_json("{\"a\": \"\n\"}").is_err());
        assert!(parse_json("[1e400, 0.5, -0, 12]").is_ok());
        assert!(parse_json(&"[".repeat(100_000)).is_err());
        assert!(parse_json("\u{feff}{}").is_err());
        assert_eq!(
            v.members().iter().filter(|(k, _)| *k == "auto_map").count(),
            1
        );
    }
}
