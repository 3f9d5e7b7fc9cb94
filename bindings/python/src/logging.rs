//! `install_logging()`: what the native side traces, into Python's `logging`. The core's spans and events (a
//! `login` span per login with its username, method, endpoints, attempt and generation; retries, 401s, failures by
//! class) and the `log` records of ureq and rustls go through one `tracing` subscriber: the `fmt` layer formats
//! each record as a line (spans and their fields first, no time, level or colour: Python's logging adds its own),
//! and its writer hands the line to the logger `symphony_auth.<target>` (the Rust target, `::` as `.`).
//!
//! Levels: ERROR, WARN, INFO and DEBUG are Python's; TRACE is 5 (named "TRACE" when the name is free). A level cap,
//! set from Python at install, keeps everything below it on the Rust side: no GIL, no formatting, so a bot whose
//! logs are off pays an atomic load per record. Above the cap, the Python logger's own level decides.
//!
//! One target is held back whatever the cap: at TRACE, ureq-proto hex-dumps every request it writes and every
//! answer it reads (token headers, login JWTs, `{"token": ...}` answers). Its records are refused by the
//! subscriber's filter, so the `log` bridge answers "disabled" for them and the blocking driver, which refuses to
//! send while that dump would be recorded, sends.
//!
//! Lock order: the core traces while a flight's lock is held, and the writer takes the GIL; so every entry point
//! of this crate that takes a lock the core traces under releases the GIL first (`py.detach`), and the order is
//! always lock, then GIL.

use pyo3::prelude::*;

/// The root of the loggers' names: `symphony_auth`, and a child per Rust target.
const ROOT: &str = "symphony_auth";

/// Python's number for TRACE: below DEBUG's 10, as the `log` crate and `tracing` order them.
const PY_TRACE: i32 = 5;

/// Routes what the native side traces to Python's `logging` (once per process; later calls only change the level)
/// and returns whether the bridge is in place. `level`: the lowest Python level to bridge (default: the effective
/// level of the `symphony_auth` logger now); records below it are dropped before they reach Python.
#[pyfunction]
#[pyo3(signature = (level = None))]
pub(crate) fn install_logging(py: Python<'_>, level: Option<i32>) -> PyResult<bool> {
    let logging = py.import("logging")?;
    if logging.call_method1("getLevelName", (PY_TRACE,))?.extract::<String>()? == format!("Level {PY_TRACE}") {
        logging.call_method1("addLevelName", (PY_TRACE, "TRACE"))?;
    }
    let level = match level {
        Some(level) => level,
        None => logging.call_method1("getLogger", (ROOT,))?.call_method0("getEffectiveLevel")?.extract()?,
    };
    Ok(py.detach(|| bridge::install(level)))
}

#[cfg(feature = "tracing")]
mod bridge {
    use std::io;
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU8, Ordering};

    use pyo3::prelude::*;
    use tracing::level_filters::LevelFilter;
    use tracing::subscriber::Interest;
    use tracing::{Event, Level, Metadata, Subscriber};
    use tracing_log::NormalizeEvent as _;
    use tracing_subscriber::fmt::format::Writer;
    use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
    use tracing_subscriber::layer::{Context, SubscriberExt as _};
    use tracing_subscriber::registry::LookupSpan;
    use tracing_subscriber::{Layer, Registry};

    use super::{PY_TRACE, ROOT};

    /// The crate whose TRACE records hold request and answer bytes.
    const DUMPING_TARGET: &str = "ureq_proto";

    /// Ends the Rust target at the start of a formatted line; no target holds it.
    const TAG: char = '\u{1}';

    /// The most verbose level bridged, as [`rank`] numbers it (0: nothing).
    static CAP: AtomicU8 = AtomicU8::new(0);

    /// Whether this module's subscriber is the process's.
    static INSTALLED: OnceLock<bool> = OnceLock::new();

    /// Sets the cap to Python `level`, installs the subscriber and the `log` bridge the first time, and returns
    /// whether the subscriber is this module's.
    pub(super) fn install(level: i32) -> bool {
        CAP.store(cap(level), Ordering::Relaxed);
        let installed = *INSTALLED.get_or_init(|| {
            // Fails only when the process has a subscriber (or a `log` logger) already; then it is left alone.
            let installed = tracing::subscriber::set_global_default(subscriber()).is_ok();
            if installed {
                let _ = tracing_log::LogTracer::init();
            }
            installed
        });
        // The macros' fast path reads the cap through the subscriber's level hint, cached until rebuilt.
        tracing::callsite::rebuild_interest_cache();
        installed
    }

    fn subscriber() -> impl Subscriber + Send + Sync {
        let format = tracing_subscriber::fmt::format().without_time().with_level(false).with_target(false);
        let output =
            tracing_subscriber::fmt::layer().with_ansi(false).event_format(Tagged(format)).with_writer(ToPython);
        Registry::default().with(Gate).with(output)
    }

    /// The cap for Python level `level`: a record passes when Python would log it at that level.
    fn cap(level: i32) -> u8 {
        match level {
            i32::MIN..=PY_TRACE => 5,
            6..=10 => 4,
            11..=20 => 3,
            21..=30 => 2,
            31..=40 => 1,
            _ => 0,
        }
    }

    fn rank(level: Level) -> u8 {
        match level {
            Level::ERROR => 1,
            Level::WARN => 2,
            Level::INFO => 3,
            Level::DEBUG => 4,
            Level::TRACE => 5,
        }
    }

    fn python_level(level: Level) -> i32 {
        match level {
            Level::ERROR => 40,
            Level::WARN => 30,
            Level::INFO => 20,
            Level::DEBUG => 10,
            Level::TRACE => PY_TRACE,
        }
    }

    /// The filter: the cap, and ureq-proto's dump held back.
    struct Gate;

    impl<S: Subscriber> Layer<S> for Gate {
        // The cap changes at run time: ask every time (an atomic load), never cache a callsite's answer.
        fn register_callsite(&self, _: &'static Metadata<'static>) -> Interest {
            Interest::sometimes()
        }

        fn enabled(&self, metadata: &Metadata<'_>, _: Context<'_, S>) -> bool {
            rank(*metadata.level()) <= CAP.load(Ordering::Relaxed) && !held_back(metadata)
        }

        fn max_level_hint(&self) -> Option<LevelFilter> {
            Some(match CAP.load(Ordering::Relaxed) {
                0 => LevelFilter::OFF,
                1 => LevelFilter::ERROR,
                2 => LevelFilter::WARN,
                3 => LevelFilter::INFO,
                4 => LevelFilter::DEBUG,
                _ => LevelFilter::TRACE,
            })
        }
    }

    fn held_back(metadata: &Metadata<'_>) -> bool {
        let target = metadata.target();
        let dumping = target.strip_prefix(DUMPING_TARGET).is_some_and(|rest| rest.is_empty() || rest.starts_with("::"));
        dumping && *metadata.level() == Level::TRACE
    }

    /// The `fmt` layer's format, with the record's target (a `log` record's own, not the bridge's) and [`TAG`] in
    /// front: the writer is given only the bridge's metadata, and needs the target for the logger's name.
    struct Tagged<F>(F);

    impl<S, N, F> FormatEvent<S, N> for Tagged<F>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
        N: for<'a> FormatFields<'a> + 'static,
        F: FormatEvent<S, N>,
    {
        fn format_event(
            &self,
            ctx: &FmtContext<'_, S, N>,
            mut writer: Writer<'_>,
            event: &Event<'_>,
        ) -> std::fmt::Result {
            let normalized = event.normalized_metadata();
            let target = normalized.as_ref().unwrap_or_else(|| event.metadata()).target();
            write!(writer, "{target}{TAG}")?;
            self.0.format_event(ctx, writer, event)
        }
    }

    /// Makes a [`Line`] per record.
    struct ToPython;

    impl<'a> MakeWriter<'a> for ToPython {
        type Writer = Line;

        fn make_writer(&'a self) -> Line {
            Line { level: Level::INFO, text: Vec::new() }
        }

        fn make_writer_for(&'a self, metadata: &Metadata<'_>) -> Line {
            Line { level: *metadata.level(), text: Vec::new() }
        }
    }

    /// One formatted record, logged to Python when the `fmt` layer is done with it.
    struct Line {
        level: Level,
        text: Vec<u8>,
    }

    impl io::Write for Line {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.text.extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Drop for Line {
        fn drop(&mut self) {
            if self.text.is_empty() {
                return;
            }
            let text = String::from_utf8_lossy(&self.text);
            let (target, message) = text.split_once(TAG).unwrap_or(("", &text));
            let message = message.trim_end_matches('\n');
            let name = logger_name(target);
            // Not while the interpreter shuts down: the record is dropped then.
            Python::try_attach(|py| {
                let logged = py
                    .import("logging")
                    .and_then(|logging| logging.call_method1("getLogger", (name,)))
                    .and_then(|logger| logger.call_method1("log", (python_level(self.level), message)));
                if let Err(error) = logged {
                    // Python's handlers report their own errors; this is for the rest (e.g. an interrupt).
                    error.write_unraisable(py, None);
                }
            });
        }
    }

    /// `symphony_auth.` and the Rust target with `::` as `.`: `symphony_auth.symphony_auth_core.trace`.
    fn logger_name(target: &str) -> String {
        if target.is_empty() { ROOT.to_owned() } else { format!("{ROOT}.{}", target.replace("::", ".")) }
    }
}

#[cfg(not(feature = "tracing"))]
mod bridge {
    /// Built without the `tracing` feature: nothing to install.
    pub(super) fn install(_level: i32) -> bool {
        false
    }
}
