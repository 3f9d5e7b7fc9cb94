//! Diagnostics on stderr, as `RUST_LOG` and `-v` ask, through a `tracing` subscriber: the bot's own spans and
//! events (logins, retries, 401s, failures), and the `log` records of the HTTP and TLS stacks (ureq, ureq-proto,
//! rustls), bridged in by `tracing-log`. Colour only when stderr is a terminal and `NO_COLOR` is unset.
//!
//! One target is held back: at TRACE, ureq-proto hex-dumps every request it writes and every answer it reads
//! (session and key-manager token headers, login JWTs, `{"token": ...}` answers), and nothing turns that off in
//! ureq-proto itself. Its records at TRACE are filtered out here whatever the filter says; DEBUG and above pass.
//! The filter is the subscriber's, so the bridge reports the dump as disabled and the driver sends.

use std::io::IsTerminal as _;

use tracing::Metadata;
use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::{EnvFilter, FilterFn};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::{Layer, Registry};

/// The target whose TRACE records hold request and answer bytes.
const DUMPING_TARGET: &str = "ureq_proto";

/// Installs the subscriber and the `log` bridge for the process: `RUST_LOG`'s directives, then `-v` as the default
/// level when given (the command line over the environment), nothing when neither is set.
pub(crate) fn init(verbose: u8, rust_log: Option<&str>) {
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    // Only fails when a subscriber or a logger is already installed, which nothing else in this process does.
    let _ = tracing::subscriber::set_global_default(subscriber(verbose, rust_log, colour));
    let _ = tracing_log::LogTracer::init();
}

/// The subscriber: the filter of `RUST_LOG` and `-v`, less ureq-proto's dump, writing to stderr.
fn subscriber(verbose: u8, rust_log: Option<&str>, colour: bool) -> impl tracing::Subscriber + Send + Sync {
    let output = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(colour);
    Registry::default().with(capped(filter(verbose, rust_log))).with(output)
}

/// The filter `RUST_LOG` and `-v` ask for, ureq-proto's dump held back.
fn capped(filter: EnvFilter) -> impl Layer<Registry> + Send + Sync {
    filter.and_then(FilterFn::new(|metadata: &Metadata<'_>| !held_back(metadata)))
}

/// `RUST_LOG`'s directives (EnvFilter syntax: `debug`, `ureq=trace,rustls=debug`); with `-v`, its default level
/// is replaced by `-v`'s and its per-target directives kept. Neither: off. Malformed directives are ignored.
fn filter(verbose: u8, rust_log: Option<&str>) -> EnvFilter {
    let level = match verbose {
        0 => None,
        1 => Some(LevelFilter::INFO),
        2 => Some(LevelFilter::DEBUG),
        _ => Some(LevelFilter::TRACE),
    };
    let mut directives: Vec<String> = rust_log
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|directive| !directive.is_empty())
        // A bare level is the default level, which `-v` replaces.
        .filter(|directive| level.is_none() || directive.parse::<LevelFilter>().is_err())
        .map(str::to_owned)
        .collect();
    if let Some(level) = level {
        directives.push(level.to_string());
    }
    EnvFilter::builder().with_default_directive(LevelFilter::OFF.into()).parse_lossy(directives.join(","))
}

fn held_back(metadata: &Metadata<'_>) -> bool {
    let target = metadata.target();
    let dumping = target.strip_prefix(DUMPING_TARGET).is_some_and(|rest| rest.is_empty() || rest.starts_with("::"));
    dumping && *metadata.level() == tracing::Level::TRACE
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use super::*;

    /// Whether a `log` record of `target` at `level` would be recorded, as the drivers ask it through the bridge.
    fn enabled(verbose: u8, rust_log: Option<&str>, target: &str, level: log::Level) -> bool {
        static BRIDGE: OnceLock<()> = OnceLock::new();
        BRIDGE.get_or_init(|| tracing_log::LogTracer::init().expect("the only logger of these tests"));
        let subscriber = subscriber(verbose, rust_log, false);
        tracing::subscriber::with_default(subscriber, || {
            log::logger().enabled(&log::Metadata::builder().target(target).level(level).build())
        })
    }

    #[test]
    fn ureq_proto_never_logs_at_trace_whatever_is_asked() {
        for (verbose, rust_log) in [
            (3, None),
            (0, Some("trace")),
            (0, Some("ureq_proto=trace")),
            (0, Some("ureq_proto::util=trace")),
            (3, Some("ureq_proto::util=trace,ureq_proto=trace")),
        ] {
            assert!(!enabled(verbose, rust_log, "ureq_proto::util", log::Level::Trace), "{verbose} {rust_log:?}");
            assert!(!enabled(verbose, rust_log, "ureq_proto", log::Level::Trace), "{verbose} {rust_log:?}");
            assert!(enabled(verbose, rust_log, "ureq_proto::util", log::Level::Debug), "{verbose} {rust_log:?}");
        }
        assert!(enabled(3, None, "ureq::unversioned::resolver", log::Level::Trace), "other targets keep trace");
        assert!(enabled(3, None, "ureq_protocol", log::Level::Trace), "only that crate's targets are held back");
    }

    #[test]
    fn nothing_unless_asked() {
        for rust_log in [None, Some(""), Some("  "), Some("not a directive=")] {
            assert!(!enabled(0, rust_log, "rustls", log::Level::Error), "{rust_log:?}");
            assert!(!enabled(0, rust_log, "symphony_auth_core::driver::trace", log::Level::Error), "{rust_log:?}");
        }
    }

    #[test]
    fn verbose_sets_the_default_level_and_rust_log_keeps_its_targets() {
        let rust_log = Some("rustls=trace,debug");
        assert!(enabled(1, rust_log, "ureq", log::Level::Info));
        assert!(!enabled(1, rust_log, "ureq", log::Level::Debug), "-v over RUST_LOG's default level");
        assert!(enabled(1, rust_log, "rustls::client", log::Level::Trace), "RUST_LOG's target directive stays");

        assert!(enabled(2, None, "ureq", log::Level::Debug) && !enabled(2, None, "ureq", log::Level::Trace));
        assert!(enabled(0, Some("ureq=debug"), "ureq::pool", log::Level::Debug));
        assert!(!enabled(0, Some("ureq=debug"), "rustls", log::Level::Error), "RUST_LOG alone: only what it names");
    }

    #[test]
    fn verbose_shows_the_bots_logins() {
        let login = "symphony_auth_core::driver::trace";
        assert!(enabled(1, None, login, log::Level::Info) && !enabled(1, None, login, log::Level::Debug));
        assert!(enabled(0, Some("symphony_auth_core=debug"), login, log::Level::Debug));
    }
}
