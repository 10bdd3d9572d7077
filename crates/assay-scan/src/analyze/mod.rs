//! Format analysers: each turns a parser's typed model into findings and recurses into
//! what the format contains.

pub mod compressed;
pub mod gguf;
pub mod keras;
pub mod npy;
pub mod onnx;
pub mod pickle;
pub mod python;
pub mod safetensors;
pub mod savedmodel;
pub mod secrets;
pub mod tar;
pub mod template;
pub mod tensor;
pub mod text;
#[cfg(test)]
mod unpickle_once;
pub mod zip;

/// True when an archive member name would escape the extraction folder.
pub fn escapes(name: &str) -> bool {
    let n = name.replace('\\', "/");
    if n.starts_with('/') || n.starts_with("//") || (n.len() > 1 && n.as_bytes()[1] == b':') {
        return true;
    }
    let mut depth: i64 = 0;
    for part in n.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                depth -= 1;
                if depth < 0 {
                    return true;
                }
            }
            _ => depth += 1,
        }
    }
    false
}

/// True when a link stored at `name` with `target` resolves outside the archive root.
pub fn link_escapes(name: &str, target: &str) -> bool {
    let t = target.replace('\\', "/");
    if t.starts_with('/') || (t.len() > 1 && t.as_bytes()[1] == b':') {
        return true;
    }
    let parent = name.replace('\\', "/");
    let parent = parent.rsplit_once('/').map(|(p, _)| p).unwrap_or("");
    escapes(&format!("{parent}/{t}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traversal_and_links() {
        assert!(escapes("../x"));
        assert!(escapes("a/../../x"));
        assert!(escapes("/etc/passwd"));
        assert!(escapes("C:\\Windows\\x"));
        assert!(!escapes("a/../b"));
        assert!(!escapes("archive/data.pkl"));
        assert!(link_escapes("a/b", "/etc/passwd"));
        assert!(link_escapes("a/b", "../../x"));
        assert!(!link_escapes("a/b", "../c"));
    }
}
