//! Keras models: `.keras` v3 archives (found by the zip analyser) and legacy `.h5` files.
//! Both keep the architecture as JSON (`config.json`; the `model_config` and
//! `training_config` root attributes) that the loader turns into imports and code; the
//! configuration walk is `assay_formats::keras`, the severities are decided here.

use crate::engine::{FileScan, Format, Loc};
use crate::rules::callables::{Judgement, judge};
use crate::rules::code;
use assay_advisories::Feature;
use assay_formats::hdf5::{self, Hdf5Limits, Value as H5Value};
use assay_formats::keras::{
    self, Bytecode, ConfigAnalysis, ItemKind, KerasLimits, ObjectRef, RefKind,
};
use assay_formats::pickle::CallKind;
use assay_formats::zip::{self, ZipArchive, ZipEntry};
use assay_report::Severity;

/// Largest `config.json` / `metadata.json` read from an archive.
const MAX_CONFIG_BYTES: u64 = 64 << 20;
/// `config.json` members analysed when an archive repeats the name (the last one, which
/// Keras reads, always is).
const MAX_CONFIG_MEMBERS: usize = 16;

/// Modules whose every function is dangerous to import-and-call at load time, on top of
/// what the pickle callable judge already knows.
const DANGEROUS_MODULES: &[&str] = &[
    "os",
    "posix",
    "nt",
    "subprocess",
    "importlib",
    "pickle",
    "_pickle",
    "marshal",
    "runpy",
    "sys",
    "shutil",
    "socket",
    "ctypes",
    "pty",
    "code",
    "codeop",
    "webbrowser",
    "urllib",
    "http",
    "requests",
    "multiprocessing",
    "pip",
    "setuptools",
    "commands",
    "platform",
    "asyncio",
    "pdb",
];

/// Names that, used by marshalled bytecode, say what it is after.
const TELLING_NAMES: &[&str] = &[
    "system",
    "popen",
    "Popen",
    "exec",
    "eval",
    "__import__",
    "compile",
    "open",
    "getattr",
    "run",
    "call",
    "check_output",
    "spawnv",
    "execv",
    "remove",
    "rmtree",
    "urlopen",
    "socket",
    "connect",
    "loads",
    "load",
    "import_module",
];

/// The zip analyser's hook: a Keras v3 archive has `config.json` at its root (and usually
/// `metadata.json`). Returns `None` for zips that are not Keras models.
pub fn scan_archive(
    ctx: &mut FileScan,
    data: &[u8],
    ar: &ZipArchive,
    loc: &Loc,
    depth: u32,
) -> Option<Format> {
    let all: Vec<&ZipEntry> = ar
        .entries
        .iter()
        .filter(|e| e.name == "config.json")
        .collect();
    let &last = all.last()?;
    let mut configs = all.clone();
    if configs.len() > MAX_CONFIG_MEMBERS {
        configs.truncate(MAX_CONFIG_MEMBERS - 1);
        configs.push(last);
    }
    // Python's zipfile (what Keras opens archives with) reads the last of duplicate names.
    let metadata = ar
        .entries
        .iter()
        .rev()
        .find(|e| e.name == "metadata.json")
        .and_then(|e| read_member(data, e).ok())
        .and_then(|b| keras::parse_json(&b).ok());
    // The last config.json decides whether this is a Keras archive; the others are parsed
    // one at a time below, so that only one configuration is in memory at once.
    let mut last_parsed = Some(read_member(data, last).and_then(|b| keras::parse_json(&b)));
    let is_keras = metadata
        .as_ref()
        .is_some_and(|m| m.get("keras_version").is_some())
        || last_parsed.as_ref().is_some_and(|r| {
            r.as_ref()
                .is_ok_and(|v| v.get("class_name").is_some() && v.get("config").is_some())
        });
    if !is_keras {
        return None;
    }
    let child = loc.child("config.json");
    if all.len() > 1 {
        let skipped = all.len() - configs.len();
        let note = if skipped > 0 {
            format!("; {skipped} of them were not analysed")
        } else {
            String::new()
        };
        ctx.add(
            code::KER006,
            Severity::High,
            &child,
            None,
            format!(
                "archive holds {} members named config.json; Keras (Python's zipfile) reads the last one, other tools the first{note}",
                all.len()
            ),
            None,
        );
    }
    for (i, e) in configs.iter().enumerate() {
        let reuse = if i + 1 == configs.len() {
            last_parsed.take()
        } else {
            None
        };
        let r = reuse.unwrap_or_else(|| read_member(data, e).and_then(|b| keras::parse_json(&b)));
        match r {
            Ok(v) => {
                let a = keras::analyze_config(&v, &KerasLimits::default());
                report(ctx, &a, &child, depth, "config.json");
            }
            Err(err) => {
                ctx.incomplete = true;
                ctx.add(
                    code::KER006,
                    Severity::High,
                    &child,
                    Some(e.local_offset),
                    format!("Keras config.json could not be read, so the model's code-bearing configuration was not analysed: {err}"),
                    None,
                );
            }
        }
    }
    if let Some(m) = metadata {
        version_info(
            ctx,
            &loc.child("metadata.json"),
            m.get("keras_version").and_then(|v| v.as_str()),
            None,
        );
    }
    Some(Format::Keras)
}

fn read_member(data: &[u8], e: &ZipEntry) -> Result<Vec<u8>, String> {
    if e.size > MAX_CONFIG_BYTES {
        return Err(format!(
            "{} is {} bytes, over the {MAX_CONFIG_BYTES}-byte limit",
            e.name, e.size
        ));
    }
    let mut out = Vec::new();
    zip::extract_to(data, e, &mut out, MAX_CONFIG_BYTES).map_err(|err| err.to_string())?;
    Ok(out)
}

/// A legacy HDF5 model (`model.save("x.h5")`), or any HDF5 file.
pub fn scan_hdf5(ctx: &mut FileScan, data: &[u8], loc: &Loc, depth: u32) -> Format {
    let r = match hdf5::root_attributes(data, &Hdf5Limits::default()) {
        Ok(r) => r,
        Err(e) => {
            ctx.incomplete = true;
            ctx.add(
                code::KER006,
                Severity::High,
                loc,
                Some(0),
                format!("HDF5 structure could not be read, so a Keras model_config in it was not analysed: {e}"),
                None,
            );
            return Format::Hdf5;
        }
    };
    // A user block is its own artifact (a pickle or script in front of the HDF5 data).
    if let Some(prefix) = data.get(..r.base as usize).filter(|p| !p.is_empty()) {
        let child = loc.child("@0");
        if ctx.enter_member(&child) && ctx.scan_bytes(prefix, &child, depth + 1) != Format::Unknown
        {
            ctx.add(
                code::ARC005,
                Severity::Medium,
                loc,
                Some(0),
                format!(
                    "another artifact sits in the HDF5 user block ({} bytes)",
                    r.base
                ),
                Some(crate::engine::hex_prefix(prefix)),
            );
        }
    }
    let is_config = |n: &str| n == "model_config" || n == "training_config";
    let keras = r
        .attributes
        .iter()
        .map(|a| a.name.as_str())
        .chain(r.problems.iter().filter_map(|p| p.name.as_deref()))
        .any(|n| is_config(n) || n == "keras_version");
    for p in &r.problems {
        let code_bearing = p.name.as_deref().is_none_or(is_config);
        let what = match &p.name {
            Some(n) => format!("attribute {n:?}"),
            None => "a root-group attribute (its name could not be read)".into(),
        };
        if code_bearing {
            ctx.incomplete = true;
        }
        ctx.add(
            code::KER006,
            if code_bearing {
                Severity::High
            } else {
                Severity::Low
            },
            loc,
            Some(p.offset),
            format!("HDF5 {what} could not be read: {}", p.reason),
            None,
        );
    }
    let mut seen = std::collections::HashSet::new();
    for a in r.attributes.iter().filter(|a| is_config(&a.name)) {
        let child = loc.child(&a.name);
        if !seen.insert(a.name.as_str()) {
            ctx.add(
                code::KER006,
                Severity::High,
                &child,
                Some(a.offset),
                format!("the root group has more than one {:?} attribute", a.name),
                None,
            );
        }
        let H5Value::Strings(values) = &a.value else {
            continue; // not a string: the Keras loader cannot decode it
        };
        for s in values {
            match keras::parse_json(s) {
                Ok(v) => {
                    let an = keras::analyze_config(&v, &KerasLimits::default());
                    report(ctx, &an, &child, depth, &a.name);
                }
                Err(err) => {
                    ctx.incomplete = true;
                    ctx.add(
                        code::KER006,
                        Severity::High,
                        &child,
                        Some(a.offset),
                        format!("{} is not JSON the analyser can read: {err}", a.name),
                        Some(preview(s)),
                    );
                }
            }
        }
    }
    let text = |n: &str| {
        r.attributes
            .iter()
            .find(|a| a.name == n)
            .and_then(|a| match &a.value {
                H5Value::Strings(v) => v.first().map(|s| String::from_utf8_lossy(s).into_owned()),
                _ => None,
            })
    };
    if keras {
        version_info(
            ctx,
            loc,
            text("keras_version").as_deref(),
            text("backend").as_deref(),
        );
        Format::KerasH5
    } else {
        Format::Hdf5
    }
}

fn version_info(ctx: &mut FileScan, loc: &Loc, version: Option<&str>, backend: Option<&str>) {
    let Some(v) = version else { return };
    ctx.recorded_version("keras", v, "keras_version", loc);
    let b = backend
        .map(|b| format!(", backend {b}"))
        .unwrap_or_default();
    ctx.add(
        code::KER008,
        Severity::Info,
        loc,
        None,
        format!("saved by Keras {v}{b}"),
        Some(format!("keras_version={v}")),
    );
}

fn preview(s: &[u8]) -> String {
    let t: String = String::from_utf8_lossy(&s[..s.len().min(120)]).into_owned();
    t.chars().filter(|c| !c.is_control()).collect()
}

/// Turns a configuration walk into findings.
fn report(ctx: &mut FileScan, a: &ConfigAnalysis, loc: &Loc, depth: u32, source: &str) {
    for item in &a.items {
        let at = match &item.layer {
            Some(l) => format!("layer {l:?} ({})", item.path),
            None => item.path.clone(),
        };
        match &item.kind {
            ItemKind::Bytecode(b) => {
                ctx.feature(Feature::KerasLambdaBytecode, loc);
                // Legacy HDF5 models: loading ignores safe_mode.
                if source != "config.json" {
                    ctx.feature(Feature::KerasH5Lambda, loc);
                }
                bytecode(ctx, loc, &at, b)
            }
            ItemKind::Reference(r) => {
                ctx.feature(
                    if r.kind == RefKind::KerasGadget {
                        Feature::KerasSafeModeOff
                    } else {
                        Feature::KerasModuleReference
                    },
                    loc,
                );
                reference(ctx, loc, &at, r)
            }
            ItemKind::SafeModeOff { evidence } => {
                ctx.feature(Feature::KerasSafeModeOff, loc);
                ctx.add(
                code::KER003,
                Severity::Critical,
                loc,
                None,
                format!("{source} switches Keras safe mode off at {at}: loading then runs any Lambda bytecode that follows (CVE-2025-9906)"),
                Some(evidence.clone()),
            )
            }
            ItemKind::ExternalResource {
                class_name,
                field,
                value,
                remote,
            } => {
                let what = if class_name == "TFSMLayer" {
                    "loads a TensorFlow SavedModel (its graph was not analysed) from"
                } else {
                    "reads a file while loading, from"
                };
                let (sev, tail) = if *remote {
                    (
                        Severity::Critical,
                        "a remote location: loading the model opens a network connection",
                    )
                } else {
                    (Severity::High, "a path outside the model file")
                };
                ctx.add(
                    code::KER004,
                    sev,
                    loc,
                    None,
                    format!("{class_name} at {at} {what} {tail}"),
                    Some(format!("{field}={value}")),
                );
            }
            ItemKind::EmbeddedPayload {
                class_name,
                field,
                loader,
                data,
                error,
            } => {
                if let Some(err) = error {
                    ctx.incomplete = true;
                    ctx.add(
                        code::KER007,
                        Severity::High,
                        loc,
                        None,
                        format!("{class_name} at {at} carries a {field} payload for {loader} that could not be decoded: {err}"),
                        None,
                    );
                    continue;
                }
                ctx.add(
                    code::KER007,
                    Severity::Medium,
                    loc,
                    None,
                    format!("{class_name} at {at} carries a serialized object that loading passes to {loader} (scanned below)"),
                    Some(format!("{} bytes starting {}", data.len(), crate::engine::hex_prefix(data))),
                );
                let child = loc.child(&item.path);
                if ctx.enter_member(&child) {
                    ctx.scan_bytes(data, &child, depth + 1);
                }
            }
        }
    }
    if let Some(why) = &a.truncated {
        ctx.incomplete = true;
        ctx.add(
            code::KER006,
            Severity::High,
            loc,
            None,
            format!("{source} was not analysed completely: {why}"),
            None,
        );
    }
}

fn bytecode(ctx: &mut FileScan, loc: &Loc, at: &str, b: &Bytecode) {
    let size = format!(
        "{} bytes of bytecode ({} characters, {})",
        b.raw.len(),
        b.encoded_len,
        b.encoding
    );
    let (telling, evidence) = match &b.summary {
        Ok(s) => {
            let telling: Vec<&str> = s
                .names
                .iter()
                .map(String::as_str)
                .filter(|n| TELLING_NAMES.contains(n))
                .collect();
            let mut ev = format!("{size}; Python {}", s.layout);
            if !s.names.is_empty() {
                ev.push_str(&format!("; names: {}", s.names.join(", ")));
            }
            if !s.strings.is_empty() {
                let quoted: Vec<String> = s.strings.iter().map(|x| format!("{x:?}")).collect();
                ev.push_str(&format!("; strings: {}", quoted.join(", ")));
            }
            if !s.functions.is_empty() {
                ev.push_str(&format!("; functions: {}", s.functions.join(", ")));
            }
            (telling, ev)
        }
        Err(e) => {
            let strings = keras::marshal::printable_strings(&b.raw, 4, 20);
            (
                Vec::new(),
                format!(
                    "{size}; not a readable code object ({e}); printable: {}",
                    strings.join(" | ")
                ),
            )
        }
    };
    let uses = if telling.is_empty() {
        String::new()
    } else {
        format!(" It uses {}.", telling.join(", "))
    };
    ctx.add(
        code::KER001,
        Severity::Critical,
        loc,
        None,
        format!("Lambda at {at} carries marshalled Python bytecode, which runs when the model is loaded with safe_mode=False, from a legacy .h5 file, or after safe mode is switched off.{uses}"),
        Some(evidence),
    );
}

fn reference(ctx: &mut FileScan, loc: &Loc, at: &str, r: &ObjectRef) {
    let module = r.module.as_deref().unwrap_or("");
    let qn = r.qualified();
    let what = if r.function { "function" } else { "class" };
    let evidence = Some(format!(
        "module={} {}={}{}",
        r.module.as_deref().unwrap_or("null"),
        if r.function { "config" } else { "class_name" },
        r.name,
        r.registered_name
            .as_deref()
            .map(|n| format!(" registered_name={n}"))
            .unwrap_or_default()
    ));
    let top = module.split('.').next().unwrap_or("");
    let name = r.name.rsplit('>').next().unwrap_or(&r.name);
    let judged = judge(module, name, CallKind::Reduce);
    let danger = match judged {
        Judgement::Dangerous(d) => Some(d.describe()),
        _ if DANGEROUS_MODULES.contains(&top) => Some("is a dangerous module to import from"),
        _ => None,
    };
    if r.kind == RefKind::KerasGadget {
        ctx.add(
            code::KER003,
            Severity::Critical,
            loc,
            None,
            format!("{at} calls the Keras {what} {qn}, which is not a modelling operation: a published safe-mode bypass gadget (CVE-2025-8747, CVE-2025-9906)"),
            evidence,
        );
        return;
    }
    if let Some(why) = danger.filter(|_| !module.is_empty()) {
        ctx.add(
            code::KER002,
            Severity::Critical,
            loc,
            None,
            format!("{at} makes the Keras loader import {qn} ({why}): arbitrary module import at load time, CVE-2025-1550"),
            evidence,
        );
        return;
    }
    match r.kind {
        RefKind::Custom => ctx.add(
            code::KER005,
            Severity::Medium,
            loc,
            None,
            format!("{at} is a custom {what} {qn} that only user code can supply (register_keras_serializable / custom_objects)"),
            evidence,
        ),
        RefKind::PythonBuiltin | RefKind::Foreign if judged == Judgement::Safe => ctx.add(
            code::KER005,
            Severity::Medium,
            loc,
            None,
            format!("{at} resolves the {what} {qn} outside Keras"),
            evidence,
        ),
        RefKind::PythonBuiltin => ctx.add(
            code::KER002,
            Severity::High,
            loc,
            None,
            format!("{at} makes Keras resolve the Python builtin {qn}: Keras before 3.9 imports it at load (CVE-2025-1550)"),
            evidence,
        ),
        _ => ctx.add(
            code::KER002,
            Severity::High,
            loc,
            None,
            format!("{at} makes the Keras loader import {qn} from a module outside Keras: Keras before 3.9 imports any module named in the config (CVE-2025-1550)"),
            evidence,
        ),
    }
}

#[cfg(test)]
mod tests {
    use crate::engine::{FileScan, Format, Loc};
    use crate::limits::Limits;
    use assay_report::{Finding, Severity};
    use std::path::PathBuf;

    fn fixtures() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
    }

    fn scan(rel: &str) -> (Format, Vec<Finding>) {
        let data = std::fs::read(fixtures().join(rel)).unwrap();
        let limits = Limits::default();
        let mut ctx = FileScan::new(rel.into(), &limits);
        let f = ctx.scan_bytes(&data, &Loc::top(), 0);
        (f, ctx.findings)
    }

    fn serious(f: &[Finding]) -> Vec<&Finding> {
        f.iter()
            .filter(|f| matches!(f.severity, Severity::Critical | Severity::High))
            .collect()
    }

    /// The fixture table, scanned through the engine (the CLI test does the same through
    /// the binary).
    #[test]
    fn fixture_table() {
        let table = std::fs::read_to_string(fixtures().join("expected_keras.tsv")).unwrap();
        let mut failures = Vec::new();
        for line in table.lines().skip(1).filter(|l| !l.is_empty()) {
            let cols: Vec<&str> = line.split('\t').collect();
            let (path, expect, needle) = (cols[0], cols[1], cols[2]);
            let (_, findings) = scan(path);
            let s = serious(&findings);
            let text =
                |f: &&Finding| format!("{} {}", f.message, f.evidence.as_deref().unwrap_or(""));
            match expect {
                "clean" if !s.is_empty() => failures.push(format!("false positive {path}: {s:#?}")),
                "flag" if s.is_empty() => failures.push(format!("missed {path}: {findings:#?}")),
                "flag" if needle != "-" && !s.iter().any(|f| text(f).contains(needle)) => failures
                    .push(format!(
                        "{path}: no serious finding mentions {needle:?}: {s:#?}"
                    )),
                _ => {}
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn formats_and_context() {
        let (f, found) = scan("keras/benign/sequential.keras");
        assert_eq!(f, Format::Keras);
        assert!(
            found
                .iter()
                .any(|f| f.rule == "KER008" && f.message.contains("Keras 3."))
        );
        let (f, _) = scan("keras/benign/sequential.h5");
        assert_eq!(f, Format::KerasH5);
        let (f, found) = scan("keras/benign/sequential.weights.h5");
        assert_eq!(f, Format::Hdf5);
        // No Keras finding; its weights are read by the tensor stage (the untrained biases
        // are all zero: TEN003, info).
        assert!(
            found
                .iter()
                .all(|f| f.rule == "TEN003" && f.severity == Severity::Info),
            "{found:#?}"
        );
        assert!(!found.is_empty());
        let (_, found) = scan("keras/benign/custom_registered.keras");
        let custom: Vec<&Finding> = found.iter().filter(|f| f.rule == "KER005").collect();
        assert_eq!(custom.len(), 2, "{found:#?}");
        assert!(custom.iter().all(|f| f.severity == Severity::Medium));
    }

    #[test]
    fn lambda_evidence_shows_the_bytecode() {
        let (_, found) = scan("keras/malicious/lambda_os_system.keras");
        let f = found.iter().find(|f| f.rule == "KER001").unwrap();
        assert_eq!(f.severity, Severity::Critical);
        assert_eq!(f.member.as_deref(), Some("config.json"));
        let ev = f.evidence.as_deref().unwrap();
        assert!(ev.contains("names: __import__, system"), "{ev}");
        assert!(ev.contains("\"echo pwned\""), "{ev}");
        assert!(f.message.contains("layer \"payload\""), "{}", f.message);
    }
}
