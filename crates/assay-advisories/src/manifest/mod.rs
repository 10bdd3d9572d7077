//! The Python dependencies a model repository declares, parsed without running anything:
//! `requirements*.txt` (with `-r`/`-c` includes reported for the caller to resolve),
//! `pyproject.toml` (PEP 621 and Poetry), `setup.cfg`, `Pipfile.lock` and conda
//! `environment.yml`. What cannot be parsed becomes a [`Problem`], never a panic.

mod conda;
mod pep508;
mod pyproject;
mod requirements;
mod setup_cfg;

pub use pep508::{Pep508, parse_pep508};

use crate::version::{Requirement, normalise_name};

/// Largest manifest read.
pub const MAX_MANIFEST_BYTES: u64 = 4 << 20;
/// Requirements kept per manifest.
pub const MAX_REQUIREMENTS: usize = 10_000;
/// Longest logical line (after joining `\` continuations) of a requirements file.
pub const MAX_LINE_BYTES: usize = 64 << 10;
/// Problems kept per manifest (a binary file would give one per line).
pub const MAX_PROBLEMS: usize = 20;

/// The kinds of manifest read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Requirements,
    Pyproject,
    SetupCfg,
    PipfileLock,
    Conda,
}

impl Kind {
    /// The manifest kind of a file name, if it is one.
    pub fn of(file_name: &str) -> Option<Kind> {
        let n = file_name.to_ascii_lowercase();
        Some(match n.as_str() {
            "pyproject.toml" => Kind::Pyproject,
            "setup.cfg" => Kind::SetupCfg,
            "pipfile.lock" => Kind::PipfileLock,
            "environment.yml" | "environment.yaml" | "conda.yaml" | "conda.yml" => Kind::Conda,
            _ if n.starts_with("requirements") && n.ends_with(".txt") => Kind::Requirements,
            _ => return None,
        })
    }
}

/// One declared dependency.
#[derive(Debug, Clone)]
pub struct Declared {
    /// As written.
    pub name: String,
    /// PEP 503-normalised.
    pub package: String,
    /// The version constraint as PEP 440 text (`""` for "any version").
    pub spec: String,
    pub requirement: Requirement,
    pub marker: Option<String>,
    /// 1-based line in the manifest (0 when unknown).
    pub line: usize,
}

impl Declared {
    fn new(
        name: &str,
        spec: &str,
        marker: Option<String>,
        line: usize,
    ) -> Result<Declared, String> {
        let requirement = Requirement::parse(spec)
            .ok_or_else(|| format!("{name}: {spec:?} is not a PEP 440 version constraint"))?;
        Ok(Declared {
            name: name.to_string(),
            package: normalise_name(name),
            spec: spec.trim().to_string(),
            requirement,
            marker,
            line,
        })
    }

    /// `name<spec>` as a user would write it.
    pub fn display(&self) -> String {
        format!("{}{}", self.name, self.spec)
    }
}

/// A line that could not be understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub line: usize,
    pub message: String,
}

/// A `-r` / `-c` include of a requirements file, for the caller to resolve (and confine).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Include {
    pub path: String,
    pub line: usize,
}

#[derive(Debug, Clone, Default)]
pub struct Parsed {
    pub requirements: Vec<Declared>,
    pub problems: Vec<Problem>,
    pub includes: Vec<Include>,
    /// More than [`MAX_REQUIREMENTS`] or [`MAX_PROBLEMS`]; the rest was dropped.
    pub truncated: bool,
}

impl Parsed {
    fn push(&mut self, r: Result<Declared, String>, line: usize) {
        match r {
            Ok(d) if self.requirements.len() < MAX_REQUIREMENTS => self.requirements.push(d),
            Ok(_) => self.truncated = true,
            Err(message) => self.problem(line, message),
        }
    }

    fn problem(&mut self, line: usize, message: String) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(Problem { line, message });
        } else {
            self.truncated = true;
        }
    }

    /// One PEP 508 string (`name[extra]>=1; marker`).
    fn push_pep508(&mut self, s: &str, line: usize) {
        match parse_pep508(s) {
            Ok(Some(p)) => self.push(Declared::new(&p.name, &p.spec, p.marker, line), line),
            Ok(None) => {}
            Err(e) => self.problem(line, e),
        }
    }
}

/// Parses one manifest's text.
pub fn parse(kind: Kind, text: &str) -> Parsed {
    match kind {
        Kind::Requirements => requirements::parse(text),
        Kind::Pyproject => pyproject::parse(text),
        Kind::SetupCfg => setup_cfg::parse(text),
        Kind::PipfileLock => pyproject::parse_pipfile_lock(text),
        Kind::Conda => conda::parse(text),
    }
}

/// The 1-based line of the first occurrence of `needle` (for formats whose parser keeps
/// no positions), 0 when absent.
fn line_of(text: &str, needle: &str) -> usize {
    text.find(needle)
        .map(|at| text[..at].matches('\n').count() + 1)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_by_name() {
        assert_eq!(Kind::of("requirements.txt"), Some(Kind::Requirements));
        assert_eq!(Kind::of("requirements-dev.txt"), Some(Kind::Requirements));
        assert_eq!(Kind::of("Pipfile.lock"), Some(Kind::PipfileLock));
        assert_eq!(Kind::of("environment.yml"), Some(Kind::Conda));
        assert_eq!(Kind::of("notes.txt"), None);
    }
}
