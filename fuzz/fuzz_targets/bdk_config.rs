//! Arbitrary text (lossy UTF-8) to `symphony_auth_core::parse_bdk_config`, with an environment closure that answers some
//! `${NAME}` lookups (values with `${`, `}`, newlines, YAML syntax) and not others. Checks: no panic. A parsed
//! configuration then goes through `to_config`, `url_with_credentials` and `load` with an in-memory file reader
//! (test fixtures for `key.pem`, `cert.pem`, `bot.p12`; not-found for any other path): no panic there either.

#![no_main]

use symphony_auth_core::{LoginMethod, parse_bdk_config};
use libfuzzer_sys::fuzz_target;

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

fn read(path: &std::path::Path) -> std::io::Result<Vec<u8>> {
    let bytes: &[u8] = match path.to_str() {
        Some("key.pem") => include_bytes!("../../fixtures/keys/bot-2048.pkcs8.pem"),
        Some("cert.pem") => include_bytes!("../../fixtures/certs/bot.pem"),
        Some("bot.p12") => include_bytes!("../../fixtures/certs/bot.p12"),
        _ => return Err(std::io::Error::from(std::io::ErrorKind::NotFound)),
    };
    Ok(bytes.to_vec())
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let Ok(settings) = parse_bdk_config(&text, &env) else { return };
    let _ = format!("{settings:?}");
    let _ = settings.to_config(LoginMethod::Certificate);
    if let Some(proxy) = &settings.proxy {
        let _ = proxy.url_with_credentials();
    }
    let _ = settings.credentials.is_pkcs12();
    if let Ok(loaded) = settings.load(&mut read) {
        let _ = format!("{:?}", loaded.config);
    }
});
