//! The symbolic pickle machine. Semantics follow CPython's `Modules/_pickle.c` (3.11+):
//! the mark stack and its *fence* (no opcode may pop below the innermost mark), the memo
//! (`MEMOIZE` stores at `len(memo)`), `FRAME` as a read-ahead hint (an opcode may run past
//! the frame in C; the pure-Python unpickler raises, so we report the difference), and
//! the error conditions that make CPython stop.

use super::compat::fix_imports;
use super::decode::{Evaluator, canonical};
use super::opcodes as op;
use super::render::Renderer;
use super::value::{CallObj, GlobalName, Obj, Value};
use super::*;
use std::collections::HashMap;
use std::rc::Rc;

/// Every bound the machine enforces. Reaching one is reported as
/// [`AnomalyKind::LimitReached`] and analysis stops (fail closed).
#[derive(Debug, Clone)]
pub struct PickleLimits {
    /// Opcodes executed over the whole stream.
    pub max_opcodes: u64,
    /// Values on the stack.
    pub max_stack: usize,
    /// Nested `MARK`s.
    pub max_marks: usize,
    /// Memo entries.
    pub max_memo: usize,
    /// Containers and call results in the arena.
    pub max_objects: usize,
    /// Scalars kept inside containers; beyond this they are counted, not stored
    /// (they cannot name or call anything, so judging is unaffected).
    pub max_stored_scalars: usize,
    /// Calls recorded.
    pub max_calls: usize,
    /// Globals recorded.
    pub max_globals: usize,
    /// Size of a payload decoded statically for a nested scan. All the payloads of a
    /// stream together (and the work of evaluating them) may take the stream's own size
    /// plus this much.
    pub max_decoded: usize,
    /// Pickles concatenated in one stream.
    pub max_pickles: u32,
    /// Nesting of pickles inside joblib inline object arrays.
    pub max_inline_depth: u32,
    /// Length of a text-protocol line (`GLOBAL`, `INT`, …).
    pub max_line: usize,
}

impl Default for PickleLimits {
    fn default() -> Self {
        PickleLimits {
            max_opcodes: 200_000_000,
            max_stack: 4_000_000,
            max_marks: 1_000_000,
            max_memo: 4_000_000,
            max_objects: 4_000_000,
            max_stored_scalars: 8_000_000,
            max_calls: 100_000,
            max_globals: 100_000,
            max_decoded: 64 << 20,
            max_pickles: 64,
            max_inline_depth: 8,
            max_line: 1 << 20,
        }
    }
}

struct Stop {
    offset: usize,
    kind: AnomalyKind,
    detail: String,
}

type Step<T> = Result<T, Stop>;

/// Values looked at when collecting one call's constant string arguments: tuples are
/// shared, so nesting alone does not bound the walk.
const MAX_STRING_SCAN: usize = 1024;

/// Bytes one static evaluation of a global's name may copy or decompress.
const MAX_NAME_EVAL: usize = 4096;

thread_local! {
    static TRACE: std::cell::RefCell<Option<Vec<AnalysedStream>>> =
        const { std::cell::RefCell::new(None) };
}

/// A stream the symbolic unpickler ran over, as [`trace_analyses`] records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AnalysedStream {
    /// Bytes from where the analysis started to the end of the data.
    pub len: u64,
    /// FNV-1a of those bytes: the same bytes analysed twice, even from two copies (a
    /// zip member decompressed twice), record the same value.
    pub fingerprint: u64,
}

impl AnalysedStream {
    pub fn of(bytes: &[u8]) -> Self {
        let fingerprint = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        AnalysedStream {
            len: bytes.len() as u64,
            fingerprint,
        }
    }
}

/// A hook for tests that prove a pipeline unpickles each stream once: `true` starts
/// recording, on the calling thread, every stream that [`analyze`] and [`analyze_one`]
/// run over; `false` stops and returns what was recorded. Off, it costs one
/// thread-local check per analysis.
pub fn trace_analyses(on: bool) -> Vec<AnalysedStream> {
    TRACE.with(|t| {
        let mut t = t.borrow_mut();
        let was = t.take().unwrap_or_default();
        if on {
            *t = Some(Vec::new());
        }
        was
    })
}

fn trace(data: &[u8], start: usize) {
    TRACE.with(|t| {
        if let Some(v) = t.borrow_mut().as_mut() {
            v.push(AnalysedStream::of(data.get(start..).unwrap_or_default()));
        }
    });
}

/// Analyses every pickle in `data`, starting at offset 0.
///
/// A stream with joblib array wrappers means different things to `joblib.load` (which
/// reads array bytes inline after each wrapper) and to `pickle.load`/`torch.load` (which
/// read those bytes as opcodes): both readings are analysed and their calls merged.
pub fn analyze(data: &[u8], limits: &PickleLimits) -> PickleAnalysis {
    trace(data, 0);
    let mut out = analyze_stream(data, limits, true);
    if !out.inline_arrays.is_empty() {
        let plain = analyze_stream(data, limits, false);
        merge_reading(&mut out, plain);
    }
    out
}

/// Adds what the other reading of the stream names; its structural complaints (array
/// bytes read as opcodes) are not the file's.
fn merge_reading(out: &mut PickleAnalysis, other: PickleAnalysis) {
    for c in other.calls {
        if !out
            .calls
            .iter()
            .any(|x| x.offset == c.offset && x.callable == c.callable)
        {
            out.calls.push(c);
        }
    }
    for g in other.globals {
        if !out
            .globals
            .iter()
            .any(|x| x.offset == g.offset && x.module == g.module && x.name == g.name)
        {
            out.globals.push(g);
        }
    }
    for n in other.nested {
        if !out.nested.iter().any(|x| x.offset == n.offset) {
            out.nested.push(n);
        }
    }
    for e in other.extensions {
        if !out.extensions.contains(&e) {
            out.extensions.push(e);
        }
    }
    for a in other.anomalies {
        let relevant = matches!(
            a.kind,
            AnomalyKind::BuildOnGlobal | AnomalyKind::DunderState | AnomalyKind::ComputedName
        );
        if relevant
            && !out
                .anomalies
                .iter()
                .any(|x| x.offset == a.offset && x.kind == a.kind)
        {
            out.anomalies.push(a);
        }
    }
}

fn analyze_stream(data: &[u8], limits: &PickleLimits, joblib_arrays: bool) -> PickleAnalysis {
    let mut out = PickleAnalysis::default();
    let mut pos = 0usize;
    loop {
        let first = out.pickles == 0;
        let mark = Snapshot::of(&out);
        match run_one(data, pos, limits, &mut out, 0, joblib_arrays) {
            Ok(end) => {
                out.parts.push(PicklePart {
                    start: pos as u64,
                    end: end as u64,
                    torch_storages: mark.torch_storages..out.torch_storages.len(),
                    torch_tensors: mark.torch_tensors..out.torch_tensors.len(),
                });
                out.pickles += 1;
                if !first {
                    out.anomalies.push(Anomaly {
                        offset: pos as u64,
                        kind: AnomalyKind::Concatenated,
                        detail: format!("pickle #{} starts at offset {pos}", out.pickles),
                    });
                }
                pos = end;
                out.end = end as u64;
                if pos >= data.len() {
                    break;
                }
                if out.pickles >= limits.max_pickles {
                    out.anomalies.push(Anomaly {
                        offset: pos as u64,
                        kind: AnomalyKind::LimitReached,
                        detail: format!("more than {} concatenated pickles", limits.max_pickles),
                    });
                    break;
                }
                if op::name(data[pos]).is_none() {
                    trailing(&mut out, pos, data.len());
                    break;
                }
            }
            Err(stop) => {
                if first
                    || mark.named_anything_since(&out)
                    || stop.kind == AnomalyKind::LimitReached
                {
                    out.anomalies.push(Anomaly {
                        offset: stop.offset as u64,
                        kind: stop.kind,
                        detail: stop.detail,
                    });
                    out.end = stop.offset as u64;
                } else {
                    // Bytes after a complete pickle that do not form another one: data.
                    mark.restore(&mut out);
                    trailing(&mut out, pos, data.len());
                }
                break;
            }
        }
    }
    out
}

/// Analyses exactly one pickle starting at `start`; returns the analysis and the offset
/// just after its `STOP` (or where it broke).
pub fn analyze_one(data: &[u8], start: usize, limits: &PickleLimits) -> (PickleAnalysis, usize) {
    trace(data, start);
    let mut out = PickleAnalysis::default();
    match run_one(data, start, limits, &mut out, 0, true) {
        Ok(end) => {
            out.parts.push(PicklePart {
                start: start as u64,
                end: end as u64,
                torch_storages: 0..out.torch_storages.len(),
                torch_tensors: 0..out.torch_tensors.len(),
            });
            out.pickles = 1;
            out.end = end as u64;
            (out, end)
        }
        Err(stop) => {
            out.anomalies.push(Anomaly {
                offset: stop.offset as u64,
                kind: stop.kind,
                detail: stop.detail,
            });
            out.end = stop.offset as u64;
            (out, stop.offset)
        }
    }
}

fn trailing(out: &mut PickleAnalysis, pos: usize, len: usize) {
    out.anomalies.push(Anomaly {
        offset: pos as u64,
        kind: AnomalyKind::TrailingData,
        detail: format!("{} bytes after the last pickle", len - pos),
    });
}

struct Snapshot {
    globals: usize,
    calls: usize,
    nested: usize,
    anomalies: usize,
    persistent: usize,
    extensions: usize,
    inline: usize,
    torch_storages: usize,
    torch_tensors: usize,
    numpy_arrays: usize,
    object_arrays: usize,
}

impl Snapshot {
    fn of(a: &PickleAnalysis) -> Self {
        Snapshot {
            globals: a.globals.len(),
            calls: a.calls.len(),
            nested: a.nested.len(),
            anomalies: a.anomalies.len(),
            persistent: a.persistent.len(),
            extensions: a.extensions.len(),
            inline: a.inline_arrays.len(),
            torch_storages: a.torch_storages.len(),
            torch_tensors: a.torch_tensors.len(),
            numpy_arrays: a.numpy_arrays.len(),
            object_arrays: a.object_arrays.len(),
        }
    }
    fn named_anything_since(&self, a: &PickleAnalysis) -> bool {
        a.globals.len() > self.globals
            || a.calls.len() > self.calls
            || a.extensions.len() > self.extensions
    }
    fn restore(&self, a: &mut PickleAnalysis) {
        a.globals.truncate(self.globals);
        a.calls.truncate(self.calls);
        a.nested.truncate(self.nested);
        a.anomalies.truncate(self.anomalies);
        a.persistent.truncate(self.persistent);
        a.extensions.truncate(self.extensions);
        a.inline_arrays.truncate(self.inline);
        a.torch_storages.truncate(self.torch_storages);
        a.torch_tensors.truncate(self.torch_tensors);
        a.numpy_arrays.truncate(self.numpy_arrays);
        a.object_arrays.truncate(self.object_arrays);
    }
}

fn run_one(
    data: &[u8],
    start: usize,
    limits: &PickleLimits,
    out: &mut PickleAnalysis,
    depth: u32,
    joblib_arrays: bool,
) -> Step<usize> {
    let mut m = Machine {
        data,
        pos: start,
        limits,
        out,
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
        objs: Vec::new(),
        frame_end: None,
        frame_reported: false,
        scalars_stored: 0,
        inline_depth: depth,
        ext_registry: HashMap::new(),
        joblib_arrays,
        dunder_checked: HashMap::new(),
        storage_ids: HashMap::new(),
        tensor_objs: HashMap::new(),
        numpy_objs: HashMap::new(),
        call_items: HashMap::new(),
    };
    let end = m.run()?;
    m.name_torch_tensors();
    m.name_numpy_arrays();
    Ok(end)
}

struct Machine<'a, 'o> {
    data: &'a [u8],
    pos: usize,
    limits: &'o PickleLimits,
    out: &'o mut PickleAnalysis,
    stack: Vec<Value<'a>>,
    marks: Vec<usize>,
    memo: HashMap<u64, Value<'a>>,
    objs: Vec<Obj<'a>>,
    frame_end: Option<usize>,
    frame_reported: bool,
    scalars_stored: usize,
    inline_depth: u32,
    /// Extension codes registered by the stream itself (into copyreg's registry).
    ext_registry: HashMap<u32, (String, String)>,
    /// Whether `BUILD` of a joblib `NumpyArrayWrapper` reads inline array data (as
    /// `joblib.load` does) or not (as `pickle.load`/`torch.load` do).
    joblib_arrays: bool,
    /// Per dict used as `BUILD` state: how many of its pairs were already checked for
    /// dunder keys (dicts only grow, so each pair is checked once).
    dunder_checked: HashMap<u32, usize>,
    /// Rendered torch storage persistent id → index into `out.torch_storages`.
    storage_ids: HashMap<Rc<str>, usize>,
    /// Arena id of a tensor rebuild call → index into `out.torch_tensors`.
    tensor_objs: HashMap<u32, usize>,
    /// Arena id of a numpy array object → index into `out.numpy_arrays`.
    numpy_objs: HashMap<u32, usize>,
    /// Items set on call results (an `OrderedDict()` filled by `SETITEMS`), for naming
    /// tensors.
    call_items: HashMap<u32, Vec<(Value<'a>, Value<'a>)>>,
}

fn malformed(offset: usize, detail: impl Into<String>) -> Stop {
    Stop {
        offset,
        kind: AnomalyKind::Malformed,
        detail: detail.into(),
    }
}

impl<'a, 'o> Machine<'a, 'o> {
    fn fence(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    fn limit(&self, what: String) -> Stop {
        Stop {
            offset: self.pos,
            kind: AnomalyKind::LimitReached,
            detail: what,
        }
    }

    // ---- reading -------------------------------------------------------------------

    fn read(&mut self, n: usize) -> Step<&'a [u8]> {
        let start = self.pos;
        let end = start
            .checked_add(n)
            .filter(|e| *e <= self.data.len())
            .ok_or_else(|| Stop {
                offset: start,
                kind: AnomalyKind::Truncated,
                detail: format!("pickle data was truncated: {n} bytes needed at offset {start}"),
            })?;
        if let Some(fe) = self.frame_end
            && start < fe
            && end > fe
            && !self.frame_reported
        {
            self.frame_reported = true;
            self.out.anomalies.push(Anomaly {
                    offset: start as u64,
                    kind: AnomalyKind::FrameViolation,
                    detail: format!(
                        "an opcode argument at offset {start} runs {} bytes past the end of its FRAME (offset {fe}); CPython's C unpickler accepts this, the pure-Python one refuses it",
                        end - fe
                    ),
                });
        }
        self.pos = end;
        Ok(&self.data[start..end])
    }

    fn read_u8(&mut self) -> Step<u8> {
        Ok(self.read(1)?[0])
    }

    fn read_uint(&mut self, n: usize) -> Step<u64> {
        let b = self.read(n)?;
        let mut v = 0u64;
        for (i, byte) in b.iter().enumerate() {
            v |= u64::from(*byte) << (8 * i);
        }
        Ok(v)
    }

    /// A text-protocol argument: bytes up to and without the `\n`.
    fn read_line(&mut self) -> Step<&'a [u8]> {
        let start = self.pos;
        let rest = &self.data[start..];
        let window = &rest[..rest.len().min(self.limits.max_line)];
        match window.iter().position(|&b| b == b'\n') {
            Some(i) => {
                let line = self.read(i + 1)?;
                Ok(&line[..i])
            }
            None if rest.len() > self.limits.max_line => Err(self.limit(format!(
                "text argument longer than {} bytes",
                self.limits.max_line
            ))),
            None => Err(Stop {
                offset: start,
                kind: AnomalyKind::Truncated,
                detail: "pickle data was truncated inside a text argument (no newline)".into(),
            }),
        }
    }

    fn read_line_str(&mut self) -> Step<String> {
        let at = self.pos;
        let line = self.read_line()?;
        std::str::from_utf8(line)
            .map(str::to_string)
            .map_err(|_| malformed(at, "text argument is not valid UTF-8"))
    }

    // ---- stack ---------------------------------------------------------------------

    fn push(&mut self, v: Value<'a>) -> Step<()> {
        if self.stack.len() >= self.limits.max_stack {
            return Err(self.limit(format!(
                "stack deeper than {} values",
                self.limits.max_stack
            )));
        }
        self.stack.push(v);
        Ok(())
    }

    fn pop(&mut self, at: usize) -> Step<Value<'a>> {
        if self.stack.len() <= self.fence() {
            return Err(malformed(at, "unpickling stack underflow"));
        }
        Ok(self.stack.pop().expect("checked above"))
    }

    fn top(&self, at: usize) -> Step<&Value<'a>> {
        if self.stack.len() <= self.fence() {
            return Err(malformed(at, "unpickling stack underflow"));
        }
        Ok(self.stack.last().expect("checked above"))
    }

    /// Pops the innermost mark (CPython's `marker()`), returning the stack position.
    fn pop_mark(&mut self, at: usize) -> Step<usize> {
        self.marks
            .pop()
            .ok_or_else(|| malformed(at, "could not find MARK"))
    }

    fn pop_to(&mut self, k: usize, at: usize) -> Step<Vec<Value<'a>>> {
        if k > self.stack.len() || k < self.fence() {
            return Err(malformed(at, "unpickling stack underflow"));
        }
        Ok(self.stack.split_off(k))
    }

    fn alloc(&mut self, o: Obj<'a>) -> Step<Value<'a>> {
        if self.objs.len() >= self.limits.max_objects {
            return Err(self.limit(format!(
                "more than {} containers and objects",
                self.limits.max_objects
            )));
        }
        self.objs.push(o);
        Ok(Value::Ref((self.objs.len() - 1) as u32))
    }

    /// Keeps a value for a container, or counts it when the scalar budget is spent.
    fn keep(&mut self, v: Value<'a>) -> Value<'a> {
        if v.is_scalar() || matches!(v, Value::Str(_) | Value::Bytes(_)) {
            if self.scalars_stored >= self.limits.max_stored_scalars {
                return Value::Dropped;
            }
            self.scalars_stored += 1;
        }
        v
    }

    fn memo_put(&mut self, idx: u64, at: usize) -> Step<()> {
        let v = self.top(at)?.clone();
        if self.memo.len() >= self.limits.max_memo && !self.memo.contains_key(&idx) {
            return Err(self.limit(format!("more than {} memo entries", self.limits.max_memo)));
        }
        self.memo.insert(idx, v);
        Ok(())
    }

    fn memo_get(&mut self, idx: u64, at: usize) -> Step<()> {
        let v = self
            .memo
            .get(&idx)
            .cloned()
            .ok_or_else(|| malformed(at, format!("Memo value not found at index {idx}")))?;
        self.push(v)
    }

    // ---- names and calls -------------------------------------------------------------

    fn global(
        &mut self,
        module: &str,
        name: &str,
        opcode: &'static str,
        at: usize,
    ) -> Step<Value<'a>> {
        // `find_class` imports the module: a name that is not a dotted identifier cannot
        // be imported, so CPython stops here with ModuleNotFoundError / AttributeError.
        if !is_dotted_identifier(module) || !is_dotted_identifier(name) {
            return Err(malformed(
                at,
                format!("{opcode} names no importable global ({module:?}, {name:?})"),
            ));
        }
        let (module, name) = if self.out.protocol < 3 {
            fix_imports(module, name)
        } else {
            (module.to_string(), name.to_string())
        };
        if self.out.globals.len() >= self.limits.max_globals {
            return Err(self.limit(format!("more than {} globals", self.limits.max_globals)));
        }
        self.out.globals.push(GlobalRef {
            offset: at as u64,
            module: module.clone(),
            name: name.clone(),
            opcode,
        });
        Ok(Value::Global(Rc::new(GlobalName { module, name })))
    }

    fn renderer(&self) -> Renderer<'_, 'a> {
        Renderer { objs: &self.objs }
    }

    fn callable_of(&self, v: &Value<'a>) -> Callable {
        match v {
            Value::Global(g) => Callable::Global {
                module: g.module.clone(),
                name: g.name.clone(),
            },
            Value::Extension(c) => Callable::Extension(*c),
            Value::Dynamic(d) => Callable::Dynamic(d.to_string()),
            other => Callable::Dynamic(format!("<result of {}>", self.renderer().value(other))),
        }
    }

    fn collect_strings(
        &self,
        v: &Value<'a>,
        out: &mut Vec<String>,
        depth: usize,
        budget: &mut usize,
    ) {
        if depth > 4 || out.len() >= 16 || *budget == 0 {
            return;
        }
        *budget -= 1;
        match v {
            Value::Str(s) => out.push(s.chars().take(512).collect()),
            Value::Bytes(b) if b.len() <= 512 && b.iter().all(|c| (0x20..0x7f).contains(c)) => {
                out.push(String::from_utf8_lossy(b).into_owned())
            }
            Value::Tuple(items) => self.collect_strings_in(items.iter(), out, depth + 1, budget),
            Value::Ref(id) => match self.objs.get(*id as usize) {
                Some(Obj::List(items)) | Some(Obj::Set(items)) => {
                    self.collect_strings_in(items.iter().take(64), out, depth + 1, budget)
                }
                Some(Obj::Dict(pairs)) => {
                    let kv = pairs.iter().take(64).flat_map(|(k, v)| [k, v]);
                    self.collect_strings_in(kv, out, depth + 1, budget)
                }
                Some(Obj::Call(c)) => {
                    self.collect_strings_in(c.args.iter(), out, depth + 1, budget)
                }
                None => {}
            },
            _ => {}
        }
    }

    /// [`Self::collect_strings`] over a sequence, stopping as soon as the budget is spent
    /// (a sequence may be far longer than the budget).
    fn collect_strings_in<'v>(
        &self,
        items: impl Iterator<Item = &'v Value<'a>>,
        out: &mut Vec<String>,
        depth: usize,
        budget: &mut usize,
    ) where
        'a: 'v,
    {
        for v in items {
            if *budget == 0 || out.len() >= 16 {
                return;
            }
            self.collect_strings(v, out, depth, budget);
        }
    }

    /// Records one call in the analysis.
    fn record(
        &mut self,
        at: usize,
        kind: CallKind,
        callable: &Value<'a>,
        args: &[Value<'a>],
        kwargs: Option<&Value<'a>>,
    ) -> Step<usize> {
        if self.out.calls.len() >= self.limits.max_calls {
            return Err(self.limit(format!("more than {} calls", self.limits.max_calls)));
        }
        let evidence = self.renderer().call(callable, args, kwargs);
        let mut string_args = Vec::new();
        let mut budget = MAX_STRING_SCAN;
        self.collect_strings_in(args.iter().chain(kwargs), &mut string_args, 0, &mut budget);
        let no_args = args.is_empty() && kwargs.is_none_or(|k| self.is_empty_container(k));
        self.out.calls.push(PickleCall {
            offset: at as u64,
            kind,
            callable: self.callable_of(callable),
            evidence,
            no_args,
            string_args,
        });
        Ok(self.out.calls.len() - 1)
    }

    fn is_callable_like(v: &Value<'a>) -> bool {
        matches!(
            v,
            Value::Global(_) | Value::Dynamic(_) | Value::Extension(_) | Value::Ref(_)
        )
    }

    /// Rebuild helpers that call or instantiate one of their arguments: what they call is
    /// recorded as a call of its own, so the rules judge it like any other.
    fn derived_calls(&mut self, at: usize, qn: &str, args: &[Value<'a>]) -> Step<()> {
        let tuple_items = |v: Option<&Value<'a>>| -> Rc<[Value<'a>]> {
            match v {
                Some(Value::Tuple(t)) => t.clone(),
                _ => Rc::new([]),
            }
        };
        match qn {
            "copyreg._reconstructor" => {
                if let Some(cls) = args.first().filter(|v| Self::is_callable_like(v)) {
                    self.record(at, CallKind::Reconstruct, cls, &[], None)?;
                }
                if let Some(base) = args.get(1).filter(|v| Self::is_callable_like(v)) {
                    let is_object = matches!(base, Value::Global(g) if canonical(&g.module, &g.name) == "builtins.object");
                    if !is_object {
                        let state: Vec<Value<'a>> = args
                            .get(2)
                            .filter(|v| !matches!(v, Value::None))
                            .cloned()
                            .into_iter()
                            .collect();
                        self.record(at, CallKind::Reconstruct, base, &state, None)?;
                    }
                }
            }
            "copyreg.__newobj__" => {
                if let Some(cls) = args.first().filter(|v| Self::is_callable_like(v)) {
                    self.record(at, CallKind::NewObj, cls, &args[1..], None)?;
                }
            }
            "copyreg.__newobj_ex__" => {
                if let Some(cls) = args.first().filter(|v| Self::is_callable_like(v)) {
                    let items = tuple_items(args.get(1));
                    self.record(at, CallKind::NewObj, cls, &items, args.get(2))?;
                }
            }
            "torch._tensor._rebuild_from_type_v2" | "torch._tensor._rebuild_from_type" => {
                if let Some(func) = args.first().filter(|v| Self::is_callable_like(v)) {
                    let items = tuple_items(args.get(2));
                    self.record(at, CallKind::Indirect, func, &items, None)?;
                }
                if let Some(ty) = args.get(1).filter(|v| Self::is_callable_like(v)) {
                    self.record(at, CallKind::Reconstruct, ty, &[], None)?;
                }
            }
            // numpy's RandomState/Generator unpickle helpers call the bit-generator
            // constructor they are given; sklearn's Cython `newObj(cls)` builds `cls`.
            "numpy.random._pickle.__generator_ctor"
            | "numpy.random._pickle.__randomstate_ctor"
            | "numpy.random._pickle.__bit_generator_ctor" => {
                // Only names are called (a class or a constructor function); objects
                // already built are used as they are.
                for a in args.iter().filter(|v| {
                    matches!(
                        v,
                        Value::Global(_) | Value::Dynamic(_) | Value::Extension(_)
                    )
                }) {
                    self.record(at, CallKind::Indirect, a, &[], None)?;
                }
            }
            q if q.ends_with(".newObj") => {
                if let Some(cls) = args.first().filter(|v| Self::is_callable_like(v)) {
                    self.record(at, CallKind::Reconstruct, cls, &[], None)?;
                }
            }
            "torch._utils._rebuild_wrapper_subclass" => {
                if let Some(cls) = args.first().filter(|v| Self::is_callable_like(v)) {
                    self.record(at, CallKind::Reconstruct, cls, &[], None)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Records a call and returns the value it produces.
    fn call(
        &mut self,
        at: usize,
        kind: CallKind,
        callable: Value<'a>,
        args: Rc<[Value<'a>]>,
        kwargs: Option<Value<'a>>,
    ) -> Step<Value<'a>> {
        self.record(at, kind, &callable, &args, kwargs.as_ref())?;

        // Results that static evaluation can name.
        if let Value::Global(g) = &callable {
            let qn = canonical(&g.module, &g.name);
            match qn.as_str() {
                // `getattr(module_or_global, 'attr')` names a new global.
                "builtins.getattr" => {
                    if let (Some(Value::Global(base)), Some(Value::Str(attr))) =
                        (args.first(), args.get(1))
                    {
                        let name = if base.name.is_empty() {
                            attr.to_string()
                        } else {
                            format!("{}.{}", base.name, attr)
                        };
                        return Ok(Value::Global(Rc::new(GlobalName {
                            module: base.module.clone(),
                            name,
                        })));
                    }
                }
                "builtins.__import__" | "importlib.import_module" | "importlib.__import__" => {
                    if let Some(Value::Str(m)) = args.first() {
                        return Ok(Value::Global(Rc::new(GlobalName {
                            module: m.to_string(),
                            name: String::new(),
                        })));
                    }
                }
                _ => {}
            }
            self.derived_calls(at, &qn, &args)?;
            self.nested_payload(at, &qn, &args)?;
            if super::torch::REBUILD_TENSOR.contains(&qn.as_str()) {
                let ids = &self.storage_ids;
                let tensor = super::torch::tensor_ref(at as u64, &qn, &args, |v| match v {
                    Value::Persistent(p) => ids.get(p).copied(),
                    _ => None,
                });
                let obj = self.alloc(Obj::Call(CallObj {
                    callable,
                    args,
                    state: None,
                }))?;
                if let (Some(t), Value::Ref(id)) = (tensor, &obj) {
                    self.tensor_objs.insert(*id, self.out.torch_tensors.len());
                    self.out.torch_tensors.push(t);
                }
                return Ok(obj);
            }
        }
        self.alloc(Obj::Call(CallObj {
            callable,
            args,
            state: None,
        }))
    }

    /// Names the tensors rebuilt by this pickle by where they sit in its result.
    fn name_torch_tensors(&mut self) {
        if self.tensor_objs.is_empty() {
            return;
        }
        let Some(root) = self.stack.last().cloned() else {
            return;
        };
        let mut namer = super::torch::Namer {
            objs: &self.objs,
            tensors: &self.tensor_objs,
            items: &self.call_items,
            visited: Default::default(),
            steps: 0,
            first: Default::default(),
            first_bytes: 0,
            revisits: Vec::new(),
        };
        namer.walk(&root, "", 0, &mut self.out.torch_tensors);
        let (first, revisits) = (namer.first, namer.revisits);
        super::torch::name_aliases(&first, &revisits, &mut self.out.torch_tensors);
    }

    /// The string a value evaluates to statically (a constant, or a pure decoder call).
    fn eval_str(&self, v: &Value<'a>) -> Option<String> {
        match v {
            Value::Str(s) => Some(s.to_string()),
            Value::Ref(_) => Evaluator::new(&self.objs, MAX_NAME_EVAL, 4 * MAX_NAME_EVAL).string(v),
            _ => None,
        }
    }

    fn is_empty_container(&self, v: &Value<'a>) -> bool {
        match v {
            Value::None => true,
            Value::Tuple(t) => t.is_empty(),
            Value::Ref(id) => match self.objs.get(*id as usize) {
                Some(Obj::Dict(p)) => p.is_empty(),
                Some(Obj::List(i)) | Some(Obj::Set(i)) => i.is_empty(),
                _ => false,
            },
            _ => false,
        }
    }

    /// Deserializers whose argument is itself an artifact to scan.
    fn nested_payload(&mut self, at: usize, qn: &str, args: &[Value<'a>]) -> Step<()> {
        const LOADERS: &[&str] = &[
            "pickle.loads",
            "pickle._loads",
            "pickle.load",
            "pickle._load",
            "_pickle.loads",
            "_pickle.load",
            "pickle.Unpickler",
            "_pickle.Unpickler",
            "dill.loads",
            "dill.load",
            "dill._dill.loads",
            "cloudpickle.loads",
            "cloudpickle.load",
            "joblib.load",
            "joblib.numpy_pickle.load",
            "torch.load",
            "torch.serialization.load",
            "torch.storage._load_from_bytes",
            "torch._utils._load_from_bytes",
            "numpy.load",
            "numpy.lib.npyio.load",
            "numpy.loads",
            "marshal.loads",
            "marshal.load",
            "pandas.read_pickle",
            "shelve.open",
        ];
        if !LOADERS.contains(&qn) {
            return Ok(());
        }
        let Some(first) = args.first() else {
            return Ok(());
        };
        let max_decoded = self.limits.max_decoded as u64;
        let budget = (self.data.len() as u64)
            .saturating_add(max_decoded)
            .saturating_sub(self.out.decoded);
        let eval = Evaluator::new(
            &self.objs,
            self.limits.max_decoded,
            usize::try_from(budget).unwrap_or(usize::MAX),
        );
        let data = eval.bytes(first);
        self.out.decoded += budget - eval.budget.get() as u64;
        if eval.exhausted.get() {
            return Err(self.limit(format!(
                "loader arguments decode to more than the stream's size plus {max_decoded} bytes"
            )));
        }
        if let Some(data) = data {
            self.out.nested.push(NestedPayload {
                offset: at as u64,
                loader: qn.to_string(),
                data,
            });
        }
        Ok(())
    }

    // ---- the loop ------------------------------------------------------------------

    fn run(&mut self) -> Step<usize> {
        loop {
            if self.out.opcodes >= self.limits.max_opcodes {
                return Err(self.limit(format!("more than {} opcodes", self.limits.max_opcodes)));
            }
            self.out.opcodes += 1;
            if let Some(fe) = self.frame_end
                && self.pos >= fe
            {
                self.frame_end = None;
            }
            let at = self.pos;
            let code = self.read_u8()?;
            if op::name(code).is_none() {
                return Err(malformed(at, format!("invalid load key, '\\x{code:02x}'")));
            }
            if code == op::STOP {
                if self.stack.len() <= self.fence() {
                    return Err(malformed(
                        at,
                        "STOP with an empty stack (unpickling stack underflow)",
                    ));
                }
                return Ok(self.pos);
            }
            self.step(code, at)?;
        }
    }

    fn step(&mut self, code: u8, at: usize) -> Step<()> {
        match code {
            op::PROTO => {
                let p = self.read_u8()?;
                if p > op::HIGHEST_PROTOCOL {
                    return Err(malformed(at, format!("unsupported pickle protocol: {p}")));
                }
                self.out.protocol = self.out.protocol.max(p);
            }
            op::FRAME => {
                let n = self.read_uint(8)?;
                let start = self.pos;
                if (start as u64).saturating_add(n) > self.data.len() as u64 {
                    return Err(Stop {
                        offset: at,
                        kind: AnomalyKind::Truncated,
                        detail: format!("FRAME of {n} bytes runs past the end of the data"),
                    });
                }
                if let Some(fe) = self.frame_end
                    && start < fe
                    && !self.frame_reported
                {
                    self.frame_reported = true;
                    self.out.anomalies.push(Anomaly {
                        offset: at as u64,
                        kind: AnomalyKind::FrameViolation,
                        detail: "a FRAME begins before the end of the current frame".into(),
                    });
                }
                self.frame_end = Some(start + n as usize);
            }
            op::MARK => {
                if self.marks.len() >= self.limits.max_marks {
                    return Err(
                        self.limit(format!("more than {} nested marks", self.limits.max_marks))
                    );
                }
                self.marks.push(self.stack.len());
            }
            op::POP => {
                // CPython: POP with a mark at the top of the stack pops the mark.
                if let Some(&m) = self.marks.last()
                    && m >= self.stack.len()
                {
                    self.marks.pop();
                    return Ok(());
                }
                if self.stack.is_empty() {
                    return Err(malformed(at, "unpickling stack underflow"));
                }
                self.stack.pop();
            }
            op::POP_MARK => {
                let k = self.pop_mark(at)?;
                self.pop_to(k, at)?;
            }
            op::DUP => {
                let v = self.top(at)?.clone();
                self.push(v)?;
            }
            // ---- scalars ----
            op::NONE => self.push(Value::None)?,
            op::NEWTRUE => self.push(Value::Bool(true))?,
            op::NEWFALSE => self.push(Value::Bool(false))?,
            op::INT => {
                let line = self.read_line()?;
                let line = until_nul(line);
                let v = match line {
                    b"00" => Value::Bool(false),
                    b"01" => Value::Bool(true),
                    _ => parse_int(line).ok_or_else(|| malformed(at, "invalid literal for INT"))?,
                };
                self.push(v)?;
            }
            op::LONG => {
                let line = self.read_line()?;
                let line = until_nul(line);
                let line = line.strip_suffix(b"L").unwrap_or(line);
                let v = parse_int(line).ok_or_else(|| malformed(at, "invalid literal for LONG"))?;
                self.push(v)?;
            }
            op::FLOAT => {
                let line = self.read_line()?;
                let f = std::str::from_utf8(until_nul(line))
                    .ok()
                    .and_then(|s| parse_float(s.trim()));
                self.push(Value::Float(
                    f.ok_or_else(|| malformed(at, "invalid literal for FLOAT"))?,
                ))?;
            }
            op::BINFLOAT => {
                let b = self.read(8)?;
                let f = f64::from_be_bytes(b.try_into().expect("8 bytes"));
                self.push(Value::Float(f))?;
            }
            op::BININT => {
                let v = self.read_uint(4)? as u32 as i32;
                self.push(Value::Int(i64::from(v)))?;
            }
            op::BININT1 => {
                let v = self.read_uint(1)?;
                self.push(Value::Int(v as i64))?;
            }
            op::BININT2 => {
                let v = self.read_uint(2)?;
                self.push(Value::Int(v as i64))?;
            }
            op::LONG1 | op::LONG4 => {
                let n = if code == op::LONG1 {
                    self.read_uint(1)? as usize
                } else {
                    let n = self.read_uint(4)? as u32 as i32;
                    if n < 0 {
                        return Err(malformed(at, "LONG pickle has negative byte count"));
                    }
                    n as usize
                };
                let b = self.read(n)?;
                self.push(long_from_le(b))?;
            }
            // ---- strings and bytes ----
            op::STRING => {
                let line = self.read_line()?;
                let s = decode_string_literal(line)
                    .ok_or_else(|| malformed(at, "the STRING opcode argument must be quoted"))?;
                self.push(Value::Str(s.into()))?;
            }
            op::BINSTRING | op::SHORT_BINSTRING => {
                let n = if code == op::SHORT_BINSTRING {
                    self.read_uint(1)? as usize
                } else {
                    let n = self.read_uint(4)? as u32 as i32;
                    if n < 0 {
                        return Err(malformed(at, "BINSTRING pickle has negative byte count"));
                    }
                    n as usize
                };
                let b = self.read(n)?;
                // Python 2 str: decoded with the unpickler's encoding; latin-1 never fails.
                let s: String = b.iter().map(|&c| c as char).collect();
                self.push(Value::Str(s.into()))?;
            }
            op::UNICODE => {
                let line = self.read_line()?;
                self.push(Value::Str(decode_raw_unicode_escape(line).into()))?;
            }
            op::SHORT_BINUNICODE | op::BINUNICODE | op::BINUNICODE8 => {
                let n = match code {
                    op::SHORT_BINUNICODE => self.read_uint(1)?,
                    op::BINUNICODE => self.read_uint(4)?,
                    _ => self.read_uint(8)?,
                };
                let n = usize::try_from(n).map_err(|_| malformed(at, "string length overflows"))?;
                let b = self.read(n)?;
                // CPython decodes with 'surrogatepass'; lossy decoding keeps names intact.
                let s = String::from_utf8_lossy(b);
                self.push(Value::Str(s.into()))?;
            }
            op::SHORT_BINBYTES | op::BINBYTES | op::BINBYTES8 | op::BYTEARRAY8 => {
                let n = match code {
                    op::SHORT_BINBYTES => self.read_uint(1)?,
                    op::BINBYTES => self.read_uint(4)?,
                    _ => self.read_uint(8)?,
                };
                let n = usize::try_from(n).map_err(|_| malformed(at, "bytes length overflows"))?;
                let b = self.read(n)?;
                self.push(Value::Bytes(b))?;
            }
            // ---- containers ----
            op::EMPTY_TUPLE => self.push(Value::Tuple(Rc::new([])))?,
            op::EMPTY_LIST => {
                let v = self.alloc(Obj::List(Vec::new()))?;
                self.push(v)?;
            }
            op::EMPTY_DICT => {
                let v = self.alloc(Obj::Dict(Vec::new()))?;
                self.push(v)?;
            }
            op::EMPTY_SET => {
                let v = self.alloc(Obj::Set(Vec::new()))?;
                self.push(v)?;
            }
            op::TUPLE1 | op::TUPLE2 | op::TUPLE3 => {
                let n = (code - op::TUPLE1 + 1) as usize;
                if self.stack.len() < self.fence() + n {
                    return Err(malformed(at, "unpickling stack underflow"));
                }
                let k = self.stack.len() - n;
                let items = self.pop_to(k, at)?;
                self.push(Value::Tuple(items.into()))?;
            }
            op::TUPLE => {
                let k = self.pop_mark(at)?;
                let items = self.pop_to(k, at)?;
                self.push(Value::Tuple(items.into()))?;
            }
            op::LIST => {
                let k = self.pop_mark(at)?;
                let items = self.pop_to(k, at)?;
                let items = items.into_iter().map(|v| self.keep(v)).collect();
                let v = self.alloc(Obj::List(items))?;
                self.push(v)?;
            }
            op::FROZENSET => {
                let k = self.pop_mark(at)?;
                let items = self.pop_to(k, at)?;
                let items = items.into_iter().map(|v| self.keep(v)).collect();
                let v = self.alloc(Obj::Set(items))?;
                self.push(v)?;
            }
            op::DICT => {
                let k = self.pop_mark(at)?;
                let items = self.pop_to(k, at)?;
                if items.len() % 2 != 0 {
                    return Err(malformed(at, "odd number of items for DICT"));
                }
                let pairs = self.pairs(items);
                let v = self.alloc(Obj::Dict(pairs))?;
                self.push(v)?;
            }
            op::APPEND => {
                let x = self.stack.len().saturating_sub(1);
                self.do_append(x, at)?;
            }
            op::APPENDS => {
                let x = self.pop_mark(at)?;
                self.do_append(x, at)?;
            }
            op::SETITEM => {
                let x = self.stack.len().saturating_sub(2);
                if self.stack.len() < 2 {
                    return Err(malformed(at, "unpickling stack underflow"));
                }
                self.do_setitems(x, at)?;
            }
            op::SETITEMS => {
                let x = self.pop_mark(at)?;
                self.do_setitems(x, at)?;
            }
            op::ADDITEMS => {
                let x = self.pop_mark(at)?;
                self.do_append(x, at)?;
            }
            // ---- memo ----
            op::PUT => {
                let line = self.read_line()?;
                let idx = parse_index(line).ok_or_else(|| malformed(at, "invalid PUT index"))?;
                self.memo_put(idx, at)?;
            }
            op::BINPUT => {
                let idx = self.read_uint(1)?;
                self.memo_put(idx, at)?;
            }
            op::LONG_BINPUT => {
                let idx = self.read_uint(4)?;
                self.memo_put(idx, at)?;
            }
            op::MEMOIZE => {
                let idx = self.memo.len() as u64;
                self.memo_put(idx, at)?;
            }
            op::GET => {
                let line = self.read_line()?;
                let idx = parse_index(line).ok_or_else(|| malformed(at, "invalid GET index"))?;
                self.memo_get(idx, at)?;
            }
            op::BINGET => {
                let idx = self.read_uint(1)?;
                self.memo_get(idx, at)?;
            }
            op::LONG_BINGET => {
                let idx = self.read_uint(4)?;
                self.memo_get(idx, at)?;
            }
            // ---- globals and calls ----
            op::GLOBAL => {
                let module = self.read_line_str()?;
                let name = self.read_line_str()?;
                let g = self.global(&module, &name, "GLOBAL", at)?;
                self.push(g)?;
            }
            op::STACK_GLOBAL => {
                let name = self.pop(at)?;
                let module = self.pop(at)?;
                let g = match (&module, &name) {
                    (Value::Str(m), Value::Str(n)) => {
                        let (m, n) = (m.to_string(), n.to_string());
                        self.global(&m, &n, "STACK_GLOBAL", at)?
                    }
                    (m, n) if self.eval_str(m).is_some() && self.eval_str(n).is_some() => {
                        // Names computed by pure functions (`_codecs.encode('bf', 'rot13')`)
                        // are evaluated: the callable is named, and the trick reported.
                        let (m, n) = (
                            self.eval_str(m).unwrap_or_default(),
                            self.eval_str(n).unwrap_or_default(),
                        );
                        self.out.anomalies.push(Anomaly {
                            offset: at as u64,
                            kind: AnomalyKind::ComputedName,
                            detail: format!("STACK_GLOBAL operands computed at load time: {m}.{n}"),
                        });
                        self.global(&m, &n, "STACK_GLOBAL", at)?
                    }
                    _ => {
                        let r = self.renderer();
                        let desc = format!(
                            "<global named at load time: module {} name {}>",
                            r.value(&module),
                            r.value(&name)
                        );
                        // CPython raises here unless both are str; a name computed by an
                        // earlier call is still reported, as the callable it would be.
                        self.out.globals.push(GlobalRef {
                            offset: at as u64,
                            module: "<dynamic>".into(),
                            name: desc.clone(),
                            opcode: "STACK_GLOBAL",
                        });
                        Value::Dynamic(desc.into())
                    }
                };
                self.push(g)?;
            }
            op::EXT1 | op::EXT2 | op::EXT4 => {
                let n = match code {
                    op::EXT1 => 1,
                    op::EXT2 => 2,
                    _ => 4,
                };
                let c = self.read_uint(n)? as u32;
                if c == 0 || (n == 4 && (c as i32) <= 0) {
                    return Err(malformed(at, "EXT specifies code <= 0"));
                }
                self.out.extensions.push((at as u64, c));
                match self.ext_registry.get(&c).cloned() {
                    Some((m, n)) => {
                        let g = self.global(&m, &n, "EXT", at)?;
                        self.push(g)?;
                    }
                    None => self.push(Value::Extension(c))?,
                }
            }
            op::REDUCE => {
                let args = self.pop(at)?;
                let callable = self.pop(at)?;
                let args = self.args_of(args);
                let v = self.call(at, CallKind::Reduce, callable, args, None)?;
                self.push(v)?;
            }
            op::NEWOBJ => {
                let args = self.pop(at)?;
                let cls = self.pop(at)?;
                let args = self.args_of(args);
                let v = self.call(at, CallKind::NewObj, cls, args, None)?;
                self.push(v)?;
            }
            op::NEWOBJ_EX => {
                let kwargs = self.pop(at)?;
                let args = self.pop(at)?;
                let cls = self.pop(at)?;
                let args = self.args_of(args);
                let v = self.call(at, CallKind::NewObj, cls, args, Some(kwargs))?;
                self.push(v)?;
            }
            op::INST => {
                let module = self.read_line_str()?;
                let name = self.read_line_str()?;
                let k = self.pop_mark(at)?;
                let args = self.pop_to(k, at)?;
                let cls = self.global(&module, &name, "INST", at)?;
                let v = self.call(at, CallKind::Instantiate, cls, args.into(), None)?;
                self.push(v)?;
            }
            op::OBJ => {
                let k = self.pop_mark(at)?;
                if self.stack.len() < k + 1 {
                    return Err(malformed(at, "unpickling stack underflow"));
                }
                let mut items = self.pop_to(k, at)?;
                let cls = items.remove(0);
                let v = self.call(at, CallKind::Instantiate, cls, items.into(), None)?;
                self.push(v)?;
            }
            op::BUILD => {
                if self.stack.len() < self.fence() + 2 {
                    return Err(malformed(at, "unpickling stack underflow"));
                }
                let state = self.pop(at)?;
                self.build(state, at)?;
            }
            op::PERSID => {
                let at_line = self.pos;
                let line = self.read_line()?;
                if !line.is_ascii() {
                    return Err(malformed(
                        at_line,
                        "persistent IDs in protocol 0 must be ASCII strings",
                    ));
                }
                let pid = Value::Str(String::from_utf8_lossy(line).into());
                self.persistent(pid, at)?;
            }
            op::BINPERSID => {
                let pid = self.pop(at)?;
                self.persistent(pid, at)?;
            }
            op::NEXT_BUFFER => {
                self.out.anomalies.push(Anomaly {
                    offset: at as u64,
                    kind: AnomalyKind::OutOfBandBuffer,
                    detail: "NEXT_BUFFER: the stream refers to out-of-band data".into(),
                });
                self.push(Value::Opaque("out-of-band buffer"))?;
            }
            op::READONLY_BUFFER => {
                self.top(at)?;
            }
            other => return Err(malformed(at, format!("invalid load key, '\\x{other:02x}'"))),
        }
        Ok(())
    }

    /// The arguments of a call: a tuple is shared, not copied (the same large tuple may be
    /// handed to many calls).
    fn args_of(&self, args: Value<'a>) -> Rc<[Value<'a>]> {
        match args {
            Value::Tuple(t) => t,
            // CPython raises for non-tuple arguments; keep the value as the evidence.
            other => Rc::new([other]),
        }
    }

    fn pairs(&mut self, items: Vec<Value<'a>>) -> Vec<(Value<'a>, Value<'a>)> {
        let mut it = items.into_iter();
        let mut pairs = Vec::new();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            let k = self.keep(k);
            let v = self.keep(v);
            pairs.push((k, v));
        }
        pairs
    }

    /// `APPEND`/`APPENDS`/`ADDITEMS`: items above position `x` go into the object at `x-1`.
    fn do_append(&mut self, x: usize, at: usize) -> Step<()> {
        let len = self.stack.len();
        if x > len || x <= self.fence() || x == 0 {
            return Err(malformed(at, "unpickling stack underflow"));
        }
        let items = self.stack.split_off(x);
        let target = self.stack[x - 1].clone();
        let items: Vec<Value<'a>> = items.into_iter().map(|v| self.keep(v)).collect();
        if let Value::Ref(id) = target {
            match self.objs.get_mut(id as usize) {
                Some(Obj::List(l)) | Some(Obj::Set(l)) => l.extend(items),
                // A non-list target: CPython calls its `append`/`extend`/`add` method,
                // which belongs to the object's class (already judged as a call).
                _ => {}
            }
        }
        Ok(())
    }

    fn do_setitems(&mut self, x: usize, at: usize) -> Step<()> {
        let len = self.stack.len();
        if x > len || x <= self.fence() || x == 0 {
            return Err(malformed(at, "unpickling stack underflow"));
        }
        if !(len - x).is_multiple_of(2) {
            return Err(malformed(at, "odd number of items for SETITEMS"));
        }
        let items = self.stack.split_off(x);
        let target = self.stack[x - 1].clone();
        let pairs = self.pairs(items);
        match target {
            Value::Ref(id) => match self.objs.get_mut(id as usize) {
                Some(Obj::Dict(d)) => d.extend(pairs),
                // `OrderedDict()` and other mappings built by a call: their items name
                // the tensors they hold.
                Some(Obj::Call(_)) => self.call_items.entry(id).or_default().extend(pairs),
                _ => {}
            },
            Value::Global(g) => {
                // Item assignment into a module-level object: a registry, a cache, a
                // config dict. `copyreg._inverted_registry` makes later EXT codes name
                // whatever the stream wants.
                let qn = canonical(&g.module, &g.name);
                for (k, v) in &pairs {
                    if let (Value::Int(code), Value::Tuple(t)) = (k, v)
                        && let (Some(Value::Str(m)), Some(Value::Str(n))) = (t.first(), t.get(1))
                        && qn.ends_with("_inverted_registry")
                    {
                        self.ext_registry
                            .insert(*code as u32, (m.to_string(), n.to_string()));
                    }
                }
                let r = self.renderer();
                let shown: Vec<String> = pairs
                    .iter()
                    .take(4)
                    .map(|(k, v)| format!("{}: {}", r.value(k), r.value(v)))
                    .collect();
                self.out.anomalies.push(Anomaly {
                    offset: at as u64,
                    kind: AnomalyKind::BuildOnGlobal,
                    detail: format!("item assignment into {qn}: {}", shown.join(", ")),
                });
            }
            _ => {}
        }
        Ok(())
    }

    fn persistent(&mut self, pid: Value<'a>, at: usize) -> Step<()> {
        let rendered = self.renderer().value(&pid);
        let rendered_rc: Rc<str> = rendered.as_str().into();
        if !self.storage_ids.contains_key(&rendered_rc)
            && let Some(s) = super::torch::storage_ref(&pid)
        {
            self.storage_ids
                .insert(rendered_rc.clone(), self.out.torch_storages.len());
            self.out.torch_storages.push(s);
        }
        let (mut storage_key, mut is_torch) = (None, false);
        if let Value::Tuple(t) = &pid
            && let Some(Value::Str(tag)) = t.first()
        {
            // Legacy torch.save: ('module', cls, source_file, source) — torch's
            // persistent_load returns the class itself.
            if &**tag == "module"
                && let Some(cls @ Value::Global(_)) = t.get(1)
            {
                let cls = cls.clone();
                self.out.persistent.push(PersistentRef {
                    offset: at as u64,
                    rendered,
                    storage_key: None,
                    is_torch_storage: true,
                });
                return self.push(cls);
            }
            if &**tag == "storage" && t.len() >= 3 {
                is_torch = true;
                storage_key = t.get(2).and_then(|k| match k {
                    Value::Str(s) => Some(s.to_string()),
                    Value::Int(i) => Some(i.to_string()),
                    _ => None,
                });
            }
        }
        self.out.persistent.push(PersistentRef {
            offset: at as u64,
            rendered: rendered.clone(),
            storage_key,
            is_torch_storage: is_torch,
        });
        // Globals named inside a persistent id (the storage type) are references, not calls.
        self.push(Value::Persistent(rendered_rc))
    }

    fn build(&mut self, state: Value<'a>, at: usize) -> Step<()> {
        let inst = self.top(at)?.clone();
        match &inst {
            Value::Global(g) => {
                let r = self.renderer().value(&state);
                self.out.anomalies.push(Anomaly {
                    offset: at as u64,
                    kind: AnomalyKind::BuildOnGlobal,
                    detail: format!("BUILD sets attributes of {} to {}", g.qualified(), r),
                });
            }
            Value::Ref(id) => {
                let id = *id as usize;
                self.check_dunder_state(&state, at);
                let mut wrapper = None;
                let mut reconstruct = false;
                if let Some(Obj::Call(c)) = self.objs.get_mut(id) {
                    c.state = Some(state.clone());
                    if let Value::Global(g) = &c.callable {
                        if g.name == "NumpyArrayWrapper"
                            && g.module.ends_with("joblib.numpy_pickle")
                        {
                            wrapper = Some(());
                        }
                        reconstruct = g.name == "_reconstruct"
                            && matches!(
                                g.module.as_str(),
                                "numpy.core.multiarray" | "numpy._core.multiarray"
                            );
                    }
                }
                if wrapper.is_some() && self.joblib_arrays {
                    self.joblib_inline_array(&state, at, id as u32)?;
                    // A described numeric array stays the wrapper object, so that it can
                    // be named by its key path.
                    if !self.numpy_objs.contains_key(&(id as u32)) {
                        let top = self.stack.len() - 1;
                        self.stack[top] = Value::Opaque("joblib inline array");
                    }
                } else if reconstruct {
                    self.reconstructed_array(&state, at, id as u32);
                }
            }
            _ => self.check_dunder_state(&state, at),
        }
        Ok(())
    }

    fn check_dunder_state(&mut self, state: &Value<'a>, at: usize) {
        let mut keys = Vec::new();
        // `(state, slotstate)`: CPython unpacks a state tuple of two dicts.
        let dicts: Vec<Value<'a>> = match state {
            Value::Tuple(t) => t.iter().take(2).cloned().collect(),
            other => vec![other.clone()],
        };
        for d in dicts {
            if let Value::Ref(id) = d
                && let Some(Obj::Dict(pairs)) = self.objs.get(id as usize)
            {
                // Pairs checked at an earlier BUILD are not checked again: each key is
                // reported once, at the first BUILD that applies it.
                let checked = self.dunder_checked.insert(id, pairs.len()).unwrap_or(0);
                for (k, _) in pairs.iter().skip(checked) {
                    match k {
                        Value::Str(s)
                            if s.starts_with("__")
                                && s.ends_with("__")
                                && s.len() > 4
                                && &**s != "__dict__" =>
                        {
                            keys.push(s.to_string());
                        }
                        // An attribute name computed at load time: evaluate it if a
                        // pure function made it, otherwise it is suspect by itself.
                        Value::Ref(_) | Value::Global(_) | Value::Dynamic(_) => {
                            match self.eval_str(k) {
                                Some(s) if s.starts_with("__") && s.ends_with("__") => {
                                    keys.push(format!("{s} (computed)"))
                                }
                                Some(_) => {}
                                None => keys
                                    .push(format!("<computed name {}>", self.renderer().value(k))),
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
        if !keys.is_empty() {
            self.out.anomalies.push(Anomaly {
                offset: at as u64,
                kind: AnomalyKind::DunderState,
                detail: format!("BUILD state sets {}", keys.join(", ")),
            });
        }
    }

    fn dict_get(&self, d: &Value<'a>, key: &str) -> Option<Value<'a>> {
        let Value::Ref(id) = d else { return None };
        let Some(Obj::Dict(pairs)) = self.objs.get(*id as usize) else {
            return None;
        };
        pairs
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v.clone())
    }

    /// joblib's `NumpyUnpickler.load_build`: after `BUILD` of a `NumpyArrayWrapper`, the
    /// array's bytes follow inline in the stream — raw data, or for object arrays a whole
    /// nested pickle that plain `pickle.load` reads.
    fn joblib_inline_array(&mut self, state: &Value<'a>, at: usize, obj: u32) -> Step<()> {
        let fail = |detail: &str| Stop {
            offset: at,
            kind: AnomalyKind::JoblibArray,
            detail: detail.to_string(),
        };
        let dtype = self
            .dict_get(state, "dtype")
            .ok_or_else(|| fail("joblib array wrapper without a dtype"))?;
        let shape = self
            .dict_get(state, "shape")
            .ok_or_else(|| fail("joblib array wrapper without a shape"))?;
        let (itemsize, hasobject) = self.dtype_info(&dtype).ok_or_else(|| {
            fail("joblib array wrapper with a dtype that cannot be read statically")
        })?;
        let count = match &shape {
            Value::Tuple(dims) => dims.iter().try_fold(1u64, |acc, d| match d {
                Value::Int(n) if *n >= 0 => acc.checked_mul(*n as u64),
                _ => None,
            }),
            _ => None,
        }
        .ok_or_else(|| fail("joblib array wrapper with an unreadable shape"))?;
        let start = self.pos;
        if hasobject {
            if self.inline_depth >= self.limits.max_inline_depth {
                return Err(self.limit(format!(
                    "joblib object arrays nested deeper than {}",
                    self.limits.max_inline_depth
                )));
            }
            let end = run_one(
                self.data,
                start,
                self.limits,
                self.out,
                self.inline_depth + 1,
                // joblib reads object arrays with plain `pickle.load`.
                false,
            )?;
            self.out
                .inline_arrays
                .push((start as u64, (end - start) as u64));
            self.out
                .object_arrays
                .push((start as u64, (end - start) as u64));
            self.pos = end;
            return Ok(());
        }
        let alignment = self.dict_get(state, "numpy_array_alignment_bytes");
        if matches!(alignment, Some(Value::Int(_))) {
            let pad = self.read_u8()? as usize;
            if pad != 0 {
                self.read(pad)?;
            }
        }
        let nbytes = count
            .checked_mul(itemsize)
            .ok_or_else(|| fail("joblib array size overflows"))?;
        let nbytes = usize::try_from(nbytes).map_err(|_| fail("joblib array size overflows"))?;
        let data_start = self.pos;
        // Raw array bytes are skipped, not copied, and not subject to FRAME checks.
        let end = data_start
            .checked_add(nbytes)
            .filter(|e| *e <= self.data.len())
            .ok_or_else(|| Stop {
                offset: data_start,
                kind: AnomalyKind::Truncated,
                detail: format!("joblib array of {nbytes} bytes runs past the end of the data"),
            })?;
        self.pos = end;
        self.frame_end = None;
        self.out
            .inline_arrays
            .push((data_start as u64, nbytes as u64));
        if let (Some(code), Some(dims)) = (self.dtype_code(&dtype), dims_of(&shape)) {
            let fortran = matches!(
                self.dict_get(state, "order")
                    .as_ref()
                    .and_then(Value::as_str),
                Some("F")
            );
            self.push_numpy_array(
                obj,
                NumpyArrayRef {
                    offset: at as u64,
                    name: None,
                    aliases: Vec::new(),
                    dtype: code,
                    shape: dims,
                    fortran_order: fortran,
                    data: (data_start as u64, nbytes as u64),
                },
            );
        }
        Ok(())
    }

    /// `numpy.core.multiarray._reconstruct(ndarray, (0,), b'b')` then `BUILD` with
    /// `(version, shape, dtype, is_fortran, rawdata)`: the raw bytes are a bytes object of
    /// the stream itself (kept as a range, not copied). Object arrays carry a list instead
    /// and are not recorded.
    fn reconstructed_array(&mut self, state: &Value<'a>, at: usize, obj: u32) {
        let Value::Tuple(st) = state else { return };
        let (Some(shape), Some(dtype), Some(fortran), Some(Value::Bytes(raw))) =
            (st.get(1), st.get(2), st.get(3), st.get(4))
        else {
            return;
        };
        let Some(dims) = dims_of(shape) else { return };
        let Some(code) = self.dtype_code(dtype) else {
            return;
        };
        let Some((itemsize, false)) = self.dtype_info(dtype) else {
            return;
        };
        // The payload must be a slice of this stream and exactly the array's size.
        let base = self.data.as_ptr() as usize;
        let p = raw.as_ptr() as usize;
        if p < base || p - base + raw.len() > self.data.len() {
            return;
        }
        let n = dims.iter().try_fold(itemsize, |a, d| a.checked_mul(*d));
        if n != Some(raw.len() as u64) {
            return;
        }
        let fortran = match fortran {
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            _ => return,
        };
        self.push_numpy_array(
            obj,
            NumpyArrayRef {
                offset: at as u64,
                name: None,
                aliases: Vec::new(),
                dtype: code,
                shape: dims,
                fortran_order: fortran,
                data: ((p - base) as u64, raw.len() as u64),
            },
        );
    }

    fn push_numpy_array(&mut self, obj: u32, a: NumpyArrayRef) {
        if self.out.numpy_arrays.len() >= MAX_NUMPY_ARRAYS {
            return;
        }
        self.numpy_objs.insert(obj, self.out.numpy_arrays.len());
        self.out.numpy_arrays.push(a);
    }

    /// The dtype string with its byte order (`<f4`) of a `numpy.dtype(code, …)` built in
    /// the stream.
    fn dtype_code(&self, dtype: &Value<'a>) -> Option<String> {
        let Value::Ref(id) = dtype else { return None };
        let Obj::Call(c) = self.objs.get(*id as usize)? else {
            return None;
        };
        let Value::Global(g) = &c.callable else {
            return None;
        };
        if !g.module.starts_with("numpy") || g.name != "dtype" {
            return None;
        }
        let code = c.args.first()?.as_str()?;
        if code.len() > 8 {
            return None;
        }
        let order = match &c.state {
            Some(Value::Tuple(st)) => st.get(1).and_then(Value::as_str).unwrap_or("|"),
            _ => "|",
        };
        let code = code.trim_start_matches(['<', '>', '=', '|']);
        // Numeric kinds only: strings, datetimes and records are not weights.
        if !code.starts_with(['b', 'i', 'u', 'f', 'c']) {
            return None;
        }
        let order = if order == "=" { "<" } else { order };
        Some(format!("{order}{code}"))
    }

    /// Names the numpy arrays of this pickle by where they sit in its result.
    fn name_numpy_arrays(&mut self) {
        if self.numpy_objs.is_empty() {
            return;
        }
        let Some(root) = self.stack.last().cloned() else {
            return;
        };
        // The namer names `TorchTensorRef`s: name placeholders, then copy the names.
        let placeholder = TorchTensorRef {
            offset: 0,
            name: None,
            aliases: Vec::new(),
            storage: 0,
            dtype: None,
            storage_offset: 0,
            size: Vec::new(),
            stride: Vec::new(),
        };
        let mut names = vec![placeholder; self.out.numpy_arrays.len()];
        let mut namer = super::torch::Namer {
            objs: &self.objs,
            tensors: &self.numpy_objs,
            items: &self.call_items,
            visited: Default::default(),
            steps: 0,
            first: Default::default(),
            first_bytes: 0,
            revisits: Vec::new(),
        };
        namer.walk(&root, "", 0, &mut names);
        let (fp, revisits) = (namer.first, namer.revisits);
        super::torch::name_aliases(&fp, &revisits, &mut names);
        for &i in self.numpy_objs.values() {
            if let (Some(a), Some(n)) = (self.out.numpy_arrays.get_mut(i), names.get_mut(i))
                && a.name.is_none()
            {
                a.name = n.name.take();
                a.aliases = std::mem::take(&mut n.aliases);
            }
        }
    }

    /// (itemsize, hasobject) of a `numpy.dtype(...)` built in the stream.
    fn dtype_info(&self, dtype: &Value<'a>) -> Option<(u64, bool)> {
        let Value::Ref(id) = dtype else { return None };
        let Obj::Call(c) = self.objs.get(*id as usize)? else {
            return None;
        };
        let Value::Global(g) = &c.callable else {
            return None;
        };
        if !g.module.starts_with("numpy") || g.name != "dtype" {
            return None;
        }
        let code = c.args.first()?.as_str()?.to_string();
        // BUILD state: (version, byteorder, subarray, names, fields, elsize, alignment, flags)
        let (mut elsize, mut flags) = (-1i64, 0i64);
        // numpy's arraydescr_setstate: 9 items (v4, with metadata) and 8 items (v3) carry
        // flags at index 7; older states (5–7 items) do not, and numpy derives the flags
        // from the fields — so any fields there are treated as possibly holding objects.
        let mut fields_without_flags = false;
        if let Some(Value::Tuple(st)) = &c.state {
            if let Some(Value::Int(e)) = st.get(5) {
                elsize = *e;
            }
            if st.len() >= 8 {
                if let Some(Value::Int(f)) = st.get(7) {
                    flags = *f;
                }
            } else {
                fields_without_flags = !matches!(st.get(4), None | Some(Value::None));
            }
        }
        let kind = code.trim_start_matches(['<', '>', '=', '|']);
        let hasobject = kind.starts_with('O')
            || kind.contains("object")
            || flags & 1 != 0
            || fields_without_flags;
        if hasobject {
            return Some((8, true));
        }
        if elsize > 0 {
            return Some((elsize as u64, false));
        }
        let (letter, digits) = kind.split_at(
            kind.find(|c: char| c.is_ascii_digit())
                .unwrap_or(kind.len()),
        );
        let n: u64 = digits.parse().ok()?;
        let size = match letter {
            "U" => n.checked_mul(4)?,
            "b" | "i" | "u" | "f" | "c" | "S" | "V" | "M" | "m" | "a" => n,
            _ => return None,
        };
        Some((size, false))
    }
}

/// A shape tuple of non-negative ints.
fn dims_of(shape: &Value<'_>) -> Option<Vec<u64>> {
    match shape {
        Value::Tuple(dims) => dims
            .iter()
            .map(|d| match d {
                Value::Int(n) if *n >= 0 => Some(*n as u64),
                _ => None,
            })
            .collect(),
        _ => None,
    }
}

/// `a.b.c` where every part is a Python identifier (Unicode letters allowed).
fn is_dotted_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.split('.').all(|part| {
            let mut chars = part.chars();
            chars.next().is_some_and(|c| c == '_' || c.is_alphabetic())
                && chars.all(|c| c == '_' || c.is_alphanumeric())
        })
}

/// CPython parses text arguments as C strings: a NUL ends them.
fn until_nul(line: &[u8]) -> &[u8] {
    line.iter()
        .position(|&b| b == 0)
        .map_or(line, |i| &line[..i])
}

/// `PUT`/`GET` indices: `int(s, 10)` semantics (whitespace, sign, underscores).
fn parse_index(line: &[u8]) -> Option<u64> {
    match parse_int_base(std::str::from_utf8(until_nul(line)).ok()?.trim(), Some(10))? {
        (false, v) => u64::try_from(v).ok(),
        (true, _) => None,
    }
}

/// `INT`/`LONG`: C `strtol(s, 0)` then `int(s, 0)`: 0x/0o/0b prefixes, a leading-0
/// octal (strtol), underscores between digits (int), sign, surrounding whitespace.
fn parse_int(line: &[u8]) -> Option<Value<'static>> {
    let s = std::str::from_utf8(line).ok()?.trim();
    if let Some((neg, v)) = parse_int_base(s, None) {
        return Some(match i64::try_from(v) {
            Ok(v) => Value::Int(if neg { -v } else { v }),
            Err(_) => Value::BigInt(16),
        });
    }
    // Digits beyond u128: a big int.
    let digits = s.trim_start_matches(['-', '+']);
    if !digits.is_empty()
        && digits
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && digits.as_bytes()[0].is_ascii_digit()
    {
        return Some(Value::BigInt(digits.len() / 2 + 1));
    }
    None
}

fn parse_int_base(s: &str, base: Option<u32>) -> Option<(bool, u128)> {
    let (neg, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = body.to_ascii_lowercase();
    let (radix, digits) = match base {
        Some(b) => (b, lower.as_str()),
        None if lower.starts_with("0x") => (16, &lower[2..]),
        None if lower.starts_with("0o") => (8, &lower[2..]),
        None if lower.starts_with("0b") => (2, &lower[2..]),
        // strtol base 0: a leading zero means octal.
        None if lower.len() > 1 && lower.starts_with('0') && !lower.contains('_') => {
            (8, &lower[1..])
        }
        None => (10, lower.as_str()),
    };
    let digits = digits.strip_prefix('_').unwrap_or(digits);
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
    {
        return None;
    }
    let clean: String = digits.chars().filter(|&c| c != '_').collect();
    u128::from_str_radix(&clean, radix).ok().map(|v| (neg, v))
}

/// `float(s)` syntax, including `inf`/`nan` and underscores.
fn parse_float(s: &str) -> Option<f64> {
    if let Ok(f) = s.parse::<f64>() {
        return Some(f);
    }
    let clean: String = s.chars().filter(|&c| c != '_').collect();
    match clean.to_ascii_lowercase().trim_start_matches(['+', '-']) {
        "infinity" | "inf" => Some(f64::INFINITY),
        "nan" => Some(f64::NAN),
        _ => clean.parse::<f64>().ok(),
    }
}

fn long_from_le(b: &[u8]) -> Value<'static> {
    if b.is_empty() {
        return Value::Int(0);
    }
    if b.len() <= 8 {
        let mut buf = if b[b.len() - 1] & 0x80 != 0 {
            [0xffu8; 8]
        } else {
            [0u8; 8]
        };
        buf[..b.len()].copy_from_slice(b);
        return Value::Int(i64::from_le_bytes(buf));
    }
    Value::BigInt(b.len())
}

/// Protocol 0 `STRING`: a quoted Python 2 string literal with backslash escapes.
fn decode_string_literal(line: &[u8]) -> Option<String> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.len() < 2 {
        return None;
    }
    let q = line[0];
    if !(q == b'\'' || q == b'"') || line[line.len() - 1] != q {
        return None;
    }
    let body = &line[1..line.len() - 1];
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        let c = body[i];
        if c != b'\\' || i + 1 >= body.len() {
            out.push(c);
            i += 1;
            continue;
        }
        let e = body[i + 1];
        i += 2;
        match e {
            b'n' => out.push(b'\n'),
            b't' => out.push(b'\t'),
            b'r' => out.push(b'\r'),
            b'\\' => out.push(b'\\'),
            b'\'' => out.push(b'\''),
            b'"' => out.push(b'"'),
            b'a' => out.push(7),
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'v' => out.push(11),
            b'\n' => {}
            b'x' => {
                let h = body
                    .get(i..i + 2)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match h {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => return None,
                }
            }
            b'0'..=b'7' => {
                let mut v = u32::from(e - b'0');
                let mut n = 1;
                while n < 3 && i < body.len() && (b'0'..=b'7').contains(&body[i]) {
                    v = v * 8 + u32::from(body[i] - b'0');
                    i += 1;
                    n += 1;
                }
                out.push((v & 0xff) as u8);
            }
            other => {
                out.push(b'\\');
                out.push(other);
            }
        }
    }
    Some(out.iter().map(|&c| c as char).collect())
}

/// Protocol 0 `UNICODE`: raw-unicode-escape (only `\uXXXX` and `\UXXXXXXXX` escapes).
fn decode_raw_unicode_escape(line: &[u8]) -> String {
    let mut out = String::with_capacity(line.len());
    let mut i = 0;
    while i < line.len() {
        if line[i] == b'\\' && i + 1 < line.len() && (line[i + 1] == b'u' || line[i + 1] == b'U') {
            let n = if line[i + 1] == b'u' { 4 } else { 8 };
            if let Some(ch) = line
                .get(i + 2..i + 2 + n)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .and_then(char::from_u32)
            {
                out.push(ch);
                i += 2 + n;
                continue;
            }
        }
        out.push(line[i] as char);
        i += 1;
    }
    out
}
