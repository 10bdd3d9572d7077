//! Chat templates (Jinja): parsed with minijinja's parser, never rendered, and their
//! syntax tree walked for the ways a template reaches Python internals when a renderer
//! evaluates it: dunder attributes and items, engine globals, command-running calls, and
//! names assembled at run time to hide all of that from text search.
//!
//! Used for `tokenizer.chat_template*` in GGUF metadata and for `chat_template` in
//! `tokenizer_config.json` / `*.jinja` files of Hugging Face repositories.

use crate::engine::{FileScan, Loc};
use crate::rules::code;
use assay_report::Severity;
use minijinja::machinery::{Span, Token, ast, parse, tokenize};
use minijinja::syntax::SyntaxConfig;
use std::collections::{BTreeSet, HashMap};

/// Templates larger than this are only scanned lexically (real ones are under 20 KiB).
pub const MAX_TEMPLATE: usize = 1 << 20;
/// Tokens inside one `{{ … }}` or `{% … %}` (real templates use at most ~60). minijinja
/// builds attribute, filter and operator chains as left-nested trees without a depth limit;
/// bounding the tokens per tag bounds the depth of the tree (and of the recursion that
/// walks and drops it).
pub const MAX_TAG_TOKENS: usize = 500;
/// Stack of the thread that walks a template: [`MAX_TAG_TOKENS`] bounds the tree's depth,
/// and this leaves a wide margin for unoptimised builds.
const WALK_STACK: usize = 64 << 20;
/// Findings reported per template.
const MAX_HITS: usize = 64;
/// Possible values kept per folded expression or variable.
const MAX_FOLD_VALUES: usize = 16;
/// Nesting of expressions folded into one string (obfuscation needs a few levels).
const MAX_FOLD_DEPTH: usize = 32;
/// Longest string constant folding builds.
const MAX_FOLD_LEN: usize = 512;
/// Characters of template source shown as evidence.
const MAX_EVIDENCE: usize = 200;

/// Jinja globals and the objects they expose; attribute access on them (rather than on
/// what they return) reaches their Python function objects and `__globals__`.
const ENGINE_GLOBALS: &[&str] = &[
    "cycler",
    "joiner",
    "namespace",
    "lipsum",
    "range",
    "dict",
    "self",
    "config",
    "request",
    "url_for",
    "get_flashed_messages",
    "session",
];
/// Flask's globals: meaningless in a chat template, the start of many SSTI payloads.
const FLASK_GLOBALS: &[&str] = &[
    "config",
    "request",
    "session",
    "url_for",
    "get_flashed_messages",
];
/// Calls that run commands or code.
const COMMAND_CALLS: &[&str] = &[
    "popen",
    "system",
    "spawnl",
    "spawnlp",
    "spawnv",
    "spawnvp",
    "spawnve",
    "execl",
    "execle",
    "execlp",
    "execv",
    "execve",
    "execvp",
    "check_output",
    "check_call",
    "getoutput",
    "getstatusoutput",
    "Popen",
    "import_module",
    "load_module",
    "__import__",
    "eval",
    "exec",
    "execfile",
    "compile",
    "fork",
    "posix_spawn",
];
/// Calls that touch files or reflect on objects.
const FILE_CALLS: &[&str] = &["open", "getattr", "globals", "locals", "vars", "setattr"];
/// Names that, next to an escape, show it heading for command execution.
const DANGER_WORDS: &[&str] = &[
    "os",
    "sys",
    "subprocess",
    "popen",
    "system",
    "builtins",
    "__builtins__",
    "__import__",
    "import_module",
    "importlib",
    "eval",
    "exec",
    "compile",
    "check_output",
    "getoutput",
    "spawn",
    "posix",
    "nt",
    "pty",
    "socket",
    "open",
    "read",
    "modules",
    "load_module",
    "Popen",
    "ctypes",
    "shutil",
];
/// Attribute names that lead from an ordinary object to frames, code and globals without
/// double underscores.
const INTERNAL_ATTRS: &[&str] = &[
    "func_globals",
    "func_code",
    "gi_frame",
    "gi_code",
    "cr_frame",
    "cr_code",
    "ag_frame",
    "f_globals",
    "f_locals",
    "f_builtins",
    "f_back",
    "tb_frame",
    "tb_next",
    "co_code",
    "im_func",
    "mro",
];
/// Pieces of dunder names (what an obfuscated template concatenates with underscores).
const DUNDER_STEMS: &[&str] = &[
    "class",
    "globals",
    "subclasses",
    "builtins",
    "mro",
    "bases",
    "base",
    "import",
    "init",
    "getattribute",
    "getitem",
    "loader",
    "spec",
];
/// Filters that take an attribute path as an argument.
const ATTRIBUTE_FILTERS: &[&str] = &[
    "attr",
    "map",
    "selectattr",
    "rejectattr",
    "sort",
    "groupby",
    "unique",
    "sum",
    "min",
    "max",
    "dictsort",
];

/// One problem found in a template.
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateHit {
    pub rule: &'static str,
    pub severity: Severity,
    pub message: String,
    pub evidence: Option<String>,
}

/// Checks the chat template `source` (named `name`, e.g. `tokenizer.chat_template` or
/// `default`) and adds its findings to `ctx` at `loc`.
pub fn check_template(ctx: &mut FileScan, loc: &Loc, name: &str, source: &str) {
    for h in analyse(source) {
        if h.rule == code::HFR002 {
            ctx.incomplete = true;
        }
        ctx.add(
            h.rule,
            h.severity,
            loc,
            None,
            format!("chat template {name:?}: {}", h.message),
            h.evidence,
        );
    }
}

/// The findings for one template (empty for a clean one).
///
/// The syntax tree is walked recursively; the walk runs on its own thread with a
/// [`WALK_STACK`] stack, so its depth never depends on the caller's stack.
pub fn analyse(source: &str) -> Vec<TemplateHit> {
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .name("chat-template".into())
            .stack_size(WALK_STACK)
            .spawn_scoped(s, || analyse_here(source))
            .ok()
            .and_then(|h| h.join().ok())
    })
    .unwrap_or_else(|| {
        vec![TemplateHit {
            rule: code::HFR002,
            severity: Severity::High,
            message: "the template could not be analysed (analysis thread failed)".into(),
            evidence: None,
        }]
    })
}

fn analyse_here(source: &str) -> Vec<TemplateHit> {
    if source.len() > MAX_TEMPLATE {
        let mut hits = vec![TemplateHit {
            rule: code::HFR002,
            severity: Severity::High,
            message: format!(
                "template is {} bytes, larger than the {MAX_TEMPLATE}-byte limit; only searched as text",
                source.len()
            ),
            evidence: None,
        }];
        hits.extend(lexical(source));
        return hits;
    }
    let prepared = match prepare(source) {
        Ok(p) => p,
        Err(reason) => {
            let mut hits = vec![TemplateHit {
                rule: code::HFR002,
                severity: Severity::High,
                message: format!("{reason}; only searched as text"),
                evidence: None,
            }];
            hits.extend(lexical(source));
            return hits;
        }
    };
    let tree = match parse(&prepared, "<chat_template>", SyntaxConfig::default()) {
        Ok(t) => t,
        Err(e) => {
            let mut hits = vec![TemplateHit {
                rule: code::HFR002,
                severity: Severity::High,
                message: format!("cannot be parsed as Jinja ({e}); only searched as text"),
                evidence: e.line().map(|l| line_of(source, l)),
            }];
            hits.extend(lexical(source));
            return hits;
        }
    };
    let mut w = Walker {
        source,
        env: HashMap::new(),
        blocks: BTreeSet::new(),
        shadowed: BTreeSet::new(),
        words: BTreeSet::new(),
        underscores: false,
        stems: BTreeSet::new(),
        hits: Vec::new(),
        escapes: 0,
    };
    // Two passes over the assignments reach constants assigned from other constants.
    for _ in 0..2 {
        w.collect_stmt(&tree);
    }
    w.stmt(&tree);
    w.finish()
}

/// Blanks HF's `{% generation %}` / `{% endgeneration %}` tags (a transformers extension
/// that only marks assistant text) and enforces [`MAX_TAG_TOKENS`].
fn prepare(source: &str) -> Result<String, String> {
    let mut out = source.as_bytes().to_vec();
    let mut in_tag = 0usize;
    let mut tag_start: Option<Span> = None;
    let mut first_ident: Option<&str> = None;
    for tok in tokenize(source, false, SyntaxConfig::default()) {
        // Lexer errors are reported by the parser, with a better message.
        let Ok((tok, span)) = tok else {
            break;
        };
        match tok {
            Token::BlockStart | Token::VariableStart => {
                in_tag = 0;
                tag_start = Some(span);
                first_ident = None;
            }
            Token::BlockEnd => {
                if let (Some(start), Some("generation" | "endgeneration")) =
                    (tag_start.take(), first_ident)
                {
                    let (a, b) = (start.start_offset as usize, span.end_offset as usize);
                    if let Some(bytes) = out.get_mut(a..b) {
                        bytes.fill(b' ');
                    }
                }
            }
            Token::VariableEnd => tag_start = None,
            Token::Ident(id) if in_tag == 1 => first_ident = Some(id),
            _ => {}
        }
        in_tag += 1;
        if in_tag > MAX_TAG_TOKENS {
            return Err(format!(
                "a tag has more than {MAX_TAG_TOKENS} tokens (line {})",
                span.start_line
            ));
        }
    }
    String::from_utf8(out).map_err(|_| "template is not UTF-8".to_string())
}

fn line_of(source: &str, line: usize) -> String {
    let text = source.lines().nth(line.saturating_sub(1)).unwrap_or("");
    format!("line {line}: {}", clip(text.trim()))
}

fn clip(s: &str) -> String {
    if s.chars().count() <= MAX_EVIDENCE {
        return s.to_string();
    }
    let mut t: String = s.chars().take(MAX_EVIDENCE).collect();
    t.push('…');
    t
}

/// A dunder (`__class__`) or name-mangled (`_TemplateReference__context`) name.
fn is_dunderish(s: &str) -> bool {
    let s = s.trim();
    s.contains("__")
        && s.chars().any(|c| c.is_ascii_alphabetic())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A name that leads to Python internals: dunders and frame/code/globals attributes.
fn is_internal(s: &str) -> bool {
    is_dunderish(s) || INTERNAL_ATTRS.contains(&s)
}

/// A `str.format` field that walks attributes or items of a dunder name:
/// `"{0.__class__}"`, `"{x[__globals__]}"`.
fn format_field_dunder(s: &str) -> Option<&str> {
    let mut rest = s;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            break;
        };
        let field = &after[..close];
        if field.contains("__") && (field.contains('.') || field.contains('[')) {
            return Some(field);
        }
        rest = &after[close + 1..];
    }
    None
}

fn danger_word(w: &str) -> bool {
    DANGER_WORDS.contains(&w)
        || [
            "popen",
            "subprocess",
            "__import__",
            "builtins",
            "import_module",
            "check_output",
            "os.system",
        ]
        .iter()
        .any(|d| w.contains(d))
}

struct Walker<'s> {
    source: &'s str,
    /// Constant strings a variable (`x`) or namespace attribute (`ns.x`) may hold.
    env: HashMap<String, Vec<String>>,
    blocks: BTreeSet<String>,
    /// Names bound by `set`, `for`, `with` and macro arguments.
    shadowed: BTreeSet<String>,
    /// Every identifier, attribute name and string the template uses.
    words: BTreeSet<String>,
    /// Some string (literal or folded) is only underscores, two or more.
    underscores: bool,
    stems: BTreeSet<String>,
    hits: Vec<TemplateHit>,
    /// Hits that are escapes, to be raised to critical when the template heads for
    /// command execution.
    escapes: usize,
}

impl Walker<'_> {
    fn snippet(&self, span: Span) -> String {
        let text = self
            .source
            .get(span.start_offset as usize..span.end_offset as usize)
            .unwrap_or("");
        format!("line {}: {}", span.start_line, clip(text.trim()))
    }

    fn hit(&mut self, rule: &'static str, severity: Severity, message: String, span: Span) {
        if self.hits.len() >= MAX_HITS {
            return;
        }
        let evidence = Some(self.snippet(span));
        if self
            .hits
            .iter()
            .any(|h| h.rule == rule && h.evidence == evidence && h.message == message)
        {
            return;
        }
        if rule == code::HFR001 || rule == code::HFR003 {
            self.escapes += 1;
        }
        self.hits.push(TemplateHit {
            rule,
            severity,
            message,
            evidence,
        });
    }

    fn finish(mut self) -> Vec<TemplateHit> {
        if self.underscores && !self.stems.is_empty() {
            let stems: Vec<&str> = self.stems.iter().map(String::as_str).collect();
            self.hits.push(TemplateHit {
                rule: code::HFR003,
                severity: Severity::High,
                message: "holds underscore-only strings and pieces of dunder names, the parts of a name assembled at run time".into(),
                evidence: Some(format!("pieces: '__', {}", stems.iter().map(|s| format!("'{s}'")).collect::<Vec<_>>().join(", "))),
            });
            self.escapes += 1;
        }
        if self.escapes > 0 {
            let danger: Vec<&str> = self
                .words
                .iter()
                .map(String::as_str)
                .filter(|w| danger_word(w))
                .take(5)
                .collect();
            if !danger.is_empty() {
                for h in &mut self.hits {
                    if h.rule == code::HFR001 || h.rule == code::HFR003 {
                        h.severity = Severity::Critical;
                        h.message
                            .push_str(&format!(" (and the template names {})", danger.join(", ")));
                    }
                }
            }
        }
        self.hits
    }

    // --- Pass 1: constants assigned to variables and namespace attributes. ---

    fn collect_stmt(&mut self, s: &ast::Stmt) {
        use ast::Stmt as S;
        match s {
            S::Template(t) => self.collect_body(&t.children),
            S::ForLoop(f) => {
                self.shadow(&f.target);
                if let ast::Expr::Var(v) = &f.target {
                    let items = match &f.iter {
                        ast::Expr::List(l) => l.items.iter().flat_map(|e| self.fold(e)).collect(),
                        ast::Expr::Tuple(l) => l.items.iter().flat_map(|e| self.fold(e)).collect(),
                        e => self
                            .fold(e)
                            .iter()
                            .flat_map(|s| s.chars().map(String::from))
                            .collect(),
                    };
                    self.bind(v.id.to_string(), items);
                }
                self.collect_body(&f.body);
                self.collect_body(&f.else_body);
            }
            S::IfCond(c) => {
                self.collect_body(&c.true_body);
                self.collect_body(&c.false_body);
            }
            S::WithBlock(w) => {
                for (t, e) in &w.assignments {
                    self.assign(t, e);
                }
                self.collect_body(&w.body);
            }
            S::Set(set) => self.assign(&set.target, &set.expr),
            S::SetBlock(b) => {
                self.shadow(&b.target);
                self.collect_body(&b.body)
            }
            S::AutoEscape(a) => self.collect_body(&a.body),
            S::FilterBlock(f) => self.collect_body(&f.body),
            S::Block(b) => {
                self.blocks.insert(b.name.to_string());
                self.collect_body(&b.body)
            }
            S::Macro(m) => {
                for a in &m.args {
                    self.shadow(a);
                }
                for (a, d) in m.args.iter().rev().zip(m.defaults.iter().rev()) {
                    self.assign(a, d);
                }
                self.collect_body(&m.body)
            }
            S::CallBlock(c) => {
                for a in &c.macro_decl.args {
                    self.shadow(a);
                }
                self.collect_body(&c.macro_decl.body)
            }
            _ => {}
        }
    }

    fn collect_body(&mut self, body: &[ast::Stmt]) {
        for s in body {
            self.collect_stmt(s);
        }
    }

    /// Names the template binds itself, which hide the engine globals of the same name.
    fn shadow(&mut self, target: &ast::Expr) {
        match target {
            ast::Expr::Var(v) => {
                self.shadowed.insert(v.id.to_string());
            }
            ast::Expr::Tuple(t) => {
                for x in &t.items {
                    self.shadow(x);
                }
            }
            ast::Expr::List(t) => {
                for x in &t.items {
                    self.shadow(x);
                }
            }
            _ => {}
        }
    }

    fn assign(&mut self, target: &ast::Expr, value: &ast::Expr) {
        self.shadow(target);
        let Some(name) = Self::target_name(target) else {
            return;
        };
        // `ns = namespace(a='__')` binds `ns.a`.
        if let ast::Expr::Call(c) = value
            && matches!(&c.expr, ast::Expr::Var(v) if v.id == "namespace")
        {
            for arg in &c.args {
                if let ast::CallArg::Kwarg(k, e) = arg {
                    let vals = self.fold(e);
                    self.bind(format!("{name}.{k}"), vals);
                }
            }
            return;
        }
        let vals = self.fold(value);
        self.bind(name, vals);
    }

    fn target_name(e: &ast::Expr) -> Option<String> {
        match e {
            ast::Expr::Var(v) => Some(v.id.to_string()),
            ast::Expr::GetAttr(g) => match &g.expr {
                ast::Expr::Var(v) => Some(format!("{}.{}", v.id, g.name)),
                _ => None,
            },
            _ => None,
        }
    }

    fn bind(&mut self, name: String, vals: Vec<String>) {
        if vals.is_empty() {
            return;
        }
        let slot = self.env.entry(name).or_default();
        for v in vals {
            if slot.len() >= MAX_FOLD_VALUES {
                break;
            }
            if !slot.contains(&v) {
                slot.push(v);
            }
        }
    }

    // --- Constant folding: the strings an expression can evaluate to. ---

    fn fold(&self, e: &ast::Expr) -> Vec<String> {
        self.fold_at(e, 0)
    }

    /// [`Self::fold`] below `depth` levels of folding; deeper expressions are unknown.
    fn fold_at(&self, e: &ast::Expr, depth: usize) -> Vec<String> {
        use ast::Expr as E;
        if depth > MAX_FOLD_DEPTH {
            return Vec::new();
        }
        let out: Vec<String> = match e {
            E::Const(c) => match c.value.as_str() {
                Some(s) => vec![s.to_string()],
                None => c
                    .value
                    .as_i64()
                    .map(|i| vec![i.to_string()])
                    .unwrap_or_default(),
            },
            E::Var(v) => self.env.get(v.id).cloned().unwrap_or_default(),
            E::GetAttr(g) => match &g.expr {
                E::Var(v) => self
                    .env
                    .get(&format!("{}.{}", v.id, g.name))
                    .cloned()
                    .unwrap_or_default(),
                _ => Vec::new(),
            },
            E::BinOp(b) => match b.op {
                ast::BinOpKind::Add | ast::BinOpKind::Concat => product(
                    &self.fold_at(&b.left, depth + 1),
                    &self.fold_at(&b.right, depth + 1),
                ),
                ast::BinOpKind::Mul => {
                    let (l, r) = (
                        self.fold_at(&b.left, depth + 1),
                        self.fold_at(&b.right, depth + 1),
                    );
                    let (strs, n) = match (int_const(&b.right), int_const(&b.left)) {
                        (Some(n), _) => (l, n),
                        (_, Some(n)) => (r, n),
                        _ => (Vec::new(), 0),
                    };
                    strs.iter()
                        .filter(|s| s.len().saturating_mul(n as usize) <= MAX_FOLD_LEN)
                        .map(|s| s.repeat(n as usize))
                        .collect()
                }
                ast::BinOpKind::Rem => {
                    let args = match &b.right {
                        E::Tuple(t) => t.items.iter().map(|x| self.fold_at(x, depth + 1)).collect(),
                        E::List(t) => t.items.iter().map(|x| self.fold_at(x, depth + 1)).collect(),
                        x => vec![self.fold_at(x, depth + 1)],
                    };
                    self.fold_at(&b.left, depth + 1)
                        .iter()
                        .filter_map(|f| percent_format(f, &args))
                        .collect()
                }
                _ => Vec::new(),
            },
            E::IfExpr(i) => {
                let mut v = self.fold_at(&i.true_expr, depth + 1);
                if let Some(f) = &i.false_expr {
                    v.extend(self.fold_at(f, depth + 1));
                }
                v
            }
            E::Slice(s) => {
                let step = s.step.as_ref().and_then(int_const_signed);
                let plain = s.start.is_none() && s.stop.is_none();
                if plain && step == Some(-1) {
                    self.fold_at(&s.expr, depth + 1)
                        .iter()
                        .map(|x| x.chars().rev().collect())
                        .collect()
                } else {
                    Vec::new()
                }
            }
            E::Filter(f) => {
                let base = f
                    .expr
                    .as_ref()
                    .map(|x| self.fold_at(x, depth + 1))
                    .unwrap_or_default();
                let arg = |i: usize| match f.args.get(i) {
                    Some(ast::CallArg::Pos(x)) => self.fold_at(x, depth + 1),
                    _ => Vec::new(),
                };
                match f.name {
                    "join" => {
                        let sep = arg(0).into_iter().next().unwrap_or_default();
                        match f.expr.as_ref() {
                            Some(E::List(l)) => self.join(&l.items, &sep, depth + 1),
                            Some(E::Tuple(l)) => self.join(&l.items, &sep, depth + 1),
                            _ => base,
                        }
                    }
                    "reverse" => base.iter().map(|x| x.chars().rev().collect()).collect(),
                    "lower" => base.iter().map(|x| x.to_lowercase()).collect(),
                    "upper" => base.iter().map(|x| x.to_uppercase()).collect(),
                    "trim" | "string" | "e" | "escape" | "safe" | "first" | "last" => base,
                    "replace" => {
                        let (a, b) = (arg(0), arg(1));
                        match (a.first(), b.first()) {
                            (Some(a), Some(b)) if !a.is_empty() => {
                                base.iter().map(|x| x.replace(a.as_str(), b)).collect()
                            }
                            _ => Vec::new(),
                        }
                    }
                    "format" => {
                        let args: Vec<Vec<String>> = f
                            .args
                            .iter()
                            .filter_map(|a| match a {
                                ast::CallArg::Pos(x) => Some(self.fold_at(x, depth + 1)),
                                _ => None,
                            })
                            .collect();
                        base.iter()
                            .filter_map(|s| percent_format(s, &args))
                            .collect()
                    }
                    _ => Vec::new(),
                }
            }
            E::Call(c) => match &c.expr {
                E::GetAttr(g) => {
                    let recv = self.fold_at(&g.expr, depth + 1);
                    let pos: Vec<&ast::Expr> = c
                        .args
                        .iter()
                        .filter_map(|a| match a {
                            ast::CallArg::Pos(x) => Some(x),
                            _ => None,
                        })
                        .collect();
                    match g.name {
                        "format" => {
                            let args: Vec<Vec<String>> =
                                pos.iter().map(|x| self.fold_at(x, depth + 1)).collect();
                            recv.iter().filter_map(|s| brace_format(s, &args)).collect()
                        }
                        "join" => match pos.first() {
                            Some(E::List(l)) => {
                                let sep = recv.into_iter().next().unwrap_or_default();
                                self.join(&l.items, &sep, depth + 1)
                            }
                            _ => Vec::new(),
                        },
                        "replace" => match (pos.first(), pos.get(1)) {
                            (Some(a), Some(b)) => {
                                let (a, b) =
                                    (self.fold_at(a, depth + 1), self.fold_at(b, depth + 1));
                                match (a.first(), b.first()) {
                                    (Some(a), Some(b)) if !a.is_empty() => {
                                        recv.iter().map(|x| x.replace(a.as_str(), b)).collect()
                                    }
                                    _ => Vec::new(),
                                }
                            }
                            _ => Vec::new(),
                        },
                        "lower" => recv.iter().map(|x| x.to_lowercase()).collect(),
                        "upper" => recv.iter().map(|x| x.to_uppercase()).collect(),
                        "strip" | "lstrip" | "rstrip" => {
                            recv.iter().map(|x| x.trim().to_string()).collect()
                        }
                        _ => Vec::new(),
                    }
                }
                _ => Vec::new(),
            },
            _ => Vec::new(),
        };
        out.into_iter()
            .filter(|s| s.len() <= MAX_FOLD_LEN)
            .take(MAX_FOLD_VALUES)
            .collect()
    }

    fn join(&self, items: &[ast::Expr], sep: &str, depth: usize) -> Vec<String> {
        let mut acc = vec![String::new()];
        for (i, it) in items.iter().enumerate() {
            let v = self.fold_at(it, depth + 1);
            if v.is_empty() {
                return Vec::new();
            }
            let v: Vec<String> = if i == 0 {
                v
            } else {
                v.into_iter().map(|x| format!("{sep}{x}")).collect()
            };
            acc = product(&acc, &v);
        }
        acc
    }

    // --- Pass 2: checks. ---

    fn stmt(&mut self, s: &ast::Stmt) {
        use ast::Stmt as S;
        match s {
            S::Template(t) => self.body(&t.children),
            S::EmitExpr(e) => self.expr(&e.expr, false),
            S::EmitRaw(_) | S::Continue(_) | S::Break(_) => {}
            S::ForLoop(f) => {
                self.expr(&f.target, false);
                self.expr(&f.iter, false);
                if let Some(x) = &f.filter_expr {
                    self.expr(x, false);
                }
                self.body(&f.body);
                self.body(&f.else_body);
            }
            S::IfCond(c) => {
                self.expr(&c.expr, false);
                self.body(&c.true_body);
                self.body(&c.false_body);
            }
            S::WithBlock(w) => {
                for (t, e) in &w.assignments {
                    self.expr(t, false);
                    self.expr(e, false);
                }
                self.body(&w.body);
            }
            S::Set(set) => {
                self.expr(&set.target, false);
                self.expr(&set.expr, false);
            }
            S::SetBlock(b) => {
                self.expr(&b.target, false);
                if let Some(f) = &b.filter {
                    self.expr(f, false);
                }
                self.body(&b.body);
            }
            S::AutoEscape(a) => {
                self.expr(&a.enabled, false);
                self.body(&a.body);
            }
            S::FilterBlock(f) => {
                self.expr(&f.filter, false);
                self.body(&f.body);
            }
            S::Block(b) => self.body(&b.body),
            S::Import(i) => {
                self.loads_template("import", i.expr.span());
                self.expr(&i.expr, false);
                self.expr(&i.name, false);
            }
            S::FromImport(i) => {
                self.loads_template("from … import", i.expr.span());
                self.expr(&i.expr, false);
                for (a, b) in &i.names {
                    self.expr(a, false);
                    if let Some(b) = b {
                        self.expr(b, false);
                    }
                }
            }
            S::Extends(e) => {
                self.loads_template("extends", e.name.span());
                self.expr(&e.name, false);
            }
            S::Include(i) => {
                self.loads_template("include", i.name.span());
                self.expr(&i.name, false);
            }
            S::Macro(m) => {
                for a in m.args.iter().chain(&m.defaults) {
                    self.expr(a, false);
                }
                self.body(&m.body);
            }
            S::CallBlock(c) => {
                self.call(&c.call, c.call.span(), false);
                for a in c.macro_decl.args.iter().chain(&c.macro_decl.defaults) {
                    self.expr(a, false);
                }
                self.body(&c.macro_decl.body);
            }
            S::Do(d) => self.call(&d.call, d.call.span(), false),
        }
    }

    fn body(&mut self, body: &[ast::Stmt]) {
        for s in body {
            self.stmt(s);
        }
    }

    fn loads_template(&mut self, how: &str, span: Span) {
        self.hit(
            code::HFR004,
            Severity::Medium,
            format!("`{{% {how} %}}` loads another template through the renderer's loader"),
            span,
        );
    }

    /// A name used as an attribute or item key.
    fn check_name(&mut self, name: &str, how: &str, span: Span) {
        self.words.insert(name.to_string());
        if is_internal(name) {
            self.hit(
                code::HFR001,
                Severity::High,
                format!("{how} `{name}` reaches Python internals"),
                span,
            );
        }
    }

    fn note_string(&mut self, s: &str) {
        if s.len() >= 2 && s.chars().all(|c| c == '_') {
            self.underscores = true;
        }
        let lower = s.to_ascii_lowercase();
        if DUNDER_STEMS.contains(&lower.as_str()) {
            self.stems.insert(lower);
        }
        if s.len() <= 64 {
            self.words.insert(s.to_string());
        }
    }

    /// `folded_reported`: an enclosing expression already reported a name built at run
    /// time, so its parts are not reported again.
    fn expr(&mut self, e: &ast::Expr, folded_reported: bool) {
        use ast::Expr as E;
        let mut folded_reported = folded_reported;
        if !folded_reported && !matches!(e, E::Const(_) | E::Var(_) | E::List(_) | E::Tuple(_)) {
            let vals = self.fold(e);
            for v in &vals {
                self.note_string(v);
            }
            if let Some(v) = vals.iter().find(|v| is_dunderish(v)) {
                let v = v.clone();
                self.hit(
                    code::HFR003,
                    Severity::High,
                    format!("builds the name `{v}` at run time"),
                    e.span(),
                );
                folded_reported = true;
            }
        }
        match e {
            E::Var(v) => {
                self.words.insert(v.id.to_string());
                if FLASK_GLOBALS.contains(&v.id) && !self.shadowed.contains(v.id) {
                    self.hit(
                        code::HFR004,
                        Severity::Medium,
                        format!(
                            "refers to Flask's `{}`, which no chat-template renderer defines",
                            v.id
                        ),
                        e.span(),
                    );
                }
            }
            E::Const(c) => {
                if let Some(s) = c.value.as_str() {
                    self.note_string(s);
                    if let Some(field) = format_field_dunder(s) {
                        let field = field.to_string();
                        self.hit(
                            code::HFR001,
                            Severity::High,
                            format!("format string field `{{{field}}}` walks to Python internals (str.format sandbox escape)"),
                            e.span(),
                        );
                    }
                }
            }
            E::Slice(s) => {
                self.expr(&s.expr, folded_reported);
                for x in [&s.start, &s.stop, &s.step].into_iter().flatten() {
                    self.expr(x, folded_reported);
                }
            }
            E::UnaryOp(u) => self.expr(&u.expr, folded_reported),
            E::BinOp(b) => {
                self.expr(&b.left, folded_reported);
                self.expr(&b.right, folded_reported);
            }
            E::Compare(c) => {
                self.expr(&c.expr, folded_reported);
                for op in &c.ops {
                    self.expr(&op.expr, folded_reported);
                }
            }
            E::IfExpr(i) => {
                self.expr(&i.test_expr, folded_reported);
                self.expr(&i.true_expr, folded_reported);
                if let Some(f) = &i.false_expr {
                    self.expr(f, folded_reported);
                }
            }
            E::Filter(f) => {
                if let Some(x) = &f.expr {
                    self.expr(x, folded_reported);
                }
                self.filter_args(f.name, &f.args, e.span());
                self.args(&f.args, folded_reported);
            }
            E::Test(t) => {
                self.expr(&t.expr, folded_reported);
                self.args(&t.args, folded_reported);
            }
            E::GetAttr(g) => {
                self.expr(&g.expr, folded_reported);
                self.check_name(g.name, "attribute", e.span());
                self.on_global(&g.expr, g.name, e.span());
            }
            E::GetItem(g) => {
                self.expr(&g.expr, folded_reported);
                self.expr(&g.subscript_expr, folded_reported);
                if let E::Const(c) = &g.subscript_expr {
                    if let Some(s) = c.value.as_str() {
                        self.check_name(s, "item", e.span());
                        self.on_global(&g.expr, s, e.span());
                    }
                } else {
                    for v in self.fold(&g.subscript_expr) {
                        if is_internal(&v) && !folded_reported {
                            self.hit(
                                code::HFR003,
                                Severity::High,
                                format!("item key evaluates to `{v}`"),
                                e.span(),
                            );
                        }
                    }
                    if let E::Var(v) = &g.expr
                        && ENGINE_GLOBALS.contains(&v.id)
                        && !self.shadowed.contains(v.id)
                    {
                        self.hit(
                            code::HFR001,
                            Severity::High,
                            format!("computed item lookup on the engine global `{}`", v.id),
                            e.span(),
                        );
                    }
                }
            }
            E::Call(c) => self.call(c, e.span(), folded_reported),
            E::List(l) => {
                for x in &l.items {
                    self.expr(x, folded_reported);
                }
            }
            E::Tuple(t) => {
                for x in &t.items {
                    self.expr(x, folded_reported);
                }
            }
            E::Map(m) => {
                for x in m.keys.iter().chain(&m.values) {
                    self.expr(x, folded_reported);
                }
            }
        }
    }

    /// Attribute or item access directly on an engine global (`cycler.__init__`,
    /// `self._TemplateReference__context`), rather than on what it returns.
    fn on_global(&mut self, base: &ast::Expr, name: &str, span: Span) {
        let ast::Expr::Var(v) = base else {
            return;
        };
        if !ENGINE_GLOBALS.contains(&v.id) || self.shadowed.contains(v.id) {
            return;
        }
        if v.id == "self" && self.blocks.contains(name) {
            return;
        }
        if is_internal(name) {
            // Already reported as a dunder; one finding per spot.
            return;
        }
        if v.id == "self" {
            self.hit(
                code::HFR004,
                Severity::Medium,
                format!("attribute `{name}` of `self` that is not a block of this template"),
                span,
            );
            return;
        }
        self.hit(
            code::HFR001,
            Severity::High,
            format!(
                "attribute `{name}` of the engine global `{}` (its Python object, not its result)",
                v.id
            ),
            span,
        );
    }

    fn filter_args(&mut self, filter: &str, args: &[ast::CallArg], span: Span) {
        if !ATTRIBUTE_FILTERS.contains(&filter) {
            return;
        }
        // `map('attr', name)` applies `|attr` to every item.
        let map_attr = filter == "map"
            && matches!(args.first(), Some(ast::CallArg::Pos(ast::Expr::Const(c))) if c.value.as_str() == Some("attr"));
        for (i, a) in args.iter().enumerate() {
            let expr = match a {
                ast::CallArg::Pos(x) => x,
                ast::CallArg::Kwarg("attribute", x) => x,
                _ => continue,
            };
            let computed_attr = filter == "attr" || (map_attr && i == 1);
            match expr {
                ast::Expr::Const(c) => {
                    if let Some(path) = c.value.as_str() {
                        for part in path.split('.') {
                            self.check_name(part, &format!("`|{filter}` attribute"), span);
                        }
                    }
                }
                _ => {
                    let vals = self.fold(expr);
                    if let Some(v) = vals.iter().find(|v| is_internal(v)) {
                        let v = v.clone();
                        self.check_name(&v, &format!("`|{filter}` attribute"), span);
                    } else if computed_attr {
                        self.hit(
                            code::HFR003,
                            Severity::High,
                            format!("`|{filter}` with a computed attribute name"),
                            span,
                        );
                    }
                }
            }
        }
    }

    fn args(&mut self, args: &[ast::CallArg], folded_reported: bool) {
        for a in args {
            match a {
                ast::CallArg::Pos(x)
                | ast::CallArg::Kwarg(_, x)
                | ast::CallArg::PosSplat(x)
                | ast::CallArg::KwargSplat(x) => self.expr(x, folded_reported),
            }
        }
    }

    fn call(&mut self, c: &ast::Call, span: Span, folded_reported: bool) {
        self.expr(&c.expr, folded_reported);
        self.args(&c.args, folded_reported);
        let callee = match &c.expr {
            ast::Expr::Var(v) => Some(v.id),
            ast::Expr::GetAttr(g) => Some(g.name),
            _ => None,
        };
        let Some(name) = callee else {
            return;
        };
        if COMMAND_CALLS.contains(&name) {
            self.hit(
                code::HFR001,
                Severity::Critical,
                format!("calls `{name}()`, which runs commands or code"),
                span,
            );
        } else if FILE_CALLS.contains(&name) {
            self.hit(
                code::HFR001,
                Severity::High,
                format!("calls `{name}()`, which reaches files or object internals"),
                span,
            );
        } else if matches!(&c.expr, ast::Expr::Var(v) if matches!(v.id, "lipsum" | "cycler" | "joiner"))
        {
            self.hit(
                code::HFR004,
                Severity::Medium,
                format!("calls the engine global `{name}()`, which chat templates do not use"),
                span,
            );
        }
    }
}

fn int_const(e: &ast::Expr) -> Option<u64> {
    match e {
        ast::Expr::Const(c) => c
            .value
            .as_i64()
            .and_then(|i| u64::try_from(i).ok())
            .filter(|&n| n <= MAX_FOLD_LEN as u64),
        _ => None,
    }
}

fn int_const_signed(e: &ast::Expr) -> Option<i64> {
    match e {
        ast::Expr::Const(c) => c.value.as_i64(),
        ast::Expr::UnaryOp(u) if matches!(u.op, ast::UnaryOpKind::Neg) => {
            int_const_signed(&u.expr).map(|i| -i)
        }
        _ => None,
    }
}

fn product(a: &[String], b: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for x in a {
        for y in b {
            if out.len() >= MAX_FOLD_VALUES {
                return out;
            }
            if x.len() + y.len() <= MAX_FOLD_LEN {
                out.push(format!("{x}{y}"));
            }
        }
    }
    out
}

/// Python `%` formatting of `%s`, `%c` and `%d` with the first value of each argument.
fn percent_format(fmt: &str, args: &[Vec<String>]) -> Option<String> {
    let mut out = String::new();
    let mut it = args.iter();
    let mut chars = fmt.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next()? {
            '%' => out.push('%'),
            's' | 'd' | 'r' => out.push_str(it.next()?.first()?),
            'c' => {
                let a = it.next()?.first()?;
                match a.parse::<u32>().ok().and_then(char::from_u32) {
                    Some(ch) => out.push(ch),
                    None => out.push_str(a),
                }
            }
            _ => return None,
        }
        if out.len() > MAX_FOLD_LEN {
            return None;
        }
    }
    Some(out)
}

/// Python `str.format` with positional `{}` / `{0}` fields.
fn brace_format(fmt: &str, args: &[Vec<String>]) -> Option<String> {
    let mut out = String::new();
    let mut next = 0usize;
    let mut rest = fmt;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        if let Some(r) = after.strip_prefix('{') {
            out.push('{');
            rest = r;
            continue;
        }
        let close = after.find('}')?;
        let field = &after[..close];
        let idx = if field.is_empty() {
            next += 1;
            next - 1
        } else {
            field.parse::<usize>().ok()?
        };
        out.push_str(args.get(idx)?.first()?);
        rest = &after[close + 1..];
        if out.len() > MAX_FOLD_LEN {
            return None;
        }
    }
    out.push_str(rest);
    Some(out)
}

/// What can still be said about a template that could not be parsed: dunder names and
/// command calls in its text.
fn lexical(source: &str) -> Vec<TemplateHit> {
    let mut internal = BTreeSet::new();
    let mut calls = BTreeSet::new();
    let mut danger = BTreeSet::new();
    let bytes = source.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'_' || bytes[i].is_ascii_alphabetic() {
            let start = i;
            while i < bytes.len() && (bytes[i] == b'_' || bytes[i].is_ascii_alphanumeric()) {
                i += 1;
            }
            let word = &source[start..i];
            let called = source[i..].trim_start().starts_with('(');
            if is_internal(word) && internal.len() < 16 {
                internal.insert(word.to_string());
            } else if called && COMMAND_CALLS.contains(&word) && calls.len() < 16 {
                calls.insert(format!("{word}()"));
            } else if danger_word(word) && danger.len() < 16 {
                danger.insert(word.to_string());
            }
        } else {
            i += 1;
        }
    }
    if internal.is_empty() && calls.is_empty() {
        return Vec::new();
    }
    let critical = !calls.is_empty() || !danger.is_empty();
    let names: Vec<String> = internal.into_iter().chain(calls).collect();
    vec![TemplateHit {
        rule: code::HFR001,
        severity: if critical {
            Severity::Critical
        } else {
            Severity::High
        },
        message: "the template text names Python internals or calls that run commands".into(),
        evidence: Some(names.join(", ")),
    }]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(src: &str) -> Vec<(&'static str, Severity)> {
        analyse(src)
            .into_iter()
            .map(|h| (h.rule, h.severity))
            .collect()
    }

    fn worst(src: &str) -> Option<Severity> {
        analyse(src).into_iter().map(|h| h.severity).max()
    }

    #[test]
    fn real_templates_are_clean() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/gguf/templates");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).expect("fixtures/gguf/templates") {
            let path = entry.unwrap().path();
            if path.extension().and_then(|e| e.to_str()) != Some("jinja") {
                continue;
            }
            let src = std::fs::read_to_string(&path).unwrap();
            let hits = analyse(&src);
            assert!(hits.is_empty(), "{}: {hits:#?}", path.display());
            n += 1;
        }
        assert!(n >= 50, "only {n} templates");
    }

    #[test]
    fn generation_tags_and_loop_controls() {
        let t = "{% for m in messages %}{% if m.role == 'x' %}{% continue %}{% endif %}{%- generation -%}{{ m.content }}{%- endgeneration -%}{% if loop.last %}{% break %}{% endif %}{% endfor %}";
        assert_eq!(rules(t), vec![]);
    }

    #[test]
    fn classic_escapes() {
        for t in [
            "{{ cycler.__init__.__globals__.os.popen('echo pwned').read() }}",
            "{{ self.__init__.__globals__.__builtins__.__import__('os').popen('id').read() }}",
            "{{ self._TemplateReference__context.joiner.__init__.__globals__.os.system('id') }}",
            "{{ lipsum.__globals__['os'].popen('id').read() }}",
            "{% for c in [].__class__.__base__.__subclasses__() %}{% if c.__name__ == 'catch_warnings' %}{{ c()._module.__builtins__['__import__']('os').system('id') }}{% endif %}{% endfor %}",
            "{{ namespace.__init__.__globals__['os'].system('id') }}",
            "{{ messages|attr('__class__')|attr('__mro__') }}{{ x.popen }}",
        ] {
            assert_eq!(worst(t), Some(Severity::Critical), "{t}: {:#?}", analyse(t));
        }
    }

    #[test]
    fn high_without_command() {
        for t in [
            "{{ messages.__class__ }}",
            "{{ messages['__class__'] }}",
            "{{ messages|attr('__class__') }}",
            "{{ messages|map(attribute='__class__')|list }}",
            "{{ messages|map('attr', '__class__')|list }}",
            "{{ '{0.__class__}'.format(messages) }}",
            "{{ range.x }}",
            "{{ x.gi_frame.f_back }}",
            "{{ ''.__class__.__mro__[1].__subclasses__() }}",
            "{{ config.items() }}",
        ] {
            assert_eq!(worst(t), Some(Severity::High), "{t}: {:#?}", analyse(t));
        }
    }

    #[test]
    fn obfuscated_names() {
        for t in [
            "{% set u = '_' * 2 %}{{ messages | attr(u ~ 'class' ~ u) }}",
            "{{ messages[('_'*2) + 'class' + ('_'*2)] }}",
            "{{ messages | attr(['_','_','class','_','_']|join) }}",
            "{{ messages | attr('__ssalc__'|reverse) }}",
            "{{ messages | attr('%c%cclass%c%c' % (95,95,95,95)) }}",
            "{{ messages | attr('{}{}class{}{}'.format('_','_','_','_')) }}",
            "{% set ns = namespace(a='__') %}{{ messages[ns.a ~ 'globals' ~ ns.a] }}",
            "{{ messages | attr(request.args.x) }}",
            "{% set ns = namespace(n='') %}{% for c in ['__', 'class', '__'] %}{% set ns.n = ns.n ~ c %}{% endfor %}{{ messages|attr(ns.n) }}",
        ] {
            let r = rules(t);
            assert!(
                r.iter()
                    .any(|(c, s)| *c == code::HFR003 && *s >= Severity::High),
                "{t}: {r:?}"
            );
        }
        // Obfuscation that leads to a command is critical.
        let t = "{% set u = '_' * 2 %}{{ (cycler|attr(u ~ 'init' ~ u)|attr(u ~ 'globals' ~ u))['os'].popen('id') }}";
        assert_eq!(worst(t), Some(Severity::Critical));
    }

    #[test]
    fn suspicious_but_not_escapes() {
        for t in [
            "{% include 'other.jinja' %}",
            "{{ config }}",
            "{{ lipsum() }}",
            "{% extends 'base' %}",
        ] {
            assert_eq!(worst(t), Some(Severity::Medium), "{t}: {:#?}", analyse(t));
        }
    }

    #[test]
    fn unparsable_and_oversized() {
        let r = rules("{% for x in %}{{ x.__class__.__init__.__globals__['os'] }}");
        assert!(r.contains(&(code::HFR002, Severity::High)), "{r:?}");
        assert!(r.contains(&(code::HFR001, Severity::Critical)), "{r:?}");
        assert_eq!(rules("{% if %}"), vec![(code::HFR002, Severity::High)]);
        let deep = format!("{{{{ x{} }}}}", ".a".repeat(200_000));
        assert_eq!(rules(&deep), vec![(code::HFR002, Severity::High)]);
        let big = "a".repeat(MAX_TEMPLATE + 1);
        assert_eq!(rules(&big), vec![(code::HFR002, Severity::High)]);
        // Deeply nested statements hit the parser's own recursion limit.
        let nested = "{% if a %}".repeat(500);
        assert_eq!(rules(&nested)[0].0, code::HFR002);
    }

    #[test]
    fn benign_lookalikes() {
        for t in [
            "{{ message['content'] | tojson(indent=2) }}",
            "{%- set ns = namespace(found=false, idx=0) -%}{% set ns.found = true %}{{ ns.idx }}",
            "{{ raise_exception('bad role') }}",
            "{{ tool.function.name | replace('_', ' ') }}",
            "{{ messages | map(attribute='content') | join('\\n') }}",
            "{{ '__' }} {{ 'class' }}",
            "{% for request in requests %}{{ request.name }}{% endfor %}",
            "{% macro show(config) %}{{ config.name }}{% endmacro %}",
            "{{ strftime_now('%d %b %Y') }}",
            "{% macro render(x, indent=0) %}{{ x }}{% endmacro %}{{ render(messages[0]) }}",
        ] {
            let r = analyse(t);
            assert!(
                r.iter().all(|h| h.severity < Severity::High) || t.contains("'__' }}"),
                "{t}: {r:#?}"
            );
        }
    }
}

#[cfg(test)]
mod depth_tests {
    use super::*;

    /// The longest chains a tag may hold are walked (and dropped) whatever the caller's
    /// stack.
    #[test]
    fn long_chains_fit_in_a_small_stack() {
        let n = MAX_TAG_TOKENS / 2 - 4;
        let templates = [
            format!("{{{{ x{} }}}}", ".a".repeat(n)),
            format!("{{{{ x{} }}}}", "|e".repeat(n)),
            format!("{{{{ 'a'{} }}}}", " ~ 'a'".repeat(n)),
            format!("{{{{ x{} }}}}", "[0]".repeat(n * 2 / 3)),
            format!("{{{{ x{} }}}}", "()".repeat(n)),
        ];
        let worker = std::thread::Builder::new()
            .stack_size(1 << 20)
            .spawn(move || {
                for t in &templates {
                    let hits = analyse(t);
                    assert!(hits.iter().all(|h| h.rule != code::HFR001), "{hits:?}");
                }
            })
            .unwrap();
        worker.join().unwrap();
    }
}
