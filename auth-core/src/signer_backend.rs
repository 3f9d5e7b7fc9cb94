//! Which implementation loads a key: the three signer backends, which of them this build has, and the two ways of
//! choosing one. [`SignerBackend::build_default`] is what `BotSettings::load` uses and never changes when a crate
//! elsewhere in the build turns another signer feature on; [`SignerBackend::fastest`] is for callers that ask.

use std::fmt;
use std::sync::Arc;

use crate::error::KeyError;
use crate::signer::JwtSigner;

/// An RS512 signer implementation. Every backend signs the same JWTs (PKCS#1 v1.5 is deterministic); they differ
/// in speed, in what they build from, and in their audit story.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SignerBackend {
    /// `RsaSigner`, over the pure-Rust `rsa` crate: feature `rsa-signer`, the default.
    Rsa,
    /// `RingSigner`, over `ring`: feature `ring-signer`.
    Ring,
    /// `AwsLcSigner`, over `aws-lc-rs`: feature `aws-lc-signer`.
    AwsLc,
}

impl SignerBackend {
    /// Every backend, in the order the build default prefers them (the order their features were added, so that
    /// a new feature never displaces the signer of a build that already had one).
    pub const ALL: [Self; 3] = [Self::Rsa, Self::Ring, Self::AwsLc];

    /// Fastest first. The benchmark's `sign_us` measure prints each machine's figures: on a 2-core AMD EPYC without
    /// AVX-512, 4096-bit RS512 costs about 5.8 ms of CPU with aws-lc, 5.2 ms with ring and 16 ms with rsa (aws-lc
    /// leads at 2048 bits and where its AVX-512 code runs).
    const BY_SPEED: [Self; 3] = [Self::AwsLc, Self::Ring, Self::Rsa];

    /// The short name: `rsa`, `ring` or `aws-lc`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Rsa => "rsa",
            Self::Ring => "ring",
            Self::AwsLc => "aws-lc",
        }
    }

    /// The cargo feature that compiles this backend in.
    #[must_use]
    pub fn feature(self) -> &'static str {
        match self {
            Self::Rsa => "rsa-signer",
            Self::Ring => "ring-signer",
            Self::AwsLc => "aws-lc-signer",
        }
    }

    /// The backend of a short name ([`name`](Self::name)), compiled in or not.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|backend| backend.name() == name)
    }

    /// Whether this build has the backend.
    #[must_use]
    pub fn is_compiled(self) -> bool {
        match self {
            Self::Rsa => cfg!(feature = "rsa-signer"),
            Self::Ring => cfg!(feature = "ring-signer"),
            Self::AwsLc => cfg!(feature = "aws-lc-signer"),
        }
    }

    /// The backends this build has, in [`ALL`](Self::ALL)'s order.
    pub fn compiled() -> impl Iterator<Item = Self> {
        Self::ALL.into_iter().filter(|backend| backend.is_compiled())
    }

    /// The signer `BotSettings::load` uses: `rsa` when compiled in, else `ring`, else `aws-lc`; `None` in a build
    /// with no signer.
    #[must_use]
    pub fn build_default() -> Option<Self> {
        Self::compiled().next()
    }

    /// The fastest backend compiled in: `aws-lc`, else `ring`, else `rsa`; `None` in a build with no signer.
    #[must_use]
    pub fn fastest() -> Option<Self> {
        Self::BY_SPEED.into_iter().find(|backend| backend.is_compiled())
    }

    /// Loads an unencrypted PKCS#8 or PKCS#1 PEM key of at least 2048 bits into this backend's signer.
    ///
    /// # Errors
    /// [`KeyError::BackendNotCompiled`] when this build lacks the backend; otherwise the signer's own
    /// [`KeyError`], which never quotes the key.
    pub fn load_pem(self, pem: &[u8]) -> Result<Arc<dyn JwtSigner>, KeyError> {
        let _ = pem;
        match self {
            #[cfg(feature = "rsa-signer")]
            Self::Rsa => Ok(Arc::new(crate::RsaSigner::from_pem(pem)?)),
            #[cfg(feature = "ring-signer")]
            Self::Ring => Ok(Arc::new(crate::RingSigner::from_pem(pem)?)),
            #[cfg(feature = "aws-lc-signer")]
            Self::AwsLc => Ok(Arc::new(crate::AwsLcSigner::from_pem(pem)?)),
            #[allow(unreachable_patterns)] // in a build with every signer
            other => Err(KeyError::BackendNotCompiled { backend: other.name(), feature: other.feature() }),
        }
    }
}

impl fmt::Display for SignerBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEM: &[u8] = include_bytes!("../../fixtures/keys/bot-2048.pkcs8.pem");

    #[test]
    fn names_round_trip_and_unknown_names_are_none() {
        for backend in SignerBackend::ALL {
            assert_eq!(SignerBackend::from_name(backend.name()), Some(backend));
            assert_eq!(backend.to_string(), backend.name());
            assert!(backend.feature().starts_with(backend.name()) && backend.feature().ends_with("-signer"));
        }
        assert_eq!(SignerBackend::from_name("openssl"), None);
    }

    #[test]
    fn the_build_default_prefers_rsa_then_ring_and_fastest_prefers_aws_lc_then_ring() {
        let compiled: Vec<_> = SignerBackend::compiled().collect();
        assert_eq!(
            compiled.len(),
            usize::from(cfg!(feature = "rsa-signer"))
                + usize::from(cfg!(feature = "ring-signer"))
                + usize::from(cfg!(feature = "aws-lc-signer"))
        );
        let default = if cfg!(feature = "rsa-signer") {
            Some(SignerBackend::Rsa)
        } else if cfg!(feature = "ring-signer") {
            Some(SignerBackend::Ring)
        } else if cfg!(feature = "aws-lc-signer") {
            Some(SignerBackend::AwsLc)
        } else {
            None
        };
        assert_eq!(SignerBackend::build_default(), default);
        let fastest = if cfg!(feature = "aws-lc-signer") {
            Some(SignerBackend::AwsLc)
        } else if cfg!(feature = "ring-signer") {
            Some(SignerBackend::Ring)
        } else if cfg!(feature = "rsa-signer") {
            Some(SignerBackend::Rsa)
        } else {
            None
        };
        assert_eq!(SignerBackend::fastest(), fastest);
    }

    #[test]
    fn each_backend_loads_when_compiled_and_names_its_feature_when_not() {
        for backend in SignerBackend::ALL {
            match backend.load_pem(PEM) {
                Ok(signer) => {
                    assert!(backend.is_compiled(), "{backend}");
                    assert_eq!(signer.sign_rs512(b"m").unwrap().len(), 256);
                }
                Err(error) => {
                    assert!(!backend.is_compiled(), "{backend}: {error}");
                    assert_eq!(
                        error,
                        KeyError::BackendNotCompiled { backend: backend.name(), feature: backend.feature() }
                    );
                    assert!(error.to_string().contains(&format!("`{}`", backend.feature())), "{error}");
                }
            }
        }
    }
}
