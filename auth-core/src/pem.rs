//! PEM blocks: the label and the DER under it, decoded by `pem-rfc7468` (RFC 7468's strict grammar, constant-time
//! base64). Only decoding; what a label means is the caller's business.
//!
//! No error here carries a label or any other part of the text: a `BEGIN` line that lost its trailing dashes
//! runs straight into the base64 of a private key, so whatever follows `-----BEGIN ` may be the key itself.

use std::fmt;

use zeroize::Zeroizing;

const BEGIN: &[u8] = b"-----BEGIN ";
const END: &[u8] = b"-----END ";
const DASHES: &[u8] = b"-----";

/// One `-----BEGIN label----- ... -----END label-----` block, decoded.
pub(crate) struct PemBlock {
    /// The label, as validated by RFC 7468's grammar (printable, no dashes, single spaces).
    pub(crate) label: String,
    /// The decoded body, wiped on drop.
    pub(crate) der: Zeroizing<Vec<u8>>,
}

/// What is wrong with a PEM text. Blocks are numbered from 1 in the order they appear; nothing of the text itself
/// is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PemError {
    /// No line starts with `-----BEGIN `.
    NoBlock,
    /// A `BEGIN` line that is not `-----BEGIN LABEL-----`: trailing dashes lost, or a label that is not uppercase
    /// words separated by single spaces.
    BeginLine { block: usize },
    /// A `BEGIN` line with no `-----END ` line after it.
    Unterminated { block: usize },
    /// An `END` line that is malformed or names another label than its `BEGIN` line.
    EndLine { block: usize },
    /// `Name: value` lines before the base64 (RFC 1421 headers, which only legacy OpenSSL encryption writes).
    Headers { block: usize },
    /// The text between the `BEGIN` and `END` lines is not base64 in lines of one width.
    Base64 { block: usize },
}

impl fmt::Display for PemError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::NoBlock => f.write_str("no line starts with `-----BEGIN `"),
            Self::BeginLine { block } => write!(
                f,
                "PEM block {block}: its `-----BEGIN` line is malformed (it must read `-----BEGIN LABEL-----` on a \
                 line of its own, ending with five dashes)"
            ),
            Self::Unterminated { block } => {
                write!(f, "PEM block {block}: no `-----END` line follows its `-----BEGIN` line")
            }
            Self::EndLine { block } => write!(
                f,
                "PEM block {block}: its `-----END` line is malformed or does not name the label of its `-----BEGIN` \
                 line"
            ),
            Self::Headers { block } => {
                write!(f, "PEM block {block}: it has `Name: value` header lines (legacy OpenSSL encryption)")
            }
            Self::Base64 { block } => write!(
                f,
                "PEM block {block}: the text between its `-----BEGIN` and `-----END` lines is not base64 in lines of \
                 equal length"
            ),
        }
    }
}

/// Every PEM block in `text`, in order, decoded. Literal `\n` sequences (keys pasted into environment variables
/// carry them) count as newlines; the unescaped copy is wiped on drop. Text outside blocks is ignored, as RFC 7468
/// allows.
pub(crate) fn pem_blocks(text: &[u8]) -> Result<Vec<PemBlock>, PemError> {
    let unescaped;
    let text = if contains(text, b"\\n") {
        unescaped = unescape_newlines(text);
        unescaped.as_slice()
    } else {
        text
    };
    let mut blocks = Vec::new();
    let mut lines = lines(text);
    while let Some((begin_at, begin_line)) = lines.next() {
        if !begin_line.starts_with(BEGIN) {
            continue;
        }
        let block = blocks.len() + 1;
        if !trim_end(begin_line).ends_with(DASHES) || trim_end(begin_line).len() < BEGIN.len() + DASHES.len() {
            return Err(PemError::BeginLine { block });
        }
        let mut first_line = true;
        let mut end = None;
        for (at, line) in lines.by_ref() {
            if line.starts_with(END) {
                end = Some((at, line));
                break;
            }
            if first_line && line.contains(&b':') {
                return Err(PemError::Headers { block });
            }
            first_line = false;
        }
        let (end_at, end_line) = end.ok_or(PemError::Unterminated { block })?;
        let end_line = trim_end(end_line);
        if !end_line.ends_with(DASHES) || end_line.len() < END.len() + DASHES.len() {
            return Err(PemError::EndLine { block });
        }
        blocks.push(decode_block(&text[begin_at..end_at + end_line.len()], block)?);
    }
    if blocks.is_empty() { Err(PemError::NoBlock) } else { Ok(blocks) }
}

/// Decodes one block, from the start of its `BEGIN` line to the last dash of its `END` line.
fn decode_block(pem: &[u8], block: usize) -> Result<PemBlock, PemError> {
    use pem_rfc7468::Error as E;
    let classify = |error: E| match error {
        E::Label | E::PreEncapsulationBoundary | E::CharacterEncoding => PemError::BeginLine { block },
        E::PostEncapsulationBoundary => PemError::EndLine { block },
        E::HeaderDisallowed => PemError::Headers { block },
        _ => PemError::Base64 { block },
    };
    // Lines of any one width: 64 is the RFC's, but Java and .NET tools write 76, and a key from an environment
    // variable may be one long line.
    let mut decoder = pem_rfc7468::Decoder::new_detect_wrap(pem).map_err(classify)?;
    let label = decoder.type_label().to_owned();
    let mut der = Zeroizing::new(Vec::with_capacity(decoder.remaining_len()));
    decoder.decode_to_end(&mut der).map_err(classify)?;
    Ok(PemBlock { label, der })
}

/// A label fit to be shown in an error: what real PEM labels look like (`CERTIFICATE`, `EC PRIVATE KEY`, `X509
/// CRL`: short words of uppercase letters and digits). Any other label is not repeated, in case the "label" is text
/// that should never have been there; with words of at most 12 characters, no token or base64 run fits in one.
pub(crate) fn displayable_label(label: &str) -> Option<&str> {
    let plausible = !label.is_empty()
        && label.len() <= 40
        && label.split(' ').all(|word| {
            (1..=12).contains(&word.len()) && word.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        });
    plausible.then_some(label)
}

/// `text` with each literal `\n` turned into a newline, in a buffer sized once so that no partial copy is left
/// behind by a reallocation.
fn unescape_newlines(text: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(text.len()));
    let mut bytes = text.iter().copied().peekable();
    while let Some(byte) = bytes.next() {
        if byte == b'\\' && bytes.next_if_eq(&b'n').is_some() {
            out.push(b'\n');
        } else {
            out.push(byte);
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn trim_end(line: &[u8]) -> &[u8] {
    let len = line.iter().rposition(|b| !b.is_ascii_whitespace()).map_or(0, |i| i + 1);
    &line[..len]
}

/// Lines with their start offsets, without their `\n` (a `\r` before it stays: the decoder handles CRLF).
fn lines(text: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    text.split_inclusive(|&b| b == b'\n').scan(0, |at, line| {
        let start = *at;
        *at += line.len();
        Some((start, line.strip_suffix(b"\n").unwrap_or(line)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = include_str!("../../fixtures/keys/bot-2048.pkcs8.pem");

    fn body_of(pem: &str) -> String {
        pem.lines().filter(|l| !l.starts_with("-----")).collect()
    }

    #[test]
    fn blocks_decode_with_lf_crlf_and_escaped_newlines() {
        let reference = pem_blocks(KEY.as_bytes()).unwrap();
        assert_eq!(reference.len(), 1);
        assert_eq!(reference[0].label, "PRIVATE KEY");
        for variant in [KEY.replace('\n', "\r\n"), KEY.trim_end().replace('\n', "\\n"), format!("\n\n{KEY}\n\n")] {
            let blocks = pem_blocks(variant.as_bytes()).unwrap();
            assert_eq!(*blocks[0].der, *reference[0].der);
        }
    }

    #[test]
    fn only_a_backslash_before_n_is_a_newline() {
        let text = b"\\nA\\\\n\\x\\";
        let out = unescape_newlines(text);
        assert_eq!(out.as_slice(), b"\nA\\\n\\x\\");
        assert_eq!(out.capacity(), text.len(), "sized once, for the escaped text");
    }

    #[test]
    fn lines_carry_their_start_offsets() {
        let all = |text: &'static [u8]| lines(text).collect::<Vec<_>>();
        assert_eq!(all(b"ab\n\ncd"), [(0, &b"ab"[..]), (3, b""), (4, b"cd")]);
        assert_eq!(all(b"x\r\n"), [(0, &b"x\r"[..])]);
        assert!(all(b"").is_empty());
    }

    #[test]
    fn other_line_widths_are_read() {
        let body = body_of(KEY);
        let one_line = format!("-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----\n");
        let wrapped_76: Vec<String> =
            body.as_bytes().chunks(76).map(|c| String::from_utf8(c.to_vec()).unwrap()).collect();
        let java = format!("-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----", wrapped_76.join("\n"));
        let reference = pem_blocks(KEY.as_bytes()).unwrap();
        for pem in [one_line, java] {
            assert_eq!(*pem_blocks(pem.as_bytes()).unwrap()[0].der, *reference[0].der);
        }
    }

    #[test]
    fn text_between_blocks_is_ignored_and_blocks_are_numbered() {
        let text = format!(
            "Bag Attributes: x\n-----BEGIN CERTIFICATE-----\nAAECAw==\n-----END CERTIFICATE-----\nsubject=CN\n{KEY}"
        );
        let blocks = pem_blocks(text.as_bytes()).unwrap();
        assert_eq!(blocks.iter().map(|b| b.label.as_str()).collect::<Vec<_>>(), ["CERTIFICATE", "PRIVATE KEY"]);
        assert_eq!(*blocks[0].der, [0, 1, 2, 3]);
        let broken = format!(
            "-----BEGIN CERTIFICATE-----\nAAECAw==\n-----END CERTIFICATE-----\n{}",
            KEY.replace("KEY-----\nMII", "KEY\nMII")
        );
        assert_eq!(pem_blocks(broken.as_bytes()).err(), Some(PemError::BeginLine { block: 2 }));
    }

    #[test]
    fn each_malformation_is_named() {
        let err = |text: &str| pem_blocks(text.as_bytes()).err();
        assert_eq!(err("hello"), Some(PemError::NoBlock));
        assert_eq!(err(""), Some(PemError::NoBlock));
        // The case that used to print a whole key: the BEGIN line lost its dashes.
        assert_eq!(err(&KEY.replacen("PRIVATE KEY-----", "PRIVATE KEY", 1)), Some(PemError::BeginLine { block: 1 }));
        assert_eq!(
            err(&KEY.replacen("-----BEGIN PRIVATE KEY-----", "-----BEGIN PRIVATE  KEY-----", 1)),
            Some(PemError::BeginLine { block: 1 })
        );
        assert_eq!(err("-----BEGIN PRIVATE KEY-----\nAAAA\n"), Some(PemError::Unterminated { block: 1 }));
        assert_eq!(
            err(&KEY.replace("-----END PRIVATE KEY-----", "-----END PRIVATE KEY")),
            Some(PemError::EndLine { block: 1 })
        );
        assert_eq!(
            err(&KEY.replace("-----END PRIVATE KEY-----", "-----END RSA PRIVATE KEY-----")),
            Some(PemError::EndLine { block: 1 })
        );
        assert_eq!(
            err(
                "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nAAAA\n-----END RSA PRIVATE KEY-----\n"
            ),
            Some(PemError::Headers { block: 1 })
        );
        assert_eq!(
            err("-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n"),
            Some(PemError::Base64 { block: 1 })
        );
        let ragged = KEY.replacen('\n', "\n\n", 3);
        assert!(matches!(err(&ragged), Some(PemError::Base64 { block: 1 })), "{:?}", err(&ragged));
    }

    #[test]
    fn messages_carry_no_text_of_the_input() {
        let body = body_of(KEY);
        let lost_dashes = KEY.replacen("PRIVATE KEY-----", "PRIVATE KEY", 1);
        let message = pem_blocks(lost_dashes.as_bytes()).err().unwrap().to_string();
        assert!(message.contains("-----BEGIN"), "{message}");
        for window in body.as_bytes().windows(16) {
            assert!(!message.contains(std::str::from_utf8(window).unwrap()), "{message}");
        }
        assert!(!message.contains("PRIVATE KEY"), "{message}");
    }

    #[test]
    fn only_plausible_labels_are_shown() {
        assert_eq!(displayable_label("EC PRIVATE KEY"), Some("EC PRIVATE KEY"));
        assert_eq!(displayable_label("X509 CRL"), Some("X509 CRL"));
        assert_eq!(displayable_label("MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"), None);
        assert_eq!(displayable_label("MIIEVQIBADANBGKQHKIG9W0BAQEFAASC"), None);
        assert_eq!(displayable_label("CERTIFICATE  REQUEST"), None);
        assert_eq!(displayable_label(&"AB ".repeat(14)), None);
        assert_eq!(displayable_label(""), None);
    }
}
