//! Civil dates as day numbers (days since 1970-01-01, proleptic Gregorian, UTC) and a scanner
//! that finds dates written in documents.
//!
//! Day numbers are what the rules store and compare: an `i64` is trivially ordered, needs no
//! time zone and serializes to a few bytes. The conversions are Howard Hinnant's
//! `days_from_civil` / `civil_from_days` algorithms; we avoid a date crate for six lines of math.
//!
//! Recognised spellings (day-first unless the document is read month-first, as US documents are):
//!
//! | Written                | Read as                                 |
//! |------------------------|-----------------------------------------|
//! | `2025-03-14`           | ISO, always year-month-day              |
//! | `14/03/2025`           | day/month/year; month/day/year for US   |
//! | `14-03-2025`           | like the slash form                     |
//! | `14.03.2025`           | always day.month.year                   |
//! | `March 14, 2025`       | month name first (also `Mar 14 2025`)   |
//! | `14 March 2025`        | day first (also `14 Mar 2025`, `14th March, 2025`, `14. März 2025`) |
//!
//! Month names: English full names and three-letter abbreviations, plus German, French, Italian,
//! Spanish and Dutch full names.
//!
//! ```
//! use mercato_engine::verification::dates::{days_from_civil, find_dates, DateOrder};
//! let found = find_dates("Issued 14 March 2025", DateOrder::DayFirst);
//! assert_eq!(found[0].day, days_from_civil(2025, 3, 14));
//! ```

/// The most dates [`find_dates`] returns; later ones are ignored (a document is not a calendar).
pub const DATES_MAX: usize = 256;
/// The earliest year a document date may have.
pub const YEAR_MIN: i64 = 1900;
/// The latest year a document date may have.
pub const YEAR_MAX: i64 = 2200;

/// How an all-numeric date with `/` or `-` between day and month is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DateOrder {
    /// `14/03/2025` is the 14th of March (most of the world).
    DayFirst,
    /// `03/14/2025` is the 14th of March (United States).
    MonthFirst,
}

/// A date found in a text, with its byte range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FoundDate {
    /// Days since 1970-01-01.
    pub day: i64,
    /// Byte offset of the first character of the date.
    pub start: usize,
    /// Byte offset one past the last character of the date.
    pub end: usize,
}

/// Days since 1970-01-01 of a proleptic Gregorian civil date (Hinnant's `days_from_civil`).
/// Does not validate; see [`checked_day`].
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let day = i64::from(day);
    let day_of_year = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The most days from 1970 that [`civil_from_days`] converts; beyond, it clamps (about
/// 27 million years, far past any document and far from integer overflow).
pub const DAY_NUMBER_ABS_MAX: i64 = 10_000_000_000;

/// The civil date `(year, month, day)` of a day number (Hinnant's `civil_from_days`).
pub fn civil_from_days(day_number: i64) -> (i64, u32, u32) {
    let z = day_number.clamp(-DAY_NUMBER_ABS_MAX, DAY_NUMBER_ABS_MAX) + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The day number of a valid date in `YEAR_MIN..=YEAR_MAX`, or `None` for e.g. the 30th of February.
pub fn checked_day(year: i64, month: u32, day: u32) -> Option<i64> {
    let valid = (YEAR_MIN..=YEAR_MAX).contains(&year)
        && (1..=12).contains(&month)
        && day >= 1
        && day <= days_in_month(year, month);
    valid.then(|| days_from_civil(year, month, day))
}

/// The day number containing a Unix timestamp in seconds (UTC).
pub fn day_from_unix_seconds(seconds: i64) -> i64 {
    seconds.div_euclid(86_400)
}

/// `YYYY-MM-DD` of a day number, for details shown to reviewers.
pub fn format_day(day_number: i64) -> String {
    let (year, month, day) = civil_from_days(day_number);
    format!("{year:04}-{month:02}-{day:02}")
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Month names (lowercase) and their numbers. Three-letter English abbreviations are matched
/// separately by [`month_from_word`].
const MONTH_NAMES: &[(&str, u32)] = &[
    ("january", 1),
    ("february", 2),
    ("march", 3),
    ("april", 4),
    ("may", 5),
    ("june", 6),
    ("july", 7),
    ("august", 8),
    ("september", 9),
    ("sept", 9),
    ("october", 10),
    ("november", 11),
    ("december", 12),
    ("januar", 1),
    ("februar", 2),
    ("märz", 3),
    ("maerz", 3),
    ("juni", 6),
    ("juli", 7),
    ("oktober", 10),
    ("dezember", 12),
    ("janvier", 1),
    ("février", 2),
    ("fevrier", 2),
    ("mars", 3),
    ("avril", 4),
    ("mai", 5),
    ("juin", 6),
    ("juillet", 7),
    ("août", 8),
    ("aout", 8),
    ("septembre", 9),
    ("octobre", 10),
    ("novembre", 11),
    ("décembre", 12),
    ("decembre", 12),
    ("gennaio", 1),
    ("febbraio", 2),
    ("marzo", 3),
    ("aprile", 4),
    ("maggio", 5),
    ("giugno", 6),
    ("luglio", 7),
    ("agosto", 8),
    ("settembre", 9),
    ("ottobre", 10),
    ("dicembre", 12),
    ("enero", 1),
    ("febrero", 2),
    ("abril", 4),
    ("mayo", 5),
    ("junio", 6),
    ("julio", 7),
    ("septiembre", 9),
    ("octubre", 10),
    ("noviembre", 11),
    ("diciembre", 12),
    ("januari", 1),
    ("februari", 2),
    ("maart", 3),
    ("mei", 5),
    ("augustus", 8),
];

const MONTH_ABBREVIATIONS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];

/// The month a word names (any case), if it is one.
pub fn month_from_word(word: &str) -> Option<u32> {
    if word.len() > 12 {
        return None;
    }
    let lower = word.to_lowercase();
    if let Some(&(_, month)) = MONTH_NAMES.iter().find(|(name, _)| *name == lower) {
        return Some(month);
    }
    let index = MONTH_ABBREVIATIONS.iter().position(|abbr| *abbr == lower)?;
    u32::try_from(index + 1).ok()
}

/// All dates in `text`, in order of appearance, at most [`DATES_MAX`].
pub fn find_dates(text: &str, order: DateOrder) -> Vec<FoundDate> {
    let mut found = Vec::new();
    let mut resume_at = 0;
    for (start, ch) in text.char_indices() {
        if found.len() >= DATES_MAX {
            break;
        }
        if start < resume_at || !starts_token(text, start) {
            continue;
        }
        let date = if ch.is_ascii_digit() {
            numeric_date(text, start, order).or_else(|| day_month_name_date(text, start))
        } else if ch.is_alphabetic() {
            month_name_first_date(text, start)
        } else {
            None
        };
        if let Some(date) = date {
            resume_at = date.end;
            found.push(date);
        }
    }
    found
}

/// True when `start` begins a word: the previous character is not a letter or digit.
fn starts_token(text: &str, start: usize) -> bool {
    text[..start]
        .chars()
        .next_back()
        .is_none_or(|previous| !previous.is_alphanumeric())
}

/// A cursor over the bytes of a text; only ever stops on character boundaries because it
/// steps over ASCII bytes or whole words.
struct Cursor<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    /// Consumes 1..=`max` ASCII digits and returns their value and count.
    fn digits(&mut self, max: usize) -> Option<(u32, usize)> {
        let mut value: u32 = 0;
        let mut count = 0;
        while count < max {
            let Some(byte) = self.peek().filter(u8::is_ascii_digit) else {
                break;
            };
            value = value * 10 + u32::from(byte - b'0');
            count += 1;
            self.at += 1;
        }
        (count > 0).then_some((value, count))
    }

    fn eat(&mut self, byte: u8) -> bool {
        let matched = self.peek() == Some(byte);
        if matched {
            self.at += 1;
        }
        matched
    }

    /// Consumes up to three spaces or tabs; true when at least one was there.
    fn spaces(&mut self) -> bool {
        let before = self.at;
        while self.at - before < 3 && matches!(self.peek(), Some(b' ' | b'\t')) {
            self.at += 1;
        }
        self.at > before
    }

    /// Consumes a word of letters and returns it.
    fn word(&mut self) -> &'a str {
        let rest = &self.text[self.at..];
        let length = rest
            .char_indices()
            .find(|(_, ch)| !ch.is_alphabetic())
            .map_or(rest.len(), |(index, _)| index);
        self.at += length;
        &rest[..length]
    }

    /// True when the next character does not continue a word or number.
    fn at_token_end(&self) -> bool {
        self.text[self.at..]
            .chars()
            .next()
            .is_none_or(|next| !next.is_alphanumeric())
    }

    /// Consumes an English ordinal suffix (`st`, `nd`, `rd`, `th`) if one follows.
    fn ordinal_suffix(&mut self) {
        let rest = self.text.as_bytes().get(self.at..self.at + 2);
        if let Some(suffix) = rest
            && matches!(
                suffix.to_ascii_lowercase().as_slice(),
                b"st" | b"nd" | b"rd" | b"th"
            )
        {
            self.at += 2;
        }
    }

    /// Consumes a four-digit year ending the token.
    fn year(&mut self) -> Option<i64> {
        let (year, count) = self.digits(4)?;
        (count == 4 && self.at_token_end()).then_some(i64::from(year))
    }
}

/// `2025-03-14`, `14/03/2025`, `14.03.2025`, `14-03-2025`.
fn numeric_date(text: &str, start: usize, order: DateOrder) -> Option<FoundDate> {
    let mut cursor = Cursor { text, at: start };
    let (first, first_len) = cursor.digits(4)?;
    let separator = cursor.peek().filter(|b| matches!(b, b'-' | b'/' | b'.'))?;
    cursor.at += 1;
    let (second, _) = cursor.digits(2)?;
    if !cursor.eat(separator) {
        return None;
    }
    let day = if first_len == 4 {
        let (third, _) = cursor.digits(2)?;
        if !cursor.at_token_end() {
            return None;
        }
        checked_day(i64::from(first), second, third)?
    } else if first_len <= 2 {
        let year = cursor.year()?;
        let month_first = separator != b'.' && order == DateOrder::MonthFirst;
        let (month, day) = if month_first {
            (first, second)
        } else {
            (second, first)
        };
        checked_day(year, month, day)?
    } else {
        return None;
    };
    Some(FoundDate {
        day,
        start,
        end: cursor.at,
    })
}

/// `14 March 2025`, `14th Mar, 2025`, `14. März 2025`.
fn day_month_name_date(text: &str, start: usize) -> Option<FoundDate> {
    let mut cursor = Cursor { text, at: start };
    let (day, _) = cursor.digits(2)?;
    cursor.ordinal_suffix();
    cursor.eat(b'.');
    if !cursor.spaces() {
        return None;
    }
    let month = month_from_word(cursor.word())?;
    cursor.eat(b'.');
    cursor.eat(b',');
    if !cursor.spaces() {
        return None;
    }
    let year = cursor.year()?;
    let day = checked_day(year, month, day)?;
    Some(FoundDate {
        day,
        start,
        end: cursor.at,
    })
}

/// `March 14, 2025`, `Mar. 14 2025`.
fn month_name_first_date(text: &str, start: usize) -> Option<FoundDate> {
    let mut cursor = Cursor { text, at: start };
    let month = month_from_word(cursor.word())?;
    cursor.eat(b'.');
    if !cursor.spaces() {
        return None;
    }
    let (day, _) = cursor.digits(2)?;
    cursor.ordinal_suffix();
    cursor.eat(b',');
    if !cursor.spaces() {
        return None;
    }
    let year = cursor.year()?;
    let day = checked_day(year, month, day)?;
    Some(FoundDate {
        day,
        start,
        end: cursor.at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str, order: DateOrder) -> Option<(i64, u32, u32)> {
        let found = find_dates(text, order);
        found.first().map(|date| civil_from_days(date.day))
    }

    #[test]
    fn civil_round_trip() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        for day in (-800_000..800_000).step_by(997) {
            let (y, m, d) = civil_from_days(day);
            assert_eq!(days_from_civil(y, m, d), day);
        }
    }

    #[test]
    fn checked_day_rejects_impossible_dates() {
        assert!(checked_day(2024, 2, 29).is_some());
        assert!(checked_day(2025, 2, 29).is_none());
        assert!(checked_day(2025, 4, 31).is_none());
        assert!(checked_day(2025, 13, 1).is_none());
        assert!(checked_day(1800, 1, 1).is_none());
    }

    #[test]
    fn each_format_parses() {
        let march_14 = Some((2025, 3, 14));
        assert_eq!(one("Date: 2025-03-14", DateOrder::DayFirst), march_14);
        assert_eq!(one("on 14/03/2025.", DateOrder::DayFirst), march_14);
        assert_eq!(one("on 03/14/2025.", DateOrder::MonthFirst), march_14);
        assert_eq!(one("14-03-2025", DateOrder::DayFirst), march_14);
        assert_eq!(one("am 14.03.2025", DateOrder::MonthFirst), march_14);
        assert_eq!(one("March 14, 2025", DateOrder::DayFirst), march_14);
        assert_eq!(one("Mar. 14 2025", DateOrder::DayFirst), march_14);
        assert_eq!(one("14 March 2025", DateOrder::MonthFirst), march_14);
        assert_eq!(one("14 Mar 2025", DateOrder::DayFirst), march_14);
        assert_eq!(one("14th March, 2025", DateOrder::DayFirst), march_14);
        assert_eq!(one("14. März 2025", DateOrder::DayFirst), march_14);
        assert_eq!(one("le 14 mars 2025", DateOrder::DayFirst), march_14);
    }

    #[test]
    fn non_dates_are_ignored() {
        assert_eq!(one("31/02/2025", DateOrder::DayFirst), None);
        assert_eq!(one("14/03/20251", DateOrder::DayFirst), None);
        assert_eq!(one("A14/03/2025", DateOrder::DayFirst), None);
        assert_eq!(one("HRB 123456", DateOrder::DayFirst), None);
        assert_eq!(one("Mayor 14 2025", DateOrder::DayFirst), None);
        assert_eq!(one("", DateOrder::DayFirst), None);
    }

    #[test]
    fn offsets_cover_the_date() {
        let text = "Issued: 14 März 2025 in Köln";
        let found = find_dates(text, DateOrder::DayFirst);
        assert_eq!(found.len(), 1);
        assert_eq!(&text[found[0].start..found[0].end], "14 März 2025");
    }

    #[test]
    fn the_count_is_bounded() {
        let text = "2025-01-01 ".repeat(DATES_MAX * 2);
        assert_eq!(find_dates(&text, DateOrder::DayFirst).len(), DATES_MAX);
    }
}
