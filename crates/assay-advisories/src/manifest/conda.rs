//! Conda environment files (`environment.yml`, MLflow's `conda.yaml`): the
//! `dependencies` list of conda match specs, and its `pip:` subsection of PEP 508 lines.

use super::{Declared, Parsed, line_of};
use serde_norway::Value;

/// Conda package names whose PyPI name differs.
const CONDA_TO_PYPI: &[(&str, &str)] = &[("pytorch", "torch"), ("pytorch-cpu", "torch")];

pub fn parse(text: &str) -> Parsed {
    let mut out = Parsed::default();
    let doc: Value = match serde_norway::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            let line = e.location().map(|l| l.line()).unwrap_or(0);
            out.problem(line, format!("not valid YAML: {e}"));
            return out;
        }
    };
    let Some(deps) = doc.get("dependencies").and_then(Value::as_sequence) else {
        return out;
    };
    for d in deps {
        match d {
            Value::String(s) => {
                let line = line_of(text, s);
                match conda_spec(s) {
                    Ok(Some((name, spec))) => {
                        out.push(Declared::new(&name, &spec, None, line), line)
                    }
                    Ok(None) => {}
                    Err(e) => out.problem(line, e),
                }
            }
            Value::Mapping(m) => {
                if let Some(pip) = m.get("pip").and_then(Value::as_sequence) {
                    for p in pip {
                        if let Some(s) = p.as_str() {
                            let s = s.trim();
                            if s.starts_with('-') {
                                continue; // -r, --index-url: not followed from here
                            }
                            out.push_pep508(s, line_of(text, s));
                        }
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// A conda match spec (`channel::name=1.2=build`, `name>=1.0`, `name 1.2.*`) as a PyPI
/// name and PEP 440 constraint. `python` and `pip` themselves are skipped.
fn conda_spec(s: &str) -> Result<Option<(String, String)>, String> {
    let s = s.trim();
    let s = s.rsplit_once("::").map(|(_, n)| n).unwrap_or(s);
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        .unwrap_or(s.len());
    let name = &s[..end];
    if name.is_empty() {
        return Err(format!("{s:?} is not a conda package spec"));
    }
    if matches!(name, "python" | "pip") {
        return Ok(None);
    }
    let pypi = CONDA_TO_PYPI
        .iter()
        .find(|(c, _)| *c == name)
        .map(|(_, p)| *p)
        .unwrap_or(name);
    let rest = s[end..].trim();
    // `name=1.2=build` / `name 1.2 build`: the build string is dropped.
    let version = rest
        .trim_start_matches([' ', '='])
        .split([' ', '='])
        .next()
        .unwrap_or("");
    let spec = if rest.is_empty() {
        String::new()
    } else if rest.starts_with("==") || rest.starts_with(['<', '>', '!', '~']) {
        rest.split_whitespace().next().unwrap_or("").to_string()
    } else if version.ends_with('*') {
        format!("=={version}")
    } else {
        // conda's `name=1.2` means 1.2 or any 1.2.x: the fuzzy match PEP 440 spells `==1.2.*`.
        format!("=={version}.*")
    };
    Ok(Some((pypi.to_string(), spec)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_with_pip_section() {
        let t = "name: m\nchannels: [conda-forge]\ndependencies:\n  - python=3.11\n  - conda-forge::pytorch=2.5.1=py311_cuda\n  - numpy>=1.26\n  - onnx 1.15.*\n  - pip\n  - pip:\n    - keras==3.8.0\n    - --index-url https://example.invalid\n";
        let p = parse(t);
        let got: Vec<String> = p.requirements.iter().map(|d| d.display()).collect();
        assert_eq!(
            got,
            [
                "torch==2.5.1.*",
                "numpy>=1.26",
                "onnx==1.15.*",
                "keras==3.8.0"
            ]
        );
        assert_eq!(p.requirements[3].line, 10);
        assert!(parse("dependencies: [").problems.len() == 1);
    }
}
