//! GGUF: header findings, the bytes no tensor covers (scanned as nested members), metadata
//! strings, and the chat templates (`tokenizer.chat_template`, `tokenizer.chat_template.*`),
//! which are parsed as Jinja and checked for sandbox escapes.

use crate::analyze::safetensors::{StringRules, check_string};
use crate::analyze::template::check_template;
use crate::engine::{FileScan, Format, Loc, hex_prefix};
use crate::rules::code;
use assay_formats::gguf::{self, Issue, Value};
use assay_report::Severity;
use std::collections::HashMap;

/// Elements of one string array checked as metadata.
const MAX_ARRAY_STRINGS_CHECKED: usize = 10_000;
/// Chat templates analysed per file (real files have one to four).
const MAX_TEMPLATES: usize = 64;

pub fn scan(ctx: &mut FileScan, data: &[u8], loc: &Loc, depth: u32) -> Format {
    let (g, error) = gguf::parse_partial(data);
    if let Some(e) = &error {
        ctx.incomplete = true;
        ctx.add(
            code::GGF001,
            Severity::High,
            loc,
            e.offset(),
            format!("malformed GGUF header: {e}"),
            None,
        );
    }
    let at = |rel: u64| Some(g.data_start.saturating_add(rel));
    let tensor_offsets: HashMap<&str, u64> = if g.issues.is_empty() {
        HashMap::new()
    } else {
        g.tensors
            .iter()
            .map(|t| (t.name.as_str(), t.info_offset))
            .collect()
    };
    let offset_of_tensor = |_: &gguf::Gguf, name: &str| tensor_offsets.get(name).copied();
    let mut hidden: Vec<(u64, u64)> = Vec::new();
    for issue in &g.issues {
        let (rule, offset, message) = match issue {
            Issue::DuplicateKey { key } => (
                code::GGF002,
                offset_of_key(&g, key),
                format!("duplicate metadata key {key:?}: readers disagree on which one counts"),
            ),
            Issue::DuplicateTensor { name } => (
                code::GGF002,
                offset_of_tensor(&g, name),
                format!("duplicate tensor name {name:?}"),
            ),
            Issue::NestedArray { key } => (
                code::GGF001,
                offset_of_key(&g, key),
                format!("metadata {key:?} is an array of arrays, which llama.cpp refuses"),
            ),
            Issue::BadAlignment { reason } => (
                code::GGF001,
                offset_of_key(&g, "general.alignment"),
                reason.clone(),
            ),
            Issue::NameTooLong { name, len } => (
                code::GGF001,
                offset_of_tensor(&g, name),
                format!(
                    "tensor name of {len} bytes (llama.cpp refuses names of {} or more): {:?}",
                    gguf::MAX_NAME,
                    clip(name)
                ),
            ),
            Issue::TooManyDims { tensor, n_dims } => (
                code::GGF001,
                offset_of_tensor(&g, tensor),
                format!(
                    "tensor {tensor:?} has {n_dims} dimensions (ggml allows {})",
                    gguf::MAX_DIMS
                ),
            ),
            Issue::KeyNotUtf8 { offset } => (
                code::GGF001,
                Some(*offset),
                "metadata key is not UTF-8".to_string(),
            ),
            Issue::UnknownTensorType { tensor, ggml_type } => (
                code::GGF003,
                offset_of_tensor(&g, tensor),
                format!("tensor {tensor:?} has unknown ggml type {ggml_type}"),
            ),
            Issue::BadShape { tensor, reason } => (
                code::GGF004,
                offset_of_tensor(&g, tensor),
                format!("tensor {tensor:?}: {reason}"),
            ),
            Issue::Misaligned {
                tensor,
                offset,
                alignment,
            } => (
                code::GGF005,
                offset_of_tensor(&g, tensor),
                format!(
                    "tensor {tensor:?} data offset {offset} is not a multiple of the alignment {alignment}"
                ),
            ),
            Issue::OutOfBounds {
                tensor,
                end,
                data_len,
                ..
            } => (
                code::GGF005,
                offset_of_tensor(&g, tensor),
                format!(
                    "tensor {tensor:?} ends at data offset {end}, past the {data_len}-byte data section"
                ),
            ),
            Issue::Overlap {
                first,
                second,
                at: o,
            } => (
                code::GGF005,
                at(*o),
                format!("tensors {first:?} and {second:?} overlap at data offset {o}"),
            ),
            Issue::Gap {
                after,
                next,
                start,
                len,
            } => {
                hidden.push((*start, *len));
                (
                    code::GGF006,
                    at(*start),
                    match after {
                        Some(a) => format!(
                            "{len} bytes between tensors {a:?} and {next:?} belong to no tensor"
                        ),
                        None => format!(
                            "{len} bytes at the start of the data section, before tensor {next:?}, belong to no tensor"
                        ),
                    },
                )
            }
            Issue::Trailing { start, len } => {
                hidden.push((*start, *len));
                (
                    code::GGF006,
                    at(*start),
                    format!("{len} bytes after the last tensor belong to no tensor"),
                )
            }
            Issue::NonZeroPadding { at: o, len } => (
                code::GGF006,
                Some(*o),
                format!("alignment padding holds non-zero bytes ({len} bytes from here)"),
            ),
            Issue::TooManyIssues => (
                code::GGF001,
                None,
                format!(
                    "more than {} problems; the rest are not listed",
                    gguf::MAX_ISSUES
                ),
            ),
        };
        let evidence = match issue {
            Issue::Gap { start, .. } | Issue::Trailing { start, .. } => {
                let from = g.data_start.saturating_add(*start) as usize;
                Some(format!(
                    "starts {}",
                    hex_prefix(data.get(from..).unwrap_or(&[]))
                ))
            }
            Issue::NonZeroPadding { at: o, .. } => Some(format!(
                "starts {}",
                hex_prefix(data.get(*o as usize..).unwrap_or(&[]))
            )),
            _ => None,
        };
        ctx.add(rule, Severity::High, loc, offset, message, evidence);
    }
    for (start, len) in hidden {
        let from = g.data_start.saturating_add(start);
        let Some(bytes) = data.get(from as usize..from.saturating_add(len) as usize) else {
            continue;
        };
        let child = loc.child(&format!("@{from}"));
        if ctx.enter_member(&child) {
            ctx.scan_bytes(bytes, &child, depth + 1);
        }
    }
    metadata(ctx, &g, loc, depth);
    Format::Gguf
}

fn is_template_key(key: &str) -> bool {
    key == "tokenizer.chat_template" || key.starts_with("tokenizer.chat_template.")
}

/// Keys whose values are meant to be http(s) links.
fn url_expected(key: &str) -> bool {
    key.ends_with("url") || key.ends_with(".link") || key.ends_with(".doi")
}

fn metadata(ctx: &mut FileScan, g: &gguf::Gguf, loc: &Loc, depth: u32) {
    let rules = StringRules {
        code: code::GGF007,
        url: code::GGF008,
        url_expected,
    };
    let mut templates = 0usize;
    for kv in &g.kvs {
        let key = kv.key.as_str();
        if is_template_key(key) {
            templates += 1;
            if templates > MAX_TEMPLATES {
                if templates == MAX_TEMPLATES + 1 {
                    ctx.incomplete = true;
                    ctx.add(
                        code::HFR002,
                        Severity::High,
                        loc,
                        Some(kv.offset),
                        format!(
                            "more than {MAX_TEMPLATES} chat templates; the rest were not analysed"
                        ),
                        None,
                    );
                }
                continue;
            }
            match &kv.value {
                Value::Str(s) => {
                    let src = String::from_utf8_lossy(s);
                    ctx.feature(assay_advisories::Feature::GgufChatTemplate, loc);
                    check_template(ctx, &loc.child(key), key, &src);
                }
                other => ctx.add(
                    code::GGF009,
                    Severity::Medium,
                    loc,
                    Some(kv.offset),
                    format!("{key} is {}, not a string", other.type_name()),
                    None,
                ),
            }
            continue;
        }
        // Tokenizer data (vocabularies, merges, a whole tokenizer.json) is model text, in
        // which code-like tokens are normal.
        if key.starts_with("tokenizer.") {
            continue;
        }
        match &kv.value {
            Value::Str(s) => {
                let text = String::from_utf8_lossy(s);
                check_string(ctx, loc, depth, &rules, key, key, &text, Some(kv.offset));
            }
            Value::Array(a) => {
                for s in a.strings().take(MAX_ARRAY_STRINGS_CHECKED) {
                    let text = String::from_utf8_lossy(s);
                    check_string(ctx, loc, depth, &rules, key, key, &text, Some(kv.offset));
                }
            }
            _ => {}
        }
    }
}

fn offset_of_key(g: &gguf::Gguf, key: &str) -> Option<u64> {
    g.kvs
        .iter()
        .rev()
        .find(|kv| kv.key == key)
        .map(|kv| kv.offset)
}

fn clip(s: &str) -> String {
    s.chars().take(80).collect()
}

#[cfg(test)]
mod tests {

    use std::io::Write;

    fn s(v: &mut Vec<u8>, x: &str) {
        v.extend_from_slice(&(x.len() as u64).to_le_bytes());
        v.extend_from_slice(x.as_bytes());
    }

    /// A 10 GiB GGUF file (sparse) is scanned from its header alone.
    #[test]
    fn ten_gigabyte_sparse_file_scans_from_the_header() {
        const SIZE: u64 = 10 << 30;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.gguf");
        let mut v = b"GGUF".to_vec();
        v.extend_from_slice(&3u32.to_le_bytes());
        v.extend_from_slice(&1u64.to_le_bytes()); // tensors
        v.extend_from_slice(&2u64.to_le_bytes()); // metadata pairs
        s(&mut v, "general.architecture");
        v.extend_from_slice(&8u32.to_le_bytes());
        s(&mut v, "llama");
        s(&mut v, "tokenizer.chat_template");
        v.extend_from_slice(&8u32.to_le_bytes());
        s(
            &mut v,
            "{% for m in messages %}{{ '<|' + m['role'] + '|>' + m['content'] }}{% endfor %}",
        );
        s(&mut v, "output.weight");
        v.extend_from_slice(&2u32.to_le_bytes()); // n_dims
        v.extend_from_slice(&(SIZE / 2 / 4096).to_le_bytes());
        v.extend_from_slice(&4096u64.to_le_bytes());
        v.extend_from_slice(&1u32.to_le_bytes()); // F16
        v.extend_from_slice(&0u64.to_le_bytes()); // offset
        while !v.len().is_multiple_of(32) {
            v.push(0);
        }
        let data_start = v.len() as u64;
        let mut f = std::fs::File::create(&path).unwrap();
        f.write_all(&v).unwrap();
        f.set_len(data_start + SIZE).unwrap();
        drop(f);
        let report = crate::test_support::scan_structure_only(path);
        crate::test_support::assert_clean(&report, "gguf");
    }
}
