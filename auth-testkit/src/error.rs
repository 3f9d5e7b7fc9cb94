//! The one error type of the testkit: set-up failures (keys, certificates, sockets), never request outcomes.

/// Why the fake could not be set up or started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TestkitError {
    /// A bot's public key is not an SPKI PEM RSA key of at least 2048 bits.
    #[error("invalid public key for bot {username:?}: {reason}")]
    InvalidPublicKey {
        /// The bot the key was given for.
        username: String,
        /// What was wrong with it.
        reason: String,
    },
    /// A bot name is empty or holds characters the fake does not allow.
    #[error("invalid bot name {0:?}: use 1 to 128 characters from A-Z a-z 0-9 . _ - @")]
    InvalidBotName(String),
    /// Generating a certificate failed.
    #[error("certificate generation failed: {0}")]
    Certificate(#[from] rcgen::Error),
    /// Building a TLS configuration failed.
    #[error("TLS configuration failed: {0}")]
    Tls(#[from] rustls::Error),
    /// Building the client-certificate verifier failed.
    #[error("client certificate verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    /// Binding a socket, starting the runtime or its thread failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}
