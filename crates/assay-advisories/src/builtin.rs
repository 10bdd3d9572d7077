//! The built-in advisories (`data/ml-advisories.tsv`), compiled into the binary so that
//! the default scan works offline, and the artifact feature that triggers each.

use crate::feature::Feature;
use crate::osv::{Advisory, Affected, Event};
use crate::version::{Bound, Requirement, normalise_name};
use std::collections::HashMap;
use std::sync::LazyLock;

const TSV: &str = include_str!("../data/ml-advisories.tsv");

/// Where the built-in set is shown as coming from.
pub const SOURCE: &str = "built-in advisories";

pub struct Builtin {
    pub advisories: Vec<Advisory>,
    /// Every id and alias → the features that trigger that advisory.
    pub triggers: HashMap<String, Vec<Feature>>,
    /// The `# as-of:` date of the table.
    pub as_of: Option<String>,
}

pub static BUILTIN: LazyLock<Builtin> = LazyLock::new(|| parse(TSV).expect("built-in table"));

/// Parses the table; an error names the bad line (a unit test keeps the shipped table valid).
pub fn parse(tsv: &str) -> Result<Builtin, String> {
    let mut advisories = Vec::new();
    let mut triggers: HashMap<String, Vec<Feature>> = HashMap::new();
    let mut as_of = None;
    for (n, line) in tsv.lines().enumerate() {
        let n = n + 1;
        if let Some(c) = line.strip_prefix('#') {
            if let Some(d) = c.trim().strip_prefix("as-of:") {
                as_of = Some(d.trim().to_string());
            }
            continue;
        }
        if line.trim().is_empty() || line.starts_with("id\t") {
            continue;
        }
        let cols: Vec<&str> = line.split('\t').collect();
        let [id, aliases, package, affected, _fixed, feature, trigger] = cols[..] else {
            return Err(format!(
                "line {n}: expected 7 columns, found {}",
                cols.len()
            ));
        };
        let req = Requirement::parse(affected)
            .ok_or_else(|| format!("line {n}: {affected:?} is not a PEP 440 specifier set"))?;
        let mut events = vec![match &req.lower {
            Some(Bound::Inclusive(v)) => Event::Introduced(v.to_string()),
            None => Event::Introduced("0".into()),
            Some(Bound::Exclusive(_)) => return Err(format!("line {n}: use >= for the start")),
        }];
        match &req.upper {
            Some(Bound::Exclusive(v)) => events.push(Event::Fixed(v.to_string())),
            Some(Bound::Inclusive(v)) => events.push(Event::LastAffected(v.to_string())),
            None => {}
        }
        let feature = Feature::from_name(feature)
            .ok_or_else(|| format!("line {n}: unknown feature {feature:?}"))?;
        let aliases: Vec<String> = aliases
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(str::to_string)
            .collect();
        for key in std::iter::once(id.to_string()).chain(aliases.iter().cloned()) {
            let e = triggers.entry(key).or_default();
            if !e.contains(&feature) {
                e.push(feature);
            }
        }
        advisories.push(Advisory {
            id: id.to_string(),
            aliases,
            summary: format!("{package}: {trigger}"),
            modified: as_of.clone(),
            affected: vec![Affected {
                package: normalise_name(package),
                ranges: vec![events],
                versions: Vec::new(),
            }],
        });
    }
    Ok(Builtin {
        advisories,
        triggers,
        as_of,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::version::{fixed_version, is_affected, parse as v};

    #[test]
    fn shipped_table_is_valid_and_matches_its_fixed_column() {
        let b = parse(TSV).unwrap();
        assert!(b.advisories.len() >= 20);
        assert!(b.as_of.is_some());
        for line in TSV
            .lines()
            .filter(|l| !l.starts_with('#') && !l.starts_with("id\t"))
        {
            let c: Vec<&str> = line.split('\t').collect();
            let a = b.advisories.iter().find(|a| a.id == c[0]).unwrap();
            let fixed = fixed_version(&a.affected[0]).map(|v| v.to_string());
            assert_eq!(fixed.as_deref().unwrap_or(""), c[4], "{}", c[0]);
            if let Some(f) = &fixed {
                assert!(!is_affected(&v(f).unwrap(), &a.affected[0]));
            }
        }
        let keras = b.triggers.get("GHSA-48g7-3x6r-xfhp").unwrap();
        assert_eq!(keras, &[Feature::KerasModuleReference]);
    }

    #[test]
    fn bad_rows_are_named() {
        let e = parse("X\t\tp\tnot a spec\t\tpickle\tt\n").err().unwrap();
        assert!(e.contains("line 1"), "{e}");
        let e = parse("X\t\tp\t<1\t1\tnope\tt\n").err().unwrap();
        assert!(e.contains("unknown feature"), "{e}");
    }
}
