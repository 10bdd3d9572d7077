//! The repository pass: after every file has been scanned on its own, each scanned folder
//! is looked at as a Hugging Face model repository (or a Hugging Face cache snapshot,
//! whose files are symbolic links into the cache's `blobs/`).
//!
//! - `auto_map` and `custom_pipelines` entries in `config.json`, `tokenizer_config.json`,
//!   `processor_config.json`, `preprocessor_config.json` and the other configs name the
//!   Python modules `trust_remote_code=True` imports. Each must be in the repository
//!   (else the loader would fetch unscanned code), inside it, and not in another
//!   repository (`org/repo--module.Class`).
//! - Every `.py` file is parsed and analysed (`analyze::python`); files that
//!   `trust_remote_code` runs (named by `auto_map`, or imported relatively by such a
//!   file, as transformers' `get_relative_import_files` does) are reported as such.
//! - Chat templates (`chat_template` in the tokenizer/processor configs,
//!   `chat_template.json`, `chat_template.jinja`, `additional_chat_templates/*.jinja`)
//!   get the same sandbox-escape checks as GGUF templates.
//!
//! Configs are read the way Python's `json` reads them (`analyze::text::parse_json`).

use crate::analyze::python::{self, PythonAnalysis, Refusal, Role};
use crate::analyze::text::{self, Json};
use crate::engine::{Fact, FactKind, FileScan, Loc};
use crate::limits::Limits;
use crate::rules::code;
use crate::walk::Input;
use assay_report::{FileEntry, FileStatus, Finding, Severity};
use rayon::prelude::*;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

/// Largest config or template file read (real ones are kilobytes; `tokenizer_config.json`
/// with many added tokens reaches a few MiB).
pub const MAX_CONFIG_BYTES: u64 = 16 << 20;
/// Files of interest (Python, configs, templates) collected per scan.
pub const MAX_REPO_FILES: usize = 100_000;
/// `auto_map`/`custom_pipelines` references followed per config.
pub const MAX_REFERENCES_PER_CONFIG: usize = 1_000;

/// Directories that are tool state, not model content (as in the walker).
const SKIPPED_DIRS: &[&str] = &[".git", ".hg", ".svn"];

/// Configs whose `auto_map` the transformers Auto classes read.
const CODE_CONFIGS: &[&str] = &[
    "config.json",
    "tokenizer_config.json",
    "processor_config.json",
    "preprocessor_config.json",
    "video_preprocessor_config.json",
    "image_processor_config.json",
    "feature_extractor_config.json",
];
/// Files that carry a `chat_template`.
const TEMPLATE_CONFIGS: &[&str] = &[
    "tokenizer_config.json",
    "processor_config.json",
    "chat_template.json",
];

/// A file the repository pass looks at.
#[derive(Debug, Clone)]
struct RepoFile {
    /// The path shown in the report (the link's path for cache snapshots).
    display: String,
    /// Where the bytes are.
    read_from: PathBuf,
    /// The display path of the folder holding it.
    dir: String,
    name: String,
    /// Found under a folder given on the command line (not named by itself).
    in_folder: bool,
}

/// Runs the repository checks over the scanned paths. `files` is the per-file result, in
/// the order of `inputs`; statuses and formats are corrected where this pass learns more.
pub fn scan(
    paths: &[PathBuf],
    inputs: &[Input],
    files: &mut [FileEntry],
    limits: &Limits,
) -> (Vec<Finding>, Vec<Fact>) {
    let (repo_files, overflow) = collect(paths);
    let mut facts = Vec::new();
    let by_display: HashMap<&str, usize> = repo_files
        .iter()
        .enumerate()
        .map(|(i, f)| (f.display.as_str(), i))
        .collect();
    let mut findings = Vec::new();
    if overflow {
        let mut ctx = FileScan::new(display(&paths[0]), limits);
        ctx.add(
            code::ARC003,
            Severity::High,
            &Loc::top(),
            None,
            format!(
                "more than {MAX_REPO_FILES} Python, config and template files; the rest were not checked as a repository"
            ),
            None,
        );
        findings.extend(ctx.findings);
    }

    // auto_map and custom_pipelines: which Python files trust_remote_code runs.
    let mut remote: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    for f in repo_files
        .iter()
        .filter(|f| CODE_CONFIGS.contains(&f.name.as_str()))
    {
        let mut ctx = FileScan::new(f.display.clone(), limits);
        if let Some(json) = read_config(&mut ctx, f) {
            // The transformers version that saved the model (the vulnerability stage's
            // hint when no requirement names transformers).
            if f.name == "config.json"
                && let Some(v) = json.get("transformers_version").and_then(Json::as_str)
            {
                facts.push(Fact {
                    path: f.display.clone(),
                    member: None,
                    kind: FactKind::Version {
                        package: "transformers",
                        version: v.chars().take(64).collect(),
                        field: "config.json transformers_version",
                    },
                });
            }
            for r in references(&json, &f.name) {
                resolve(&mut ctx, f, &r, &by_display, &mut remote);
            }
        }
        findings.extend(ctx.findings);
    }

    // Chat templates.
    for f in &repo_files {
        let mut ctx = FileScan::new(f.display.clone(), limits);
        if TEMPLATE_CONFIGS.contains(&f.name.as_str()) {
            if let Some(json) = read_config(&mut ctx, f) {
                templates(&mut ctx, &json);
            }
        } else if f.name.ends_with(".jinja")
            && let Some(src) = read_text(&mut ctx, f)
        {
            let name = f.name.trim_end_matches(".jinja").to_string();
            crate::analyze::template::check_template(&mut ctx, &Loc::top(), &name, &src);
        }
        findings.extend(ctx.findings);
    }

    // Python: analyse every file, then follow relative imports from the referenced ones.
    let python: Vec<usize> = (0..repo_files.len())
        .filter(|&i| repo_files[i].name.ends_with(".py"))
        .collect();
    type Analysed = (
        usize,
        Option<PySource>,
        Option<Result<PythonAnalysis, Refusal>>,
    );
    let sources: Vec<Analysed> = python
        .par_iter()
        .map(|&i| {
            let src = read_python(&repo_files[i]);
            let result = src
                .as_ref()
                .filter(|s| !s.truncated)
                .map(|s| python::analyse(&s.text));
            (i, src, result)
        })
        .collect();
    let imports: HashMap<usize, &[String]> = sources
        .iter()
        .filter_map(|(i, _, r)| match r {
            Some(Ok(a)) => Some((*i, a.relative_imports.as_slice())),
            _ => None,
        })
        .collect();
    let mut queue: Vec<usize> = remote.keys().copied().collect();
    let mut seen: HashSet<usize> = queue.iter().copied().collect();
    while let Some(i) = queue.pop() {
        let via = remote
            .get(&i)
            .and_then(|v| v.first())
            .cloned()
            .unwrap_or_default();
        for m in imports.get(&i).copied().unwrap_or_default() {
            let f = &repo_files[i];
            for cand in [
                join(&f.dir, &format!("{}.py", m.replace('.', "/"))),
                join(&f.dir, &format!("{m}.py")),
            ] {
                if let Some(&j) = by_display.get(cand.as_str()) {
                    remote
                        .entry(j)
                        .or_insert_with(|| vec![format!("imported by {} for {via}", f.name)]);
                    if seen.insert(j) {
                        queue.push(j);
                    }
                }
            }
        }
    }

    drop(imports);
    // A file reached under several names (a link inside the repository, cache revisions
    // sharing a blob) is reported once, preferably under a name auto_map uses.
    let mut by_blob: HashMap<PathBuf, usize> = HashMap::new();
    let mut duplicate: HashSet<usize> = HashSet::new();
    for &i in &python {
        let Ok(t) = repo_files[i].read_from.canonicalize() else {
            continue;
        };
        let Some(&first) = by_blob.get(&t) else {
            by_blob.insert(t, i);
            continue;
        };
        let (keep, dup) = if remote.contains_key(&i) && !remote.contains_key(&first) {
            (i, first)
        } else {
            (first, i)
        };
        if let Some(v) = remote.remove(&dup) {
            remote.entry(keep).or_default().extend(v);
        }
        by_blob.insert(t, keep);
        duplicate.insert(dup);
    }
    let reports: Vec<(usize, Vec<Finding>, bool)> = sources
        .into_par_iter()
        .filter(|(i, _, _)| !duplicate.contains(i))
        .map(|(i, src, result)| {
            let f = &repo_files[i];
            let mut ctx = FileScan::new(f.display.clone(), limits);
            let role = match remote.get(&i) {
                Some(via) => Role::RemoteCode {
                    via: via.join("; "),
                },
                None => Role::Shipped,
            };
            match src {
                None => {
                    ctx.incomplete = true;
                    ctx.add(
                        code::HFR020,
                        Severity::High,
                        &Loc::top(),
                        None,
                        "Python source could not be read".into(),
                        None,
                    );
                }
                Some(s) => {
                    if !s.utf8 {
                        ctx.incomplete = true;
                        ctx.add(
                            code::HFR020,
                            if matches!(role, Role::RemoteCode { .. }) {
                                Severity::High
                            } else {
                                Severity::Medium
                            },
                            &Loc::top(),
                            None,
                            "Python source is not UTF-8 text (a coding declaration or binary content); it was analysed byte by byte and may hide code".into(),
                            None,
                        );
                    }
                    if s.truncated {
                        ctx.incomplete = true;
                        ctx.add(
                            code::HFR020,
                            Severity::High,
                            &Loc::top(),
                            None,
                            format!(
                                "Python source larger than {} bytes was not analysed",
                                python::MAX_PYTHON_SOURCE
                            ),
                            None,
                        );
                    } else if let Some(result) = result {
                        python::report(&mut ctx, &Loc::top(), &s.text, result, !s.utf8, &role);
                    }
                }
            }
            (i, ctx.findings, ctx.incomplete)
        })
        .collect();

    // Correct the per-file entries: Python files reached through cache links were
    // scanned under their blob names, and a Python file that could not be analysed is
    // incomplete.
    let mut entry_of: HashMap<String, usize> = files
        .iter()
        .enumerate()
        .map(|(i, e)| (e.path.clone(), i))
        .collect();
    let mut by_target: Option<HashMap<PathBuf, usize>> = None;
    for (i, fs, incomplete) in reports {
        let f = &repo_files[i];
        let idx = entry_of.get(&f.display).copied().or_else(|| {
            let map = by_target.get_or_insert_with(|| {
                inputs
                    .iter()
                    .enumerate()
                    .filter_map(|(k, inp)| Some((inp.read_from.canonicalize().ok()?, k)))
                    .collect()
            });
            f.read_from
                .canonicalize()
                .ok()
                .and_then(|t| map.get(&t).copied())
        });
        if let Some(entry) = idx.and_then(|k| files.get_mut(k)) {
            // A `#!` script keeps its label; text and blobs become Python.
            if matches!(entry.format.as_str(), "text" | "unknown") {
                entry.format = "python".into();
            }
            if incomplete && entry.status == FileStatus::Scanned {
                entry.status = FileStatus::Incomplete;
            }
            entry_of.insert(f.display.clone(), idx.unwrap_or(0));
        }
        findings.extend(fs);
    }
    (findings, facts)
}

/// Python source as the loader would read it.
struct PySource {
    text: String,
    utf8: bool,
    truncated: bool,
}

fn read_python(f: &RepoFile) -> Option<PySource> {
    use std::io::Read;
    let file = std::fs::File::open(&f.read_from).ok()?;
    let mut bytes = Vec::new();
    file.take(python::MAX_PYTHON_SOURCE as u64 + 1)
        .read_to_end(&mut bytes)
        .ok()?;
    let truncated = bytes.len() > python::MAX_PYTHON_SOURCE;
    // A UTF-8 byte-order mark is allowed by Python and skipped by the parser.
    match String::from_utf8(bytes) {
        Ok(text) if !text.contains('\0') => Some(PySource {
            text,
            utf8: true,
            truncated,
        }),
        Ok(text) => Some(PySource {
            text: text.replace('\0', " "),
            utf8: false,
            truncated,
        }),
        Err(e) => {
            let bytes = e.into_bytes();
            // Truncation may have cut a character; that alone is not a non-UTF-8 file.
            let utf8 =
                truncated && std::str::from_utf8(&bytes).is_err_and(|e| e.error_len().is_none());
            Some(PySource {
                text: bytes
                    .iter()
                    .map(|&b| if b == 0 { ' ' } else { b as char })
                    .collect(),
                utf8,
                truncated,
            })
        }
    }
}

fn read_text(ctx: &mut FileScan, f: &RepoFile) -> Option<String> {
    use std::io::Read;
    let file = std::fs::File::open(&f.read_from).ok()?;
    let mut bytes = Vec::new();
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut bytes)
        .ok()?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        ctx.add(
            code::HFR023,
            Severity::Medium,
            &Loc::top(),
            None,
            format!("larger than {MAX_CONFIG_BYTES} bytes; its remote-code entries and chat templates were not checked"),
            None,
        );
        return None;
    }
    match String::from_utf8(bytes) {
        Ok(t) => Some(t),
        Err(_) => {
            ctx.add(
                code::HFR023,
                Severity::Medium,
                &Loc::top(),
                None,
                "not UTF-8 text; transformers cannot read it, and its remote-code entries and chat templates were not checked".into(),
                None,
            );
            None
        }
    }
}

fn read_config(ctx: &mut FileScan, f: &RepoFile) -> Option<Json> {
    let text = read_text(ctx, f)?;
    match text::parse_json(&text) {
        Ok(j) => Some(j),
        Err(e) => {
            ctx.add(
                code::HFR023,
                Severity::Medium,
                &Loc::top(),
                None,
                format!("not valid JSON as Python reads it ({e}); its remote-code entries and chat templates were not checked"),
                None,
            );
            None
        }
    }
}

/// One class reference from a config, with where it came from.
struct Reference {
    value: String,
    via: String,
}

fn references(json: &Json, file: &str) -> Vec<Reference> {
    let mut out = Vec::new();
    let mut push = |v: &Json, via: String| {
        match v {
            Json::String(s) => out.push(Reference {
                value: s.clone(),
                via,
            }),
            // Tokenizers map to [slow, fast]; either may be null.
            Json::Array(items) => {
                for it in items {
                    if let Json::String(s) = it {
                        out.push(Reference {
                            value: s.clone(),
                            via: via.clone(),
                        });
                    }
                }
            }
            _ => {}
        }
    };
    match json.get("auto_map") {
        Some(m @ Json::Object(_)) => {
            for (k, v) in m.members() {
                push(v, format!("{file} auto_map {k}"));
            }
        }
        // Old tokenizer configs: "auto_map": ["tokenization_x.Tok", null].
        Some(a @ Json::Array(_)) => push(a, format!("{file} auto_map")),
        _ => {}
    }
    if let Some(p) = json.get("custom_pipelines") {
        for (task, spec) in p.members() {
            if let Some(i) = spec.get("impl") {
                push(i, format!("{file} custom_pipelines {task}"));
            }
        }
    }
    out.truncate(MAX_REFERENCES_PER_CONFIG);
    out
}

/// Follows one reference the way `transformers.dynamic_module_utils.
/// get_class_from_dynamic_module` does: `[repo_id--]module_file.ClassName`, where the
/// module is `module_file + ".py"` relative to the repository.
fn resolve(
    ctx: &mut FileScan,
    config: &RepoFile,
    r: &Reference,
    by_display: &HashMap<&str, usize>,
    remote: &mut BTreeMap<usize, Vec<String>>,
) {
    let loc = Loc::top();
    let evidence = Some(format!("{}: {:?}", r.via, r.value));
    let (repo, class_ref) = match r.value.split_once("--") {
        Some((repo, rest)) if !rest.contains("--") => (Some(repo), rest),
        Some(_) => {
            ctx.add(
                code::HFR024,
                Severity::Low,
                &loc,
                None,
                "remote-code reference is malformed; transformers cannot load it".into(),
                evidence,
            );
            return;
        }
        None => (None, r.value.as_str()),
    };
    if let Some(repo) = repo {
        ctx.add(
            code::HFR021,
            Severity::High,
            &loc,
            None,
            format!(
                "{} loads code from another repository ({repo}); trust_remote_code=True downloads and runs it at load time, and it was not scanned",
                r.via
            ),
            evidence,
        );
        return;
    }
    let parts: Vec<&str> = class_ref.split('.').collect();
    let [module, _class] = parts.as_slice() else {
        ctx.add(
            code::HFR024,
            Severity::Low,
            &loc,
            None,
            format!(
                "{} is not of the form module.Class; transformers cannot load it",
                r.via
            ),
            evidence,
        );
        return;
    };
    let m = module.replace('\\', "/");
    if m.starts_with('/') || (m.len() > 1 && m.as_bytes()[1] == b':') {
        ctx.add(
            code::HFR022,
            Severity::High,
            &loc,
            None,
            format!("{} names a module by absolute path ({module}.py); the loader would import a file outside the repository", r.via),
            evidence,
        );
        return;
    }
    if !config.in_folder {
        // A config named by itself: its folder was not scanned, so nothing to resolve.
        return;
    }
    let target = join(&config.dir, &format!("{m}.py"));
    match by_display.get(target.as_str()) {
        Some(&i) => {
            let via = format!("{} → {}", r.via, r.value);
            let e = remote.entry(i).or_default();
            if !e.contains(&via) {
                e.push(via);
            }
        }
        None => ctx.add(
            code::HFR019,
            Severity::High,
            &loc,
            None,
            format!(
                "{} names {m}.py, which is not in the repository; trust_remote_code=True would fetch it from the Hub at load time, unscanned",
                r.via
            ),
            evidence,
        ),
    }
}

/// `chat_template`: a string, or a list of `{"name": …, "template": …}`.
fn templates(ctx: &mut FileScan, json: &Json) {
    match json.get("chat_template") {
        Some(Json::String(src)) => {
            let loc = Loc::top().child("chat_template");
            crate::analyze::template::check_template(ctx, &loc, "default", src);
        }
        Some(Json::Array(items)) => {
            for (k, it) in items.iter().enumerate() {
                let name = it
                    .get("name")
                    .and_then(Json::as_str)
                    .map(str::to_string)
                    .unwrap_or_else(|| k.to_string());
                if let Some(src) = it.get("template").and_then(Json::as_str) {
                    let loc = Loc::top().child(&format!("chat_template/{name}"));
                    crate::analyze::template::check_template(ctx, &loc, &name, src);
                }
            }
        }
        _ => {}
    }
}

/// Python, config and template files under the given paths, with cache links resolved.
fn collect(paths: &[PathBuf]) -> (Vec<RepoFile>, bool) {
    let mut out = Vec::new();
    let wanted = |name: &str| {
        name.ends_with(".py")
            || name.ends_with(".jinja")
            || CODE_CONFIGS.contains(&name)
            || TEMPLATE_CONFIGS.contains(&name)
    };
    for root in paths {
        let Ok(meta) = std::fs::symlink_metadata(root) else {
            continue;
        };
        if !meta.is_dir() {
            let d = display(root);
            let name = file_name(&d);
            if wanted(&name) {
                out.push(RepoFile {
                    dir: parent(&d),
                    display: d,
                    read_from: root.clone(),
                    name,
                    in_folder: false,
                });
            }
            continue;
        }
        let Ok(root_canon) = root.canonicalize() else {
            continue;
        };
        let it = walkdir::WalkDir::new(root)
            .follow_links(false)
            .sort_by_file_name()
            .into_iter()
            .filter_entry(|e| {
                !(e.file_type().is_dir()
                    && e.depth() > 0
                    && SKIPPED_DIRS.contains(&e.file_name().to_string_lossy().as_ref()))
            });
        for entry in it.flatten() {
            let ft = entry.file_type();
            let name = entry.file_name().to_string_lossy().into_owned();
            if ft.is_dir() || !wanted(&name) {
                continue;
            }
            let path = entry.path();
            let read_from = if ft.is_file() {
                path.to_path_buf()
            } else if ft.is_symlink() {
                match followable(path, &root_canon) {
                    Some(t) => t,
                    None => continue,
                }
            } else {
                continue;
            };
            if out.len() >= MAX_REPO_FILES {
                return (out, true);
            }
            let d = display(path);
            out.push(RepoFile {
                dir: parent(&d),
                display: d,
                read_from,
                name,
                in_folder: true,
            });
        }
    }
    (out, false)
}

/// The file a link points at, when the walker follows it too: inside the scanned folder,
/// or into a Hugging Face cache's `blobs/`.
pub(crate) fn followable(link: &Path, root: &Path) -> Option<PathBuf> {
    let target = link.canonicalize().ok()?;
    if !target.is_file() {
        return None;
    }
    if target.starts_with(root) {
        return Some(target);
    }
    let in_hf_cache = root.ancestors().any(|a| {
        let blobs = a.join("blobs");
        blobs.is_dir() && target.starts_with(&blobs)
    });
    in_hf_cache.then_some(target)
}

/// As the walker shows paths.
pub(crate) fn display(p: &Path) -> String {
    let s = p.to_string_lossy().replace('\\', "/");
    s.strip_prefix("./").map(str::to_string).unwrap_or(s)
}

fn parent(d: &str) -> String {
    d.rsplit_once('/')
        .map(|(p, _)| p.to_string())
        .unwrap_or_default()
}

fn file_name(d: &str) -> String {
    d.rsplit('/').next().unwrap_or(d).to_string()
}

fn join(dir: &str, rel: &str) -> String {
    if dir.is_empty() {
        rel.to_string()
    } else {
        format!("{dir}/{rel}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_follow_transformers_shapes() {
        let j = text::parse_json(
            r#"{"auto_map": {"AutoConfig": "configuration_x.XConfig", "AutoTokenizer": ["tokenization_x.XTok", null]},
                "custom_pipelines": {"text-x": {"impl": "pipe_x.XPipe", "pt": ["AutoModel"]}}}"#,
        )
        .unwrap();
        let r: Vec<String> = references(&j, "config.json")
            .into_iter()
            .map(|r| format!("{} = {}", r.via, r.value))
            .collect();
        assert_eq!(
            r,
            [
                "config.json auto_map AutoConfig = configuration_x.XConfig",
                "config.json auto_map AutoTokenizer = tokenization_x.XTok",
                "config.json custom_pipelines text-x = pipe_x.XPipe",
            ]
        );
    }

    fn fixture(rel: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fixtures/hfrepo")
            .join(rel)
    }

    fn scan_one(rel: &str) -> assay_report::Report {
        crate::scan(&[fixture(rel)], &crate::ScanOptions::default()).unwrap()
    }

    /// Secrets are medium (ARCHITECTURE.md), so the CLI table can only say "exit 0";
    /// this checks that each one is found, and masked.
    #[test]
    fn leaked_secrets_are_found_masked() {
        let r = scan_one("benign/leaked_secrets");
        let mut rules: Vec<&str> = r
            .findings
            .iter()
            .filter(|f| f.rule.starts_with("SEC"))
            .map(|f| f.rule.as_str())
            .collect();
        rules.sort();
        assert_eq!(
            rules,
            [
                "SEC001", "SEC001", "SEC002", "SEC003", "SEC004", "SEC007", "SEC009"
            ]
        );
        let readme = std::fs::read_to_string(fixture("benign/leaked_secrets/README.md")).unwrap();
        for f in r.findings.iter().filter(|f| f.rule.starts_with("SEC")) {
            assert_eq!(f.severity, Severity::Medium);
            let ev = f.evidence.as_deref().unwrap();
            assert!(ev.contains('…'), "{ev}");
            // No run of 8 evidence characters is a run of the secret text.
            for w in ev.split(['…', ' ']).filter(|w| w.len() >= 8) {
                assert!(!readme.contains(w) || w.starts_with("-----"), "{w} leaks");
            }
        }
        for e in &r.files {
            assert_eq!(e.status, FileStatus::Scanned, "{}", e.path);
        }
        let fmt = |name: &str| {
            r.files
                .iter()
                .find(|e| e.path.ends_with(name))
                .unwrap()
                .format
                .clone()
        };
        assert_eq!(fmt("README.md"), "text");
        assert_eq!(fmt("config.json"), "json");
    }

    #[test]
    fn cache_snapshots_are_reported_under_their_link_names() {
        let r = scan_one("malicious/hf_cache/hub");
        let hit = r
            .findings
            .iter()
            .find(|f| f.rule == "HFR011")
            .expect("os.system found through the cache links");
        assert!(hit.path.contains("/snapshots/") && hit.path.ends_with("/modeling_tiny.py"));
        // The blob holding that module is labelled as Python.
        assert!(
            r.files
                .iter()
                .any(|e| e.path.contains("/blobs/") && e.format == "python")
        );
        assert!(
            r.findings.iter().all(|f| f.rule != "ARC002"),
            "cache links are followed"
        );
    }

    #[test]
    fn plain_custom_code_is_medium_only() {
        let r = scan_one("benign/custom_arch");
        let hfr: Vec<(&str, Severity)> = r
            .findings
            .iter()
            .filter(|f| f.rule.starts_with("HFR"))
            .map(|f| (f.rule.as_str(), f.severity))
            .collect();
        assert_eq!(
            hfr,
            [("HFR010", Severity::Medium), ("HFR010", Severity::Medium)]
        );
        let py = r
            .files
            .iter()
            .find(|e| e.path.ends_with("modeling_tiny.py"))
            .unwrap();
        assert_eq!(
            (py.format.as_str(), py.status),
            ("python", FileStatus::Scanned)
        );
    }

    #[test]
    fn unparsable_remote_code_is_high_and_incomplete() {
        let r = scan_one("malicious/unparsable_module");
        let f = r.findings.iter().find(|f| f.rule == "HFR020").unwrap();
        assert_eq!(f.severity, Severity::High);
        let py = r
            .files
            .iter()
            .find(|e| e.path.ends_with("modeling_tiny.py"))
            .unwrap();
        assert_eq!(py.status, FileStatus::Incomplete);
    }

    #[test]
    fn paths_join_like_the_walker() {
        assert_eq!(join("a/b", "m.py"), "a/b/m.py");
        assert_eq!(join("", "m.py"), "m.py");
        assert_eq!(parent("a/b/c.py"), "a/b");
        assert_eq!(display(Path::new("./x/y")), "x/y");
    }
}
