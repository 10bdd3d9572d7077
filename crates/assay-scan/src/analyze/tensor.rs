//! The `tensor` and `backdoor` stages: every file that holds weights is read through the
//! tensor view (`assay-tensor`), and each floating-point tensor is checked in parallel —
//! numeric integrity (NaN/Inf, subnormals, degenerate tensors), hidden payloads in its
//! low-order bytes and bits, windowed statistics, and (backdoor) statistics compared
//! across the layers that share a role. Bytes inside the weight area that no tensor uses
//! are searched and scanned too.

use crate::blob::{Blob, map_file};
use crate::engine::{FileScan, Format, Loc, Parsed};
use crate::rules::code;
use assay_report::Severity;
use assay_tensor::payload::{self, PayloadHit, Region, RegionKind};
use assay_tensor::stats::{Stats, stats};
use assay_tensor::{Dtype, ExternalData, ReadLimits, Tensor, TensorFile, TensorFormat, Unpickled};
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Findings of one rule per file before the rest are summarised in one.
const MAX_PER_RULE: usize = 20;
/// Members of a role group needed before its layers are compared.
const MIN_GROUP: usize = 6;
/// Robust z-score (in MADs) and ratio to the median beyond which a layer is an outlier.
const OUTLIER_Z: f64 = 10.0;
const OUTLIER_RATIO: f64 = 5.0;
/// Kurtosis above which a tensor is reported as heavy-tailed, and the size it needs.
const HEAVY_KURTOSIS: f64 = 100.0;
const HEAVY_MIN: u64 = 4096;

/// What the analysis of one tensor produced.
struct Analysis {
    stats: Option<Stats>,
    hits: Vec<PayloadHit>,
    regions: Vec<Region>,
}

/// Reads the weights of `data` (whose format the analysers found) and analyses them.
/// Pickles are not analysed again: `parsed` holds what the pickle stage found.
pub fn scan(
    ctx: &mut FileScan,
    data: &[u8],
    loc: &Loc,
    depth: u32,
    format: Format,
    parsed: &Parsed,
) {
    let tf = match format {
        Format::Safetensors => TensorFormat::Safetensors,
        Format::PytorchZip => TensorFormat::PytorchZip,
        Format::PytorchLegacy => TensorFormat::PytorchLegacy,
        Format::Gguf => TensorFormat::Gguf,
        Format::Onnx => TensorFormat::Onnx,
        // `.npz` members are `.npy` files, each scanned (and analysed) on its own.
        Format::Npy => TensorFormat::Npy,
        // Numeric numpy arrays inside a pickle (joblib inline arrays, `_reconstruct`).
        Format::Pickle | Format::Joblib | Format::Dill | Format::Cloudpickle => {
            let own;
            let a = match &parsed.pickle {
                Some(a) => a,
                None => {
                    own = assay_formats::pickle::analyze(data, &ctx.limits.pickle);
                    &own
                }
            };
            if a.numpy_arrays.is_empty() {
                return;
            }
            let known = Unpickled {
                whole: Some(a),
                members: &[],
            };
            let read = assay_tensor::read_as_unpickled(
                TensorFormat::PickleNumpy,
                data,
                &ReadLimits::default(),
                None,
                &known,
            );
            match read {
                Ok(file) => analyse_file(ctx, &file, loc, depth),
                Err(e) => {
                    ctx.tensor.incomplete = true;
                    ctx.add(
                        code::TEN008,
                        Severity::Medium,
                        loc,
                        None,
                        format!("pickled arrays could not be read, so they were not analysed: {e}"),
                        None,
                    );
                }
            }
            return;
        }
        // Keras `.h5` / `.weights.h5` and Transformers `tf_model.h5` (the weights member of
        // a `.keras` archive is scanned, and so analysed, as a member).
        Format::KerasH5 | Format::Hdf5 => TensorFormat::Hdf5,
        Format::TensorFlow(_) | Format::TorchScript => {
            ctx.tensor.incomplete = true;
            ctx.add(
                code::TEN009,
                Severity::Info,
                loc,
                None,
                format!(
                    "weights in {} files are not read by the tensor stage; they were not analysed",
                    format.name()
                ),
                None,
            );
            return;
        }
        _ => return,
    };
    // ONNX external data: regular files inside the model's folder only, mapped here.
    let blobs = if tf == TensorFormat::Onnx && loc.member.is_none() {
        external_files(&ctx.path, data)
    } else {
        Vec::new()
    };
    let folder = Folder(&blobs);
    let known = Unpickled {
        whole: parsed.pickle.as_ref(),
        members: &parsed.members,
    };
    let read =
        assay_tensor::read_as_unpickled(tf, data, &ReadLimits::default(), Some(&folder), &known);
    let file = match read {
        Ok(f) => f,
        // Object, string and structured NumPy arrays: not weights (NPY rules judge them).
        Err(assay_tensor::ReadError::Unsupported(_)) => return,
        Err(e) => {
            // The format's own rules report why; here the weights went unanalysed.
            ctx.tensor.incomplete = true;
            ctx.add(
                code::TEN008,
                Severity::Medium,
                loc,
                None,
                format!("tensors could not be read, so they were not analysed: {e}"),
                None,
            );
            return;
        }
    };
    analyse_file(ctx, &file, loc, depth);
}

struct Folder<'b>(&'b [(String, Blob)]);

impl<'b> ExternalData<'b> for Folder<'b> {
    fn get(&self, location: &str) -> Option<&'b [u8]> {
        self.0
            .iter()
            .find(|(l, _)| l == location)
            .map(|(_, b)| &b[..])
    }
}

/// Maps the external-data files an ONNX model names, when they are regular files inside
/// its folder reached without symbolic links (ONX002/ONX003 report the others).
fn external_files(model_path: &str, data: &[u8]) -> Vec<(String, Blob)> {
    let dir = Path::new(model_path)
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let Ok(root) = dir.canonicalize() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for location in assay_tensor::onnx_external_locations(data)
        .into_iter()
        .take(4096)
    {
        let parts: Vec<&str> = location
            .split(['/', '\\'])
            .filter(|c| !c.is_empty() && *c != ".")
            .collect();
        if location.starts_with(['/', '\\', '~'])
            || location.as_bytes().get(1) == Some(&b':')
            || parts.contains(&"..")
            || parts.is_empty()
        {
            continue;
        }
        let mut here: PathBuf = dir.to_path_buf();
        let mut ok = true;
        for p in &parts {
            here.push(p);
            match std::fs::symlink_metadata(&here) {
                Ok(m) if !m.file_type().is_symlink() => {}
                _ => {
                    ok = false;
                    break;
                }
            }
        }
        let inside = here.canonicalize().is_ok_and(|c| c.starts_with(&root));
        if !ok || !inside || !here.is_file() {
            continue;
        }
        let Ok(f) = std::fs::File::open(&here) else {
            continue;
        };
        let Ok(len) = f.metadata().map(|m| m.len()) else {
            continue;
        };
        if let Ok(b) = map_file(&f, len) {
            out.push((location, b));
        }
    }
    out
}

fn describe(t: &Tensor) -> String {
    format!(
        "tensor {:?} ({} {:?}, bytes {}..{})",
        t.name,
        t.dtype.name(),
        t.shape,
        t.range.start,
        t.range.end
    )
}

/// Where a tensor's bytes are, for a finding: the member (for a zip storage or an ONNX
/// external file) and the offset of `rel` bytes into its data.
fn place(loc: &Loc, t: &Tensor, rel: u64) -> (Loc, Option<u64>) {
    let l = match &t.member {
        Some(m) => loc.child(m),
        None => loc.clone(),
    };
    (l, Some(t.range.start.saturating_add(rel)))
}

fn analyse_file(ctx: &mut FileScan, file: &TensorFile, loc: &Loc, depth: u32) {
    let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
    if !file.problems.is_empty() {
        // Weights that were not read were not analysed: the stages cannot say complete.
        ctx.tensor.incomplete = true;
    }
    for p in &file.problems {
        let at = match &p.member {
            Some(m) => loc.child(m),
            None => loc.clone(),
        };
        let what = match &p.tensor {
            Some(t) => format!("tensor {t:?}: {}", p.message),
            None => p.message.clone(),
        };
        if bump(&mut counts, code::TEN008) {
            ctx.add(
                code::TEN008,
                Severity::Medium,
                &at,
                None,
                format!("{what}; it was not analysed"),
                None,
            );
        }
    }

    // Budgets: tensors are taken in file order until the per-file limits are spent.
    let mut stat_sel: Vec<&Tensor> = Vec::new();
    let mut payload_sel: Vec<bool> = Vec::new();
    let (mut skipped, mut unsearched) = (0usize, 0usize);
    for t in &file.tensors {
        let len = t.bytes().len() as u64;
        if ctx.tensor_bytes.saturating_add(len) > ctx.limits.max_tensor_bytes_per_file {
            skipped += 1;
            continue;
        }
        ctx.tensor_bytes += len;
        let float = matches!(t.dtype, Dtype::F32 | Dtype::F16 | Dtype::BF16 | Dtype::F64);
        let search = float
            && ctx.payload_bytes.saturating_add(len)
                <= ctx.limits.max_payload_search_bytes_per_file;
        if float && !search {
            unsearched += 1;
        }
        if search {
            ctx.payload_bytes += len;
        }
        stat_sel.push(t);
        payload_sel.push(search);
    }
    if skipped > 0 || unsearched > 0 {
        ctx.tensor.incomplete = true;
        let mut parts = Vec::new();
        if skipped > 0 {
            parts.push(format!(
                "{skipped} tensor(s) past max_tensor_bytes_per_file ({} bytes) were not analysed",
                ctx.limits.max_tensor_bytes_per_file
            ));
        }
        if unsearched > 0 {
            parts.push(format!(
                "{unsearched} tensor(s) past max_payload_search_bytes_per_file ({} bytes) were not searched for payloads",
                ctx.limits.max_payload_search_bytes_per_file
            ));
        }
        ctx.add(
            code::TEN009,
            Severity::Low,
            loc,
            None,
            format!("tensor analysis stopped at a limit: {}", parts.join("; ")),
            None,
        );
    }

    let results: Vec<Analysis> = stat_sel
        .par_iter()
        .zip(payload_sel.par_iter())
        .map(|(t, &search)| {
            let stats = stats(t);
            let hits = if search {
                payload::search_tensor(t)
            } else {
                Vec::new()
            };
            let regions = match (&stats, search) {
                (Some(s), true) => payload::regions(t, s),
                _ => Vec::new(),
            };
            Analysis {
                stats,
                hits,
                regions,
            }
        })
        .collect();

    for (t, a) in stat_sel.iter().zip(&results) {
        report_tensor(ctx, loc, t, a, &mut counts);
    }
    outliers(ctx, loc, &stat_sel, &results, &mut counts);
    unclaimed(ctx, loc, file, depth);
    for (rule, n) in counts {
        if n > MAX_PER_RULE {
            ctx.add(
                rule,
                crate::rules::lookup(rule)
                    .map(|r| r.severity)
                    .unwrap_or(Severity::Info),
                loc,
                None,
                format!("{} more tensor(s) with the same finding", n - MAX_PER_RULE),
                None,
            );
        }
    }
}

/// Counts a finding of `rule`; false once the per-file cap is reached.
fn bump(counts: &mut BTreeMap<&'static str, usize>, rule: &'static str) -> bool {
    let n = counts.entry(rule).or_default();
    *n += 1;
    *n <= MAX_PER_RULE
}

fn report_tensor(
    ctx: &mut FileScan,
    loc: &Loc,
    t: &Tensor,
    a: &Analysis,
    counts: &mut BTreeMap<&'static str, usize>,
) {
    let size = t.dtype.size().unwrap_or(1) as u64;
    // Payloads: always reported, never capped into a summary.
    for h in &a.hits {
        let (at, off) = place(loc, t, h.bytes.start);
        let detail = if h.detail.is_empty() {
            String::new()
        } else {
            format!(" ({})", h.detail)
        };
        ctx.add(
            code::TEN004,
            Severity::High,
            &at,
            off,
            format!(
                "{}: {}{detail} hidden in the {}, from element {}",
                describe(t),
                h.kind,
                h.plane.describe(),
                h.element
            ),
            Some(format!("plane bytes {}", h.preview)),
        );
    }
    for r in &a.regions {
        let (at, off) = place(loc, t, r.elements.start * size);
        let bytes = format!(
            "bytes {}..{}",
            t.range.start + r.elements.start * size,
            t.range.start + r.elements.end * size
        );
        match r.kind {
            RegionKind::LowHalvesNotZero => ctx.add(
                code::TEN005,
                Severity::High,
                &at,
                off,
                format!(
                    "tensor {:?} ({} {:?}): {} value(s) in elements {}..{} ({bytes}) have non-zero low 16 bits, unlike the rest of this bf16-rounded tensor",
                    t.name,
                    t.dtype.name(),
                    t.shape,
                    r.count,
                    r.elements.start,
                    r.elements.end
                ),
                None,
            ),
            RegionKind::LowByteEntropy | RegionKind::LsbBias => {
                if bump(counts, code::TEN006) {
                    ctx.add(
                        code::TEN006,
                        Severity::Medium,
                        &at,
                        off,
                        format!(
                            "tensor {:?} ({} {:?}): elements {}..{} ({bytes}): {}",
                            t.name,
                            t.dtype.name(),
                            t.shape,
                            r.elements.start,
                            r.elements.end,
                            r.detail
                        ),
                        None,
                    );
                }
            }
        }
    }
    let Some(s) = &a.stats else { return };
    if s.nan + s.inf > 0 {
        let first = s.first_nonfinite.unwrap_or(0);
        let (at, off) = place(loc, t, first * size);
        if bump(counts, code::TEN001) {
            ctx.add(
                code::TEN001,
                Severity::High,
                &at,
                off,
                format!(
                    "{}: {} NaN and {} infinite value(s); first at element {first}",
                    describe(t),
                    s.nan,
                    s.inf
                ),
                None,
            );
        }
    }
    if s.subnormal > 0 {
        let share = s.subnormal as f64 / s.count.max(1) as f64;
        let severity = match t.dtype {
            Dtype::F16 if share >= 0.01 => Some(Severity::Info),
            Dtype::F16 => None,
            _ if share >= 0.01 && s.subnormal >= 16 => Some(Severity::Medium),
            _ => Some(Severity::Low),
        };
        if let Some(sev) = severity
            && bump(counts, code::TEN002)
        {
            let first = s.first_subnormal.unwrap_or(0);
            let (at, off) = place(loc, t, first * size);
            ctx.add(
                code::TEN002,
                sev,
                &at,
                off,
                format!(
                    "{}: {} subnormal value(s) ({:.2} %); first at element {first}",
                    describe(t),
                    s.subnormal,
                    share * 100.0
                ),
                None,
            );
        }
    }
    if s.count >= 2 && s.constant && s.nan + s.inf == 0 && bump(counts, code::TEN003) {
        let (at, off) = place(loc, t, 0);
        let (sev, what) = if s.zeros == s.count {
            (Severity::Info, "every element is zero".to_string())
        } else {
            (Severity::Low, format!("every element is {}", s.min))
        };
        ctx.add(
            code::TEN003,
            sev,
            &at,
            off,
            format!("{}: {what}", describe(t)),
            None,
        );
    }
    if s.count >= HEAVY_MIN && s.kurtosis > HEAVY_KURTOSIS && bump(counts, code::TEN011) {
        let (at, off) = place(loc, t, 0);
        ctx.add(
            code::TEN011,
            Severity::Info,
            &at,
            off,
            format!(
                "{}: kurtosis {:.1}, max |x| {:.3} vs std {:.4}",
                describe(t),
                s.kurtosis,
                s.min.abs().max(s.max.abs()),
                s.std
            ),
            None,
        );
    }
}

/// The role of a tensor: its name with layer numbers replaced (`layers.#.mlp.weight`).
fn role(name: &str) -> Option<String> {
    let mut numbered = false;
    let r: Vec<&str> = name
        .split('.')
        .map(|p| {
            if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) {
                numbered = true;
                "#"
            } else {
                p
            }
        })
        .collect();
    numbered.then(|| r.join("."))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Layers of the same role compared with median and MAD (backdoor stage, `medium`).
fn outliers(
    ctx: &mut FileScan,
    loc: &Loc,
    tensors: &[&Tensor],
    results: &[Analysis],
    counts: &mut BTreeMap<&'static str, usize>,
) {
    // (role, dtype, shape) → (index, stats) of its members
    type Role = (String, &'static str, Vec<u64>);
    let mut groups: BTreeMap<Role, Vec<(usize, &Stats)>> = BTreeMap::new();
    for (i, (t, a)) in tensors.iter().zip(results).enumerate() {
        let (Some(s), Some(r)) = (&a.stats, role(&t.name)) else {
            continue;
        };
        if s.count < 16 || s.nan + s.inf > 0 {
            continue;
        }
        groups
            .entry((r, t.dtype.name(), t.shape.clone()))
            .or_default()
            .push((i, s));
    }
    for ((role, _, _), members) in &groups {
        if members.len() < MIN_GROUP {
            continue;
        }
        type Metric = fn(&Stats) -> f64;
        let metrics: [(&str, Metric); 2] = [
            ("std", |s| s.std),
            ("max |x|", |s| s.min.abs().max(s.max.abs())),
        ];
        let mut reported = std::collections::HashSet::new();
        for (label, f) in metrics {
            let xs: Vec<f64> = members.iter().map(|(_, s)| f(s)).collect();
            let med = median(xs.clone());
            let mad = median(xs.iter().map(|x| (x - med).abs()).collect());
            if med <= 0.0 || mad <= 0.0 {
                continue;
            }
            for ((i, _), &x) in members.iter().zip(&xs) {
                let z = 0.6745 * (x - med) / mad;
                let ratio = x / med;
                let far = z.abs() >= OUTLIER_Z
                    && (ratio >= OUTLIER_RATIO || ratio <= 1.0 / OUTLIER_RATIO);
                if !far || !reported.insert(*i) || !bump(counts, code::TEN010) {
                    continue;
                }
                let t = tensors[*i];
                let (at, off) = place(loc, t, 0);
                ctx.add(
                    code::TEN010,
                    Severity::Medium,
                    &at,
                    off,
                    format!(
                        "{}: {label} {x:.4} vs {med:.4} median over {} layers of {role} (robust z {z:.1})",
                        describe(t),
                        members.len()
                    ),
                    None,
                );
            }
        }
    }
}

/// Bytes inside the weight area that no tensor uses: reported, searched, and scanned.
fn unclaimed(ctx: &mut FileScan, loc: &Loc, file: &TensorFile, depth: u32) {
    for u in &file.unclaimed {
        let bytes = u.data.as_slice();
        if bytes.is_empty() {
            continue;
        }
        let at = match &u.member {
            Some(m) => loc.child(m),
            None => loc.clone(),
        };
        let (sev, msg) = if u.trailing {
            (
                Severity::Medium,
                format!(
                    "{} (bytes {}..{}); torch.save never writes any",
                    u.what, u.range.start, u.range.end
                ),
            )
        } else {
            (
                Severity::Low,
                format!("{} (bytes {}..{})", u.what, u.range.start, u.range.end),
            )
        };
        ctx.add(
            code::TEN007,
            sev,
            &at,
            Some(u.range.start),
            msg,
            Some(format!("starts {}", crate::engine::hex_prefix(bytes))),
        );
        for h in payload::search_bytes(bytes) {
            let detail = if h.detail.is_empty() {
                String::new()
            } else {
                format!(" ({})", h.detail)
            };
            ctx.add(
                code::TEN004,
                Severity::High,
                &at,
                Some(u.range.start + h.bytes.start),
                format!(
                    "{}{detail} in bytes that no tensor uses ({})",
                    h.kind, u.what
                ),
                Some(format!("bytes {}", h.preview)),
            );
        }
        let child = at.child(&format!("@{}", u.range.start));
        if ctx.enter_member(&child) {
            ctx.scan_bytes(bytes, &child, depth + 1);
        }
    }
}
