//! The advisory database: OSV records indexed by package, loaded from a folder of
//! JSON/YAML files or an OSV `all.zip` export, merged with the built-in set.

use crate::builtin::{self, BUILTIN};
use crate::feature::Feature;
use crate::osv::{self, Advisory, RecordError};
use crate::version::normalise_name;
use rayon::prelude::*;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

/// Largest single advisory record (real ones are kilobytes; long `versions` lists reach
/// a few hundred KiB).
pub const MAX_RECORD_BYTES: u64 = 8 << 20;
/// Largest database: the size of an `all.zip`, and the sum of the records read from it
/// or from a folder.
pub const MAX_DATABASE_BYTES: u64 = 2 << 30;
/// Records read (the PyPI export has tens of thousands).
pub const MAX_RECORDS: usize = 1_000_000;
/// Folder depth walked under a database folder.
pub const MAX_FOLDER_DEPTH: usize = 16;

/// A record that could not be read; loading goes on without it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadProblem {
    /// The file, or `all.zip!/member`.
    pub file: String,
    pub error: String,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read advisory database {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not an OSV all.zip export, a folder of OSV files or an OSV file: {why}")]
    Format { path: String, why: String },
    #[error("advisory database {path} is larger than {limit} bytes")]
    TooLarge { path: String, limit: u64 },
    #[error(
        "advisory database {path} holds no PyPI advisory{}; refusing to scan against an empty database",
        .first_problem.as_ref().map(|p| format!(" ({} record(s) unreadable, first: {}: {})", .problems, p.file, p.error)).unwrap_or_default()
    )]
    Empty {
        path: String,
        problems: usize,
        first_problem: Option<LoadProblem>,
    },
}

/// Advisories indexed by normalised package name.
#[derive(Debug, Clone)]
pub struct Database {
    advisories: Vec<Advisory>,
    by_package: HashMap<String, Vec<usize>>,
    /// Where the records came from (a path, or [`builtin::SOURCE`]).
    pub source: String,
    /// Records that could not be read.
    pub problems: Vec<LoadProblem>,
    /// Newest `modified` date of the loaded records (or the built-in table's as-of date).
    pub newest: Option<String>,
}

impl Database {
    fn index(advisories: Vec<Advisory>, source: String, problems: Vec<LoadProblem>) -> Self {
        let mut by_package: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, a) in advisories.iter().enumerate() {
            let mut seen = HashSet::new();
            for af in &a.affected {
                if seen.insert(af.package.as_str()) {
                    by_package.entry(af.package.clone()).or_default().push(i);
                }
            }
        }
        let newest = advisories
            .iter()
            .filter_map(|a| a.modified.as_deref())
            .filter(|m| osv::days_of(m).is_some())
            .max_by_key(|m| osv::days_of(m))
            .map(str::to_string);
        Database {
            advisories,
            by_package,
            source,
            problems,
            newest,
        }
    }

    /// The built-in advisories alone.
    pub fn builtin() -> Database {
        let mut db = Database::index(
            BUILTIN.advisories.clone(),
            builtin::SOURCE.into(),
            Vec::new(),
        );
        db.newest = BUILTIN.as_of.clone();
        db
    }

    /// Loads an OSV `all.zip`, a folder of OSV JSON/YAML files, or one OSV file. Records
    /// that cannot be read are kept in [`Database::problems`]; a database with no PyPI
    /// advisory at all is refused.
    pub fn load(path: &Path) -> Result<Database, LoadError> {
        let shown = path.display().to_string();
        let io = |source| LoadError::Io {
            path: shown.clone(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(io)?;
        let records: Vec<(String, Result<Vec<u8>, String>)> = if meta.is_dir() {
            read_folder(path, &shown)?
        } else {
            if meta.len() > MAX_DATABASE_BYTES {
                return Err(LoadError::TooLarge {
                    path: shown,
                    limit: MAX_DATABASE_BYTES,
                });
            }
            let bytes = std::fs::read(path).map_err(io)?;
            if bytes.starts_with(b"PK") {
                return Database::from_zip(&bytes, &shown);
            }
            if meta.len() > MAX_RECORD_BYTES {
                return Err(LoadError::Format {
                    path: shown,
                    why: format!(
                        "not a zip, and larger than one record may be ({MAX_RECORD_BYTES} bytes)"
                    ),
                });
            }
            vec![(shown.clone(), Ok(bytes))]
        };
        Database::from_records(records, shown)
    }

    /// An OSV `all.zip` export held in memory.
    pub fn from_zip(bytes: &[u8], shown: &str) -> Result<Database, LoadError> {
        use assay_formats::zip;
        let ar = zip::parse(
            bytes,
            &zip::ZipLimits {
                max_entries: MAX_RECORDS,
            },
        )
        .map_err(|e| LoadError::Format {
            path: shown.to_string(),
            why: e.to_string(),
        })?;
        let entries: Vec<&zip::ZipEntry> = ar
            .entries
            .iter()
            .filter(|e| !e.is_dir() && is_record_name(&e.name))
            .collect();
        let total: u64 = entries.iter().map(|e| e.size).fold(0, u64::saturating_add);
        if total > MAX_DATABASE_BYTES {
            return Err(LoadError::TooLarge {
                path: shown.to_string(),
                limit: MAX_DATABASE_BYTES,
            });
        }
        let parsed: Vec<(String, Result<Option<Advisory>, String>)> = entries
            .par_iter()
            .map(|e| {
                let name = format!("{shown}!/{}", e.name);
                let mut out = Vec::with_capacity(e.size.min(MAX_RECORD_BYTES) as usize);
                let r = zip::extract_to(bytes, e, &mut out, MAX_RECORD_BYTES)
                    .map_err(|err| err.to_string())
                    .and_then(|_| osv::parse_record(&out).map_err(|e: RecordError| e.to_string()));
                (name, r)
            })
            .collect();
        Database::collect(parsed, shown.to_string())
    }

    fn from_records(
        records: Vec<(String, Result<Vec<u8>, String>)>,
        shown: String,
    ) -> Result<Database, LoadError> {
        let parsed = records
            .into_par_iter()
            .map(|(name, bytes)| {
                let r = bytes.and_then(|b| osv::parse_record(&b).map_err(|e| e.to_string()));
                (name, r)
            })
            .collect();
        Database::collect(parsed, shown)
    }

    fn collect(
        parsed: Vec<(String, Result<Option<Advisory>, String>)>,
        shown: String,
    ) -> Result<Database, LoadError> {
        let mut advisories = Vec::new();
        let mut problems = Vec::new();
        for (file, r) in parsed {
            match r {
                Ok(Some(a)) => advisories.push(a),
                Ok(None) => {}
                Err(error) => problems.push(LoadProblem { file, error }),
            }
        }
        if advisories.is_empty() {
            return Err(LoadError::Empty {
                path: shown,
                problems: problems.len(),
                first_problem: problems.into_iter().next(),
            });
        }
        // Deterministic order whatever the parallel read did.
        advisories.sort_by(|a, b| a.id.cmp(&b.id));
        problems.sort_by(|a, b| a.file.cmp(&b.file));
        Ok(Database::index(advisories, shown, problems))
    }

    /// Adds the built-in advisories that this database does not already hold under one of
    /// their ids or aliases (a loaded record is newer and wins).
    pub fn with_builtin(self) -> Database {
        let known: HashSet<&str> = self
            .advisories
            .iter()
            .flat_map(|a| {
                std::iter::once(a.id.as_str()).chain(a.aliases.iter().map(String::as_str))
            })
            .collect();
        let extra: Vec<Advisory> = BUILTIN
            .advisories
            .iter()
            .filter(|b| !b.ids().iter().any(|i| known.contains(i)))
            .cloned()
            .collect();
        let mut all = self.advisories;
        all.extend(extra);
        let newest = self.newest;
        let mut db = Database::index(all, self.source, self.problems);
        db.newest = newest;
        db
    }

    /// Advisories that name this package (any spelling; PEP 503 applies).
    pub fn for_package(&self, name: &str) -> impl Iterator<Item = &Advisory> {
        self.by_package
            .get(&normalise_name(name))
            .into_iter()
            .flatten()
            .map(|&i| &self.advisories[i])
    }

    /// Versions listed explicitly across all records (a measure of the database's size).
    pub fn version_count(&self) -> usize {
        self.advisories
            .iter()
            .flat_map(|a| &a.affected)
            .map(|af| af.versions.len())
            .sum()
    }

    pub fn len(&self) -> usize {
        self.advisories.len()
    }

    pub fn is_empty(&self) -> bool {
        self.advisories.is_empty()
    }

    /// The artifact features that trigger an advisory (from the built-in table, by any
    /// of its ids or aliases).
    pub fn triggers(&self, a: &Advisory) -> Vec<Feature> {
        let mut out: Vec<Feature> = a
            .ids()
            .iter()
            .filter_map(|i| BUILTIN.triggers.get(*i))
            .flatten()
            .copied()
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// Days between the newest record and `today` (days since 1970-01-01).
    pub fn age_days(&self, today: i64) -> Option<i64> {
        self.newest
            .as_deref()
            .and_then(osv::days_of)
            .map(|d| today - d)
    }
}

fn is_record_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.ends_with(".json") || n.ends_with(".yaml") || n.ends_with(".yml")
}

/// Reads every record file under a folder, bounded in depth, count and bytes.
#[allow(clippy::type_complexity)]
fn read_folder(
    root: &Path,
    shown: &str,
) -> Result<Vec<(String, Result<Vec<u8>, String>)>, LoadError> {
    let mut files: Vec<PathBuf> = Vec::new();
    let mut stack = vec![(root.to_path_buf(), 0usize)];
    while let Some((dir, depth)) = stack.pop() {
        let rd = std::fs::read_dir(&dir).map_err(|source| LoadError::Io {
            path: dir.display().to_string(),
            source,
        })?;
        for e in rd.flatten() {
            let Ok(ft) = e.file_type() else { continue };
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            // Links are not followed: the database is what is in the folder.
            if ft.is_dir() && depth < MAX_FOLDER_DEPTH {
                stack.push((e.path(), depth + 1));
            } else if ft.is_file() && is_record_name(&name) {
                if files.len() >= MAX_RECORDS {
                    return Err(LoadError::TooLarge {
                        path: shown.to_string(),
                        limit: MAX_RECORDS as u64,
                    });
                }
                files.push(e.path());
            }
        }
    }
    files.sort();
    let mut total = 0u64;
    let mut out = Vec::with_capacity(files.len());
    for f in files {
        let name = f.display().to_string();
        let len = std::fs::metadata(&f).map(|m| m.len()).unwrap_or(0);
        if len > MAX_RECORD_BYTES {
            out.push((name, Err(format!("larger than {MAX_RECORD_BYTES} bytes"))));
            continue;
        }
        total = total.saturating_add(len);
        if total > MAX_DATABASE_BYTES {
            return Err(LoadError::TooLarge {
                path: shown.to_string(),
                limit: MAX_DATABASE_BYTES,
            });
        }
        out.push((name, std::fs::read(&f).map_err(|e| e.to_string())));
    }
    Ok(out)
}
