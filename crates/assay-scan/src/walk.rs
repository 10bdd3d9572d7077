//! Turning the user's paths into the list of files to scan.

use std::path::{Path, PathBuf};

/// One file to scan, and how to show its path.
#[derive(Debug, Clone)]
pub struct Input {
    /// Where to read the bytes (for HF-cache symlinks, the blob the link points at).
    pub read_from: PathBuf,
    /// The path shown in the report.
    pub display: String,
}

/// A symlink that leaves the scanned folder and was not followed.
#[derive(Debug, Clone)]
pub struct EscapingLink {
    pub display: String,
    pub target: String,
}

#[derive(Debug, Default)]
pub struct Walk {
    pub inputs: Vec<Input>,
    pub escaping_links: Vec<EscapingLink>,
}

/// Directories that are tool state, not model content.
const SKIPPED_DIRS: &[&str] = &[".git", ".hg", ".svn"];

pub fn walk(paths: &[PathBuf]) -> std::io::Result<Walk> {
    let mut w = Walk::default();
    for root in paths {
        let meta = std::fs::symlink_metadata(root)?;
        if !meta.is_dir() {
            // A file named on the command line is scanned wherever it points.
            std::fs::metadata(root)?;
            w.inputs.push(Input {
                read_from: root.clone(),
                display: display(root),
            });
            continue;
        }
        let root_canon = root.canonicalize()?;
        let it = walkdir::WalkDir::new(root)
            .follow_links(false)
            .sort_by_file_name()
            .into_iter()
            .filter_entry(|e| {
                !(e.file_type().is_dir()
                    && e.depth() > 0
                    && SKIPPED_DIRS.contains(&e.file_name().to_string_lossy().as_ref()))
            });
        for entry in it {
            let entry = entry.map_err(|e| std::io::Error::other(e.to_string()))?;
            let ft = entry.file_type();
            let path = entry.path();
            if ft.is_file() {
                w.inputs.push(Input {
                    read_from: path.to_path_buf(),
                    display: display(path),
                });
            } else if ft.is_symlink() {
                link(&mut w, path, &root_canon);
            }
        }
    }
    Ok(w)
}

fn link(w: &mut Walk, path: &Path, root: &Path) {
    let target_text = std::fs::read_link(path)
        .map(|t| t.display().to_string())
        .unwrap_or_default();
    let Ok(target) = path.canonicalize() else {
        // Dangling: nothing to read, but a link out of the folder is still reported.
        if Path::new(&target_text).is_absolute() || target_text.contains("..") {
            w.escaping_links.push(EscapingLink {
                display: display(path),
                target: target_text,
            });
        }
        return;
    };
    if target.starts_with(root) {
        return; // scanned as itself
    }
    // A Hugging Face cache snapshot links into the cache's own `blobs/` folder.
    let in_hf_cache = root.ancestors().any(|a| {
        let blobs = a.join("blobs");
        blobs.is_dir() && target.starts_with(&blobs)
    });
    if in_hf_cache && target.is_file() {
        w.inputs.push(Input {
            read_from: target,
            display: display(path),
        });
    } else {
        w.escaping_links.push(EscapingLink {
            display: display(path),
            target: target.display().to_string(),
        });
    }
}

fn display(p: &Path) -> String {
    let s = p.to_string_lossy().replace('\\', "/");
    s.strip_prefix("./").map(str::to_string).unwrap_or(s)
}
