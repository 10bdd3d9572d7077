//! The symbolic values on the unpickler's stack and in its memo.
//!
//! Scalars and strings are kept as values; containers and the results of calls live in
//! an arena ([`Obj`]) and are shared by index, so that a list stored in the memo and later
//! appended to is one object, as in Python, and cycles cost nothing.

use std::rc::Rc;

/// A global resolved by name. An empty `name` is a module object (from `__import__`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalName {
    pub module: String,
    pub name: String,
}

impl GlobalName {
    pub fn qualified(&self) -> String {
        if self.name.is_empty() {
            self.module.clone()
        } else {
            format!("{}.{}", self.module, self.name)
        }
    }
}

#[derive(Debug, Clone)]
pub enum Value<'a> {
    None,
    Bool(bool),
    Int(i64),
    /// An integer too large for i64; only its size in bytes is kept.
    BigInt(usize),
    Float(f64),
    Str(Rc<str>),
    /// Bytes borrowed from the input: tensor payloads are never copied.
    Bytes(&'a [u8]),
    Tuple(Rc<[Value<'a>]>),
    /// A list, dict, set, instance or call result in the arena.
    Ref(u32),
    Global(Rc<GlobalName>),
    Extension(u32),
    /// A global whose name is only known at load time (described).
    Dynamic(Rc<str>),
    /// The object `persistent_load` returns for a persistent id (rendered).
    Persistent(Rc<str>),
    /// An out-of-band buffer or a joblib inline array.
    Opaque(&'static str),
    /// A scalar not kept because the storage budget was spent (counted, not stored).
    Dropped,
}

impl<'a> Value<'a> {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn is_scalar(&self) -> bool {
        matches!(
            self,
            Value::None
                | Value::Bool(_)
                | Value::Int(_)
                | Value::BigInt(_)
                | Value::Float(_)
                | Value::Dropped
        )
    }
}

/// What a call produced: the callable, its arguments and any state set by `BUILD`.
#[derive(Debug, Clone)]
pub struct CallObj<'a> {
    pub callable: Value<'a>,
    pub args: Rc<[Value<'a>]>,
    pub state: Option<Value<'a>>,
}

#[derive(Debug, Clone)]
pub enum Obj<'a> {
    List(Vec<Value<'a>>),
    Dict(Vec<(Value<'a>, Value<'a>)>),
    Set(Vec<Value<'a>>),
    Call(CallObj<'a>),
}
