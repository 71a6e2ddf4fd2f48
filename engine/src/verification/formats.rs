//! Registration, tax and bank-account numbers: the formats each country uses, their check
//! digits, and a finder that locates them in a document's text, near their labels first.
//!
//! Numbers are compared in normalized form: spaces, dots, dashes and slashes removed, uppercase.
//!
//! | Country | Registration number                         | Tax number                                  |
//! |---------|---------------------------------------------|---------------------------------------------|
//! | US      | generic                                     | EIN `NN-NNNNNNN` (9 digits)                 |
//! | GB      | company number: 8 digits or 2 letters + 6   | VAT `GB` + 9 digits                         |
//! | DE      | `HRB`/`HRA` + 1-6 digits                    | USt-IdNr `DE` + 9 digits                    |
//! | FR      | SIREN: 9 digits, Luhn                       | TVA `FR` + 2-character key + SIREN          |
//! | NL      | KvK: 8 digits                               | BTW `NL` + 9 digits + `B` + 2 digits        |
//! | IT      | partita IVA: 11 digits, Luhn check digit    | partita IVA, optionally `IT`-prefixed       |
//! | ES      | CIF: letter + 7 digits + control            | CIF, optionally `ES`-prefixed               |
//! | others  | generic                                     | generic                                     |
//!
//! "Generic" is 5-20 letters and digits with at least 4 digits; it is only accepted right
//! after a label, never found by scanning.

use super::dates;

/// The longest normalized number accepted (IBANs are at most 34 characters).
pub const NUMBER_CHARS_MAX: usize = 34;
/// How many tokens after a label a number may start at.
pub const LABEL_TOKENS_SKIP_MAX: usize = 4;
/// How many whitespace-separated groups a printed number may be split into.
pub const NUMBER_GROUPS_MAX: usize = 9;
/// How many bytes after a label are searched for its number.
pub const LABEL_REACH_BYTES_MAX: usize = 80;
/// How many label occurrences are examined per search.
pub const LABEL_HITS_MAX: usize = 64;

/// Which number is sought.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NumberKind {
    /// Company / commercial register number.
    Registration,
    /// Tax or VAT identification number.
    Tax,
}

/// A number found in a text: its normalized value and the byte range it was printed in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FoundNumber {
    /// Normalized (no separators, uppercase).
    pub normalized: String,
    /// Byte offset of its first character.
    pub start: usize,
    /// Byte offset one past its last character.
    pub end: usize,
}

/// Strips spaces, dots, dashes and slashes and uppercases; `None` if anything else that is not
/// an ASCII letter or digit remains, or it is longer than [`NUMBER_CHARS_MAX`].
pub fn normalize_number(raw: &str) -> Option<String> {
    let mut normalized = String::new();
    for ch in raw.chars() {
        match ch {
            ' ' | '.' | '-' | '/' | '\u{a0}' => {}
            ch if ch.is_ascii_alphanumeric() => normalized.push(ch.to_ascii_uppercase()),
            _ => return None,
        }
        if normalized.len() > NUMBER_CHARS_MAX {
            return None;
        }
    }
    (!normalized.is_empty()).then_some(normalized)
}

fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Luhn checksum over a string of digits (SIREN, partita IVA).
pub fn luhn_valid(digits: &str) -> bool {
    if !all_digits(digits) {
        return false;
    }
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(index, byte)| {
            let digit = u32::from(byte - b'0');
            if index % 2 == 1 {
                let doubled = digit * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                digit
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// The two-digit key of a French VAT number for a SIREN: `(12 + 3 * (siren mod 97)) mod 97`.
pub fn french_vat_key(siren: &str) -> Option<u32> {
    if siren.len() != 9 || !all_digits(siren) {
        return None;
    }
    let value: u64 = siren.parse().ok()?;
    u32::try_from((12 + 3 * (value % 97)) % 97).ok()
}

/// The control character of a Spanish CIF from its letter and seven digits.
pub fn spanish_cif_control(letter: char, digits: &str) -> Option<(char, char)> {
    if digits.len() != 7 || !all_digits(digits) || !"ABCDEFGHJNPQRSUVW".contains(letter) {
        return None;
    }
    let sum: u32 = digits
        .bytes()
        .enumerate()
        .map(|(index, byte)| {
            let digit = u32::from(byte - b'0');
            if index % 2 == 0 {
                let doubled = digit * 2;
                doubled / 10 + doubled % 10
            } else {
                digit
            }
        })
        .sum();
    let control_digit = (10 - sum % 10) % 10;
    let control_letter = b"JABCDEFGHI"[control_digit as usize] as char;
    let control_digit = char::from_digit(control_digit, 10)?;
    Some((control_digit, control_letter))
}

fn spanish_cif_valid(cif: &str) -> bool {
    if !cif.is_ascii() {
        return false;
    }
    let mut chars = cif.chars();
    let (Some(letter), Some(control)) = (chars.next(), chars.next_back()) else {
        return false;
    };
    if cif.len() != 9 {
        return false;
    }
    let Some((digit, control_letter)) = spanish_cif_control(letter, &cif[1..8]) else {
        return false;
    };
    match letter {
        'P' | 'Q' | 'R' | 'S' | 'N' | 'W' => control == control_letter,
        'A' | 'B' | 'E' | 'H' => control == digit,
        _ => control == digit || control == control_letter,
    }
}

/// An IBAN with a valid ISO 13616 mod-97 checksum (normalized input).
pub fn iban_valid(iban: &str) -> bool {
    let bytes = iban.as_bytes();
    let shape = (15..=NUMBER_CHARS_MAX).contains(&bytes.len())
        && bytes[..2].iter().all(u8::is_ascii_uppercase)
        && bytes[2..4].iter().all(u8::is_ascii_digit)
        && bytes
            .iter()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
    if !shape {
        return false;
    }
    let rotated = bytes[4..].iter().chain(&bytes[..4]);
    let mut remainder: u32 = 0;
    for &byte in rotated {
        let value = if byte.is_ascii_digit() {
            u32::from(byte - b'0')
        } else {
            u32::from(byte - b'A') + 10
        };
        let width = if value >= 10 { 100 } else { 10 };
        remainder = (remainder * width + value) % 97;
    }
    remainder == 1
}

/// A generic identifier: 5-20 letters and digits with at least four digits.
pub fn generic_valid(normalized: &str) -> bool {
    (5..=20).contains(&normalized.len())
        && normalized.bytes().all(|b| b.is_ascii_alphanumeric())
        && normalized.bytes().filter(u8::is_ascii_digit).count() >= 4
}

fn strip_prefix_digits<'a>(normalized: &'a str, prefix: &str) -> Option<&'a str> {
    normalized
        .strip_prefix(prefix)
        .filter(|rest| all_digits(rest))
}

/// Whether a normalized number has the registration format of `country`.
pub fn registration_valid(country: [u8; 2], normalized: &str) -> bool {
    if !normalized.is_ascii() {
        return false;
    }
    match &country {
        b"GB" => {
            let bytes = normalized.as_bytes();
            bytes.len() == 8
                && (all_digits(normalized)
                    || (bytes[..2].iter().all(u8::is_ascii_uppercase)
                        && all_digits(&normalized[2..])))
        }
        b"DE" => ["HRB", "HRA"].iter().any(|prefix| {
            strip_prefix_digits(normalized, prefix).is_some_and(|d| (1..=6).contains(&d.len()))
        }),
        b"FR" => normalized.len() == 9 && luhn_valid(normalized),
        b"NL" => normalized.len() == 8 && all_digits(normalized),
        b"IT" => normalized.len() == 11 && luhn_valid(normalized),
        b"ES" => spanish_cif_valid(normalized),
        _ => generic_valid(normalized),
    }
}

/// Whether a normalized number has the tax-number format of `country`.
pub fn tax_valid(country: [u8; 2], normalized: &str) -> bool {
    if !normalized.is_ascii() {
        return false;
    }
    match &country {
        b"US" => normalized.len() == 9 && all_digits(normalized),
        b"GB" => strip_prefix_digits(normalized, "GB").is_some_and(|d| d.len() == 9),
        b"DE" => strip_prefix_digits(normalized, "DE").is_some_and(|d| d.len() == 9),
        b"FR" => french_vat_valid(normalized),
        b"NL" => {
            let bytes = normalized.as_bytes();
            bytes.len() == 14
                && normalized.starts_with("NL")
                && all_digits(&normalized[2..11])
                && bytes[11] == b'B'
                && all_digits(&normalized[12..])
        }
        b"IT" => {
            let digits = normalized.strip_prefix("IT").unwrap_or(normalized);
            digits.len() == 11 && luhn_valid(digits)
        }
        b"ES" => spanish_cif_valid(normalized.strip_prefix("ES").unwrap_or(normalized)),
        _ => generic_valid(normalized),
    }
}

fn french_vat_valid(normalized: &str) -> bool {
    let Some(rest) = normalized.strip_prefix("FR") else {
        return false;
    };
    if rest.len() != 11 || !rest.is_ascii() {
        return false;
    }
    let (key, siren) = rest.split_at(2);
    if !luhn_valid(siren) || !key.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return false;
    }
    // Numeric keys are checked; letter keys (new-style numbers) are accepted as printed.
    if all_digits(key) {
        return key.parse::<u32>().ok() == french_vat_key(siren);
    }
    true
}

/// Whether the country's format for `kind` is distinctive enough to find without a label
/// (it carries a prefix such as `GB`, `DE`, `HRB`, `FR`, `NL`, `IT`, `ES`).
fn findable_without_label(country: [u8; 2], kind: NumberKind, normalized: &str) -> bool {
    match (kind, &country) {
        (NumberKind::Registration, b"DE") => true,
        (NumberKind::Tax, b"GB" | b"DE" | b"FR" | b"NL") => true,
        (NumberKind::Tax, b"IT") => normalized.starts_with("IT"),
        (NumberKind::Tax, b"ES") => normalized.starts_with("ES"),
        _ => false,
    }
}

const REGISTRATION_LABELS: &[&str] = &[
    "registration number",
    "registration no",
    "reg. no",
    "reg no",
    "company number",
    "company no",
    "registered number",
    "file number",
    "entity number",
    "handelsregister",
    "registernummer",
    "siren",
    "rcs",
    "kvk-nummer",
    "kvk nummer",
    "kvk",
    "chamber of commerce",
    "numero rea",
    "codice fiscale e partita iva",
    "partita iva",
    "cif",
];

const TAX_LABELS: &[&str] = &[
    "tax id",
    "tax identification",
    "tax number",
    "taxpayer id",
    "employer identification number",
    "ein",
    "vat",
    "ust-idnr",
    "ust-id",
    "umsatzsteuer-identifikationsnummer",
    "steuernummer",
    "tva",
    "btw",
    "btw-nummer",
    "omzetbelastingnummer",
    "partita iva",
    "p. iva",
    "p.iva",
    "nif",
    "cif",
];

/// The labels that introduce a number of `kind`, lowercase.
pub fn labels(kind: NumberKind) -> &'static [&'static str] {
    match kind {
        NumberKind::Registration => REGISTRATION_LABELS,
        NumberKind::Tax => TAX_LABELS,
    }
}

/// Finds a number of `kind` valid for `country`: first right after one of its labels (on the
/// same line), then, for formats with a distinctive prefix, anywhere in the text.
pub fn find_number(text: &str, country: [u8; 2], kind: NumberKind) -> Option<FoundNumber> {
    let valid = |normalized: &str| match kind {
        NumberKind::Registration => registration_valid(country, normalized),
        NumberKind::Tax => tax_valid(country, normalized),
    };
    let lower = text.to_ascii_lowercase();
    for label_end in label_ends(&lower, labels(kind), kind) {
        let reach = line_after(text, label_end);
        if let Some(found) = number_in_tokens(text, reach, LABEL_TOKENS_SKIP_MAX, &valid) {
            return Some(found);
        }
    }
    let anywhere =
        |normalized: &str| valid(normalized) && findable_without_label(country, kind, normalized);
    number_in_tokens(text, (0, text.len()), usize::MAX, &anywhere)
}

/// Finds an IBAN with a valid checksum: after an "IBAN" label first, then anywhere.
/// Returns `Err` with the printed value when an "IBAN" label is followed by an invalid one.
pub fn find_iban(text: &str) -> Result<Option<FoundNumber>, String> {
    let lower = text.to_ascii_lowercase();
    let mut invalid = None;
    for label_end in label_ends(&lower, &["iban"], NumberKind::Tax) {
        let reach = line_after(text, label_end);
        if let Some(found) = number_in_tokens(text, reach, 2, &iban_valid) {
            return Ok(Some(found));
        }
        if invalid.is_none() {
            let printed =
                text[reach.0..reach.1].trim_matches(|c: char| c == ':' || c.is_whitespace());
            invalid = Some(printed_prefix(printed));
        }
    }
    if let Some(found) = number_in_tokens(text, (0, text.len()), usize::MAX, &iban_valid) {
        return Ok(Some(found));
    }
    match invalid {
        Some(printed) if !printed.is_empty() => Err(printed),
        _ => Ok(None),
    }
}

/// The first 40 characters of `s`, for details shown to reviewers.
fn printed_prefix(s: &str) -> String {
    s.chars().take(40).collect()
}

const ACCOUNT_LABELS: &[&str] = &[
    "account number",
    "account no",
    "acct no",
    "kontonummer",
    "numéro de compte",
    "numero di conto",
    "número de cuenta",
    "rekeningnummer",
];

/// Finds a domestic bank account number (6-20 digits) after an account-number label.
pub fn find_account_number(text: &str) -> Option<FoundNumber> {
    let lower = text.to_ascii_lowercase();
    let valid = |normalized: &str| (6..=20).contains(&normalized.len()) && all_digits(normalized);
    label_ends(&lower, ACCOUNT_LABELS, NumberKind::Tax)
        .into_iter()
        .find_map(|label_end| number_in_tokens(text, line_after(text, label_end), 2, &valid))
}

/// Byte offsets just past each whole-word occurrence of a label, at most [`LABEL_HITS_MAX`].
/// For registration labels, occurrences right after "vat" or "tax" are skipped ("VAT
/// registration number" introduces a tax number).
fn label_ends(lower: &str, labels: &[&str], kind: NumberKind) -> Vec<usize> {
    let mut ends = Vec::new();
    for label in labels {
        for (start, _) in lower.match_indices(label) {
            if ends.len() >= LABEL_HITS_MAX {
                return ends;
            }
            let end = start + label.len();
            let before = lower[..start].chars().next_back();
            let after = lower[end..].chars().next();
            let whole_word = before.is_none_or(|c| !c.is_alphanumeric())
                && after.is_none_or(|c| !c.is_alphanumeric());
            let window = lower[..start].trim_end();
            let tax_context = kind == NumberKind::Registration
                && (window.ends_with("vat") || window.ends_with("tax"));
            if whole_word && !tax_context {
                ends.push(end);
            }
        }
    }
    ends.sort_unstable();
    ends.dedup();
    ends
}

/// The byte range from `start` to the end of its line, at most [`LABEL_REACH_BYTES_MAX`] long.
fn line_after(text: &str, start: usize) -> (usize, usize) {
    let rest = &text[start..];
    let mut end = rest
        .find('\n')
        .unwrap_or(rest.len())
        .min(LABEL_REACH_BYTES_MAX);
    while !rest.is_char_boundary(end) {
        end -= 1;
    }
    (start, start + end)
}

/// Filler words between a label and its number ("No.", "number", "#").
fn is_filler(token: &str) -> bool {
    let lower = token.to_ascii_lowercase();
    matches!(
        lower.trim_end_matches('.'),
        "no" | "nr" | "num" | "number" | "id" | "n°" | "nº" | "#" | "ein" | "is"
    ) || token.chars().all(|c| !c.is_alphanumeric())
}

/// Whitespace-separated tokens of `text[range]`, trimmed of surrounding punctuation, with their
/// byte ranges.
fn tokens(text: &str, range: (usize, usize)) -> Vec<(usize, usize)> {
    let slice = &text[range.0..range.1];
    let mut out = Vec::new();
    let mut raw_start = None;
    // A sentinel space at the end closes the last token.
    let chars = slice
        .char_indices()
        .chain(std::iter::once((slice.len(), ' ')));
    for (index, ch) in chars {
        match (raw_start, ch.is_whitespace()) {
            (None, false) => raw_start = Some(index),
            (Some(start), true) => {
                raw_start = None;
                let raw = &slice[start..index];
                let trimmed_start = raw.trim_start_matches(|c: char| ":#,;()[]".contains(c));
                let trimmed = trimmed_start.trim_end_matches(|c: char| ":#,;()[].".contains(c));
                if !trimmed.is_empty() {
                    let token_start = range.0 + start + (raw.len() - trimmed_start.len());
                    out.push((token_start, token_start + trimmed.len()));
                }
            }
            _ => {}
        }
    }
    out
}

/// The shortest run of tokens, starting within the first `skip_max` candidate starts, whose
/// joined normalized form satisfies `valid`.
fn number_in_tokens(
    text: &str,
    range: (usize, usize),
    skip_max: usize,
    valid: &dyn Fn(&str) -> bool,
) -> Option<FoundNumber> {
    let tokens = tokens(text, range);
    let mut starts_tried = 0;
    for (index, &(start, _)) in tokens.iter().enumerate() {
        if starts_tried >= skip_max {
            break;
        }
        let token = &text[start..tokens[index].1];
        let is_date = || !dates::find_dates(token, dates::DateOrder::DayFirst).is_empty();
        if is_filler(token) || !can_start_number(token) || is_date() {
            continue;
        }
        starts_tried += 1;
        let mut joined = String::new();
        for &(token_start, token_end) in tokens.iter().skip(index).take(NUMBER_GROUPS_MAX) {
            let Some(part) = normalize_number(&text[token_start..token_end]) else {
                break;
            };
            joined.push_str(&part);
            if joined.len() > NUMBER_CHARS_MAX {
                break;
            }
            if valid(&joined) {
                return Some(FoundNumber {
                    normalized: joined,
                    start,
                    end: token_end,
                });
            }
        }
    }
    None
}

/// A number starts with a digit or is a short letter prefix (`GB`, `HRB`, `B-1234567`).
fn can_start_number(token: &str) -> bool {
    token.bytes().any(|b| b.is_ascii_digit())
        || (token.len() <= 3 && token.bytes().all(|b| b.is_ascii_alphabetic()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg(country: &[u8; 2], raw: &str) -> bool {
        normalize_number(raw).is_some_and(|n| registration_valid(*country, &n))
    }

    fn tax(country: &[u8; 2], raw: &str) -> bool {
        normalize_number(raw).is_some_and(|n| tax_valid(*country, &n))
    }

    #[test]
    fn normalization() {
        assert_eq!(
            normalize_number("gb 123.456-789").as_deref(),
            Some("GB123456789")
        );
        assert_eq!(normalize_number("12:34"), None);
        assert_eq!(normalize_number(" - "), None);
        assert_eq!(normalize_number(&"1".repeat(NUMBER_CHARS_MAX + 1)), None);
    }

    #[test]
    fn united_states() {
        assert!(tax(b"US", "12-3456789"));
        assert!(!tax(b"US", "12-345678"));
        assert!(!tax(b"US", "AB-3456789"));
        assert!(reg(b"US", "C1234567"));
        assert!(!reg(b"US", "C123"));
    }

    #[test]
    fn great_britain() {
        assert!(reg(b"GB", "01234567"));
        assert!(reg(b"GB", "SC123456"));
        assert!(!reg(b"GB", "1234567"));
        assert!(!reg(b"GB", "S1234567X"));
        assert!(tax(b"GB", "GB 123 4567 89"));
        assert!(!tax(b"GB", "GB 123 4567 8"));
        assert!(!tax(b"GB", "DE123456789"));
    }

    #[test]
    fn germany() {
        assert!(reg(b"DE", "HRB 123456"));
        assert!(reg(b"DE", "HRA 98"));
        assert!(!reg(b"DE", "HRC 12345"));
        assert!(!reg(b"DE", "HRB 1234567"));
        assert!(tax(b"DE", "DE 123456789"));
        assert!(!tax(b"DE", "DE 12345678"));
    }

    #[test]
    fn france() {
        assert!(reg(b"FR", "732 829 320"));
        assert!(!reg(b"FR", "732 829 321"));
        assert_eq!(french_vat_key("732829320"), Some(44));
        assert!(tax(b"FR", "FR 44 732829320"));
        assert!(!tax(b"FR", "FR 45 732829320"));
        assert!(!tax(b"FR", "FR 44 732829321"));
    }

    #[test]
    fn netherlands() {
        assert!(reg(b"NL", "12345678"));
        assert!(!reg(b"NL", "1234567"));
        assert!(tax(b"NL", "NL123456789B01"));
        assert!(!tax(b"NL", "NL123456789X01"));
    }

    #[test]
    fn italy() {
        assert!(reg(b"IT", "00743110157"));
        assert!(!reg(b"IT", "00743110158"));
        assert!(tax(b"IT", "IT 00743110157"));
        assert!(!tax(b"IT", "IT 0074311015"));
    }

    #[test]
    fn spain() {
        assert!(reg(b"ES", "A58818501"));
        assert!(!reg(b"ES", "A58818502"));
        assert!(tax(b"ES", "ES B-1234567-4"));
        assert!(!tax(b"ES", "ES B-1234567-5"));
        assert!(reg(b"ES", "P1234567D"));
        assert!(!reg(b"ES", "P12345674"));
        assert!(!reg(b"ES", "58818501"));
    }

    #[test]
    fn other_countries_use_the_generic_format() {
        assert!(reg(b"CH", "CHE-123.456.789"));
        assert!(!reg(b"CH", "AB12"));
        assert!(!tax(b"CH", "ABCDEFG1"));
    }

    #[test]
    fn non_ascii_input_is_invalid_not_a_panic() {
        for country in [
            *b"GB", *b"DE", *b"FR", *b"NL", *b"IT", *b"ES", *b"US", *b"CH",
        ] {
            for raw in [
                "ÄÖ123456",
                "GBü1234567",
                "NL12345678ü01",
                "Bü1234567",
                "€€€",
            ] {
                assert!(!registration_valid(country, raw) && !tax_valid(country, raw));
            }
        }
        assert!(!iban_valid("DE89370400440532013000ü"));
        assert!(!iban_valid("de89370400440532013000"));
    }

    #[test]
    fn unicode_whitespace_between_groups_is_handled() {
        let text = "VAT No.:\u{3000}GB\u{a0}123\u{2003}4567 89 — ok";
        let found = find_number(text, *b"GB", NumberKind::Tax);
        assert_eq!(
            found.as_ref().map(|f| f.normalized.as_str()),
            Some("GB123456789")
        );
        let found = found.map(|f| &text[f.start..f.end]);
        assert_eq!(found, Some("GB\u{a0}123\u{2003}4567 89"));
    }

    #[test]
    fn iban_checksum() {
        assert!(iban_valid("DE89370400440532013000"));
        assert!(iban_valid("GB29NWBK60161331926819"));
        assert!(!iban_valid("DE89370400440532013001"));
        assert!(!iban_valid("DE8937"));
    }

    #[test]
    fn numbers_are_found_after_labels() {
        let text =
            "Company: Acme Ltd\nVAT Registration No.: GB 123 4567 89\nCompany number: SC123456\n";
        let vat = find_number(text, *b"GB", NumberKind::Tax).map(|f| f.normalized);
        assert_eq!(vat.as_deref(), Some("GB123456789"));
        let found = find_number(text, *b"GB", NumberKind::Registration);
        let found = found.map(|f| (f.normalized, &text[f.start..f.end]));
        assert_eq!(found, Some(("SC123456".to_string(), "SC123456")));
    }

    #[test]
    fn prefixed_numbers_are_found_without_labels() {
        let text = "Amtsgericht München HRB 12345, DE123456789";
        let reg = find_number(text, *b"DE", NumberKind::Registration).map(|f| f.normalized);
        assert_eq!(reg.as_deref(), Some("HRB12345"));
        let tax = find_number(text, *b"DE", NumberKind::Tax).map(|f| f.normalized);
        assert_eq!(tax.as_deref(), Some("DE123456789"));
        assert_eq!(
            find_number("call 12345678", *b"NL", NumberKind::Registration),
            None
        );
    }

    #[test]
    fn ibans_and_accounts_are_found() {
        let text = "IBAN: DE89 3704 0044 0532 0130 00\nAccount number: 0532013000";
        let iban = find_iban(text).ok().flatten().map(|f| f.normalized);
        assert_eq!(iban.as_deref(), Some("DE89370400440532013000"));
        assert!(find_iban("IBAN: DE89 3704 0044 0532 0130 01").is_err());
        let account = find_account_number(text).map(|f| f.normalized);
        assert_eq!(account.as_deref(), Some("0532013000"));
    }
}
