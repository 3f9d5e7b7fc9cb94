//! Building a bot from a BDK configuration file (the YAML or JSON of the Java and Python SDKs).

use std::path::Path;

use symphony_auth_core::{ConfigFileError, LoadedSettings, parse_bdk_config};

use crate::{Bot, Error};

impl Bot {
    /// A bot from a BDK configuration file: `host` (and per-service `pod`, `agent`, `keyManager`, `sessionAuth`),
    /// `bot.username`, `bot.privateKey` or `bot.certificate`, `ssl.trustStore`, `retry`, `proxy`, timeouts, with
    /// `${ENV}` and `${ENV:-default}` expanded. Keys this library does not use are ignored.
    ///
    /// It reads the files synchronously, once, as a program starts: call it before serving, or inside
    /// `spawn_blocking`.
    ///
    /// # Errors
    /// [`Error::ConfigFile`], naming the key at fault, and the errors of [`BotBuilder::build`](crate::BotBuilder::build).
    pub fn from_config_file(path: impl AsRef<Path>) -> Result<Self, Error> {
        Self::from_settings(load_config_file(path)?)
    }

    /// A bot from settings already read by [`load_config_file`], for a caller that adjusts them first (another
    /// retry policy, say).
    ///
    /// # Errors
    /// The errors of [`BotBuilder::build`](crate::BotBuilder::build), and [`Error::Tls`] or [`Error::Config`] for
    /// an unusable trust store or proxy.
    pub fn from_settings(loaded: LoadedSettings) -> Result<Self, Error> {
        let mut builder = Bot::builder(loaded.config);
        if let Some(identity) = loaded.identity {
            builder = builder.client_identity(identity);
        }
        if let Some(pem) = &loaded.extra_roots_pem {
            builder = builder.extra_root_certificates_pem(pem)?;
        }
        if let Some(proxy) = &loaded.proxy {
            builder = builder.proxy(&proxy.url_with_credentials())?;
        }
        if let Some(timeout) = loaded.connect_timeout {
            builder = builder.connect_timeout(timeout);
        }
        if let Some(timeout) = loaded.read_timeout {
            builder = builder.timeout(timeout);
        }
        builder.build()
    }
}

/// Reads a BDK configuration file and everything it names (key, certificate, trust store), with `${ENV}` and
/// `${ENV:-default}` expanded from the environment: what [`Bot::from_config_file`] builds its bot from.
///
/// # Errors
/// [`Error::ConfigFile`], naming the key at fault.
pub fn load_config_file(path: impl AsRef<Path>) -> Result<LoadedSettings, Error> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigFileError::Unreadable { path: path.to_owned(), reason: e.to_string() })?;
    let settings = parse_bdk_config(&text, &|name| std::env::var(name).ok()).map_err(ConfigFileError::from)?;
    Ok(settings.load(&mut |file| std::fs::read(file))?)
}
