//! The protobuf text format of the same files (`saved_model.pbtxt`, which TensorFlow
//! loads when `saved_model.pb` is absent, and `.pbtxt` graphs): a tokenizer that follows
//! message nesting and pulls out what the binary path reads: every node's op and name,
//! and the names of library functions. Strings are unescaped the way the text parser
//! does it (C escapes, octal, hex, adjacent literals concatenated), so `"Read\x46ile"`
//! is `ReadFile` here too.

use super::TfError;

/// Message nesting accepted (the binary path's limit).
const MAX_TEXT_DEPTH: usize = crate::protobuf::MAX_MESSAGE_DEPTH as usize;
/// Leading bytes looked at to recognise the format.
const SNIFF_BYTES: usize = 4096;

/// A node of a text-format graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextNode {
    pub name: String,
    pub op: String,
    /// 1-based line of the `op` field.
    pub line: u32,
    /// The name of the library function the node is in, if any.
    pub function: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TextGraph {
    pub nodes: Vec<TextNode>,
    pub functions: Vec<String>,
}

/// True for text that starts like a text-format SavedModel or GraphDef.
pub fn sniff(data: &[u8]) -> bool {
    let head = &data[..data.len().min(SNIFF_BYTES)];
    if head.contains(&0) {
        return false;
    }
    let mut t = Tokens::new(head);
    let Some(Ok(Tok::Word(first))) = t.next() else {
        return false;
    };
    let second = t.next();
    match first.as_slice() {
        b"saved_model_schema_version" => matches!(second, Some(Ok(Tok::Punct(b':')))),
        b"meta_graphs" | b"node" | b"library" | b"versions" => match second {
            Some(Ok(Tok::Punct(b'{' | b'<'))) => true,
            Some(Ok(Tok::Punct(b':'))) => matches!(t.next(), Some(Ok(Tok::Punct(b'{' | b'<')))),
            _ => false,
        },
        _ => false,
    }
}

/// Extracts nodes and functions, within `max_nodes`.
pub fn parse(data: &[u8], max_nodes: u64) -> Result<TextGraph, TfError> {
    let mut out = TextGraph::default();
    let mut stack: Vec<Vec<u8>> = Vec::new();
    // The current node's name and op, completed when its block closes.
    let mut node: Option<(String, Option<(String, u32)>)> = None;
    let mut function: Option<String> = None;
    let mut t = Tokens::new(data);
    let mut pending: Option<Vec<u8>> = None;
    while let Some(tok) = t.next() {
        let tok = tok?;
        match tok {
            Tok::Word(w) => {
                if let Some(field) = pending.take() {
                    // A scalar value that is not a string (`version: 3`).
                    let _ = (field, w);
                } else {
                    pending = Some(w);
                }
            }
            Tok::Punct(b':') => {}
            Tok::Punct(b'{' | b'<') => {
                let field = pending.take().unwrap_or_default();
                if stack.len() >= MAX_TEXT_DEPTH {
                    return Err(TfError::Text(format!(
                        "messages nested deeper than {MAX_TEXT_DEPTH} (line {})",
                        t.line
                    )));
                }
                if is_node_block(&field) {
                    node = Some((String::new(), None));
                }
                stack.push(field);
            }
            Tok::Punct(b'}' | b'>') => {
                let Some(field) = stack.pop() else {
                    return Err(TfError::Text(format!("unbalanced '}}' on line {}", t.line)));
                };
                if is_node_block(&field)
                    && let Some((name, Some((op, line)))) = node.take()
                {
                    if out.nodes.len() as u64 >= max_nodes {
                        return Err(TfError::Limit {
                            what: "nodes",
                            count: out.nodes.len() as u64 + 1,
                            limit: max_nodes,
                        });
                    }
                    out.nodes.push(TextNode {
                        name,
                        op,
                        line,
                        function: function.clone(),
                    });
                }
                if field == b"function" {
                    function = None;
                }
                pending = None;
            }
            Tok::Str(mut s) => {
                let line = t.line;
                // Adjacent literals are one string.
                while let Some(Ok(Tok::Str(more))) = t.peek() {
                    s.extend(more);
                    t.next();
                }
                let field = pending.take().unwrap_or_default();
                let top = stack.last().map(Vec::as_slice).unwrap_or_default();
                let text = String::from_utf8_lossy(&s).into_owned();
                match (field.as_slice(), top) {
                    (b"op", t) if is_node_block(t) => {
                        if let Some(n) = node.as_mut() {
                            n.1 = Some((text, line));
                        }
                    }
                    (b"name", t) if is_node_block(t) => {
                        if let Some(n) = node.as_mut() {
                            n.0 = text;
                        }
                    }
                    (b"name", b"signature") => {
                        out.functions.push(text.clone());
                        function = Some(text);
                    }
                    _ => {}
                }
            }
            Tok::Punct(_) => pending = None,
        }
    }
    if !stack.is_empty() {
        return Err(TfError::Text(
            "unterminated message at the end of the file".into(),
        ));
    }
    Ok(out)
}

fn is_node_block(field: &[u8]) -> bool {
    field == b"node" || field == b"node_def"
}

enum Tok {
    Word(Vec<u8>),
    Str(Vec<u8>),
    Punct(u8),
}

struct Tokens<'a> {
    data: &'a [u8],
    pos: usize,
    line: u32,
    peeked: Option<Result<Tok, TfError>>,
}

impl<'a> Tokens<'a> {
    fn new(data: &'a [u8]) -> Self {
        Tokens {
            data,
            pos: 0,
            line: 1,
            peeked: None,
        }
    }

    fn peek(&mut self) -> Option<&Result<Tok, TfError>> {
        if self.peeked.is_none() {
            self.peeked = self.lex();
        }
        self.peeked.as_ref()
    }

    fn byte(&self) -> Option<u8> {
        self.data.get(self.pos).copied()
    }

    fn lex(&mut self) -> Option<Result<Tok, TfError>> {
        loop {
            let b = self.byte()?;
            match b {
                b'\n' => {
                    self.line += 1;
                    self.pos += 1;
                }
                b' ' | b'\t' | b'\r' | 0x0b | 0x0c => self.pos += 1,
                b'#' => {
                    while self.byte().is_some_and(|c| c != b'\n') {
                        self.pos += 1;
                    }
                }
                _ => break,
            }
        }
        let b = self.byte()?;
        Some(match b {
            b'"' | b'\'' => self.string(b),
            b'[' => {
                // An extension or Any type URL: `[type.googleapis.com/x.Y]`.
                let start = self.pos;
                while self.byte().is_some_and(|c| c != b']' && c != b'\n') {
                    self.pos += 1;
                }
                self.pos += 1;
                Ok(Tok::Word(
                    self.data[start..self.pos.min(self.data.len())].to_vec(),
                ))
            }
            b'{' | b'}' | b'<' | b'>' | b':' | b',' | b';' | b']' => {
                self.pos += 1;
                Ok(Tok::Punct(b))
            }
            _ => {
                let start = self.pos;
                while self.byte().is_some_and(|c| {
                    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-' | b'+')
                }) {
                    self.pos += 1;
                }
                if self.pos == start {
                    self.pos += 1;
                    return Some(Err(TfError::Text(format!(
                        "unexpected byte 0x{b:02x} on line {}",
                        self.line
                    ))));
                }
                Ok(Tok::Word(self.data[start..self.pos].to_vec()))
            }
        })
    }

    fn string(&mut self, quote: u8) -> Result<Tok, TfError> {
        let line = self.line;
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            let Some(b) = self.byte() else {
                return Err(TfError::Text(format!("unterminated string on line {line}")));
            };
            self.pos += 1;
            match b {
                b'\n' => return Err(TfError::Text(format!("newline in string on line {line}"))),
                b'\\' => {
                    let Some(e) = self.byte() else { continue };
                    self.pos += 1;
                    match e {
                        b'n' => out.push(b'\n'),
                        b't' => out.push(b'\t'),
                        b'r' => out.push(b'\r'),
                        b'a' => out.push(7),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'v' => out.push(11),
                        b'0'..=b'7' => {
                            let mut v = u32::from(e - b'0');
                            for _ in 0..2 {
                                match self.byte() {
                                    Some(d @ b'0'..=b'7') => {
                                        v = v * 8 + u32::from(d - b'0');
                                        self.pos += 1;
                                    }
                                    _ => break,
                                }
                            }
                            out.push(v as u8);
                        }
                        b'x' | b'X' => {
                            let mut v = 0u32;
                            for _ in 0..2 {
                                match self.byte().and_then(|d| (d as char).to_digit(16)) {
                                    Some(d) => {
                                        v = v * 16 + d;
                                        self.pos += 1;
                                    }
                                    None => break,
                                }
                            }
                            out.push(v as u8);
                        }
                        other => out.push(other),
                    }
                }
                q if q == quote => return Ok(Tok::Str(out)),
                other => out.push(other),
            }
        }
    }
}

impl Iterator for Tokens<'_> {
    type Item = Result<Tok, TfError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.peeked.take() {
            Some(t) => Some(t),
            None => self.lex(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAVED: &str = r#"# comment
saved_model_schema_version: 1
meta_graphs {
  meta_info_def { tags: "serve" }
  graph_def {
    node { name: "x" op: "Placeholder" attr { key: "dtype" value { type: DT_STRING } } }
    library {
      function {
        signature { name: "__inference_f_1" }
        node_def { name: "r" op: 'Read\x46' "ile" input: "x" }
        node_def { op: "Read\106ile" name: "r2" }
      }
    }
  }
}
"#;

    #[test]
    fn ops_functions_and_escapes() {
        assert!(sniff(SAVED.as_bytes()));
        let g = parse(SAVED.as_bytes(), 100).unwrap();
        let ops: Vec<(&str, &str, Option<&str>)> = g
            .nodes
            .iter()
            .map(|n| (n.name.as_str(), n.op.as_str(), n.function.as_deref()))
            .collect();
        assert_eq!(
            ops,
            vec![
                ("x", "Placeholder", None),
                ("r", "ReadFile", Some("__inference_f_1")),
                ("r2", "ReadFile", Some("__inference_f_1")),
            ]
        );
        assert_eq!(g.functions, vec!["__inference_f_1"]);
    }

    #[test]
    fn graph_text_and_errors() {
        assert!(sniff(b"node {\n  name: \"a\"\n  op: \"Const\"\n}\n"));
        assert!(!sniff(b"node_modules/\n"));
        assert!(!sniff(b"hello: world"));
        assert!(parse(b"node { op: \"x\"", 10).is_err());
        assert!(parse(b"node { op: \"x }", 10).is_err());
        assert!(parse(b"}", 10).is_err());
        let deep = "a {".repeat(100);
        assert!(parse(deep.as_bytes(), 10).is_err());
        let many = "node { op: \"NoOp\" }\n".repeat(5);
        assert!(matches!(
            parse(many.as_bytes(), 3),
            Err(TfError::Limit { .. })
        ));
    }
}
