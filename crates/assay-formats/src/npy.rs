//! NumPy `.npy` headers: magic, version, and the header dict (a Python literal, parsed
//! here without evaluating anything). An object dtype anywhere in `descr` means a pickle
//! follows the header and `numpy.load(allow_pickle=True)` will unpickle it.

/// Header size we accept; numpy's own default cap is 10,000 bytes.
pub const MAX_HEADER: usize = 1 << 20;
const MAX_LITERAL_DEPTH: usize = 32;

#[derive(Debug, Clone, PartialEq)]
pub struct NpyHeader {
    pub version: (u8, u8),
    /// Offset of the array data (or of the pickle, for object arrays).
    pub data_offset: usize,
    pub descr: String,
    pub fortran_order: bool,
    pub shape: Vec<u64>,
    pub has_object: bool,
    /// Bytes the raw data should take, when the dtype is simple enough to size.
    pub data_len: Option<u64>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum NpyError {
    #[error("not an .npy file (bad magic)")]
    BadMagic,
    #[error("unsupported .npy version {0}.{1}")]
    BadVersion(u8, u8),
    #[error("header is truncated or longer than the file")]
    Truncated,
    #[error("header longer than {MAX_HEADER} bytes")]
    HeaderTooLong,
    #[error("header is not a valid dict literal: {0}")]
    BadHeader(String),
}

#[derive(Debug, Clone, PartialEq)]
enum Lit {
    Str(String),
    Int(i128),
    Bool(bool),
    None,
    Seq(Vec<Lit>),
    Dict(Vec<(Lit, Lit)>),
}

pub fn parse_header(data: &[u8]) -> Result<NpyHeader, NpyError> {
    if !data.starts_with(b"\x93NUMPY") {
        return Err(NpyError::BadMagic);
    }
    let (major, minor) = (
        *data.get(6).ok_or(NpyError::Truncated)?,
        *data.get(7).ok_or(NpyError::Truncated)?,
    );
    let (hlen, start) = match major {
        1 => (
            u16::from_le_bytes(
                data.get(8..10)
                    .ok_or(NpyError::Truncated)?
                    .try_into()
                    .unwrap_or([0; 2]),
            ) as usize,
            10,
        ),
        2 | 3 => (
            u32::from_le_bytes(
                data.get(8..12)
                    .ok_or(NpyError::Truncated)?
                    .try_into()
                    .unwrap_or([0; 4]),
            ) as usize,
            12,
        ),
        _ => return Err(NpyError::BadVersion(major, minor)),
    };
    if hlen > MAX_HEADER {
        return Err(NpyError::HeaderTooLong);
    }
    let header = data.get(start..start + hlen).ok_or(NpyError::Truncated)?;
    let text = if major == 3 {
        String::from_utf8_lossy(header).into_owned()
    } else {
        header.iter().map(|&b| b as char).collect()
    };
    let mut p = Parser {
        s: text.as_bytes(),
        i: 0,
    };
    let lit = p.value(0).map_err(NpyError::BadHeader)?;
    let Lit::Dict(pairs) = lit else {
        return Err(NpyError::BadHeader("header is not a dict".into()));
    };
    // A Python dict literal keeps the last of duplicate keys.
    let get = |k: &str| {
        pairs
            .iter()
            .rev()
            .find(|(key, _)| *key == Lit::Str(k.into()))
            .map(|(_, v)| v)
    };
    let descr_lit = get("descr").ok_or_else(|| NpyError::BadHeader("no 'descr' key".into()))?;
    let shape = match get("shape") {
        Some(Lit::Seq(items)) => items
            .iter()
            .map(|i| match i {
                Lit::Int(n) if *n >= 0 => u64::try_from(*n).ok(),
                _ => None,
            })
            .collect::<Option<Vec<u64>>>()
            .ok_or_else(|| {
                NpyError::BadHeader("shape is not a tuple of non-negative ints".into())
            })?,
        _ => return Err(NpyError::BadHeader("no valid 'shape'".into())),
    };
    let fortran_order = matches!(get("fortran_order"), Some(Lit::Bool(true)));
    let has_object = descr_has_object(descr_lit);
    let descr = match descr_lit {
        Lit::Str(s) => s.clone(),
        other => format!("{other:?}"),
    };
    let data_len = match descr_lit {
        Lit::Str(s) if !has_object => simple_itemsize(s)
            .and_then(|size| shape.iter().try_fold(size, |a, d| a.checked_mul(*d))),
        _ => None,
    };
    Ok(NpyHeader {
        version: (major, minor),
        data_offset: start + hlen,
        descr,
        fortran_order,
        shape,
        has_object,
        data_len,
    })
}

fn descr_has_object(d: &Lit) -> bool {
    match d {
        // Type codes never use `O` except for objects; comma-separated structured
        // strings ('u1,O') and subarray strings ('(1,)O') hide it mid-string.
        Lit::Str(s) => s.contains('O') || s.to_ascii_lowercase().contains("object"),
        // [(name, dtype), (name, dtype, shape), …]
        Lit::Seq(fields) => fields.iter().any(|f| match f {
            Lit::Seq(parts) => parts.get(1).is_some_and(descr_has_object),
            other => descr_has_object(other),
        }),
        _ => false,
    }
}

fn simple_itemsize(s: &str) -> Option<u64> {
    let k = s.trim_start_matches(['<', '>', '|', '=']);
    let split = k.find(|c: char| c.is_ascii_digit())?;
    let (letter, digits) = k.split_at(split);
    let n: u64 = digits.parse().ok()?;
    match letter {
        "U" => n.checked_mul(4),
        "b" | "i" | "u" | "f" | "c" | "S" | "V" | "a" => Some(n),
        _ => None,
    }
}

struct Parser<'s> {
    s: &'s [u8],
    i: usize,
}

impl Parser<'_> {
    /// Whitespace, line continuations and `#` comments (ast.literal_eval ignores them).
    fn ws(&mut self) {
        while let Some(&c) = self.s.get(self.i) {
            if c.is_ascii_whitespace() || c == b'\\' {
                self.i += 1;
            } else if c == b'#' {
                while self.s.get(self.i).is_some_and(|&c| c != b'\n') {
                    self.i += 1;
                }
            } else {
                break;
            }
        }
    }

    fn value(&mut self, depth: usize) -> Result<Lit, String> {
        if depth > MAX_LITERAL_DEPTH {
            return Err("nested too deeply".into());
        }
        self.ws();
        let c = *self.s.get(self.i).ok_or("unexpected end")?;
        match c {
            b'{' => {
                self.i += 1;
                let mut pairs = Vec::new();
                loop {
                    self.ws();
                    if self.s.get(self.i) == Some(&b'}') {
                        self.i += 1;
                        return Ok(Lit::Dict(pairs));
                    }
                    let k = self.value(depth + 1)?;
                    self.ws();
                    if self.s.get(self.i) != Some(&b':') {
                        return Err("expected ':'".into());
                    }
                    self.i += 1;
                    let v = self.value(depth + 1)?;
                    pairs.push((k, v));
                    self.ws();
                    match self.s.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {}
                        _ => return Err("expected ',' or '}'".into()),
                    }
                }
            }
            b'(' | b'[' => {
                let close = if c == b'(' { b')' } else { b']' };
                self.i += 1;
                let mut items = Vec::new();
                let mut comma = false;
                loop {
                    self.ws();
                    if self.s.get(self.i) == Some(&close) {
                        self.i += 1;
                        // `(x)` is just x; `(x,)` and `[x]` are sequences.
                        if c == b'(' && items.len() == 1 && !comma {
                            return Ok(items.pop().unwrap_or(Lit::None));
                        }
                        return Ok(Lit::Seq(items));
                    }
                    items.push(self.value(depth + 1)?);
                    self.ws();
                    match self.s.get(self.i) {
                        Some(b',') => {
                            comma = true;
                            self.i += 1
                        }
                        Some(x) if *x == close => {}
                        _ => return Err("expected ',' or closing bracket".into()),
                    }
                }
            }
            _ if self.string_start().is_some() => {
                // Adjacent string literals concatenate.
                let mut out = String::new();
                while let Some(raw) = self.string_start() {
                    out.push_str(&self.string(raw)?);
                    self.ws();
                }
                Ok(Lit::Str(out))
            }
            _ => {
                let start = self.i;
                while self.i < self.s.len()
                    && (self.s[self.i].is_ascii_alphanumeric()
                        || matches!(self.s[self.i], b'-' | b'+' | b'_'))
                {
                    self.i += 1;
                }
                let tok = std::str::from_utf8(&self.s[start..self.i]).map_err(|e| e.to_string())?;
                match tok {
                    "True" => Ok(Lit::Bool(true)),
                    "False" => Ok(Lit::Bool(false)),
                    "None" => Ok(Lit::None),
                    // numpy writes `3L` in headers made by Python 2.
                    t => t
                        .trim_end_matches('L')
                        .replace('_', "")
                        .parse::<i128>()
                        .map(Lit::Int)
                        .map_err(|_| format!("unexpected token {t:?}")),
                }
            }
        }
    }

    /// At a string literal (with optional u/b/r prefixes)? Returns whether it is raw and
    /// leaves the cursor on the opening quote.
    fn string_start(&mut self) -> Option<bool> {
        let mut j = self.i;
        let mut raw = false;
        while j < self.s.len()
            && j - self.i < 2
            && matches!(self.s[j].to_ascii_lowercase(), b'u' | b'b' | b'r')
        {
            raw |= self.s[j].eq_ignore_ascii_case(&b'r');
            j += 1;
        }
        if matches!(self.s.get(j), Some(b'\'' | b'"')) {
            self.i = j;
            Some(raw)
        } else {
            None
        }
    }

    fn string(&mut self, raw: bool) -> Result<String, String> {
        let q = self.s[self.i];
        let triple = self.s.get(self.i..self.i + 3) == Some(&[q, q, q][..]);
        self.i += if triple { 3 } else { 1 };
        let mut out = String::new();
        loop {
            let &b = self.s.get(self.i).ok_or("unterminated string")?;
            if b == q && (!triple || self.s.get(self.i..self.i + 3) == Some(&[q, q, q][..])) {
                self.i += if triple { 3 } else { 1 };
                return Ok(out);
            }
            self.i += 1;
            if b != b'\\' || raw {
                out.push(b as char);
                continue;
            }
            let &e = self.s.get(self.i).ok_or("unterminated escape")?;
            self.i += 1;
            let hex = |p: &mut Self, n: usize| -> Result<char, String> {
                let h = p.s.get(p.i..p.i + n).ok_or("short escape")?;
                p.i += n;
                u32::from_str_radix(std::str::from_utf8(h).map_err(|e| e.to_string())?, 16)
                    .ok()
                    .and_then(char::from_u32)
                    .ok_or_else(|| "bad escape".to_string())
            };
            match e {
                b'n' => out.push('\n'),
                b't' => out.push('\t'),
                b'r' => out.push('\r'),
                b'a' => out.push('\x07'),
                b'b' => out.push('\x08'),
                b'f' => out.push('\x0c'),
                b'v' => out.push('\x0b'),
                b'\n' => {}
                b'x' => out.push(hex(self, 2)?),
                b'u' => out.push(hex(self, 4)?),
                b'U' => out.push(hex(self, 8)?),
                b'0'..=b'7' => {
                    let mut v = u32::from(e - b'0');
                    for _ in 0..2 {
                        match self.s.get(self.i) {
                            Some(&d @ b'0'..=b'7') => {
                                v = v * 8 + u32::from(d - b'0');
                                self.i += 1;
                            }
                            _ => break,
                        }
                    }
                    out.push(char::from_u32(v).unwrap_or('?'));
                }
                b'\\' | b'\'' | b'"' => out.push(e as char),
                other => {
                    out.push('\\');
                    out.push(other as char);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(dict: &str) -> Vec<u8> {
        let mut h = dict.as_bytes().to_vec();
        h.push(b'\n');
        let mut v = b"\x93NUMPY\x01\x00".to_vec();
        v.extend((h.len() as u16).to_le_bytes());
        v.extend(h);
        v
    }

    #[test]
    fn plain_header() {
        let h = parse_header(&header(
            "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }",
        ))
        .unwrap();
        assert_eq!(h.shape, vec![3, 4]);
        assert!(!h.has_object);
        assert_eq!(h.data_len, Some(48));
    }

    #[test]
    fn object_dtype_hidden_every_way_numpy_accepts() {
        for d in [
            "'|O'",
            "'object'",
            "'u1,O'",
            "'(1,)O'",
            "'\\x7cO'",
            "'|' 'O'",
            "u'|O'",
            "[('a', '<f4'), ('b', '|O')]",
            "('|O')",
        ] {
            let h = parse_header(&header(&format!(
                "{{'descr': {d}, 'fortran_order': False, 'shape': (1,), }}"
            )))
            .unwrap();
            assert!(h.has_object, "{d}");
        }
        let h = parse_header(&header(
            "{'descr': '<f4', 'descr': '|O', 'fortran_order': False, 'shape': (1,)} # c",
        ))
        .unwrap();
        assert!(h.has_object, "last duplicate key wins");
    }

    #[test]
    fn field_names_do_not_count_as_types() {
        let h = parse_header(&header(
            "{'descr': [('Offset', '<f4')], 'fortran_order': False, 'shape': (1,), }",
        ))
        .unwrap();
        assert!(!h.has_object);
    }
}
