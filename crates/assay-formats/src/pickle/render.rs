//! Python-like, bounded renderings of symbolic values for evidence strings.

use super::value::{Obj, Value};

const MAX_STR_CHARS: usize = 160;
const MAX_BYTES_SHOWN: usize = 48;
const MAX_ITEMS: usize = 8;
const MAX_DEPTH: usize = 4;

pub struct Renderer<'r, 'a> {
    pub objs: &'r [Obj<'a>],
}

impl<'r, 'a> Renderer<'r, 'a> {
    pub fn value(&self, v: &Value<'a>) -> String {
        let mut s = String::new();
        self.write(v, 0, &mut s);
        s
    }

    pub fn call(
        &self,
        callable: &Value<'a>,
        args: &[Value<'a>],
        kwargs: Option<&Value<'a>>,
    ) -> String {
        let mut s = String::new();
        self.write(callable, 1, &mut s);
        s.push('(');
        self.items(args, 1, &mut s);
        if let Some(kw) = kwargs {
            if !args.is_empty() {
                s.push_str(", ");
            }
            s.push_str("**");
            self.write(kw, 1, &mut s);
        }
        s.push(')');
        s
    }

    fn items(&self, items: &[Value<'a>], depth: usize, s: &mut String) {
        for (i, v) in items.iter().take(MAX_ITEMS).enumerate() {
            if i > 0 {
                s.push_str(", ");
            }
            self.write(v, depth + 1, s);
        }
        if items.len() > MAX_ITEMS {
            s.push_str(&format!(", …{} more", items.len() - MAX_ITEMS));
        }
    }

    fn write(&self, v: &Value<'a>, depth: usize, s: &mut String) {
        if depth > MAX_DEPTH {
            s.push('…');
            return;
        }
        match v {
            Value::None => s.push_str("None"),
            Value::Bool(b) => s.push_str(if *b { "True" } else { "False" }),
            Value::Int(i) => s.push_str(&i.to_string()),
            Value::BigInt(n) => s.push_str(&format!("<int of {n} bytes>")),
            Value::Float(f) => s.push_str(&format!("{f:?}")),
            Value::Str(t) => py_str(t, s),
            Value::Bytes(b) => py_bytes(b, s),
            Value::Tuple(items) => {
                s.push('(');
                self.items(items, depth, s);
                if items.len() == 1 {
                    s.push(',');
                }
                s.push(')');
            }
            Value::Global(g) => s.push_str(&g.qualified()),
            Value::Extension(c) => s.push_str(&format!("<extension {c}>")),
            Value::Persistent(p) => s.push_str(&format!("persistent_load{p}")),
            Value::Dynamic(d) => s.push_str(d),
            Value::Opaque(what) => s.push_str(&format!("<{what}>")),
            Value::Dropped => s.push('…'),
            Value::Ref(id) => match self.objs.get(*id as usize) {
                None => s.push('?'),
                Some(Obj::List(items)) => {
                    s.push('[');
                    self.items(items, depth, s);
                    s.push(']');
                }
                Some(Obj::Set(items)) => {
                    s.push('{');
                    self.items(items, depth, s);
                    s.push('}');
                }
                Some(Obj::Dict(pairs)) => {
                    s.push('{');
                    for (i, (k, v)) in pairs.iter().take(MAX_ITEMS).enumerate() {
                        if i > 0 {
                            s.push_str(", ");
                        }
                        self.write(k, depth + 1, s);
                        s.push_str(": ");
                        self.write(v, depth + 1, s);
                    }
                    if pairs.len() > MAX_ITEMS {
                        s.push_str(&format!(", …{} more", pairs.len() - MAX_ITEMS));
                    }
                    s.push('}');
                }
                Some(Obj::Call(c)) => {
                    self.write(&c.callable, depth + 1, s);
                    s.push('(');
                    self.items(&c.args, depth, s);
                    s.push(')');
                }
            },
        }
    }
}

fn py_str(t: &str, s: &mut String) {
    s.push('\'');
    for (i, c) in t.chars().enumerate() {
        if i >= MAX_STR_CHARS {
            s.push('…');
            break;
        }
        match c {
            '\'' => s.push_str("\\'"),
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '\r' => s.push_str("\\r"),
            '\t' => s.push_str("\\t"),
            c if c.is_control() => s.push_str(&format!("\\x{:02x}", c as u32 & 0xff)),
            c => s.push(c),
        }
    }
    s.push('\'');
}

fn py_bytes(b: &[u8], s: &mut String) {
    s.push_str("b'");
    for &c in b.iter().take(MAX_BYTES_SHOWN) {
        match c {
            b'\'' => s.push_str("\\'"),
            b'\\' => s.push_str("\\\\"),
            0x20..=0x7e => s.push(c as char),
            _ => s.push_str(&format!("\\x{c:02x}")),
        }
    }
    if b.len() > MAX_BYTES_SHOWN {
        s.push_str(&format!("…({} bytes)", b.len()));
    }
    s.push('\'');
}
