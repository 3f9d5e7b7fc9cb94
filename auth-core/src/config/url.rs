//! A service's base URL, validated on construction: scheme, host, port and context path, and whether plain HTTP
//! is allowed for it.

use core::net::IpAddr;
use std::fmt;

use http::Uri;
use http::uri::{Authority, Scheme};

use crate::error::ConfigError;

/// A validated base URL: `http` or `https`, a host, an optional port and an optional context path, without query,
/// fragment or user information.
///
/// Plain `http` parses, but a [`Config`](crate::Config) accepts it only for a loopback host (`localhost`,
/// `127.0.0.0/8`, `::1`) or after an explicit [`allow_insecure_http`](Self::allow_insecure_http): over plain HTTP the
/// login JWT and the tokens cross the network readable by anyone on the path.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct BaseUrl {
    scheme: Scheme,
    authority: Authority,
    context: String,
    insecure_http_allowed: bool,
}

impl BaseUrl {
    /// Parses `https://host[:port][/context]`. A value without a scheme is taken as an `https` host; a trailing
    /// `/` is dropped. `which` names the service in errors.
    pub fn parse(which: &'static str, url: &str) -> Result<Self, ConfigError> {
        let err = |reason| ConfigError::InvalidUrl { which, url: shown_url(url), reason };
        let trimmed = url.trim();
        if trimmed.is_empty() {
            return Err(err("it is empty"));
        }
        let with_scheme = if trimmed.contains("://") { trimmed.to_owned() } else { format!("https://{trimmed}") };
        let uri: Uri = with_scheme.parse().map_err(|_| err("not a valid URL"))?;
        let scheme = match uri.scheme_str() {
            Some("https") => Scheme::HTTPS,
            Some("http") => Scheme::HTTP,
            _ => return Err(err("the scheme must be `https` or `http`")),
        };
        let authority = uri.authority().cloned().ok_or_else(|| err("it has no host"))?;
        if authority.as_str().contains('@') {
            return Err(err("user information in URLs is not supported"));
        }
        if authority.host().is_empty() {
            return Err(err("it has no host"));
        }
        if uri.query().is_some() || with_scheme.contains('#') {
            return Err(err("a base URL takes no query or fragment"));
        }
        let context = uri.path().trim_end_matches('/').to_owned();
        if has_dot_segment(&context) {
            return Err(err("its path has `.` or `..` segments"));
        }
        Ok(Self { scheme, authority, context, insecure_http_allowed: false })
    }

    /// A base URL from parts, as BDK configuration files give them (`scheme`, `host`, `port`, `context`).
    pub fn from_parts(
        which: &'static str,
        scheme: &str,
        host: &str,
        port: Option<u16>,
        context: &str,
    ) -> Result<Self, ConfigError> {
        let port = port.map(|p| format!(":{p}")).unwrap_or_default();
        let context = context.trim();
        let context =
            if context.is_empty() || context.starts_with('/') { context.to_owned() } else { format!("/{context}") };
        let scheme = scheme.trim();
        if !scheme.eq_ignore_ascii_case("https") && !scheme.eq_ignore_ascii_case("http") {
            return Err(ConfigError::InvalidUrl {
                which,
                url: shown_url(&format!("{scheme}://{host}{port}{context}")),
                reason: "the scheme must be `https` or `http`",
            });
        }
        Self::parse(which, &format!("{}://{host}{port}{context}", scheme.to_ascii_lowercase()))
    }

    /// `http` or `https`.
    #[must_use]
    pub fn scheme(&self) -> &str {
        self.scheme.as_str()
    }

    /// The host, without port.
    #[must_use]
    pub fn host(&self) -> &str {
        self.authority.host()
    }

    /// The port, written or implied by the scheme.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.authority.port_u16().unwrap_or(if self.scheme == Scheme::HTTP { 80 } else { 443 })
    }

    /// The context path (`""` or `/something`, no trailing slash).
    #[must_use]
    pub fn context(&self) -> &str {
        &self.context
    }

    /// Whether the host is a loopback address (`localhost`, `127.0.0.0/8`, `::1`), where plain HTTP never leaves
    /// the machine.
    #[must_use]
    pub fn is_loopback(&self) -> bool {
        let host = self.host().trim_start_matches('[').trim_end_matches(']');
        if host.eq_ignore_ascii_case("localhost") || host.eq_ignore_ascii_case("localhost.") {
            return true;
        }
        host.parse::<IpAddr>().is_ok_and(|ip| ip.to_canonical().is_loopback())
    }

    /// Consents to plain `http` for this URL even though its host is not loopback (a test pod behind a trusted
    /// network, say). Nothing changes for `https` URLs.
    #[must_use]
    pub fn allow_insecure_http(mut self) -> Self {
        self.insecure_http_allowed = true;
        self
    }

    /// Whether [`allow_insecure_http`](Self::allow_insecure_http) was called.
    #[must_use]
    pub fn insecure_http_allowed(&self) -> bool {
        self.insecure_http_allowed
    }

    /// Whether this URL sends secrets in the clear over a network: plain `http` to a host that is not loopback,
    /// without consent.
    #[must_use]
    pub fn is_insecure_without_consent(&self) -> bool {
        self.scheme == Scheme::HTTP && !self.insecure_http_allowed && !self.is_loopback()
    }

    /// The URI of `path` (which starts with `/`) under this base.
    #[must_use]
    pub fn join(&self, path: &str) -> Uri {
        let path_and_query = format!("{}{path}", self.context);
        Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(path_and_query)
            .build()
            .unwrap_or_else(|_| Uri::from_static("/"))
    }

    /// Whether `uri` points at this base (same scheme, host, port, and under the context path).
    #[must_use]
    pub fn contains(&self, uri: &Uri) -> bool {
        let same_origin = uri.scheme_str() == Some(self.scheme.as_str())
            && uri.host().is_some_and(|h| h.eq_ignore_ascii_case(self.host()))
            && uri.port_u16().unwrap_or(if uri.scheme() == Some(&Scheme::HTTP) { 80 } else { 443 }) == self.port();
        let path = uri.path();
        same_origin
            && (self.context.is_empty()
                || path == self.context
                || path.strip_prefix(self.context.as_str()).is_some_and(|rest| rest.starts_with('/')))
    }
}

impl fmt::Display for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}{}", self.scheme, self.authority, self.context)
    }
}

impl fmt::Debug for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BaseUrl({self})")
    }
}

/// Whether a segment of `path` is `.` or `..`, written plainly or percent-encoded (`%2e`).
pub(super) fn has_dot_segment(path: &str) -> bool {
    path.split('/').any(|segment| {
        let segment = segment.to_ascii_lowercase().replace("%2e", ".");
        segment == "." || segment == ".."
    })
}

/// A URL as given, for a message: user information replaced by `***`, the query and fragment by `…`, at most 200
/// characters. A password in a URL, or a token in its query, is never repeated.
fn shown_url(url: &str) -> String {
    let url = url.trim();
    let (scheme, rest) = url.split_once("://").map_or(("", url), |(s, r)| (s, r));
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let authority = match authority.rfind('@') {
        Some(at) => format!("***@{}", &authority[at + 1..]),
        None => authority.to_owned(),
    };
    let path = match path.find(['?', '#']) {
        Some(cut) => format!("{}…", &path[..cut]),
        None => path.to_owned(),
    };
    let shown = if scheme.is_empty() { format!("{authority}{path}") } else { format!("{scheme}://{authority}{path}") };
    if shown.chars().count() > 200 { shown.chars().take(200).chain(['…']).collect() } else { shown }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_default_to_https_and_drop_trailing_slashes() {
        let url = BaseUrl::parse("pod", "acme.symphony.com").unwrap();
        assert_eq!(url.to_string(), "https://acme.symphony.com");
        assert_eq!(url.port(), 443);
        let url = BaseUrl::parse("pod", "http://127.0.0.1:8080/ctx/").unwrap();
        assert_eq!(url.context(), "/ctx");
        assert_eq!(url.port(), 8080);
        assert_eq!(
            url.join("/login/pubkey/authenticate").to_string(),
            "http://127.0.0.1:8080/ctx/login/pubkey/authenticate"
        );
    }

    #[test]
    fn bad_base_urls_name_the_service_and_the_problem() {
        for (url, shown, reason) in [
            ("", "", "it is empty"),
            ("ftp://x", "ftp://x", "the scheme must be `https` or `http`"),
            ("https://user:pw@x", "https://***@x", "user information in URLs is not supported"),
            ("https://x/?a=b", "https://x/…", "a base URL takes no query or fragment"),
            ("https://x/#f", "https://x/…", "a base URL takes no query or fragment"),
            ("https://exa mple", "https://exa mple", "not a valid URL"),
            ("https://x/ctx/../other", "https://x/ctx/../other", "its path has `.` or `..` segments"),
        ] {
            assert_eq!(
                BaseUrl::parse("agent", url),
                Err(ConfigError::InvalidUrl { which: "agent", url: shown.to_owned(), reason }),
                "{url}"
            );
        }
    }

    #[test]
    fn urls_in_errors_lose_passwords_and_queries() {
        for url in ["https://bot:s3cr3t-pw@acme.example/x", "https://acme.example/x?token=s3cr3t-pw", "s3cr3t-pw@x:1"] {
            let error = BaseUrl::parse("pod", url).map(|_| ()).unwrap_err();
            let shown = format!("{error} {error:?}");
            assert!(!shown.contains("s3cr3t"), "{shown}");
        }
        let long = format!("https://{}", "a".repeat(300));
        let ConfigError::InvalidUrl { url, .. } = BaseUrl::parse("pod", &format!("{long} x")).unwrap_err() else {
            panic!()
        };
        assert_eq!(url.chars().count(), 201);
        assert!(url.ends_with('…'));
        // At the bound exactly, nothing is cut.
        let exact = format!("https://{} x", "a".repeat(190));
        assert_eq!(exact.chars().count(), 200);
        let ConfigError::InvalidUrl { url, .. } = BaseUrl::parse("pod", &exact).unwrap_err() else { panic!() };
        assert_eq!(url, exact);
    }

    #[test]
    fn plain_http_to_a_remote_host_is_insecure_until_consented_to() {
        let remote = BaseUrl::parse("pod", "http://pod.internal:8080").unwrap();
        assert!(!remote.insecure_http_allowed());
        assert!(remote.is_insecure_without_consent());
        let consented = remote.allow_insecure_http();
        assert!(consented.insecure_http_allowed());
        assert!(!consented.is_insecure_without_consent());
        for url in ["https://pod.internal", "http://localhost:8080", "http://127.0.0.1", "http://[::1]:9"] {
            let url = BaseUrl::parse("pod", url).unwrap();
            assert!(!url.insecure_http_allowed() && !url.is_insecure_without_consent(), "{url}");
        }
    }

    #[test]
    fn parts_follow_the_bdk_rules() {
        let url = BaseUrl::from_parts("keyManager", "https", "km.acme", Some(8444), "relay-ctx").unwrap();
        assert_eq!(url.to_string(), "https://km.acme:8444/relay-ctx");
        assert!(BaseUrl::from_parts("pod", "gopher", "x", None, "").is_err());
    }
}
