//! Full-text search: normalization shared by every backend.
//!
//! Text is split into words at every character that is not a letter or digit, and lowercased.
//! A query matches a record when *every* query term is a prefix of *some* word of the record's
//! searchable fields (DESIGN §9). Phone numbers additionally yield their digits run together
//! and the suffixes of those, so any run of 3+ digits of a number finds it. Words are capped at [`MAX_WORD`] characters.
//!
//! Backends index the words ([`tokens_of`]) in the same commit as the record; a prefix query
//! is then a range scan. Ranking is deliberately absent: a broad query must cost what a page
//! costs, not what all matches cost.

use crate::model::Record;

/// Longest indexed word, in chars; longer words are truncated (prefix matching still works).
pub const MAX_WORD: usize = 64;
/// Most terms considered in one query.
pub const MAX_TERMS: usize = 8;

/// Splits `text` into normalized words, appending them to `out`.
pub fn tokenize_into(text: &str, out: &mut Vec<String>) {
    for word in text.split(|c: char| !c.is_alphanumeric()) {
        if word.is_empty() {
            continue;
        }
        let w: String = word
            .chars()
            .flat_map(char::to_lowercase)
            .take(MAX_WORD)
            .collect();
        out.push(w);
    }
}

/// Splits `text` into normalized words.
pub fn tokenize(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    tokenize_into(text, &mut out);
    out
}

/// Words of a phone number: its parts, plus its digits run together and every suffix of
/// those of at least 3 digits, so that any run of digits inside the number (`5550199` in
/// `+1 (520) 555-0199`) is a word prefix.
pub fn phone_tokens_into(number: &str, out: &mut Vec<String>) {
    tokenize_into(number, out);
    let digits: String = number
        .chars()
        .filter(char::is_ascii_digit)
        .take(MAX_WORD)
        .collect();
    for start in 0..digits.len().saturating_sub(2) {
        out.push(digits[start..].to_string());
    }
}

/// The normalized, deduplicated terms of a user query (at most [`MAX_TERMS`]).
pub fn query_terms(q: &str) -> Vec<String> {
    let mut terms = tokenize(q);
    let mut seen = std::collections::HashSet::new();
    terms.retain(|t| seen.insert(t.clone()));
    terms.truncate(MAX_TERMS);
    terms
}

/// The sorted, deduplicated words a record is found by.
pub fn tokens_of(record: &Record) -> Vec<String> {
    let mut out = Vec::new();
    record.search_words(&mut out);
    out.sort_unstable();
    out.dedup();
    out
}

/// Whether every term is a prefix of one of `tokens`.
pub fn matches_tokens(tokens: &[String], terms: &[String]) -> bool {
    terms
        .iter()
        .all(|t| tokens.iter().any(|w| w.starts_with(t.as_str())))
}

/// Whether the record matches the terms.
pub fn matches(record: &Record, terms: &[String]) -> bool {
    matches_tokens(&tokens_of(record), terms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_split_and_lowercase() {
        assert_eq!(
            tokenize("Jane O'Neil <JANE@Acme.io>"),
            ["jane", "o", "neil", "jane", "acme", "io"]
        );
        assert_eq!(tokenize("Ünïcode straße"), ["ünïcode", "straße"]);
        let mut out = Vec::new();
        phone_tokens_into("+1 (555) 123-4567", &mut out);
        assert!(out.contains(&"15551234567".to_string()));
        assert!(out.contains(&"1234567".to_string()));
        assert!(!out.contains(&"67".to_string()));
    }

    #[test]
    fn all_terms_must_prefix_some_word() {
        let toks = vec!["acme".to_string(), "jane".to_string()];
        assert!(matches_tokens(&toks, &["ja".into(), "ac".into()]));
        assert!(!matches_tokens(&toks, &["ja".into(), "cme".into()]));
        assert_eq!(query_terms("  ja ja  AC "), ["ja", "ac"]);
    }
}
