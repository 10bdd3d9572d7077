//! Hostile and malformed input never panics, hangs or runs away: deep nesting, huge
//! numbers, and many random mutations of real-looking manifests and records.

use assay_advisories::manifest::{Kind, parse};
use assay_advisories::osv::parse_record;
use assay_advisories::version::Requirement;

const KINDS: [Kind; 5] = [
    Kind::Requirements,
    Kind::Pyproject,
    Kind::SetupCfg,
    Kind::PipfileLock,
    Kind::Conda,
];

#[test]
fn deep_nesting_is_a_problem_not_a_stack_overflow() {
    for open in ["[", "{", "a = [", "- "] {
        let text = open.repeat(200_000);
        for kind in KINDS {
            let _ = parse(kind, &text);
        }
        let _ = parse_record(text.as_bytes());
    }
    let toml = format!("[project]\ndependencies = {}", "[".repeat(100_000));
    assert!(!parse(Kind::Pyproject, &toml).problems.is_empty());
}

#[test]
fn huge_numbers_do_not_overflow() {
    let p = parse(
        Kind::Pyproject,
        "[tool.poetry.dependencies]\na = \"^18446744073709551615\"\nb = \"~18446744073709551615.18446744073709551615\"\n",
    );
    assert!(p.requirements.len() + p.problems.len() == 2, "{p:?}");
    for spec in [
        "==18446744073709551615.*",
        "~=1.18446744073709551615",
        "<99999999999999999999999",
    ] {
        let _ = Requirement::parse(spec);
    }
    let _ = parse_record(b"{\"id\":\"X\",\"modified\":\"99999-99-99\",\"affected\":[]}");
}

/// A small deterministic generator (xorshift), so failures reproduce.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn random_mutations_never_panic() {
    let seeds: [(&[Kind], &str); 6] = [
        (
            &[Kind::Requirements],
            "# c\nllama-cpp-python[server]==0.2.70 ; python_version >= '3.9' \\\n  --hash=sha256:00\n-r x.txt\ntorch (>=2.0,<3)\npkg @ https://x/y.whl\n",
        ),
        (
            &[Kind::Pyproject],
            "[project]\ndependencies = [\"keras==3.8.0\"]\n[tool.poetry.dependencies]\nonnx = \"^1.15.0\"\nx = {version = \"~1.2\"}\n",
        ),
        (
            &[Kind::SetupCfg],
            "[options]\ninstall_requires =\n    torch==2.5.1\n    numpy\n[options.extras_require]\nx = onnx<1.16\n",
        ),
        (
            &[Kind::PipfileLock],
            "{\"default\": {\"torch\": {\"version\": \"==2.5.1\", \"markers\": \"x\"}}}",
        ),
        (
            &[Kind::Conda],
            "dependencies:\n  - conda-forge::pytorch=2.5.1=build\n  - pip:\n    - keras==3.8.0\n",
        ),
        (
            &[],
            "id: PYSEC-1\nmodified: 2025-01-01T00:00:00Z\naffected:\n- package: {name: onnx, ecosystem: PyPI}\n  ranges:\n  - type: ECOSYSTEM\n    events: [{introduced: '0'}, {fixed: 1.16.0}, {last_affected: 1.2}]\n  versions: [0.2, 1.0.0]\n",
        ),
    ];
    let alphabet: &[u8] = b"=<>!~^*.,;[]{}()\"'#@:-_ \n\\0123456789abcxyz\xc3\xa9\t";
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for (kinds, seed) in seeds {
        let r = Requirement::parse("<1.16").unwrap();
        for _ in 0..3_000 {
            let mut b = seed.as_bytes().to_vec();
            for _ in 0..1 + rng.next() % 6 {
                let at = (rng.next() as usize) % (b.len() + 1);
                let c = alphabet[(rng.next() as usize) % alphabet.len()];
                match rng.next() % 3 {
                    0 => b.insert(at, c),
                    1 if at < b.len() => b[at] = c,
                    _ if at < b.len() => {
                        b.remove(at);
                    }
                    _ => {}
                }
            }
            let Ok(text) = String::from_utf8(b) else {
                continue;
            };
            for &k in kinds {
                for d in parse(k, &text).requirements {
                    let _ = d.requirement.is_pinned();
                }
            }
            if let Ok(Some(a)) = parse_record(text.as_bytes()) {
                for af in &a.affected {
                    let _ = r.verdict(af);
                }
            }
        }
    }
}
