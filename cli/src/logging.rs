//! Library diagnostics on stderr, as `RUST_LOG` and `-v` ask, through env_logger. The drivers' HTTP and TLS stacks
//! (ureq, ureq-proto, rustls) log through the `log` facade, which env_logger receives.
//!
//! One target is held back: at TRACE, ureq-proto hex-dumps every request it writes and every answer it reads
//! (session and key-manager token headers, login JWTs, `{"token": ...}` answers), and nothing turns that off in
//! ureq-proto itself. Its records at TRACE are dropped here whatever the filter says; DEBUG and above pass.

use log::{Level, LevelFilter, Log, Metadata, Record};

/// The target whose TRACE records hold request and answer bytes.
const DUMPING_TARGET: &str = "ureq_proto";

/// Installs the logger for the process: `RUST_LOG`'s directives, then `-v` as the default level when given (the
/// command line over the environment), nothing when neither is set.
pub(crate) fn init(verbose: u8, rust_log: Option<&str>) {
    let logger = logger(verbose, rust_log);
    log::set_max_level(logger.inner.filter());
    // Only fails when a logger is already installed, which nothing else in this process does.
    let _ = log::set_boxed_logger(Box::new(logger));
}

fn logger(verbose: u8, rust_log: Option<&str>) -> Capped {
    let mut builder = env_logger::Builder::new();
    builder.filter_level(LevelFilter::Off);
    if let Some(spec) = rust_log.filter(|spec| !spec.trim().is_empty()) {
        builder.parse_filters(spec);
    }
    let level = match verbose {
        0 => None,
        1 => Some(LevelFilter::Info),
        2 => Some(LevelFilter::Debug),
        _ => Some(LevelFilter::Trace),
    };
    if let Some(level) = level {
        // Replaces RUST_LOG's default level, keeps its per-target directives.
        builder.filter_level(level);
    }
    Capped { inner: builder.build() }
}

/// env_logger's logger without ureq-proto's TRACE records.
struct Capped {
    inner: env_logger::Logger,
}

fn held_back(metadata: &Metadata<'_>) -> bool {
    let target = metadata.target();
    let dumping = target.strip_prefix(DUMPING_TARGET).is_some_and(|rest| rest.is_empty() || rest.starts_with("::"));
    dumping && metadata.level() == Level::Trace
}

impl Log for Capped {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        !held_back(metadata) && self.inner.enabled(metadata)
    }

    fn log(&self, record: &Record<'_>) {
        if !held_back(record.metadata()) {
            self.inner.log(record);
        }
    }

    fn flush(&self) {
        self.inner.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enabled(logger: &Capped, target: &str, level: Level) -> bool {
        logger.enabled(&Metadata::builder().target(target).level(level).build())
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
            let capped = logger(verbose, rust_log);
            assert!(!enabled(&capped, "ureq_proto::util", Level::Trace), "{verbose} {rust_log:?}");
            assert!(!enabled(&capped, "ureq_proto", Level::Trace), "{verbose} {rust_log:?}");
            assert!(enabled(&capped, "ureq_proto::util", Level::Debug), "{verbose} {rust_log:?}: debug passes");
        }
        let capped = logger(3, None);
        assert!(enabled(&capped, "ureq::unversioned::resolver", Level::Trace), "other targets keep trace");
        assert!(enabled(&capped, "ureq_protocol", Level::Trace), "only that crate's targets are held back");
        assert_eq!(capped.inner.filter(), LevelFilter::Trace);
    }

    #[test]
    fn nothing_unless_asked() {
        for rust_log in [None, Some(""), Some("  ")] {
            let capped = logger(0, rust_log);
            assert_eq!(capped.inner.filter(), LevelFilter::Off, "{rust_log:?}");
            assert!(!enabled(&capped, "rustls", Level::Error));
        }
    }

    #[test]
    fn verbose_sets_the_default_level_and_rust_log_keeps_its_targets() {
        let capped = logger(1, Some("rustls=trace,debug"));
        assert!(enabled(&capped, "ureq", Level::Info));
        assert!(!enabled(&capped, "ureq", Level::Debug), "-v over RUST_LOG's default level");
        assert!(enabled(&capped, "rustls::client", Level::Trace), "RUST_LOG's target directive stays");

        let capped = logger(2, None);
        assert!(enabled(&capped, "ureq", Level::Debug) && !enabled(&capped, "ureq", Level::Trace));

        let capped = logger(0, Some("ureq=debug"));
        assert!(enabled(&capped, "ureq::pool", Level::Debug));
        assert!(!enabled(&capped, "rustls", Level::Error), "RUST_LOG alone: only what it names");
    }
}
