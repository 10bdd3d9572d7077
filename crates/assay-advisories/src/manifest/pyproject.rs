//! `pyproject.toml` (PEP 621 `[project]` dependencies and optional dependencies, PEP 735
//! dependency groups, Poetry's `[tool.poetry]` tables) and `Pipfile.lock` (JSON).

use super::{Declared, Parsed, line_of};
use toml::Value;

pub fn parse(text: &str) -> Parsed {
    let mut out = Parsed::default();
    let doc: toml::Table = match toml::from_str(text) {
        Ok(d) => d,
        Err(e) => {
            let line = e
                .span()
                .map(|s| {
                    let before = text.get(..s.start).unwrap_or(text);
                    before.matches('\n').count() + 1
                })
                .unwrap_or(0);
            out.problem(line, format!("not valid TOML: {}", e.message()));
            return out;
        }
    };
    if let Some(project) = doc.get("project") {
        pep508_list(&mut out, text, project.get("dependencies"));
        if let Some(Value::Table(opt)) = project.get("optional-dependencies") {
            for v in opt.values() {
                pep508_list(&mut out, text, Some(v));
            }
        }
    }
    if let Some(Value::Table(groups)) = doc.get("dependency-groups") {
        for v in groups.values() {
            pep508_list(&mut out, text, Some(v));
        }
    }
    if let Some(poetry) = doc.get("tool").and_then(|t| t.get("poetry")) {
        for key in ["dependencies", "dev-dependencies"] {
            poetry_table(&mut out, text, poetry.get(key));
        }
        if let Some(Value::Table(groups)) = poetry.get("group") {
            for g in groups.values() {
                poetry_table(&mut out, text, g.get("dependencies"));
            }
        }
    }
    out
}

fn pep508_list(out: &mut Parsed, text: &str, v: Option<&Value>) {
    let Some(Value::Array(items)) = v else { return };
    for it in items {
        // Dependency groups may hold {include-group = "…"} tables.
        if let Value::String(s) = it {
            out.push_pep508(s, line_of(text, s));
        }
    }
}

fn poetry_table(out: &mut Parsed, text: &str, v: Option<&Value>) {
    let Some(Value::Table(deps)) = v else { return };
    for (name, spec) in deps {
        if name.eq_ignore_ascii_case("python") {
            continue;
        }
        let constraint = match spec {
            Value::String(s) => Some(s.as_str()),
            Value::Table(t) => t.get("version").and_then(Value::as_str),
            // Several constraints by platform: each is a table with a version.
            Value::Array(a) => a
                .iter()
                .find_map(|t| t.get("version").and_then(Value::as_str)),
            _ => None,
        };
        let line = line_of(text, &format!("\n{name}"));
        let r = match constraint {
            None => Declared::new(name, "", None, line),
            Some(c) => match poetry_to_pep440(c) {
                Some(p) => Declared::new(name, &p, None, line),
                None => Err(format!("{name}: {c:?} is not a Poetry version constraint")),
            },
        };
        out.push(r, line);
    }
}

/// Poetry's constraint syntax in PEP 440: `^1.2.3` → `>=1.2.3,<2.0.0`, `~1.2` →
/// `>=1.2,<1.3`, `1.2.*`, `*`, a bare version (exact), and comma-separated PEP 440 parts.
pub fn poetry_to_pep440(c: &str) -> Option<String> {
    let mut parts = Vec::new();
    for p in c.split(',') {
        let p = p.trim();
        if p.is_empty() || p == "*" {
            continue;
        }
        if let Some(v) = p.strip_prefix('^') {
            let r = release(v)?;
            // The first non-zero part may not change.
            let keep = r.iter().position(|&x| x != 0).unwrap_or(r.len() - 1);
            let mut upper: Vec<u64> = r[..=keep].to_vec();
            bump_last(&mut upper)?;
            parts.push(format!(">={v},<{}", join(&upper)));
        } else if let Some(v) = p.strip_prefix('~').filter(|v| !v.starts_with('=')) {
            let r = release(v)?;
            let mut upper: Vec<u64> = if r.len() > 1 {
                r[..2].to_vec()
            } else {
                r.clone()
            };
            bump_last(&mut upper)?;
            parts.push(format!(">={v},<{}", join(&upper)));
        } else if p.starts_with(|c: char| c.is_ascii_digit()) {
            parts.push(format!("=={p}"));
        } else {
            parts.push(p.to_string());
        }
    }
    Some(parts.join(","))
}

/// Adds one to the last release number; `None` on overflow.
fn bump_last(r: &mut [u64]) -> Option<()> {
    let last = r.last_mut()?;
    *last = last.checked_add(1)?;
    Some(())
}

fn release(v: &str) -> Option<Vec<u64>> {
    let r: Option<Vec<u64>> = v.trim().split('.').map(|x| x.parse().ok()).collect();
    r.filter(|r| !r.is_empty())
}

fn join(r: &[u64]) -> String {
    r.iter().map(u64::to_string).collect::<Vec<_>>().join(".")
}

/// `Pipfile.lock`: `{"default": {"name": {"version": "==1.2.3"}}, "develop": {…}}`.
pub fn parse_pipfile_lock(text: &str) -> Parsed {
    let mut out = Parsed::default();
    let v: serde_json::Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            out.problem(e.line(), format!("not valid JSON: {e}"));
            return out;
        }
    };
    for section in ["default", "develop"] {
        let Some(deps) = v.get(section).and_then(|d| d.as_object()) else {
            continue;
        };
        for (name, info) in deps {
            let line = line_of(text, &format!("\"{name}\""));
            let spec = info.get("version").and_then(|x| x.as_str()).unwrap_or("");
            let marker = info
                .get("markers")
                .and_then(|x| x.as_str())
                .map(str::to_string);
            out.push(Declared::new(name, spec, marker, line), line);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn specs(p: &Parsed) -> Vec<String> {
        p.requirements.iter().map(|d| d.display()).collect()
    }

    #[test]
    fn pep621_groups_and_poetry() {
        let t = r#"
[project]
name = "m"
dependencies = ["keras==3.8.0", "numpy>=1.26; python_version>'3.9'"]
[project.optional-dependencies]
gpu = ["torch[cuda]<2.6"]
[dependency-groups]
dev = ["pytest", {include-group = "x"}]
[tool.poetry.dependencies]
python = "^3.10"
onnx = "^1.15.0"
llama-cpp-python = {version = "0.2.70", extras = ["server"]}
[tool.poetry.group.test.dependencies]
transformers = "~4.30"
"#;
        let p = parse(t);
        assert_eq!(
            specs(&p),
            [
                "keras==3.8.0",
                "numpy>=1.26",
                "torch<2.6",
                "pytest",
                "llama-cpp-python==0.2.70",
                "onnx>=1.15.0,<2",
                "transformers>=4.30,<4.31"
            ]
        );
        assert!(p.problems.is_empty(), "{:?}", p.problems);
        assert_eq!(p.requirements[0].line, 4);
    }

    #[test]
    fn poetry_constraints() {
        assert_eq!(poetry_to_pep440("^0.2.3").unwrap(), ">=0.2.3,<0.3");
        assert_eq!(poetry_to_pep440("^0.0.3").unwrap(), ">=0.0.3,<0.0.4");
        assert_eq!(poetry_to_pep440("*").unwrap(), "");
        assert_eq!(poetry_to_pep440(">=1.2,<2.0").unwrap(), ">=1.2,<2.0");
        assert_eq!(poetry_to_pep440("~=1.2").unwrap(), "~=1.2");
    }

    #[test]
    fn bad_toml_and_lockfiles() {
        let p = parse("[project\ndependencies = 3");
        assert_eq!(p.problems.len(), 1);
        assert_eq!(p.problems[0].line, 1);
        let lock = r#"{"_meta": {}, "default": {"torch": {"version": "==2.5.1", "markers": "os_name == 'posix'"}},
                      "develop": {"onnx": {"version": "==1.15.0"}, "local": {"path": "."}}}"#;
        let p = parse_pipfile_lock(lock);
        assert_eq!(specs(&p), ["torch==2.5.1", "local", "onnx==1.15.0"]);
        assert_eq!(parse_pipfile_lock("{").problems.len(), 1);
    }
}
