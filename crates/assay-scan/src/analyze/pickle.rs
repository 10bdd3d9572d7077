//! Judging what a pickle would do when loaded.

use crate::engine::{FileScan, Format, Loc};
use crate::rules::callables::{Danger, Judgement, judge};
use crate::rules::code;
use assay_formats::pickle::{AnomalyKind, CallKind, Callable, PickleAnalysis, analyze};
use assay_report::Severity;
use std::collections::HashMap;

/// The first pickle of `torch.save(..., _use_new_zipfile_serialization=False)`: the magic
/// number 0x1950a86a20f9469cfc6c as a protocol-2 LONG1.
const TORCH_LEGACY_MAGIC: &[u8] = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.";

/// Loaders whose payload Assay scans itself, and which are part of PyTorch's own format:
/// when the payload is found and scanned, the call is not a finding by itself.
const TRANSPARENT_LOADERS: &[&str] = &[
    "torch.storage._load_from_bytes",
    "torch._utils._load_from_bytes",
];

/// Array data pickled as numpy arrays that the tensor view cannot read (joblib inline
/// arrays or `_reconstruct`/`frombuffer` data of a dtype or encoding it does not
/// describe) above this many bytes makes the `tensor` and `backdoor` stages incomplete:
/// a scan must not claim it looked at those weights. Numeric arrays the symbolic
/// unpickler describes ([`PickleAnalysis::numpy_arrays`]) are read and analysed; joblib
/// object arrays are pickles, analysed as such.
const MAX_UNREAD_ARRAY_BYTES: u64 = 64 * 1024;

fn unread_arrays(ctx: &mut FileScan, a: &PickleAnalysis, stream_len: u64, loc: &Loc) {
    let read =
        |r: &(u64, u64)| a.numpy_arrays.iter().any(|x| x.data == *r) || a.object_arrays.contains(r);
    let inline: u64 = a
        .inline_arrays
        .iter()
        .filter(|r| !read(r))
        .map(|(_, n)| n)
        .sum();
    let numpy_arrays = a.globals.iter().any(|g| {
        g.module.starts_with("numpy")
            && matches!(
                g.name.as_str(),
                "_reconstruct" | "frombuffer" | "_frombuffer"
            )
    });
    // Arrays rebuilt by numpy carry their bytes in the stream itself: whatever of the
    // stream is not a described array may be undescribed array data.
    let described: u64 = a.numpy_arrays.iter().map(|x| x.data.1).sum();
    let unread = if numpy_arrays {
        inline.max(stream_len.saturating_sub(described))
    } else {
        inline
    };
    if unread > MAX_UNREAD_ARRAY_BYTES {
        ctx.tensor.incomplete = true;
        ctx.add(
            code::TEN009,
            Severity::Info,
            loc,
            None,
            format!(
                "{unread} bytes of pickled numpy array data could not be described (dtype, \
                 shape or encoding not read statically) and were not analysed by the tensor \
                 stage (the tensor and backdoor stages are incomplete)"
            ),
            None,
        );
    }
}

pub fn scan(ctx: &mut FileScan, data: &[u8], loc: &Loc, depth: u32, strict: bool) -> Format {
    scan_with(ctx, data, loc, depth, strict, None).0
}

/// [`scan`] over `analysis` when the caller already has the analysis of `data` (with
/// `ctx.limits.pickle`); returns the analysis too, for the stages that read the weights
/// it describes.
pub fn scan_with(
    ctx: &mut FileScan,
    data: &[u8],
    loc: &Loc,
    depth: u32,
    strict: bool,
    analysis: Option<PickleAnalysis>,
) -> (Format, PickleAnalysis) {
    let a = analysis.unwrap_or_else(|| analyze(data, &ctx.limits.pickle));
    if !strict && !looks_like_pickle(&a) {
        // Text or data that merely starts with an opcode byte: not a pickle.
        return (Format::Unknown, a);
    }
    let legacy = data.starts_with(TORCH_LEGACY_MAGIC);
    let format =
        if legacy {
            Format::PytorchLegacy
        } else if a.globals.iter().any(|g| {
            g.module.starts_with("joblib") || g.module.starts_with("sklearn.externals.joblib")
        }) {
            Format::Joblib
        } else if a.globals.iter().any(|g| g.module.starts_with("dill")) {
            Format::Dill
        } else if a
            .globals
            .iter()
            .any(|g| g.module.starts_with("cloudpickle"))
        {
            Format::Cloudpickle
        } else {
            Format::Pickle
        };
    report(ctx, &a, loc, legacy);
    if !legacy {
        unread_arrays(ctx, &a, data.len() as u64, loc);
    }
    if let Some(stop) = a
        .anomalies
        .iter()
        .find(|x| matches!(x.kind, AnomalyKind::Malformed | AnomalyKind::Truncated))
    {
        salvage(ctx, data, stop.offset as usize, loc);
    }
    for n in &a.nested {
        let child = loc.child(&format!("{}@{}", n.loader, n.offset));
        if ctx.enter_member(&child) {
            let f = ctx.scan_bytes(&n.data, &child, depth + 1);
            if f == Format::Unknown
                && !TRANSPARENT_LOADERS.contains(&n.loader.as_str())
                && !n.loader.starts_with("marshal")
            {
                ctx.add(
                    code::PKL008,
                    Severity::High,
                    &child,
                    Some(n.offset),
                    format!(
                        "payload handed to {} is not a format Assay can analyse",
                        n.loader
                    ),
                    Some(crate::engine::hex_prefix(&n.data)),
                );
            }
        }
    }
    // Polyglots: whatever follows the last pickle is sniffed and scanned too, and a
    // pickle hidden further inside the trailing bytes is found by its PROTO marker.
    if let Some(t) = a
        .anomalies
        .iter()
        .find(|x| x.kind == AnomalyKind::TrailingData)
    {
        let off = t.offset as usize;
        if let Some(rest) = data.get(off..)
            && !legacy
        {
            trailing(ctx, rest, off, loc, depth);
        }
    }
    (format, a)
}

/// PROTO markers probed for hidden pickles in trailing data.
const MAX_HIDDEN_PROBES: usize = 256;
/// How far into trailing data hidden pickles are searched for.
const MAX_HIDDEN_SEARCH: usize = 64 << 20;

fn trailing(ctx: &mut FileScan, rest: &[u8], off: usize, loc: &Loc, depth: u32) {
    use assay_formats::sniff::{Sniffed, sniff};
    if !matches!(sniff(rest), Sniffed::Unknown | Sniffed::MaybePickle) {
        let child = loc.child(&format!("@{off}"));
        ctx.add(
            code::ARC005,
            Severity::Medium,
            loc,
            Some(off as u64),
            "another artifact follows the pickle in the same file".into(),
            Some(crate::engine::hex_prefix(rest)),
        );
        if ctx.enter_member(&child) {
            ctx.scan_bytes(rest, &child, depth + 1);
        }
        return;
    }
    let window = &rest[..rest.len().min(MAX_HIDDEN_SEARCH)];
    let mut probes = 0;
    let mut i = 0;
    while i + 1 < window.len() && probes < MAX_HIDDEN_PROBES {
        let Some(p) = window[i..].iter().position(|&b| b == 0x80) else {
            break;
        };
        let at = i + p;
        i = at + 1;
        if window.get(at + 1).is_some_and(|v| (2..=5).contains(v)) {
            probes += 1;
            let (hidden, _) = assay_formats::pickle::analyze_one(rest, at, &ctx.limits.pickle);
            if hidden.names_anything() {
                let child = loc.child(&format!("@{}", off + at));
                ctx.add(
                    code::PKL009,
                    Severity::High,
                    loc,
                    Some((off + at) as u64),
                    "a pickle is hidden in the data after the end of the pickle".into(),
                    Some(format!("pickle at offset {}", off + at)),
                );
                report(ctx, &hidden, &child, false);
            }
        }
    }
}

/// Without a `PROTO` header, a stream counts as a pickle when it parses to `STOP`, or
/// performs a call, or names a dangerous global before it breaks. Text such as
/// `cat\ndog\n` reads as `GLOBAL cat.dog` and then fails: not a pickle, and nothing ran.
fn looks_like_pickle(a: &PickleAnalysis) -> bool {
    a.pickles > 0
        || !a.calls.is_empty()
        || !a.extensions.is_empty()
        || a.globals.iter().any(|g| {
            matches!(
                judge(&g.module, &g.name, CallKind::Reduce),
                Judgement::Dangerous(_)
            )
        })
}

/// Modules whose import has no side effects worth a finding when a pickle merely
/// references one of their names.
const WELL_KNOWN_ROOTS: &[&str] = &[
    "builtins",
    "__builtin__",
    "collections",
    "copyreg",
    "copy_reg",
    "codecs",
    "_codecs",
    "datetime",
    "decimal",
    "fractions",
    "uuid",
    "enum",
    "typing",
    "re",
    "math",
    "numbers",
    "functools",
    "operator",
    "numpy",
    "torch",
    "__torch__",
    "sklearn",
    "scipy",
    "xgboost",
    "lightgbm",
    "catboost",
    "pandas",
    "joblib",
    "transformers",
    "tokenizers",
    "pathlib",
    "ipaddress",
];

/// How far past the point where a stream breaks Assay looks for names it would hide.
const MAX_SALVAGE_SCAN: usize = 16 << 20;
/// Names reported from the unparsed remainder of a broken stream.
const MAX_SALVAGED: usize = 64;

/// After a stream breaks, other readers may still go on (a parser differential): look
/// through the rest for protocol-0 `GLOBAL`/`INST` names and embedded pickles, and
/// report any dangerous callable they name.
fn salvage(ctx: &mut FileScan, data: &[u8], from: usize, loc: &Loc) {
    let Some(rest) = data.get(from..) else { return };
    let rest = &rest[..rest.len().min(MAX_SALVAGE_SCAN)];
    let mut found: Vec<(usize, String, String)> = Vec::new();
    let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'.';
    let mut i = 0;
    while i < rest.len() && found.len() < MAX_SALVAGED {
        let b = rest[i];
        if b == b'c' || b == b'i' {
            let m_start = i + 1;
            let m_end = m_start
                + rest[m_start..]
                    .iter()
                    .take(256)
                    .take_while(|&&c| ident(c))
                    .count();
            if m_end > m_start && rest.get(m_end) == Some(&b'\n') {
                let n_start = m_end + 1;
                let n_end = n_start
                    + rest[n_start..]
                        .iter()
                        .take(256)
                        .take_while(|&&c| ident(c))
                        .count();
                if n_end > n_start && rest.get(n_end) == Some(&b'\n') {
                    let m = String::from_utf8_lossy(&rest[m_start..m_end]).into_owned();
                    let n = String::from_utf8_lossy(&rest[n_start..n_end]).into_owned();
                    found.push((from + i, m, n));
                    i = n_end;
                    continue;
                }
            }
        }
        if b == 0x80 && rest.get(i + 1).is_some_and(|v| (2..=5).contains(v)) {
            let (hidden, _) =
                assay_formats::pickle::analyze_one(data, from + i, &ctx.limits.pickle);
            for g in hidden.globals.iter().take(MAX_SALVAGED) {
                found.push((g.offset as usize, g.module.clone(), g.name.clone()));
            }
        }
        i += 1;
    }
    let mut seen = std::collections::HashSet::new();
    for (off, m, n) in found {
        if !seen.insert((m.clone(), n.clone())) {
            continue;
        }
        let (m, n) = if m == "__builtin__" {
            ("builtins".to_string(), n)
        } else {
            (m, n)
        };
        if let Judgement::Dangerous(d) = judge(&m, &n, CallKind::Reduce) {
            ctx.add(code::PKL004, Severity::High, loc, Some(off as u64), format!("past the point where the pickle stream breaks, it names {m}.{n}, which {}; another reader may get there", d.describe()), Some(format!("{m}.{n}")));
        }
    }
}

fn danger_rule(d: Danger) -> &'static str {
    if d == Danger::Network {
        code::NET001
    } else {
        code::PKL001
    }
}

/// Turns the analysis into findings, aggregating repeats of the same callable.
pub fn report(ctx: &mut FileScan, a: &PickleAnalysis, loc: &Loc, torch_legacy: bool) {
    struct Pending {
        rule: &'static str,
        severity: Severity,
        offset: u64,
        message: String,
        evidence: String,
        count: usize,
    }
    let mut pending: Vec<Pending> = Vec::new();
    let mut index: HashMap<(String, &'static str), usize> = HashMap::new();
    let mut push = |key: String,
                    rule: &'static str,
                    severity: Severity,
                    offset: u64,
                    message: String,
                    evidence: String| {
        if let Some(&i) = index.get(&(key.clone(), rule)) {
            let p: &mut Pending = &mut pending[i];
            p.count += 1;
            return;
        }
        index.insert((key, rule), pending.len());
        pending.push(Pending {
            rule,
            severity,
            offset,
            message,
            evidence,
            count: 1,
        });
    };

    let loader_payload_scanned = |offset: u64| a.nested.iter().any(|n| n.offset == offset);
    let mut called: Vec<(String, String)> = Vec::new();
    for c in &a.calls {
        match &c.callable {
            Callable::Global { module, name } => {
                called.push((module.clone(), name.clone()));
                let qn = c.callable.qualified();
                match judge(module, name, c.kind) {
                    Judgement::Safe => {}
                    Judgement::Dangerous(Danger::Deserialization)
                        if loader_payload_scanned(c.offset) =>
                    {
                        if !TRANSPARENT_LOADERS.contains(&qn.as_str()) {
                            push(
                                qn.clone(),
                                code::PKL008,
                                Severity::High,
                                c.offset,
                                format!(
                                    "pickle hands a nested payload to {qn} when loaded; the payload is scanned below"
                                ),
                                c.evidence.clone(),
                            );
                        }
                    }
                    Judgement::Dangerous(d) => {
                        let verb = if c.kind == CallKind::NewObj || c.kind == CallKind::Reconstruct
                        {
                            "instantiates"
                        } else {
                            "calls"
                        };
                        push(
                            qn.clone(),
                            danger_rule(d),
                            Severity::Critical,
                            c.offset,
                            format!("pickle {verb} {qn}, which {}, when loaded", d.describe()),
                            c.evidence.clone(),
                        );
                    }
                    Judgement::Unknown => {
                        let class_like = name.rsplit('.').next().is_some_and(|l| {
                            l.chars().next().is_some_and(|ch| ch.is_ascii_uppercase())
                        });
                        let state_only = c.no_args
                            && (matches!(c.kind, CallKind::NewObj | CallKind::Reconstruct)
                                || (c.kind == CallKind::Instantiate && class_like));
                        if state_only {
                            push(
                                qn.clone(),
                                code::PKL003,
                                Severity::Medium,
                                c.offset,
                                format!(
                                    "pickle instantiates {qn}, a class outside the allowlist, to restore its state; loading imports its module"
                                ),
                                c.evidence.clone(),
                            );
                        } else {
                            push(
                                qn.clone(),
                                code::PKL002,
                                Severity::High,
                                c.offset,
                                format!(
                                    "pickle calls {qn}, which is not on the allowlist of safe callables, when loaded"
                                ),
                                c.evidence.clone(),
                            );
                        }
                    }
                }
            }
            Callable::Dynamic(d) => {
                push(d.clone(), code::PKL010, Severity::High, c.offset, "pickle calls a callable that is computed at load time and cannot be named statically".into(), c.evidence.clone());
            }
            Callable::Extension(e) => {
                push(
                    format!("ext{e}"),
                    code::PKL006,
                    Severity::High,
                    c.offset,
                    format!("pickle calls the object registered under copyreg extension code {e}"),
                    c.evidence.clone(),
                );
            }
        }
    }
    // Dangerous callables named but not called here can still be called later by the
    // object they are stored in (a defaultdict factory, a callback attribute).
    for g in &a.globals {
        if g.module == "<dynamic>" {
            if !a
                .calls
                .iter()
                .any(|c| matches!(&c.callable, Callable::Dynamic(d) if *d == g.name))
            {
                push(
                    g.name.clone(),
                    code::PKL010,
                    Severity::High,
                    g.offset,
                    "pickle names a global computed at load time".into(),
                    g.name.clone(),
                );
            }
            continue;
        }
        if called.iter().any(|(m, n)| *m == g.module && *n == g.name) {
            continue;
        }
        let root = g.module.split('.').next().unwrap_or("");
        let judged = judge(&g.module, &g.name, CallKind::Reduce);
        if judged == Judgement::Unknown && !WELL_KNOWN_ROOTS.contains(&root) {
            let qn = format!("{}.{}", g.module, g.name);
            push(
                qn.clone(),
                code::PKL003,
                Severity::Medium,
                g.offset,
                format!(
                    "pickle references {qn}: loading imports module {} (its import-time code runs)",
                    g.module
                ),
                qn.clone(),
            );
        }
        if let Judgement::Dangerous(d) = judged {
            let qn = format!("{}.{}", g.module, g.name);
            push(
                qn.clone(),
                danger_rule(d),
                Severity::High,
                g.offset,
                format!(
                    "pickle references {qn}, which {}; it is not called while loading but is stored where it can be called later",
                    d.describe()
                ),
                qn.clone(),
            );
        }
    }
    for (off, e) in &a.extensions {
        push(
            format!("ext-use{e}"),
            code::PKL006,
            Severity::High,
            *off,
            format!(
                "pickle uses copyreg extension code {e}; the default registry is empty, so the stream relies on a registration made elsewhere"
            ),
            format!("EXT {e}"),
        );
    }
    let mut foreign_pids = a.persistent.iter().filter(|p| !p.is_torch_storage);
    if let Some(p) = foreign_pids.next() {
        push("pid".into(), code::PKL012, Severity::Low, p.offset, "pickle uses persistent ids outside the PyTorch storage convention (needs a custom persistent_load)".into(), p.rendered.clone());
    }
    for an in &a.anomalies {
        let (rule, sev, msg) = match an.kind {
            AnomalyKind::Malformed => (
                code::PKL004,
                Severity::High,
                "pickle stream is malformed; analysis stopped here",
            ),
            AnomalyKind::Truncated => (
                code::PKL004,
                Severity::High,
                "pickle stream is truncated; analysis stopped here",
            ),
            AnomalyKind::JoblibArray => (
                code::PKL004,
                Severity::High,
                "joblib inline array could not be located; the rest of the stream was not analysed",
            ),
            AnomalyKind::FrameViolation => (
                code::PKL005,
                Severity::High,
                "pickle framing differs between CPython's C and Python unpicklers",
            ),
            AnomalyKind::BuildOnGlobal => (
                code::PKL007,
                Severity::High,
                "pickle overwrites attributes of a class, function or module",
            ),
            AnomalyKind::DunderState => (
                code::PKL007,
                Severity::High,
                "pickle sets dunder attributes on an object",
            ),
            AnomalyKind::ComputedName => (
                code::PKL010,
                Severity::High,
                "pickle computes a global or attribute name at load time (evaluated statically)",
            ),
            AnomalyKind::LimitReached => (
                code::PKL011,
                Severity::High,
                "pickle analysis stopped at a safety limit",
            ),
            AnomalyKind::OutOfBandBuffer => (
                code::PKL013,
                Severity::Medium,
                "pickle refers to out-of-band buffers",
            ),
            AnomalyKind::Concatenated if torch_legacy => continue,
            AnomalyKind::TrailingData if torch_legacy => continue,
            AnomalyKind::Concatenated => (
                code::PKL009,
                Severity::Low,
                "several pickles are concatenated in one stream; each was scanned",
            ),
            AnomalyKind::TrailingData => (
                code::PKL009,
                Severity::High,
                "unexplained data follows the end of the pickle (a place to hide a second payload)",
            ),
        };
        if matches!(
            an.kind,
            AnomalyKind::Malformed
                | AnomalyKind::Truncated
                | AnomalyKind::LimitReached
                | AnomalyKind::JoblibArray
        ) {
            ctx.incomplete = true;
        }
        push(
            format!("{:?}{}", an.kind, an.offset),
            rule,
            sev,
            an.offset,
            msg.to_string(),
            an.detail.clone(),
        );
    }
    for p in pending {
        let message = if p.count > 1 {
            format!("{} ({} times)", p.message, p.count)
        } else {
            p.message
        };
        ctx.add(
            p.rule,
            p.severity,
            loc,
            Some(p.offset),
            message,
            Some(p.evidence),
        );
    }
}

#[cfg(test)]
mod unread_array_tests {
    use super::*;
    use crate::limits::Limits;

    /// `numpy.core.multiarray._reconstruct` with `BUILD` state carrying `n` raw bytes, as
    /// `pickle.dumps(np.ndarray)` writes it (shape and dtype simplified).
    fn numpy_pickle(n: usize) -> Vec<u8> {
        let mut d = b"\x80\x04cnumpy.core.multiarray\n_reconstruct\n".to_vec();
        d.extend_from_slice(b"cnumpy\nndarray\nK\x00\x85C\x01b\x87R(K\x01");
        d.extend_from_slice(b"K\x00\x85cnumpy\ndtype\nX\x02\x00\x00\x00f4\x89\x88\x87R");
        d.extend_from_slice(b"\x89B");
        d.extend_from_slice(&(n as u32).to_le_bytes());
        d.extend(std::iter::repeat_n(0x3c, n));
        d.extend_from_slice(b"tb.");
        d
    }

    fn scan_pickle(data: &[u8]) -> FileScan<'static> {
        static LIMITS: std::sync::LazyLock<Limits> = std::sync::LazyLock::new(Limits::default);
        let mut ctx = FileScan::new("arrays.pkl".into(), &LIMITS);
        scan(&mut ctx, data, &Loc::top(), 0, true);
        ctx
    }

    #[test]
    fn large_pickled_arrays_make_the_tensor_stages_incomplete() {
        let ctx = scan_pickle(&numpy_pickle(MAX_UNREAD_ARRAY_BYTES as usize + 1));
        assert!(ctx.tensor.incomplete);
        assert!(
            ctx.findings.iter().any(|f| f.rule == "TEN009"),
            "{:?}",
            ctx.findings
        );
    }

    /// The same stream with a shape that fits its bytes: the array is described (and read
    /// by the tensor stage), so nothing is left unread.
    #[test]
    fn described_pickled_arrays_are_not_unread() {
        let n = MAX_UNREAD_ARRAY_BYTES as usize + 4;
        let mut d = numpy_pickle(n);
        // shape (0,) -> (n/4,) as BININT: K\x00 becomes J + 4 bytes.
        let at = d.windows(3).position(|w| w == b"K\x00\x85").unwrap();
        let at = at
            + d[at + 1..]
                .windows(3)
                .position(|w| w == b"K\x00\x85")
                .unwrap()
            + 1;
        d.splice(
            at..at + 2,
            [b"J".as_slice(), &((n / 4) as u32).to_le_bytes()].concat(),
        );
        let a = analyze(&d, &Default::default());
        assert_eq!(a.numpy_arrays.len(), 1, "{:?}", a.anomalies);
        assert_eq!(a.numpy_arrays[0].shape, vec![(n / 4) as u64]);
        let ctx = scan_pickle(&d);
        assert!(!ctx.tensor.incomplete);
        assert!(
            !ctx.findings.iter().any(|f| f.rule == "TEN009"),
            "{:?}",
            ctx.findings
        );
    }

    #[test]
    fn small_pickled_arrays_do_not() {
        let ctx = scan_pickle(&numpy_pickle(1024));
        assert!(!ctx.tensor.incomplete);
        assert!(
            !ctx.findings.iter().any(|f| f.rule == "TEN009"),
            "{:?}",
            ctx.findings
        );
    }
}
