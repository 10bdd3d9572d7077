//! External-data locations: checked as text always, and resolved against the model's
//! folder when the model is a file on disk (a member of an archive has no folder).

use crate::engine::{FileScan, Loc};
use crate::rules::code;
use assay_formats::onnx::{ExternalTensor, OnnxModel};
use assay_report::Severity;
use std::path::{Path, PathBuf};

/// ONNX Runtime's location tag for tensors held in process memory: the `offset` entry
/// is then taken as a raw address.
const ORT_MEMORY_TAG: &str = "*/_ORT_MEM_ADDR_/*";

/// `external_data` keys the ONNX loaders understand.
const KNOWN_KEYS: &[&str] = &["location", "offset", "length", "checksum", "basepath"];

pub fn check(ctx: &mut FileScan, model: &OnnxModel, loc: &Loc) {
    let model_dir = if loc.member.is_none() {
        Some(
            Path::new(&ctx.path)
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."))
                .to_path_buf(),
        )
    } else {
        None
    };
    // Many tensors share one file: check each distinct location once, naming the first
    // tensor; later tensors of a good file only get their range checked.
    let mut seen: Vec<(String, bool)> = Vec::new();
    for t in &model.external {
        unknown_keys(ctx, t, loc);
        let Some(location) = t.get("location") else {
            if t.marked_external {
                ctx.add(
                    code::ONX003,
                    Severity::Medium,
                    loc,
                    None,
                    format!("tensor {:?} is marked EXTERNAL but has no location", t.name),
                    Some(t.place.clone()),
                );
            }
            continue;
        };
        if let Some((_, good)) = seen.iter().find(|(l, _)| l == location) {
            if let (Some(dir), true) = (&model_dir, *good) {
                range(ctx, t, location, dir, loc);
            }
            continue;
        }
        let before = ctx.findings.len();
        let bad_text = text_check(ctx, t, location, loc);
        if let (Some(dir), false) = (&model_dir, bad_text) {
            disk_check(ctx, t, location, dir, loc);
        }
        seen.push((location.to_string(), ctx.findings.len() == before));
    }
}

fn unknown_keys(ctx: &mut FileScan, t: &ExternalTensor, loc: &Loc) {
    for (k, v) in &t.entries {
        if !KNOWN_KEYS.contains(&k.as_str()) {
            ctx.add(
                code::ONX002,
                Severity::Medium,
                loc,
                None,
                format!(
                    "tensor {:?} has an external_data key the ONNX loaders do not define",
                    t.name
                ),
                Some(format!("{k:?} = {:?}", clip(v))),
            );
        }
    }
}

/// What a location says by itself. True when it was reported (and so is not followed on
/// disk).
fn text_check(ctx: &mut FileScan, t: &ExternalTensor, location: &str, loc: &Loc) -> bool {
    let why = if location == ORT_MEMORY_TAG {
        Some(
            "is ONNX Runtime's in-memory tag: the runtime would read the tensor from a raw process address",
        )
    } else if is_absolute(location) {
        Some("is an absolute path")
    } else if escapes(location) {
        Some("climbs out of the model's folder with '..'")
    } else {
        None
    };
    if let Some(why) = why {
        ctx.add(
            code::ONX002,
            Severity::High,
            loc,
            None,
            format!(
                "external data location of tensor {:?} {why}; loading the model reads that file",
                t.name
            ),
            Some(format!("location {:?} ({})", clip(location), t.place)),
        );
        return true;
    }
    if components(location).any(|c| c == "..") {
        ctx.add(
            code::ONX002,
            Severity::Medium,
            loc,
            None,
            format!(
                "external data location of tensor {:?} contains '..' (it stays in the folder once normalised)",
                t.name
            ),
            Some(format!("location {:?}", clip(location))),
        );
    }
    false
}

fn components(location: &str) -> impl Iterator<Item = &str> {
    location
        .split(['/', '\\'])
        .filter(|c| !c.is_empty() && *c != ".")
}

/// Absolute on any platform the model may be loaded on: POSIX, drive letters, UNC,
/// `file:` URLs.
fn is_absolute(location: &str) -> bool {
    let b = location.as_bytes();
    location.starts_with('/')
        || location.starts_with('\\')
        || location.starts_with('~')
        || (b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':')
        || location.to_ascii_lowercase().starts_with("file:")
}

fn escapes(location: &str) -> bool {
    let mut depth: i64 = 0;
    for c in components(location) {
        if c == ".." {
            depth -= 1;
            if depth < 0 {
                return true;
            }
        } else {
            depth += 1;
        }
    }
    false
}

fn disk_check(ctx: &mut FileScan, t: &ExternalTensor, location: &str, dir: &Path, loc: &Loc) {
    let mut here = dir.to_path_buf();
    let parts: Vec<&str> = location
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    for (i, part) in parts.iter().enumerate() {
        here.push(part);
        let meta = match std::fs::symlink_metadata(&here) {
            Ok(m) => m,
            Err(_) => {
                ctx.add(
                    code::ONX003,
                    Severity::High,
                    loc,
                    None,
                    format!(
                        "external data file of tensor {:?} does not exist next to the model; what would be loaded was not scanned",
                        t.name
                    ),
                    Some(format!("location {:?} -> {}", clip(location), here.display())),
                );
                return;
            }
        };
        if meta.file_type().is_symlink() {
            let last = i + 1 == parts.len();
            if last && hf_cache_blob(dir, &here) {
                break;
            }
            let target = std::fs::read_link(&here)
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            ctx.add(
                code::ONX002,
                Severity::High,
                loc,
                None,
                format!(
                    "external data location of tensor {:?} goes through a symbolic link; loading the model reads wherever it points",
                    t.name
                ),
                Some(format!("{} -> {target}", here.display())),
            );
            return;
        }
    }
    // Resolved, with no links: still confirm it is inside the folder, then what it is.
    let (Ok(real), Ok(real_dir)) = (here.canonicalize(), dir.canonicalize()) else {
        return;
    };
    if !real.starts_with(&real_dir) {
        ctx.add(
            code::ONX002,
            Severity::High,
            loc,
            None,
            format!(
                "external data of tensor {:?} resolves outside the model's folder",
                t.name
            ),
            Some(real.display().to_string()),
        );
        return;
    }
    let Ok(meta) = std::fs::metadata(&real) else {
        return;
    };
    if !meta.is_file() {
        ctx.add(
            code::ONX003,
            Severity::High,
            loc,
            None,
            format!(
                "external data location of tensor {:?} is not a regular file",
                t.name
            ),
            Some(format!("location {:?}", clip(location))),
        );
        return;
    }
    hard_links(ctx, t, &real, &meta, loc);
    range(ctx, t, location, dir, loc);
}

#[cfg(unix)]
fn hard_links(
    ctx: &mut FileScan,
    t: &ExternalTensor,
    path: &Path,
    meta: &std::fs::Metadata,
    loc: &Loc,
) {
    use std::os::unix::fs::MetadataExt;
    if meta.nlink() > 1 {
        ctx.add(
            code::ONX003,
            Severity::Medium,
            loc,
            None,
            format!(
                "external data file of tensor {:?} has {} hard links; it may be a file from outside the folder",
                t.name,
                meta.nlink()
            ),
            Some(path.display().to_string()),
        );
    }
}

#[cfg(not(unix))]
fn hard_links(_: &mut FileScan, _: &ExternalTensor, _: &Path, _: &std::fs::Metadata, _: &Loc) {}

/// `offset` and `length` are decimal integers and the range is inside the file.
fn range(ctx: &mut FileScan, t: &ExternalTensor, location: &str, dir: &Path, loc: &Loc) {
    let number = |k: &str| {
        t.get(k)
            .map(|v| v.trim().parse::<u64>().map_err(|_| v.to_string()))
    };
    let (offset, length) = match (number("offset"), number("length")) {
        (Some(Err(v)), _) | (_, Some(Err(v))) => {
            ctx.add(
                code::ONX003,
                Severity::Medium,
                loc,
                None,
                format!(
                    "external data of tensor {:?} has an offset or length that is not a non-negative integer",
                    t.name
                ),
                Some(clip(&v).to_string()),
            );
            return;
        }
        (o, l) => (o.and_then(Result::ok).unwrap_or(0), l.and_then(Result::ok)),
    };
    let path: PathBuf = dir.join(location);
    let Ok(size) = std::fs::metadata(&path).map(|m| m.len()) else {
        return;
    };
    let end = offset.checked_add(length.unwrap_or(0));
    if end.is_none_or(|e| e > size) || offset > size {
        ctx.add(
            code::ONX003,
            Severity::Medium,
            loc,
            None,
            format!(
                "external data of tensor {:?} runs past the end of {location:?} ({size} bytes)",
                t.name
            ),
            Some(format!("offset {offset}, length {}", length.unwrap_or(0))),
        );
    }
}

/// A Hugging Face cache snapshot holds links into the cache's own `blobs/` folder:
/// the same exception the folder walk makes.
fn hf_cache_blob(dir: &Path, link: &Path) -> bool {
    let (Ok(target), Ok(dir)) = (link.canonicalize(), dir.canonicalize()) else {
        return false;
    };
    target.is_file()
        && dir.ancestors().any(|a| {
            let blobs = a.join("blobs");
            blobs.is_dir() && target.starts_with(&blobs)
        })
}

fn clip(s: &str) -> &str {
    match s.char_indices().nth(200) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_text() {
        assert!(is_absolute("/etc/passwd"));
        assert!(is_absolute("C:\\Windows\\win.ini"));
        assert!(is_absolute("\\\\server\\share\\w.bin"));
        assert!(is_absolute("file:///etc/passwd"));
        assert!(!is_absolute("weights.bin"));
        assert!(escapes("../../etc/passwd"));
        assert!(escapes("a/../../x"));
        assert!(escapes("..\\..\\x"));
        assert!(!escapes("a/../b"));
        assert!(!escapes("./data/w.bin"));
    }

    fn tensor(entries: &[(&str, &str)]) -> ExternalTensor {
        ExternalTensor {
            name: "w".into(),
            place: "graph".into(),
            marked_external: true,
            entries: entries
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn run(path: &str, t: ExternalTensor, member: bool) -> Vec<assay_report::Finding> {
        let limits = crate::limits::Limits::default();
        let mut ctx = FileScan::new(path.into(), &limits);
        let model = OnnxModel {
            external: vec![t],
            ..OnnxModel::default()
        };
        let loc = if member {
            Loc::top().child("m.onnx")
        } else {
            Loc::top()
        };
        check(&mut ctx, &model, &loc);
        ctx.findings
    }

    #[test]
    fn disk_resolution() {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("m.onnx");
        let model = model.to_str().unwrap();
        std::fs::write(dir.path().join("w.bin"), [0u8; 16]).unwrap();
        // Present, in range: nothing.
        let ok = run(
            model,
            tensor(&[("location", "w.bin"), ("offset", "0"), ("length", "16")]),
            false,
        );
        assert!(ok.is_empty(), "{ok:?}");
        // Past the end.
        let f = run(
            model,
            tensor(&[("location", "w.bin"), ("offset", "8"), ("length", "16")]),
            false,
        );
        assert_eq!(f[0].rule, "ONX003");
        assert_eq!(f[0].severity, Severity::Medium);
        // Missing.
        let f = run(model, tensor(&[("location", "nope.bin")]), false);
        assert_eq!(
            (f[0].rule.as_str(), f[0].severity),
            ("ONX003", Severity::High)
        );
        // Inside an archive only the text is checked.
        assert!(run(model, tensor(&[("location", "nope.bin")]), true).is_empty());
        // Traversal and absolute paths, whether on disk or not.
        for l in ["../../etc/passwd", "/etc/passwd", ORT_MEMORY_TAG] {
            let f = run(model, tensor(&[("location", l)]), true);
            assert_eq!(
                (f[0].rule.as_str(), f[0].severity),
                ("ONX002", Severity::High),
                "{l}"
            );
        }
        // Unknown keys.
        let f = run(
            model,
            tensor(&[("location", "w.bin"), ("__class__", "x")]),
            false,
        );
        assert_eq!(
            (f[0].rule.as_str(), f[0].severity),
            ("ONX002", Severity::Medium)
        );
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink("/etc/hostname", dir.path().join("link.bin")).unwrap();
            let f = run(model, tensor(&[("location", "link.bin")]), false);
            assert_eq!(
                (f[0].rule.as_str(), f[0].severity),
                ("ONX002", Severity::High)
            );
            assert!(f[0].message.contains("symbolic link"));
        }
    }
}
