//! Text extraction from uploaded documents: the format is sniffed from the bytes, PDFs are read
//! through their text layer in pure Rust, plain text is taken as is, and images go through
//! Tesseract OCR when it is installed.
//!
//! Architecture invariant: nothing here panics on input. lopdf is a parser of hostile input, so
//! every call into it runs under `catch_unwind`; a malformed PDF becomes
//! [`Extraction::Unreadable`] with the reason, never a dead worker.
//!
//! ```
//! use mercato_engine::verification::extract::{extract, sniff, ExtractConfig, Extraction};
//! let bytes = b"Certificate of Incorporation\nCompany number: 01234567\n";
//! let format = sniff(bytes).expect("plain text");
//! let Extraction::Text { text, .. } = extract(format, bytes, &ExtractConfig::default()) else {
//!     panic!("text is always readable");
//! };
//! assert!(text.contains("01234567"));
//! ```

use std::io::{Read, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// How many leading bytes are examined to decide whether a document is plain text.
pub const SNIFF_TEXT_BYTES_MAX: usize = 64 * 1024;
/// The most characters of text any extraction returns, whatever the config says.
pub const TEXT_CHARS_MAX: usize = 4_000_000;
/// The most PDF pages any extraction reads, whatever the config says.
pub const PDF_PAGES_MAX: usize = 1_000;
/// Upper bound of [`ExtractConfig::pdf_inflated_bytes_max`].
pub const PDF_INFLATED_BYTES_LIMIT: usize = 1 << 30;
/// The most decompressed content bytes read from one PDF page.
pub const PDF_PAGE_CONTENT_BYTES_MAX: usize = 16 * 1024 * 1024;
/// The longest any OCR run may take, whatever the config says.
pub const OCR_TIMEOUT_MAX: Duration = Duration::from_secs(600);
/// Address space an OCR process gets besides the job's memory budget: the tesseract program,
/// its shared libraries and the language model (measured with tesseract 5 and the English
/// model: `tesseract --version` alone needs more than 64 MiB of address space, a one-page
/// sample scan runs within 96 MiB). The image's own buffers come out of the job's budget.
pub const OCR_ADDRESS_SPACE_BASE: u64 = 128 << 20;
/// The most bytes of OCR output read; the rest is discarded.
pub const OCR_OUTPUT_BYTES_MAX: usize = 4 * 1024 * 1024;
/// How often a running OCR process is polled for completion.
const OCR_POLL_INTERVAL: Duration = Duration::from_millis(10);
/// The most characters of a parser error quoted in an unreadable reason.
pub const REASON_CHARS_MAX: usize = 200;

/// A document format accepted for upload, detected from the bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DocFormat {
    /// `%PDF-`.
    Pdf,
    /// PNG signature.
    Png,
    /// JPEG SOI marker `FF D8 FF`.
    Jpeg,
    /// TIFF, either byte order.
    Tiff,
    /// UTF-8 without NUL bytes, mostly printable.
    Text,
}

impl DocFormat {
    /// The stable lowercase name: `pdf`, `png`, `jpeg`, `tiff`, `text`.
    pub fn as_str(self) -> &'static str {
        match self {
            DocFormat::Pdf => "pdf",
            DocFormat::Png => "png",
            DocFormat::Jpeg => "jpeg",
            DocFormat::Tiff => "tiff",
            DocFormat::Text => "text",
        }
    }

    /// The MIME type to serve the document with.
    pub fn mime(self) -> &'static str {
        match self {
            DocFormat::Pdf => "application/pdf",
            DocFormat::Png => "image/png",
            DocFormat::Jpeg => "image/jpeg",
            DocFormat::Tiff => "image/tiff",
            DocFormat::Text => "text/plain; charset=utf-8",
        }
    }

    /// Whether the format is an image, readable only by OCR.
    pub fn is_image(self) -> bool {
        matches!(self, DocFormat::Png | DocFormat::Jpeg | DocFormat::Tiff)
    }
}

/// The format of a document from its bytes alone, or `None` when it is not accepted.
pub fn sniff(bytes: &[u8]) -> Option<DocFormat> {
    const PNG: &[u8] = &[0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];
    if bytes.starts_with(b"%PDF-") {
        Some(DocFormat::Pdf)
    } else if bytes.starts_with(PNG) {
        Some(DocFormat::Png)
    } else if bytes.starts_with(&[0xff, 0xd8, 0xff]) {
        Some(DocFormat::Jpeg)
    } else if bytes.starts_with(b"II*\0") || bytes.starts_with(b"MM\0*") {
        Some(DocFormat::Tiff)
    } else if looks_like_text(bytes) {
        Some(DocFormat::Text)
    } else {
        None
    }
}

/// UTF-8 (a character cut off by the sniffing bound is fine), no NUL, and at least 98% of the
/// characters printable or ordinary whitespace.
fn looks_like_text(bytes: &[u8]) -> bool {
    let prefix = &bytes[..bytes.len().min(SNIFF_TEXT_BYTES_MAX)];
    let text = match std::str::from_utf8(prefix) {
        Ok(text) => text,
        // Only an incomplete character at the very end of a truncated prefix is allowed.
        Err(error) if error.error_len().is_none() && prefix.len() < bytes.len() => {
            match std::str::from_utf8(&prefix[..error.valid_up_to()]) {
                Ok(text) => text,
                Err(_) => return false,
            }
        }
        Err(_) => return false,
    };
    if text.trim().is_empty() || text.contains('\0') {
        return false;
    }
    let mut total = 0usize;
    let mut control = 0usize;
    for ch in text.chars() {
        total += 1;
        if ch.is_control() && !matches!(ch, '\n' | '\r' | '\t' | '\u{c}') {
            control += 1;
        }
    }
    control * 50 <= total
}

/// Whether images are OCRed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OcrMode {
    /// Never; images are unreadable.
    Off,
    /// Use the `tesseract` binary when it is on `PATH`.
    Auto,
}

/// Bounds and options for [`extract`]. Values above the `*_MAX` constants of this module are
/// clamped to them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtractConfig {
    /// The most characters of text returned; the rest is cut off.
    pub text_chars_max: usize,
    /// The most PDF pages read, from the first.
    pub pdf_pages_max: usize,
    /// Whether images are OCRed.
    pub ocr: OcrMode,
    /// How long one OCR run may take before it is killed.
    pub ocr_timeout: Duration,
    /// The job's memory budget: the most bytes a PDF's Flate streams may inflate to, summed
    /// (a PDF past it, a decompression bomb, is unreadable before the parser sees it), and the
    /// address space an OCR process gets on top of [`OCR_ADDRESS_SPACE_BASE`].
    pub pdf_inflated_bytes_max: usize,
}

impl Default for ExtractConfig {
    fn default() -> ExtractConfig {
        ExtractConfig {
            text_chars_max: 200_000,
            pdf_pages_max: 50,
            ocr: OcrMode::Auto,
            ocr_timeout: Duration::from_secs(30),
            pdf_inflated_bytes_max: 64 << 20,
        }
    }
}

/// How text was obtained.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExtractMethod {
    /// The PDF's text layer.
    PdfTextLayer,
    /// A plain-text upload.
    PlainText,
    /// Tesseract OCR of an image.
    Ocr,
}

/// The result of text extraction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Extraction {
    /// Machine-readable text.
    Text {
        /// At most the configured number of characters.
        text: String,
        /// Where it came from.
        method: ExtractMethod,
    },
    /// Not machine-readable; the reason is shown to reviewers, e.g. "scanned image; OCR
    /// (tesseract) is not installed", "PDF has no text layer", "PDF could not be parsed: ...".
    Unreadable {
        /// Why, in words for a reviewer.
        reason: String,
    },
}

fn unreadable(reason: impl Into<String>) -> Extraction {
    Extraction::Unreadable {
        reason: reason.into(),
    }
}

/// Extracts the text of a document of a sniffed format.
pub fn extract(format: DocFormat, bytes: &[u8], config: &ExtractConfig) -> Extraction {
    let text_chars_max = config.text_chars_max.min(TEXT_CHARS_MAX);
    match format {
        DocFormat::Pdf => {
            let budget = config.pdf_inflated_bytes_max.min(PDF_INFLATED_BYTES_LIMIT);
            if let Err(inflated) = check_inflated_size(bytes, budget) {
                return unreadable(format!(
                    "PDF streams inflate to more than {budget} bytes (at least {inflated}): past the memory budget"
                ));
            }
            pdf_text(
                bytes,
                config.pdf_pages_max.min(PDF_PAGES_MAX),
                text_chars_max,
            )
        }
        DocFormat::Text => {
            let text = truncate_chars(String::from_utf8_lossy(bytes).into_owned(), text_chars_max);
            Extraction::Text {
                text,
                method: ExtractMethod::PlainText,
            }
        }
        DocFormat::Png | DocFormat::Jpeg | DocFormat::Tiff => {
            if config.ocr == OcrMode::Off {
                unreadable("scanned image; OCR is turned off")
            } else if ocr_available() {
                ocr_text(
                    bytes,
                    config.ocr_timeout.min(OCR_TIMEOUT_MAX),
                    text_chars_max,
                    ocr_address_space_bytes(config),
                )
            } else {
                unreadable("scanned image; OCR (tesseract) is not installed")
            }
        }
    }
}

/// `text` cut to at most `chars_max` characters.
fn truncate_chars(mut text: String, chars_max: usize) -> String {
    if let Some((index, _)) = text.char_indices().nth(chars_max) {
        text.truncate(index);
    }
    text
}

/// Sums what every zlib (Flate) stream of a PDF inflates to, stopping as soon as the sum passes
/// `budget` (`Err` with the bytes seen so far). Streams are found by their `stream` and
/// `endstream` keywords; data that is not zlib is skipped (other filters are bounded by the
/// parser's own per-page limit). Memory stays at one fixed buffer whatever the input.
fn check_inflated_size(bytes: &[u8], budget: usize) -> Result<usize, usize> {
    const KEYWORD: &[u8] = b"stream";
    let mut total = 0usize;
    let mut buffer = [0u8; 16 * 1024];
    let mut at = 0usize;
    while let Some(found) = find(&bytes[at..], KEYWORD) {
        let start = at + found + KEYWORD.len();
        at = start;
        // `endstream` contains `stream`: only a keyword followed by an end of line opens data.
        let data_start = match bytes.get(start..start + 2) {
            Some([b'\r', b'\n']) => start + 2,
            Some([b'\n', _]) | Some([b'\n']) => start + 1,
            _ => continue,
        };
        let end = find(&bytes[data_start..], b"endstream").map_or(bytes.len(), |e| data_start + e);
        let mut decoder = flate2::read::ZlibDecoder::new(&bytes[data_start..end]);
        loop {
            match decoder.read(&mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    total += n;
                    if total > budget {
                        return Err(total);
                    }
                }
            }
        }
        at = end;
    }
    Ok(total)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// The text layer of the first `pages_max` pages. Pages whose text cannot be decoded are
/// skipped; the document is unreadable only when no page yields text.
fn pdf_text(bytes: &[u8], pages_max: usize, text_chars_max: usize) -> Extraction {
    let parsed = catch_unwind(AssertUnwindSafe(|| {
        pdf_text_unguarded(bytes, pages_max, text_chars_max)
    }));
    match parsed {
        Ok(Ok(text)) if !text.trim().is_empty() => Extraction::Text {
            text: truncate_chars(text, text_chars_max),
            method: ExtractMethod::PdfTextLayer,
        },
        // Rasterising a PDF for OCR would need a renderer we do not ship.
        Ok(Ok(_)) => unreadable("PDF has no text layer"),
        Ok(Err(error)) => unreadable(format!(
            "PDF could not be parsed: {}",
            truncate_chars(error, REASON_CHARS_MAX)
        )),
        Err(_) => unreadable("PDF could not be parsed: the parser failed on malformed input"),
    }
}

/// Runs lopdf; may panic on malformed input, so only [`pdf_text`] calls it.
fn pdf_text_unguarded(
    bytes: &[u8],
    pages_max: usize,
    text_chars_max: usize,
) -> Result<String, String> {
    let document = lopdf::Document::load_mem(bytes).map_err(|error| error.to_string())?;
    let mut text = String::new();
    let mut first_error = None;
    for &page_number in document.get_pages().keys().take(pages_max) {
        for chunk in
            document.extract_text_chunks_with_limit(&[page_number], PDF_PAGE_CONTENT_BYTES_MAX)
        {
            match chunk {
                Ok(chunk) => text.push_str(&chunk),
                Err(error) => {
                    first_error.get_or_insert_with(|| error.to_string());
                }
            }
        }
        // Bytes bound characters from above, so this stops reading once enough is in hand.
        if text.len() > text_chars_max.saturating_mul(4) {
            break;
        }
    }
    match first_error {
        Some(error) if text.trim().is_empty() => Err(error),
        _ => Ok(text),
    }
}

/// Whether the `tesseract` binary runs (`tesseract --version`); checked once per process.
pub fn ocr_available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        Command::new("tesseract")
            .arg("--version")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    })
}

/// The address space an OCR process may use: the job's memory budget
/// ([`ExtractConfig::pdf_inflated_bytes_max`], the same value that bounds a PDF) for the image
/// and its working buffers, on top of [`OCR_ADDRESS_SPACE_BASE`] for the program itself.
pub fn ocr_address_space_bytes(config: &ExtractConfig) -> u64 {
    OCR_ADDRESS_SPACE_BASE
        .saturating_add(config.pdf_inflated_bytes_max.min(PDF_INFLATED_BYTES_LIMIT) as u64)
}

/// The OCR command: `tesseract stdin stdout` under an address-space limit
/// (`RLIMIT_AS` set by the shell's `ulimit -v`, in KiB, before it `exec`s tesseract, so the
/// limit holds for tesseract itself and nothing else), single-threaded. An allocation past the
/// limit fails inside tesseract, which exits with an error: the document is unreadable and goes
/// to review, and the server's memory is untouched.
pub fn ocr_command(address_space_bytes: u64) -> Command {
    let mut command = Command::new("sh");
    command
        .args([
            "-c",
            "ulimit -v \"$1\" && exec tesseract stdin stdout",
            "mercato-ocr",
        ])
        .arg((address_space_bytes / 1024).max(1).to_string())
        .env("OMP_THREAD_LIMIT", "1");
    command
}

/// OCRs an image with `tesseract stdin stdout`, single-threaded, within `address_space_bytes`,
/// killed after `timeout`.
fn ocr_text(
    bytes: &[u8],
    timeout: Duration,
    text_chars_max: usize,
    address_space_bytes: u64,
) -> Extraction {
    let spawned = ocr_command(address_space_bytes)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(error) => return unreadable(format!("OCR (tesseract) could not be started: {error}")),
    };
    match run_to_completion(&mut child, bytes, timeout) {
        Ok(output) => {
            let text = truncate_chars(
                String::from_utf8_lossy(&output).into_owned(),
                text_chars_max,
            );
            if text.trim().is_empty() {
                unreadable("OCR found no text in the image")
            } else {
                Extraction::Text {
                    text,
                    method: ExtractMethod::Ocr,
                }
            }
        }
        Err(reason) => unreadable(reason),
    }
}

/// Feeds `input` to the child and collects its stdout on helper threads (so neither pipe can
/// fill up and block it), polling for exit until `timeout`, then killing it.
fn run_to_completion(
    child: &mut Child,
    input: &[u8],
    timeout: Duration,
) -> Result<Vec<u8>, String> {
    let (Some(mut stdin), Some(mut stdout)) = (child.stdin.take(), child.stdout.take()) else {
        let _ = child.kill();
        let _ = child.wait();
        return Err("OCR (tesseract) pipes could not be opened".to_string());
    };
    let started = Instant::now();
    let status = std::thread::scope(|scope| {
        // A write error means tesseract exited or was killed; its exit status tells the story.
        scope.spawn(move || {
            let _ = stdin.write_all(input);
        });
        let reader = scope.spawn(move || read_bounded(&mut stdout, OCR_OUTPUT_BYTES_MAX));
        let status = wait_with_deadline(child, started + timeout);
        let output = reader.join().unwrap_or_default();
        status.map(|status| (status, output))
    });
    match status {
        Ok((status, output)) if status.success() => Ok(output),
        Ok((status, _)) => Err(format!("OCR (tesseract) failed: {status}")),
        Err(reason) => Err(reason),
    }
}

fn wait_with_deadline(
    child: &mut Child,
    deadline: Instant,
) -> Result<std::process::ExitStatus, String> {
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ok(status),
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err("OCR (tesseract) timed out".to_string());
            }
            Ok(None) => std::thread::sleep(OCR_POLL_INTERVAL),
            Err(error) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("OCR (tesseract) could not be waited for: {error}"));
            }
        }
    }
}

/// Reads to end of stream, keeping the first `bytes_max` bytes and discarding the rest.
fn read_bounded(source: &mut impl Read, bytes_max: usize) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut buffer = [0u8; 8192];
    loop {
        match source.read(&mut buffer) {
            Ok(0) | Err(_) => return kept,
            Ok(read) => {
                let room = bytes_max.saturating_sub(kept.len());
                kept.extend_from_slice(&buffer[..read.min(room)]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verification::rules::DocumentType;
    use crate::verification::samples::{pdf, pdf_of_lines, png_scan, sample_spec};

    fn config() -> ExtractConfig {
        ExtractConfig::default()
    }

    #[test]
    fn each_magic_number_is_sniffed() {
        assert_eq!(sniff(b"%PDF-1.7\n..."), Some(DocFormat::Pdf));
        assert_eq!(
            sniff(&[0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0]),
            Some(DocFormat::Png)
        );
        assert_eq!(
            sniff(&[0xff, 0xd8, 0xff, 0xe0, 0, 0x10]),
            Some(DocFormat::Jpeg)
        );
        assert_eq!(sniff(b"II*\0\x08\0\0\0"), Some(DocFormat::Tiff));
        assert_eq!(sniff(b"MM\0*\0\0\0\x08"), Some(DocFormat::Tiff));
        assert_eq!(
            sniff("Handelsregister München\r\n\tHRB 1234".as_bytes()),
            Some(DocFormat::Text)
        );
    }

    #[test]
    fn other_bytes_are_not_accepted() {
        assert_eq!(sniff(b""), None);
        assert_eq!(sniff(b"   \n"), None);
        assert_eq!(sniff(b"PK\x03\x04zip archive"), None);
        assert_eq!(sniff(b"text with a \0 byte"), None);
        assert_eq!(sniff(&[0xc3, 0x28, b'a', b'b']), None);
        assert_eq!(sniff(&[0x01, 0x02, 0x03, 0x04, b'a']), None);
        assert_eq!(sniff(b"%PD"), Some(DocFormat::Text));
    }

    #[test]
    fn a_character_cut_by_the_sniffing_bound_is_still_text() {
        let mut bytes = vec![b'a'; SNIFF_TEXT_BYTES_MAX - 1];
        bytes.extend_from_slice("ü and more".as_bytes());
        assert_eq!(sniff(&bytes), Some(DocFormat::Text));
    }

    #[test]
    fn format_names() {
        assert_eq!(DocFormat::Tiff.as_str(), "tiff");
        assert_eq!(DocFormat::Jpeg.mime(), "image/jpeg");
        assert!(DocFormat::Png.is_image() && !DocFormat::Text.is_image());
    }

    #[test]
    fn a_generated_pdf_extracts_its_text() {
        let spec = sample_spec(
            2,
            DocumentType::BusinessRegistration,
            "Nordlicht Handels GmbH",
            *b"DE",
            20_000,
        );
        match extract(DocFormat::Pdf, &pdf(&spec), &config()) {
            Extraction::Text { text, method } => {
                assert_eq!(method, ExtractMethod::PdfTextLayer);
                assert!(text.contains("Firma: Nordlicht Handels GmbH"), "{text}");
                assert!(text.contains(&spec.registration_number), "{text}");
                assert!(text.contains("Handelsregister"), "{text}");
            }
            other => panic!("{other:?}"),
        }
    }

    fn assert_unreadable(bytes: &[u8], reason_part: &str) {
        match extract(DocFormat::Pdf, bytes, &config()) {
            Extraction::Unreadable { reason } => assert!(reason.contains(reason_part), "{reason}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn garbage_after_the_pdf_header_is_unreadable() {
        assert_unreadable(b"%PDF-", "could not be parsed");
        assert_unreadable(
            b"%PDF-1.4\n\xff\xfe garbage 1 0 obj << /Type /Catalog >> trailer <<>>",
            "could not be parsed",
        );
        let mut noise = b"%PDF-1.7\n".to_vec();
        let mut state = 7u32;
        for _ in 0..4096 {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            noise.push((state >> 16) as u8);
        }
        assert_unreadable(&noise, "could not be parsed");
    }

    #[test]
    fn truncated_pdfs_are_unreadable_or_partial_never_a_panic() {
        let spec = sample_spec(
            5,
            DocumentType::TaxCertificate,
            "Acme Trading Ltd",
            *b"GB",
            20_000,
        );
        let bytes = pdf(&spec);
        for cut in [
            10,
            bytes.len() / 4,
            bytes.len() / 2,
            bytes.len() - 40,
            bytes.len() - 1,
        ] {
            match extract(DocFormat::Pdf, &bytes[..cut], &config()) {
                Extraction::Text { method, .. } => assert_eq!(method, ExtractMethod::PdfTextLayer),
                Extraction::Unreadable { reason } => assert!(reason.starts_with("PDF"), "{reason}"),
            }
        }
        assert_unreadable(&bytes[..bytes.len() / 4], "PDF");
    }

    #[test]
    fn a_pdf_without_text_is_unreadable() {
        // A page whose only text operators show nothing.
        let bytes = pdf_of_lines(&["", " "]);
        assert_unreadable(&bytes, "no text layer");
    }

    #[test]
    fn text_is_truncated_to_the_bound() {
        let limited = ExtractConfig {
            text_chars_max: 5,
            ..config()
        };
        let bytes = "äöüßéèêë".as_bytes();
        assert_eq!(
            extract(DocFormat::Text, bytes, &limited),
            Extraction::Text {
                text: "äöüßé".into(),
                method: ExtractMethod::PlainText
            }
        );
        let spec = sample_spec(
            2,
            DocumentType::BankLetter,
            "Acme Trading Ltd",
            *b"GB",
            20_000,
        );
        match extract(DocFormat::Pdf, &pdf(&spec), &limited) {
            Extraction::Text { text, .. } => assert_eq!(text.chars().count(), 5),
            other => panic!("{other:?}"),
        }
        let huge = ExtractConfig {
            text_chars_max: usize::MAX,
            ..config()
        };
        let long = "x".repeat(TEXT_CHARS_MAX + 10);
        match extract(DocFormat::Text, long.as_bytes(), &huge) {
            Extraction::Text { text, .. } => assert_eq!(text.len(), TEXT_CHARS_MAX),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn images_without_ocr_are_unreadable_with_the_reason() {
        let png = png_scan(64, 32, 1);
        let off = ExtractConfig {
            ocr: OcrMode::Off,
            ..config()
        };
        assert_eq!(
            extract(DocFormat::Png, &png, &off),
            Extraction::Unreadable {
                reason: "scanned image; OCR is turned off".into()
            }
        );
        let reason = "scanned image; OCR (tesseract) is not installed".to_string();
        let auto = extract(DocFormat::Png, &png, &config());
        if ocr_available() {
            // A scan of bars without letters: tesseract finds nothing, or some noise.
            assert!(matches!(
                auto,
                Extraction::Unreadable { .. }
                    | Extraction::Text {
                        method: ExtractMethod::Ocr,
                        ..
                    }
            ));
        } else {
            assert_eq!(auto, Extraction::Unreadable { reason });
        }
    }

    #[test]
    fn bounded_reads_keep_the_prefix() {
        let mut source: &[u8] = &[7u8; 20_000];
        let kept = read_bounded(&mut source, 100);
        assert_eq!(kept, vec![7u8; 100]);
    }

    /// Deep nesting must hit lopdf's depth limit, not overflow the stack (which no
    /// `catch_unwind` could survive).
    #[test]
    fn deeply_nested_pdf_objects_are_unreadable() {
        let mut bytes = b"%PDF-1.4\n1 0 obj\n".to_vec();
        bytes.extend(std::iter::repeat_n(b'[', 200_000));
        bytes.extend(std::iter::repeat_n(b'<', 200_000));
        bytes.extend_from_slice(b"\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n");
        assert_unreadable(&bytes, "PDF");
    }

    /// Generated PDFs with bytes overwritten at pseudo-random places: each is text or
    /// unreadable, and no panic escapes.
    #[test]
    fn corrupted_pdfs_never_panic() {
        let spec = sample_spec(
            11,
            DocumentType::BusinessRegistration,
            "Acme Trading Ltd",
            *b"GB",
            20_000,
        );
        let original = pdf(&spec);
        let mut state = 0x9e37_79b9_u64;
        for _ in 0..200 {
            let mut bytes = original.clone();
            for _ in 0..8 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let at = 5 + (state as usize) % (bytes.len() - 5);
                bytes[at] = (state >> 32) as u8;
            }
            match extract(DocFormat::Pdf, &bytes, &config()) {
                Extraction::Text { method, .. } => assert_eq!(method, ExtractMethod::PdfTextLayer),
                Extraction::Unreadable { reason } => assert!(reason.starts_with("PDF"), "{reason}"),
            }
        }
    }
}

#[cfg(test)]
mod budget_tests {
    use super::*;

    fn zlib(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(bytes).expect("writing to a Vec");
        encoder.finish().expect("finishing a Vec")
    }

    #[test]
    fn a_pdf_that_inflates_past_the_budget_is_unreadable_before_parsing() {
        let bomb = zlib(&vec![b' '; 80 << 20]);
        assert!(bomb.len() < 1 << 20, "80 MiB of spaces compress well");
        let mut pdf = format!(
            "%PDF-1.4\n1 0 obj\n<< /Length {} /Filter /FlateDecode >>\nstream\n",
            bomb.len()
        )
        .into_bytes();
        pdf.extend_from_slice(&bomb);
        pdf.extend_from_slice(b"\nendstream\nendobj\ntrailer\n<< >>\n%%EOF\n");
        let config = ExtractConfig::default();
        match extract(DocFormat::Pdf, &pdf, &config) {
            Extraction::Unreadable { reason } => {
                assert!(reason.contains("memory budget"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        // Under a larger budget the same file reaches the parser (and fails there instead).
        let roomy = ExtractConfig {
            pdf_inflated_bytes_max: 128 << 20,
            ..ExtractConfig::default()
        };
        match extract(DocFormat::Pdf, &pdf, &roomy) {
            Extraction::Unreadable { reason } => assert!(!reason.contains("memory budget")),
            Extraction::Text { .. } => {}
        }
    }

    #[test]
    fn ordinary_pdfs_are_well_inside_the_budget() {
        let pdf = crate::verification::samples::pdf_of_lines(&["Certificate", "Acme Tools GmbH"]);
        assert!(check_inflated_size(&pdf, 1 << 20).is_ok());
    }
}

#[cfg(test)]
mod ocr_tests {
    use super::*;
    use crate::verification::samples::png_text_scan;

    #[test]
    fn ocr_runs_under_an_address_space_limit_from_the_job_memory_budget() {
        let config = ExtractConfig {
            pdf_inflated_bytes_max: 64 << 20,
            ..ExtractConfig::default()
        };
        let limit = ocr_address_space_bytes(&config);
        assert_eq!(limit, OCR_ADDRESS_SPACE_BASE + (64 << 20));
        let command = ocr_command(limit);
        assert_eq!(command.get_program(), "sh");
        let args: Vec<String> = command
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            args,
            vec![
                "-c".to_string(),
                "ulimit -v \"$1\" && exec tesseract stdin stdout".to_string(),
                "mercato-ocr".to_string(),
                (limit / 1024).to_string(),
            ]
        );
        assert!(
            command
                .get_envs()
                .any(|(k, v)| k == "OMP_THREAD_LIMIT" && v == Some("1".as_ref()))
        );
        // A larger budget raises the limit; the bound on the budget caps it.
        let huge = ExtractConfig {
            pdf_inflated_bytes_max: usize::MAX,
            ..ExtractConfig::default()
        };
        assert_eq!(
            ocr_address_space_bytes(&huge),
            OCR_ADDRESS_SPACE_BASE + PDF_INFLATED_BYTES_LIMIT as u64
        );
    }

    /// With tesseract installed: the limit is really applied (a scan is read under the default
    /// budget, and tesseract cannot even start within 16 MiB). Without it there is nothing to
    /// run.
    #[test]
    fn the_address_space_limit_is_enforced_when_tesseract_is_installed() {
        if !ocr_available() {
            return;
        }
        let scan = png_text_scan(&["COMPANY NUMBER: 04512873"]);
        let timeout = Duration::from_secs(60);
        let roomy = ocr_address_space_bytes(&ExtractConfig::default());
        match ocr_text(&scan, timeout, 10_000, roomy) {
            Extraction::Text { text, .. } => assert!(text.contains("04512873"), "{text}"),
            other => panic!("OCR under the default limit: {other:?}"),
        }
        match ocr_text(&scan, timeout, 10_000, 16 << 20) {
            Extraction::Unreadable { reason } => {
                assert!(reason.contains("OCR (tesseract) failed"), "{reason}")
            }
            other => panic!("OCR within 16 MiB: {other:?}"),
        }
    }

    /// Both outcomes are checked: with `tesseract` installed (`scripts/install-ocr.sh`) the scan
    /// is read, without it the scan is unreadable for that stated reason.
    #[test]
    fn a_scan_is_read_by_ocr_when_tesseract_is_installed_and_sent_to_review_otherwise() {
        let scan = png_text_scan(&[
            "CERTIFICATE OF INCORPORATION",
            "COMPANY NUMBER: 04512873",
            "ACME TOOLS LIMITED",
        ]);
        assert_eq!(sniff(&scan), Some(DocFormat::Png));
        match extract(DocFormat::Png, &scan, &ExtractConfig::default()) {
            Extraction::Text { text, method } => {
                assert!(ocr_available());
                assert_eq!(method, ExtractMethod::Ocr);
                let upper = text.to_uppercase();
                assert!(upper.contains("CERTIFICATE"), "{text}");
                assert!(upper.contains("04512873"), "{text}");
            }
            Extraction::Unreadable { reason } => {
                assert!(
                    !ocr_available(),
                    "tesseract is installed but failed: {reason}"
                );
                assert!(reason.contains("not installed"), "{reason}");
            }
        }
        // Turned off, a scan is never read.
        let off = ExtractConfig {
            ocr: OcrMode::Off,
            ..ExtractConfig::default()
        };
        assert!(matches!(
            extract(DocFormat::Png, &scan, &off),
            Extraction::Unreadable { .. }
        ));
    }

    /// A whole sample document as a scan: with OCR it is read, assessed and approved like its
    /// PDF; without, it is unreadable.
    #[test]
    fn a_scanned_sample_document_is_approved_through_ocr_when_tesseract_is_installed() {
        use crate::verification::rules::{self, Decision, DocumentType, VendorProfile};
        use crate::verification::samples;
        let today = 20_400;
        let spec = samples::sample_spec(
            3,
            DocumentType::TaxCertificate,
            "Acme Tools GmbH",
            *b"DE",
            today,
        );
        let scan = samples::scan(&spec);
        match extract(DocFormat::Png, &scan, &ExtractConfig::default()) {
            Extraction::Text { text, .. } => {
                let vendor = VendorProfile {
                    name: "Acme Tools GmbH".into(),
                    country: *b"DE",
                };
                let assessment =
                    rules::assess(DocumentType::TaxCertificate, &text, &vendor, today, &|_| {
                        None
                    });
                let decision = rules::decide(&assessment, &rules::Policy::default());
                assert_eq!(decision, Decision::Approve, "{text}\n{assessment:#?}");
            }
            Extraction::Unreadable { reason } => {
                assert!(!ocr_available(), "{reason}");
            }
        }
    }
}
