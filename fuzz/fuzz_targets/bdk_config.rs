//! BDK configuration files to `symphony_auth_core::parse_bdk_config`, read two ways:
//! 1. arbitrary text (lossy UTF-8), with an environment closure that answers some `${NAME}` lookups (values with
//!    `${`, `}`, newlines, YAML syntax) and not others;
//! 2. an `arbitrary` configuration built around one secret (a certificate or proxy password, an inline key or
//!    certificate) written in a way a user might get wrong: as a number, where a map is expected, unterminated,
//!    with the PEM's first line broken, through `${NAME}`. Only this reading's environment holds canaries, and its
//!    arbitrary tail has no `$`, so that a canary only ever sits where a secret belongs (a canary used as a
//!    host name would rightly be quoted back).
//!
//! A parsed configuration then goes through `to_config`, `url_with_credentials` and `load` with an in-memory file
//! reader (test fixtures for `key.pem`, `cert.pem`, `bot.p12`; not-found for any other path).
//!
//! Checks: no panic; no canary password and no slice of a private key in any error's `Display` or `Debug`, nor in
//! the `Debug` of the settings or of what `load` built. A raw text that already holds secret text (libFuzzer learns
//! it from the comparisons the parser makes) is checked for panics only, and the structured reading drops such a
//! tail: a host name made of key text is rightly quoted back.

#![no_main]

use std::sync::OnceLock;

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use symphony_auth_core::{LoginMethod, parse_bdk_config};

mod common;
use common::{NUMERIC_PASSWORD_CANARY, PASSWORD_CANARY};

const KEY_PEM: &str = include_str!("../../fixtures/keys/bot-2048.pkcs8.pem");
const CERT_PEM: &str = include_str!("../../fixtures/certs/bot.pem");

/// The canaries and the base64 of every private key the target can hand to the parser. Seeds must not hold text
/// of these keys: the fuzzer would splice it into a host name, and a host name is rightly quoted back.
fn secrets() -> &'static [String] {
    static SECRETS: OnceLock<Vec<String>> = OnceLock::new();
    SECRETS.get_or_init(|| {
        let mut all = vec![PASSWORD_CANARY.to_owned(), NUMERIC_PASSWORD_CANARY.to_owned()];
        all.extend(common::private_key_bodies(KEY_PEM));
        all.extend(common::private_key_bodies(CERT_PEM));
        all
    })
}

/// `KEY_PEM` with its first line cut short of its closing dashes, the mistake that once put a whole key into an
/// error message.
fn broken_key() -> &'static str {
    static BROKEN: OnceLock<String> = OnceLock::new();
    BROKEN.get_or_init(|| KEY_PEM.replacen("-----BEGIN PRIVATE KEY-----", "-----BEGIN PRIVATE KEY", 1))
}

fn env(name: &str) -> Option<String> {
    let value = match name {
        "HOST" => "acme.symphony.com",
        "PORT" => "8443",
        "EMPTY" => "",
        "NESTED" => "${HOST}",
        "BRACE" => "a}b${c:-d}",
        "YAML" => "\n- [x: {y\n",
        "UNICODE" => "h\u{f4}te.\u{2603}.example",
        "PASSWORD" => "changeit",
        _ if name.len() % 2 == 1 => return Some(name.to_ascii_lowercase()),
        _ => return None,
    };
    Some(value.to_owned())
}

/// The environment of the structured reading: the secrets, then [`env`].
fn secret_env(name: &str) -> Option<String> {
    let value = match name {
        "SECRET" => PASSWORD_CANARY,
        "PIN" => NUMERIC_PASSWORD_CANARY,
        "KEY" => KEY_PEM,
        "BROKEN_KEY" => broken_key(),
        "CERT" => CERT_PEM,
        _ => return env(name),
    };
    Some(value.to_owned())
}

fn read(path: &std::path::Path) -> std::io::Result<Vec<u8>> {
    let bytes: &[u8] = match path.to_str() {
        Some("key.pem") => KEY_PEM.as_bytes(),
        Some("broken-key.pem") => broken_key().as_bytes(),
        Some("cert.pem") => CERT_PEM.as_bytes(),
        Some("bot.p12") => include_bytes!("../../fixtures/certs/bot.p12"),
        _ => return Err(std::io::Error::from(std::io::ErrorKind::NotFound)),
    };
    Ok(bytes.to_vec())
}

/// Where the secret goes.
#[derive(Arbitrary, Debug)]
enum Slot {
    /// `bot.certificate.password` (with `bot.certificate.path: bot.p12`).
    CertificatePassword,
    /// `bot.certificatePassword`, the deprecated spelling.
    LegacyCertificatePassword,
    /// `proxy.password`.
    ProxyPassword,
    /// `bot.privateKey.content`.
    KeyContent,
    /// `bot.privateKeyContent`, the deprecated spelling.
    LegacyKeyContent,
    /// `bot.privateKey` itself: a scalar where a map is expected.
    KeyInPlaceOfMap,
    /// `bot.certificate.content` (certificate and key in one PEM).
    CertificateContent,
    /// `bot.certificate` itself: a scalar where a map is expected.
    CertificateInPlaceOfMap,
}

/// Which secret.
#[derive(Arbitrary, Debug)]
enum Secret {
    Password,
    NumericPassword,
    Key,
    BrokenKey,
    Certificate,
}

/// How it is written.
#[derive(Arbitrary, Debug)]
enum Form {
    /// `slot: value`, unquoted (a number stays a number; a multi-line PEM breaks the YAML).
    Plain,
    /// `slot: "value"`, newlines escaped.
    DoubleQuoted,
    /// `slot: 'value` with no closing quote.
    Unterminated,
    /// `slot: |` and the value indented below.
    Block,
    /// `slot: [value]`.
    Sequence,
    /// `slot: {value: 1}`.
    MapKey,
    /// `slot: ${NAME}`: the environment holds the secret.
    Variable,
    /// The value cut after `at` characters, double-quoted.
    Truncated { at: u16 },
}

#[derive(Arbitrary, Debug)]
struct Structured {
    slot: Slot,
    secret: Secret,
    form: Form,
    json_like_host: bool,
    /// Arbitrary text after the configuration (more keys, or broken syntax).
    tail: String,
}

fn secret_text(secret: &Secret) -> (&'static str, &'static str) {
    match secret {
        Secret::Password => (PASSWORD_CANARY, "SECRET"),
        Secret::NumericPassword => (NUMERIC_PASSWORD_CANARY, "PIN"),
        Secret::Key => (KEY_PEM, "KEY"),
        Secret::BrokenKey => (broken_key(), "BROKEN_KEY"),
        Secret::Certificate => (CERT_PEM, "CERT"),
    }
}

/// `value` in `form`, as the text after `key:` on a line indented by `indent` spaces.
fn render_value(form: &Form, value: &str, variable: &str, indent: usize) -> String {
    let quoted = |v: &str| serde_json::to_string(v).unwrap();
    match form {
        Form::Plain => value.to_owned(),
        Form::DoubleQuoted => quoted(value),
        Form::Unterminated => format!("'{value}"),
        Form::Block => {
            let pad = " ".repeat(indent + 2);
            let lines: Vec<String> = value.lines().map(|l| format!("{pad}{l}")).collect();
            format!("|\n{}", lines.join("\n"))
        }
        Form::Sequence => format!("[{}]", quoted(value)),
        Form::MapKey => format!("{{{}: 1}}", quoted(value)),
        Form::Variable => format!("\"${{{variable}}}\""),
        Form::Truncated { at } => {
            let cut: String = value.chars().take(usize::from(*at)).collect();
            quoted(&cut)
        }
    }
}

fn render(input: &Structured) -> String {
    let (value, variable) = secret_text(&input.secret);
    let v = |indent| render_value(&input.form, value, variable, indent);
    let host = if input.json_like_host { "host: \"acme.symphony.com\"\n" } else { "host: acme.symphony.com\n" };
    let bot = match input.slot {
        Slot::CertificatePassword => format!("  certificate:\n    path: bot.p12\n    password: {}\n", v(4)),
        Slot::LegacyCertificatePassword => format!("  certificatePath: bot.p12\n  certificatePassword: {}\n", v(2)),
        Slot::ProxyPassword => "  privateKey:\n    path: key.pem\n".to_owned(),
        Slot::KeyContent => format!("  privateKey:\n    content: {}\n", v(4)),
        Slot::LegacyKeyContent => format!("  privateKeyContent: {}\n", v(2)),
        Slot::KeyInPlaceOfMap => format!("  privateKey: {}\n", v(2)),
        Slot::CertificateContent => format!("  certificate:\n    content: {}\n", v(4)),
        Slot::CertificateInPlaceOfMap => format!("  certificate: {}\n", v(2)),
    };
    let proxy = match input.slot {
        Slot::ProxyPassword => {
            format!("proxy:\n  host: proxy.acme\n  port: 3128\n  username: bot\n  password: {}\n", v(2))
        }
        _ => String::new(),
    };
    // No `$`: the tail must not fetch a canary from the environment into a place where it is quoted on purpose; and
    // no secret text the fuzzer has learned (see `common::contains_secret`).
    let tail = input.tail.replace('$', "");
    let tail = if common::contains_secret(tail.as_bytes(), secrets()) { String::new() } else { tail };
    format!("{host}port: 443\nbot:\n  username: fuzz.bot\n{bot}{proxy}{tail}")
}

fn check(text: &str, env: &dyn Fn(&str) -> Option<String>) {
    let secrets: &[String] = if common::contains_secret(text.as_bytes(), secrets()) { &[] } else { secrets() };
    let settings = match parse_bdk_config(text, env) {
        Ok(settings) => settings,
        Err(error) => return common::assert_error_clean("BdkConfigError", &error, secrets),
    };
    common::assert_debug_clean("BotSettings", &settings, secrets);
    if let Err(error) = settings.to_config(LoginMethod::Certificate) {
        common::assert_error_clean("ConfigError", &error, secrets);
    }
    if let Some(proxy) = &settings.proxy {
        // The URL with credentials is meant to hold the password; only its being built is exercised.
        let _ = proxy.url_with_credentials();
        common::assert_debug_clean("ProxySettings", proxy, secrets);
    }
    let _ = settings.credentials.is_pkcs12();
    match settings.load(&mut read) {
        Ok(loaded) => common::assert_debug_clean("LoadedSettings", &loaded, secrets),
        Err(error) => common::assert_error_clean("ConfigFileError", &error, secrets),
    }
}

fuzz_target!(|data: &[u8]| {
    check(&String::from_utf8_lossy(data), &env);
    if let Ok(structured) = Structured::arbitrary(&mut Unstructured::new(data)) {
        check(&render(&structured), &secret_env);
    }
});
