"""Symphony bot authentication over the symphony-auth Rust core.

- ``Bot``: logs in on first use, shares one login between threads, sends API calls with the tokens attached and
  re-logs in once on a 401 (the blocking Rust driver; the GIL is released during I/O and signing).
- ``HttpxAuth``: an ``httpx.Auth`` for ``httpx.Client`` and ``httpx.AsyncClient``, driven by the same core.
- ``Authenticator``: the sans-IO machine itself, for applications with their own HTTP client.
- ``Config``: the configuration, from values or from a BDK YAML/JSON file.
- ``install_logging()``: the native side's logs (logins, retries, 401s, failures; ureq, rustls) into ``logging``,
  under ``symphony_auth.<rust target>``.

Errors are subclasses of ``SymphonyAuthError``; no message or repr holds a token, a JWT or key material.
"""

from typing import TYPE_CHECKING, Any

from ._native import (
    USER_AGENT,
    AccessToken,
    ApiCall,
    Authenticator,
    Bot,
    Config,
    ConfigurationError,
    CredentialsRejectedError,
    Flight,
    FlightCaller,
    LoginRequest,
    ProtocolError,
    Response,
    SignedJwt,
    SigningError,
    SymphonyAuthError,
    TlsError,
    Tokens,
    TransportError,
    UnauthorizedError,
    UnavailableError,
    UnsignedJwt,
    UsageError,
    install_logging,
)

if TYPE_CHECKING:
    from ._httpx import HttpxAuth

__all__ = [
    "USER_AGENT",
    "AccessToken",
    "ApiCall",
    "Authenticator",
    "Bot",
    "Config",
    "ConfigurationError",
    "CredentialsRejectedError",
    "Flight",
    "FlightCaller",
    "HttpxAuth",
    "LoginRequest",
    "ProtocolError",
    "Response",
    "SignedJwt",
    "SigningError",
    "SymphonyAuthError",
    "TlsError",
    "Tokens",
    "TransportError",
    "UnauthorizedError",
    "UnavailableError",
    "UnsignedJwt",
    "UsageError",
    "install_logging",
]


def __getattr__(name: str) -> Any:
    # httpx is optional: importing symphony_auth must not need it.
    if name == "HttpxAuth":
        from ._httpx import HttpxAuth

        return HttpxAuth
    raise AttributeError(f"module 'symphony_auth' has no attribute {name!r}")
