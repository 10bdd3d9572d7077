//! Static evaluation of the few pure functions that attackers use to hide a payload
//! from scanners before handing it to a loader: base64/hex decoders, decompressors,
//! `io.BytesIO`, `bytes(...)`, `_codecs.encode(s, 'latin1')`. Everything else is opaque.

use super::value::{Obj, Value};
use crate::compress::{Compression, DecompressError, decompress_to};
use base64::Engine;
use std::cell::Cell;

const MAX_EVAL_DEPTH: usize = 16;

pub struct Evaluator<'r, 'a> {
    pub objs: &'r [Obj<'a>],
    /// Largest value (result or intermediate) kept.
    pub max_len: usize,
    /// Bytes the evaluator may still copy or decompress, over all its evaluations and
    /// whether or not they succeed: a stream can hand the same data (or the same bomb)
    /// to a loader many times.
    pub budget: Cell<usize>,
    /// Set when an evaluation gave up because `budget` ran out.
    pub exhausted: Cell<bool>,
}

impl<'r, 'a> Evaluator<'r, 'a> {
    pub fn new(objs: &'r [Obj<'a>], max_len: usize, budget: usize) -> Self {
        Evaluator {
            objs,
            max_len,
            budget: Cell::new(budget),
            exhausted: Cell::new(false),
        }
    }

    /// Takes `n` bytes from the budget; false (and `exhausted` set) when they are not there.
    fn draw(&self, n: usize) -> bool {
        match self.budget.get().checked_sub(n) {
            Some(left) => {
                self.budget.set(left);
                true
            }
            None => {
                self.exhausted.set(true);
                false
            }
        }
    }

    /// The bytes a value evaluates to, when that can be known without running anything.
    pub fn bytes(&self, v: &Value<'a>) -> Option<Vec<u8>> {
        self.eval(v, 0)
    }

    /// The text a value evaluates to (a constant, or a pure decoder call on one).
    pub fn string(&self, v: &Value<'a>) -> Option<String> {
        match v {
            Value::Str(s) => Some(s.to_string()),
            Value::Ref(_) => String::from_utf8(self.eval(v, 0)?).ok(),
            _ => None,
        }
    }

    fn eval(&self, v: &Value<'a>, depth: usize) -> Option<Vec<u8>> {
        if depth > MAX_EVAL_DEPTH {
            return None;
        }
        match v {
            Value::Bytes(b) => (b.len() <= self.max_len && self.draw(b.len())).then(|| b.to_vec()),
            // Decoders accept ASCII str as well as bytes.
            Value::Str(s) => {
                (s.len() <= self.max_len && self.draw(s.len())).then(|| s.as_bytes().to_vec())
            }
            Value::Ref(id) => match self.objs.get(*id as usize)? {
                Obj::List(items) if items.len() > self.max_len || !self.draw(items.len()) => None,
                Obj::List(items) => items
                    .iter()
                    .map(|i| match i {
                        Value::Int(n) if (0..=255).contains(n) => Some(*n as u8),
                        _ => None,
                    })
                    .collect(),
                Obj::Call(c) => {
                    let Value::Global(g) = &c.callable else {
                        return None;
                    };
                    let name = canonical(&g.module, &g.name);
                    let arg = |i: usize| c.args.get(i);
                    let arg_str = |i: usize| arg(i).and_then(|v| v.as_str().map(str::to_string));
                    match name.as_str() {
                        "io.BytesIO"
                        | "io.BufferedReader"
                        | "builtins.bytes"
                        | "builtins.bytearray"
                        | "builtins.memoryview" => self.eval(arg(0)?, depth + 1),
                        "base64.b64decode"
                        | "base64.standard_b64decode"
                        | "base64.decodebytes"
                        | "base64.decodestring"
                        | "binascii.a2b_base64" => b64(&self.eval(arg(0)?, depth + 1)?, false),
                        "base64.urlsafe_b64decode" => b64(&self.eval(arg(0)?, depth + 1)?, true),
                        "base64.b16decode"
                        | "binascii.unhexlify"
                        | "binascii.a2b_hex"
                        | "builtins.bytes.fromhex"
                        | "builtins.bytearray.fromhex" => unhex(&self.eval(arg(0)?, depth + 1)?),
                        "base64.b32decode" => b32(&self.eval(arg(0)?, depth + 1)?),
                        "base64.b85decode" => None,
                        "zlib.decompress" => self.decompress(Compression::Zlib, arg(0)?, depth),
                        "gzip.decompress" => self.decompress(Compression::Gzip, arg(0)?, depth),
                        "bz2.decompress" => self.decompress(Compression::Bzip2, arg(0)?, depth),
                        "lzma.decompress" => {
                            let data = self.eval(arg(0)?, depth + 1)?;
                            let kind = if data.starts_with(b"\xfd7zXZ") {
                                Compression::Xz
                            } else {
                                Compression::Lzma
                            };
                            self.inflate(kind, &data)
                        }
                        "codecs.encode" | "codecs.decode" => {
                            let data = self.eval(arg(0)?, depth + 1)?;
                            let enc = arg_str(1)
                                .unwrap_or_else(|| "utf-8".into())
                                .to_ascii_lowercase()
                                .replace(['-', '_'], "");
                            match enc.as_str() {
                                "latin1" | "latin" | "iso88591" | "l1" => {
                                    // `_codecs.encode(str, 'latin1')`: code points → bytes.
                                    match arg(0)? {
                                        Value::Str(s) => {
                                            s.chars().map(|c| u8::try_from(c as u32).ok()).collect()
                                        }
                                        _ => Some(data),
                                    }
                                }
                                "utf8" | "ascii" => Some(data),
                                "base64" | "base64codec" => b64(&data, false),
                                "hex" | "hexcodec" => unhex(&data),
                                "zlib" | "zlibcodec" | "zip" => {
                                    self.inflate(Compression::Zlib, &data)
                                }
                                "bz2" | "bz2codec" => self.inflate(Compression::Bzip2, &data),
                                "rot13" | "rot" => Some(rot13(&data)),
                                _ => None,
                            }
                        }
                        "builtins.str.encode" => self.eval(arg(0)?, depth + 1),
                        _ => None,
                    }
                }
                _ => None,
            },
            _ => None,
        }
    }

    fn decompress(&self, kind: Compression, v: &Value<'a>, depth: usize) -> Option<Vec<u8>> {
        let data = self.eval(v, depth + 1)?;
        self.inflate(kind, &data)
    }

    /// Decompresses at most `max_len` bytes (and no more than the budget holds); what it
    /// produces is drawn from the budget even when the stream turns out to be corrupt.
    fn inflate(&self, kind: Compression, data: &[u8]) -> Option<Vec<u8>> {
        let limit = self.max_len.min(self.budget.get());
        let mut out = Vec::new();
        let res = decompress_to(kind, data, &mut out, limit as u64);
        self.draw(out.len());
        match res {
            Ok(_) => Some(out),
            Err(DecompressError::LimitExceeded { .. }) if limit < self.max_len => {
                self.exhausted.set(true);
                None
            }
            Err(_) => None,
        }
    }
}

/// Canonical dotted name with private C-module aliases folded (`_codecs` → `codecs`).
pub fn canonical(module: &str, name: &str) -> String {
    let m = match module {
        "_codecs" => "codecs",
        "_io" => "io",
        "__builtin__" | "__builtins__" => "builtins",
        "_base64" => "base64",
        m => m,
    };
    if name.is_empty() {
        m.to_string()
    } else {
        format!("{m}.{name}")
    }
}

fn rot13(data: &[u8]) -> Vec<u8> {
    data.iter()
        .map(|&c| match c {
            b'a'..=b'z' => (c - b'a' + 13) % 26 + b'a',
            b'A'..=b'Z' => (c - b'A' + 13) % 26 + b'A',
            _ => c,
        })
        .collect()
}

fn b64(data: &[u8], urlsafe: bool) -> Option<Vec<u8>> {
    let clean: Vec<u8> = data
        .iter()
        .copied()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    let engine = if urlsafe {
        base64::engine::general_purpose::URL_SAFE
    } else {
        base64::engine::general_purpose::STANDARD
    };
    engine.decode(&clean).ok().or_else(|| {
        base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(clean.trim_ascii_end())
            .ok()
    })
}

fn unhex(data: &[u8]) -> Option<Vec<u8>> {
    let clean: Vec<u8> = data
        .iter()
        .copied()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    hex::decode(clean).ok()
}

fn b32(data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(data.len() * 5 / 8);
    let (mut acc, mut bits) = (0u64, 0u32);
    for &c in data {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'2'..=b'7' => c - b'2' + 26,
            b'=' => break,
            _ => return None,
        };
        acc = (acc << 5) | u64::from(v);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}
