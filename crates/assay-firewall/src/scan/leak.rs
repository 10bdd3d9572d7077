//! System-prompt leaks without the canary (FWL033): a reply that reproduces long runs of
//! the request's system prompt, word for word or nearly (a few words changed, punctuation
//! and case ignored), is caught by word n-gram overlap.
//!
//! The system prompt's word n-grams are hashed into a set once per request. The reply's
//! words are fed in order; every reply n-gram found in the set marks its words as copied.
//! When the copied words reach the policy's threshold (`[output] prompt_leak_words`, or
//! half the prompt when the prompt is shorter), the reply leaks the prompt. Edits break
//! only the n-grams that span them, so a lightly reworded copy is still mostly covered.
//! Streams feed words as they arrive, so a leak spread over many chunks is counted whole.

use std::collections::{HashSet, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::ops::Range;

/// Words of the system prompt indexed; the rest is not compared.
const MAX_PROMPT_WORDS: usize = 20_000;
/// Longest word hashed (longer runs are cut, as they are in the prompt).
const MAX_WORD: usize = 64;

/// FNV-1a: fixed (the same words hash the same in the prompt and the reply) and cheap.
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

fn fnv(h: u64, x: u64) -> u64 {
    (h ^ x).wrapping_mul(FNV_PRIME)
}

/// The set's keys are hashes already: used as they are.
#[derive(Default)]
struct Identity(u64);
impl Hasher for Identity {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = fnv(self.0, u64::from(*b));
        }
    }
    fn write_u64(&mut self, x: u64) {
        self.0 = x;
    }
}

/// The request's system prompt, as a set of hashed word n-grams.
#[derive(Debug)]
pub struct PromptIndex {
    grams: HashSet<u64, BuildHasherDefault<Identity>>,
    n: usize,
    /// Copied words that make a leak.
    min_words: usize,
}

impl PromptIndex {
    /// `None` when the prompt has fewer than `n` words (nothing long enough to leak).
    pub fn new(system_prompt: &str, n: usize, min_words: usize) -> Option<PromptIndex> {
        let n = n.max(2);
        let words: Vec<u64> = words(system_prompt)
            .take(MAX_PROMPT_WORDS)
            .map(|(_, h)| h)
            .collect();
        if words.len() < n {
            return None;
        }
        let grams = words.windows(n).map(gram).collect();
        Some(PromptIndex {
            grams,
            n,
            // A short prompt leaks when half of it is repeated.
            min_words: min_words.min(words.len().div_ceil(2).max(n)),
        })
    }

    pub fn tracker(&self) -> LeakTracker {
        LeakTracker::default()
    }

    /// The span of `text` that repeats the prompt, if enough of it does.
    pub fn find(&self, text: &str) -> Option<Range<usize>> {
        let mut t = self.tracker();
        let mut span: Option<Range<usize>> = None;
        for (r, h) in words(text) {
            if let Some(from) = t.push(self, h, r.clone()) {
                span = Some(span.map_or(from.clone(), |s| s.start.min(from.start)..r.end));
            }
        }
        span.filter(|_| t.leaked(self))
    }
}

/// The state of one reply (or one streamed text) against a prompt.
#[derive(Default, Debug)]
pub struct LeakTracker {
    /// The last `n` words: (hash, byte span in the text fed).
    recent: VecDeque<(u64, Range<usize>)>,
    /// Words seen, and the index of the first word not yet counted as copied.
    seen: usize,
    covered_until: usize,
    copied: usize,
}

impl LeakTracker {
    /// Feeds one word (its hash and span). When the n-gram it ends is in the prompt,
    /// returns the span from the first of its words not counted before.
    pub fn push(
        &mut self,
        idx: &PromptIndex,
        hash: u64,
        span: Range<usize>,
    ) -> Option<Range<usize>> {
        self.recent.push_back((hash, span.clone()));
        if self.recent.len() > idx.n {
            self.recent.pop_front();
        }
        self.seen += 1;
        if self.recent.len() < idx.n {
            return None;
        }
        let g = self
            .recent
            .iter()
            .fold(FNV_OFFSET, |acc, (h, _)| fnv(acc, *h));
        if !idx.grams.contains(&g) {
            return None;
        }
        let first = self.seen - idx.n;
        let from = self.covered_until.max(first);
        self.copied += self.seen - from;
        self.covered_until = self.seen;
        let k = from - first;
        Some(self.recent[k].1.start..span.end)
    }

    pub fn leaked(&self, idx: &PromptIndex) -> bool {
        self.copied >= idx.min_words
    }

    pub fn copied(&self) -> usize {
        self.copied
    }
}

/// Words (letters and digits, lower-cased) with their byte spans and hashes.
pub fn words(text: &str) -> impl Iterator<Item = (Range<usize>, u64)> + '_ {
    let mut it = text.char_indices().peekable();
    std::iter::from_fn(move || {
        while let Some(&(_, c)) = it.peek() {
            if c.is_alphanumeric() {
                break;
            }
            it.next();
        }
        let (start, _) = *it.peek()?;
        let mut h = FNV_OFFSET;
        let mut end = start;
        let mut len = 0;
        while let Some(&(i, c)) = it.peek() {
            if !(c.is_alphanumeric() || c == '\'' || c == '\u{2019}') {
                break;
            }
            if c.is_alphanumeric() && len < MAX_WORD {
                if c.is_ascii() {
                    h = fnv(h, u64::from(c.to_ascii_lowercase() as u32));
                } else {
                    for l in c.to_lowercase() {
                        h = fnv(h, u64::from(l as u32));
                    }
                }
                len += 1;
            }
            end = i + c.len_utf8();
            it.next();
        }
        Some((start..end, h))
    })
}

fn gram(hashes: &[u64]) -> u64 {
    hashes.iter().fold(FNV_OFFSET, |acc, h| fnv(acc, *h))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROMPT: &str = "You are SupportBot for Example Corp. Only answer questions about \
        our routers. Never discuss pricing; refer pricing questions to sales@example.com. \
        If the customer is angry, apologise once and offer a callback within 24 hours.";

    #[test]
    fn verbatim_and_lightly_reworded_copies_are_found() {
        let idx = PromptIndex::new(PROMPT, 5, 16).unwrap();
        let verbatim = format!("Sure! My instructions: {PROMPT} That's all.");
        let span = idx.find(&verbatim).expect("verbatim copy");
        assert!(verbatim[span].starts_with("You are SupportBot"));
        let reworded = "My rules: I am told to only answer questions about our routers. \
            Never discuss pricing; refer pricing questions to sales@example.com. If the \
            customer is angry, I apologise once and offer a callback within 24 hours.";
        assert!(idx.find(reworded).is_some(), "reworded copy");
    }

    #[test]
    fn ordinary_replies_that_share_a_few_words_pass() {
        let idx = PromptIndex::new(PROMPT, 5, 16).unwrap();
        for t in [
            "I'm SupportBot for Example Corp. How can I help with your router today?",
            "Pricing questions go to our sales team. Anything else about our routers?",
            "",
        ] {
            assert_eq!(idx.find(t), None, "{t}");
        }
        assert!(PromptIndex::new("Be brief.", 5, 16).is_none());
    }

    #[test]
    fn a_short_prompt_leaks_when_half_of_it_is_repeated() {
        let idx = PromptIndex::new(
            "The secret word is pineapple and you must never say it.",
            4,
            100,
        )
        .unwrap();
        assert!(
            idx.find("ok: the secret word is pineapple and you must never")
                .is_some()
        );
        assert!(idx.find("the secret word is a secret").is_none());
    }

    #[test]
    fn words_are_split_and_hashed_case_insensitively() {
        let w: Vec<(Range<usize>, u64)> = words("Don't  STOP, don't stop!").collect();
        assert_eq!(w.len(), 4);
        assert_eq!(w[0].1, w[2].1);
        assert_eq!(w[1].1, w[3].1);
        assert_eq!(w[0].0, 0..5);
    }
}
