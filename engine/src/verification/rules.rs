//! The verification rules: what each document type must show, the checks that assess a
//! document's extracted text against the vendor's profile, and the policy decision.
//!
//! Rules are versioned by [`RULES_VERSION`]: an assessment records the version that produced it,
//! and a result keyed by document hash and rules version is written once. Change the version
//! whenever a change to this module could change an assessment.
//!
//! # What each document type requires
//!
//! R = required (a failure sends the document to review or, when hard, rejects it),
//! O = checked when present, - = not applied. Columns: BR business_registration, TAX
//! tax_certificate, INS insurance_certificate, BANK bank_letter, ID identity_document, OTHER.
//!
//! | Check                    | BR  | TAX | INS | BANK | ID  | OTHER | Passes when                                        |
//! |--------------------------|-----|-----|-----|------|-----|-------|----------------------------------------------------|
//! | `document_type`          | R   | R   | R   | R    | R   | -     | the wording reads like the declared type           |
//! | `company_name`           | R   | R   | R   | R    | -   | O     | a labelled name or a line ending in a legal form   |
//! | `holder_name`            | -   | -   | -   | -    | R   | -     | a labelled person's name                           |
//! | `registration_number`    | R   | O   | -   | -    | -   | O     | a number in the vendor country's format            |
//! | `tax_number`             | O   | R   | -   | -    | -   | O     | a number in the vendor country's format            |
//! | `bank_account`           | -   | -   | -   | R    | -   | -     | an IBAN passing mod-97, or an account number       |
//! | `issue_date`             | R   | O   | O   | R    | O   | O     | not in the future; bank letters: at most 365 days old |
//! | `expiry_in_future`       | O   | O   | R   | O    | R   | O     | not before today (a past expiry is a hard failure) |
//! | `name_match`             | R   | R   | R   | R    | -   | O     | Jaro-Winkler similarity to the vendor name >= 90%  |
//! | `duplicate_registration` | R   | R   | -   | -    | -   | R     | (once a registration number is found) no other vendor holds it |
//!
//! Hard failures (auto-reject under the default [`Policy`]): an expiry date in the past, and a
//! document that clearly looks like another type than the one declared. Every other failure
//! goes to manual review. Documents of type `other` never auto-approve: their confidence is
//! capped at [`OTHER_CONFIDENCE_MAX`].
//!
//! ```
//! use mercato_engine::verification::rules::{assess, decide, Decision, DocumentType, Policy, VendorProfile};
//! use mercato_engine::verification::samples::{document_text, sample_spec};
//! let today = 20_000;
//! let spec = sample_spec(7, DocumentType::TaxCertificate, "Nordlicht Handels GmbH", *b"DE", today);
//! let vendor = VendorProfile { name: "Nordlicht Handels GmbH".into(), country: *b"DE" };
//! let assessment = assess(spec.doc_type, &document_text(&spec), &vendor, today, &|_| None);
//! assert_eq!(decide(&assessment, &Policy::default()), Decision::Approve);
//! ```

use serde::{Deserialize, Serialize};

use super::dates::{self, DateOrder, FoundDate};
use super::formats::{self, NumberKind};

/// The version of these rules; recorded in every [`Assessment`].
pub const RULES_VERSION: u32 = 1;
/// The most bytes of extracted text the rules read; the rest is ignored.
pub const ASSESS_TEXT_BYTES_MAX: usize = 1 << 20;
/// The most characters of document text kept in a [`Span`].
pub const SPAN_TEXT_CHARS_MAX: usize = 200;
/// The most characters of a company or person name read from a labelled line.
pub const NAME_CHARS_MAX: usize = 160;
/// The most name candidates compared against the vendor profile.
pub const NAME_CANDIDATES_MAX: usize = 64;
/// The most lines examined for names ending in a legal suffix.
pub const NAME_LINES_MAX: usize = 4_000;
/// The lowest Jaro-Winkler similarity, in percent, at which a name matches the vendor's.
pub const NAME_MATCH_PCT_MIN: u8 = 90;
/// How old a bank letter may be, in days.
pub const BANK_LETTER_AGE_DAYS_MAX: i64 = 365;
/// The highest confidence a document of type `other` gets.
pub const OTHER_CONFIDENCE_MAX: u8 = 50;
/// The highest confidence a document with a failed required check gets.
pub const REQUIRED_FAILED_CONFIDENCE_MAX: u8 = 60;
/// The weight of a required check in the confidence score (optional checks weigh 1).
pub const REQUIRED_CHECK_WEIGHT: u32 = 3;

/// The type a manufacturer declares for an uploaded document.
///
/// Stored with postcard, which encodes the variant index: only ever append variants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DocumentType {
    /// Certificate of incorporation, commercial register extract, Kbis...
    BusinessRegistration,
    /// VAT registration or tax residence certificate.
    TaxCertificate,
    /// Liability or other insurance certificate.
    InsuranceCertificate,
    /// A bank's confirmation of the vendor's account.
    BankLetter,
    /// A representative's passport or identity card.
    IdentityDocument,
    /// Anything else; always reviewed by a person.
    Other,
}

impl DocumentType {
    /// Every document type, in declaration order.
    pub const ALL: [DocumentType; 6] = [
        DocumentType::BusinessRegistration,
        DocumentType::TaxCertificate,
        DocumentType::InsuranceCertificate,
        DocumentType::BankLetter,
        DocumentType::IdentityDocument,
        DocumentType::Other,
    ];

    /// The stable snake_case name used in APIs and settings.
    pub fn as_str(self) -> &'static str {
        match self {
            DocumentType::BusinessRegistration => "business_registration",
            DocumentType::TaxCertificate => "tax_certificate",
            DocumentType::InsuranceCertificate => "insurance_certificate",
            DocumentType::BankLetter => "bank_letter",
            DocumentType::IdentityDocument => "identity_document",
            DocumentType::Other => "other",
        }
    }

    /// The type named by [`DocumentType::as_str`].
    pub fn parse(name: &str) -> Option<DocumentType> {
        DocumentType::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// A human-readable name for details shown to reviewers.
    pub fn label(self) -> &'static str {
        match self {
            DocumentType::BusinessRegistration => "business registration",
            DocumentType::TaxCertificate => "tax certificate",
            DocumentType::InsuranceCertificate => "insurance certificate",
            DocumentType::BankLetter => "bank letter",
            DocumentType::IdentityDocument => "identity document",
            DocumentType::Other => "other document",
        }
    }
}

/// What the rules know about the vendor a document belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VendorProfile {
    /// The registered company name.
    pub name: String,
    /// ISO 3166 alpha-2 country code, uppercase (`*b"DE"`).
    pub country: [u8; 2],
}

/// A piece of the extracted text that a check rests on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Span {
    /// Byte offset of its start in the extracted text.
    pub start: u32,
    /// Byte offset one past its end.
    pub end: u32,
    /// The text itself, at most [`SPAN_TEXT_CHARS_MAX`] characters.
    pub text: String,
}

impl Span {
    fn of(text: &str, start: usize, end: usize) -> Span {
        let slice = text.get(start..end).unwrap_or("");
        Span {
            start: u32::try_from(start).unwrap_or(u32::MAX),
            end: u32::try_from(end).unwrap_or(u32::MAX),
            text: slice.chars().take(SPAN_TEXT_CHARS_MAX).collect(),
        }
    }
}

/// The outcome of one rule on one document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    /// Stable snake_case name: `document_type`, `company_name`, `holder_name`,
    /// `registration_number`, `tax_number`, `bank_account`, `issue_date`, `expiry_in_future`,
    /// `name_match`, `duplicate_registration`.
    pub name: String,
    /// Whether the document passed it.
    pub passed: bool,
    /// A failure means auto-reject (expired, wrong type).
    pub hard: bool,
    /// The document type requires it; a failure keeps the document from auto-approval.
    pub required: bool,
    /// What was found or missing, for reviewers and the manufacturer.
    pub detail: String,
    /// The text the check rests on.
    pub evidence: Option<Span>,
}

/// Values read from the document.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Findings {
    /// The company name, as printed.
    pub company_name: Option<String>,
    /// Registration number, normalized.
    pub registration_number: Option<String>,
    /// Tax number, normalized.
    pub tax_number: Option<String>,
    /// Issue date, days since 1970-01-01.
    pub issue_day: Option<i64>,
    /// Expiry date, days since 1970-01-01.
    pub expiry_day: Option<i64>,
    /// The person named on an identity document.
    pub holder_name: Option<String>,
    /// IBAN or account number, normalized.
    pub bank_account: Option<String>,
}

/// Everything the rules concluded about one document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assessment {
    /// [`RULES_VERSION`] at the time.
    pub rules_version: u32,
    /// The declared type.
    pub document_type: DocumentType,
    /// Values read from the text.
    pub findings: Findings,
    /// Every check applied, in a stable order.
    pub checks: Vec<Check>,
    /// 0..=100; 0 when a hard check failed.
    pub confidence_pct: u8,
}

impl Assessment {
    /// The check with this name, if it was applied.
    pub fn check(&self, name: &str) -> Option<&Check> {
        self.checks.iter().find(|check| check.name == name)
    }
}

/// A tenant's verification policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// Approve without review at or above this confidence.
    pub auto_approve_pct: u8,
    /// Reject without review when a hard check failed.
    pub auto_reject_hard_failures: bool,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            auto_approve_pct: 90,
            auto_reject_hard_failures: true,
        }
    }
}

/// What happens to a document after assessment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Decision {
    /// Approved automatically.
    Approve,
    /// Rejected automatically, with the failed hard checks' details.
    Reject {
        /// Why, one entry per failed hard check.
        reasons: Vec<String>,
    },
    /// Sent to the manual review queue.
    Review {
        /// Why, one entry per failed check or unmet threshold.
        reasons: Vec<String>,
    },
}

/// Applies the tenant's policy to an assessment.
///
/// Reject when a hard check failed (and the policy says so); approve when no check that is
/// required or hard failed, the confidence reaches the threshold and the type is not `other`;
/// review otherwise, with one reason per failed check or unmet condition.
pub fn decide(assessment: &Assessment, policy: &Policy) -> Decision {
    let failed = || assessment.checks.iter().filter(|check| !check.passed);
    let hard: Vec<String> = failed()
        .filter(|c| c.hard)
        .map(|c| c.detail.clone())
        .collect();
    if policy.auto_reject_hard_failures && !hard.is_empty() {
        return Decision::Reject { reasons: hard };
    }
    let blocking = failed().any(|check| check.required || check.hard);
    let is_other = assessment.document_type == DocumentType::Other;
    let below_threshold = assessment.confidence_pct < policy.auto_approve_pct;
    if !blocking && !is_other && !below_threshold {
        return Decision::Approve;
    }
    let mut reasons: Vec<String> = failed().map(|check| check.detail.clone()).collect();
    if is_other {
        reasons.push("documents of type other are always reviewed".to_string());
    }
    if below_threshold {
        reasons.push(format!(
            "confidence {}% is below the auto-approve threshold of {}%",
            assessment.confidence_pct, policy.auto_approve_pct
        ));
    }
    Decision::Review { reasons }
}

/// How a type treats each check; see the table in the module documentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Need {
    Required,
    IfPresent,
    NotApplied,
}

struct Requirements {
    company_name: Need,
    holder_name: Need,
    registration_number: Need,
    tax_number: Need,
    bank_account: Need,
    issue_date: Need,
    issue_age_days_max: Option<i64>,
    expiry: Need,
    name_match: Need,
}

fn requirements(doc_type: DocumentType) -> Requirements {
    use Need::{IfPresent as O, NotApplied as N, Required as R};
    let base = Requirements {
        company_name: R,
        holder_name: N,
        registration_number: N,
        tax_number: N,
        bank_account: N,
        issue_date: O,
        issue_age_days_max: None,
        expiry: O,
        name_match: R,
    };
    match doc_type {
        DocumentType::BusinessRegistration => Requirements {
            registration_number: R,
            tax_number: O,
            issue_date: R,
            ..base
        },
        DocumentType::TaxCertificate => Requirements {
            registration_number: O,
            tax_number: R,
            ..base
        },
        DocumentType::InsuranceCertificate => Requirements { expiry: R, ..base },
        DocumentType::BankLetter => Requirements {
            bank_account: R,
            issue_date: R,
            issue_age_days_max: Some(BANK_LETTER_AGE_DAYS_MAX),
            ..base
        },
        DocumentType::IdentityDocument => Requirements {
            company_name: N,
            holder_name: R,
            expiry: R,
            name_match: N,
            ..base
        },
        DocumentType::Other => Requirements {
            company_name: O,
            registration_number: O,
            tax_number: O,
            name_match: O,
            ..base
        },
    }
}

/// Assesses a document's extracted text.
///
/// `today_day` is the current day number (days since 1970-01-01, UTC).
/// `registration_owner(normalized_number)` returns the id of another vendor that already holds
/// the registration number found, if any; the number is passed normalized (see
/// [`formats::normalize_number`]) and without a country prefix.
pub fn assess(
    doc_type: DocumentType,
    text: &str,
    vendor: &VendorProfile,
    today_day: i64,
    registration_owner: &dyn Fn(&str) -> Option<u64>,
) -> Assessment {
    let text = bounded_prefix(text, ASSESS_TEXT_BYTES_MAX);
    let needs = requirements(doc_type);
    let mut checks = Vec::new();
    let mut findings = Findings::default();

    if doc_type != DocumentType::Other {
        checks.push(document_type_check(doc_type, text));
    }
    name_checks(text, vendor, &needs, &mut findings, &mut checks);
    if needs.holder_name != Need::NotApplied {
        checks.push(holder_name_check(text, &mut findings));
    }
    number_checks(
        text,
        vendor.country,
        &needs,
        &mut findings,
        &mut checks,
        registration_owner,
    );
    if needs.bank_account != Need::NotApplied {
        checks.push(bank_account_check(text, &mut findings));
    }
    date_checks(
        text,
        vendor.country,
        today_day,
        &needs,
        &mut findings,
        &mut checks,
    );

    let confidence_pct = confidence(doc_type, &checks);
    Assessment {
        rules_version: RULES_VERSION,
        document_type: doc_type,
        findings,
        checks,
        confidence_pct,
    }
}

/// The longest prefix of `text` of at most `bytes_max` bytes that ends on a character boundary.
fn bounded_prefix(text: &str, bytes_max: usize) -> &str {
    let mut end = text.len().min(bytes_max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

fn check(name: &str, passed: bool, need: Need, detail: String, evidence: Option<Span>) -> Check {
    Check {
        name: name.to_string(),
        passed,
        hard: false,
        required: need == Need::Required,
        detail,
        evidence,
    }
}

/// Combines the checks: required checks weigh [`REQUIRED_CHECK_WEIGHT`], optional ones 1;
/// 0 after a hard failure; capped after a failed required check and for type `other`.
fn confidence(doc_type: DocumentType, checks: &[Check]) -> u8 {
    if checks.iter().any(|check| check.hard && !check.passed) {
        return 0;
    }
    let weight = |check: &Check| {
        if check.required {
            REQUIRED_CHECK_WEIGHT
        } else {
            1
        }
    };
    let total: u32 = checks.iter().map(weight).sum();
    let passed: u32 = checks.iter().filter(|check| check.passed).map(weight).sum();
    let ratio = (passed * 100).checked_div(total).unwrap_or(0);
    let mut pct = u8::try_from(ratio.min(100)).unwrap_or(100);
    if checks.iter().any(|check| check.required && !check.passed) {
        pct = pct.min(REQUIRED_FAILED_CONFIDENCE_MAX);
    }
    if doc_type == DocumentType::Other {
        pct = pct.min(OTHER_CONFIDENCE_MAX);
    }
    pct
}

// ---------------------------------------------------------------------------------------------
// Document type

/// Phrases that mark a document type: (phrase, weight). Strong phrases weigh 3, words that also
/// appear on other documents weigh 1. Matched as whole words, lowercase.
fn type_keywords(doc_type: DocumentType) -> &'static [(&'static str, u32)] {
    match doc_type {
        DocumentType::BusinessRegistration => &[
            ("certificate of incorporation", 3),
            ("articles of incorporation", 3),
            ("articles of organization", 3),
            ("certificate of formation", 3),
            ("certificate of good standing", 3),
            ("companies house", 3),
            ("registrar of companies", 3),
            ("business registration", 3),
            ("company registration", 3),
            ("commercial register", 3),
            ("trade register", 3),
            ("handelsregister", 3),
            ("handelsregisterauszug", 3),
            ("registergericht", 3),
            ("extrait kbis", 3),
            ("kbis", 3),
            ("registre du commerce", 3),
            ("kamer van koophandel", 3),
            ("handelsregister uittreksel", 3),
            ("registro delle imprese", 3),
            ("visura camerale", 3),
            ("registro mercantil", 3),
            ("incorporated", 1),
            ("registration number", 1),
            ("company number", 1),
            ("registered office", 1),
            ("amtsgericht", 1),
        ],
        DocumentType::TaxCertificate => &[
            ("tax certificate", 3),
            ("certificate of tax residence", 3),
            ("tax residence", 3),
            ("value added tax", 3),
            ("vat registration", 3),
            ("internal revenue service", 3),
            ("hm revenue", 3),
            ("hmrc", 3),
            ("finanzamt", 3),
            ("umsatzsteuer", 3),
            ("steuernummer", 3),
            ("ust-idnr", 3),
            ("finances publiques", 3),
            ("belastingdienst", 3),
            ("agenzia delle entrate", 3),
            ("agencia tributaria", 3),
            ("employer identification number", 3),
            ("tax identification number", 3),
            ("tax", 1),
            ("vat", 1),
            ("tva", 1),
            ("btw", 1),
            ("iva", 1),
            ("taxpayer", 1),
            ("fiscal", 1),
        ],
        DocumentType::InsuranceCertificate => &[
            ("certificate of insurance", 3),
            ("insurance certificate", 3),
            ("insurance policy", 3),
            ("policy number", 3),
            ("insured", 3),
            ("insurer", 3),
            ("liability insurance", 3),
            ("versicherungsbestätigung", 3),
            ("versicherung", 3),
            ("attestation d'assurance", 3),
            ("verzekering", 3),
            ("assicurazione", 3),
            ("póliza", 3),
            ("policy", 1),
            ("coverage", 1),
            ("premium", 1),
            ("liability", 1),
            ("limit of indemnity", 1),
            ("assurance", 1),
            ("seguro", 1),
        ],
        DocumentType::BankLetter => &[
            ("iban", 3),
            ("bank confirmation", 3),
            ("account holder", 3),
            ("bankbestätigung", 3),
            ("kontoinhaber", 3),
            ("domiciliation bancaire", 3),
            ("sort code", 3),
            ("routing number", 3),
            ("swift", 3),
            ("bic", 3),
            ("bank", 1),
            ("account", 1),
            ("banque", 1),
            ("banca", 1),
            ("banco", 1),
        ],
        DocumentType::IdentityDocument => &[
            ("passport", 3),
            ("identity card", 3),
            ("national identity", 3),
            ("date of birth", 3),
            ("place of birth", 3),
            ("nationality", 3),
            ("personalausweis", 3),
            ("reisepass", 3),
            ("carte nationale d'identité", 3),
            ("passeport", 3),
            ("carta d'identità", 3),
            ("documento nacional de identidad", 3),
            ("driver's license", 3),
            ("driving licence", 3),
            ("paspoort", 3),
            ("surname", 1),
            ("given names", 1),
            ("sex", 1),
        ],
        DocumentType::Other => &[],
    }
}

/// The score at which a text looks like a type.
const TYPE_SCORE_LOOKS_LIKE: u32 = 2;
/// The score at which a text clearly looks like another type than the declared one.
const TYPE_SCORE_CLEARLY_OTHER: u32 = 3;

fn type_score(doc_type: DocumentType, lower: &str) -> u32 {
    type_keywords(doc_type)
        .iter()
        .filter(|(phrase, _)| contains_word(lower, phrase))
        .map(|(_, weight)| weight)
        .sum()
}

/// Whether `needle` occurs in `haystack` with no letter or digit right before or after it.
fn contains_word(haystack: &str, needle: &str) -> bool {
    haystack.match_indices(needle).any(|(start, _)| {
        let before = haystack[..start].chars().next_back();
        let after = haystack[start + needle.len()..].chars().next();
        before.is_none_or(|c| !c.is_alphanumeric()) && after.is_none_or(|c| !c.is_alphanumeric())
    })
}

fn document_type_check(declared: DocumentType, text: &str) -> Check {
    let lower = text.to_lowercase();
    let declared_score = type_score(declared, &lower);
    let best_other = DocumentType::ALL
        .into_iter()
        .filter(|t| *t != declared && *t != DocumentType::Other)
        .map(|t| (type_score(t, &lower), t))
        .max_by_key(|(score, _)| *score);
    let mut result = check("document_type", true, Need::Required, String::new(), None);
    if declared_score >= TYPE_SCORE_LOOKS_LIKE {
        result.detail = format!("the text reads like a {}", declared.label());
        return result;
    }
    result.passed = false;
    match best_other {
        Some((score, other)) if score >= TYPE_SCORE_CLEARLY_OTHER => {
            result.hard = true;
            result.detail = format!(
                "wrong type: declared {} but the text reads like a {}",
                declared.label(),
                other.label()
            );
        }
        _ => result.detail = format!("the text does not clearly read like a {}", declared.label()),
    }
    result
}

// ---------------------------------------------------------------------------------------------
// Names

const COMPANY_LABELS: &[&str] = &[
    "company name",
    "name of company",
    "name of the company",
    "registered name",
    "legal name",
    "business name",
    "entity name",
    "company",
    "firma",
    "firmenname",
    "dénomination sociale",
    "dénomination",
    "denomination",
    "raison sociale",
    "denominazione",
    "ragione sociale",
    "razón social",
    "razon social",
    "denominación social",
    "statutaire naam",
    "handelsnaam",
    "insured",
    "name of insured",
    "named insured",
    "policyholder",
    "policy holder",
    "account holder",
    "account name",
    "kontoinhaber",
    "titulaire du compte",
    "titulaire",
    "taxpayer",
    "taxpayer name",
];

const PERSON_LABELS: &[&str] = &[
    "surname",
    "given names",
    "given name",
    "full name",
    "name of holder",
    "holder",
    "name",
    "nom",
    "prénoms",
    "nachname",
    "vorname",
    "cognome",
    "nome",
    "apellidos",
    "nombre",
];

/// Legal-form words dropped before names are compared, lowercase, without dots.
const LEGAL_SUFFIXES: &[&str] = &[
    "gmbh",
    "ag",
    "kg",
    "ohg",
    "ug",
    "kgaa",
    "ev",
    "ltd",
    "limited",
    "inc",
    "incorporated",
    "llc",
    "llp",
    "lp",
    "plc",
    "co",
    "corp",
    "corporation",
    "company",
    "sa",
    "sas",
    "sarl",
    "eurl",
    "snc",
    "bv",
    "nv",
    "vof",
    "spa",
    "srl",
    "snc",
    "sl",
    "slu",
    "se",
    "ab",
    "oy",
    "as",
    "aps",
    "pty",
    "haftungsbeschränkt",
];

/// Values of `label: value` lines: (label index, value start, value end), in text order.
fn labelled_values(text: &str, lower: &str, labels: &[&str]) -> Vec<(usize, usize, usize)> {
    let mut values = Vec::new();
    for (index, label) in labels.iter().enumerate() {
        for (start, _) in lower.match_indices(label) {
            if values.len() >= NAME_CANDIDATES_MAX {
                break;
            }
            let end = start + label.len();
            let before = lower[..start].chars().next_back();
            if before.is_some_and(|c| c.is_alphanumeric()) {
                continue;
            }
            let rest = &text[end..];
            let line = rest.split('\n').next().unwrap_or("");
            let Some(after_colon) = line.trim_start_matches([' ', '\t']).strip_prefix(':') else {
                continue;
            };
            let value = after_colon.trim();
            if value.is_empty() || !value.chars().any(char::is_alphabetic) {
                continue;
            }
            let value_start = end
                + (line.len() - after_colon.len())
                + (after_colon.len() - after_colon.trim_start().len());
            let value_end = value_start + bounded_chars_len(value, NAME_CHARS_MAX);
            values.push((index, value_start, value_end));
        }
    }
    values.sort_by_key(|&(_, start, _)| start);
    values
}

/// Byte length of the first `chars_max` characters of `s`.
fn bounded_chars_len(s: &str, chars_max: usize) -> usize {
    s.char_indices()
        .nth(chars_max)
        .map_or(s.len(), |(index, _)| index)
}

/// The most words in a line read as a company name without a label.
pub const NAME_WORDS_MAX: usize = 8;

/// Words of document titles and sentences that end in a legal form ("CERTIFICATE OF
/// INCORPORATION OF A PRIVATE LIMITED COMPANY"); a line holding one is not a company name.
const DOCUMENT_WORDING: &[&str] = &[
    "certificate",
    "certifies",
    "certify",
    "confirm",
    "confirmation",
    "extract",
    "private",
    "public",
    "register",
    "registered",
    "the",
    "is",
    "a",
    "an",
    "this",
];

/// Lines that end in a legal-form word ("ACME TRADING LTD"), as (start, end).
fn legal_suffix_lines(text: &str) -> Vec<(usize, usize)> {
    let mut found = Vec::new();
    let mut offset = 0;
    for line in text.split('\n').take(NAME_LINES_MAX) {
        let line_start = offset;
        offset += line.len() + 1;
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.chars().count() > NAME_CHARS_MAX {
            continue;
        }
        let words = name_words(trimmed);
        let ends_in_suffix = words
            .last()
            .is_some_and(|w| LEGAL_SUFFIXES.contains(&w.as_str()));
        let wording = words.iter().any(|w| DOCUMENT_WORDING.contains(&w.as_str()));
        let name_like = words.len() >= 2 && words.len() <= NAME_WORDS_MAX;
        if ends_in_suffix && name_like && !wording && !trimmed.contains(':') {
            let start = line_start + (line.len() - line.trim_start().len());
            found.push((start, start + trimmed.len()));
            if found.len() >= NAME_CANDIDATES_MAX {
                break;
            }
        }
    }
    found
}

/// Lowercase words of a name with dots removed (so "S.A." is "sa"), diacritics folded and other
/// punctuation treated as spaces.
fn name_words(name: &str) -> Vec<String> {
    let mut folded = String::new();
    for ch in name.chars().flat_map(char::to_lowercase) {
        match ch {
            '.' => {}
            'ß' => folded.push_str("ss"),
            'æ' => folded.push_str("ae"),
            'œ' => folded.push_str("oe"),
            ch if ch.is_alphanumeric() => folded.push(fold_diacritic(ch)),
            _ => folded.push(' '),
        }
    }
    folded.split_whitespace().map(str::to_string).collect()
}

fn fold_diacritic(ch: char) -> char {
    match ch {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' => 'a',
        'ç' => 'c',
        'è' | 'é' | 'ê' | 'ë' => 'e',
        'ì' | 'í' | 'î' | 'ï' => 'i',
        'ñ' => 'n',
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' => 'o',
        'ù' | 'ú' | 'û' | 'ü' => 'u',
        'ý' | 'ÿ' => 'y',
        other => other,
    }
}

/// A name reduced for comparison: words without legal forms, in order and sorted.
fn comparable_name(name: &str) -> (String, String) {
    let mut words: Vec<String> = name_words(name)
        .into_iter()
        .filter(|w| !LEGAL_SUFFIXES.contains(&w.as_str()))
        .collect();
    let in_order = words.join(" ");
    words.sort();
    (in_order, words.join(" "))
}

/// Jaro-Winkler similarity of two company names in percent, after normalization; the better of
/// the names in order and with their words sorted.
pub fn name_similarity_pct(a: &str, b: &str) -> u8 {
    let (a_order, a_sorted) = comparable_name(a);
    let (b_order, b_sorted) = comparable_name(b);
    if a_order.is_empty() || b_order.is_empty() {
        return 0;
    }
    let score =
        strsim::jaro_winkler(&a_order, &b_order).max(strsim::jaro_winkler(&a_sorted, &b_sorted));
    (score * 100.0).floor().clamp(0.0, 100.0) as u8
}

fn name_checks(
    text: &str,
    vendor: &VendorProfile,
    needs: &Requirements,
    findings: &mut Findings,
    checks: &mut Vec<Check>,
) {
    if needs.company_name == Need::NotApplied {
        return;
    }
    let lower = text.to_ascii_lowercase();
    let mut candidates: Vec<(usize, usize)> = labelled_values(text, &lower, COMPANY_LABELS)
        .into_iter()
        .map(|(_, s, e)| (s, e))
        .collect();
    candidates.extend(legal_suffix_lines(text));
    candidates.truncate(NAME_CANDIDATES_MAX);
    let scored = candidates
        .iter()
        .map(|&(s, e)| (name_similarity_pct(&text[s..e], &vendor.name), s, e));
    // The best match wins; among equals, the first printed.
    let best = scored.fold(
        None,
        |best: Option<(u8, usize, usize)>, current| match best {
            Some(b) if b.0 >= current.0 => Some(b),
            _ => Some(current),
        },
    );
    let Some((score, start, end)) = best else {
        if needs.company_name == Need::Required {
            checks.push(check(
                "company_name",
                false,
                needs.company_name,
                "no company name found".into(),
                None,
            ));
        }
        return;
    };
    let evidence = Span::of(text, start, end);
    findings.company_name = Some(evidence.text.clone());
    let found = format!("company name found: {}", evidence.text);
    checks.push(check(
        "company_name",
        true,
        needs.company_name,
        found,
        Some(evidence.clone()),
    ));
    if needs.name_match == Need::NotApplied {
        return;
    }
    let passed = score >= NAME_MATCH_PCT_MIN;
    let verdict = if passed { "matches" } else { "does not match" };
    let detail = format!(
        "\"{}\" {verdict} the vendor name \"{}\" (similarity {score}%, {NAME_MATCH_PCT_MIN}% needed)",
        evidence.text, vendor.name
    );
    checks.push(check(
        "name_match",
        passed,
        needs.name_match,
        detail,
        Some(evidence),
    ));
}

fn holder_name_check(text: &str, findings: &mut Findings) -> Check {
    let lower = text.to_ascii_lowercase();
    let values = labelled_values(text, &lower, PERSON_LABELS);
    let person = values.iter().find(|&&(_, s, e)| {
        let value = &text[s..e];
        value
            .chars()
            .all(|c| c.is_alphabetic() || " -'.,".contains(c))
    });
    let Some(&(_, start, end)) = person else {
        return check(
            "holder_name",
            false,
            Need::Required,
            "no holder name found".into(),
            None,
        );
    };
    let evidence = Span::of(text, start, end);
    findings.holder_name = Some(evidence.text.clone());
    let detail = format!("holder name found: {}", evidence.text);
    check("holder_name", true, Need::Required, detail, Some(evidence))
}

// ---------------------------------------------------------------------------------------------
// Numbers

fn number_checks(
    text: &str,
    country: [u8; 2],
    needs: &Requirements,
    findings: &mut Findings,
    checks: &mut Vec<Check>,
    registration_owner: &dyn Fn(&str) -> Option<u64>,
) {
    let country_name = String::from_utf8_lossy(&country).into_owned();
    let mut registration_span = None;
    let kinds = [
        (
            "registration_number",
            "registration",
            NumberKind::Registration,
            needs.registration_number,
        ),
        ("tax_number", "tax", NumberKind::Tax, needs.tax_number),
    ];
    for (name, noun, kind, need) in kinds {
        if need == Need::NotApplied {
            continue;
        }
        match formats::find_number(text, country, kind) {
            Some(found) => {
                let evidence = Span::of(text, found.start, found.end);
                if kind == NumberKind::Registration {
                    registration_span = Some(evidence.clone());
                }
                let detail = format!(
                    "{noun} number {} in the {country_name} format",
                    found.normalized
                );
                checks.push(check(name, true, need, detail, Some(evidence)));
                let slot = match kind {
                    NumberKind::Registration => &mut findings.registration_number,
                    NumberKind::Tax => &mut findings.tax_number,
                };
                *slot = Some(found.normalized);
            }
            None if need == Need::Required => {
                let detail = format!("no {noun} number in the {country_name} format found");
                checks.push(check(name, false, need, detail, None));
            }
            None => {}
        }
    }
    if let Some(number) = &findings.registration_number {
        checks.push(duplicate_check(
            number,
            registration_span,
            registration_owner,
        ));
    }
}

fn duplicate_check(
    number: &str,
    evidence: Option<Span>,
    registration_owner: &dyn Fn(&str) -> Option<u64>,
) -> Check {
    match registration_owner(number) {
        Some(owner) => {
            let detail = format!("registration number {number} is already held by vendor {owner}");
            check(
                "duplicate_registration",
                false,
                Need::Required,
                detail,
                evidence,
            )
        }
        None => {
            let detail = format!("registration number {number} is not held by another vendor");
            check(
                "duplicate_registration",
                true,
                Need::Required,
                detail,
                evidence,
            )
        }
    }
}

fn bank_account_check(text: &str, findings: &mut Findings) -> Check {
    let need = Need::Required;
    match formats::find_iban(text) {
        Ok(Some(iban)) => {
            let detail = format!("IBAN {} with a valid checksum", iban.normalized);
            let evidence = Span::of(text, iban.start, iban.end);
            findings.bank_account = Some(iban.normalized);
            check("bank_account", true, need, detail, Some(evidence))
        }
        Err(printed) => check(
            "bank_account",
            false,
            need,
            format!("IBAN {printed} fails the mod-97 check"),
            None,
        ),
        Ok(None) => match formats::find_account_number(text) {
            Some(account) => {
                let detail = format!("account number {}", account.normalized);
                let evidence = Span::of(text, account.start, account.end);
                findings.bank_account = Some(account.normalized);
                check("bank_account", true, need, detail, Some(evidence))
            }
            None => check(
                "bank_account",
                false,
                need,
                "no IBAN or account number found".into(),
                None,
            ),
        },
    }
}

// ---------------------------------------------------------------------------------------------
// Dates

/// What a date in a document stands for, judged by the label before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DateRole {
    Issue,
    Expiry,
    /// Birth dates and the like: never an issue or expiry date.
    Other,
}

/// Date labels, lowercase, and whether they must sit right before the date (short words that
/// mean something else elsewhere in a sentence).
const DATE_LABELS: &[(&str, DateRole, bool)] = &[
    ("date of issue", DateRole::Issue, false),
    ("issue date", DateRole::Issue, false),
    ("issued on", DateRole::Issue, false),
    ("issued", DateRole::Issue, false),
    ("date issued", DateRole::Issue, false),
    ("dated", DateRole::Issue, true),
    ("date of incorporation", DateRole::Issue, false),
    ("incorporated on", DateRole::Issue, false),
    ("date of registration", DateRole::Issue, false),
    ("registration date", DateRole::Issue, false),
    ("effective date", DateRole::Issue, false),
    ("start date", DateRole::Issue, false),
    ("valid from", DateRole::Issue, false),
    ("policy period", DateRole::Issue, false),
    ("period of insurance", DateRole::Issue, false),
    ("as of", DateRole::Issue, true),
    ("from", DateRole::Issue, true),
    ("date", DateRole::Issue, true),
    ("ausgestellt am", DateRole::Issue, false),
    ("ausstellungsdatum", DateRole::Issue, false),
    ("datum", DateRole::Issue, true),
    ("gültig ab", DateRole::Issue, false),
    ("date de délivrance", DateRole::Issue, false),
    ("délivré le", DateRole::Issue, false),
    ("fait le", DateRole::Issue, false),
    ("data di emissione", DateRole::Issue, false),
    ("rilasciato il", DateRole::Issue, false),
    ("fecha de emisión", DateRole::Issue, false),
    ("fecha de expedición", DateRole::Issue, false),
    ("datum van afgifte", DateRole::Issue, false),
    ("valid until", DateRole::Expiry, false),
    ("valid till", DateRole::Expiry, false),
    ("valid to", DateRole::Expiry, false),
    ("valid thru", DateRole::Expiry, false),
    ("valid through", DateRole::Expiry, false),
    ("expiry date", DateRole::Expiry, false),
    ("date of expiry", DateRole::Expiry, false),
    ("expiry", DateRole::Expiry, false),
    ("expires on", DateRole::Expiry, false),
    ("expires", DateRole::Expiry, false),
    ("expiration date", DateRole::Expiry, false),
    ("expiration", DateRole::Expiry, false),
    ("end date", DateRole::Expiry, false),
    ("to", DateRole::Expiry, true),
    ("until", DateRole::Expiry, true),
    ("gültig bis", DateRole::Expiry, false),
    ("ablaufdatum", DateRole::Expiry, false),
    ("date d'expiration", DateRole::Expiry, false),
    ("valable jusqu'au", DateRole::Expiry, false),
    ("data di scadenza", DateRole::Expiry, false),
    ("scadenza", DateRole::Expiry, false),
    ("valido fino al", DateRole::Expiry, false),
    ("fecha de caducidad", DateRole::Expiry, false),
    ("válido hasta", DateRole::Expiry, false),
    ("geldig tot", DateRole::Expiry, false),
    ("vervaldatum", DateRole::Expiry, false),
    ("date of birth", DateRole::Other, false),
    ("born", DateRole::Other, false),
    ("geburtsdatum", DateRole::Other, false),
    ("date de naissance", DateRole::Other, false),
    ("data di nascita", DateRole::Other, false),
    ("fecha de nacimiento", DateRole::Other, false),
    ("geboortedatum", DateRole::Other, false),
];

/// The text before a date that may hold its label: the start of its line, or the previous line
/// when the date starts its line (a label above a value).
fn label_window(lower: &str, date_start: usize) -> &str {
    let before = &lower[..date_start];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    if before[line_start..].trim().is_empty() && line_start > 0 {
        let previous_start = before[..line_start - 1].rfind('\n').map_or(0, |i| i + 1);
        return &before[previous_start..];
    }
    &before[line_start..]
}

/// The role of a date from the nearest label before it, if any.
fn date_role(lower: &str, date: &FoundDate) -> Option<DateRole> {
    let window = label_window(lower, date.start);
    let mut nearest: Option<(usize, usize, DateRole)> = None;
    for &(label, role, adjacent) in DATE_LABELS {
        let Some(start) = rfind_word(window, label) else {
            continue;
        };
        let end = start + label.len();
        let between =
            window[end..].trim_matches(|c: char| c.is_whitespace() || c == ':' || c == ',');
        if adjacent && !between.is_empty() {
            continue;
        }
        let better = nearest.is_none_or(|(e, len, _)| end > e || (end == e && label.len() > len));
        if better {
            nearest = Some((end, label.len(), role));
        }
    }
    nearest.map(|(_, _, role)| role)
}

/// The start of the last whole-word occurrence of `needle` in `haystack`.
fn rfind_word(haystack: &str, needle: &str) -> Option<usize> {
    haystack
        .rmatch_indices(needle)
        .map(|(start, _)| start)
        .find(|&start| {
            let before = haystack[..start].chars().next_back();
            let after = haystack[start + needle.len()..].chars().next();
            before.is_none_or(|c| !c.is_alphanumeric())
                && after.is_none_or(|c| !c.is_alphanumeric())
        })
}

/// The issue and expiry dates: the first date labelled as such; an unlabelled date counts as the
/// issue date when no labelled one exists (letters carry their date at the top).
fn issue_and_expiry(text: &str, order: DateOrder) -> (Option<FoundDate>, Option<FoundDate>) {
    // ASCII lowering keeps every byte offset, so date offsets index the lowered text too.
    let lower = text.to_ascii_lowercase();
    let mut issue = None;
    let mut expiry = None;
    let mut unlabelled = None;
    for date in dates::find_dates(text, order) {
        match date_role(&lower, &date) {
            Some(DateRole::Issue) => issue = issue.or(Some(date)),
            Some(DateRole::Expiry) => expiry = expiry.or(Some(date)),
            Some(DateRole::Other) => {}
            None => unlabelled = unlabelled.or(Some(date)),
        }
    }
    (issue.or(unlabelled), expiry)
}

fn date_checks(
    text: &str,
    country: [u8; 2],
    today_day: i64,
    needs: &Requirements,
    findings: &mut Findings,
    checks: &mut Vec<Check>,
) {
    let order = if &country == b"US" {
        DateOrder::MonthFirst
    } else {
        DateOrder::DayFirst
    };
    let (issue, expiry) = issue_and_expiry(text, order);
    findings.issue_day = issue.map(|d| d.day);
    findings.expiry_day = expiry.map(|d| d.day);
    if let Some(check) = issue_check(text, issue, today_day, needs) {
        checks.push(check);
    }
    if let Some(check) = expiry_check(text, expiry, today_day, needs.expiry) {
        checks.push(check);
    }
}

fn issue_check(
    text: &str,
    issue: Option<FoundDate>,
    today_day: i64,
    needs: &Requirements,
) -> Option<Check> {
    let need = needs.issue_date;
    let Some(issue) = issue else {
        let missing = check(
            "issue_date",
            false,
            need,
            "no issue date found".into(),
            None,
        );
        return (need == Need::Required).then_some(missing);
    };
    let evidence = Some(Span::of(text, issue.start, issue.end));
    let day = dates::format_day(issue.day);
    let age_days = today_day.saturating_sub(issue.day);
    let (passed, detail) = if age_days < 0 {
        (false, format!("issue date {day} is in the future"))
    } else if let Some(age_max) = needs.issue_age_days_max.filter(|max| age_days > *max) {
        (
            false,
            format!("issued {day}, {age_days} days ago; at most {age_max} days are accepted"),
        )
    } else {
        (true, format!("issued {day}"))
    };
    Some(check("issue_date", passed, need, detail, evidence))
}

fn expiry_check(
    text: &str,
    expiry: Option<FoundDate>,
    today_day: i64,
    need: Need,
) -> Option<Check> {
    let Some(expiry) = expiry else {
        let missing = check(
            "expiry_in_future",
            false,
            need,
            "no expiry date found".into(),
            None,
        );
        return (need == Need::Required).then_some(missing);
    };
    let evidence = Some(Span::of(text, expiry.start, expiry.end));
    let day = dates::format_day(expiry.day);
    if expiry.day < today_day {
        let mut expired = check(
            "expiry_in_future",
            false,
            need,
            format!("expired on {day}"),
            evidence,
        );
        expired.hard = true;
        return Some(expired);
    }
    Some(check(
        "expiry_in_future",
        true,
        need,
        format!("valid until {day}"),
        evidence,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verification::dates::days_from_civil;
    use crate::verification::samples::{SampleSpec, document_text, sample_spec};

    /// 2026-02-17.
    const TODAY: i64 = 20_501;

    fn vendor(name: &str, country: &[u8; 2]) -> VendorProfile {
        VendorProfile {
            name: name.to_string(),
            country: *country,
        }
    }

    fn assess_text(doc_type: DocumentType, text: &str, vendor: &VendorProfile) -> Assessment {
        assess(doc_type, text, vendor, TODAY, &|_| None)
    }

    fn passed(assessment: &Assessment, name: &str) -> Option<bool> {
        assessment.check(name).map(|check| check.passed)
    }

    fn verdict(assessment: &Assessment) -> &'static str {
        match decide(assessment, &Policy::default()) {
            Decision::Approve => "approve",
            Decision::Reject { .. } => "reject",
            Decision::Review { .. } => "review",
        }
    }

    const ACME: &str = "Acme Trading Ltd";

    /// A GB business registration, parameterised by the lines that tests vary.
    fn gb_registration(name_line: &str, number_line: &str, date_line: &str) -> String {
        format!(
            "Companies House\nCERTIFICATE OF INCORPORATION OF A PRIVATE LIMITED COMPANY\n\
             {number_line}\n{name_line}\nThe Registrar of Companies hereby certifies the company.\n{date_line}\n"
        )
    }

    fn good_gb_registration() -> String {
        gb_registration(
            "Company name: ACME TRADING LIMITED",
            "Company number: 01234567",
            "Date of issue: 14 March 2025",
        )
    }

    #[test]
    fn document_type_names_round_trip() {
        for doc_type in DocumentType::ALL {
            assert_eq!(DocumentType::parse(doc_type.as_str()), Some(doc_type));
        }
        assert_eq!(DocumentType::parse("passport"), None);
        assert_eq!(DocumentType::BankLetter.as_str(), "bank_letter");
    }

    #[test]
    fn assessments_round_trip_through_postcard() {
        let assessment = assess_text(
            DocumentType::BusinessRegistration,
            &good_gb_registration(),
            &vendor(ACME, b"GB"),
        );
        let bytes = postcard::to_allocvec(&assessment).unwrap_or_default();
        let back: Option<Assessment> = postcard::from_bytes(&bytes).ok();
        assert_eq!(back, Some(assessment));
    }

    #[test]
    fn a_complete_business_registration_is_approved() {
        let assessment = assess_text(
            DocumentType::BusinessRegistration,
            &good_gb_registration(),
            &vendor(ACME, b"GB"),
        );
        assert_eq!(verdict(&assessment), "approve", "{assessment:#?}");
        assert_eq!(assessment.confidence_pct, 100);
        assert_eq!(assessment.rules_version, RULES_VERSION);
        let findings = &assessment.findings;
        assert_eq!(
            findings.company_name.as_deref(),
            Some("ACME TRADING LIMITED")
        );
        assert_eq!(findings.registration_number.as_deref(), Some("01234567"));
        assert_eq!(findings.issue_day, Some(days_from_civil(2025, 3, 14)));
        assert_eq!(findings.expiry_day, None);
        let names: Vec<&str> = assessment.checks.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "document_type",
                "company_name",
                "name_match",
                "registration_number",
                "duplicate_registration",
                "issue_date"
            ]
        );
    }

    #[test]
    fn evidence_points_into_the_text() {
        let text = good_gb_registration();
        let assessment = assess_text(
            DocumentType::BusinessRegistration,
            &text,
            &vendor(ACME, b"GB"),
        );
        for check in &assessment.checks {
            if let Some(span) = &check.evidence {
                assert_eq!(
                    &text[span.start as usize..span.end as usize],
                    span.text,
                    "{}",
                    check.name
                );
            }
        }
        let span = assessment
            .check("registration_number")
            .and_then(|c| c.evidence.clone());
        assert_eq!(span.map(|s| s.text).as_deref(), Some("01234567"));
    }

    #[test]
    fn document_type_wrong_type_is_rejected() {
        let bank = sample_spec(1, DocumentType::BankLetter, ACME, *b"GB", TODAY);
        let assessment = assess_text(
            DocumentType::InsuranceCertificate,
            &document_text(&bank),
            &vendor(ACME, b"GB"),
        );
        let check = assessment.check("document_type");
        assert!(
            check.is_some_and(|c| !c.passed && c.hard && c.detail.contains("bank letter")),
            "{check:?}"
        );
        assert_eq!(assessment.confidence_pct, 0);
        assert_eq!(verdict(&assessment), "reject");
    }

    #[test]
    fn document_type_unclear_goes_to_review() {
        let text = "Acme Trading Ltd\nCompany number: 01234567\nDate: 14 March 2025\n";
        let assessment = assess_text(
            DocumentType::BusinessRegistration,
            text,
            &vendor(ACME, b"GB"),
        );
        let check = assessment.check("document_type");
        assert!(check.is_some_and(|c| !c.passed && !c.hard), "{check:?}");
        assert_eq!(verdict(&assessment), "review");
    }

    #[test]
    fn company_name_missing_fails() {
        let text = gb_registration(
            "The company is registered in Wales.",
            "Company number: 01234567",
            "Issued: 2025-03-14",
        );
        let assessment = assess_text(
            DocumentType::BusinessRegistration,
            &text,
            &vendor(ACME, b"GB"),
        );
        assert_eq!(passed(&assessment, "company_name"), Some(false));
        assert_eq!(passed(&assessment, "name_match"), None);
        assert!(assessment.confidence_pct <= REQUIRED_FAILED_CONFIDENCE_MAX);
        assert_eq!(verdict(&assessment), "review");
    }

    #[test]
    fn a_name_on_its_own_line_with_a_legal_form_is_found() {
        let text = gb_registration(
            "ACME TRADING LTD",
            "Company number: 01234567",
            "Issued: 2025-03-14",
        );
        let assessment = assess_text(
            DocumentType::BusinessRegistration,
            &text,
            &vendor(ACME, b"GB"),
        );
        assert_eq!(
            assessment.findings.company_name.as_deref(),
            Some("ACME TRADING LTD")
        );
        assert_eq!(verdict(&assessment), "approve");
    }

    #[test]
    fn name_match_tolerates_legal_forms_order_and_accents() {
        assert_eq!(
            name_similarity_pct("ACME TRADING LIMITED", "Acme Trading Ltd"),
            100
        );
        assert_eq!(
            name_similarity_pct("Trading Acme Ltd.", "Acme Trading Ltd"),
            100
        );
        assert_eq!(
            name_similarity_pct(
                "Société Générale de Vins S.A.R.L.",
                "Societe Generale de Vins SARL"
            ),
            100
        );
        assert!(
            name_similarity_pct("Nordlicht Handels GmbH", "Nordlicht Handel GmbH")
                >= NAME_MATCH_PCT_MIN
        );
        assert!(name_similarity_pct("Globex Corporation", "Acme Trading Ltd") < NAME_MATCH_PCT_MIN);
        assert_eq!(name_similarity_pct("GmbH", "Acme"), 0);
    }

    #[test]
    fn name_match_fails_for_another_company() {
        let text = gb_registration(
            "Company name: GLOBEX HOLDINGS LIMITED",
            "Company number: 01234567",
            "Issued: 2025-03-14",
        );
        let assessment = assess_text(
            DocumentType::BusinessRegistration,
            &text,
            &vendor(ACME, b"GB"),
        );
        assert_eq!(passed(&assessment, "company_name"), Some(true));
        let check = assessment.check("name_match");
        assert!(
            check.is_some_and(|c| !c.passed && !c.hard && c.detail.contains("does not match")),
            "{check:?}"
        );
        assert_eq!(verdict(&assessment), "review");
    }

    #[test]
    fn name_match_picks_the_vendor_among_other_names() {
        let spec = sample_spec(3, DocumentType::InsuranceCertificate, ACME, *b"GB", TODAY);
        let text = format!("Hanseatic Versicherung AG\n{}", document_text(&spec));
        let assessment = assess_text(
            DocumentType::InsuranceCertificate,
            &text,
            &vendor(ACME, b"GB"),
        );
        let evidence = assessment
            .check("name_match")
            .and_then(|c| c.evidence.clone());
        assert_eq!(evidence.map(|e| e.text).as_deref(), Some(ACME));
    }

    #[test]
    fn registration_number_in_the_wrong_format_fails() {
        let text = gb_registration(
            "Company name: Acme Trading Ltd",
            "Company number: 1234567",
            "Issued: 2025-03-14",
        );
        let assessment = assess_text(
            DocumentType::BusinessRegistration,
            &text,
            &vendor(ACME, b"GB"),
        );
        let check = assessment.check("registration_number");
        assert!(
            check.is_some_and(|c| !c.passed && c.detail.contains("GB format")),
            "{check:?}"
        );
        assert_eq!(passed(&assessment, "duplicate_registration"), None);
        assert_eq!(verdict(&assessment), "review");
    }

    /// Each country's registration number, valid and invalid, in a register extract.
    #[test]
    fn registration_number_formats_per_country() {
        let cases: [(&[u8; 2], &str, &str); 8] = [
            (
                b"US",
                "Registration number: C1234567",
                "Registration number: C12",
            ),
            (b"GB", "Company number: SC123456", "Company number: SC12345"),
            (
                b"DE",
                "Registernummer: HRB 12345",
                "Registernummer: HRX 12345",
            ),
            (b"FR", "SIREN: 732 829 320", "SIREN: 732 829 321"),
            (b"NL", "KvK-nummer: 12345678", "KvK-nummer: 1234567"),
            (
                b"IT",
                "Partita IVA: 00743110157",
                "Partita IVA: 00743110158",
            ),
            (b"ES", "CIF: A58818501", "CIF: A58818502"),
            (
                b"CH",
                "Registration No.: CHE-123.456.789",
                "Registration No.: CHE-1",
            ),
        ];
        for (country, valid, invalid) in cases {
            let document = |line: &str| {
                format!(
                    "Commercial Register Extract\nCompany name: Acme Trading Ltd\n{line}\nDate of issue: 2025-03-14\n"
                )
            };
            let vendor = vendor(ACME, country);
            let good = assess_text(
                DocumentType::BusinessRegistration,
                &document(valid),
                &vendor,
            );
            assert_eq!(verdict(&good), "approve", "{country:?} {good:#?}");
            let bad = assess_text(
                DocumentType::BusinessRegistration,
                &document(invalid),
                &vendor,
            );
            assert_eq!(
                passed(&bad, "registration_number"),
                Some(false),
                "{country:?} {bad:#?}"
            );
        }
    }

    /// Each country's tax number, valid and invalid, in a tax certificate.
    #[test]
    fn tax_number_formats_per_country() {
        let cases: [(&[u8; 2], &str, &str); 8] = [
            (b"US", "EIN: 12-3456789", "EIN: 12-345678"),
            (
                b"GB",
                "VAT Registration No.: GB 123 4567 89",
                "VAT Registration No.: GB 123 4567",
            ),
            (b"DE", "USt-IdNr.: DE 123456789", "USt-IdNr.: DE 12345678"),
            (
                b"FR",
                "TVA intracommunautaire: FR 44 732829320",
                "TVA intracommunautaire: FR 45 732829320",
            ),
            (
                b"NL",
                "BTW-nummer: NL123456789B01",
                "BTW-nummer: NL123456789C01",
            ),
            (
                b"IT",
                "Partita IVA: IT 00743110157",
                "Partita IVA: IT 00743110158",
            ),
            (b"ES", "NIF: ESA58818501", "NIF: ESA58818502"),
            (
                b"CH",
                "VAT number: CHE-123.456.789 MWST",
                "VAT number: none",
            ),
        ];
        for (country, valid, invalid) in cases {
            let document = |line: &str| {
                format!(
                    "Tax Certificate\nTaxpayer: Acme Trading Ltd\n{line}\nDate of issue: 2025-03-14\n"
                )
            };
            let vendor = vendor(ACME, country);
            let good = assess_text(DocumentType::TaxCertificate, &document(valid), &vendor);
            assert_eq!(verdict(&good), "approve", "{country:?} {good:#?}");
            let bad = assess_text(DocumentType::TaxCertificate, &document(invalid), &vendor);
            assert_eq!(
                passed(&bad, "tax_number"),
                Some(false),
                "{country:?} {bad:#?}"
            );
            assert_eq!(verdict(&bad), "review");
        }
    }

    #[test]
    fn duplicate_registration_goes_to_review() {
        let seen = std::cell::RefCell::new(Vec::new());
        let owner = |number: &str| {
            seen.borrow_mut().push(number.to_string());
            Some(42)
        };
        let assessment = assess(
            DocumentType::BusinessRegistration,
            &good_gb_registration(),
            &vendor(ACME, b"GB"),
            TODAY,
            &owner,
        );
        assert_eq!(seen.borrow().as_slice(), ["01234567"]);
        let check = assessment.check("duplicate_registration");
        assert!(
            check.is_some_and(|c| !c.passed
                && !c.hard
                && c.required
                && c.detail.contains("vendor 42")),
            "{check:?}"
        );
        match decide(&assessment, &Policy::default()) {
            Decision::Review { reasons } => assert!(
                reasons.iter().any(|r| r.contains("vendor 42")),
                "{reasons:?}"
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn issue_date_missing_or_in_the_future_fails() {
        let missing = gb_registration(
            "Company name: Acme Trading Ltd",
            "Company number: 01234567",
            "",
        );
        let assessment = assess_text(
            DocumentType::BusinessRegistration,
            &missing,
            &vendor(ACME, b"GB"),
        );
        assert_eq!(passed(&assessment, "issue_date"), Some(false));
        assert_eq!(verdict(&assessment), "review");
        let future = gb_registration(
            "Company name: Acme Trading Ltd",
            "Company number: 01234567",
            "Issued: 2030-01-01",
        );
        let assessment = assess_text(
            DocumentType::BusinessRegistration,
            &future,
            &vendor(ACME, b"GB"),
        );
        let check = assessment.check("issue_date");
        assert!(
            check.is_some_and(|c| !c.passed && c.detail.contains("future")),
            "{check:?}"
        );
    }

    #[test]
    fn us_dates_are_read_month_first() {
        let text = gb_registration(
            "Company name: Acme Trading Ltd",
            "Registration number: C1234567",
            "Date of issue: 03/04/2025",
        );
        let text = text.replace(
            "Companies House",
            "State of Delaware - Certificate of Formation",
        );
        let us = assess_text(
            DocumentType::BusinessRegistration,
            &text,
            &vendor(ACME, b"US"),
        );
        assert_eq!(us.findings.issue_day, Some(days_from_civil(2025, 3, 4)));
        let de = assess_text(
            DocumentType::BusinessRegistration,
            &text,
            &vendor(ACME, b"CH"),
        );
        assert_eq!(de.findings.issue_day, Some(days_from_civil(2025, 4, 3)));
    }

    #[test]
    fn every_date_format_is_read_as_an_issue_date() {
        let written = [
            "2025-03-14",
            "14/03/2025",
            "14.03.2025",
            "March 14, 2025",
            "14 March 2025",
            "14 Mar 2025",
        ];
        for date in written {
            let text = gb_registration(
                "Company name: Acme Trading Ltd",
                "Company number: 01234567",
                &format!("Issued: {date}"),
            );
            let assessment = assess_text(
                DocumentType::BusinessRegistration,
                &text,
                &vendor(ACME, b"GB"),
            );
            assert_eq!(
                assessment.findings.issue_day,
                Some(days_from_civil(2025, 3, 14)),
                "{date}"
            );
        }
    }

    #[test]
    fn date_labels_decide_issue_and_expiry() {
        let text = "Certificate of Insurance\nInsured: Acme Trading Ltd\nDate of birth: 01.01.1980\n\
                    Policy period: 01/01/2026 to 01/01/2027\n";
        let assessment = assess_text(
            DocumentType::InsuranceCertificate,
            text,
            &vendor(ACME, b"GB"),
        );
        assert_eq!(
            assessment.findings.issue_day,
            Some(days_from_civil(2026, 1, 1))
        );
        assert_eq!(
            assessment.findings.expiry_day,
            Some(days_from_civil(2027, 1, 1))
        );
        let stacked =
            "Certificate of Insurance\nInsured: Acme Trading Ltd\nExpiry date\n31 December 2027\n";
        let assessment = assess_text(
            DocumentType::InsuranceCertificate,
            stacked,
            &vendor(ACME, b"GB"),
        );
        assert_eq!(
            assessment.findings.expiry_day,
            Some(days_from_civil(2027, 12, 31))
        );
    }

    #[test]
    fn expired_documents_are_rejected() {
        let spec = sample_spec(8, DocumentType::InsuranceCertificate, ACME, *b"GB", TODAY);
        let good = assess_text(
            DocumentType::InsuranceCertificate,
            &document_text(&spec),
            &vendor(ACME, b"GB"),
        );
        assert_eq!(passed(&good, "expiry_in_future"), Some(true));
        assert_eq!(verdict(&good), "approve");
        let expired = SampleSpec {
            expiry_day: Some(TODAY - 1),
            ..spec
        };
        let assessment = assess_text(
            DocumentType::InsuranceCertificate,
            &document_text(&expired),
            &vendor(ACME, b"GB"),
        );
        let check = assessment.check("expiry_in_future");
        assert!(
            check.is_some_and(|c| !c.passed && c.hard && c.detail.starts_with("expired on")),
            "{check:?}"
        );
        match decide(&assessment, &Policy::default()) {
            Decision::Reject { reasons } => assert_eq!(reasons.len(), 1, "{reasons:?}"),
            other => panic!("{other:?}"),
        }
        let lenient = Policy {
            auto_reject_hard_failures: false,
            ..Policy::default()
        };
        assert!(matches!(
            decide(&assessment, &lenient),
            Decision::Review { .. }
        ));
    }

    #[test]
    fn an_expiry_today_is_still_valid() {
        let spec = sample_spec(8, DocumentType::TaxCertificate, ACME, *b"GB", TODAY);
        let today = SampleSpec {
            expiry_day: Some(TODAY),
            ..spec
        };
        let assessment = assess_text(
            DocumentType::TaxCertificate,
            &document_text(&today),
            &vendor(ACME, b"GB"),
        );
        assert_eq!(passed(&assessment, "expiry_in_future"), Some(true));
    }

    #[test]
    fn insurance_without_expiry_goes_to_review() {
        let text = "CERTIFICATE OF INSURANCE\nPolicy number: POL-1234\nInsured: Acme Trading Ltd\nIssued on: 2025-06-01\n";
        let assessment = assess_text(
            DocumentType::InsuranceCertificate,
            text,
            &vendor(ACME, b"GB"),
        );
        let check = assessment.check("expiry_in_future");
        assert!(
            check.is_some_and(|c| !c.passed && !c.hard && c.required),
            "{check:?}"
        );
        assert_eq!(verdict(&assessment), "review");
    }

    #[test]
    fn tax_certificate_expiry_is_checked_only_when_present() {
        let spec = sample_spec(2, DocumentType::TaxCertificate, ACME, *b"DE", TODAY);
        let without = SampleSpec {
            expiry_day: None,
            ..spec
        };
        let assessment = assess_text(
            DocumentType::TaxCertificate,
            &document_text(&without),
            &vendor(ACME, b"DE"),
        );
        assert_eq!(passed(&assessment, "expiry_in_future"), None);
        assert_eq!(verdict(&assessment), "approve", "{assessment:#?}");
    }

    #[test]
    fn bank_letter_with_iban_or_account_passes() {
        for country in [*b"GB", *b"US"] {
            let spec = sample_spec(5, DocumentType::BankLetter, ACME, country, TODAY);
            let assessment = assess_text(
                DocumentType::BankLetter,
                &document_text(&spec),
                &vendor(ACME, &country),
            );
            assert_eq!(
                passed(&assessment, "bank_account"),
                Some(true),
                "{assessment:#?}"
            );
            assert_eq!(verdict(&assessment), "approve");
        }
    }

    #[test]
    fn bank_letter_with_a_bad_iban_or_none_fails() {
        let letter = |account_line: &str| {
            format!(
                "First Commercial Bank\nLondon, 2 February 2026\nBANK CONFIRMATION LETTER\nAccount holder: Acme Trading Ltd\n{account_line}\nBIC: NWBKGB2L\n"
            )
        };
        let good = assess_text(
            DocumentType::BankLetter,
            &letter("IBAN: GB29 NWBK 6016 1331 9268 19"),
            &vendor(ACME, b"GB"),
        );
        assert_eq!(
            good.findings.bank_account.as_deref(),
            Some("GB29NWBK60161331926819")
        );
        let bad = assess_text(
            DocumentType::BankLetter,
            &letter("IBAN: GB28 NWBK 6016 1331 9268 19"),
            &vendor(ACME, b"GB"),
        );
        let check = bad.check("bank_account");
        assert!(
            check.is_some_and(|c| !c.passed && c.detail.contains("mod-97")),
            "{check:?}"
        );
        let none = assess_text(
            DocumentType::BankLetter,
            &letter("Sort code: 60-16-13"),
            &vendor(ACME, b"GB"),
        );
        assert_eq!(passed(&none, "bank_account"), Some(false));
        assert_eq!(verdict(&none), "review");
    }

    #[test]
    fn bank_letter_older_than_a_year_fails() {
        let spec = sample_spec(5, DocumentType::BankLetter, ACME, *b"GB", TODAY);
        let old = SampleSpec {
            issue_day: TODAY - BANK_LETTER_AGE_DAYS_MAX - 1,
            ..spec.clone()
        };
        let assessment = assess_text(
            DocumentType::BankLetter,
            &document_text(&old),
            &vendor(ACME, b"GB"),
        );
        let check = assessment.check("issue_date");
        assert!(
            check.is_some_and(|c| !c.passed && c.detail.contains("days ago")),
            "{check:?}"
        );
        assert_eq!(verdict(&assessment), "review");
        let edge = SampleSpec {
            issue_day: TODAY - BANK_LETTER_AGE_DAYS_MAX,
            ..spec
        };
        let assessment = assess_text(
            DocumentType::BankLetter,
            &document_text(&edge),
            &vendor(ACME, b"GB"),
        );
        assert_eq!(passed(&assessment, "issue_date"), Some(true));
    }

    #[test]
    fn identity_document_needs_a_holder_and_a_future_expiry() {
        let spec = sample_spec(4, DocumentType::IdentityDocument, ACME, *b"DE", TODAY);
        let text = document_text(&spec);
        let assessment = assess_text(DocumentType::IdentityDocument, &text, &vendor(ACME, b"DE"));
        assert_eq!(
            passed(&assessment, "holder_name"),
            Some(true),
            "{assessment:#?}"
        );
        assert_eq!(passed(&assessment, "name_match"), None);
        assert_eq!(assessment.findings.company_name, None);
        assert!(assessment.findings.issue_day < assessment.findings.expiry_day);
        assert_eq!(verdict(&assessment), "approve");
        let nameless: String = text
            .lines()
            .filter(|l| !l.contains("name"))
            .collect::<Vec<_>>()
            .join("\n");
        let assessment = assess_text(
            DocumentType::IdentityDocument,
            &nameless,
            &vendor(ACME, b"DE"),
        );
        assert_eq!(passed(&assessment, "holder_name"), Some(false));
        assert_eq!(verdict(&assessment), "review");
    }

    #[test]
    fn other_documents_always_go_to_review() {
        let spec = sample_spec(1, DocumentType::Other, ACME, *b"GB", TODAY);
        let assessment = assess_text(
            DocumentType::Other,
            &document_text(&spec),
            &vendor(ACME, b"GB"),
        );
        assert!(assessment.confidence_pct <= OTHER_CONFIDENCE_MAX);
        assert!(
            assessment.checks.iter().all(|c| c.passed),
            "{assessment:#?}"
        );
        let anything = Policy {
            auto_approve_pct: 0,
            ..Policy::default()
        };
        match decide(&assessment, &anything) {
            Decision::Review { reasons } => assert!(
                reasons.iter().any(|r| r.contains("type other")),
                "{reasons:?}"
            ),
            other => panic!("{other:?}"),
        }
        let empty = assess_text(DocumentType::Other, "", &vendor(ACME, b"GB"));
        assert_eq!(verdict(&empty), "review");
    }

    #[test]
    fn the_threshold_is_inclusive() {
        let mut assessment = assess_text(
            DocumentType::BusinessRegistration,
            &good_gb_registration(),
            &vendor(ACME, b"GB"),
        );
        assessment.confidence_pct = 90;
        assert_eq!(
            decide(
                &assessment,
                &Policy {
                    auto_approve_pct: 90,
                    auto_reject_hard_failures: true
                }
            ),
            Decision::Approve
        );
        match decide(
            &assessment,
            &Policy {
                auto_approve_pct: 91,
                auto_reject_hard_failures: true,
            },
        ) {
            Decision::Review { reasons } => assert_eq!(
                reasons,
                ["confidence 90% is below the auto-approve threshold of 91%"]
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_failed_optional_check_lowers_confidence_without_blocking() {
        let text = format!("{}VAT number: GB 123\n", good_gb_registration());
        let assessment = assess_text(
            DocumentType::BusinessRegistration,
            &text,
            &vendor(ACME, b"GB"),
        );
        // An invalid optional number is simply not found: no check, no penalty.
        assert_eq!(passed(&assessment, "tax_number"), None);
        let checks = vec![
            check("a", true, Need::Required, String::new(), None),
            check("b", true, Need::Required, String::new(), None),
            check("c", true, Need::Required, String::new(), None),
            check("d", false, Need::IfPresent, String::new(), None),
        ];
        assert_eq!(confidence(DocumentType::TaxCertificate, &checks), 90);
        let assessment = Assessment {
            checks,
            confidence_pct: 90,
            ..assessment
        };
        assert!(matches!(
            decide(&assessment, &Policy::default()),
            Decision::Approve
        ));
    }

    #[test]
    fn hostile_text_is_bounded_and_never_panics() {
        let long_line = format!("Company name: {}\n", "Ä".repeat(10_000));
        let assessment = assess_text(
            DocumentType::BusinessRegistration,
            &long_line,
            &vendor(ACME, b"GB"),
        );
        let span = assessment
            .check("company_name")
            .and_then(|c| c.evidence.clone());
        assert!(span.is_some_and(|s| s.text.chars().count() <= SPAN_TEXT_CHARS_MAX));
        let huge = "IBAN: ".repeat(ASSESS_TEXT_BYTES_MAX / 4);
        let assessment = assess_text(DocumentType::BankLetter, &huge, &vendor(ACME, b"GB"));
        assert_eq!(passed(&assessment, "bank_account"), Some(false));
        for text in [
            "",
            ":",
            "\n\n",
            "Company name:\n",
            "Valid until: 99/99/9999",
            "ü€\u{0}\u{feff}",
        ] {
            for doc_type in DocumentType::ALL {
                let assessment = assess_text(doc_type, text, &vendor("", b"ZZ"));
                assert!(assessment.confidence_pct <= 100);
            }
        }
    }

    /// Pseudo-random documents built from label fragments, digits, separators and multi-byte
    /// characters: assessing them must never panic, whatever lines up where.
    #[test]
    fn random_documents_never_panic() {
        const PIECES: &[&str] = &[
            "Company name:",
            "IBAN:",
            "VAT",
            "HRB",
            "GB",
            "DE",
            "Valid until",
            "Issued",
            " ",
            "\n",
            ":",
            ".",
            "/",
            "-",
            "14",
            "03",
            "2025",
            "März",
            "March",
            "Ltd",
            "GmbH",
            "ü",
            "İ",
            "ẞ",
            "\u{a0}",
            "\u{3000}",
            "€",
            "0",
            "123456789",
            "Date of birth",
            "to",
            "passport",
        ];
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        for round in 0..300 {
            let mut text = String::new();
            for _ in 0..(round % 60) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                text.push_str(PIECES[(state % PIECES.len() as u64) as usize]);
            }
            for doc_type in DocumentType::ALL {
                for country in [b"US", b"GB", b"DE", b"FR", b"NL", b"IT", b"ES", b"CH"] {
                    let assessment =
                        assess(doc_type, &text, &vendor(ACME, country), TODAY, &|_| Some(1));
                    for check in &assessment.checks {
                        if let Some(span) = &check.evidence {
                            assert!(
                                text.get(span.start as usize..span.end as usize).is_some(),
                                "{text:?}"
                            );
                        }
                    }
                }
            }
        }
    }
}
