//! The signing seam. The machine needs one operation, an RS512 signature; where the key lives (memory, an HSM, a
//! cloud KMS) is the signer's business.

use std::fmt;

use crate::error::SignError;

/// Signs login JWTs with RS512 (RSASSA-PKCS1-v1_5 over SHA-512).
///
/// Implement it to keep the key in an HSM or KMS. The `Debug` implementation must not print key material.
/// Signatures are deterministic for a given key and message, so every correct implementation produces the same
/// JWT.
pub trait JwtSigner: Send + Sync + fmt::Debug {
    /// The RS512 signature of `message`, as the raw big-endian bytes (the size of the modulus).
    fn sign_rs512(&self, message: &[u8]) -> Result<Vec<u8>, SignError>;
}
