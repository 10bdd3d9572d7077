//! The engine: parallel per-file scanning and content-based dispatch.

use crate::blob::{Blob, map_file};
use crate::limits::Limits;
use crate::rules::{self, code};
use crate::walk;
use assay_formats::pickle::PickleAnalysis;
use assay_formats::sniff::{Sniffed, sniff};
use assay_report::{FileEntry, FileStatus, Finding, Report, Severity, Stage, StageStatus};
use assay_tensor::MemberAnalysis;
use rayon::prelude::*;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Artifact features and recorded versions kept per file (a nested archive repeats them).
pub const MAX_FACTS_PER_FILE: usize = 256;

/// Progress callbacks for long scans (the CLI draws a bar from them).
pub trait Progress: Sync {
    fn start(&self, files: u64, bytes: u64);
    fn file_done(&self, path: &str, bytes: u64);
}

#[derive(Clone)]
pub struct ScanOptions<'p> {
    pub jobs: usize,
    pub fail_on: Severity,
    pub limits: Limits,
    pub progress: Option<&'p dyn Progress>,
    /// Compute each file's SHA-256 for the report (the JSON report needs it; at about
    /// 1.6 GB/s it is the largest cost of scanning a big checkpoint).
    pub hash_files: bool,
    /// Advisories for the vulnerability stage (`None`: the built-in set).
    pub advisories: Option<&'p assay_advisories::Database>,
    /// An advisory database whose newest record is older than this many days is
    /// reported as stale (CVE005).
    pub advisories_max_age_days: u32,
}

impl Default for ScanOptions<'_> {
    fn default() -> Self {
        ScanOptions {
            jobs: 0,
            fail_on: Severity::High,
            limits: Limits::default(),
            progress: None,
            hash_files: true,
            advisories: None,
            advisories_max_age_days: crate::vulnerability::DEFAULT_MAX_AGE_DAYS,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("cannot read {path}: {source}")]
    Unreadable {
        path: String,
        source: std::io::Error,
    },
    #[error("no input paths given")]
    NoInputs,
    #[error("cannot start worker threads: {0}")]
    Threads(String),
}

/// Scans files and folders and returns the whole report.
pub fn scan(paths: &[PathBuf], opts: &ScanOptions) -> Result<Report, ScanError> {
    if paths.is_empty() {
        return Err(ScanError::NoInputs);
    }
    for p in paths {
        std::fs::metadata(p).map_err(|source| ScanError::Unreadable {
            path: p.display().to_string(),
            source,
        })?;
    }
    let walked = walk::walk(paths).map_err(|source| ScanError::Unreadable {
        path: paths[0].display().to_string(),
        source,
    })?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.jobs)
        .build()
        .map_err(|e| ScanError::Threads(e.to_string()))?;
    if let Some(p) = opts.progress {
        let total: u64 = walked
            .inputs
            .iter()
            .filter_map(|i| std::fs::metadata(&i.read_from).ok())
            .map(|m| m.len())
            .sum();
        p.start(walked.inputs.len() as u64, total);
    }
    let results: Vec<Result<FileResult, ScanError>> = pool.install(|| {
        walked
            .inputs
            .par_iter()
            .map(|input| scan_file(input, opts))
            .collect()
    });
    let mut files = Vec::with_capacity(results.len());
    let mut findings = Vec::new();
    let mut facts = Vec::new();
    let mut tensor = TensorStage::default();
    for r in results {
        let (entry, f, k, t) = r?;
        files.push(entry);
        findings.extend(f);
        facts.extend(k);
        tensor.incomplete |= t.incomplete;
    }
    // Folders as Hugging Face repositories: auto_map code, chat templates (crate::repo).
    let (repo_findings, repo_facts) =
        pool.install(|| crate::repo::scan(paths, &walked.inputs, &mut files, &opts.limits));
    findings.extend(repo_findings);
    facts.extend(repo_facts);
    // Declared and recorded versions against the advisories (crate::vulnerability).
    let vulnerability = crate::vulnerability::run(paths, &facts, opts);
    findings.extend(vulnerability.findings);
    for l in walked.escaping_links {
        findings.push(Finding {
            rule: code::ARC002.into(),
            severity: Severity::High,
            stage: Stage::Malware,
            path: l.display,
            member: None,
            offset: None,
            message: "symbolic link points outside the scanned folder; it was not followed".into(),
            evidence: Some(format!("-> {}", l.target)),
            references: vec!["CWE-59".into()],
        });
    }
    let stages = stage_statuses(&files, vulnerability.complete, tensor);
    Ok(
        Report::new(crate::VERSION, opts.fail_on, files, findings, stages)
            .with_dependencies(vulnerability.dependencies),
    )
}

/// Stages this build implements run over every file; the rest are reported as not run,
/// so that a badge can never claim a complete scan that did not happen.
fn stage_statuses(
    files: &[FileEntry],
    vulnerability_complete: bool,
    tensor: TensorStage,
) -> BTreeMap<Stage, StageStatus> {
    let incomplete = files.iter().any(|f| f.status == FileStatus::Incomplete);
    let ran = if incomplete {
        StageStatus::Incomplete
    } else {
        StageStatus::Complete
    };
    // The tensor and backdoor stages run over every file that holds weights; a limit
    // or an unread weight format makes them incomplete.
    let tensor = if tensor.incomplete {
        StageStatus::Incomplete
    } else {
        StageStatus::Complete
    };
    Stage::ALL
        .iter()
        .map(|s| {
            let st = match s {
                Stage::Malware | Stage::Network | Stage::Integrity => ran,
                // Its inputs are manifests and what the per-file analysers recorded: an
                // unreadable manifest makes it incomplete, as does any incomplete file.
                Stage::Vulnerability if vulnerability_complete => ran,
                Stage::Vulnerability => StageStatus::Incomplete,
                Stage::Backdoor | Stage::Tensor => tensor,
            };
            (*s, st)
        })
        .collect()
}

/// One top-level file's entry, findings, recorded facts and tensor-stage outcome.
type FileResult = (FileEntry, Vec<Finding>, Vec<Fact>, TensorStage);

/// What the tensor stage did for one top-level file.
#[derive(Debug, Clone, Copy, Default)]
pub struct TensorStage {
    /// A limit cut the analysis short, or weights were in a format it does not read.
    pub incomplete: bool,
}

fn scan_file(input: &walk::Input, opts: &ScanOptions) -> Result<FileResult, ScanError> {
    let unreadable = |source| ScanError::Unreadable {
        path: input.display.clone(),
        source,
    };
    let file = std::fs::File::open(&input.read_from).map_err(unreadable)?;
    let len = file.metadata().map_err(unreadable)?.len();
    let blob = map_file(&file, len).map_err(unreadable)?;
    let data: &[u8] = &blob;
    // Hashing reads the file through the page cache rather than the mapping, so that
    // only the pages the parsers touch count towards resident memory.
    let (sha, (mut ctx, format)) = rayon::join(
        || {
            if opts.hash_files {
                sha256_file(&input.read_from)
            } else {
                Ok(String::new())
            }
        },
        || {
            let mut ctx = FileScan::new(input.display.clone(), &opts.limits);
            let format = ctx.scan_bytes(data, &Loc::top(), 0);
            (ctx, format)
        },
    );
    let sha = sha.map_err(unreadable)?;
    let status = if format == Format::Unknown {
        ctx.add(
            code::ARC001,
            Severity::Info,
            &Loc::top(),
            None,
            "not a model format Assay analyses; content not scanned".into(),
            None,
        );
        FileStatus::Unsupported
    } else if ctx.incomplete {
        FileStatus::Incomplete
    } else {
        FileStatus::Scanned
    };
    if let Some(p) = opts.progress {
        p.file_done(&input.display, len);
    }
    let entry = FileEntry {
        path: input.display.clone(),
        format: format.name().into(),
        size: len,
        sha256: sha,
        status,
    };
    let facts = ctx
        .facts
        .into_iter()
        .map(|(kind, member)| Fact {
            path: input.display.clone(),
            member,
            kind,
        })
        .collect();
    Ok((entry, ctx.findings, facts, ctx.tensor))
}

/// SHA-256 of a file, streamed in 1 MiB reads (SHA-NI where the CPU has it).
fn sha256_file(path: &std::path::Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// What a file or member turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Pickle,
    PytorchZip,
    PytorchLegacy,
    PytorchTar,
    TorchScript,
    Joblib,
    Dill,
    Cloudpickle,
    Npy,
    Npz,
    Safetensors,
    Gguf,
    Keras,
    KerasH5,
    Hdf5,
    Onnx,
    TensorFlow(assay_formats::savedmodel::TfKind),
    Zip,
    Tar,
    Compressed(assay_formats::compress::Compression),
    Executable,
    Script,
    Text,
    Json,
    Python,
    Unknown,
}

impl Format {
    pub fn name(self) -> &'static str {
        use assay_formats::compress::Compression as C;
        match self {
            Format::Pickle => "pickle",
            Format::PytorchZip => "pytorch-zip",
            Format::PytorchLegacy => "pytorch-legacy",
            Format::PytorchTar => "pytorch-tar",
            Format::TorchScript => "torchscript",
            Format::Joblib => "joblib",
            Format::Dill => "dill",
            Format::Cloudpickle => "cloudpickle",
            Format::Npy => "numpy-npy",
            Format::Npz => "numpy-npz",
            Format::Safetensors => "safetensors",
            Format::Gguf => "gguf",
            Format::Keras => "keras",
            Format::KerasH5 => "keras-h5",
            Format::Hdf5 => "hdf5",
            Format::Onnx => "onnx",
            Format::TensorFlow(k) => k.name(),
            Format::Zip => "zip",
            Format::Tar => "tar",
            Format::Compressed(C::Gzip) => "gzip",
            Format::Compressed(C::Zlib) => "zlib",
            Format::Compressed(C::Bzip2) => "bzip2",
            Format::Compressed(C::Xz) => "xz",
            Format::Compressed(C::Lzma) => "lzma",
            Format::Compressed(C::Lz4Frame) => "lz4",
            Format::Executable => "executable",
            Format::Script => "script",
            Format::Text => "text",
            Format::Json => "json",
            Format::Python => "python",
            Format::Unknown => "unknown",
        }
    }
}

/// Where inside a file a finding is: the member path, nested containers joined by `!/`.
#[derive(Debug, Clone, Default)]
pub struct Loc {
    pub member: Option<String>,
}

impl Loc {
    pub fn top() -> Loc {
        Loc { member: None }
    }
    pub fn child(&self, name: &str) -> Loc {
        Loc {
            member: Some(match &self.member {
                None => name.to_string(),
                Some(m) => format!("{m}!/{name}"),
            }),
        }
    }
}

/// What an analyser learnt about a file that the vulnerability stage needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FactKind {
    /// The file contains something that reaches a known vulnerable code path.
    Feature(assay_advisories::Feature),
    /// The file records the version of the library that wrote it.
    Version {
        /// PyPI name.
        package: &'static str,
        version: String,
        /// Where it was recorded, e.g. `metadata.json keras_version`.
        field: &'static str,
    },
}

/// A [`FactKind`] with the file (and member) it was found in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fact {
    pub path: String,
    pub member: Option<String>,
    pub kind: FactKind,
}

/// What the format analysers parsed of one file or member that a later stage (the tensor
/// view) or the caller (a container's analyser) reuses instead of parsing it again.
#[derive(Debug, Default)]
pub struct Parsed {
    /// The symbolic unpickler's analysis of these bytes, with `FileScan::limits.pickle`.
    pub pickle: Option<PickleAnalysis>,
    /// For a zip: the analysis of the PyTorch `data.pkl` member the tensor view reads.
    pub members: Vec<MemberAnalysis>,
}

impl Parsed {
    fn of_pickle(a: PickleAnalysis) -> Self {
        Parsed {
            pickle: Some(a),
            ..Parsed::default()
        }
    }
}

/// The state of scanning one top-level file.
pub struct FileScan<'l> {
    pub path: String,
    pub limits: &'l Limits,
    pub findings: Vec<Finding>,
    /// Some code-bearing part could not be analysed completely.
    pub incomplete: bool,
    pub members: u64,
    /// Decompressed bytes produced so far.
    pub expanded: u64,
    /// Artifact features and recorded versions, with the member they were found in.
    pub facts: Vec<(FactKind, Option<String>)>,
    /// Bytes of weights analysed so far by the tensor stage, and searched for payloads.
    pub tensor_bytes: u64,
    pub payload_bytes: u64,
    pub tensor: TensorStage,
}

impl<'l> FileScan<'l> {
    pub fn new(path: String, limits: &'l Limits) -> Self {
        FileScan {
            path,
            limits,
            findings: Vec::new(),
            incomplete: false,
            members: 0,
            expanded: 0,
            tensor_bytes: 0,
            payload_bytes: 0,
            tensor: TensorStage::default(),
            facts: Vec::new(),
        }
    }

    /// Records an artifact feature (once per member).
    pub fn feature(&mut self, f: assay_advisories::Feature, loc: &Loc) {
        let k = (FactKind::Feature(f), loc.member.clone());
        if self.facts.len() < MAX_FACTS_PER_FILE && !self.facts.contains(&k) {
            self.facts.push(k);
        }
    }

    /// Records the version of the library that wrote the file.
    pub fn recorded_version(
        &mut self,
        package: &'static str,
        version: &str,
        field: &'static str,
        loc: &Loc,
    ) {
        let version: String = version.trim().chars().take(64).collect();
        if version.is_empty() || self.facts.len() >= MAX_FACTS_PER_FILE {
            return;
        }
        let k = (
            FactKind::Version {
                package,
                version,
                field,
            },
            loc.member.clone(),
        );
        if !self.facts.contains(&k) {
            self.facts.push(k);
        }
    }

    pub fn add(
        &mut self,
        rule: &'static str,
        severity: Severity,
        loc: &Loc,
        offset: Option<u64>,
        message: String,
        evidence: Option<String>,
    ) {
        let references = rules::lookup(rule)
            .map(|r| {
                r.doc
                    .lines()
                    .filter_map(|l| l.strip_prefix("- "))
                    .filter(|l| {
                        l.starts_with("CWE-") || l.starts_with("CVE-") || l.starts_with("GHSA-")
                    })
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        self.findings.push(Finding {
            rule: rule.into(),
            severity,
            stage: rules::stage_of(rule),
            path: self.path.clone(),
            member: loc.member.clone(),
            offset,
            message,
            evidence,
            references,
        });
    }

    /// Counts a member against the per-file limit; false (with a finding) when exceeded.
    pub fn enter_member(&mut self, loc: &Loc) -> bool {
        self.members += 1;
        if self.members > self.limits.max_members_per_file {
            if self.members == self.limits.max_members_per_file + 1 {
                self.incomplete = true;
                self.add(
                    code::ARC003,
                    Severity::High,
                    loc,
                    None,
                    format!(
                        "more than {} members in one file; the rest were not scanned",
                        self.limits.max_members_per_file
                    ),
                    None,
                );
            }
            return false;
        }
        true
    }

    /// Sniffs `data` and runs the matching analyser. `depth` counts containers and
    /// nested payloads above this one.
    pub fn scan_bytes(&mut self, data: &[u8], loc: &Loc, depth: u32) -> Format {
        self.scan_parsed(data, loc, depth, None).0
    }

    /// [`FileScan::scan_bytes`] for a caller that may already have run the symbolic
    /// unpickler over `data` (with `self.limits.pickle`): the pickle stage then uses that
    /// analysis. Returns what the analysers parsed, so that no stage and no caller parses
    /// the same bytes again.
    pub fn scan_parsed(
        &mut self,
        data: &[u8],
        loc: &Loc,
        depth: u32,
        pickle: Option<PickleAnalysis>,
    ) -> (Format, Parsed) {
        if depth > self.limits.max_depth {
            self.incomplete = true;
            self.add(
                code::ARC003,
                Severity::High,
                loc,
                None,
                format!(
                    "nested deeper than {} containers or payloads; not scanned",
                    self.limits.max_depth
                ),
                None,
            );
            let parsed = Parsed {
                pickle,
                ..Parsed::default()
            };
            return (Format::Unknown, parsed);
        }
        let (format, parsed) = self.dispatch(data, loc, depth, pickle);
        crate::analyze::tensor::scan(self, data, loc, depth, format, &parsed);
        use assay_advisories::Feature;
        match format {
            Format::PytorchZip | Format::PytorchLegacy | Format::PytorchTar => {
                self.feature(Feature::TorchPickleCheckpoint, loc)
            }
            Format::TorchScript => self.feature(Feature::TorchScript, loc),
            Format::Pickle | Format::Joblib | Format::Dill | Format::Cloudpickle => {
                self.feature(Feature::Pickle, loc)
            }
            _ => {}
        }
        (format, parsed)
    }

    /// Runs the analyser for what `data` is; `pickle` is its analysis when the caller has
    /// it (used when `data` is sniffed as a pickle).
    fn dispatch(
        &mut self,
        data: &[u8],
        loc: &Loc,
        depth: u32,
        pickle: Option<PickleAnalysis>,
    ) -> (Format, Parsed) {
        let only = |format: Format| (format, Parsed::default());
        match sniff(data) {
            Sniffed::Executable(kind) => {
                self.add(
                    code::EXE001,
                    Severity::High,
                    loc,
                    Some(0),
                    format!("{} carried in a model artifact", kind.name()),
                    Some(format!(
                        "{} bytes starting {}",
                        data.len(),
                        hex_prefix(data)
                    )),
                );
                only(Format::Executable)
            }
            Sniffed::Script => {
                let first = data.split(|&b| b == b'\n').next().unwrap_or(&[]);
                self.add(
                    code::EXE002,
                    Severity::High,
                    loc,
                    Some(0),
                    "script with an interpreter line carried in a model artifact".into(),
                    Some(String::from_utf8_lossy(&first[..first.len().min(120)]).into_owned()),
                );
                only(Format::Script)
            }
            Sniffed::Zip => {
                let (format, data_pkl) = crate::analyze::zip::scan(self, data, loc, depth);
                let parsed = Parsed {
                    members: data_pkl.into_iter().collect(),
                    ..Parsed::default()
                };
                (format, parsed)
            }
            Sniffed::Tar => only(crate::analyze::tar::scan(self, data, loc, depth)),
            Sniffed::Compressed(c) => {
                only(crate::analyze::compressed::scan(self, c, data, loc, depth))
            }
            Sniffed::Npy => only(crate::analyze::npy::scan(self, data, loc, depth)),
            Sniffed::Safetensors => only(crate::analyze::safetensors::scan(self, data, loc, depth)),
            Sniffed::Gguf => only(crate::analyze::gguf::scan(self, data, loc, depth)),
            Sniffed::Hdf5 => only(crate::analyze::keras::scan_hdf5(self, data, loc, depth)),
            Sniffed::Onnx => only(crate::analyze::onnx::scan(self, data, loc, depth)),
            Sniffed::TensorFlow(k) => {
                only(crate::analyze::savedmodel::scan(self, k, data, loc, depth))
            }
            Sniffed::Pickle => {
                let (format, a) =
                    crate::analyze::pickle::scan_with(self, data, loc, depth, true, pickle);
                (format, Parsed::of_pickle(a))
            }
            Sniffed::MaybePickle => {
                let (format, a) =
                    crate::analyze::pickle::scan_with(self, data, loc, depth, false, pickle);
                let format = match format {
                    Format::Unknown => crate::analyze::text::scan(self, data, loc, depth),
                    f => f,
                };
                (format, Parsed::of_pickle(a))
            }
            Sniffed::Unknown => only(crate::analyze::text::scan(self, data, loc, depth)),
        }
    }

    /// Scans decompressed or extracted bytes held in a [`Blob`].
    pub fn scan_blob(&mut self, blob: &Blob, loc: &Loc, depth: u32) -> Format {
        self.scan_bytes(blob, loc, depth)
    }
}

pub fn hex_prefix(data: &[u8]) -> String {
    data.iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}
