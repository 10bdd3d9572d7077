//! Python source shipped with a model (the files `trust_remote_code=True` imports, and
//! every other `.py` in the repository), parsed with Ruff's parser and judged symbolically:
//! nothing is imported or run.
//!
//! The analysis resolves what each name means (`import subprocess as sp`,
//! `from os import system as s`, `f = os.system`, `getattr(os, "system")`,
//! `__import__("os")`, `sys.modules["os"]`, star imports) and reports uses of process
//! execution, dynamic code, decode-then-execute chains, network clients, credential and
//! home-directory reads, downloads, writes outside the repository and native libraries.
//! It is flow-insensitive on purpose: a name bound anywhere in the file is bound
//! everywhere, so reordering code cannot hide a call.
//!
//! Hostile sources are bounded before the parser sees them: a size limit, and a token-level
//! estimate of the syntax tree's depth (CPython itself rejects sources nested a few
//! thousand levels deep), so neither the parser, this visitor, nor dropping the tree can
//! exhaust the stack or memory.

use crate::engine::{FileScan, Loc};
use crate::rules::code;
use assay_report::Severity;
use ruff_python_ast::token::TokenKind;
use ruff_python_ast::visitor::{self, Visitor};
use ruff_python_ast::{self as ast, Expr, Stmt};
use ruff_python_parser::{Mode, lexer, parse_module};
use ruff_text_size::Ranged;
use std::collections::{HashMap, HashSet};

mod names;
#[cfg(test)]
mod tests;

use names::{
    BUILTINS, DECODERS, FILE_MUTATORS, OBFUSCATING_CODECS, PATH_MUTATORS, SENSITIVE_MODULES,
    classify, credential_path, normalise, outside_literal, secret_env_name,
};

/// Largest source analysed; real modeling files are well under 1 MiB.
pub const MAX_PYTHON_SOURCE: usize = 4 << 20;
/// Largest estimated syntax-tree depth parsed. CPython's own parser and compiler give up
/// long before this on real code, so a deeper file cannot be imported either.
pub const MAX_PYTHON_NESTING: u32 = 2_500;
/// Distinct behaviours reported per file (each is reported once, with a count).
pub const MAX_HITS_PER_FILE: usize = 64;
/// `exec("…")` of a literal is analysed as Python itself, this many levels deep.
pub const MAX_EXEC_NESTING: u32 = 3;
/// Characters of a source line kept as evidence.
const MAX_EVIDENCE: usize = 200;
/// Stack kept free before the visitor recurses; below it a new segment is allocated.
const STACK_RED_ZONE: usize = 512 * 1024;
const STACK_SEGMENT: usize = 4 << 20;
/// Below this estimated depth a tree is dropped on the current stack.
const SHALLOW_NESTING: u32 = 100;
/// Stack reserved per level of a deep tree when it is dropped (debug builds use more
/// than release builds; the memory is only touched as deep as the tree goes).
const DROP_FRAME_BYTES: usize = 4096;

/// What a piece of code does, in the user's words. Each maps to one rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Behaviour {
    ProcessExecution,
    DynamicCode,
    DecodeAndExecute,
    Network,
    Credentials,
    HomeDirectory,
    EnvironmentSecret,
    Download,
    WriteOutside,
    NativeLibrary,
}

impl Behaviour {
    pub fn describe(self) -> &'static str {
        match self {
            Behaviour::ProcessExecution => "runs a process",
            Behaviour::DynamicCode => "executes dynamically built code",
            Behaviour::DecodeAndExecute => "decodes data and executes it",
            Behaviour::Network => "opens network connections",
            Behaviour::Credentials => "reads credentials",
            Behaviour::HomeDirectory => "reads the user's home directory",
            Behaviour::EnvironmentSecret => "reads a secret from the environment",
            Behaviour::Download => "downloads files or code",
            Behaviour::WriteOutside => "writes or deletes files outside the repository",
            Behaviour::NativeLibrary => "loads a native library",
        }
    }
}

/// One behaviour found in a file, at its first occurrence.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub behaviour: Behaviour,
    pub severity: Severity,
    /// The resolved callable or the literal that gave it away (`os.system`, `~/.ssh`).
    pub what: String,
    /// Byte offset of the first occurrence in the source.
    pub offset: usize,
    /// 1-based line of the first occurrence.
    pub line: usize,
    /// `at import time` or `in Class.method`.
    pub context: String,
    /// The source line of the first occurrence.
    pub evidence: String,
    /// Occurrences in the file.
    pub count: usize,
}

/// What the analysis learnt about one file.
#[derive(Debug, Default)]
pub struct PythonAnalysis {
    pub hits: Vec<Hit>,
    /// Modules imported relatively (`from .configuration_x import …` gives
    /// `configuration_x`); `trust_remote_code` fetches and runs these too.
    pub relative_imports: Vec<String>,
    /// The file has statements beyond a docstring.
    pub has_code: bool,
    /// More than [`MAX_HITS_PER_FILE`] distinct behaviours; the rest were dropped.
    pub truncated: bool,
}

/// Why a file could not be analysed.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    TooLarge { len: usize },
    TooDeep { estimate: u32 },
    Syntax { offset: usize, message: String },
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::TooLarge { len } => write!(
                f,
                "{len} bytes is more than the {MAX_PYTHON_SOURCE} bytes Assay analyses"
            ),
            Refusal::TooDeep { estimate } => write!(
                f,
                "nested about {estimate} levels deep, more than the {MAX_PYTHON_NESTING} Assay parses"
            ),
            Refusal::Syntax { message, .. } => write!(f, "not valid Python: {message}"),
        }
    }
}

impl Behaviour {
    /// The rule each behaviour is reported under.
    pub fn rule(self) -> &'static str {
        match self {
            Behaviour::ProcessExecution => code::HFR011,
            Behaviour::DynamicCode => code::HFR012,
            Behaviour::DecodeAndExecute => code::HFR013,
            Behaviour::Network => code::HFR014,
            Behaviour::Credentials | Behaviour::HomeDirectory | Behaviour::EnvironmentSecret => {
                code::HFR015
            }
            Behaviour::Download => code::HFR016,
            Behaviour::WriteOutside => code::HFR017,
            Behaviour::NativeLibrary => code::HFR018,
        }
    }
}

/// Why a Python file matters to whoever loads the model.
#[derive(Debug, Clone)]
pub enum Role {
    /// Named by `auto_map`/`custom_pipelines`, or imported relatively by such a file:
    /// `trust_remote_code=True` runs it. `via` says which entry.
    RemoteCode { via: String },
    /// Any other `.py` in the repository: it runs if something imports it.
    Shipped,
    /// A `.py` member of an archive.
    ArchiveMember,
}

impl Role {
    fn consequence(&self) -> String {
        match self {
            Role::RemoteCode { via } => format!("trust_remote_code=True runs this file ({via})"),
            Role::Shipped => "it runs if the model's code imports it".into(),
            Role::ArchiveMember => "it runs if the unpacked code is imported".into(),
        }
    }
}

/// Analyses `source` and reports what it does. `lossy` says the bytes were not UTF-8 and
/// were read one byte per character (the caller reports that separately).
pub fn report(
    ctx: &mut FileScan,
    loc: &Loc,
    source: &str,
    result: Result<PythonAnalysis, Refusal>,
    lossy: bool,
    role: &Role,
) {
    let remote = matches!(role, Role::RemoteCode { .. });
    let analysis = match result {
        Ok(a) => a,
        Err(refusal) => {
            if lossy {
                // The non-UTF-8 finding already says the file could not be analysed.
                return;
            }
            ctx.incomplete = true;
            let (offset, evidence) = match &refusal {
                Refusal::Syntax { offset, .. } => {
                    let (line, text) = line_at(source, *offset);
                    (Some(*offset as u64), Some(format!("line {line}: {text}")))
                }
                _ => (None, None),
            };
            ctx.add(
                code::HFR020,
                if remote {
                    Severity::High
                } else {
                    Severity::Medium
                },
                loc,
                offset,
                format!(
                    "Python source could not be analysed: {refusal}; {}",
                    role.consequence()
                ),
                evidence,
            );
            return;
        }
    };
    let mut serious = false;
    for h in &analysis.hits {
        serious |= h.severity >= Severity::High;
        let times = if h.count > 1 {
            format!(" ({} places)", h.count)
        } else {
            String::new()
        };
        ctx.add(
            h.behaviour.rule(),
            h.severity,
            loc,
            Some(h.offset as u64),
            format!(
                "{} ({}) {}, line {}{times}; {}",
                h.behaviour.describe(),
                h.what,
                h.context,
                h.line,
                role.consequence()
            ),
            Some(h.evidence.clone()),
        );
    }
    if analysis.truncated {
        ctx.add(
            code::HFR010,
            Severity::Info,
            loc,
            None,
            format!("more than {MAX_HITS_PER_FILE} distinct behaviours; the rest are not listed"),
            None,
        );
    }
    if !serious && analysis.has_code {
        let message = match role {
            Role::RemoteCode { via } => format!(
                "code that runs with trust_remote_code=True ({via}); no dangerous behaviour found, review it before trusting it"
            ),
            _ => format!(
                "Python code shipped with the model; no dangerous behaviour found ({})",
                role.consequence()
            ),
        };
        ctx.add(code::HFR010, Severity::Medium, loc, None, message, None);
    }
}

/// Parses and analyses one Python source.
pub fn analyse(source: &str) -> Result<PythonAnalysis, Refusal> {
    analyse_nested(source, 0)
}

fn analyse_nested(source: &str, nest: u32) -> Result<PythonAnalysis, Refusal> {
    if source.len() > MAX_PYTHON_SOURCE {
        return Err(Refusal::TooLarge { len: source.len() });
    }
    let nesting = nesting_estimate(source);
    if nesting > MAX_PYTHON_NESTING {
        return Err(Refusal::TooDeep { estimate: nesting });
    }
    let parsed = parse_module(source).map_err(|e| Refusal::Syntax {
        offset: e.location.start().to_usize(),
        message: e.error.to_string(),
    })?;
    let body = parsed.suite();
    let mut collector = Collector::default();
    // Twice, so that a binding used before it is made (in source order) still resolves.
    for _ in 0..2 {
        for stmt in body {
            collector.visit_stmt(stmt);
        }
    }
    let lines = LineIndex::new(source);
    let mut detector = Detector {
        b: &collector.b,
        source,
        lines: &lines,
        scope: Vec::new(),
        hits: Vec::new(),
        seen: HashMap::new(),
        truncated: false,
        nest,
    };
    for stmt in body {
        detector.visit_stmt(stmt);
    }
    let has_code = body
        .iter()
        .enumerate()
        .any(|(i, s)| !(i == 0 && matches!(s, Stmt::Expr(e) if e.value.is_string_literal_expr())));
    let mut relative: Vec<String> = collector.relative.into_iter().collect();
    relative.sort();
    let mut hits = detector.hits;
    let truncated = detector.truncated;
    // A secret or the home directory read by code that also talks to the network is
    // the shape of exfiltration.
    let networked = hits
        .iter()
        .any(|h| matches!(h.behaviour, Behaviour::Network | Behaviour::Download));
    if networked {
        for h in &mut hits {
            if matches!(
                h.behaviour,
                Behaviour::EnvironmentSecret | Behaviour::HomeDirectory
            ) {
                h.severity = Severity::Critical;
                h.what.push_str(", in a file that uses the network");
            }
        }
    }
    // `expanduser("~/.ssh/id_rsa")` is one credential read, not also a home-folder read.
    let credential_lines: HashSet<usize> = hits
        .iter()
        .filter(|h| h.behaviour == Behaviour::Credentials)
        .map(|h| h.line)
        .collect();
    hits.retain(|h| {
        !(h.behaviour == Behaviour::HomeDirectory && credential_lines.contains(&h.line))
    });
    hits.sort_by_key(|h| h.offset);
    // The tree is dropped recursively: give that a stack sized for the depth bound.
    if nesting > SHALLOW_NESTING {
        stacker::grow(
            nesting as usize * DROP_FRAME_BYTES + STACK_SEGMENT,
            move || drop(parsed),
        );
    } else {
        stacker::maybe_grow(STACK_RED_ZONE, STACK_SEGMENT, move || drop(parsed));
    }
    Ok(PythonAnalysis {
        hits,
        relative_imports: relative,
        has_code,
        truncated,
    })
}

/// Estimates the deepest syntax-tree nesting from tokens alone: open brackets, plus the
/// operators, attribute dots, calls and keywords chained at each bracket level since its
/// last separator, plus indentation. It over-estimates (chained comparisons are one node)
/// and never under-estimates the chains that make deep trees.
fn nesting_estimate(source: &str) -> u32 {
    let mut lx = lexer::lex(source, Mode::Module);
    let mut levels: Vec<u32> = vec![0];
    let mut sum: u32 = 0;
    let mut indent: u32 = 0;
    let mut max: u32 = 0;
    loop {
        let kind = lx.next_token();
        match kind {
            TokenKind::EndOfFile => return max,
            TokenKind::Lpar
            | TokenKind::Lsqb
            | TokenKind::Lbrace
            | TokenKind::FStringStart
            | TokenKind::TStringStart => {
                if let Some(l) = levels.last_mut() {
                    *l += 1;
                }
                sum += 1;
                levels.push(0);
            }
            TokenKind::Rpar
            | TokenKind::Rsqb
            | TokenKind::Rbrace
            | TokenKind::FStringEnd
            | TokenKind::TStringEnd
                if levels.len() > 1 =>
            {
                let c = levels.pop().unwrap_or(0);
                sum = sum.saturating_sub(c);
            }
            TokenKind::Comma | TokenKind::Semi | TokenKind::Equal => {
                if let Some(l) = levels.last_mut() {
                    sum = sum.saturating_sub(*l);
                    *l = 0;
                }
            }
            TokenKind::Newline => {
                levels.clear();
                levels.push(0);
                sum = 0;
            }
            TokenKind::Indent => indent += 1,
            TokenKind::Dedent => indent = indent.saturating_sub(1),
            k if nests(k) => {
                if let Some(l) = levels.last_mut() {
                    *l += 1;
                }
                sum += 1;
            }
            _ => {}
        }
        let estimate = sum
            .saturating_add(levels.len() as u32)
            .saturating_add(indent.saturating_mul(2));
        max = max.max(estimate);
        if estimate > MAX_PYTHON_NESTING {
            return estimate;
        }
    }
}

/// Tokens that can add a level to the syntax tree when chained.
fn nests(k: TokenKind) -> bool {
    use TokenKind as T;
    matches!(
        k,
        T::Plus
            | T::Minus
            | T::Star
            | T::Slash
            | T::Vbar
            | T::Amper
            | T::Less
            | T::Greater
            | T::Dot
            | T::Percent
            | T::EqEqual
            | T::NotEqual
            | T::LessEqual
            | T::GreaterEqual
            | T::Tilde
            | T::CircumFlex
            | T::LeftShift
            | T::RightShift
            | T::DoubleStar
            | T::DoubleSlash
            | T::At
            | T::ColonEqual
            | T::And
            | T::Or
            | T::Not
            | T::If
            | T::Else
            | T::Lambda
            | T::Await
            | T::Yield
            | T::In
            | T::Is
            | T::For
            | T::Async
    )
}

/// Names a file binds, collected over the whole file.
#[derive(Default)]
struct Bindings {
    /// Local name → qualified name (`sp` → `subprocess`, `s` → `os.system`).
    aliases: HashMap<String, String>,
    /// Names bound by assignment, definition or parameter (they shadow builtins).
    local: HashSet<String>,
    /// Modules imported with `*`.
    star: Vec<String>,
    /// Names holding decoded data (`payload = base64.b64decode(…)`).
    tainted: HashSet<String>,
    /// Names bound to a string literal (`name = "system"`).
    constants: HashMap<String, String>,
}

fn literal_str(e: &Expr) -> Option<String> {
    match e {
        Expr::StringLiteral(s) => Some(s.value.to_str().to_string()),
        _ => None,
    }
}

impl Bindings {
    fn qual(&self, e: &Expr) -> Option<String> {
        self.qual_at(e, 0)
    }

    fn qual_at(&self, e: &Expr, depth: u32) -> Option<String> {
        if depth > 32 {
            return None;
        }
        match e {
            Expr::Name(n) => {
                let id = n.id.as_str();
                if let Some(q) = self.aliases.get(id) {
                    return Some(normalise(q));
                }
                if id == "__builtins__" || id == "__builtin__" {
                    return Some("builtins".into());
                }
                if self.local.contains(id) {
                    return None;
                }
                if BUILTINS.contains(&id) {
                    return Some(format!("builtins.{id}"));
                }
                self.star.iter().find_map(|m| {
                    let cand = normalise(&format!("{m}.{id}"));
                    classify(&cand).map(|_| cand)
                })
            }
            Expr::Attribute(a) => {
                let base = self.qual_at(&a.value, depth + 1)?;
                Some(normalise(&format!("{base}.{}", a.attr.as_str())))
            }
            Expr::Call(c) => {
                let f = self.qual_at(&c.func, depth + 1)?;
                let arg = |i: usize| c.arguments.args.get(i);
                match f.as_str() {
                    "builtins.__import__" => {
                        let m = literal_str(arg(0)?)?;
                        let has_fromlist = c.arguments.args.len() >= 4
                            || c.arguments
                                .keywords
                                .iter()
                                .any(|k| k.arg.as_ref().is_some_and(|a| a.as_str() == "fromlist"));
                        let m = if has_fromlist {
                            m
                        } else {
                            m.split('.').next().unwrap_or("").to_string()
                        };
                        (!m.is_empty() && !m.starts_with('.')).then(|| normalise(&m))
                    }
                    "importlib.import_module" | "importlib.__import__" => {
                        let m = literal_str(arg(0)?)?;
                        (!m.starts_with('.')).then(|| normalise(&m))
                    }
                    "builtins.getattr" => {
                        let base = self.qual_at(arg(0)?, depth + 1)?;
                        let attr = self.string_value(arg(1)?)?;
                        Some(normalise(&format!("{base}.{attr}")))
                    }
                    "builtins.vars" => {
                        let base = self.qual_at(arg(0)?, depth + 1)?;
                        Some(format!("{base}.__dict__"))
                    }
                    "builtins.globals" | "builtins.locals" if c.arguments.args.is_empty() => {
                        Some("builtins.globals()".into())
                    }
                    _ => None,
                }
            }
            Expr::Subscript(s) => {
                let key = self.string_value(&s.slice)?;
                let base = self.qual_at(&s.value, depth + 1)?;
                match base.as_str() {
                    "sys.modules" => Some(normalise(&key)),
                    "builtins.globals()" => {
                        if key == "__builtins__" {
                            Some("builtins".into())
                        } else {
                            self.aliases.get(&key).map(|q| normalise(q))
                        }
                    }
                    "builtins" => Some(format!("builtins.{key}")),
                    b => b
                        .strip_suffix(".__dict__")
                        .map(|m| normalise(&format!("{m}.{key}"))),
                }
            }
            _ => None,
        }
    }

    /// A string literal, or a name bound to one.
    fn string_value(&self, e: &Expr) -> Option<String> {
        match e {
            Expr::StringLiteral(_) => literal_str(e),
            Expr::Name(n) => self.constants.get(n.id.as_str()).cloned(),
            _ => None,
        }
    }

    /// True when `e` holds data that was decoded, decompressed, un-marshalled or built
    /// character by character: the raw material of an obfuscated payload.
    fn decoded(&self, e: &Expr) -> bool {
        let mut f = DecodeFinder {
            b: self,
            found: false,
        };
        f.visit_expr(e);
        f.found
    }
}

struct DecodeFinder<'b> {
    b: &'b Bindings,
    found: bool,
}

impl<'a> Visitor<'a> for DecodeFinder<'_> {
    fn visit_expr(&mut self, e: &'a Expr) {
        if self.found {
            return;
        }
        match e {
            Expr::Name(n) if self.b.tainted.contains(n.id.as_str()) => {
                self.found = true;
                return;
            }
            Expr::Call(c) => {
                if self
                    .b
                    .qual(&c.func)
                    .is_some_and(|q| DECODERS.contains(&q.as_str()))
                {
                    self.found = true;
                    return;
                }
                if let Expr::Attribute(a) = &*c.func
                    && matches!(a.attr.as_str(), "decode" | "encode")
                    && c.arguments
                        .args
                        .first()
                        .and_then(literal_str)
                        .is_some_and(|s| OBFUSCATING_CODECS.contains(&s.as_str()))
                {
                    self.found = true;
                    return;
                }
            }
            // `payload[::-1]`: a reversed string.
            Expr::Slice(s)
                if s.step.as_deref().is_some_and(
                    |step| matches!(step, Expr::UnaryOp(u) if u.op == ast::UnaryOp::USub),
                ) =>
            {
                self.found = true;
                return;
            }
            _ => {}
        }
        stacker::maybe_grow(STACK_RED_ZONE, STACK_SEGMENT, || {
            visitor::walk_expr(self, e)
        });
    }
}

#[derive(Default)]
struct Collector {
    b: Bindings,
    relative: HashSet<String>,
}

impl Collector {
    fn bind(&mut self, target: &Expr, value: &Expr) {
        match target {
            Expr::Name(n) => {
                let name = n.id.as_str().to_string();
                if let Some(q) = self.b.qual(value) {
                    self.b.aliases.insert(name.clone(), q);
                }
                if let Some(s) = literal_str(value) {
                    self.b.constants.insert(name.clone(), s);
                }
                if self.b.decoded(value) {
                    self.b.tainted.insert(name);
                }
            }
            Expr::Tuple(t) if self.b.decoded(value) => {
                for e in &t.elts {
                    if let Expr::Name(n) = e {
                        self.b.tainted.insert(n.id.as_str().to_string());
                    }
                }
            }
            _ => {}
        }
    }
}

impl<'a> Visitor<'a> for Collector {
    fn visit_stmt(&mut self, stmt: &'a Stmt) {
        match stmt {
            Stmt::Import(i) => {
                for a in &i.names {
                    let full = a.name.as_str();
                    match &a.asname {
                        Some(n) => {
                            self.b
                                .aliases
                                .insert(n.as_str().to_string(), normalise(full));
                        }
                        None => {
                            let top = full.split('.').next().unwrap_or(full);
                            self.b.aliases.insert(top.to_string(), normalise(top));
                        }
                    }
                }
            }
            Stmt::ImportFrom(f) => {
                let module = f.module.as_ref().map(|m| m.as_str()).unwrap_or("");
                if f.level > 0 {
                    if module.is_empty() {
                        for a in &f.names {
                            self.relative.insert(a.name.as_str().to_string());
                        }
                    } else {
                        self.relative.insert(module.to_string());
                    }
                }
                for a in &f.names {
                    let name = a.name.as_str();
                    if name == "*" {
                        if f.level == 0 && !self.b.star.iter().any(|m| m == module) {
                            self.b.star.push(module.to_string());
                        }
                        continue;
                    }
                    let local = a.asname.as_ref().map(|n| n.as_str()).unwrap_or(name);
                    let q = if f.level == 0 {
                        normalise(&format!("{module}.{name}"))
                    } else {
                        format!(".{module}.{name}")
                    };
                    self.b.aliases.insert(local.to_string(), q);
                }
            }
            Stmt::Assign(a) => {
                for t in &a.targets {
                    self.bind(t, &a.value);
                }
            }
            Stmt::AnnAssign(a) => {
                if let Some(v) = &a.value {
                    self.bind(&a.target, v);
                }
            }
            Stmt::AugAssign(a) => {
                if let Expr::Name(n) = &*a.target
                    && self.b.decoded(&a.value)
                {
                    self.b.tainted.insert(n.id.as_str().to_string());
                }
            }
            Stmt::FunctionDef(f) => {
                self.b.local.insert(f.name.as_str().to_string());
            }
            Stmt::ClassDef(c) => {
                self.b.local.insert(c.name.as_str().to_string());
            }
            _ => {}
        }
        stacker::maybe_grow(STACK_RED_ZONE, STACK_SEGMENT, || {
            visitor::walk_stmt(self, stmt)
        });
    }

    fn visit_expr(&mut self, e: &'a Expr) {
        match e {
            Expr::Name(n) if n.ctx.is_store() => {
                self.b.local.insert(n.id.as_str().to_string());
            }
            Expr::Named(nm) => self.bind(&nm.target, &nm.value),
            _ => {}
        }
        stacker::maybe_grow(STACK_RED_ZONE, STACK_SEGMENT, || {
            visitor::walk_expr(self, e)
        });
    }

    fn visit_parameter(&mut self, p: &'a ast::Parameter) {
        self.b.local.insert(p.name.as_str().to_string());
        visitor::walk_parameter(self, p);
    }
}

/// Where a path argument points, when it is known to leave the repository.
fn outside_path(b: &Bindings, e: &Expr) -> Option<(String, bool)> {
    // (description, is a temporary folder)
    match e {
        Expr::StringLiteral(s) => outside_literal(s.value.to_str()),
        Expr::FString(f) => {
            // The leading literal part decides where the path starts.
            let first = f.value.iter().next()?;
            if let ast::FStringPart::Literal(l) = first {
                outside_literal(&l.value)
            } else if let ast::FStringPart::FString(fs) = first {
                match fs.elements.iter().next()? {
                    ast::InterpolatedStringElement::Literal(l) => outside_literal(&l.value),
                    _ => None,
                }
            } else {
                None
            }
        }
        Expr::Call(c) => {
            let q = b.qual(&c.func)?;
            match q.as_str() {
                "os.path.expanduser" | "pathlib.Path.home" | "pathlib.PosixPath.home" => {
                    Some(("the home directory".into(), false))
                }
                "os.path.join" | "pathlib.Path" | "pathlib.PurePath" | "pathlib.PosixPath"
                | "os.path.abspath" | "os.path.realpath" | "os.path.normpath" => {
                    outside_path(b, c.arguments.args.first()?)
                }
                "site.getsitepackages" | "site.getusersitepackages" | "sysconfig.get_paths" => {
                    Some(("site-packages".into(), false))
                }
                _ => None,
            }
        }
        Expr::BinOp(bo) if bo.op == ast::Operator::Div => outside_path(b, &bo.left),
        Expr::Attribute(_) | Expr::Name(_) => {
            let q = b.qual(e)?;
            match q.as_str() {
                "sys.prefix" | "sys.exec_prefix" | "sys.base_prefix" | "site.USER_SITE" => {
                    Some(("the Python installation".into(), false))
                }
                _ => None,
            }
        }
        _ => None,
    }
}

struct Detector<'b, 's> {
    b: &'b Bindings,
    source: &'s str,
    lines: &'s LineIndex,
    /// Enclosing classes and functions, for `in Class.method`.
    scope: Vec<(String, bool)>,
    hits: Vec<Hit>,
    seen: HashMap<(Behaviour, String), usize>,
    truncated: bool,
    nest: u32,
}

impl Detector<'_, '_> {
    fn context(&self) -> String {
        if !self.scope.iter().any(|(_, is_fn)| *is_fn) {
            return "at import time".into();
        }
        let path: Vec<&str> = self.scope.iter().map(|(n, _)| n.as_str()).collect();
        format!("in {}", path.join("."))
    }

    fn hit(&mut self, behaviour: Behaviour, severity: Severity, what: String, offset: usize) {
        let key = (behaviour, what.clone());
        if let Some(&i) = self.seen.get(&key) {
            if let Some(h) = self.hits.get_mut(i) {
                h.count += 1;
            }
            return;
        }
        if self.hits.len() >= MAX_HITS_PER_FILE {
            self.truncated = true;
            return;
        }
        let (line, evidence) = self.lines.line(self.source, offset);
        self.seen.insert(key, self.hits.len());
        self.hits.push(Hit {
            behaviour,
            severity,
            what,
            offset,
            line,
            context: self.context(),
            evidence,
            count: 1,
        });
    }

    /// Handles calls whose meaning depends on their arguments. Returns true when the
    /// callee itself must not be judged again as a plain reference.
    fn call(&mut self, c: &ast::ExprCall) -> bool {
        let at = c.range().start().to_usize();
        let args = &c.arguments.args;
        let kw = |name: &str| {
            c.arguments
                .keywords
                .iter()
                .find(|k| k.arg.as_ref().is_some_and(|a| a.as_str() == name))
                .map(|k| &k.value)
        };
        // Literal arguments naming the Hugging Face token piecewise:
        // os.path.join(home, ".cache", "huggingface", "token").
        let lits: Vec<String> = args.iter().filter_map(literal_str).collect();
        // The whole environment handed to something (dict(os.environ), json.dumps(…)).
        let whole_env = args
            .iter()
            .chain(c.arguments.keywords.iter().map(|k| &k.value))
            .any(|a| {
                matches!(
                    self.b.qual(a).as_deref(),
                    Some("os.environ" | "os.environb")
                )
            });
        if whole_env {
            self.hit(
                Behaviour::EnvironmentSecret,
                Severity::Medium,
                "the whole environment".into(),
                at,
            );
        }
        if lits.iter().any(|s| s == "huggingface")
            && lits.iter().any(|s| s == "token" || s == "stored_tokens")
        {
            self.hit(
                Behaviour::Credentials,
                Severity::Critical,
                "Hugging Face token".into(),
                at,
            );
        }
        if let Expr::Attribute(a) = &*c.func {
            let m = a.attr.as_str();
            // cffi: ffi.dlopen(…) on an FFI object.
            if m == "dlopen" {
                self.hit(
                    Behaviour::NativeLibrary,
                    Severity::Critical,
                    "dlopen".into(),
                    at,
                );
            }
            if PATH_MUTATORS.contains(&m) || m == "open" {
                let writes = m != "open"
                    || args
                        .first()
                        .and_then(literal_str)
                        .is_some_and(|md| write_mode(&md));
                if writes && let Some((p, tmp)) = outside_path(self.b, &a.value) {
                    self.write_hit(format!("Path.{m} {p}"), tmp, at);
                }
            }
        }
        let Some(q) = self.b.qual(&c.func) else {
            return false;
        };
        match q.as_str() {
            "builtins.exec" | "builtins.eval" | "builtins.compile" | "builtins.execfile" => {
                let name = q.trim_start_matches("builtins.").to_string();
                let src = args
                    .first()
                    .or_else(|| kw("source"))
                    .or_else(|| kw("object"));
                match src {
                    None => {}
                    Some(Expr::StringLiteral(s)) => {
                        self.literal_code(&name, s.value.to_str(), at);
                    }
                    Some(e) if self.b.decoded(e) => self.hit(
                        Behaviour::DecodeAndExecute,
                        Severity::Critical,
                        format!("{name} of decoded data"),
                        at,
                    ),
                    Some(_) => self.hit(
                        Behaviour::DynamicCode,
                        Severity::Critical,
                        format!("{name} of a computed string"),
                        at,
                    ),
                }
                true
            }
            "builtins.__import__" | "importlib.import_module" | "importlib.__import__" => {
                let literal = args
                    .first()
                    .is_some_and(|a| self.b.string_value(a).is_some());
                if !literal {
                    let severity = if q == "builtins.__import__" {
                        Severity::Critical
                    } else {
                        Severity::High
                    };
                    self.hit(
                        Behaviour::DynamicCode,
                        severity,
                        format!(
                            "{} of a computed module name",
                            q.trim_start_matches("builtins.")
                        ),
                        at,
                    );
                }
                true
            }
            "builtins.getattr" | "builtins.setattr" => {
                if let (Some(obj), Some(attr)) = (args.first(), args.get(1)) {
                    let module = self.b.qual(obj);
                    if self.b.string_value(attr).is_none()
                        && module
                            .as_deref()
                            .is_some_and(|m| SENSITIVE_MODULES.contains(&m))
                    {
                        let name = q.trim_start_matches("builtins.");
                        self.hit(
                            Behaviour::DynamicCode,
                            Severity::Critical,
                            format!(
                                "{name} of {} by a computed name",
                                module.unwrap_or_default()
                            ),
                            at,
                        );
                    }
                }
                true
            }
            "builtins.open" | "io.open" | "codecs.open" | "os.fdopen" => {
                let mode = args.get(1).or_else(|| kw("mode")).and_then(literal_str);
                if mode.as_deref().is_some_and(write_mode)
                    && let Some((p, tmp)) = args
                        .first()
                        .or_else(|| kw("file"))
                        .and_then(|p| outside_path(self.b, p))
                {
                    self.write_hit(format!("open {p} for writing"), tmp, at);
                }
                true
            }
            "os.environ.get"
            | "os.getenv"
            | "os.environ.pop"
            | "os.environ.setdefault"
            | "os.getenvb" => {
                if let Some(name) = args.first().and_then(|a| self.b.string_value(a)) {
                    self.env_read(&name, at);
                }
                false
            }
            "os.environ.copy" | "builtins.dict" => false,
            q if FILE_MUTATORS.contains(&q) => {
                for a in args.iter() {
                    if let Some((p, tmp)) = outside_path(self.b, a) {
                        self.write_hit(format!("{q} {p}"), tmp, at);
                        break;
                    }
                }
                false
            }
            _ => false,
        }
    }

    fn write_hit(&mut self, what: String, tmp: bool, at: usize) {
        let severity = if tmp {
            Severity::Medium
        } else {
            Severity::Critical
        };
        self.hit(Behaviour::WriteOutside, severity, what, at);
    }

    fn env_read(&mut self, name: &str, at: usize) {
        if matches!(name, "HOME" | "USERPROFILE") {
            self.hit(
                Behaviour::HomeDirectory,
                Severity::Medium,
                format!("environment variable {name}"),
                at,
            );
        } else if secret_env_name(name) {
            self.hit(
                Behaviour::EnvironmentSecret,
                Severity::Medium,
                format!("environment variable {name}"),
                at,
            );
        }
    }

    /// `exec("…")`: the literal is code too, and is analysed as such.
    fn literal_code(&mut self, name: &str, code: &str, at: usize) {
        if self.nest >= MAX_EXEC_NESTING {
            self.hit(
                Behaviour::DynamicCode,
                Severity::Critical,
                format!("{name} of nested literal code"),
                at,
            );
            return;
        }
        match analyse_nested(code, self.nest + 1) {
            Ok(inner) => {
                for h in inner.hits {
                    self.hit(
                        h.behaviour,
                        h.severity,
                        format!("{name}(\"…\"): {}", h.what),
                        at,
                    );
                }
            }
            // eval("1 + 1") of an expression parses as a module too; a literal that
            // does not parse cannot run either (exec raises SyntaxError).
            Err(Refusal::Syntax { .. }) => {}
            Err(_) => self.hit(
                Behaviour::DynamicCode,
                Severity::Critical,
                format!("{name} of a literal too large or deep to analyse"),
                at,
            ),
        }
    }

    fn string(&mut self, s: &str, at: usize) {
        if let Some(what) = credential_path(s) {
            self.hit(Behaviour::Credentials, Severity::Critical, what.into(), at);
        }
    }
}

fn write_mode(mode: &str) -> bool {
    mode.contains(['w', 'a', 'x', '+'])
}

impl<'a> Visitor<'a> for Detector<'_, '_> {
    fn visit_stmt(&mut self, stmt: &'a Stmt) {
        match stmt {
            // Docstrings and bare string statements are comments.
            Stmt::Expr(e) if e.value.is_string_literal_expr() => return,
            Stmt::Import(_) | Stmt::ImportFrom(_) => return,
            Stmt::FunctionDef(f) => {
                for d in &f.decorator_list {
                    self.visit_decorator(d);
                }
                self.visit_parameters(&f.parameters);
                if let Some(r) = &f.returns {
                    self.visit_annotation(r);
                }
                self.scope.push((f.name.as_str().to_string(), true));
                for s in &f.body {
                    self.visit_stmt(s);
                }
                self.scope.pop();
                return;
            }
            Stmt::ClassDef(c) => {
                for d in &c.decorator_list {
                    self.visit_decorator(d);
                }
                if let Some(a) = &c.arguments {
                    self.visit_arguments(a);
                }
                self.scope.push((c.name.as_str().to_string(), false));
                for s in &c.body {
                    self.visit_stmt(s);
                }
                self.scope.pop();
                return;
            }
            _ => {}
        }
        stacker::maybe_grow(STACK_RED_ZONE, STACK_SEGMENT, || {
            visitor::walk_stmt(self, stmt)
        });
    }

    fn visit_expr(&mut self, e: &'a Expr) {
        let at = e.range().start().to_usize();
        match e {
            Expr::Call(c) => {
                // getattr(os, "system"), importlib.import_module("os").system …: the call
                // itself names a callable.
                if let Some((behaviour, severity)) = self.b.qual(e).as_deref().and_then(classify) {
                    let q = self.b.qual(e).unwrap_or_default();
                    self.hit(behaviour, severity, q, at);
                }
                if self.call(c) {
                    // The callee was judged with its arguments; only the arguments are
                    // left to visit.
                    for a in c.arguments.args.iter() {
                        self.visit_expr(a);
                    }
                    for k in c.arguments.keywords.iter() {
                        self.visit_expr(&k.value);
                    }
                    return;
                }
            }
            Expr::Name(_) | Expr::Attribute(_) | Expr::Subscript(_) => {
                if let Some(q) = self.b.qual(e)
                    && let Some((behaviour, severity)) = classify(&q)
                {
                    self.hit(behaviour, severity, q, at);
                    return;
                }
                if let Expr::Subscript(s) = e
                    && s.ctx.is_load()
                    && self.b.qual(&s.value).as_deref() == Some("os.environ")
                    && let Some(name) = self.b.string_value(&s.slice)
                {
                    self.env_read(&name, at);
                    return;
                }
                // `os.environ.get` resolves through here: do not report the environment
                // object for each such read.
                if let Expr::Attribute(a) = e
                    && self.b.qual(&a.value).as_deref() == Some("os.environ")
                {
                    return;
                }
            }
            Expr::StringLiteral(s) => self.string(s.value.to_str(), at),
            Expr::FString(_) => {
                let text = self
                    .source
                    .get(e.range().start().to_usize()..e.range().end().to_usize());
                if let Some(t) = text {
                    let t = t.to_string();
                    self.string(&t, at);
                }
            }
            Expr::Lambda(_) => {
                self.scope.push(("<lambda>".into(), true));
                stacker::maybe_grow(STACK_RED_ZONE, STACK_SEGMENT, || {
                    visitor::walk_expr(self, e)
                });
                self.scope.pop();
                return;
            }
            _ => {}
        }
        stacker::maybe_grow(STACK_RED_ZONE, STACK_SEGMENT, || {
            visitor::walk_expr(self, e)
        });
    }
}

/// Byte offset → line number and line text.
struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    fn new(source: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(
            source
                .bytes()
                .enumerate()
                .filter(|(_, b)| *b == b'\n')
                .map(|(i, _)| i + 1),
        );
        LineIndex { starts }
    }

    fn line(&self, source: &str, offset: usize) -> (usize, String) {
        let i = self.starts.partition_point(|&s| s <= offset).max(1) - 1;
        let start = self.starts.get(i).copied().unwrap_or(0);
        let end = self
            .starts
            .get(i + 1)
            .map(|e| e.saturating_sub(1))
            .unwrap_or(source.len());
        let text = source.get(start..end.max(start)).unwrap_or("").trim();
        (i + 1, clip(text, MAX_EVIDENCE))
    }
}

/// The line of `source` holding `offset` (1-based number and trimmed text).
pub fn line_at(source: &str, offset: usize) -> (usize, String) {
    LineIndex::new(source).line(source, offset)
}

fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max).collect();
        t.push('…');
        t
    }
}
