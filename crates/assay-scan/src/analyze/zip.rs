//! zip archives: PyTorch checkpoints, TorchScript, `.npz`, and plain zips. Every member is
//! scanned by content, whatever its name; tensor storages that the archive's own pickles
//! reference are treated as data (checked only for executable content).

use crate::blob::{Blob, SpillWriter};
use crate::engine::{FileScan, Format, Loc};
use crate::rules::code;
use assay_formats::pickle::PickleAnalysis;
use assay_formats::sniff::{self, Sniffed};
use assay_formats::zip::{self, ZipEntry, ZipReadError};
use assay_report::Severity;
use assay_tensor::MemberAnalysis;
use std::collections::HashSet;

enum Body<'d> {
    Slice(&'d [u8]),
    Owned(Blob),
}

impl std::ops::Deref for Body<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Body::Slice(s) => s,
            Body::Owned(b) => b,
        }
    }
}

/// Scans the archive and its members; returns its format and the analysis of its
/// PyTorch `data.pkl` member, for the tensor stage (which reads the weights it names
/// without unpickling it again).
pub fn scan(
    ctx: &mut FileScan,
    data: &[u8],
    loc: &Loc,
    depth: u32,
) -> (Format, Option<MemberAnalysis>) {
    let mut data_pkl = None;
    let format = scan_members(ctx, data, loc, depth, &mut data_pkl);
    (format, data_pkl)
}

fn scan_members(
    ctx: &mut FileScan,
    data: &[u8],
    loc: &Loc,
    depth: u32,
    data_pkl: &mut Option<MemberAnalysis>,
) -> Format {
    let ar = match zip::parse(data, &ctx.limits.zip) {
        Ok(a) => a,
        Err(zip::ZipError::TooManyEntries(n)) => {
            ctx.incomplete = true;
            ctx.add(
                code::ARC003,
                Severity::High,
                loc,
                None,
                format!("zip archive has more than {n} entries; not scanned"),
                None,
            );
            return Format::Zip;
        }
        // Sniffed by an end record alone (no local header at the start): neither PyTorch
        // nor zipfile can open it either, so it is not a zip.
        Err(_) if !data.starts_with(b"PK") => return Format::Unknown,
        Err(e) => {
            ctx.incomplete = true;
            ctx.add(
                code::ARC004,
                Severity::High,
                loc,
                None,
                format!("zip archive is corrupt: {e}"),
                None,
            );
            return Format::Zip;
        }
    };
    for a in &ar.anomalies {
        ctx.add(
            code::ZIP002,
            Severity::High,
            loc,
            None,
            format!("zip structure: {a}"),
            None,
        );
    }
    // Whatever sits before the archive is its own artifact (pickle + zip polyglots).
    if ar.prefix_len > 0
        && let Some(prefix) = data.get(..ar.prefix_len as usize)
    {
        let child = loc.child("@0");
        if ctx.enter_member(&child) && ctx.scan_bytes(prefix, &child, depth + 1) != Format::Unknown
        {
            ctx.add(
                code::ARC005,
                Severity::Medium,
                loc,
                Some(0),
                "another artifact precedes the zip archive in the same file".into(),
                Some(crate::engine::hex_prefix(prefix)),
            );
        }
    }

    let is_pickle_name = |n: &str| n.ends_with(".pkl") || n.ends_with(".debug_pkl");
    // Pickles first, so that the storages they reference are known.
    let mut order: Vec<&ZipEntry> = ar.entries.iter().filter(|e| !e.is_dir()).collect();
    order.sort_by_key(|e| !is_pickle_name(&e.name));
    let mut storage_keys: HashSet<String> = HashSet::new();
    let mut pickle_members: Vec<String> = Vec::new();
    let mut storages_seen: Vec<String> = Vec::new();

    for e in order {
        let child = loc.child(&e.name);
        if !ctx.enter_member(&child) {
            break;
        }
        if super::escapes(&e.name) {
            ctx.feature(assay_advisories::Feature::ArchivePathTraversal, loc);
            ctx.add(
                code::ZIP001,
                Severity::High,
                &child,
                Some(e.local_offset),
                "zip member name escapes the extraction folder".into(),
                Some(e.name.clone()),
            );
        }
        if !e.anomalies.is_empty() {
            ctx.add(
                code::ZIP002,
                Severity::High,
                &child,
                Some(e.local_offset),
                "zip member headers are inconsistent (readers disagree on this member)".into(),
                Some(e.anomalies.join("; ")),
            );
        }
        let storage = storage_member(&e.name).is_some_and(|k| storage_keys.contains(k));
        let (body, complete) = match read(ctx, data, e, &child) {
            Some(b) => b,
            None => continue,
        };
        if e.is_symlink() {
            let target = String::from_utf8_lossy(&body[..body.len().min(4096)]).into_owned();
            if super::link_escapes(&e.name, &target) {
                ctx.add(
                    code::ARC002,
                    Severity::High,
                    &child,
                    None,
                    "symbolic link points outside the archive".into(),
                    Some(format!("{} -> {target}", e.name)),
                );
            }
            continue;
        }
        let sniffed = sniff::sniff(&body);
        // Each pickle member is analysed once, here, and the analysis handed on.
        let mut analysis = None;
        // A member named like a storage is only data if its bytes look like data: a
        // pickle, array or archive stored under a storage name is scanned as what it is.
        let storage = storage && is_data(sniffed, &body, ctx, &mut analysis);
        if storage {
            storages_seen.push(e.name.clone());
            // Tensor bytes: only an executable header is meaningful here; payloads hidden
            // in weights are the tensor stage's work.
            if let Some(kind) = sniff::executable(&body) {
                ctx.add(
                    code::EXE001,
                    Severity::High,
                    &child,
                    Some(0),
                    format!("{} stored as a tensor storage", kind.name()),
                    Some(crate::engine::hex_prefix(&body)),
                );
            }
            continue;
        }
        // Storages were handled above; every other member's CRC is checked (crc32fast
        // runs at memory speed).
        if zip::crc32(&body) != e.crc32 {
            ctx.add(
                code::ZIP002,
                Severity::High,
                &child,
                Some(e.local_offset),
                "CRC-32 mismatch: strict readers refuse this member, PyTorch reads it".into(),
                Some(format!("declared {:08x}", e.crc32)),
            );
        }
        if matches!(sniffed, Sniffed::Pickle | Sniffed::MaybePickle) {
            let a = analysis
                .unwrap_or_else(|| assay_formats::pickle::analyze(&body, &ctx.limits.pickle));
            for p in &a.persistent {
                if let Some(k) = &p.storage_key {
                    storage_keys.insert(k.clone());
                }
            }
            if sniffed == Sniffed::Pickle || a.names_anything() || a.pickles > 0 {
                pickle_members.push(e.name.clone());
            }
            analysis = Some(a);
        }
        let (_, parsed) = ctx.scan_parsed(&body, &child, depth + 1, analysis);
        // The tensor view reads the `data.pkl` with the shortest name (the first of them
        // in the archive); when these are its complete bytes, it takes this analysis of
        // them. Only that one is kept (pickle members come in archive order).
        let shorter = data_pkl
            .as_ref()
            .is_none_or(|d| e.name.len() < d.name.len());
        if complete
            && shorter
            && (e.name == "data.pkl" || e.name.ends_with("/data.pkl"))
            && let Some(analysis) = parsed.pickle
        {
            *data_pkl = Some(MemberAnalysis {
                name: e.name.clone(),
                local_offset: e.local_offset,
                analysis,
            });
        }
    }

    // A Keras v3 archive: its config.json decides what the loader imports and runs.
    if let Some(format) = crate::analyze::keras::scan_archive(ctx, data, &ar, loc, depth) {
        return format;
    }

    let names: Vec<&str> = ar.entries.iter().map(|e| e.name.as_str()).collect();
    let torchscript = names.iter().any(|n| n.ends_with("constants.pkl"))
        && names
            .iter()
            .any(|n| n.contains("/code/") || n.starts_with("code/"));
    let torch_markers = names.iter().any(|n| {
        n.ends_with("/data.pkl")
            || n == &"data.pkl"
            || n.ends_with("/byteorder")
            || n.ends_with(".data/serialization_id")
            || (n.ends_with("/version") && names.iter().any(|m| storage_member(m).is_some()))
    });
    let npz = !names.is_empty() && names.iter().all(|n| n.ends_with(".npy"));
    if torch_markers || torchscript {
        let odd: Vec<&String> = pickle_members
            .iter()
            .filter(|n| !is_pickle_name(n))
            .collect();
        let unreferenced = names
            .iter()
            .filter(|n| storage_member(n).is_some_and(|k| !storage_keys.contains(k)))
            .count();
        let mut problems = Vec::new();
        if !names
            .iter()
            .any(|n| n.ends_with("data.pkl") || n.ends_with("constants.pkl"))
        {
            problems.push("no data.pkl".to_string());
        }
        if !odd.is_empty() {
            problems.push(format!(
                "pickles under unexpected names: {}",
                odd.iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if unreferenced > 0 {
            problems.push(format!(
                "{unreferenced} storage member(s) that no pickle references"
            ));
        }
        if !problems.is_empty() {
            ctx.add(
                code::TCH001,
                Severity::Medium,
                loc,
                None,
                format!("unusual PyTorch archive layout: {}", problems.join("; ")),
                None,
            );
        }
    }
    if torchscript {
        Format::TorchScript
    } else if torch_markers {
        Format::PytorchZip
    } else if npz {
        Format::Npz
    } else {
        Format::Zip
    }
}

/// Tensor bytes, as far as sniffing can tell: no recognised format, or something that
/// only starts like a pickle but names nothing. A pickle's analysis is left in `analysis`.
fn is_data(
    sniffed: Sniffed,
    body: &[u8],
    ctx: &FileScan,
    analysis: &mut Option<PickleAnalysis>,
) -> bool {
    match sniffed {
        Sniffed::Unknown => true,
        Sniffed::Pickle | Sniffed::MaybePickle => {
            // Random weights start with a PROTO byte pair in about one storage in 16,000
            // and then read as a few opcodes before breaking: only a stream that parses
            // to STOP and names or calls something is a pickle stored as a storage.
            let a = analysis.insert(assay_formats::pickle::analyze(body, &ctx.limits.pickle));
            a.pickles == 0 || (!a.names_anything() && a.calls.is_empty())
        }
        _ => false,
    }
}

/// `prefix/data/KEY` (torch.save) or `prefix/constants/KEY` (TorchScript) → `KEY`.
fn storage_member(name: &str) -> Option<&str> {
    let (dir, key) = name.rsplit_once('/')?;
    let last = dir.rsplit('/').next().unwrap_or(dir);
    (last == "data" || last == "constants")
        .then_some(key)
        .filter(|k| !k.is_empty() && !k.contains('.'))
}

/// A member's bytes, and whether they are all of it (false: what was recovered before
/// the damage).
fn read<'d>(
    ctx: &mut FileScan,
    data: &'d [u8],
    e: &ZipEntry,
    loc: &Loc,
) -> Option<(Body<'d>, bool)> {
    if let Some(r) = zip::stored_data(data, e) {
        return match r {
            Ok(s) => Some((Body::Slice(s), true)),
            Err(err) => {
                unreadable(ctx, loc, e, &err);
                None
            }
        };
    }
    let budget = ctx
        .limits
        .max_expanded_per_file
        .saturating_sub(ctx.expanded);
    let mut out = SpillWriter::new(e.compressed_size.max(1), ctx.limits, budget);
    let res = zip::extract_to(data, e, &mut out, u64::MAX);
    ctx.expanded += out.written;
    if let Some(stop) = out.stopped {
        crate::analyze::compressed::bomb(
            ctx,
            loc,
            "zip member",
            e.compressed_size,
            out.written,
            stop,
        );
        return None;
    }
    let written = out.written;
    let blob = out.finish().ok()?;
    match res {
        Ok(_) => Some((Body::Owned(blob), true)),
        Err(err) => {
            unreadable(ctx, loc, e, &err);
            // Scan what was recovered before the damage.
            (written > 0).then_some((Body::Owned(blob), false))
        }
    }
}

fn unreadable(ctx: &mut FileScan, loc: &Loc, e: &ZipEntry, err: &ZipReadError) {
    ctx.incomplete = true;
    ctx.add(
        code::ZIP004,
        Severity::High,
        loc,
        Some(e.local_offset),
        format!("zip member could not be read: {err}"),
        Some(e.name.clone()),
    );
}
