//! Canary secrets shared by the targets, and the check that no text a user can see (an error's `Display` or
//! `Debug`, a value's `Debug`) contains any of them.
//!
//! A leak is rarely the whole secret: messages truncate, escape or wrap what they quote. So the check looks for
//! every slice of [`WINDOW`] bytes of each secret. Sixteen bytes of base64 or of a random-looking canary never
//! occur in a message by chance, and a quote that long already gives a key or a token away.

#![allow(dead_code)]

use std::collections::HashSet;
use std::fmt;

/// The length of the slices of a secret that must not appear.
pub const WINDOW: usize = 16;

/// A session token as a pod would issue it; the fuzzer's bytes go around it.
pub const SESSION_CANARY: &str = "CanarySessionTok3nQ7xv9Lm2Rp";
/// An authorization (bearer) token.
pub const AUTHORIZATION_CANARY: &str = "CanaryAuthzTok3nW4kd8Zs1Hn";
/// A secret claim inside a JWT-shaped session token.
pub const JWT_CLAIM_CANARY: &str = "CanaryJwtClaimV6ty3Bq0Xe";
/// A request echoed by an error page (a proxy or pod that quotes what it was sent).
pub const ECHO_CANARY: &str = "sessionToken: CanaryEchoedTok3nJ2mc5Pf8Ua";
/// A password (certificate or proxy).
pub const PASSWORD_CANARY: &str = "CanaryPassw0rdK9fe2Tq7Lz";
/// A password written as a number, which YAML reads as an integer.
pub const NUMERIC_PASSWORD_CANARY: &str = "918273645019283746";

/// The base64 body (line breaks removed) of every `PRIVATE KEY` block of a PEM text: the secret part of a key
/// file, as it would show in a message that quotes the file.
pub fn private_key_bodies(pem: &str) -> Vec<String> {
    let mut bodies = Vec::new();
    let mut current: Option<String> = None;
    for line in pem.lines() {
        let line = line.trim();
        if line.starts_with("-----BEGIN") {
            current = line.contains("PRIVATE KEY").then(String::new);
        } else if line.starts_with("-----END") {
            bodies.extend(current.take());
        } else if let Some(body) = current.as_mut() {
            body.push_str(line);
        }
    }
    bodies
}

/// Whether `bytes` already hold a [`WINDOW`]-byte slice of one of `secrets`. libFuzzer learns the operands of the
/// comparisons the code makes, secrets included, and writes them into its inputs; where an input already holds a
/// secret in a place that is quoted back on purpose (a host name, a server message), finding it in a message proves
/// nothing. Targets skip the leak check for such inputs, and check them for panics only.
pub fn contains_secret<S: AsRef<[u8]>>(bytes: &[u8], secrets: &[S]) -> bool {
    if bytes.len() < WINDOW {
        return false;
    }
    let seen: HashSet<&[u8]> = bytes.windows(WINDOW).collect();
    secrets.iter().any(|secret| secret.as_ref().windows(WINDOW).any(|w| seen.contains(w)))
}

/// Panics if `text` holds a [`WINDOW`]-byte slice of any of `secrets`. Secrets shorter than a window are not
/// looked for: only canaries and key material are passed here, and those are longer.
pub fn assert_no_secret<S: AsRef<[u8]>>(what: &str, text: &str, secrets: &[S]) {
    let text = text.as_bytes();
    if text.len() < WINDOW {
        return;
    }
    let seen: HashSet<&[u8]> = text.windows(WINDOW).collect();
    for secret in secrets {
        if let Some(slice) = secret.as_ref().windows(WINDOW).find(|w| seen.contains(w)) {
            // A canary or test-only fixture: printing the slice is what makes the crash report useful.
            panic!(
                "{what} leaks a secret: it contains {:?}\n--- text ---\n{}",
                String::from_utf8_lossy(slice),
                String::from_utf8_lossy(text)
            );
        }
    }
}

/// Checks both `Display` and `Debug` of an error.
pub fn assert_error_clean<E: fmt::Display + fmt::Debug, S: AsRef<[u8]>>(what: &str, error: &E, secrets: &[S]) {
    assert_no_secret(what, &error.to_string(), secrets);
    assert_no_secret(what, &format!("{error:?}"), secrets);
}

/// Checks `Debug` of a value.
pub fn assert_debug_clean<T: fmt::Debug + ?Sized, S: AsRef<[u8]>>(what: &str, value: &T, secrets: &[S]) {
    assert_no_secret(what, &format!("{value:?}"), secrets);
}
