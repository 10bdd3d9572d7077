//! `assay diff BASE CANDIDATE`: what changed between two models, tensor by tensor.
//!
//! Exit codes: 0 identical; 1 differences found (with `--fail-on localised`: only a
//! localised edit; never with `--fail-on never`); 2 usage error, unreadable input, or a
//! tensor that could not be read (the comparison would be incomplete).

use crate::cmd::weights::{Model, Siblings, load};
use anyhow::{Context, Result, bail};
use assay_tensor::diff::{DiffOptions, Indices, ModelDiff, Rank, Status, TensorDiff, Verdict};
use assay_tensor::{ReadLimits, Tensor, TensorFile};
use clap::{Args, ValueEnum};
use serde_json::{Value, json};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct DiffArgs {
    /// The model you trust: a weight file or a folder of them (any format Assay reads:
    /// safetensors, PyTorch zip/legacy, GGUF, ONNX, NumPy; recognised by content).
    pub base: PathBuf,
    /// The model to compare with it: a file or a folder.
    pub candidate: PathBuf,
    /// Report format.
    #[arg(long, value_enum, default_value_t = DiffFormat::Human)]
    pub format: DiffFormat,
    /// Write the report to FILE instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// What makes the command exit 1.
    #[arg(long, value_enum, default_value_t = DiffFailOn::Any)]
    pub fail_on: DiffFailOn,
    /// Human output lists the equal tensors too.
    #[arg(long)]
    pub all: bool,
    /// Tensor pairs compared in parallel (default: one per core).
    #[arg(long, short = 'j', value_name = "N")]
    pub jobs: Option<usize>,
    /// Memory for one tensor's rank sketch, in MiB; larger matrices get no rank.
    #[arg(long, value_name = "MIB", default_value_t = 512)]
    pub max_sketch_mib: u64,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiffFormat {
    Human,
    Json,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiffFailOn {
    /// Any difference (like diff(1) and `git diff --exit-code`).
    Any,
    /// Only a localised edit (rank-1 / few-row changes in a few tensors).
    Localised,
    /// Exit 0 whatever changed (errors still exit 2).
    Never,
}

/// One side: its weight files and their tensors.
struct Side<'m> {
    path: &'m Path,
    files: Vec<(&'m Path, TensorFile<'m>)>,
    /// Every tensor under every name (PyTorch aliases of one tensor object included).
    named: Vec<Tensor<'m>>,
    /// Weight files that could not be read at all.
    unreadable: Vec<String>,
}

fn read_side<'m>(path: &'m Path, model: &'m Model) -> Result<Side<'m>> {
    if model.weights.is_empty() {
        bail!(
            "{}: no weight file found (safetensors, PyTorch, GGUF, ONNX or NumPy, recognised by content)",
            path.display()
        );
    }
    let limits = ReadLimits::default();
    let mut files = Vec::new();
    let mut named = Vec::new();
    let mut unreadable = Vec::new();
    for &(i, f) in &model.weights {
        let m = &model.maps[i];
        let siblings = Siblings {
            dir: match m.path.parent() {
                Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
                _ => PathBuf::from("."),
            },
            maps: &model.maps,
        };
        match assay_tensor::read_as(f, m.bytes(), &limits, Some(&siblings)) {
            Ok(tf) => {
                named.extend(tf.named_tensors());
                files.push((m.path.as_path(), tf));
            }
            // The others are still compared; the comparison is incomplete (exit 2).
            Err(e) => unreadable.push(format!("{}: {e}", m.path.display())),
        }
    }
    if files.is_empty() {
        bail!(
            "{}: no weight file could be read: {}",
            path.display(),
            unreadable.join("; ")
        );
    }
    Ok(Side {
        path,
        files,
        named,
        unreadable,
    })
}

impl Side<'_> {
    fn tensors(&self) -> Vec<&Tensor<'_>> {
        self.named.iter().collect()
    }

    fn problems(&self) -> Vec<String> {
        let mut out = self.unreadable.clone();
        out.extend(self.files.iter().flat_map(|(p, f)| {
            f.problems.iter().map(move |pr| {
                format!(
                    "{}: {}{}",
                    p.display(),
                    pr.tensor
                        .as_deref()
                        .map(|t| format!("{t}: "))
                        .unwrap_or_default(),
                    pr.message
                )
            })
        }));
        out
    }

    fn json(&self) -> Value {
        json!({
            "path": self.path.display().to_string(),
            "files": self.files.iter().map(|(p, f)| json!({
                "path": p.display().to_string(),
                "format": f.format.name(),
                "tensors": f.tensors.len() + f.aliases.len(),
            })).collect::<Vec<_>>(),
        })
    }

    fn describe(&self) -> String {
        let n = self.named.len();
        let mut formats: Vec<&str> = self.files.iter().map(|(_, f)| f.format.name()).collect();
        formats.dedup();
        format!(
            "{} ({}, {} file{}, {n} tensors)",
            self.path.display(),
            formats.join("+"),
            self.files.len(),
            if self.files.len() == 1 { "" } else { "s" }
        )
    }
}

pub fn diff(a: DiffArgs) -> Result<ExitCode> {
    let base_model = load(&a.base)?;
    let cand_model = load(&a.candidate)?;
    let base = read_side(&a.base, &base_model)?;
    let cand = read_side(&a.candidate, &cand_model)?;
    let opts = DiffOptions {
        jobs: a.jobs.unwrap_or(0),
        max_sketch_bytes: a.max_sketch_mib.saturating_mul(1 << 20),
        ..DiffOptions::default()
    };
    let d = assay_tensor::diff::diff(&base.tensors(), &cand.tensors(), &opts);
    let mut problems = base.problems();
    problems.extend(cand.problems());
    for t in d.tensors.iter().filter(|t| !t.compared) {
        problems.push(format!(
            "{}: {}",
            t.name,
            t.note.as_deref().unwrap_or("not compared")
        ));
    }
    let mut sink: Box<dyn Write> = match &a.output {
        Some(path) => Box::new(io::BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot write {}", path.display()))?,
        )),
        None => Box::new(io::BufWriter::new(io::stdout().lock())),
    };
    match a.format {
        DiffFormat::Json => {
            let v = report_json(&d, &base, &cand, &problems);
            serde_json::to_writer_pretty(&mut sink, &v)?;
            writeln!(sink)?;
        }
        DiffFormat::Human => render_human(&d, &base, &cand, &problems, a.all, &mut sink)?,
    }
    sink.flush()?;
    if !problems.is_empty() {
        eprintln!(
            "assay: error: {} file(s) or tensor(s) could not be read or compared; the comparison is incomplete",
            problems.len()
        );
        return Ok(ExitCode::from(2));
    }
    let differs = match a.fail_on {
        DiffFailOn::Any => d.summary.verdict != Verdict::Identical,
        DiffFailOn::Localised => d.summary.verdict == Verdict::LocalisedEdit,
        DiffFailOn::Never => false,
    };
    Ok(if differs {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn indices_json(i: &Option<Indices>) -> (Value, Value) {
    match i {
        Some(i) => (json!(i.count), json!(i.indices)),
        None => (Value::Null, Value::Null),
    }
}

fn tensor_json(t: &TensorDiff) -> Value {
    let (rows, row_idx) = indices_json(&t.rows_changed);
    let (cols, col_idx) = indices_json(&t.cols_changed);
    let (rank, at_least, rank_note) = match &t.rank {
        Some(Rank::Estimated { rank, at_least }) => (json!(rank), json!(at_least), Value::Null),
        Some(Rank::NotEstimated(why)) => (Value::Null, Value::Null, json!(why)),
        None => (Value::Null, Value::Null, Value::Null),
    };
    let layout = |l: &Option<assay_tensor::diff::Layout>| {
        l.as_ref()
            .map(|l| json!({"dtype": l.dtype, "shape": l.shape}))
            .unwrap_or(Value::Null)
    };
    let mut v = json!({
        "name": t.name,
        "status": t.status.name(),
        "relative_change": t.relative_change,
        "rank": rank,
        "rows_changed": rows,
        "cols_changed": cols,
        "base": layout(&t.base),
        "candidate": layout(&t.candidate),
    });
    let o = v.as_object_mut().expect("object");
    let mut put = |k: &str, x: Value| {
        if !x.is_null() {
            o.insert(k.into(), x);
        }
    };
    put("rank_at_least", at_least);
    put("rank_note", rank_note);
    put("rows", row_idx);
    put("cols", col_idx);
    put("elements_changed", json!(t.elements_changed));
    put("delta_norm", json!(t.delta_norm));
    put("base_norm", json!(t.base_norm));
    if !t.spectrum.is_empty() {
        put("spectrum", json!(t.spectrum));
    }
    put("same_as", json!(t.same_as));
    put("note", json!(t.note));
    v
}

fn report_json(d: &ModelDiff, base: &Side, cand: &Side, problems: &[String]) -> Value {
    let s = &d.summary;
    json!({
        "tool": {"name": "assay", "version": env!("CARGO_PKG_VERSION")},
        "base": base.json(),
        "candidate": cand.json(),
        "tensors": d.tensors.iter().map(tensor_json).collect::<Vec<_>>(),
        "summary": {
            "verdict": s.verdict.name(),
            "description": s.verdict.describe(),
            "identical": s.verdict == Verdict::Identical,
            "tensors_base": s.tensors_base,
            "tensors_candidate": s.tensors_candidate,
            "equal": s.equal,
            "changed": s.changed,
            "added": s.added,
            "removed": s.removed,
            "reshaped": s.reshaped,
            "changed_low_rank": s.changed_low_rank,
            "changed_high_rank": s.changed_high_rank,
            "max_rank": s.max_rank,
            "changed_tensors": s.changed_names,
            "duplicate_names": s.duplicate_names,
            "problems": problems,
        }
    })
}

fn shape(l: &Option<assay_tensor::diff::Layout>) -> String {
    l.as_ref()
        .map(|l| {
            let dims: Vec<String> = l.shape.iter().map(u64::to_string).collect();
            format!("{} [{}]", l.dtype, dims.join(", "))
        })
        .unwrap_or_default()
}

fn counted(name: &str, i: &Option<Indices>, of: u64) -> String {
    match i {
        Some(Indices {
            count,
            indices: Some(ix),
        }) if *count < of => {
            let list: Vec<String> = ix.iter().map(u64::to_string).collect();
            format!("{name} {count}/{of} [{}]", list.join(","))
        }
        Some(i) => format!("{name} {}/{of}", i.count),
        None => String::new(),
    }
}

fn change_line(t: &TensorDiff) -> String {
    let l = t.base.as_ref();
    let m = l.and_then(|l| l.shape.first().copied()).unwrap_or(1);
    let numel: u64 = l.map(|l| l.shape.iter().product()).unwrap_or(1);
    let n = if l.is_some_and(|l| l.shape.len() >= 2) {
        numel / m.max(1)
    } else {
        1
    };
    let mut parts = vec![format!("{}  {}", t.name, shape(&t.base))];
    if t.status == Status::Reshaped {
        parts[0] = format!("{} → {}", parts[0], shape(&t.candidate));
    }
    if let Some(r) = t.relative_change {
        parts.push(format!("Δ {:.3}%", r * 100.0));
    }
    match &t.rank {
        Some(Rank::Estimated { rank, at_least }) => {
            parts.push(format!("rank {}{rank}", if *at_least { "≥" } else { "" }))
        }
        Some(Rank::NotEstimated(why)) => parts.push(format!("rank not estimated ({why})")),
        None => {}
    }
    let rows = counted("rows", &t.rows_changed, m.max(1));
    if !rows.is_empty() {
        parts.push(rows);
    }
    if n > 1 {
        let cols = counted("cols", &t.cols_changed, n);
        if !cols.is_empty() {
            parts.push(cols);
        }
    }
    if let Some(note) = &t.note
        && t.status != Status::Reshaped
    {
        parts.push(format!("({note})"));
    }
    parts.join("  ")
}

fn render_human(
    d: &ModelDiff,
    base: &Side,
    cand: &Side,
    problems: &[String],
    all: bool,
    w: &mut dyn Write,
) -> Result<()> {
    writeln!(w, "base:      {}", base.describe())?;
    writeln!(w, "candidate: {}", cand.describe())?;
    for (status, title, mark) in [
        (Status::Changed, "changed", "~"),
        (Status::Reshaped, "reshaped", "≠"),
        (Status::Added, "added", "+"),
        (Status::Removed, "removed", "-"),
    ] {
        let ts: Vec<&TensorDiff> = d.tensors.iter().filter(|t| t.status == status).collect();
        if ts.is_empty() {
            continue;
        }
        writeln!(w, "\n{title} ({}):", ts.len())?;
        for t in ts {
            let same = |side: &str| {
                t.same_as
                    .as_deref()
                    .map(|o| format!("  (same values as {o} in the {side})"))
                    .unwrap_or_default()
            };
            let line = match status {
                Status::Added => format!("{}  {}{}", t.name, shape(&t.candidate), same("base")),
                Status::Removed => {
                    format!("{}  {}{}", t.name, shape(&t.base), same("candidate"))
                }
                _ => change_line(t),
            };
            writeln!(w, "  {mark} {line}")?;
        }
    }
    let equal: Vec<&TensorDiff> = d
        .tensors
        .iter()
        .filter(|t| t.status == Status::Equal)
        .collect();
    if all && !equal.is_empty() {
        writeln!(w, "\nequal ({}):", equal.len())?;
        for t in &equal {
            writeln!(w, "  = {}  {}", t.name, shape(&t.base))?;
        }
    } else {
        writeln!(
            w,
            "\nequal: {} tensor{}",
            equal.len(),
            if equal.len() == 1 { "" } else { "s" }
        )?;
    }
    if !d.summary.duplicate_names.is_empty() {
        writeln!(
            w,
            "\nnote: {} name(s) appear in several files of one side; the first (safetensors first, then by path) was compared: {}",
            d.summary.duplicate_names.len(),
            d.summary
                .duplicate_names
                .iter()
                .take(5)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        )?;
    }
    for p in problems {
        writeln!(w, "\nerror: not compared: {p}")?;
    }
    let s = &d.summary;
    writeln!(
        w,
        "\n{} changed ({} low-rank, {} high-rank), {} added, {} removed, {} reshaped, {} equal",
        s.changed, s.changed_low_rank, s.changed_high_rank, s.added, s.removed, s.reshaped, s.equal
    )?;
    if problems.is_empty() {
        writeln!(w, "verdict: {}", s.verdict.describe())?;
    } else {
        writeln!(
            w,
            "verdict (incomplete: {} part(s) not compared, see above): {}",
            problems.len(),
            s.verdict.describe()
        )?;
    }
    Ok(())
}
