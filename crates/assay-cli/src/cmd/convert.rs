//! `assay convert IN OUT.safetensors`: a PyTorch checkpoint (zip or legacy), or a
//! safetensors / NumPy file, rewritten as safetensors without running Python.
//!
//! The input is scanned first by the same engine as `assay scan`, and refused (exit 1,
//! naming the findings) when [`refuses`] says so. Otherwise its tensors are read through
//! the tensor view (the symbolic unpickler's rebuild calls and the storages they point
//! at) and written byte for byte: dtype, shape and raw bytes unchanged, strided views
//! made contiguous, tensors that share a storage (tied weights) each written in full,
//! metadata `{"format": "pt"}`. The output is written to a temporary file beside it and
//! renamed into place, never over an existing file unless `--force`.
//!
//! Exit codes: 0 converted; 1 refused because of what the scan found; 2 usage error,
//! unreadable or unsupported input, a tensor that cannot be written exactly, or an
//! existing output without `--force`.

use crate::cmd::weights::Mapped;
use anyhow::{Context, Result, bail};
use assay_report::{Finding, Severity};
use assay_tensor::{ReadLimits, TensorFormat};
use clap::Args;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct ConvertArgs {
    /// The checkpoint: PyTorch zip or legacy `torch.save` (also safetensors, .npy, .npz).
    pub input: PathBuf,
    /// The safetensors file to write.
    pub output: PathBuf,
    /// Overwrite OUTPUT if it exists. (Nothing overrides a refusal: a checkpoint whose
    /// pickle calls something outside the allowlist is never converted.)
    #[arg(long)]
    pub force: bool,
    /// Print nothing on success.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

/// Rules that refuse a conversion below `high`: a pickle that instantiates a class
/// outside the allowlist (PKL003), out-of-band buffers the file does not hold (PKL013),
/// NumPy object arrays, i.e. pickles (NPY001), and PyTorch archives whose layout differs
/// from what `torch.load` reads plainly (TCH001).
pub const REFUSING_RULES: &[&str] = &["PKL003", "PKL013", "NPY001", "TCH001"];

/// The output may be at most this many times the input (tied weights and views written
/// in full make it larger, a stride-0 view of a huge shape would make it unbounded)...
pub const MAX_EXPANSION: u64 = 8;
/// ...plus this.
pub const EXPANSION_ALLOWANCE: u64 = 64 << 20;

/// The findings that refuse a conversion: every finding at `high` or `critical`
/// (callables outside the allowlist, malformed or truncated pickles, archive
/// inconsistencies, payloads...), and those of [`REFUSING_RULES`] at any severity.
pub fn refuses(f: &Finding) -> bool {
    f.severity >= Severity::High || REFUSING_RULES.contains(&f.rule.as_str())
}

pub fn convert(a: ConvertArgs) -> Result<ExitCode> {
    let meta =
        fs::metadata(&a.input).with_context(|| format!("cannot read {}", a.input.display()))?;
    if !meta.is_file() {
        bail!(
            "{} is not a file (convert takes one checkpoint)",
            a.input.display()
        );
    }
    if a.output.exists() && !a.force {
        bail!(
            "{} exists; pass --force to overwrite it",
            a.output.display()
        );
    }
    // 1. The same scan as `assay scan`.
    let opts = assay_scan::ScanOptions {
        hash_files: false,
        ..Default::default()
    };
    let report = assay_scan::scan(std::slice::from_ref(&a.input), &opts)?;
    let refusing: Vec<&Finding> = report.findings.iter().filter(|f| refuses(f)).collect();
    if !refusing.is_empty() {
        eprintln!(
            "assay: refused: {} was not converted: the scan found {} reason{} not to load it",
            a.input.display(),
            refusing.len(),
            if refusing.len() == 1 { "" } else { "s" }
        );
        for f in refusing.iter().take(20) {
            eprintln!(
                "  {} {} {}{}: {}{}",
                f.rule,
                f.severity.as_str(),
                f.path,
                f.member
                    .as_deref()
                    .map(|m| format!("!/{m}"))
                    .unwrap_or_default(),
                f.message,
                f.evidence
                    .as_deref()
                    .map(|e| format!(" [{e}]"))
                    .unwrap_or_default()
            );
        }
        if refusing.len() > 20 {
            eprintln!("  … and {} more (see `assay scan`)", refusing.len() - 20);
        }
        return Ok(ExitCode::from(1));
    }
    // 2. The tensors, as the view reads them.
    let map = Mapped::open(&a.input)?;
    let format = assay_tensor::detect(map.bytes());
    let format = match format {
        Some(
            f @ (TensorFormat::PytorchZip
            | TensorFormat::PytorchLegacy
            | TensorFormat::Safetensors
            | TensorFormat::Npy
            | TensorFormat::Npz
            | TensorFormat::Hdf5
            | TensorFormat::Keras),
        ) => f,
        Some(f) => bail!(
            "{} is {}; assay convert reads PyTorch checkpoints (zip or legacy), safetensors, NumPy and Keras/HDF5 files",
            a.input.display(),
            f.name()
        ),
        None => bail!(
            "{} is not a PyTorch checkpoint, safetensors, NumPy or Keras/HDF5 file",
            a.input.display()
        ),
    };
    let file = assay_tensor::read_as(format, map.bytes(), &ReadLimits::default(), None)
        .with_context(|| format!("cannot read the tensors of {}", a.input.display()))?;
    if !file.problems.is_empty() {
        let list: Vec<String> = file
            .problems
            .iter()
            .take(10)
            .map(|p| format!("{}: {}", p.tensor.as_deref().unwrap_or("-"), p.message))
            .collect();
        bail!(
            "{} tensor(s) of {} cannot be read exactly; nothing written:\n  {}",
            file.problems.len(),
            a.input.display(),
            list.join("\n  ")
        );
    }
    if file.tensors.is_empty() {
        bail!("{} holds no tensor; nothing written", a.input.display());
    }
    // Every name torch.load would give, aliases of one shared tensor object included.
    let tensors = file.named_tensors();
    let plan = assay_tensor::convert::plan(&tensors, &[("format", "pt")])
        .with_context(|| format!("cannot write {} as safetensors", a.input.display()))?;
    // A strided view can describe far more elements than its storage holds (stride 0):
    // writing it out would be a bomb.
    let input_len = map.bytes().len() as u64;
    let limit = input_len
        .saturating_mul(MAX_EXPANSION)
        .saturating_add(EXPANSION_ALLOWANCE);
    if plan.file_len() > limit {
        bail!(
            "{} would expand to {} bytes of safetensors, more than {MAX_EXPANSION}× its {input_len} bytes (+{} MiB): views that repeat their storage (stride 0) are not materialised; nothing written",
            a.input.display(),
            plan.file_len(),
            EXPANSION_ALLOWANCE >> 20
        );
    }
    // 3. Write beside the output, then move into place.
    let tmp = temp_path(&a.output);
    let written = (|| -> Result<u64> {
        let f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .with_context(|| format!("cannot create {}", tmp.display()))?;
        let mut w = BufWriter::with_capacity(1 << 20, f);
        let n = plan.write_to(&mut w)?;
        let f: File = w.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()?;
        place(&tmp, &a.output, a.force)?;
        Ok(n)
    })();
    let written = match written {
        Ok(n) => n,
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
    };
    if !a.quiet {
        let gathered = plan.entries.iter().filter(|e| e.gathered).count();
        let shared = shared_storage(&tensors);
        let unclaimed: u64 = file
            .unclaimed
            .iter()
            .map(|u| u.range.end - u.range.start)
            .sum();
        let mut out = io::stdout().lock();
        writeln!(
            out,
            "converted {} ({}, {} tensors) → {} (safetensors, {written} bytes)",
            a.input.display(),
            file.format.name(),
            tensors.len(),
            a.output.display()
        )?;
        if gathered > 0 {
            writeln!(out, "  {gathered} strided tensor(s) made contiguous")?;
        }
        if shared > 0 {
            writeln!(
                out,
                "  {shared} tensor(s) share storage with another (tied weights, views): each written in full"
            )?;
        }
        if unclaimed > 0 {
            writeln!(
                out,
                "  {unclaimed} byte(s) of storage that no tensor uses were left out"
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `.NAME.assay-PID.tmp` beside `out`.
fn temp_path(out: &Path) -> PathBuf {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    out.with_file_name(format!(".{name}.assay-{}.tmp", std::process::id()))
}

/// Moves the finished temporary file to `out`: over it with `force`, otherwise only if
/// `out` still does not exist (a hard link fails on an existing name, atomically).
fn place(tmp: &Path, out: &Path, force: bool) -> Result<()> {
    if force {
        fs::rename(tmp, out).with_context(|| format!("cannot write {}", out.display()))?;
        return Ok(());
    }
    match fs::hard_link(tmp, out) {
        Ok(()) => {
            fs::remove_file(tmp)?;
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            bail!("{} exists; pass --force to overwrite it", out.display())
        }
        // File systems without hard links.
        Err(_) => {
            if out.exists() {
                bail!("{} exists; pass --force to overwrite it", out.display());
            }
            fs::rename(tmp, out).with_context(|| format!("cannot write {}", out.display()))?;
            Ok(())
        }
    }
}

/// Tensors whose bytes overlap another tensor's (same storage).
fn shared_storage(tensors: &[assay_tensor::Tensor]) -> usize {
    let mut spans: Vec<(Option<&str>, u64, u64)> = tensors
        .iter()
        .filter(|t| t.range.end > t.range.start)
        .map(|t| (t.member.as_deref(), t.range.start, t.range.end))
        .collect();
    spans.sort();
    let mut shared = vec![false; spans.len()];
    let mut reach: Option<(Option<&str>, u64, usize)> = None;
    for (i, s) in spans.iter().enumerate() {
        if let Some((m, end, j)) = reach
            && m == s.0
            && s.1 < end
        {
            shared[i] = true;
            shared[j] = true;
        }
        match reach {
            Some((m, end, _)) if m == s.0 && end >= s.2 => {}
            _ => reach = Some((s.0, s.2, i)),
        }
    }
    shared.iter().filter(|&&s| s).count()
}
