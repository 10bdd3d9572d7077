//! Byte-level BPE tokenizer (GPT-2 family) built from a GGUF file's `tokenizer.ggml.*`
//! metadata, with the pre-tokenizer SmolLM2 uses (llama.cpp's `smollm`: every digit on its
//! own, then the GPT-2 split). Special tokens are only produced by the chat template, never
//! parsed out of user text, so a user cannot forge `<|im_end|>`.

use std::collections::HashMap;

pub struct Tokenizer {
    vocab: HashMap<String, u32>,
    tokens: Vec<String>,
    ranks: HashMap<(String, String), u32>,
    byte_to_char: [char; 256],
    char_to_byte: HashMap<char, u8>,
    specials: Vec<bool>,
}

/// GPT-2's reversible map from bytes to printable characters.
fn bytes_to_unicode() -> [char; 256] {
    let mut out = ['\0'; 256];
    let mut n = 0u32;
    for b in 0..256u32 {
        let printable =
            (33..=126).contains(&b) || (161..=172).contains(&b) || (174..=255).contains(&b);
        let c = if printable {
            b
        } else {
            n += 1;
            255 + n
        };
        out[b as usize] = char::from_u32(c).unwrap_or('?');
    }
    out
}

impl Tokenizer {
    /// `token_types`: GGUF token types (3 = control); may be empty.
    pub fn new(tokens: Vec<String>, merges: &[String], token_types: &[i32]) -> Tokenizer {
        let vocab = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), i as u32))
            .collect();
        let ranks = merges
            .iter()
            .enumerate()
            .filter_map(|(i, m)| {
                let (a, b) = m.split_once(' ')?;
                Some(((a.to_string(), b.to_string()), i as u32))
            })
            .collect();
        let byte_to_char = bytes_to_unicode();
        let char_to_byte = byte_to_char
            .iter()
            .enumerate()
            .map(|(b, c)| (*c, b as u8))
            .collect();
        let specials = (0..tokens.len())
            .map(|i| token_types.get(i).is_some_and(|t| *t == 3 || *t == 4))
            .collect();
        Tokenizer {
            vocab,
            tokens,
            ranks,
            byte_to_char,
            char_to_byte,
            specials,
        }
    }

    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.vocab.get(token).copied()
    }

    /// Encode plain text (no special tokens are recognised in it).
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let mut ids = Vec::new();
        for piece in pre_tokenize(text) {
            let mapped: String = piece
                .bytes()
                .map(|b| self.byte_to_char[b as usize])
                .collect();
            for sym in self.bpe(&mapped) {
                match self.vocab.get(&sym) {
                    Some(id) => ids.push(*id),
                    // Not in the vocabulary (cannot happen with a complete byte-level
                    // vocabulary): fall back to one token per byte character.
                    None => ids.extend(sym.chars().filter_map(|c| self.vocab.get(&c.to_string()))),
                }
            }
        }
        ids
    }

    fn bpe(&self, word: &str) -> Vec<String> {
        let mut parts: Vec<String> = word.chars().map(|c| c.to_string()).collect();
        while parts.len() > 1 {
            let mut best: Option<(u32, usize)> = None;
            for i in 0..parts.len() - 1 {
                if let Some(r) = self.ranks.get(&(parts[i].clone(), parts[i + 1].clone()))
                    && best.is_none_or(|(br, _)| *r < br)
                {
                    best = Some((*r, i));
                }
            }
            let Some((_, i)) = best else { break };
            let merged = format!("{}{}", parts[i], parts[i + 1]);
            parts[i] = merged;
            parts.remove(i + 1);
        }
        parts
    }

    /// Decode ids to text; special tokens are dropped, invalid UTF-8 replaced.
    pub fn decode(&self, ids: &[u32]) -> String {
        let mut bytes = Vec::new();
        for &id in ids {
            let i = id as usize;
            if i >= self.tokens.len() || self.specials[i] {
                continue;
            }
            for c in self.tokens[i].chars() {
                match self.char_to_byte.get(&c) {
                    Some(b) => bytes.push(*b),
                    None => bytes.extend(c.to_string().as_bytes()),
                }
            }
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

#[derive(PartialEq, Clone, Copy)]
enum Class {
    Letter,
    Number,
    Space,
    Other,
}

fn class(c: char) -> Class {
    if c.is_alphabetic() {
        Class::Letter
    } else if c.is_numeric() {
        Class::Number
    } else if c.is_whitespace() {
        Class::Space
    } else {
        Class::Other
    }
}

/// `\p{N}` split, then `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`.
pub fn pre_tokenize(text: &str) -> Vec<&str> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let end_of = |i: usize| chars.get(i).map_or(text.len(), |(o, _)| *o);
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let start = i;
        let c = chars[i].1;
        // Contractions.
        if c == '\'' {
            let rest = &text[chars[i].0..];
            let lower_match = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d"]
                .iter()
                .find(|s| rest.starts_with(**s));
            if let Some(s) = lower_match {
                let n = s.chars().count();
                out.push(&text[chars[i].0..end_of(i + n)]);
                i += n;
                continue;
            }
        }
        let (lead, cls) =
            if c == ' ' && i + 1 < chars.len() && class(chars[i + 1].1) != Class::Space {
                (1, class(chars[i + 1].1))
            } else {
                (0, class(c))
            };
        match cls {
            Class::Number => {
                // Digits are split one by one, and the first split keeps a preceding
                // space out of the digit's piece.
                if lead == 1 {
                    out.push(&text[chars[i].0..end_of(i + 1)]);
                    i += 1;
                }
                out.push(&text[chars[i].0..end_of(i + 1)]);
                i += 1;
            }
            Class::Letter | Class::Other => {
                let mut j = i + lead;
                while j < chars.len() && class(chars[j].1) == cls {
                    // A contraction ends a letter run only at its own start position; the
                    // GPT-2 regex is leftmost-first, so runs continue greedily.
                    j += 1;
                }
                out.push(&text[chars[start].0..end_of(j)]);
                i = j;
            }
            Class::Space => {
                let mut j = i;
                while j < chars.len() && class(chars[j].1) == Class::Space {
                    j += 1;
                }
                // `\s+(?!\S)` leaves the last space for the next word, except before a
                // digit (digits were split off first, so the run ends its segment).
                if j < chars.len() && j - i >= 2 && class(chars[j].1) != Class::Number {
                    j -= 1;
                }
                out.push(&text[chars[start].0..end_of(j)]);
                i = j;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pre_tokenizer_matches_gpt2_regex() {
        assert_eq!(pre_tokenize("Hello world"), ["Hello", " world"]);
        assert_eq!(
            pre_tokenize("I'm 42!  ok\n\nHi"),
            ["I", "'m", " ", "4", "2", "!", " ", " ok", "\n", "\n", "Hi"]
        );
        assert_eq!(pre_tokenize("a  b"), ["a", " ", " b"]);
        assert_eq!(pre_tokenize("end  "), ["end", "  "]);
        assert_eq!(pre_tokenize("x  1"), ["x", "  ", "1"]);
        assert_eq!(pre_tokenize(" ...x"), [" ...", "x"]);
    }

    #[test]
    fn bpe_round_trips() {
        let b2c = bytes_to_unicode();
        let mut tokens: Vec<String> = (0..=255u8).map(|b| b2c[b as usize].to_string()).collect();
        tokens.push("he".into());
        tokens.push("hel".into());
        let merges = vec!["h e".to_string(), "he l".to_string()];
        let t = Tokenizer::new(tokens, &merges, &[]);
        let ids = t.encode("hello é");
        assert_eq!(ids[0], 257);
        assert_eq!(t.decode(&ids), "hello é");
    }
}
