//! The C program's log callback: the core's `tracing` spans and events (a span per login, retries, 401s,
//! re-logins, cool-down refusals, failures by class), each formatted as one line of text by tracing-subscriber's
//! `fmt` layer and handed to the callback with its level and target.
//!
//! Process-wide, as `tracing`'s global subscriber is: the first call that sets a callback installs a subscriber for
//! the process (this library's copy of `tracing`, which no other library shares), whose level filter and callback
//! later calls replace. The core traces as a machine's events are polled, so lines are written on the thread of the
//! `symphony_auth_*_poll_event` (or `_poll_output`, for a caller refused during a cool-down) call, before it
//! returns.

use std::ffi::{c_char, c_void};

use crate::abi::{SymphonyAuthStatus, guard};

/// How much the log callback receives: the most detailed level passed on (`max_level`), and the level of each
/// line (`level`, never `OFF`).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum SymphonyAuthLogLevel {
    /// Nothing (as `max_level`).
    Off = 0,
    /// A login failed.
    Error = 1,
    /// A retry scheduled, tokens refused with a 401, a caller refused while a failed login cools down.
    Warn = 2,
    /// A login started, a login succeeded, a logout.
    Info = 3,
    /// The simplified-key-delivery decision.
    Debug = 4,
    /// Everything.
    Trace = 5,
}

impl SymphonyAuthLogLevel {
    fn decode(value: u32) -> Option<Self> {
        Some(match value {
            0 => Self::Off,
            1 => Self::Error,
            2 => Self::Warn,
            3 => Self::Info,
            4 => Self::Debug,
            5 => Self::Trace,
            _ => return None,
        })
    }
}

/// Receives one line the library traced: `level` (a `SymphonyAuthLogLevel` code), `target` (the Rust module that
/// traced it, e.g. `symphony_auth_core::trace`), `message` (the event and the fields of the span it happened in,
/// e.g. `login{username="bot" method="rsa" ...}: logged in generation=1 ...`; no trailing newline) and the
/// `user_data` given with it. `target` and `message` are NUL-terminated UTF-8, valid only during the call: copy
/// what you keep. No message holds a token, a JWT, a key or a password.
///
/// It runs on the thread whose call traced, inside that call, and in a flight while your mutex is held: it must
/// not call into the same authenticator or flight, nor `symphony_auth_set_log_callback`. Several threads may call
/// it at once. What other handles trace while it runs is not passed on (so that it never recurses). It must return
/// normally (no `longjmp`, no C++ exception).
pub type SymphonyAuthLogCallback =
    Option<unsafe extern "C" fn(level: u32, target: *const c_char, message: *const c_char, user_data: *mut c_void)>;

/// Sets the process-wide log callback and the most detailed level it receives (a `SymphonyAuthLogLevel` code);
/// NULL (or `OFF`) turns logging off. A later call replaces callback, `user_data` and level at once; once it
/// returns, the previous callback is not running and is not called again (its `user_data` may be freed): it waits
/// for running calls of the callback, so do not call it holding a lock the callback takes.
///
/// Lines are traced as the machine's events are polled (`symphony_auth_*_poll_event`; a caller refused while a
/// failed login cools down, by the poll that refuses it): poll events after each input, as a driver should.
///
/// The first call with a callback installs this library's `tracing` subscriber for the process. Returns `OK`;
/// `INVALID_ARGUMENT` for a level outside `SymphonyAuthLogLevel`; `SUBSCRIBER_TAKEN` when something else in the
/// process already installed a global `tracing` subscriber into this library's copy of `tracing` (only Rust code
/// linked into the same library can), which stays in place (turning off then answers `OK`); `USAGE` when called
/// from inside the callback; `NOT_COMPILED`, whatever the arguments, when the library was built without its
/// `tracing` feature (the default has it). No message is kept: this call has no handle.
///
/// # Safety
/// Unless NULL, `callback` is a function of the type above that stays callable with `user_data`, from any thread,
/// until a later call replaces it. `user_data` is only passed to it, never read by the library.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn symphony_auth_set_log_callback(
    callback: SymphonyAuthLogCallback,
    user_data: *mut c_void,
    max_level: u32,
) -> SymphonyAuthStatus {
    guard(SymphonyAuthStatus::Internal, || {
        let Some(max_level) = SymphonyAuthLogLevel::decode(max_level) else {
            return SymphonyAuthStatus::InvalidArgument;
        };
        sink::set(callback, user_data, max_level)
    })
}

#[cfg(feature = "tracing")]
mod sink {
    use std::cell::Cell;
    use std::ffi::{CString, c_void};
    use std::io;
    use std::sync::{OnceLock, PoisonError, RwLock};

    use tracing::Metadata;
    use tracing_subscriber::filter::LevelFilter;
    use tracing_subscriber::fmt::MakeWriter;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::{Registry, reload};

    use super::{SymphonyAuthLogCallback, SymphonyAuthLogLevel};
    use crate::abi::SymphonyAuthStatus;

    type Callback = unsafe extern "C" fn(u32, *const std::ffi::c_char, *const std::ffi::c_char, *mut c_void);

    /// The C program's callback and the pointer it is given.
    struct Sink {
        callback: Callback,
        user_data: *mut c_void,
    }

    // SAFETY: `user_data` is never dereferenced here, only passed back to `callback`, and the caller of
    // `symphony_auth_set_log_callback` promises that the pair may be used from any thread, by several at once.
    unsafe impl Send for Sink {}
    // SAFETY: as for `Send`: the library only reads the two fields and calls `callback`.
    unsafe impl Sync for Sink {}

    /// The callback lines go to. Written under its lock so that a replaced callback is never called after the call
    /// that replaced it returns; read for the duration of each callback call.
    static SINK: RwLock<Option<Sink>> = RwLock::new(None);

    /// The installed subscriber's level filter, or why none could be installed. Set by the first call with a
    /// callback; a global subscriber cannot be taken back, so the outcome is kept for the life of the process.
    static SUBSCRIBER: OnceLock<Option<reload::Handle<LevelFilter, Registry>>> = OnceLock::new();

    thread_local! {
        /// Whether this thread is inside the callback: what it traces meanwhile is dropped, not passed on.
        static IN_CALLBACK: Cell<bool> = const { Cell::new(false) };
    }

    pub(super) fn set(
        callback: SymphonyAuthLogCallback,
        user_data: *mut c_void,
        max_level: SymphonyAuthLogLevel,
    ) -> SymphonyAuthStatus {
        if IN_CALLBACK.get() {
            // Replacing the callback waits for running calls to end, this one included.
            return SymphonyAuthStatus::Usage;
        }
        let sink =
            callback.filter(|_| max_level != SymphonyAuthLogLevel::Off).map(|callback| Sink { callback, user_data });
        if sink.is_none() && SUBSCRIBER.get().is_none_or(Option::is_none) {
            // Nothing of this library's is on to turn off.
            return SymphonyAuthStatus::Ok;
        }
        let Some(filter) = SUBSCRIBER.get_or_init(install) else {
            return SymphonyAuthStatus::SubscriberTaken;
        };
        let level = if sink.is_some() { level_filter(max_level) } else { LevelFilter::OFF };
        // Under the write lock, so that concurrent calls leave the callback and the level of the same call.
        let mut current = SINK.write().unwrap_or_else(PoisonError::into_inner);
        *current = sink;
        match filter.reload(level) {
            Ok(()) => SymphonyAuthStatus::Ok,
            // Only when the subscriber is gone, which a global one never is.
            Err(_) => SymphonyAuthStatus::Internal,
        }
    }

    /// Installs the global subscriber, logging nothing until `set` raises its level.
    fn install() -> Option<reload::Handle<LevelFilter, Registry>> {
        let (filter, handle) = reload::Layer::new(LevelFilter::OFF);
        // Level and target go to the callback as arguments; the time is the program's to add.
        let format = tracing_subscriber::fmt::layer()
            .with_writer(Lines)
            .with_ansi(false)
            .without_time()
            .with_level(false)
            .with_target(false);
        tracing::subscriber::set_global_default(Registry::default().with(filter).with(format)).ok().map(|()| handle)
    }

    fn level_filter(level: SymphonyAuthLogLevel) -> LevelFilter {
        match level {
            SymphonyAuthLogLevel::Off => LevelFilter::OFF,
            SymphonyAuthLogLevel::Error => LevelFilter::ERROR,
            SymphonyAuthLogLevel::Warn => LevelFilter::WARN,
            SymphonyAuthLogLevel::Info => LevelFilter::INFO,
            SymphonyAuthLogLevel::Debug => LevelFilter::DEBUG,
            SymphonyAuthLogLevel::Trace => LevelFilter::TRACE,
        }
    }

    fn level_code(level: tracing::Level) -> u32 {
        let level = match level {
            tracing::Level::ERROR => SymphonyAuthLogLevel::Error,
            tracing::Level::WARN => SymphonyAuthLogLevel::Warn,
            tracing::Level::INFO => SymphonyAuthLogLevel::Info,
            tracing::Level::DEBUG => SymphonyAuthLogLevel::Debug,
            tracing::Level::TRACE => SymphonyAuthLogLevel::Trace,
        };
        level as u32
    }

    /// Makes a [`Line`] per event, knowing its level and target.
    struct Lines;

    impl<'a> MakeWriter<'a> for Lines {
        type Writer = Line;

        fn make_writer(&'a self) -> Line {
            Line { level: tracing::Level::INFO, target: String::new(), text: Vec::new() }
        }

        fn make_writer_for(&'a self, metadata: &Metadata<'_>) -> Line {
            Line { level: *metadata.level(), target: metadata.target().to_owned(), text: Vec::new() }
        }
    }

    /// One formatted event, handed to the callback when the `fmt` layer is done with it (dropped).
    struct Line {
        level: tracing::Level,
        target: String,
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
            if self.text.is_empty() || IN_CALLBACK.get() {
                return;
            }
            let sink = SINK.read().unwrap_or_else(PoisonError::into_inner);
            let Some(sink) = sink.as_ref() else { return };
            let text = self.text.strip_suffix(b"\n").unwrap_or(&self.text);
            let (target, message) = (c_text(self.target.as_bytes()), c_text(text));
            IN_CALLBACK.set(true);
            // SAFETY: the caller of `symphony_auth_set_log_callback` promised that `callback` is callable with
            // `user_data` from any thread until replaced, and the read lock keeps it from being replaced meanwhile;
            // `target` and `message` are NUL-terminated and live until the call returns.
            unsafe { (sink.callback)(level_code(self.level), target.as_ptr(), message.as_ptr(), sink.user_data) };
            IN_CALLBACK.set(false);
        }
    }

    /// `bytes` as NUL-terminated UTF-8: invalid sequences and NULs (which would cut the text short) become U+FFFD.
    fn c_text(bytes: &[u8]) -> CString {
        let text = String::from_utf8_lossy(bytes).replace('\0', "\u{FFFD}");
        CString::new(text).unwrap_or_default()
    }
}

#[cfg(not(feature = "tracing"))]
mod sink {
    use std::ffi::c_void;

    use super::{SymphonyAuthLogCallback, SymphonyAuthLogLevel};
    use crate::abi::SymphonyAuthStatus;

    pub(super) fn set(
        _callback: SymphonyAuthLogCallback,
        _user_data: *mut c_void,
        _max_level: SymphonyAuthLogLevel,
    ) -> SymphonyAuthStatus {
        SymphonyAuthStatus::NotCompiled
    }
}

#[cfg(all(test, feature = "tracing"))]
mod tests;

#[cfg(all(test, not(feature = "tracing")))]
#[test]
fn without_the_feature_the_call_says_so() {
    // SAFETY: nothing is called or dereferenced.
    let status = unsafe { symphony_auth_set_log_callback(None, std::ptr::null_mut(), 3) };
    assert_eq!(status, SymphonyAuthStatus::NotCompiled);
}
