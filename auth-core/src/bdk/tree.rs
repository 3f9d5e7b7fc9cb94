//! Reading the YAML tree: `${ENV}` expansion, and typed getters whose errors name the key and the expected type,
//! never the value.

use serde_yaml_ng::{Mapping, Value};
use zeroize::{Zeroize, Zeroizing};

use super::BdkConfigError;

/// A YAML tree whose strings are wiped when it is dropped: passwords and inline keys live in it.
pub(super) struct WipedTree(pub(super) Value);

impl Drop for WipedTree {
    fn drop(&mut self) {
        wipe_strings(&mut self.0);
    }
}

/// Zeroes and empties every string value in `value`, however deep (mapping keys are names, not secrets).
fn wipe_strings(value: &mut Value) {
    match value {
        Value::String(text) => text.zeroize(),
        Value::Sequence(items) => items.iter_mut().for_each(wipe_strings),
        Value::Mapping(map) => map.iter_mut().for_each(|(_, v)| wipe_strings(v)),
        Value::Tagged(tagged) => wipe_strings(&mut tagged.value),
        _ => {}
    }
}

/// The parser's complaint, as a place and a kind: its own messages can quote the text (a duplicated key, for
/// one), so only the location is kept, and a duplicated key is named as such.
pub(super) fn syntax_error(error: &serde_yaml_ng::Error) -> BdkConfigError {
    let what = if error.to_string().starts_with("duplicate entry") {
        "a key appears twice in one mapping"
    } else {
        "not valid YAML or JSON"
    };
    let message = match error.location() {
        Some(at) => format!("{what} at line {}, column {}", at.line(), at.column()),
        None => what.to_owned(),
    };
    BdkConfigError::Syntax(message)
}

pub(super) fn interpolate(value: &mut Value, env: &dyn Fn(&str) -> Option<String>) -> Result<(), BdkConfigError> {
    match value {
        Value::String(text) if text.contains("${") => {
            let mut expanded = expand(text, env)?;
            std::mem::swap(text, &mut *expanded);
        }
        Value::Sequence(items) => items.iter_mut().try_for_each(|v| interpolate(v, env))?,
        Value::Mapping(map) => map.iter_mut().try_for_each(|(_, v)| interpolate(v, env))?,
        _ => {}
    }
    Ok(())
}

/// Expands `${NAME}` and `${NAME:-default}`. The result is written once into a buffer of its final size, so that
/// no reallocation leaves part of a secret behind; the pieces and the replaced text are wiped.
pub(super) fn expand(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Zeroizing<String>, BdkConfigError> {
    enum Piece<'t> {
        Text(&'t str),
        Variable(Zeroizing<String>),
    }
    let mut pieces = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        pieces.push(Piece::Text(&rest[..start]));
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            pieces.push(Piece::Text(&rest[start..]));
            rest = "";
            break;
        };
        let expression = &after[..end];
        let (name, default) = match expression.split_once(":-") {
            Some((name, default)) => (name, Some(default)),
            None => (expression, None),
        };
        match (env(name).map(Zeroizing::new), default) {
            (Some(value), _) => pieces.push(Piece::Variable(value)),
            (None, Some(default)) => pieces.push(Piece::Text(default)),
            (None, None) => return Err(BdkConfigError::UnsetVariable(plausible_variable(name))),
        }
        rest = &after[end + 1..];
    }
    pieces.push(Piece::Text(rest));
    let text_of = |piece: &'_ Piece<'_>| -> usize {
        match piece {
            Piece::Text(text) => text.len(),
            Piece::Variable(value) => value.len(),
        }
    };
    let mut out = Zeroizing::new(String::with_capacity(pieces.iter().map(text_of).sum()));
    for piece in &pieces {
        match piece {
            Piece::Text(text) => out.push_str(text),
            Piece::Variable(value) => out.push_str(value),
        }
    }
    Ok(out)
}

/// The name of an unset variable when it looks like one (`[A-Za-z_][A-Za-z0-9_.]*`, at most 64 characters), and
/// empty otherwise: `${` inside a password is not a variable, and its text is not repeated.
pub(super) fn plausible_variable(name: &str) -> String {
    let plausible = (1..=64).contains(&name.len())
        && name.bytes().next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.');
    if plausible { name.to_owned() } else { String::new() }
}

/// What kind of YAML value `value` is, for messages that must not show it.
pub(super) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

pub(super) fn wrong_type(key: &str, expected: &'static str, found: &Value) -> BdkConfigError {
    BdkConfigError::WrongType { key: key.to_owned(), expected, found: kind(found) }
}

/// `map[key]`, with `null` (an empty value) read as absent.
pub(super) fn get<'a>(map: Option<&'a Mapping>, key: &str) -> Option<&'a Value> {
    map?.get(key).filter(|value| !value.is_null())
}

pub(super) fn mapping<'a>(
    value: Option<&'a Value>,
    key: &str,
    expected: &'static str,
) -> Result<Option<&'a Mapping>, BdkConfigError> {
    match value {
        None => Ok(None),
        Some(Value::Mapping(map)) => Ok(Some(map)),
        Some(other) => Err(wrong_type(key, expected, other)),
    }
}

pub(super) fn string<'a>(value: Option<&'a Value>, key: &str) -> Result<Option<&'a str>, BdkConfigError> {
    match value {
        None => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(other) => Err(wrong_type(key, "a string", other)),
    }
}

/// A boolean, or the text `true`/`false` (what `${VARIABLE}` gives).
pub(super) fn boolean(value: Option<&Value>, key: &str) -> Result<Option<bool>, BdkConfigError> {
    match value {
        None => Ok(None),
        Some(Value::Bool(flag)) => Ok(Some(*flag)),
        Some(Value::String(text)) if text.trim().eq_ignore_ascii_case("true") => Ok(Some(true)),
        Some(Value::String(text)) if text.trim().eq_ignore_ascii_case("false") => Ok(Some(false)),
        Some(other) => Err(wrong_type(key, "`true` or `false`", other)),
    }
}

pub(super) fn number(value: Option<&Value>, key: &str) -> Result<Option<f64>, BdkConfigError> {
    let invalid = |reason: &str| BdkConfigError::InvalidValue { key: key.to_owned(), reason: reason.to_owned() };
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_f64().map(Some).ok_or_else(|| invalid("not a number")),
        Some(Value::String(s)) => s.trim().parse::<f64>().map(Some).map_err(|_| invalid("not a number")),
        Some(_) => Err(invalid("not a number")),
    }
}

pub(super) fn whole(value: Option<&Value>, key: &str, min: f64, max: f64) -> Result<Option<u64>, BdkConfigError> {
    match number(value, key)? {
        None => Ok(None),
        Some(n) if n.fract() == 0.0 && n >= min && n <= max => Ok(Some(n as u64)),
        Some(_) => Err(BdkConfigError::InvalidValue {
            key: key.to_owned(),
            reason: format!("expected a whole number from {min} to {max}"),
        }),
    }
}

/// `prefix.key`, or `key` at the top level.
pub(super) fn key_path(prefix: &str, key: &str) -> String {
    if prefix.is_empty() { key.to_owned() } else { format!("{prefix}.{key}") }
}

#[cfg(test)]
mod tests {
    use serde_yaml_ng::Value;

    use super::wipe_strings;

    #[test]
    fn every_string_value_is_wiped_however_deep() {
        let mut tree: Value = serde_yaml_ng::from_str(
            "password: s3cr3t\nlist: [k3y, {inner: t0ken}]\ntagged: !secret p4ss\nport: 443\nflag: true",
        )
        .unwrap();
        wipe_strings(&mut tree);
        let Value::Mapping(map) = &tree else { panic!("a mapping: {tree:?}") };
        let text = format!("{tree:?}");
        for secret in ["s3cr3t", "k3y", "t0ken", "p4ss"] {
            assert!(!text.contains(secret), "{secret} is left in {text}");
        }
        assert_eq!(map["password"], Value::String(String::new()));
        assert_eq!(map["list"][0], Value::String(String::new()));
        assert_eq!(map["list"][1]["inner"], Value::String(String::new()));
        let Value::Tagged(tagged) = &map["tagged"] else { panic!("tagged: {text}") };
        assert_eq!(tagged.value, Value::String(String::new()));
        assert_eq!((&map["port"], &map["flag"]), (&Value::from(443), &Value::Bool(true)), "only strings are touched");
        assert!(map.contains_key("password"), "keys are names and stay");
    }
}
