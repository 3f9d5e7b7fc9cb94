//! PEM blocks: the label and the DER under it. Only decoding; what a label means is the caller's business.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

/// One `-----BEGIN label----- ... -----END label-----` block.
pub(crate) struct PemBlock {
    pub(crate) label: String,
    /// Lines of the form `Name: value` before the base64 (legacy OpenSSL encryption puts them there).
    pub(crate) has_headers: bool,
    /// The base64 body, whitespace removed; decode with [`PemBlock::der`].
    body: Zeroizing<String>,
}

impl PemBlock {
    /// The decoded body; `None` if it is not valid base64.
    pub(crate) fn der(&self) -> Option<Zeroizing<Vec<u8>>> {
        STANDARD.decode(self.body.as_bytes()).ok().map(Zeroizing::new)
    }
}

/// Why the PEM text could not be split into blocks.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum PemError {
    /// No `-----BEGIN` line.
    NoBlock,
    /// A block without its `-----END label-----` line.
    Unterminated(String),
}

/// Every PEM block in `text`, in order. Literal `\n` sequences (keys pasted into environment variables carry
/// them) count as newlines.
pub(crate) fn pem_blocks(text: &[u8]) -> Result<Vec<PemBlock>, PemError> {
    let text = Zeroizing::new(String::from_utf8_lossy(text).replace("\\n", "\n").replace('\r', ""));
    let mut blocks = Vec::new();
    let mut rest = text.as_str();
    while let Some(begin) = rest.find("-----BEGIN ") {
        let after = &rest[begin + "-----BEGIN ".len()..];
        let label_end = after.find("-----").ok_or(PemError::NoBlock)?;
        let label = after[..label_end].trim().to_owned();
        let content = &after[label_end + "-----".len()..];
        let end_marker = format!("-----END {label}-----");
        let end = content.find(&end_marker).ok_or_else(|| PemError::Unterminated(label.clone()))?;
        let inner = &content[..end];
        let has_headers = inner.lines().any(|line| line.contains(':'));
        let body = inner
            .lines()
            .filter(|line| !line.contains(':'))
            .flat_map(|line| line.chars())
            .filter(|c| !c.is_whitespace());
        blocks.push(PemBlock { label, has_headers, body: Zeroizing::new(body.collect()) });
        rest = &content[end + end_marker.len()..];
    }
    if blocks.is_empty() { Err(PemError::NoBlock) } else { Ok(blocks) }
}
