//! Full-text search: the matching rule every backend implements (DESIGN §9).
//!
//! This module is the contract: a backend may index however it likes, but it returns exactly
//! the records [`matches()`] accepts.
//!
//! # Normalization
//!
//! Text is split into *words* at every character that is not alphanumeric
//! ([`char::is_alphanumeric`]); empty pieces are dropped, each word is lowercased
//! ([`char::to_lowercase`]) and cut to its first [`MAX_WORD`] chars ([`tokenize`]). A query is
//! normalized the same way into *terms*, deduplicated and cut to the first [`MAX_TERMS`]
//! ([`query_terms`]), so a term never contains punctuation or spaces.
//!
//! # What a record is found by
//!
//! * Its **words** ([`tokens_of`], [`Searchable::search_words`]): the words of its searchable
//!   fields — contacts: first and last name, title, company name, background, email
//!   addresses, phone numbers; companies: name, phone number, website, zipcode, city, state;
//!   deals: name, category, description. A phone number gives its words *and* its ASCII
//!   digits (`0`–`9`, an extension's included) run together and cut to [`MAX_WORD`], as one
//!   more word ([`phone_digits`]): `+1 (520) 555-0199` gives `1`, `520`, `555`, `0199` and
//!   `15205550199`. An email address gives its words only:
//!   `john.smith@acme.test` gives `john`, `smith`, `acme`, `test`.
//! * Its **contact points** ([`contact_points_of`], [`Searchable::contact_points`]): for a contact,
//!   the words of each email address (as above) and each phone number's digits run together;
//!   for a company, its phone number's digits run together; nothing else, and nothing for the
//!   other kinds. A phone number without digits gives no digit run (neither word nor point).
//!
//! # Matching
//!
//! A term matches a record when
//!
//! * it is a **prefix** of one of the record's words, or
//! * it has at least [`MIN_SUBSTRING`] chars and is a **substring** of one of the record's
//!   contact points (anywhere inside it, not across two of them).
//!
//! A record matches a query when *every* term matches it ([`matches()`], [`matches_terms`]).
//! Soft delete, filters and permissions are applied on top, as for any list.
//!
//! So `smi` finds Smith by name and by email, `mith` finds `john.smith@acme.test` but not a
//! contact merely named Smith, `cme` finds that email's domain but not a company named Acme,
//! `5550199` or `0199` finds the phone number `+1 (520) 555-0199`, and `mi` matches word
//! prefixes only (too short for a substring).
//!
//! # Indexing
//!
//! Backends index the words ([`tokens_of`]) and the contact points ([`contact_points_of`]) in
//! the same commit as the record: a term is then a range scan of words (prefix) and, for a term
//! of [`MIN_SUBSTRING`] chars or more, of contact-point substrings (say, every suffix of
//! [`MIN_SUBSTRING`]+ chars of each point, or a trigram index). Ranking is deliberately absent:
//! a broad query must cost what a page costs, not what all matches cost.

/// What can be searched: a record gives its words and its contact points (see the
/// [module docs](self)). [`crate::model::Record`] implements it from each kind's declared
/// searchable fields.
pub trait Searchable {
    /// Appends the words the value is found by (prefix-matched).
    fn search_words(&self, out: &mut Vec<String>);
    /// Appends the contact points the value is found by (substring-matched by terms of at
    /// least [`MIN_SUBSTRING`] chars).
    fn contact_points(&self, out: &mut Vec<String>);
}

impl<T: Searchable + ?Sized> Searchable for &T {
    fn search_words(&self, out: &mut Vec<String>) {
        (**self).search_words(out);
    }
    fn contact_points(&self, out: &mut Vec<String>) {
        (**self).contact_points(out);
    }
}

/// Longest indexed word or contact point, in chars; longer ones are truncated (prefix matching
/// still works).
pub const MAX_WORD: usize = 64;
/// Most terms considered in one query.
pub const MAX_TERMS: usize = 8;
/// Shortest term, in chars, that also matches *inside* a contact point (see the
/// [module docs](self)); shorter terms match word prefixes only.
pub const MIN_SUBSTRING: usize = 3;

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

/// The ASCII digits of a phone number run together, cut to [`MAX_WORD`]:
/// `+1 (520) 555-0199` gives `15205550199`. Empty if the number has no digit.
pub fn phone_digits(number: &str) -> String {
    number
        .chars()
        .filter(char::is_ascii_digit)
        .take(MAX_WORD)
        .collect()
}

/// Words of a phone number: its parts, plus its digits run together ([`phone_digits`], when
/// not empty).
pub fn phone_tokens_into(number: &str, out: &mut Vec<String>) {
    tokenize_into(number, out);
    let digits = phone_digits(number);
    if !digits.is_empty() {
        out.push(digits);
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

/// The sorted, deduplicated words a record is found by (prefix-matched).
pub fn tokens_of<R: Searchable + ?Sized>(record: &R) -> Vec<String> {
    sorted_unique(|out| record.search_words(out))
}

/// The sorted, deduplicated contact points a record is found by (substring-matched by terms
/// of at least [`MIN_SUBSTRING`] chars).
pub fn contact_points_of<R: Searchable + ?Sized>(record: &R) -> Vec<String> {
    sorted_unique(|out| record.contact_points(out))
}

/// The strings `fill` pushes, sorted and deduplicated.
fn sorted_unique(fill: impl FnOnce(&mut Vec<String>)) -> Vec<String> {
    let mut out = Vec::new();
    fill(&mut out);
    out.sort_unstable();
    out.dedup();
    out
}

/// Whether `term` also matches inside contact points: it has at least [`MIN_SUBSTRING`]
/// chars. Shorter terms match word prefixes only.
pub fn is_substring_term(term: &str) -> bool {
    term.chars().nth(MIN_SUBSTRING - 1).is_some()
}

/// Whether every term is a prefix of one of `words` or, if it has at least
/// [`MIN_SUBSTRING`] chars, a substring of one of `points` (neither needs to be sorted).
pub fn matches_terms(words: &[String], points: &[String], terms: &[String]) -> bool {
    terms.iter().all(|t| {
        words.iter().any(|w| w.starts_with(t.as_str()))
            || (is_substring_term(t) && points.iter().any(|p| p.contains(t.as_str())))
    })
}

/// Whether the record matches the terms.
pub fn matches<R: Searchable + ?Sized>(record: &R, terms: &[String]) -> bool {
    let (mut words, mut points) = (Vec::new(), Vec::new());
    record.search_words(&mut words);
    record.contact_points(&mut points);
    matches_terms(&words, &points, terms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Timestamp;
    use crate::model::{
        Company, CompanyInput, Contact, ContactInput, EmailEntry, EmailKind, Entity, PhoneEntry,
        PhoneKind, Record,
    };

    fn terms(q: &str) -> Vec<String> {
        query_terms(q)
    }

    fn john() -> Record {
        Contact::from_input(
            ContactInput {
                first_name: "John".into(),
                last_name: "Smith".into(),
                title: Some("Chief Engineer".into()),
                emails: vec![EmailEntry {
                    email: "John.Smith@acme.test".into(),
                    kind: EmailKind::Work,
                }],
                phones: vec![PhoneEntry {
                    number: "+1 (555) 123-4567".into(),
                    kind: PhoneKind::Work,
                }],
                ..Default::default()
            },
            Timestamp::EPOCH,
        )
        .into_record()
    }

    fn acme() -> Record {
        Company::from_input(CompanyInput {
            name: "Acme Rockets".into(),
            phone_number: Some("+1 (520) 555-0199".into()),
            ..Default::default()
        })
        .into_record()
    }

    #[test]
    fn words_split_and_lowercase() {
        assert_eq!(
            tokenize("Jane O'Neil <JANE@Acme.io>"),
            ["jane", "o", "neil", "jane", "acme", "io"]
        );
        assert_eq!(tokenize("Ünïcode straße"), ["ünïcode", "straße"]);
        assert_eq!(phone_digits("+1 (555) 123-4567"), "15551234567");
        assert_eq!(phone_digits("ext. -"), "");
        let mut out = Vec::new();
        phone_tokens_into("+1 (555) 123-4567", &mut out);
        assert_eq!(out, ["1", "555", "123", "4567", "15551234567"]);
    }

    #[test]
    fn words_and_contact_points_of_records() {
        assert_eq!(
            tokens_of(&john()),
            [
                "1",
                "123",
                "15551234567",
                "4567",
                "555",
                "acme",
                "chief",
                "engineer",
                "john",
                "smith",
                "test"
            ]
        );
        assert_eq!(
            contact_points_of(&john()),
            ["15551234567", "acme", "john", "smith", "test"]
        );
        assert_eq!(contact_points_of(&acme()), ["15205550199"]);
        assert!(
            !tokens_of(&acme()).iter().any(|w| w == "5550199"),
            "no suffix words"
        );
    }

    #[test]
    fn all_terms_must_prefix_some_word() {
        let words = vec!["acme".to_string(), "jane".to_string()];
        assert!(matches_terms(&words, &[], &terms("ja ac")));
        assert!(
            !matches_terms(&words, &[], &terms("ja cme")),
            "words are prefix-only"
        );
        assert!(matches_terms(&words, &[], &[]));
        assert_eq!(query_terms("  ja ja  AC "), ["ja", "ac"]);
    }

    #[test]
    fn terms_of_three_chars_match_inside_email_words() {
        let j = john();
        assert!(matches(&j, &terms("mith")), "inside the email's `smith`");
        assert!(matches(&j, &terms("cme")), "inside the email's domain");
        assert!(matches(&j, &terms("ohn mit")));
        assert!(!matches(&j, &terms("mi")), "two chars: prefixes only");
        assert!(!matches(&j, &terms("cm")));
        assert!(
            !matches(&j, &terms("smithacme")),
            "not across two words of the address"
        );
        assert!(!matches(&j, &terms("mith xyz")), "every term must match");
    }

    #[test]
    fn phone_digits_match_by_prefix_and_inside() {
        let a = acme();
        for q in ["1520", "15205550199", "0199", "5550199", "205", "199"] {
            assert!(matches(&a, &terms(q)), "{q}");
        }
        assert!(matches(&a, &terms("52")), "a prefix of the word `520`");
        assert!(!matches(&a, &terms("99")), "two digits: prefixes only");
        assert!(!matches(&a, &terms("0198")));
        assert!(matches(&john(), &terms("1234567")));
    }

    #[test]
    fn names_never_match_inside() {
        let (j, a) = (john(), acme());
        for q in ["ngineer", "hief", "ockets"] {
            assert!(!matches(&j, &terms(q)) && !matches(&a, &terms(q)), "{q}");
        }
        assert!(!matches(&a, &terms("cme")), "company names are prefix-only");
        let joanna = Contact::from_input(
            ContactInput {
                first_name: "Joanna".into(),
                last_name: "Smithers".into(),
                ..Default::default()
            },
            Timestamp::EPOCH,
        )
        .into_record();
        assert!(!matches(&joanna, &terms("mith")));
        assert!(contact_points_of(&joanna).is_empty());
    }

    #[test]
    fn substring_terms_count_chars() {
        assert!(!is_substring_term("ab"));
        assert!(is_substring_term("abc"));
        assert!(!is_substring_term("éé"), "two chars, four bytes");
        assert!(is_substring_term("ééé"));
    }
}
