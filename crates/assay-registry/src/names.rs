//! Validation of the names that arrive in URLs. Everything that fails answers exactly as a
//! repository that does not exist would.

/// Longest org or model name.
pub const MAX_NAME: usize = 96;
/// Longest file path in a repository.
pub const MAX_PATH: usize = 1024;
/// Longest revision name.
pub const MAX_REVISION: usize = 128;

/// An org or model name: `A-Z a-z 0-9 - _ .`, not starting or ending with `.` or `-`,
/// no `..`.
pub fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_NAME
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        && !s.starts_with(['.', '-'])
        && !s.ends_with(['.', '-'])
        && !s.contains("..")
}

/// A file path inside a repository: relative, `/`-separated, no empty, `.` or `..`
/// components, no backslashes or control characters.
pub fn valid_path(p: &str) -> bool {
    !p.is_empty()
        && p.len() <= MAX_PATH
        && !p.chars().any(|c| c.is_control() || c == '\\')
        && p.split('/').all(|c| !c.is_empty() && c != "." && c != "..")
}

/// A branch name: `A-Z a-z 0-9 - _ .`, not 40 hex digits (which would read as a commit
/// id), not starting with `.` or `-`.
pub fn valid_branch(s: &str) -> bool {
    valid_name(s) && s.len() <= MAX_REVISION && !is_commit_id(s)
}

pub fn is_commit_id(s: &str) -> bool {
    s.len() == 40
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

pub fn is_sha256(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_paths() {
        assert!(valid_name("gpt2") && valid_name("Llama-3.1-8B") && valid_name("a_b"));
        for bad in [
            "", ".", "..", "a..b", ".x", "x.", "-x", "a/b", "a%2Fb", "a b", "ä",
        ] {
            assert!(!valid_name(bad), "{bad}");
        }
        assert!(valid_path("model.safetensors") && valid_path("sub/dir/x.bin"));
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../b",
            "a//b",
            "a/./b",
            "a\\b",
            "a\0b",
            "a/",
        ] {
            assert!(!valid_path(bad), "{bad:?}");
        }
        assert!(valid_branch("main") && !valid_branch(&"a".repeat(40)));
    }
}
