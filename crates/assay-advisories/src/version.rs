//! PEP 440 matching against OSV `ECOSYSTEM` ranges and `versions` lists.
//!
//! Two questions are asked of an advisory's [`Affected`] entry:
//! - [`is_affected`]: is this exact version affected?
//! - [`Requirement::verdict`]: given a requirement such as `onnx<1.16`, will the install
//!   be affected (the newest version pip may pick is), or may it be (the requirement
//!   allows some affected version)?

use crate::osv::{Affected, Event};
use pep440_rs::Operator;
pub use pep440_rs::{Version, VersionSpecifiers};
use std::cmp::Ordering;
use std::str::FromStr;

/// PEP 503 normalisation: lower case, every run of `-`, `_` and `.` becomes one `-`.
pub fn normalise_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut sep = false;
    for c in name.trim().chars() {
        if matches!(c, '-' | '_' | '.') {
            sep = true;
            continue;
        }
        if sep && !out.is_empty() {
            out.push('-');
        }
        sep = false;
        out.extend(c.to_lowercase());
    }
    out
}

/// A PEP 440 version, or `None` when the text is not one.
pub fn parse(text: &str) -> Option<Version> {
    Version::from_str(text.trim()).ok()
}

/// `introduced: "0"` means "from the first version on".
fn is_zero(text: &str) -> bool {
    text.trim() == "0"
}

/// True when `v` is in one of the entry's `ECOSYSTEM` ranges or listed in `versions`
/// (compared as PEP 440 versions, so `1.0` matches `1.0.0`).
pub fn is_affected(v: &Version, a: &Affected) -> bool {
    if a.versions.iter().any(|s| parse(s).is_some_and(|x| &x == v)) {
        return true;
    }
    intervals(a).iter().any(|i| i.contains(v))
}

/// One affected stretch of versions from a range's events: `start` (inclusive, `None` for
/// "from the beginning") to `end`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interval {
    pub start: Option<Version>,
    pub end: End,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// `fixed`: this version is the first one not affected.
    Fixed(Version),
    /// `last_affected`: this version is the last one affected.
    LastAffected(Version),
    /// No fix published.
    Open,
}

impl Interval {
    pub fn contains(&self, v: &Version) -> bool {
        let after_start = self.start.as_ref().is_none_or(|s| v >= s);
        let before_end = match &self.end {
            End::Fixed(f) => v < f,
            End::LastAffected(l) => v <= l,
            End::Open => true,
        };
        after_start && before_end
    }
}

/// The affected intervals of an entry, following the OSV evaluation rules: events sorted
/// by version, `introduced` opens a stretch, `fixed` / `last_affected` closes it. Events
/// whose version is not PEP 440 are skipped.
pub fn intervals(a: &Affected) -> Vec<Interval> {
    let mut out = Vec::new();
    for range in &a.ranges {
        // (version, order, event); None sorts first as "0".
        let mut events: Vec<(Option<Version>, &Event)> = range
            .iter()
            .filter_map(|e| {
                let text = e.version();
                if matches!(e, Event::Introduced(_)) && is_zero(text) {
                    return Some((None, e));
                }
                parse(text).map(|v| (Some(v), e))
            })
            .collect();
        events.sort_by(|(a, _), (b, _)| match (a, b) {
            (None, None) => Ordering::Equal,
            (None, _) => Ordering::Less,
            (_, None) => Ordering::Greater,
            (Some(a), Some(b)) => a.cmp(b),
        });
        let mut open: Option<Option<Version>> = None;
        for (v, e) in events {
            match e {
                Event::Introduced(_) => {
                    if open.is_none() {
                        open = Some(v);
                    }
                }
                Event::Fixed(_) | Event::LastAffected(_) => {
                    if let (Some(start), Some(v)) = (open.take(), v) {
                        let end = if matches!(e, Event::Fixed(_)) {
                            End::Fixed(v)
                        } else {
                            End::LastAffected(v)
                        };
                        out.push(Interval { start, end });
                    }
                }
                Event::Limit(_) => {}
            }
        }
        if let Some(start) = open {
            out.push(Interval {
                start,
                end: End::Open,
            });
        }
    }
    out
}

/// The first version that fixes an entry (the highest `fixed` event), for remediation
/// text; `None` when no fix is published.
pub fn fixed_version(a: &Affected) -> Option<Version> {
    let iv = intervals(a);
    if iv.iter().any(|i| i.end == End::Open) {
        return None;
    }
    iv.into_iter()
        .filter_map(|i| match i.end {
            End::Fixed(v) => Some(v),
            _ => None,
        })
        .max()
}

/// A bound on what a requirement allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bound {
    Inclusive(Version),
    Exclusive(Version),
}

impl Bound {
    fn version(&self) -> &Version {
        match self {
            Bound::Inclusive(v) | Bound::Exclusive(v) => v,
        }
    }
}

/// What a declared requirement allows pip to install.
#[derive(Debug, Clone)]
pub struct Requirement {
    pub specifiers: VersionSpecifiers,
    /// The one version an `==V` / `===V` requirement allows.
    pub pinned: Option<Version>,
    pub lower: Option<Bound>,
    pub upper: Option<Bound>,
}

/// How a requirement stands against one advisory entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    /// No allowed version is affected.
    Clear,
    /// Some allowed version is affected, but pip would pick a newer one.
    MayBeAffected,
    /// The pinned version, or the newest one pip may pick, is affected.
    Affected,
}

/// The next release prefix: `1.15` → `1.16`, used for `==1.15.*` and `~=1.15.0`.
fn bump(release: &[u64]) -> Option<Version> {
    let (last, head) = release.split_last()?;
    let mut r = head.to_vec();
    r.push(last.checked_add(1)?);
    Some(Version::new(r))
}

fn tighter_lower(a: Option<Bound>, b: Bound) -> Option<Bound> {
    match a {
        None => Some(b),
        Some(a) => Some(match a.version().cmp(b.version()) {
            Ordering::Less => b,
            Ordering::Greater => a,
            Ordering::Equal if matches!(b, Bound::Exclusive(_)) => b,
            Ordering::Equal => a,
        }),
    }
}

fn tighter_upper(a: Option<Bound>, b: Bound) -> Option<Bound> {
    match a {
        None => Some(b),
        Some(a) => Some(match a.version().cmp(b.version()) {
            Ordering::Greater => b,
            Ordering::Less => a,
            Ordering::Equal if matches!(b, Bound::Exclusive(_)) => b,
            Ordering::Equal => a,
        }),
    }
}

impl Requirement {
    /// From PEP 440 specifiers (`>=1.2,<2`, `==0.2.70`, `~=3.8`, empty for "any").
    pub fn new(specifiers: VersionSpecifiers) -> Requirement {
        let mut pinned = None;
        let mut lower = None;
        let mut upper = None;
        for s in specifiers.iter() {
            let v = s.version().clone();
            match s.operator() {
                Operator::Equal | Operator::ExactEqual => {
                    lower = tighter_lower(lower, Bound::Inclusive(v.clone()));
                    upper = tighter_upper(upper, Bound::Inclusive(v.clone()));
                    pinned = Some(v);
                }
                Operator::EqualStar => {
                    if let Some(next) = bump(v.release()) {
                        upper = tighter_upper(upper, Bound::Exclusive(next));
                    }
                    lower = tighter_lower(lower, Bound::Inclusive(v));
                }
                Operator::TildeEqual => {
                    let r = v.release();
                    if let Some(next) = r.get(..r.len().saturating_sub(1)).and_then(bump) {
                        upper = tighter_upper(upper, Bound::Exclusive(next));
                    }
                    lower = tighter_lower(lower, Bound::Inclusive(v));
                }
                Operator::GreaterThanEqual => lower = tighter_lower(lower, Bound::Inclusive(v)),
                Operator::GreaterThan => lower = tighter_lower(lower, Bound::Exclusive(v)),
                Operator::LessThanEqual => upper = tighter_upper(upper, Bound::Inclusive(v)),
                Operator::LessThan => upper = tighter_upper(upper, Bound::Exclusive(v)),
                Operator::NotEqual | Operator::NotEqualStar => {}
            }
        }
        Requirement {
            specifiers,
            pinned,
            lower,
            upper,
        }
    }

    /// From specifier text; `None` when it is not PEP 440.
    pub fn parse(text: &str) -> Option<Requirement> {
        VersionSpecifiers::from_str(text.trim())
            .ok()
            .map(Requirement::new)
    }

    /// Exactly one version allowed.
    pub fn is_pinned(&self) -> bool {
        self.pinned.is_some()
    }

    /// How this requirement stands against one advisory entry.
    pub fn verdict(&self, a: &Affected) -> Verdict {
        if let Some(v) = &self.pinned {
            return if is_affected(v, a) {
                Verdict::Affected
            } else {
                Verdict::Clear
            };
        }
        let iv = intervals(a);
        // The newest version pip would pick lies just below (or at) the upper bound.
        let newest_affected = match &self.upper {
            Some(Bound::Inclusive(u)) => is_affected(u, a),
            Some(Bound::Exclusive(u)) => iv.iter().any(|i| {
                i.start.as_ref().is_none_or(|s| s < u)
                    && match &i.end {
                        End::Fixed(f) => f >= u,
                        End::LastAffected(l) => l >= u,
                        End::Open => true,
                    }
            }),
            None => iv.iter().any(|i| i.end == End::Open),
        };
        // ... unless the lower bound is past every such interval (an empty requirement).
        if newest_affected && self.overlaps(&iv) {
            return Verdict::Affected;
        }
        let listed = a
            .versions
            .iter()
            .filter_map(|s| parse(s))
            .any(|v| self.specifiers.contains(&v));
        if listed || self.overlaps(&iv) {
            Verdict::MayBeAffected
        } else {
            Verdict::Clear
        }
    }

    /// Some interval shares a version with the allowed stretch.
    fn overlaps(&self, iv: &[Interval]) -> bool {
        iv.iter().any(|i| {
            let below_upper = match (&i.start, &self.upper) {
                (None, _) | (_, None) => true,
                (Some(s), Some(Bound::Inclusive(u))) => s <= u,
                (Some(s), Some(Bound::Exclusive(u))) => s < u,
            };
            let above_lower = match (&i.end, &self.lower) {
                (End::Open, _) | (_, None) => true,
                (End::Fixed(f), Some(l)) => l.version() < f,
                (End::LastAffected(e), Some(Bound::Inclusive(l))) => l <= e,
                (End::LastAffected(e), Some(Bound::Exclusive(l))) => l < e,
            };
            below_upper && above_lower
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::osv::Affected;

    fn entry(events: &[(&str, &str)], versions: &[&str]) -> Affected {
        let range = events
            .iter()
            .map(|(k, v)| match *k {
                "introduced" => Event::Introduced(v.to_string()),
                "fixed" => Event::Fixed(v.to_string()),
                "last_affected" => Event::LastAffected(v.to_string()),
                _ => Event::Limit(v.to_string()),
            })
            .collect();
        Affected {
            package: "x".into(),
            ranges: vec![range],
            versions: versions.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn v(s: &str) -> Version {
        parse(s).unwrap()
    }

    #[test]
    fn names_are_normalised_per_pep_503() {
        assert_eq!(normalise_name("Llama_CPP.python"), "llama-cpp-python");
        assert_eq!(normalise_name("llama--cpp__python"), "llama-cpp-python");
        assert_eq!(normalise_name("Torch"), "torch");
    }

    #[test]
    fn ranges_follow_osv_semantics() {
        let a = entry(&[("introduced", "0"), ("fixed", "1.16.0")], &[]);
        assert!(is_affected(&v("1.15.0"), &a));
        assert!(is_affected(&v("0.1"), &a));
        assert!(!is_affected(&v("1.16"), &a), "1.16 == 1.16.0 in PEP 440");
        assert!(!is_affected(&v("1.16.1"), &a));
        let k = entry(&[("introduced", "3.0.0"), ("fixed", "3.9.0")], &[]);
        assert!(!is_affected(&v("2.15.0"), &k));
        assert!(is_affected(&v("3.8.0"), &k));
        assert!(
            is_affected(&v("3.9.0rc1"), &k),
            "pre-releases of the fix are affected"
        );
        let l = entry(&[("introduced", "1.0"), ("last_affected", "1.2.3")], &[]);
        assert!(is_affected(&v("1.2.3"), &l));
        assert!(!is_affected(&v("1.2.4"), &l));
        let open = entry(&[("introduced", "1.1.0")], &[]);
        assert!(is_affected(&v("99"), &open));
        assert_eq!(fixed_version(&open), None);
        assert_eq!(fixed_version(&k), Some(v("3.9.0")));
        // Two stretches in one range, given out of order.
        let two = entry(
            &[
                ("fixed", "2.0"),
                ("introduced", "3.0"),
                ("introduced", "0"),
                ("fixed", "3.1"),
            ],
            &[],
        );
        assert!(is_affected(&v("1.9"), &two));
        assert!(!is_affected(&v("2.5"), &two));
        assert!(is_affected(&v("3.0.5"), &two));
        assert_eq!(fixed_version(&two), Some(v("3.1")));
    }

    #[test]
    fn explicit_versions_match_as_pep_440() {
        let a = entry(&[], &["0.2", "1.0.0"]);
        assert!(is_affected(&v("1.0"), &a));
        assert!(is_affected(&v("0.2.0"), &a));
        assert!(!is_affected(&v("1.0.1"), &a));
        let r = Requirement::parse(">=0.9,<1.1").unwrap();
        assert_eq!(r.verdict(&a), Verdict::MayBeAffected);
    }

    #[test]
    fn requirements_against_ranges() {
        let onnx = entry(&[("introduced", "0"), ("fixed", "1.16.0")], &[]);
        let verdict = |s: &str| Requirement::parse(s).unwrap().verdict(&onnx);
        assert_eq!(verdict("==1.15.0"), Verdict::Affected);
        assert_eq!(verdict("<1.16"), Verdict::Affected);
        assert_eq!(verdict("<=1.15.0"), Verdict::Affected);
        assert_eq!(verdict("==1.15.*"), Verdict::Affected);
        assert_eq!(verdict("~=1.15.0"), Verdict::Affected);
        assert_eq!(verdict("~=1.15"), Verdict::MayBeAffected, "allows 1.16+");
        assert_eq!(verdict(">=1.10"), Verdict::MayBeAffected);
        assert_eq!(verdict(""), Verdict::MayBeAffected);
        assert_eq!(verdict("<1.17"), Verdict::MayBeAffected);
        assert_eq!(verdict("==1.16.0"), Verdict::Clear);
        assert_eq!(verdict(">=1.16"), Verdict::Clear);
        assert_eq!(verdict(">1.15.9,<1.16"), Verdict::Affected);
        let mlflow = entry(&[("introduced", "1.1.0")], &[]);
        let verdict = |s: &str| Requirement::parse(s).unwrap().verdict(&mlflow);
        assert_eq!(
            verdict(""),
            Verdict::Affected,
            "no fix: the newest is affected"
        );
        assert_eq!(verdict("<1.0"), Verdict::Clear);
        assert!(Requirement::parse("==0.2.70").unwrap().is_pinned());
        assert!(!Requirement::parse(">=0.2.70").unwrap().is_pinned());
    }
}
