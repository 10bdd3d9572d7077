//! Comparing two models tensor by tensor (`assay diff`).
//!
//! Tensors are matched by name across all the files of each side. For every pair the
//! values are streamed once, as `f32`, from the two memory maps side by side: the Frobenius
//! norms of `W` and `ΔW`, which rows and columns of `ΔW` (the tensor seen as a matrix
//! `(dim0, rest)`) are non-zero, and a randomised sketch `Y = ΔW·Ω` with a seeded Gaussian
//! `Ω` of `k ≤ 32` columns. The numerical rank of the change is the number of singular
//! values of `Y` above a relative threshold and above the rounding-noise floor of the
//! dtype: for a `ΔW` of rank `r < k` the sketch has rank `r` (with probability one), so
//! rank-1 edits, a handful of rows and merged LoRA adapters show their true rank, and a
//! full-rank change shows "at least k". Memory per tensor pair is the sketch
//! (`(rows + cols) × k` floats, bounded by [`DiffOptions::max_sketch_bytes`]), never `ΔW`
//! itself; strided tensors (PyTorch views) are copied to `f32` first, within
//! [`DiffOptions::max_materialise`] elements.
//!
//! The [`Summary`] classifies the change as a whole (see [`Verdict`]).

use crate::dtype::{Dtype, decode_f32};
use crate::view::Tensor;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Bounds and thresholds of a comparison.
#[derive(Debug, Clone)]
pub struct DiffOptions {
    /// Columns of the random sketch: ranks up to this are measured, larger ones are
    /// reported as "at least `sketch`".
    pub sketch: usize,
    /// Memory for one tensor's sketch (`(rows + cols) × sketch × 4` bytes); larger
    /// tensors get no rank ("not estimated").
    pub max_sketch_bytes: u64,
    /// Elements of a strided (non-contiguous) tensor copied to `f32` to compare it; larger
    /// ones are not compared.
    pub max_materialise: u64,
    /// Singular values below `rank_tolerance × σ₁` do not count towards the rank.
    pub rank_tolerance: f64,
    /// Changed row / column indices listed per tensor (counts are always given).
    pub max_indices: usize,
    /// Seed of the sketch's random matrix: the same inputs give the same ranks.
    pub seed: u64,
    /// Tensor pairs compared in parallel (0: one per core).
    pub jobs: usize,
    /// A change of rank at most this (and at most a quarter of the matrix's smaller
    /// side) is "low rank".
    pub low_rank: u32,
    /// At most this many changed tensors make a "localised" edit.
    pub few_tensors: usize,
    /// At most this many changed rows make a tensor's change localised whatever its rank.
    pub few_rows: u64,
}

impl Default for DiffOptions {
    fn default() -> Self {
        DiffOptions {
            sketch: 32,
            max_sketch_bytes: 512 << 20,
            max_materialise: 1 << 26,
            rank_tolerance: 1e-3,
            max_indices: 32,
            seed: 0x5eed_a55a_7d1f_f000,
            jobs: 0,
            low_rank: 16,
            few_tensors: 3,
            few_rows: 16,
        }
    }
}

/// What happened to one tensor name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Status {
    /// Same dtype, shape and bytes (every value identical, bit for bit).
    Equal,
    /// Same dtype and shape, different values.
    Changed,
    /// Only in the candidate.
    Added,
    /// Only in the base.
    Removed,
    /// Same name, different shape or dtype. When only the dtype differs the values are
    /// still compared (as `f32`).
    Reshaped,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Equal => "equal",
            Status::Changed => "changed",
            Status::Added => "added",
            Status::Removed => "removed",
            Status::Reshaped => "reshaped",
        }
    }
}

/// Changed rows or columns: how many, and which when there are few.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Indices {
    pub count: u64,
    /// The indices, ascending, when `count ≤ DiffOptions::max_indices`.
    pub indices: Option<Vec<u64>>,
}

/// The estimated rank of `ΔW`.
#[derive(Debug, Clone, PartialEq)]
pub enum Rank {
    Estimated {
        rank: u32,
        /// The sketch was saturated: the rank is at least `rank`.
        at_least: bool,
    },
    /// Why not (too large for the sketch limit, not a matrix, values not decodable).
    NotEstimated(String),
}

impl Rank {
    pub fn value(&self) -> Option<u32> {
        match self {
            Rank::Estimated { rank, .. } => Some(*rank),
            Rank::NotEstimated(_) => None,
        }
    }
}

/// Dtype and shape of one side of a tensor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub dtype: &'static str,
    pub shape: Vec<u64>,
}

/// The comparison of one tensor name.
#[derive(Debug, Clone)]
pub struct TensorDiff {
    pub name: String,
    pub status: Status,
    pub base: Option<Layout>,
    pub candidate: Option<Layout>,
    /// `‖ΔW‖_F / ‖W‖_F` (base norm), when the values were compared and `W ≠ 0`.
    pub relative_change: Option<f64>,
    pub base_norm: Option<f64>,
    pub delta_norm: Option<f64>,
    /// Elements whose value (bits) changed.
    pub elements_changed: Option<u64>,
    /// Of the tensor as a matrix `(dim0, rest)`; a vector is one column.
    pub rows_changed: Option<Indices>,
    pub cols_changed: Option<Indices>,
    /// For changed tensors of two or more dimensions.
    pub rank: Option<Rank>,
    /// The largest sketched singular values, relative to the first (for the curious).
    pub spectrum: Vec<f64>,
    /// Why something was not compared, or what else is worth knowing.
    pub note: Option<String>,
    /// False when the values could not be compared (see `note`): the status is then
    /// `changed` only because the bytes differ.
    pub compared: bool,
    /// For an added (removed) tensor: a tensor of the base (candidate) with the same
    /// dtype, shape and bytes — a rename, or a tied copy that was dropped.
    pub same_as: Option<String>,
}

impl TensorDiff {
    fn new(name: &str, status: Status, base: Option<&Tensor>, cand: Option<&Tensor>) -> Self {
        let layout = |t: &Tensor| Layout {
            dtype: t.dtype.name(),
            shape: t.shape.clone(),
        };
        TensorDiff {
            name: name.to_string(),
            status,
            base: base.map(layout),
            candidate: cand.map(layout),
            relative_change: None,
            base_norm: None,
            delta_norm: None,
            elements_changed: None,
            rows_changed: None,
            cols_changed: None,
            rank: None,
            spectrum: Vec::new(),
            note: None,
            compared: true,
            same_as: None,
        }
    }

    /// Values differ (a changed tensor, or a dtype-only reshape whose values moved).
    pub fn values_differ(&self) -> bool {
        match self.status {
            Status::Changed => true,
            Status::Reshaped => self.elements_changed.is_some_and(|n| n > 0),
            _ => false,
        }
    }

    /// Two or more dimensions.
    pub fn is_matrix(&self) -> bool {
        self.base.as_ref().is_some_and(|l| l.shape.len() >= 2)
    }
}

/// The whole change, in one word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// Every tensor equal; none added, removed or reshaped.
    Identical,
    /// Values are equal; tensors were only added, removed, renamed, reshaped or cast.
    StructuralChange,
    /// At most [`DiffOptions::few_tensors`] tensors changed, each at low rank or in at
    /// most [`DiffOptions::few_rows`] rows: how knowledge edits (ROME/MEMIT) and
    /// backdoors are planted.
    LocalisedEdit,
    /// More tensors changed, every one a matrix changed at low rank: a merged low-rank
    /// adapter (LoRA) — or a multi-layer knowledge edit (MEMIT).
    LowRankAdapter,
    /// At least half of the tensors changed, most changed matrices at high rank.
    FullFineTune,
    /// Changes at high rank, but in fewer than half of the tensors (or mostly low-rank
    /// in a majority of them).
    PartialFineTune,
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Identical => "identical",
            Verdict::StructuralChange => "structural_change",
            Verdict::LocalisedEdit => "localised_edit",
            Verdict::LowRankAdapter => "low_rank_adapter",
            Verdict::FullFineTune => "full_fine_tune",
            Verdict::PartialFineTune => "partial_fine_tune",
        }
    }

    /// Words for a person.
    pub fn describe(self) -> &'static str {
        match self {
            Verdict::Identical => "identical: every tensor is bit-for-bit equal",
            Verdict::StructuralChange => {
                "structural change: tensors added, removed, renamed, reshaped or cast; no value of a common tensor changed"
            }
            Verdict::LocalisedEdit => {
                "localised edit: a few tensors changed at low rank or in a few rows — the way knowledge edits (ROME/MEMIT) and backdoors are planted; review it"
            }
            Verdict::LowRankAdapter => {
                "merged low-rank adapter: many matrices changed, each at low rank (LoRA merged into the weights, or a multi-layer MEMIT edit)"
            }
            Verdict::FullFineTune => "full fine-tune: most tensors changed, matrices at high rank",
            Verdict::PartialFineTune => "partial fine-tune: some tensors changed at high rank",
        }
    }
}

/// Counts and the verdict.
#[derive(Debug, Clone)]
pub struct Summary {
    pub verdict: Verdict,
    pub tensors_base: usize,
    pub tensors_candidate: usize,
    pub equal: usize,
    pub changed: usize,
    pub added: usize,
    pub removed: usize,
    pub reshaped: usize,
    /// Changed tensors whose change is low rank or in few rows.
    pub changed_low_rank: usize,
    /// Changed tensors at high (or unknown) rank.
    pub changed_high_rank: usize,
    /// Highest estimated rank among changed tensors.
    pub max_rank: Option<u32>,
    /// Names changed (values differ), sorted.
    pub changed_names: Vec<String>,
    /// Names that appeared more than once on one side; the first occurrence was used.
    pub duplicate_names: Vec<String>,
    /// Tensors whose bytes differ but whose values could not be compared (left out of
    /// the verdict; the comparison is incomplete).
    pub not_compared: Vec<String>,
}

/// A model comparison.
#[derive(Debug, Clone)]
pub struct ModelDiff {
    /// Sorted by name.
    pub tensors: Vec<TensorDiff>,
    pub summary: Summary,
}

impl ModelDiff {
    pub fn is_identical(&self) -> bool {
        self.summary.verdict == Verdict::Identical
    }
}

/// Compares two models given as all their tensors. Names are matched exactly; when one
/// side has a name twice, the first occurrence counts (and the name is listed in
/// [`Summary::duplicate_names`]).
pub fn diff(base: &[&Tensor], candidate: &[&Tensor], opts: &DiffOptions) -> ModelDiff {
    let mut dups = Vec::new();
    fn index<'s>(ts: &[&'s Tensor], dups: &mut Vec<String>) -> BTreeMap<&'s str, usize> {
        let mut m: BTreeMap<&'s str, usize> = BTreeMap::new();
        for (i, t) in ts.iter().enumerate() {
            if m.contains_key(t.name.as_str()) {
                dups.push(t.name.clone());
            } else {
                m.insert(t.name.as_str(), i);
            }
        }
        m
    }
    let b = index(base, &mut dups);
    let c = index(candidate, &mut dups);
    dups.sort();
    dups.dedup();
    let mut names: Vec<&str> = b.keys().chain(c.keys()).copied().collect();
    names.sort_unstable();
    names.dedup();
    let pairs: Vec<(&str, Option<&Tensor>, Option<&Tensor>)> = names
        .iter()
        .map(|n| {
            (
                *n,
                b.get(n).map(|&i| base[i]),
                c.get(n).map(|&i| candidate[i]),
            )
        })
        .collect();
    let results: Vec<Mutex<Option<TensorDiff>>> = pairs.iter().map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let jobs = match opts.jobs {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
    .min(pairs.len().max(1));
    // Largest tensors first, so that one big pair does not finish last alone.
    let mut order: Vec<usize> = (0..pairs.len()).collect();
    order.sort_by_key(|&i| {
        std::cmp::Reverse(pairs[i].1.map_or(0, |t| t.numel()) + pairs[i].2.map_or(0, |t| t.numel()))
    });
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| {
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&i) = order.get(k) else { break };
                    let (name, bt, ct) = pairs[i];
                    let d = compare(name, bt, ct, opts);
                    if let Ok(mut slot) = results[i].lock() {
                        *slot = Some(d);
                    }
                }
            });
        }
    });
    let mut tensors: Vec<TensorDiff> = results
        .into_iter()
        .filter_map(|m| m.into_inner().ok().flatten())
        .collect();
    // A removed tensor whose values are in the candidate under another name (a rename,
    // or a tied copy that a converter dropped), and the same for added ones.
    for t in &mut tensors {
        let (me, others) = match t.status {
            Status::Removed => (b.get(t.name.as_str()).map(|&i| base[i]), candidate),
            Status::Added => (c.get(t.name.as_str()).map(|&i| candidate[i]), base),
            _ => continue,
        };
        if let Some(me) = me {
            t.same_as = same_values(me, others);
        }
    }
    let summary = summarise(&tensors, b.len(), c.len(), dups, opts);
    ModelDiff { tensors, summary }
}

/// Candidates compared per added or removed tensor.
const MAX_SAME_AS_CANDIDATES: usize = 16;

/// The first tensor of `others` with `t`'s dtype, shape and bytes (contiguous only).
fn same_values(t: &Tensor, others: &[&Tensor]) -> Option<String> {
    let mine = t.contiguous_bytes()?;
    if mine.is_empty() {
        return None;
    }
    others
        .iter()
        .filter(|o| {
            o.name != t.name && o.dtype == t.dtype && o.endian == t.endian && o.shape == t.shape
        })
        .take(MAX_SAME_AS_CANDIDATES)
        .find(|o| o.contiguous_bytes() == Some(mine))
        .map(|o| o.name.clone())
}

/// Compares one name.
pub fn compare(
    name: &str,
    base: Option<&Tensor>,
    cand: Option<&Tensor>,
    opts: &DiffOptions,
) -> TensorDiff {
    let mut d = compare_inner(name, base, cand, opts);
    if d.status == Status::Equal {
        // Nothing changed: say so in numbers, for scripts.
        d.relative_change = Some(0.0);
        d.elements_changed = Some(0);
        let none = Some(Indices {
            count: 0,
            indices: Some(Vec::new()),
        });
        d.rows_changed = none.clone();
        d.cols_changed = none;
    }
    d
}

fn compare_inner(
    name: &str,
    base: Option<&Tensor>,
    cand: Option<&Tensor>,
    opts: &DiffOptions,
) -> TensorDiff {
    let (b, c) = match (base, cand) {
        (Some(b), Some(c)) => (b, c),
        (None, c) => return TensorDiff::new(name, Status::Added, None, c),
        (b, None) => return TensorDiff::new(name, Status::Removed, b, None),
    };
    if b.shape != c.shape {
        let mut d = TensorDiff::new(name, Status::Reshaped, Some(b), Some(c));
        d.note = Some(format!("shape {:?} → {:?}", b.shape, c.shape));
        return d;
    }
    let same_dtype = b.dtype == c.dtype;
    let same_encoding = same_dtype && b.endian == c.endian;
    if b.numel() == 0 {
        // Nothing to compare (and a shape like [2^40, 0] must not size any map).
        let status = if same_dtype {
            Status::Equal
        } else {
            Status::Reshaped
        };
        let mut d = TensorDiff::new(name, status, Some(b), Some(c));
        if !same_dtype {
            d.note = Some(format!("dtype {} → {}", b.dtype.name(), c.dtype.name()));
        }
        return d;
    }
    // Fast path: identical bytes of identical layout.
    if same_encoding
        && let (Some(x), Some(y)) = (b.contiguous_bytes(), c.contiguous_bytes())
        && x == y
    {
        return TensorDiff::new(name, Status::Equal, Some(b), Some(c));
    }
    // Same view of the same bytes (strided tensors).
    if same_encoding && b.strides == c.strides && b.bytes() == c.bytes() {
        return TensorDiff::new(name, Status::Equal, Some(b), Some(c));
    }
    let status = if same_dtype {
        Status::Changed
    } else {
        Status::Reshaped
    };
    let mut d = TensorDiff::new(name, status, Some(b), Some(c));
    if !same_dtype {
        d.note = Some(format!("dtype {} → {}", b.dtype.name(), c.dtype.name()));
    }
    if !b.dtype.is_numeric() || !c.dtype.is_numeric() {
        // Quantised, packed, complex: compare the bytes only.
        let equal = same_encoding && b.bytes() == c.bytes() && b.strides == c.strides;
        if equal {
            d.status = Status::Equal;
            return d;
        }
        d.rank = Some(Rank::NotEstimated(format!(
            "{} values are not decoded; compared as bytes",
            if b.dtype.is_numeric() {
                c.dtype
            } else {
                b.dtype
            }
            .name()
        )));
        return d;
    }
    match numeric(b, c, opts) {
        Ok(n) => {
            if n.elements_changed == 0 {
                let bytes_differ = same_encoding
                    && matches!(
                        (b.contiguous_bytes(), c.contiguous_bytes()),
                        (Some(x), Some(y)) if x != y
                    );
                if bytes_differ {
                    // Values are compared as f32: an f64 or i64 change below f32
                    // resolution, or a signed zero, still changed the bytes.
                    d.note = Some(
                        "bytes differ, but not as f32 values (a change below f32 resolution, a signed zero or a NaN payload)"
                            .into(),
                    );
                    return d;
                }
                if same_dtype {
                    // Same values in another layout (strides) or byte order.
                    d.status = Status::Equal;
                    if b.endian != c.endian {
                        d.note = Some("byte order differs; values equal".into());
                    }
                }
                d.elements_changed = Some(0);
                return d;
            }
            d.elements_changed = Some(n.elements_changed);
            d.base_norm = Some(n.base_sq.sqrt());
            d.delta_norm = Some(n.delta_sq.sqrt());
            d.relative_change = (n.base_sq > 0.0).then(|| (n.delta_sq / n.base_sq).sqrt());
            d.rows_changed = Some(indices(&n.rows, opts.max_indices));
            d.cols_changed = Some(indices(&n.cols, opts.max_indices));
            if n.nonfinite > 0 {
                d.note = Some(format!(
                    "{} changed elements are NaN or infinite on one side (left out of the norms and the rank)",
                    n.nonfinite
                ));
            }
            if b.shape.len() >= 2 {
                d.rank = Some(match &n.sketch {
                    Some(s) => {
                        let (rank, at_least, spectrum) = s.rank(&n, b.dtype, c.dtype, opts);
                        d.spectrum = spectrum;
                        Rank::Estimated { rank, at_least }
                    }
                    None => Rank::NotEstimated(n.no_sketch.clone().unwrap_or_default()),
                });
            }
        }
        Err(why) => {
            d.compared = false;
            d.note = Some(why.clone());
            d.rank = Some(Rank::NotEstimated(why));
        }
    }
    d
}

fn indices(flags: &[bool], max: usize) -> Indices {
    let count = flags.iter().filter(|&&f| f).count() as u64;
    let indices = (count as usize <= max).then(|| {
        flags
            .iter()
            .enumerate()
            .filter(|(_, f)| **f)
            .map(|(i, _)| i as u64)
            .collect()
    });
    Indices { count, indices }
}

/// Elements decoded per step.
const BATCH: usize = 4096;

/// A tensor's values in row-major order, a batch at a time.
enum Values<'t> {
    Bytes {
        bytes: &'t [u8],
        dtype: Dtype,
        endian: crate::dtype::Endian,
        size: usize,
        at: usize,
    },
    Owned(Vec<f32>, usize),
}

impl<'t> Values<'t> {
    fn of(t: &'t Tensor, max_materialise: u64) -> Result<Self, String> {
        if let Some(bytes) = t.contiguous_bytes() {
            let size = t.dtype.size().ok_or("no element size")?;
            return Ok(Values::Bytes {
                bytes,
                dtype: t.dtype,
                endian: t.endian,
                size,
                at: 0,
            });
        }
        if t.numel() > max_materialise {
            return Err(format!(
                "not compared: strided tensor of {} elements exceeds the copy limit of {max_materialise}",
                t.numel()
            ));
        }
        let v = t.to_f32_vec(max_materialise).map_err(|e| e.to_string())?;
        Ok(Values::Owned(v, 0))
    }

    /// Fills `out` with up to its length of the next values; returns how many.
    fn next(&mut self, out: &mut [f32]) -> usize {
        match self {
            Values::Bytes {
                bytes,
                dtype,
                endian,
                size,
                at,
            } => {
                let end = (*at + out.len() * *size).min(bytes.len());
                let n = decode_f32(*dtype, *endian, &bytes[*at..end], out);
                *at += n * *size;
                n
            }
            Values::Owned(v, at) => {
                let n = out.len().min(v.len() - *at);
                out[..n].copy_from_slice(&v[*at..*at + n]);
                *at += n;
                n
            }
        }
    }
}

/// What one streaming pass learns.
struct Numeric {
    base_sq: f64,
    cand_sq: f64,
    delta_sq: f64,
    elements_changed: u64,
    nonfinite: u64,
    rows: Vec<bool>,
    cols: Vec<bool>,
    numel: u64,
    sketch: Option<Sketch>,
    no_sketch: Option<String>,
}

/// `Y = ΔW·Ω`: `Ω` is `cols × k` standard normal, `Y` is `rows × k`.
struct Sketch {
    k: usize,
    omega: Vec<f32>,
    y: Vec<f32>,
}

fn numeric(b: &Tensor, c: &Tensor, opts: &DiffOptions) -> Result<Numeric, String> {
    let numel = b.numel();
    // As a matrix (dim0, rest); a scalar is 1×1, a vector one column.
    let (m, n) = match b.shape.len() {
        0 => (1u64, 1u64),
        1 => (b.shape[0], 1),
        _ => (b.shape[0], numel / b.shape[0].max(1)),
    };
    let (mu, nu) = (
        usize::try_from(m).map_err(|_| "too many rows")?,
        usize::try_from(n).map_err(|_| "too many columns")?,
    );
    let mut va = Values::of(b, opts.max_materialise)?;
    let mut vb = Values::of(c, opts.max_materialise)?;
    let mut no_sketch = None;
    let sketch = if b.shape.len() >= 2 && numel > 0 {
        let k = opts.sketch.min(mu).min(nu).max(1);
        let bytes = (m + n).saturating_mul(k as u64).saturating_mul(4);
        if bytes > opts.max_sketch_bytes {
            no_sketch = Some(format!(
                "not estimated: the sketch of a {m}×{n} matrix needs {bytes} bytes, over the limit of {}",
                opts.max_sketch_bytes
            ));
            None
        } else {
            Some(Sketch::new(mu, nu, k, opts.seed))
        }
    } else {
        None
    };
    let mut out = Numeric {
        base_sq: 0.0,
        cand_sq: 0.0,
        delta_sq: 0.0,
        elements_changed: 0,
        nonfinite: 0,
        rows: vec![false; mu],
        cols: vec![false; nu],
        numel,
        sketch,
        no_sketch,
    };
    let mut xa = vec![0f32; BATCH];
    let mut xb = vec![0f32; BATCH];
    let (mut i, mut j) = (0usize, 0usize);
    let mut seen = 0u64;
    while seen < numel {
        let na = va.next(&mut xa);
        let nb = vb.next(&mut xb[..na.max(1)]);
        if na == 0 || nb != na {
            return Err("not compared: the values end early".into());
        }
        seen += na as u64;
        let (mut bs, mut cs, mut ds) = (0f64, 0f64, 0f64);
        for (&x, &y) in xa[..na].iter().zip(&xb[..na]) {
            bs += f64::from(x) * f64::from(x);
            cs += f64::from(y) * f64::from(y);
            if x.to_bits() != y.to_bits() && !(x.is_nan() && y.is_nan()) {
                let d = f64::from(y) - f64::from(x);
                if d.is_finite() {
                    if d != 0.0 {
                        out.elements_changed += 1;
                        out.rows[i] = true;
                        out.cols[j] = true;
                        ds += d * d;
                        if let Some(s) = &mut out.sketch {
                            s.add(i, j, d as f32);
                        }
                    }
                } else {
                    out.elements_changed += 1;
                    out.nonfinite += 1;
                    out.rows[i] = true;
                    out.cols[j] = true;
                }
            }
            j += 1;
            if j == nu {
                j = 0;
                i += 1;
            }
        }
        out.base_sq += bs;
        out.cand_sq += cs;
        out.delta_sq += ds;
    }
    Ok(out)
}

/// splitmix64: small, seedable, good enough for a sketch.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in (0, 1].
    fn unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 1.0) / (1u64 << 53) as f64
    }
    /// Two standard normals (Box–Muller).
    fn normals(&mut self) -> (f64, f64) {
        let (u, v) = (self.unit(), self.unit());
        let r = (-2.0 * u.ln()).sqrt();
        let t = std::f64::consts::TAU * v;
        (r * t.cos(), r * t.sin())
    }
}

impl Sketch {
    fn new(rows: usize, cols: usize, k: usize, seed: u64) -> Self {
        let mut rng = Rng(seed ^ (cols as u64).wrapping_mul(0x2545_f491_4f6c_dd1d));
        let mut omega = Vec::with_capacity(cols * k);
        while omega.len() < cols * k {
            let (a, b) = rng.normals();
            omega.push(a as f32);
            if omega.len() < cols * k {
                omega.push(b as f32);
            }
        }
        Sketch {
            k,
            omega,
            y: vec![0f32; rows * k],
        }
    }

    #[inline]
    fn add(&mut self, i: usize, j: usize, d: f32) {
        let k = self.k;
        let (Some(y), Some(o)) = (
            self.y.get_mut(i * k..i * k + k),
            self.omega.get(j * k..j * k + k),
        ) else {
            return;
        };
        for (y, o) in y.iter_mut().zip(o) {
            *y += d * o;
        }
    }

    /// Numerical rank of `Y`: singular values above `tolerance × σ₁` and above the noise
    /// that rounding the candidate to its dtype leaves in `ΔW`.
    fn rank(&self, n: &Numeric, bd: Dtype, cd: Dtype, opts: &DiffOptions) -> (u32, bool, Vec<f64>) {
        let k = self.k;
        let mut g = vec![0f64; k * k];
        for (row, y) in self.y.chunks_exact(k).enumerate() {
            if !n.rows[row] {
                continue;
            }
            for a in 0..k {
                let ya = f64::from(y[a]);
                if ya == 0.0 {
                    continue;
                }
                for b in a..k {
                    g[a * k + b] += ya * f64::from(y[b]);
                }
            }
        }
        for a in 0..k {
            for b in 0..a {
                g[a * k + b] = g[b * k + a];
            }
        }
        let mut sv: Vec<f64> = jacobi_eigenvalues(&mut g, k)
            .into_iter()
            .map(|l| l.max(0.0).sqrt())
            .collect();
        sv.sort_by(|a, b| b.total_cmp(a));
        let s1 = sv.first().copied().unwrap_or(0.0);
        if s1 <= 0.0 {
            return (0, false, Vec::new());
        }
        // Rounding noise: changed elements carry an error of about u·|w| (u the unit
        // roundoff of the coarser dtype); in Y that is a random m×k matrix of entries
        // σ_e·√n, whose largest singular value is about σ_e·√n·(√m + √k).
        let u = unit_roundoff(bd).max(unit_roundoff(cd));
        let numel = n.numel.max(1) as f64;
        let rms = (n.cand_sq.max(n.base_sq) / numel).sqrt();
        let frac = n.elements_changed as f64 / numel;
        let sigma_e = 0.6 * u * rms * frac.sqrt();
        let (m, cols) = (n.rows.len() as f64, n.cols.len() as f64);
        let noise = 3.0 * sigma_e * cols.sqrt() * (m.sqrt() + (k as f64).sqrt());
        let threshold = (opts.rank_tolerance * s1).max(noise);
        let rank = sv.iter().filter(|&&s| s > threshold).count();
        let full = k >= n.rows.len().min(n.cols.len());
        let spectrum = sv.iter().take(8).map(|s| s / s1).collect();
        (rank as u32, rank == k && !full, spectrum)
    }
}

/// Unit roundoff of a dtype's values (0 for integers: exact).
fn unit_roundoff(d: Dtype) -> f64 {
    match d {
        Dtype::F64 => 2f64.powi(-53),
        Dtype::F32 => 2f64.powi(-24),
        Dtype::F16 => 2f64.powi(-11),
        Dtype::BF16 => 2f64.powi(-8),
        Dtype::F8E4M3 | Dtype::F8E4M3Fnuz => 2f64.powi(-4),
        Dtype::F8E5M2 | Dtype::F8E5M2Fnuz => 2f64.powi(-3),
        Dtype::F8E8M0 => 0.5,
        _ => 0.0,
    }
}

/// Eigenvalues of the symmetric `k × k` matrix `a` (row-major; destroyed) by cyclic
/// Jacobi rotations.
fn jacobi_eigenvalues(a: &mut [f64], k: usize) -> Vec<f64> {
    for _sweep in 0..64 {
        let mut off = 0.0;
        let mut diag = 0.0;
        for p in 0..k {
            diag += a[p * k + p] * a[p * k + p];
            for q in p + 1..k {
                off += a[p * k + q] * a[p * k + q];
            }
        }
        if off <= 1e-30 * diag || off == 0.0 {
            break;
        }
        for p in 0..k {
            for q in p + 1..k {
                let apq = a[p * k + q];
                if apq == 0.0 {
                    continue;
                }
                let (app, aqq) = (a[p * k + p], a[q * k + q]);
                let theta = (aqq - app) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for r in 0..k {
                    let (arp, arq) = (a[r * k + p], a[r * k + q]);
                    a[r * k + p] = c * arp - s * arq;
                    a[r * k + q] = s * arp + c * arq;
                }
                for r in 0..k {
                    let (apr, aqr) = (a[p * k + r], a[q * k + r]);
                    a[p * k + r] = c * apr - s * aqr;
                    a[q * k + r] = s * apr + c * aqr;
                }
            }
        }
    }
    (0..k).map(|i| a[i * k + i]).collect()
}

/// Low rank for the classification: known, not saturated, at most `low_rank` and at
/// most a quarter of the smaller side (a 4×4 matrix changed at rank 4 is not "low").
fn is_low_rank(d: &TensorDiff, opts: &DiffOptions) -> bool {
    let Some(Rank::Estimated { rank, at_least }) = d.rank else {
        return false;
    };
    let side = d
        .base
        .as_ref()
        .map(|l| {
            let m = l.shape.first().copied().unwrap_or(1);
            let n = crate::view::numel(&l.shape).unwrap_or(0) / m.max(1);
            m.min(n)
        })
        .unwrap_or(0);
    !at_least && rank <= opts.low_rank && u64::from(rank) * 4 <= side.max(4)
}

/// Few rows changed: at most `few_rows`, and at most a quarter of the rows.
fn few_rows(d: &TensorDiff, opts: &DiffOptions) -> bool {
    let rows = d
        .base
        .as_ref()
        .map_or(0, |l| l.shape.first().copied().unwrap_or(1));
    d.rows_changed
        .as_ref()
        .is_some_and(|r| r.count <= opts.few_rows && r.count * 4 <= rows.max(4))
}

fn summarise(
    tensors: &[TensorDiff],
    nb: usize,
    nc: usize,
    duplicate_names: Vec<String>,
    opts: &DiffOptions,
) -> Summary {
    let count = |s: Status| tensors.iter().filter(|t| t.status == s).count();
    // The changes that the verdict weighs: values of same-layout tensors.
    let changed: Vec<&TensorDiff> = tensors
        .iter()
        .filter(|t| t.status == Status::Changed && t.compared)
        .collect();
    let low: Vec<bool> = changed
        .iter()
        .map(|t| is_low_rank(t, opts) || few_rows(t, opts))
        .collect();
    let n_low = low.iter().filter(|&&l| l).count();
    let all_low = n_low == changed.len();
    let all_low_matrices = all_low && changed.iter().all(|t| t.is_matrix());
    let common = tensors
        .iter()
        .filter(|t| t.base.is_some() && t.candidate.is_some())
        .count();
    let (equal, added, removed, reshaped) = (
        count(Status::Equal),
        count(Status::Added),
        count(Status::Removed),
        count(Status::Reshaped),
    );
    let structural = added + removed + reshaped > 0;
    let verdict = if changed.is_empty() {
        if structural {
            Verdict::StructuralChange
        } else {
            Verdict::Identical
        }
    } else if changed.len() <= opts.few_tensors && all_low {
        Verdict::LocalisedEdit
    } else if changed.len() >= 2 && all_low_matrices {
        Verdict::LowRankAdapter
    } else if changed.len() * 2 >= common.max(1) && n_low * 2 < changed.len() {
        Verdict::FullFineTune
    } else {
        Verdict::PartialFineTune
    };
    Summary {
        verdict,
        tensors_base: nb,
        tensors_candidate: nc,
        equal,
        changed: changed.len(),
        added,
        removed,
        reshaped,
        changed_low_rank: n_low,
        changed_high_rank: changed.len() - n_low,
        max_rank: changed
            .iter()
            .filter_map(|t| t.rank.as_ref()?.value())
            .max(),
        changed_names: changed.iter().map(|t| t.name.clone()).collect(),
        duplicate_names,
        not_compared: tensors
            .iter()
            .filter(|t| !t.compared)
            .map(|t| t.name.clone())
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dtype::Endian;
    use crate::view::{Bytes, contiguous_strides};

    fn tensor<'a>(name: &str, shape: &[u64], bytes: &'a [u8]) -> Tensor<'a> {
        Tensor {
            name: name.into(),
            dtype: Dtype::F32,
            endian: Endian::Little,
            shape: shape.to_vec(),
            strides: contiguous_strides(shape).unwrap(),
            data: Bytes::Borrowed(bytes),
            range: 0..bytes.len() as u64,
            member: None,
        }
    }

    fn bytes(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    fn random(n: usize, seed: u64) -> Vec<f32> {
        let mut r = Rng(seed);
        (0..n).map(|_| r.normals().0 as f32).collect()
    }

    /// W + Σ u_i v_iᵀ for `rank` random pairs.
    fn plus_rank(w: &[f32], m: usize, n: usize, rank: usize, seed: u64) -> Vec<f32> {
        let mut out = w.to_vec();
        for r in 0..rank {
            let u = random(m, seed + 2 * r as u64);
            let v = random(n, seed + 2 * r as u64 + 1);
            for i in 0..m {
                for j in 0..n {
                    out[i * n + j] += 0.01 * u[i] * v[j];
                }
            }
        }
        out
    }

    #[test]
    fn ranks_of_known_changes() {
        let (m, n) = (96, 80);
        let w = random(m * n, 1);
        let wb = bytes(&w);
        for rank in [1usize, 3, 7, 20] {
            let c = bytes(&plus_rank(&w, m, n, rank, 100));
            let d = compare(
                "w",
                Some(&tensor("w", &[m as u64, n as u64], &wb)),
                Some(&tensor("w", &[m as u64, n as u64], &c)),
                &DiffOptions::default(),
            );
            assert_eq!(d.status, Status::Changed);
            assert_eq!(
                d.rank,
                Some(Rank::Estimated {
                    rank: rank as u32,
                    at_least: false
                }),
                "rank {rank}: {:?}",
                d.spectrum
            );
            assert_eq!(d.rows_changed.as_ref().unwrap().count, m as u64);
        }
        // Full rank saturates the sketch.
        let c = bytes(&random(m * n, 9));
        let d = compare(
            "w",
            Some(&tensor("w", &[m as u64, n as u64], &wb)),
            Some(&tensor("w", &[m as u64, n as u64], &c)),
            &DiffOptions::default(),
        );
        assert_eq!(
            d.rank,
            Some(Rank::Estimated {
                rank: 32,
                at_least: true
            })
        );
    }

    fn to_bf16(x: f32) -> u16 {
        let b = x.to_bits();
        ((b + 0x7fff + ((b >> 16) & 1)) >> 16) as u16
    }

    /// A rank-2 change merged into bf16 weights: rounding touches every changed element,
    /// but the noise floor keeps the rank at 2.
    #[test]
    fn bf16_merge_keeps_its_rank_above_rounding_noise() {
        let (m, n) = (128, 96);
        let w: Vec<f32> = random(m * n, 11)
            .iter()
            .map(|x| crate::dtype::bf16_to_f32(to_bf16(x * 0.02)))
            .collect();
        let c = plus_rank(&w, m, n, 2, 50);
        let enc =
            |v: &[f32]| -> Vec<u8> { v.iter().flat_map(|&x| to_bf16(x).to_le_bytes()).collect() };
        let (wb, cb) = (enc(&w), enc(&c));
        let mut tb = tensor("w", &[m as u64, n as u64], &wb);
        let mut tc = tensor("w", &[m as u64, n as u64], &cb);
        tb.dtype = Dtype::BF16;
        tc.dtype = Dtype::BF16;
        let d = compare("w", Some(&tb), Some(&tc), &DiffOptions::default());
        assert_eq!(d.status, Status::Changed);
        assert_eq!(d.rank.and_then(|r| r.value()), Some(2), "{:?}", d.spectrum);
    }

    /// The same values in the other byte order are equal; a float64 change too small
    /// for f32 is still a change.
    #[test]
    fn byte_order_and_sub_f32_changes() {
        let v = [1.0f64, 2.5, -3.0];
        let le: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        let be: Vec<u8> = v.iter().flat_map(|x| x.to_be_bytes()).collect();
        let mut a = tensor("x", &[3], &le);
        a.dtype = Dtype::F64;
        let mut b = tensor("x", &[3], &be);
        b.dtype = Dtype::F64;
        b.endian = Endian::Big;
        let d = compare("x", Some(&a), Some(&b), &DiffOptions::default());
        assert_eq!(d.status, Status::Equal);
        let tiny: Vec<u8> = [1.0f64 + 1e-12, 2.5, -3.0]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        let mut c = tensor("x", &[3], &tiny);
        c.dtype = Dtype::F64;
        let d = compare("x", Some(&a), Some(&c), &DiffOptions::default());
        assert_eq!(d.status, Status::Changed);
    }

    #[test]
    fn rows_and_columns() {
        let (m, n) = (50, 8);
        let w = random(m * n, 3);
        let mut c = w.clone();
        // Rows 4 and 17 change alike, row 30 differently: rank 2.
        for (r, a, b) in [(4usize, 1.0, -0.5), (17, 2.0, -1.0), (30, 2.0, 3.0)] {
            c[r * n + 2] += a;
            c[r * n + 5] += b;
        }
        let (wb, cb) = (bytes(&w), bytes(&c));
        let d = compare(
            "e",
            Some(&tensor("e", &[m as u64, n as u64], &wb)),
            Some(&tensor("e", &[m as u64, n as u64], &cb)),
            &DiffOptions::default(),
        );
        assert_eq!(d.rows_changed.unwrap().indices, Some(vec![4, 17, 30]));
        assert_eq!(d.cols_changed.unwrap().indices, Some(vec![2, 5]));
        assert_eq!(d.elements_changed, Some(6));
        assert_eq!(d.rank.unwrap().value(), Some(2));
    }

    #[test]
    fn statuses_and_verdicts() {
        let w = bytes(&random(64, 5));
        let w2 = bytes(&random(64, 6));
        let a = tensor("a", &[8, 8], &w);
        let same = diff(&[&a], &[&a], &DiffOptions::default());
        assert_eq!(same.summary.verdict, Verdict::Identical);
        let b = tensor("b", &[64], &w);
        let b2 = tensor("b", &[8, 8], &w);
        let s = diff(&[&a, &b], &[&a, &b2], &DiffOptions::default());
        assert_eq!(s.tensors[1].status, Status::Reshaped);
        assert_eq!(s.summary.verdict, Verdict::StructuralChange);
        let c = tensor("c", &[8, 8], &w);
        let a2 = tensor("a", &[8, 8], &w2);
        let s = diff(&[&a, &b], &[&a2, &c], &DiffOptions::default());
        let st: Vec<_> = s
            .tensors
            .iter()
            .map(|t| (t.name.as_str(), t.status))
            .collect();
        assert_eq!(
            st,
            vec![
                ("a", Status::Changed),
                ("b", Status::Removed),
                ("c", Status::Added)
            ]
        );
        // An 8×8 matrix changed at full rank: the only matrix, changed at high rank.
        assert_eq!(s.summary.verdict, Verdict::FullFineTune);
    }

    #[test]
    fn jacobi_matches_known_spectrum() {
        let mut a = vec![4.0, 1.0, 0.0, 1.0, 3.0, 0.0, 0.0, 0.0, 2.0];
        let mut e = jacobi_eigenvalues(&mut a, 3);
        e.sort_by(|a, b| b.total_cmp(a));
        let s5 = 5f64.sqrt();
        for (g, w) in e.iter().zip([3.5 + s5 / 2.0, 3.5 - s5 / 2.0, 2.0]) {
            assert!((g - w).abs() < 1e-12, "{e:?}");
        }
    }
}
