//! Arbitrary bytes to both signers' `from_pem` (`RsaSigner`, `RingSigner`), `ClientIdentity::from_pem`
//! and `ClientIdentity::from_pkcs12` (password `changeit`, the fixtures'). Checks: no panic; a key that loads has at
//! least `MIN_RSA_BITS` bits and signs; an identity that loads has a certificate and a key; no error and no `Debug`
//! of a loaded value holds a slice of the key material it was given, or the canary password.
//!
//! Two readings of each input:
//! 1. the raw bytes, as they are (so PEM files and `.p12` files work as seeds);
//! 2. the bytes as an `arbitrary` description of PEM blocks (label, DER, line width, `\n` escapes, headers, a
//!    BEGIN line cut short of its dashes) whose DER is either arbitrary or a fixture with some bytes changed, and
//!    of a PKCS#12 file, a fixture with some bytes changed, opened with its password or a canary one, so that the
//!    DER parsers behind the PEM layer see near-valid input. The base64 of every fixture-derived block is a secret
//!    that no message may quote. (Arbitrary DER is not: the fuzzer could make its base64 equal a label it also
//!    chose, and labels are quoted on purpose.)

#![no_main]

use std::sync::OnceLock;

use arbitrary::{Arbitrary, Unstructured};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use libfuzzer_sys::fuzz_target;
use symphony_auth_core::{ClientIdentity, JwtSigner, MIN_RSA_BITS, RingSigner, RsaSigner};

mod common;
use common::PASSWORD_CANARY;

const PASSWORD: &str = "changeit";

const PEM_FIXTURES: [&[u8]; 5] = [
    include_bytes!("../../fixtures/keys/bot-2048.pkcs8.pem"),
    include_bytes!("../../fixtures/keys/bot-2048.pkcs1.pem"),
    include_bytes!("../../fixtures/keys/ec-p256.pkcs8.pem"),
    include_bytes!("../../fixtures/keys/weak-1024.pkcs8.pem"),
    include_bytes!("../../fixtures/certs/bot.pem"),
];

const P12_FIXTURES: [&[u8]; 2] =
    [include_bytes!("../../fixtures/certs/bot.p12"), include_bytes!("../../fixtures/certs/bot-legacy.p12")];

/// The DER of every block of every PEM fixture.
fn fixture_ders() -> &'static [Vec<u8>] {
    static DERS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    DERS.get_or_init(|| {
        let mut ders = Vec::new();
        for pem in PEM_FIXTURES {
            let text = std::str::from_utf8(pem).unwrap();
            let mut body = String::new();
            for line in text.lines() {
                if line.starts_with("-----END") {
                    ders.push(STANDARD.decode(&body).unwrap());
                    body.clear();
                } else if !line.starts_with("-----") {
                    body.push_str(line.trim());
                }
            }
        }
        ders
    })
}

#[derive(Arbitrary, Debug)]
enum Label {
    Certificate,
    PrivateKey,
    RsaPrivateKey,
    EcPrivateKey,
    EncryptedPrivateKey,
    PublicKey,
    Other(String),
}

#[derive(Arbitrary, Debug)]
struct Edit {
    at: u16,
    byte: u8,
}

#[derive(Arbitrary, Debug)]
enum Der {
    Bytes(Vec<u8>),
    Fixture { which: u8, edits: Vec<Edit>, truncate: Option<u16> },
}

impl Der {
    fn is_fixture(&self) -> bool {
        matches!(self, Der::Fixture { .. })
    }

    fn bytes(&self, fixtures: &[Vec<u8>]) -> Vec<u8> {
        match self {
            Der::Bytes(bytes) => bytes.clone(),
            Der::Fixture { which, edits, truncate } => {
                mutate(&fixtures[usize::from(*which) % fixtures.len()], edits, *truncate)
            }
        }
    }
}

fn mutate(original: &[u8], edits: &[Edit], truncate: Option<u16>) -> Vec<u8> {
    let mut bytes = original.to_vec();
    for edit in edits {
        if !bytes.is_empty() {
            let at = usize::from(edit.at) % bytes.len();
            bytes[at] = edit.byte;
        }
    }
    if let Some(len) = truncate {
        bytes.truncate(usize::from(len));
    }
    bytes
}

#[derive(Arbitrary, Debug)]
struct Block {
    label: Label,
    der: Der,
    /// Base64 line width (0: one line).
    width: u8,
    /// Lines joined with a literal backslash-n, as keys pasted into environment variables are.
    escaped_newlines: bool,
    crlf: bool,
    /// A `Proc-Type:`-style header line before the base64.
    header: bool,
    /// Drop the END line.
    unterminated: bool,
    /// Write the BEGIN line without its closing dashes (`-----BEGIN PRIVATE KEY`), so that a label scan runs on
    /// into the base64.
    broken_begin: bool,
    /// Text before the block.
    preamble: String,
}

#[derive(Arbitrary, Debug)]
struct Structured {
    blocks: Vec<Block>,
    /// A fixture, edits, a length to cut it to, and whether to open it with the canary password.
    p12: Option<(u8, Vec<Edit>, Option<u16>, bool)>,
}

/// The PEM text, and the base64 of each block whose DER came from a fixture.
fn render(blocks: &[Block]) -> (Vec<u8>, Vec<String>) {
    let fixtures = fixture_ders();
    let mut out = String::new();
    let mut secrets = Vec::new();
    for block in blocks.iter().take(8) {
        let label = match &block.label {
            Label::Certificate => "CERTIFICATE",
            Label::PrivateKey => "PRIVATE KEY",
            Label::RsaPrivateKey => "RSA PRIVATE KEY",
            Label::EcPrivateKey => "EC PRIVATE KEY",
            Label::EncryptedPrivateKey => "ENCRYPTED PRIVATE KEY",
            Label::PublicKey => "PUBLIC KEY",
            Label::Other(label) => label.as_str(),
        };
        let newline = match (block.escaped_newlines, block.crlf) {
            (true, _) => "\\n",
            (false, true) => "\r\n",
            (false, false) => "\n",
        };
        out.push_str(&block.preamble);
        let dashes = if block.broken_begin { "" } else { "-----" };
        out.push_str(&format!("-----BEGIN {label}{dashes}{newline}"));
        if block.header {
            out.push_str(&format!("Proc-Type: 4,ENCRYPTED{newline}{newline}"));
        }
        let encoded = STANDARD.encode(block.der.bytes(fixtures));
        let width = if block.width == 0 { encoded.len().max(1) } else { usize::from(block.width) };
        for chunk in encoded.as_bytes().chunks(width) {
            out.push_str(std::str::from_utf8(chunk).unwrap());
            out.push_str(newline);
        }
        if !block.unterminated {
            out.push_str(&format!("-----END {label}-----{newline}"));
        }
        if block.der.is_fixture() {
            secrets.push(encoded);
        }
    }
    (out.into_bytes(), secrets)
}

fn check_key(pem: &[u8], secrets: &[String]) {
    match RsaSigner::from_pem(pem) {
        Ok(signer) => {
            common::assert_debug_clean("RsaSigner", &signer, secrets);
            assert!(signer.bits() >= MIN_RSA_BITS, "a {}-bit key loaded", signer.bits());
            let _ = signer.public_key_pem();
            let _ = signer.format();
            let signature = signer.sign_rs512(b"header.claims").expect("a loaded key signs");
            assert_eq!(signature.len(), signer.bits().div_ceil(8));
        }
        Err(error) => common::assert_error_clean("KeyError", &error, secrets),
    }
    match RingSigner::from_pem(pem) {
        Ok(signer) => {
            common::assert_debug_clean("RingSigner", &signer, secrets);
            assert!(signer.bits() >= MIN_RSA_BITS, "a {}-bit key loaded by ring", signer.bits());
        }
        Err(error) => common::assert_error_clean("KeyError (ring)", &error, secrets),
    }
}

fn check_identity(result: Result<ClientIdentity, symphony_auth_core::IdentityError>, secrets: &[String]) {
    match result {
        Ok(identity) => {
            common::assert_debug_clean("ClientIdentity", &identity, secrets);
            assert!(!identity.certificate_chain_der().is_empty(), "an identity without a certificate");
            let _ = identity.private_key_der();
            let _ = identity.private_key_format();
        }
        Err(error) => common::assert_error_clean("IdentityError", &error, secrets),
    }
}

fuzz_target!(|data: &[u8]| {
    check_key(data, &[]);
    check_identity(ClientIdentity::from_pem(data), &[]);
    check_identity(ClientIdentity::from_pkcs12(data, PASSWORD), &[]);

    let Ok(structured) = Structured::arbitrary(&mut Unstructured::new(data)) else { return };
    let (pem, mut secrets) = render(&structured.blocks);
    check_key(&pem, &secrets);
    check_identity(ClientIdentity::from_pem(&pem), &secrets);
    if let Some((which, edits, truncate, canary)) = &structured.p12 {
        let der = mutate(P12_FIXTURES[usize::from(*which) % P12_FIXTURES.len()], edits, *truncate);
        let password = if *canary { PASSWORD_CANARY } else { PASSWORD };
        secrets.push(PASSWORD_CANARY.to_owned());
        check_identity(ClientIdentity::from_pkcs12(&der, password), &secrets);
    }
});
