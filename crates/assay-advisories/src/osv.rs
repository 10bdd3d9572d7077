//! OSV records (https://ossf.github.io/osv-schema/), as JSON or YAML, reduced to what the
//! vulnerability stage needs: ids, aliases, dates and the PyPI `affected` entries.

use crate::version::normalise_name;
use serde::Deserialize;

/// One advisory.
#[derive(Debug, Clone, PartialEq)]
pub struct Advisory {
    pub id: String,
    pub aliases: Vec<String>,
    pub summary: String,
    /// RFC 3339 date-time of the last change, as written.
    pub modified: Option<String>,
    /// PyPI entries only.
    pub affected: Vec<Affected>,
}

impl Advisory {
    /// The id and its aliases, CVE ids first (the names users search for).
    pub fn ids(&self) -> Vec<&str> {
        let mut ids: Vec<&str> = std::iter::once(self.id.as_str())
            .chain(self.aliases.iter().map(String::as_str))
            .collect();
        ids.sort_by_key(|i| {
            (
                !i.starts_with("CVE-"),
                !i.starts_with("GHSA-"),
                i.to_string(),
            )
        });
        ids.dedup();
        ids
    }
}

/// The versions of one package an advisory affects.
#[derive(Debug, Clone, PartialEq)]
pub struct Affected {
    /// PEP 503-normalised name.
    pub package: String,
    /// `ECOSYSTEM` ranges, each a list of events (`SEMVER` and `GIT` ranges do not apply
    /// to PyPI versions and are dropped).
    pub ranges: Vec<Vec<Event>>,
    /// Explicitly listed versions.
    pub versions: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Introduced(String),
    Fixed(String),
    LastAffected(String),
    Limit(String),
}

impl Event {
    pub fn version(&self) -> &str {
        match self {
            Event::Introduced(v) | Event::Fixed(v) | Event::LastAffected(v) | Event::Limit(v) => v,
        }
    }
}

/// Why a record could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("not valid OSV JSON: {0}")]
    Json(String),
    #[error("not valid OSV YAML: {0}")]
    Yaml(String),
    #[error("record has no id")]
    NoId,
}

/// A scalar that YAML may have typed as a number (`0.2`, `1`).
#[derive(Debug, Clone, Default)]
struct Text(String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Text;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string or a number")
            }
            fn visit_str<E>(self, v: &str) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_string<E>(self, v: String) -> Result<Text, E> {
                Ok(Text(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Text, E> {
                Ok(Text(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Deserialize)]
struct RawRecord {
    #[serde(default)]
    id: Text,
    #[serde(default)]
    aliases: Option<Vec<Text>>,
    #[serde(default)]
    summary: Option<Text>,
    #[serde(default)]
    modified: Option<Text>,
    #[serde(default)]
    withdrawn: Option<Text>,
    #[serde(default)]
    affected: Option<Vec<RawAffected>>,
}

#[derive(Deserialize)]
struct RawAffected {
    #[serde(default)]
    package: Option<RawPackage>,
    #[serde(default)]
    ranges: Option<Vec<RawRange>>,
    #[serde(default)]
    versions: Option<Vec<Text>>,
}

#[derive(Deserialize)]
struct RawPackage {
    #[serde(default)]
    ecosystem: Text,
    #[serde(default)]
    name: Text,
}

#[derive(Deserialize)]
struct RawRange {
    #[serde(rename = "type", default)]
    kind: Text,
    #[serde(default)]
    events: Option<Vec<RawEvent>>,
}

#[derive(Deserialize)]
struct RawEvent {
    introduced: Option<Text>,
    fixed: Option<Text>,
    last_affected: Option<Text>,
    limit: Option<Text>,
}

/// Parses one record; JSON when it starts with `{`, YAML otherwise. Records that are
/// withdrawn or concern no PyPI package give `Ok(None)`.
pub fn parse_record(bytes: &[u8]) -> Result<Option<Advisory>, RecordError> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    let raw: RawRecord = if first == Some(&b'{') {
        serde_json::from_slice(bytes).map_err(|e| RecordError::Json(e.to_string()))?
    } else {
        serde_norway::from_slice(bytes).map_err(|e| RecordError::Yaml(e.to_string()))?
    };
    from_raw(raw)
}

fn from_raw(raw: RawRecord) -> Result<Option<Advisory>, RecordError> {
    if raw.id.0.trim().is_empty() {
        return Err(RecordError::NoId);
    }
    if raw.withdrawn.is_some_and(|w| !w.0.is_empty()) {
        return Ok(None);
    }
    let affected: Vec<Affected> = raw
        .affected
        .unwrap_or_default()
        .into_iter()
        .filter_map(|a| {
            let p = a.package?;
            // "PyPI", or "PyPI:<release>" in some feeds.
            if !(p.ecosystem.0 == "PyPI" || p.ecosystem.0.starts_with("PyPI:")) {
                return None;
            }
            let ranges = a
                .ranges
                .unwrap_or_default()
                .into_iter()
                .filter(|r| r.kind.0 == "ECOSYSTEM")
                .map(|r| {
                    r.events
                        .unwrap_or_default()
                        .into_iter()
                        .filter_map(|e| {
                            Some(if let Some(v) = e.introduced {
                                Event::Introduced(v.0)
                            } else if let Some(v) = e.fixed {
                                Event::Fixed(v.0)
                            } else if let Some(v) = e.last_affected {
                                Event::LastAffected(v.0)
                            } else {
                                Event::Limit(e.limit?.0)
                            })
                        })
                        .collect()
                })
                .collect();
            Some(Affected {
                package: normalise_name(&p.name.0),
                ranges,
                versions: a
                    .versions
                    .unwrap_or_default()
                    .into_iter()
                    .map(|t| t.0)
                    .collect(),
            })
        })
        .collect();
    if affected.is_empty() {
        return Ok(None);
    }
    Ok(Some(Advisory {
        id: raw.id.0,
        aliases: raw
            .aliases
            .unwrap_or_default()
            .into_iter()
            .map(|t| t.0)
            .collect(),
        summary: raw.summary.map(|t| t.0).unwrap_or_default(),
        modified: raw.modified.map(|t| t.0),
        affected,
    }))
}

/// Days since 1970-01-01 of an RFC 3339 date (`2025-01-22T16:23:21Z` or `2025-01-22`).
pub fn days_of(date: &str) -> Option<i64> {
    let d = date.get(..10)?;
    let mut it = d.split('-');
    let y: i64 = it.next()?.parse().ok()?;
    let m: i64 = it.next()?.parse().ok()?;
    let day: i64 = it.next()?.parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) {
        return None;
    }
    // Howard Hinnant's days_from_civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_numbers_stay_versions() {
        let y = b"id: PYSEC-X\nmodified: 2023-05-04T03:49:47Z\naliases: [CVE-1]\naffected:\n- package: {name: Onnx, ecosystem: PyPI}\n  ranges:\n  - type: GIT\n    events: [{introduced: '0'}, {fixed: abc}]\n  - type: ECOSYSTEM\n    events: [{introduced: '0'}, {fixed: 1.13.0}]\n  versions: [0.2, 1, 1.0.0]\n";
        let a = parse_record(y).unwrap().unwrap();
        assert_eq!(a.affected[0].package, "onnx");
        assert_eq!(a.affected[0].versions, ["0.2", "1", "1.0.0"]);
        assert_eq!(a.affected[0].ranges.len(), 1);
        assert_eq!(a.modified.as_deref(), Some("2023-05-04T03:49:47Z"));
    }

    #[test]
    fn json_and_non_pypi_and_withdrawn() {
        let j = br#"{"id":"GHSA-1","aliases":["CVE-2"],"affected":[{"package":{"ecosystem":"npm","name":"x"}}]}"#;
        assert_eq!(parse_record(j).unwrap(), None);
        let w = br#"{"id":"GHSA-1","withdrawn":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"PyPI","name":"x"}}]}"#;
        assert_eq!(parse_record(w).unwrap(), None);
        assert!(parse_record(b"{\"id\": 3,").is_err());
        assert!(parse_record(b"- just\n- a list\n").is_err());
        assert_eq!(parse_record(br#"{"affected":[]}"#), Err(RecordError::NoId));
    }

    #[test]
    fn ids_put_cve_first() {
        let a = Advisory {
            id: "PYSEC-2024-222".into(),
            aliases: vec!["GHSA-x".into(), "CVE-2024-27318".into()],
            summary: String::new(),
            modified: None,
            affected: vec![],
        };
        assert_eq!(a.ids(), ["CVE-2024-27318", "GHSA-x", "PYSEC-2024-222"]);
    }

    #[test]
    fn dates() {
        assert_eq!(days_of("1970-01-01"), Some(0));
        assert_eq!(days_of("2025-02-12T00:00:00Z"), Some(20131));
        assert_eq!(days_of("garbage"), None);
    }
}
