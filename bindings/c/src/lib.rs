//! The C ABI of symphony-auth: the sans-IO authentication machine of `symphony-auth-core` behind opaque handles,
//! for C and anything with a C FFI (Go, .NET, Java, ...). The header is `include/symphony_auth.h`, generated from
//! this crate by cbindgen; `README.md` shows the loop in C and the ownership rules.
//!
//! A third driver, beside `auth-blocking` and `auth-async`: it makes no protocol decision. Every entry point passes
//! plain bytes to the core and hands back what the core says, so a C program passes the same conformance files as
//! the Rust crates.
//!
//! # Why this crate allows `unsafe`
//!
//! The workspace forbids `unsafe_code`. A C ABI cannot be written without it: every entry point receives raw
//! pointers (handles, byte runs, out-parameters) whose validity only the C caller can promise, and hands back
//! pointers made from boxes. So `unsafe` is allowed here, in this crate only, and kept narrow: each entry point is
//! an `unsafe extern "C" fn` whose `# Safety` section (copied into the header) states what C must promise; each
//! `unsafe` block does one such thing with a `SAFETY` comment saying which promise covers it
//! (`clippy::undocumented_unsafe_blocks` is denied); `unsafe_op_in_unsafe_fn` is denied so that no operation hides
//! in an `unsafe fn`'s body. No `transmute`. One `unsafe impl` and the only global state, both in `log.rs`: the log
//! callback is process-wide because `tracing`'s subscriber is, and its `user_data` crosses threads as C promises.
//!
//! # Rules every entry point keeps
//!
//! - No panic crosses the boundary: each entry point runs inside `catch_unwind`, and a panic becomes
//!   `SYMPHONY_AUTH_STATUS_INTERNAL` (after which that handle answers nothing else), NULL, or an empty value.
//! - Errors are a status code plus a message kept by the handle the call was made on. Messages come from the core,
//!   which never puts a token, JWT, key or password in one, or from this crate, which names the argument at fault
//!   and never repeats its value.
//! - Every pointer's owner is stated in the header: handles are freed with their `symphony_auth_*_free`; views
//!   (`SymphonyAuthBytes`, `SymphonyAuthRequest`, ...) belong to the handle they were read from.
#![allow(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks, missing_docs)]

mod abi;
mod config;
mod event;
mod log;
mod machine;
mod output;
mod tokens;

pub use abi::{SymphonyAuthBytes, SymphonyAuthHeader, SymphonyAuthStatus};
pub use config::*;
pub use event::*;
pub use log::*;
pub use machine::*;
pub use output::*;
pub use tokens::*;

/// The core's version as `symphony-auth/<version>`: the `User-Agent` its login requests carry. Static: never
/// freed, valid for the life of the program.
#[unsafe(no_mangle)]
pub extern "C" fn symphony_auth_version() -> SymphonyAuthBytes {
    SymphonyAuthBytes::of(symphony_auth_core::USER_AGENT_VALUE.as_bytes())
}

#[cfg(test)]
mod tests;
