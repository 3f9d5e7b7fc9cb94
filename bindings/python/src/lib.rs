//! `symphony_auth._native`: the Python module over symphony-auth-core and its blocking driver. Every decision is
//! the core's: this crate converts values, releases the GIL around signing and network I/O, and maps errors to
//! exceptions. The Python package (`python/symphony_auth`) re-exports it and adds `HttpxAuth`.

mod bot;
mod config;
mod convert;
mod errors;
mod flight;
mod logging;
mod machine;

use pyo3::prelude::*;

/// The native part of `symphony_auth`.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    errors::register(m)?;
    m.add_class::<config::PyConfig>()?;
    m.add_class::<bot::PyBot>()?;
    m.add_class::<bot::PyResponse>()?;
    m.add_class::<convert::PyTokens>()?;
    m.add_class::<machine::PyAuthenticator>()?;
    m.add_class::<machine::PyUnsignedJwt>()?;
    m.add_class::<machine::PySignedJwt>()?;
    m.add_class::<machine::PyLoginRequest>()?;
    m.add_class::<flight::PyFlight>()?;
    m.add_class::<flight::PyCaller>()?;
    m.add_class::<flight::PyApiCall>()?;
    m.add_class::<flight::PyAccessToken>()?;
    m.add_function(wrap_pyfunction!(logging::install_logging, m)?)?;
    m.add("USER_AGENT", symphony_auth_core::USER_AGENT_VALUE)?;
    Ok(())
}
