//! Walking a model the way the reference tool does, and hashing its files (or shards)
//! in parallel with streaming reads, so memory stays flat whatever the model's size.
//!
//! The reference's rules (`model_signing.hashing.Config`, `_serialization/file.py`):
//! - every regular file under the model is a resource, hidden files included;
//! - left out: the paths to ignore (by default the top-level `.git`, `.gitattributes`,
//!   `.github` and `.gitignore`, plus the signature file itself when it lies inside the
//!   model); a path leaves out everything under it, matched by whole components, so a
//!   nested `sub/.gitignore` or a top-level `.gitmodules` *is* signed;
//! - a symbolic link is an error unless links are allowed; then a link to a file is
//!   hashed by its target's content under the link's name, and a link to a folder is
//!   neither hashed nor descended (Python's `glob("**/*")` does not follow it);
//! - anything that is not a file or a folder (socket, pipe, device, broken link) is an
//!   error;
//! - a model that is a single file has one resource named `.`.
//!
//! One deliberate difference: ignored folders are not descended at all (the reference
//! walks `.git` and only then drops its files), so a special file inside `.git` is not an
//! error here and a large `.git` costs nothing.

use crate::error::HashError;
use crate::manifest::{HASH_TYPE, Manifest, Method, Resource, Serialization};
use rayon::prelude::*;
use sha2::{Digest, Sha256};
use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// The paths the reference ignores by default (`--ignore-git-paths`).
pub const GIT_PATHS: [&str; 4] = [".git", ".gitattributes", ".github", ".gitignore"];
/// The reference's default shard size for the `shards` method.
pub const DEFAULT_SHARD_SIZE: u64 = 1_000_000_000;
/// Deepest folder nesting walked.
pub const MAX_DEPTH: usize = 512;
/// Most files in one model.
pub const MAX_FILES: usize = 10_000_000;
/// Bytes read per `read` call; one buffer per hashing thread.
const READ_CHUNK: usize = 4 << 20;

/// How to walk and hash a model.
#[derive(Debug, Clone)]
pub struct HashOptions {
    pub method: Method,
    pub allow_symlinks: bool,
    /// Leave out [`GIT_PATHS`].
    pub ignore_git_paths: bool,
    /// Paths relative to the model (`/`-separated) to leave out, with everything under
    /// them.
    pub ignore_paths: Vec<String>,
    /// Hash only these resource paths (verification of only the signed files). Paths
    /// that are missing are simply absent from the result.
    pub only: Option<Vec<String>>,
    /// Hashing threads; 0 means one per core.
    pub jobs: usize,
}

impl Default for HashOptions {
    fn default() -> Self {
        HashOptions {
            method: Method::Files,
            allow_symlinks: false,
            ignore_git_paths: true,
            ignore_paths: Vec::new(),
            only: None,
            jobs: 0,
        }
    }
}

/// A path relative to the model, as components, with `.` removed and `..` resolved;
/// `None` when it leaves the model.
pub(crate) fn normalize_relative(p: &str) -> Option<Vec<String>> {
    if p.starts_with('/') {
        return None;
    }
    let mut out: Vec<String> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop()?;
            }
            c => out.push(c.to_string()),
        }
    }
    Some(out)
}

struct Ignore(Vec<Vec<String>>);

impl Ignore {
    fn new(opts: &HashOptions) -> (Ignore, Vec<String>) {
        let mut list: Vec<Vec<String>> = opts
            .ignore_paths
            .iter()
            .filter_map(|p| normalize_relative(p))
            .collect();
        if opts.ignore_git_paths {
            list.extend(GIT_PATHS.iter().map(|p| vec![p.to_string()]));
        }
        // An empty path (the model itself) would ignore everything; the reference
        // records it as "." and, since Python's relative_to(".") check is lexical, it
        // does ignore everything. Keep that, but record it the same way.
        let mut recorded: Vec<String> = list
            .iter()
            .map(|c| {
                if c.is_empty() {
                    ".".into()
                } else {
                    c.join("/")
                }
            })
            .collect();
        recorded.sort();
        recorded.dedup();
        (Ignore(list), recorded)
    }

    fn matches(&self, rel: &[&str]) -> bool {
        self.0
            .iter()
            .any(|ig| ig.len() <= rel.len() && ig.iter().zip(rel).all(|(a, b)| a == b))
    }
}

/// One unit of hashing: a whole file, or a byte range of one.
struct Job {
    name: String,
    path: PathBuf,
    range: Option<(u64, u64)>,
    size: u64,
}

/// Walks and hashes the model at `model` (a folder or a single file).
pub fn hash_model(model: &Path, opts: &HashOptions) -> Result<Manifest, HashError> {
    let (ignore, recorded) = Ignore::new(opts);
    let files = match &opts.only {
        None => walk(model, opts.allow_symlinks, &ignore)?,
        Some(names) => listed(model, names, opts.allow_symlinks, &ignore)?,
    };
    let jobs = to_jobs(files, opts.method);
    let serialization = Serialization {
        method: opts.method,
        hash_type: HASH_TYPE.into(),
        allow_symlinks: opts.allow_symlinks,
        ignore_paths: recorded,
    };
    let algorithm = serialization.resource_algorithm();
    let digests = run_parallel(opts.jobs, || hash_jobs(&jobs))??;
    let mut manifest = Manifest {
        model_name: model_name(model),
        serialization,
        resources: jobs
            .iter()
            .zip(digests)
            .map(|(j, d)| Resource {
                name: j.name.clone(),
                algorithm: algorithm.clone(),
                digest: d.to_vec(),
            })
            .collect(),
    };
    manifest.sort();
    Ok(manifest)
}

/// The model's name as the reference records it: the last path component, or the
/// resolved folder's name for `.` and `..`.
pub fn model_name(model: &Path) -> String {
    let name = model.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if !name.is_empty() && name != ".." {
        return name.to_string();
    }
    fs::canonicalize(model)
        .ok()
        .and_then(|p| p.file_name().and_then(|n| n.to_str()).map(str::to_string))
        .unwrap_or_default()
}

struct FileEntry {
    name: String,
    path: PathBuf,
    size: u64,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> HashError + '_ {
    move |source| HashError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Classifies `path`: `Some(size)` for a file to hash, `None` for a folder (or a link
/// to one, which is not descended), an error for what the reference refuses.
fn classify(path: &Path, allow_symlinks: bool) -> Result<Kind, HashError> {
    let meta = fs::symlink_metadata(path).map_err(io_err(path))?;
    let ft = meta.file_type();
    if ft.is_symlink() {
        if !allow_symlinks {
            return Err(HashError::Symlink {
                path: path.to_path_buf(),
            });
        }
        return match fs::metadata(path) {
            Ok(m) if m.is_file() => Ok(Kind::File(m.len())),
            Ok(m) if m.is_dir() => Ok(Kind::LinkedDir),
            _ => Err(HashError::NotFileOrDir {
                path: path.to_path_buf(),
            }),
        };
    }
    if ft.is_file() {
        Ok(Kind::File(meta.len()))
    } else if ft.is_dir() {
        Ok(Kind::Dir)
    } else {
        Err(HashError::NotFileOrDir {
            path: path.to_path_buf(),
        })
    }
}

enum Kind {
    File(u64),
    Dir,
    LinkedDir,
}

fn walk(model: &Path, allow_symlinks: bool, ignore: &Ignore) -> Result<Vec<FileEntry>, HashError> {
    let mut out = Vec::new();
    match classify(model, allow_symlinks)? {
        Kind::File(size) => {
            if !ignore.matches(&[]) {
                out.push(FileEntry {
                    name: ".".into(),
                    path: model.to_path_buf(),
                    size,
                });
            }
            return Ok(out);
        }
        Kind::Dir | Kind::LinkedDir => {}
    }
    if ignore.matches(&[]) {
        return Ok(out);
    }
    // (folder on disk, its components relative to the model)
    let mut stack: Vec<(PathBuf, Vec<String>)> = vec![(model.to_path_buf(), Vec::new())];
    while let Some((dir, rel)) = stack.pop() {
        if rel.len() >= MAX_DEPTH {
            return Err(HashError::TooDeep {
                path: dir,
                limit: MAX_DEPTH,
            });
        }
        for entry in fs::read_dir(&dir).map_err(io_err(&dir))? {
            let entry = entry.map_err(io_err(&dir))?;
            let path = entry.path();
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                return Err(HashError::NonUtf8Name { path });
            };
            let mut child: Vec<String> = rel.clone();
            child.push(name);
            let child_refs: Vec<&str> = child.iter().map(String::as_str).collect();
            if ignore.matches(&child_refs) {
                continue;
            }
            match classify(&path, allow_symlinks)? {
                Kind::File(size) => {
                    if out.len() >= MAX_FILES {
                        return Err(HashError::TooManyFiles { limit: MAX_FILES });
                    }
                    out.push(FileEntry {
                        name: child.join("/"),
                        path,
                        size,
                    });
                }
                Kind::Dir => stack.push((path, child)),
                Kind::LinkedDir => {}
            }
        }
    }
    Ok(out)
}

/// Only the named files (the signed ones); names that are not plain relative paths
/// inside the model are never opened.
fn listed(
    model: &Path,
    names: &[String],
    allow_symlinks: bool,
    ignore: &Ignore,
) -> Result<Vec<FileEntry>, HashError> {
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for name in names {
        let Some(parts) = normalize_relative(name) else {
            continue;
        };
        // Only canonical names (no `.`, `..` or empty components): anything else was
        // not written by a signer walking a folder and is reported as removed.
        if parts.join("/") != *name && name != "." {
            continue;
        }
        let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
        if ignore.matches(&refs) || !seen.insert(name.clone()) {
            continue;
        }
        let path = if name == "." {
            model.to_path_buf()
        } else {
            model.join(parts.join("/"))
        };
        if fs::symlink_metadata(&path).is_err() {
            continue; // removed: reported by the comparison
        }
        if let Kind::File(size) = classify(&path, allow_symlinks)? {
            out.push(FileEntry {
                name: name.clone(),
                path,
                size,
            });
        }
    }
    Ok(out)
}

fn to_jobs(files: Vec<FileEntry>, method: Method) -> Vec<Job> {
    let mut jobs = Vec::with_capacity(files.len());
    for f in files {
        match method {
            Method::Files => jobs.push(Job {
                name: f.name,
                path: f.path,
                range: None,
                size: f.size,
            }),
            Method::Shards { shard_size } => {
                let step = shard_size.max(1);
                let mut start = 0;
                while start < f.size {
                    let end = start.saturating_add(step).min(f.size);
                    jobs.push(Job {
                        name: format!("{}:{start}:{end}", f.name),
                        path: f.path.clone(),
                        range: Some((start, end)),
                        size: end - start,
                    });
                    start = end;
                }
            }
        }
    }
    jobs
}

pub(crate) fn run_parallel<T: Send>(
    threads: usize,
    f: impl FnOnce() -> T + Send,
) -> Result<T, HashError> {
    if threads == 0 {
        return Ok(f());
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| HashError::Threads(e.to_string()))?;
    Ok(pool.install(f))
}

/// Digests in `jobs` order; big jobs are started first so one large file does not end
/// up last on a single core.
fn hash_jobs(jobs: &[Job]) -> Result<Vec<[u8; 32]>, HashError> {
    let mut order: Vec<usize> = (0..jobs.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(jobs[i].size));
    let hashed: Vec<(usize, [u8; 32])> = order
        .par_iter()
        .map(|&i| {
            READ_BUFFER.with_borrow_mut(|buf| {
                if buf.is_empty() {
                    buf.resize(READ_CHUNK, 0);
                }
                hash_job(&jobs[i], buf).map(|d| (i, d))
            })
        })
        .collect::<Result<_, _>>()?;
    let mut out = vec![[0u8; 32]; jobs.len()];
    for (i, d) in hashed {
        out[i] = d;
    }
    Ok(out)
}

thread_local! {
    /// One read buffer per hashing thread, for the life of the thread.
    static READ_BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn hash_job(job: &Job, buf: &mut [u8]) -> Result<[u8; 32], HashError> {
    let mut f = File::open(&job.path).map_err(io_err(&job.path))?;
    let mut h = Sha256::new();
    match job.range {
        None => loop {
            let n = read_some(&mut f, buf, &job.path)?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        },
        Some((start, end)) => {
            f.seek(SeekFrom::Start(start)).map_err(io_err(&job.path))?;
            let mut left = end - start;
            while left > 0 {
                let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                let n = read_some(&mut f, &mut buf[..want], &job.path)?;
                if n == 0 {
                    return Err(HashError::ChangedWhileHashing {
                        path: job.path.clone(),
                    });
                }
                h.update(&buf[..n]);
                left -= n as u64;
            }
        }
    }
    Ok(h.finalize().into())
}

fn read_some(f: &mut File, buf: &mut [u8], path: &Path) -> Result<usize, HashError> {
    loop {
        match f.read(buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_err(path)(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, rel: &str, data: &[u8]) {
        let p = root.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, data).unwrap();
    }

    fn names(m: &Manifest) -> Vec<&str> {
        m.resources.iter().map(|r| r.name.as_str()).collect()
    }

    #[test]
    fn skips_top_level_git_paths_only_and_sorts_like_the_reference() {
        let t = tempfile::tempdir().unwrap();
        let m = t.path().join("model");
        for f in [
            "a.txt",
            "a/x",
            "a-c/z",
            ".git/config",
            ".gitignore",
            ".gitmodules",
            ".github/w.yml",
            "sub/.gitignore",
            ".hidden",
        ] {
            write(&m, f, f.as_bytes());
        }
        let man = hash_model(&m, &HashOptions::default()).unwrap();
        assert_eq!(
            names(&man),
            [
                ".gitmodules",
                ".hidden",
                "a/x",
                "a-c/z",
                "a.txt",
                "sub/.gitignore"
            ]
        );
        assert_eq!(man.model_name, "model");
        assert_eq!(
            man.serialization.ignore_paths,
            [".git", ".gitattributes", ".github", ".gitignore"]
        );
        assert_eq!(
            hex::encode(&man.resources[2].digest),
            hex::encode(Sha256::digest(b"a/x"))
        );
    }

    #[test]
    fn ignore_paths_match_whole_components() {
        let t = tempfile::tempdir().unwrap();
        for f in ["model.sig", "model.sig2", "d/x", "dd/x"] {
            write(t.path(), f, b"1");
        }
        let opts = HashOptions {
            ignore_paths: vec!["model.sig".into(), "./d/".into(), "../outside".into()],
            ignore_git_paths: false,
            ..Default::default()
        };
        let man = hash_model(t.path(), &opts).unwrap();
        assert_eq!(names(&man), ["dd/x", "model.sig2"]);
        assert_eq!(man.serialization.ignore_paths, ["d", "model.sig"]);
    }

    #[test]
    fn single_file_model_is_named_dot() {
        let t = tempfile::tempdir().unwrap();
        write(t.path(), "w.bin", b"abc\n");
        let man = hash_model(&t.path().join("w.bin"), &HashOptions::default()).unwrap();
        assert_eq!(names(&man), ["."]);
        assert_eq!(man.model_name, "w.bin");
    }

    #[test]
    fn symlinks_refused_unless_allowed_and_dir_links_not_followed() {
        let t = tempfile::tempdir().unwrap();
        let m = t.path().join("m");
        write(&m, "f", b"1");
        write(t.path(), "ext/t", b"target");
        write(t.path(), "ext/d/u", b"u");
        std::os::unix::fs::symlink(t.path().join("ext/t"), m.join("link")).unwrap();
        std::os::unix::fs::symlink(t.path().join("ext/d"), m.join("dlink")).unwrap();
        assert!(matches!(
            hash_model(&m, &HashOptions::default()),
            Err(HashError::Symlink { .. })
        ));
        let opts = HashOptions {
            allow_symlinks: true,
            ..Default::default()
        };
        let man = hash_model(&m, &opts).unwrap();
        assert_eq!(names(&man), ["f", "link"]);
        assert_eq!(man.resources[1].digest, Sha256::digest(b"target").to_vec());
        std::os::unix::fs::symlink(t.path().join("nowhere"), m.join("broken")).unwrap();
        assert!(matches!(
            hash_model(&m, &opts),
            Err(HashError::NotFileOrDir { .. })
        ));
    }

    #[test]
    fn shards_cover_files_and_skip_empty_ones() {
        let t = tempfile::tempdir().unwrap();
        write(t.path(), "big", &[7u8; 25]);
        write(t.path(), "empty", b"");
        let opts = HashOptions {
            method: Method::Shards { shard_size: 10 },
            ..Default::default()
        };
        let man = hash_model(t.path(), &opts).unwrap();
        assert_eq!(names(&man), ["big:0:10", "big:10:20", "big:20:25"]);
        assert_eq!(man.resources[2].digest, Sha256::digest([7u8; 5]).to_vec());
        assert_eq!(man.resources[0].algorithm, "sha256-sharded-10");
    }

    #[test]
    fn parallel_hash_matches_sequential_digests() {
        let t = tempfile::tempdir().unwrap();
        let big: Vec<u8> = (0..(READ_CHUNK * 2 + 17))
            .map(|i| (i % 251) as u8)
            .collect();
        write(t.path(), "big", &big);
        for i in 0..50 {
            write(t.path(), &format!("s/{i}"), format!("{i}").as_bytes());
        }
        let opts = HashOptions {
            jobs: 3,
            ..Default::default()
        };
        let man = hash_model(t.path(), &opts).unwrap();
        assert_eq!(man.resources.len(), 51);
        let b = man.resources.iter().find(|r| r.name == "big").unwrap();
        assert_eq!(b.digest, Sha256::digest(&big).to_vec());
        let s7 = man.resources.iter().find(|r| r.name == "s/7").unwrap();
        assert_eq!(s7.digest, Sha256::digest(b"7").to_vec());
    }
}
