//! When Rust code linked into the library installed a global `tracing` subscriber first, setting a log callback
//! answers `SUBSCRIBER_TAKEN` and leaves that subscriber in place. Its own test binary: the subscriber is global.
#![cfg(feature = "tracing")]
// The C ABI is called as C calls it, which takes `unsafe`, as in the crate itself (lib.rs says why).
#![allow(unsafe_code)]

use std::ffi::{c_char, c_void};
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};

use symphony_auth::{SymphonyAuthLogLevel, SymphonyAuthStatus, symphony_auth_set_log_callback};

static CALLED: AtomicBool = AtomicBool::new(false);

unsafe extern "C" fn record(_: u32, _: *const c_char, _: *const c_char, _: *mut c_void) {
    CALLED.store(true, Ordering::SeqCst);
}

#[test]
fn another_global_subscriber_is_reported_and_kept() {
    tracing::subscriber::set_global_default(tracing::subscriber::NoSubscriber::default()).unwrap();
    for _ in 0..2 {
        let level = SymphonyAuthLogLevel::Info as u32;
        // SAFETY: `record` is callable from any thread; `user_data` is not used.
        let status = unsafe { symphony_auth_set_log_callback(Some(record), ptr::null_mut(), level) };
        assert_eq!(status, SymphonyAuthStatus::SubscriberTaken);
    }
    tracing::error!("an event for whichever subscriber is installed");
    assert!(!CALLED.load(Ordering::SeqCst), "the callback was installed after all");
    // Turning off what was never on is not an error.
    // SAFETY: NULL: nothing is called.
    let status = unsafe { symphony_auth_set_log_callback(None, ptr::null_mut(), 0) };
    assert_eq!(status, SymphonyAuthStatus::Ok);
    assert!(tracing::dispatcher::get_default(|dispatch| dispatch.is::<tracing::subscriber::NoSubscriber>()));
}
