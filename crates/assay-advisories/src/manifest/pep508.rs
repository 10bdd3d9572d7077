//! PEP 508 dependency specifications, as far as version matching needs them: the name,
//! extras, the version constraint and the marker. Direct references (`name @ url`) carry
//! no version and are kept with an empty constraint.

/// One dependency specification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pep508 {
    pub name: String,
    pub extras: Vec<String>,
    /// PEP 440 specifier text, `""` for any version.
    pub spec: String,
    pub marker: Option<String>,
    /// `name @ url`.
    pub url: Option<String>,
}

/// Parses `name [extras] (constraint | @ url) ; marker`. `Ok(None)` for lines that are
/// not requirements of a named package (a bare URL or path).
pub fn parse_pep508(s: &str) -> Result<Option<Pep508>, String> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    let (body, marker) = match s.split_once(';') {
        Some((b, m)) => (
            b.trim(),
            Some(m.trim().to_string()).filter(|m| !m.is_empty()),
        ),
        None => (s, None),
    };
    // A bare URL or path names no package by itself.
    if body.contains("://") && !body.contains('@') || body.starts_with('.') || body.starts_with('/')
    {
        return Ok(None);
    }
    let end = body
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        .unwrap_or(body.len());
    let name = &body[..end];
    if name.is_empty()
        || !name.starts_with(|c: char| c.is_ascii_alphanumeric())
        || !name.ends_with(|c: char| c.is_ascii_alphanumeric())
    {
        return Err(format!(
            "{s:?} is not a valid requirement (no package name)"
        ));
    }
    let mut rest = body[end..].trim_start();
    let mut extras = Vec::new();
    if let Some(r) = rest.strip_prefix('[') {
        let Some((inside, after)) = r.split_once(']') else {
            return Err(format!("{s:?}: unclosed extras bracket"));
        };
        extras = inside
            .split(',')
            .map(|e| e.trim().to_string())
            .filter(|e| !e.is_empty())
            .collect();
        rest = after.trim_start();
    }
    if let Some(url) = rest.strip_prefix('@') {
        return Ok(Some(Pep508 {
            name: name.to_string(),
            extras,
            spec: String::new(),
            marker,
            url: Some(url.trim().to_string()),
        }));
    }
    // The old form `name (>=1.0)`.
    let spec = rest
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .unwrap_or(rest)
        .trim();
    if !spec.is_empty() && !spec.starts_with(['<', '>', '=', '!', '~']) {
        return Err(format!("{s:?} is not a valid requirement"));
    }
    Ok(Some(Pep508 {
        name: name.to_string(),
        extras,
        spec: spec.to_string(),
        marker,
        url: None,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let p = parse_pep508("llama-cpp-python[server]==0.2.70 ; python_version >= '3.8'")
            .unwrap()
            .unwrap();
        assert_eq!(p.name, "llama-cpp-python");
        assert_eq!(p.extras, ["server"]);
        assert_eq!(p.spec, "==0.2.70");
        assert_eq!(p.marker.as_deref(), Some("python_version >= '3.8'"));
        let p = parse_pep508("torch (>=2.0, <3)").unwrap().unwrap();
        assert_eq!(p.spec, ">=2.0, <3");
        let p = parse_pep508("pkg @ https://x/pkg.whl").unwrap().unwrap();
        assert_eq!((p.spec.as_str(), p.url.is_some()), ("", true));
        assert_eq!(parse_pep508("https://x/y.whl").unwrap(), None);
        assert_eq!(parse_pep508("./local").unwrap(), None);
        assert!(parse_pep508("==1.0").is_err());
        assert!(parse_pep508("torch[cuda").is_err());
        assert!(parse_pep508("torch 2.0").is_err());
    }
}
