//! tar archives (including PyTorch's legacy tar checkpoints).

use crate::engine::{FileScan, Format, Loc};
use crate::rules::code;
use assay_formats::tar::{TarKind, parse};
use assay_report::Severity;

pub fn scan(ctx: &mut FileScan, data: &[u8], loc: &Loc, depth: u32) -> Format {
    // `pickle.load` (and `torch.load`'s fallback) reads a tar file from its first byte:
    // a header whose name field is a protocol-0 pickle runs as one.
    if data
        .first()
        .is_some_and(|&b| assay_formats::pickle::opcodes::name(b).is_some())
    {
        crate::analyze::pickle::scan(ctx, data, &loc.child("@0"), depth + 1, false);
    }
    let ar = parse(data, &ctx.limits.tar);
    for p in &ar.problems {
        ctx.incomplete = true;
        ctx.add(
            code::ARC004,
            Severity::High,
            loc,
            None,
            format!("tar archive is corrupt: {p}"),
            None,
        );
    }
    let names: Vec<&str> = ar
        .members
        .iter()
        .map(|m| m.name.trim_start_matches("./"))
        .collect();
    let torch = ["sys_info", "pickle", "storages"]
        .iter()
        .all(|n| names.contains(n));
    for m in &ar.members {
        let child = loc.child(&m.name);
        if !ctx.enter_member(&child) {
            break;
        }
        if super::escapes(&m.name) {
            ctx.feature(assay_advisories::Feature::ArchivePathTraversal, loc);
            ctx.add(
                code::ZIP001,
                Severity::High,
                &child,
                Some(m.data_offset as u64),
                "tar member name escapes the extraction folder".into(),
                Some(m.name.clone()),
            );
        }
        match m.kind {
            TarKind::Symlink | TarKind::Hardlink => {
                let target = m.link_target.clone().unwrap_or_default();
                if super::link_escapes(&m.name, &target) {
                    let kind = if m.kind == TarKind::Symlink {
                        "symbolic"
                    } else {
                        "hard"
                    };
                    ctx.add(
                        code::ARC002,
                        Severity::High,
                        &child,
                        None,
                        format!("{kind} link points outside the archive"),
                        Some(format!("{} -> {target}", m.name)),
                    );
                }
            }
            TarKind::Device | TarKind::Fifo => {
                ctx.add(
                    code::ZIP001,
                    Severity::High,
                    &child,
                    None,
                    "tar member is a device or FIFO node".into(),
                    Some(m.name.clone()),
                );
            }
            TarKind::File | TarKind::Other(_) => {
                let end = m
                    .data_offset
                    .saturating_add(m.size as usize)
                    .min(data.len());
                if let Some(body) = data.get(m.data_offset..end) {
                    ctx.scan_bytes(body, &child, depth + 1);
                }
            }
            TarKind::Dir => {}
        }
    }
    if torch {
        Format::PytorchTar
    } else {
        Format::Tar
    }
}
