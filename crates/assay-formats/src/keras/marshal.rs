//! A bounded reader for CPython `marshal` data, enough to show what a marshalled code
//! object (a Keras `Lambda` layer's bytecode) names: the global and attribute names it
//! uses, its string constants, and the names of nested functions. Nothing is executed
//! and no Python object is built; strings are collected as the stream is walked.
//!
//! Code objects differ by Python version only in how many 32-bit integers precede the
//! `co_code` bytes and where the `co_firstlineno` integer sits among the fields; both
//! layouts in use since 3.8 are tried (3.11+ first, then 3.8–3.10).

/// Nesting of containers and code objects (CPython allows 2000; lambdas need a few).
pub const MAX_MARSHAL_DEPTH: usize = 64;
/// Objects read from one stream.
pub const MAX_MARSHAL_OBJECTS: usize = 200_000;
/// Distinct strings kept for evidence.
pub const MAX_MARSHAL_STRINGS: usize = 256;
/// Characters kept from one string.
pub const MAX_STRING_CHARS: usize = 200;

/// What a marshalled code object names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CodeSummary {
    /// Python version family of the code-object layout that parsed (`"3.11+"`, `"3.8-3.10"`).
    pub layout: &'static str,
    /// Names used by the bytecode (`co_names`): globals, attributes, imports.
    pub names: Vec<String>,
    /// String and bytes constants (`co_consts`), including those of nested code.
    pub strings: Vec<String>,
    /// Function names (`co_name`) of the code object and nested ones.
    pub functions: Vec<String>,
    /// Source file names recorded in the code objects.
    pub filenames: Vec<String>,
    /// Set when a limit cut the walk short.
    pub truncated: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MarshalError {
    #[error("marshal data ends early at byte {0}")]
    Truncated(usize),
    #[error("unknown marshal type code 0x{code:02x} at byte {at}")]
    BadType { code: u8, at: usize },
    #[error("marshal data nests deeper than {MAX_MARSHAL_DEPTH}")]
    TooDeep,
    #[error("more than {MAX_MARSHAL_OBJECTS} marshal objects")]
    TooMany,
    #[error("bad length {len} at byte {at}")]
    BadLength { len: i64, at: usize },
    #[error("not a code object (first type code 0x{0:02x})")]
    NotCode(u8),
    #[error("back-reference {0} to an object not yet read")]
    BadRef(u32),
}

const FLAG_REF: u8 = 0x80;

/// Which string list a string read in the current position belongs to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Other,
    Names,
    Consts,
    Function,
    Filename,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// 3.11–3.13: five ints, then code, consts, names, localsplusnames, localspluskinds,
    /// filename, name, qualname, firstlineno (int), linetable, exceptiontable.
    Py311,
    /// 3.8–3.10: six ints, then code, consts, names, varnames, freevars, cellvars,
    /// filename, name, firstlineno (int), lnotab/linetable.
    Py38,
}

struct Reader<'d> {
    data: &'d [u8],
    pos: usize,
    objects: usize,
    layout: Layout,
    /// Back-reference table: the string at each index, if it was one.
    refs: Vec<Option<String>>,
    out: CodeSummary,
}

/// Summarises a marshalled code object. Fails when the bytes are not one.
pub fn summarize_code(data: &[u8]) -> Result<CodeSummary, MarshalError> {
    let first = *data.first().ok_or(MarshalError::Truncated(0))?;
    if first & !FLAG_REF != b'c' {
        return Err(MarshalError::NotCode(first));
    }
    let mut last_err = MarshalError::Truncated(0);
    for layout in [Layout::Py311, Layout::Py38] {
        let mut r = Reader {
            data,
            pos: 0,
            objects: 0,
            layout,
            refs: Vec::new(),
            out: CodeSummary::default(),
        };
        match r.object(0, Role::Other) {
            Ok(()) => {
                r.out.layout = match layout {
                    Layout::Py311 => "3.11+",
                    Layout::Py38 => "3.8-3.10",
                };
                return Ok(r.out);
            }
            Err(e) => last_err = e,
        }
    }
    Err(last_err)
}

/// Printable ASCII runs of at least `min` bytes, for evidence when the structure did not
/// parse.
pub fn printable_strings(data: &[u8], min: usize, max_count: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut run = String::new();
    for &b in data.iter().chain(std::iter::once(&0u8)) {
        if (0x20..0x7f).contains(&b) {
            if run.len() < MAX_STRING_CHARS {
                run.push(b as char);
            }
        } else {
            if run.len() >= min && !out.contains(&run) {
                out.push(std::mem::take(&mut run));
                if out.len() >= max_count {
                    break;
                }
            }
            run.clear();
        }
    }
    out
}

/// The part of a string kept as evidence (and in the back-reference table).
fn shown(b: &[u8]) -> String {
    let head = b.get(..MAX_STRING_CHARS * 4).unwrap_or(b);
    String::from_utf8_lossy(head)
        .chars()
        .take(MAX_STRING_CHARS)
        .collect()
}

impl Reader<'_> {
    fn byte(&mut self) -> Result<u8, MarshalError> {
        let b = *self
            .data
            .get(self.pos)
            .ok_or(MarshalError::Truncated(self.pos))?;
        self.pos += 1;
        Ok(b)
    }

    fn take(&mut self, n: usize) -> Result<&[u8], MarshalError> {
        let end = self
            .pos
            .checked_add(n)
            .ok_or(MarshalError::Truncated(self.pos))?;
        let s = self
            .data
            .get(self.pos..end)
            .ok_or(MarshalError::Truncated(self.pos))?;
        self.pos = end;
        Ok(s)
    }

    fn i32(&mut self) -> Result<i32, MarshalError> {
        let b = self.take(4)?;
        Ok(i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A length prefix that must fit in what is left of the data (each element takes at
    /// least one byte), so no count can make the reader loop or allocate beyond the input.
    fn len32(&mut self) -> Result<usize, MarshalError> {
        let at = self.pos;
        let n = self.i32()?;
        let n = usize::try_from(n).map_err(|_| MarshalError::BadLength {
            len: i64::from(n),
            at,
        })?;
        if n > self.data.len().saturating_sub(self.pos) {
            return Err(MarshalError::BadLength { len: n as i64, at });
        }
        Ok(n)
    }

    fn keep(&mut self, role: Role, s: &str) {
        let mut s: String = s.chars().take(MAX_STRING_CHARS).collect();
        if s.is_empty() {
            return;
        }
        let list = match role {
            Role::Names => &mut self.out.names,
            Role::Consts => &mut self.out.strings,
            Role::Function => &mut self.out.functions,
            Role::Filename => &mut self.out.filenames,
            Role::Other => return,
        };
        if list.contains(&s) {
            return;
        }
        let total = self.out.names.len()
            + self.out.strings.len()
            + self.out.functions.len()
            + self.out.filenames.len();
        if total >= MAX_MARSHAL_STRINGS {
            self.out.truncated = true;
            return;
        }
        let list = match role {
            Role::Names => &mut self.out.names,
            Role::Consts => &mut self.out.strings,
            Role::Function => &mut self.out.functions,
            Role::Filename => &mut self.out.filenames,
            Role::Other => return,
        };
        list.push(std::mem::take(&mut s));
    }

    /// Reads one object; strings are filed under `role`.
    fn object(&mut self, depth: usize, role: Role) -> Result<(), MarshalError> {
        if depth > MAX_MARSHAL_DEPTH {
            return Err(MarshalError::TooDeep);
        }
        self.objects += 1;
        if self.objects > MAX_MARSHAL_OBJECTS {
            return Err(MarshalError::TooMany);
        }
        let at = self.pos;
        let raw = self.byte()?;
        let flag = raw & FLAG_REF != 0;
        let code = raw & !FLAG_REF;
        // Containers take their reference slot before their children, as CPython does.
        let slot = if flag {
            self.refs.push(None);
            Some(self.refs.len() - 1)
        } else {
            None
        };
        let mut text: Option<String> = None;
        match code {
            b'0' | b'N' | b'F' | b'T' | b'S' | b'.' => {}
            b'i' => {
                self.take(4)?;
            }
            b'I' => {
                self.take(8)?;
            }
            b'g' => {
                self.take(8)?;
            }
            b'y' => {
                self.take(16)?;
            }
            b'f' => {
                let n = self.byte()? as usize;
                self.take(n)?;
            }
            b'x' => {
                let n = self.byte()? as usize;
                self.take(n)?;
                let n = self.byte()? as usize;
                self.take(n)?;
            }
            b'l' => {
                let at = self.pos;
                let n = self.i32()?;
                let digits =
                    usize::try_from(n.unsigned_abs()).map_err(|_| MarshalError::BadLength {
                        len: i64::from(n),
                        at,
                    })?;
                let bytes = digits.checked_mul(2).ok_or(MarshalError::BadLength {
                    len: i64::from(n),
                    at,
                })?;
                self.take(bytes)?;
            }
            b's' => {
                let n = self.len32()?;
                let b = self.take(n)?;
                // Bytes constants are shown when they read as text; `co_code` and line
                // tables are filed under `Other` and never kept.
                if role != Role::Other && b.iter().all(|c| (0x20..0x7f).contains(c)) {
                    text = Some(shown(b));
                }
            }
            b'u' | b't' | b'a' | b'A' => {
                let n = self.len32()?;
                let b = self.take(n)?;
                text = Some(shown(b));
            }
            b'z' | b'Z' => {
                let n = self.byte()? as usize;
                let b = self.take(n)?;
                text = Some(shown(b));
            }
            b'r' => {
                let b = self.take(4)?;
                let idx = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                let s = self
                    .refs
                    .get(idx as usize)
                    .ok_or(MarshalError::BadRef(idx))?
                    .clone();
                if let Some(s) = s {
                    self.keep(role, &s);
                }
            }
            b'(' | b'[' | b'<' | b'>' => {
                let n = self.len32()?;
                for _ in 0..n {
                    self.object(depth + 1, role)?;
                }
            }
            b')' => {
                let n = self.byte()? as usize;
                for _ in 0..n {
                    self.object(depth + 1, role)?;
                }
            }
            b'{' => loop {
                if self.data.get(self.pos) == Some(&b'0') {
                    self.pos += 1;
                    break;
                }
                self.object(depth + 1, role)?;
                self.object(depth + 1, role)?;
            },
            b':' => {
                // Slice (3.14): start, stop, step.
                for _ in 0..3 {
                    self.object(depth + 1, role)?;
                }
            }
            b'c' => self.code(depth)?,
            other => return Err(MarshalError::BadType { code: other, at }),
        }
        if let Some(s) = text {
            self.keep(role, &s);
            if let Some(r) = slot.and_then(|i| self.refs.get_mut(i)) {
                *r = Some(s);
            }
        }
        Ok(())
    }

    fn code(&mut self, depth: usize) -> Result<(), MarshalError> {
        let fields = match self.layout {
            Layout::Py311 => CODE_PY311,
            Layout::Py38 => CODE_PY38,
        };
        for field in fields {
            match *field {
                Field::Raw(n) => {
                    self.take(n)?;
                }
                Field::Obj(role) => self.object(depth + 1, role)?,
            }
        }
        Ok(())
    }
}

/// One field of a marshalled code object, in the order CPython writes it.
#[derive(Clone, Copy)]
enum Field {
    /// That many raw bytes (little-endian ints).
    Raw(usize),
    /// A nested marshalled object, read for what `role` keeps of it.
    Obj(Role),
}

/// Code object layout of CPython 3.11 and later.
const CODE_PY311: &[Field] = &[
    Field::Raw(5 * 4),          // argcount .. flags
    Field::Obj(Role::Other),    // co_code
    Field::Obj(Role::Consts),   // co_consts
    Field::Obj(Role::Names),    // co_names
    Field::Obj(Role::Other),    // co_localsplusnames
    Field::Obj(Role::Other),    // co_localspluskinds
    Field::Obj(Role::Filename), // co_filename
    Field::Obj(Role::Function), // co_name
    Field::Obj(Role::Other),    // co_qualname
    Field::Raw(4),              // co_firstlineno
    Field::Obj(Role::Other),    // co_linetable
    Field::Obj(Role::Other),    // co_exceptiontable
];

/// Code object layout of CPython 3.8 to 3.10.
const CODE_PY38: &[Field] = &[
    Field::Raw(6 * 4),          // argcount .. flags
    Field::Obj(Role::Other),    // co_code
    Field::Obj(Role::Consts),   // co_consts
    Field::Obj(Role::Names),    // co_names
    Field::Obj(Role::Other),    // co_varnames
    Field::Obj(Role::Other),    // co_freevars
    Field::Obj(Role::Other),    // co_cellvars
    Field::Obj(Role::Filename), // co_filename
    Field::Obj(Role::Function), // co_name
    Field::Raw(4),              // co_firstlineno
    Field::Obj(Role::Other),    // co_lnotab / co_linetable
];

#[cfg(test)]
mod tests {
    use super::*;

    /// `marshal.dumps((lambda: __import__('os').system('echo pwned')).__code__)` on 3.11.
    const OS_SYSTEM_311: &str = "e30000000000000000000000000300000003000000f34600000097007401000000000000000000006401a6010000ab010000000000000000a00100000000000000000000000000000000000000006402a6010000ab010000000000000000530029034eda026f73fa0a6563686f2070776e65642902da0a5f5f696d706f72745f5fda0673797374656da900f300000000fa083c737472696e673efa083c6c616d6264613e720900000003000000731c00000080008d2a9054d10a1ad40a1ad70a21d20a21a02cd10a2fd40a2f80007207000000";

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn names_and_strings_of_a_311_lambda() {
        let s = summarize_code(&hex(OS_SYSTEM_311)).unwrap();
        assert_eq!(s.layout, "3.11+");
        assert_eq!(s.names, vec!["__import__", "system"]);
        assert!(s.strings.contains(&"echo pwned".to_string()), "{s:?}");
        assert!(s.strings.contains(&"os".to_string()), "{s:?}");
        assert_eq!(s.functions, vec!["<lambda>"]);
    }

    #[test]
    fn hostile_inputs_fail_cleanly() {
        assert!(summarize_code(b"").is_err());
        assert!(summarize_code(b"N").is_err());
        assert!(summarize_code(b"\xe3").is_err());
        // A tuple claiming 2^31 elements.
        let mut b = vec![0xe3];
        b.extend([0; 20]);
        b.extend(b"(\xff\xff\xff\x7f");
        assert!(summarize_code(&b).is_err());
        // Deep nesting.
        let mut b = vec![0xe3];
        b.extend([0; 20]);
        b.extend(std::iter::repeat_n(b')', 5000).flat_map(|c| [c, 1]));
        assert!(summarize_code(&b).is_err());
        // A back-reference to nothing.
        let mut b = vec![0xe3];
        b.extend([0; 20]);
        b.extend(b"r\x05\x00\x00\x00");
        assert!(summarize_code(&b).is_err());
        for n in 0..hex(OS_SYSTEM_311).len() {
            let _ = summarize_code(&hex(OS_SYSTEM_311)[..n]);
        }
    }

    #[test]
    fn printable_runs() {
        assert_eq!(
            printable_strings(b"\x00\x01system\x00ab\x00echo pwned", 3, 10),
            vec!["system", "echo pwned"]
        );
    }
}
