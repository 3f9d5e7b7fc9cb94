//! The log callback as C uses it: logins driven from canned answers through the ABI, the lines they trace, and no
//! secret in any of them.

use std::ffi::{CStr, c_char, c_void};
use std::ptr;
use std::sync::{Mutex, PoisonError};

use crate::*;

const KEY: &[u8] = include_bytes!("../../../../fixtures/keys/bot-2048.pkcs8.pem");
const POD: &str = "https://acme.symphony.com";
/// The username of these tests' logins alone: the other tests of this binary trace through the same subscriber.
const USER: &str = "log.callback.bot";
const NOW: u64 = 1_700_000_000_000;

/// The lines a callback received: level, target, message.
#[derive(Default)]
struct Captured(Mutex<Vec<(u32, String, String)>>);

/// Where lines go while a test only checks what a call returns.
static IGNORED: Captured = Captured(Mutex::new(Vec::new()));

impl Captured {
    /// The lines of this test's bot, taken out.
    fn take(&self) -> Vec<(u32, String, String)> {
        let mut lines = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        std::mem::take(&mut *lines).into_iter().filter(|(_, _, message)| message.contains(USER)).collect()
    }

    fn user_data(&self) -> *mut c_void {
        ptr::from_ref(self).cast_mut().cast()
    }
}

unsafe extern "C" fn capture(level: u32, target: *const c_char, message: *const c_char, user_data: *mut c_void) {
    // SAFETY: the library passes NUL-terminated text, and `user_data` is the `Captured` the test set, still alive.
    let (target, message, captured) =
        unsafe { (CStr::from_ptr(target), CStr::from_ptr(message), &*user_data.cast::<Captured>()) };
    let line = (level, target.to_str().unwrap().to_owned(), message.to_str().unwrap().to_owned());
    captured.0.lock().unwrap_or_else(PoisonError::into_inner).push(line);
}

/// Calls `symphony_auth_set_log_callback` from inside the callback, and keeps what it answered.
unsafe extern "C" fn reenter(_level: u32, _target: *const c_char, _message: *const c_char, user_data: *mut c_void) {
    // SAFETY: `user_data` is the `Mutex` the test set, still alive.
    let answers = unsafe { &*user_data.cast::<Mutex<Vec<SymphonyAuthStatus>>>() };
    // SAFETY: NULL turns logging off; nothing is dereferenced.
    let status = unsafe { symphony_auth_set_log_callback(None, ptr::null_mut(), 0) };
    answers.lock().unwrap_or_else(PoisonError::into_inner).push(status);
}

fn set(callback: SymphonyAuthLogCallback, user_data: *mut c_void, level: SymphonyAuthLogLevel) -> SymphonyAuthStatus {
    // SAFETY: the callbacks above are callable from any thread with the `user_data` each test gives them, which
    // outlives its use: every test turns its callback off before its data goes.
    unsafe { symphony_auth_set_log_callback(callback, user_data, level as u32) }
}

/// How the canned server answers a login request: by endpoint, the session login's status.
struct Script {
    session_status: u16,
    token: &'static str,
}

/// What a login through the ABI showed the program: the request bodies (the signed JWT among them), and the
/// tokens' generation, or none when it failed.
struct Login {
    bodies: Vec<String>,
    generation: Option<u64>,
}

fn text(view: SymphonyAuthBytes) -> String {
    // SAFETY: `view` comes from a handle the caller still holds, which owns `len` bytes at `ptr`.
    String::from_utf8(unsafe { std::slice::from_raw_parts(view.ptr, view.len) }.to_vec()).unwrap()
}

/// Drives `auth`'s next login to its end as a C program does, draining its events after every input.
fn login(auth: *mut SymphonyAuthAuthenticator, script: &Script) -> Login {
    let mut now = NOW;
    let mut pending = Vec::new();
    let mut bodies = Vec::new();
    // SAFETY: `auth` is live for the whole login, and every output is freed once, after its last use.
    unsafe {
        loop {
            let mut event = ptr::null_mut();
            assert_eq!(symphony_auth_authenticator_poll_event(auth, &mut event), SymphonyAuthStatus::Ok);
            if !event.is_null() {
                symphony_auth_event_free(event);
                continue;
            }
            let mut output = ptr::null_mut();
            assert_eq!(symphony_auth_authenticator_poll_output(auth, now, &mut output), SymphonyAuthStatus::Ok);
            let status = match symphony_auth_output_kind(output) {
                SymphonyAuthOutputKind::Sign => {
                    let mut signature = ptr::null_mut();
                    assert_eq!(symphony_auth_output_sign(output, &mut signature), SymphonyAuthStatus::Ok);
                    symphony_auth_authenticator_supply_signature(auth, signature, now)
                }
                SymphonyAuthOutputKind::Send => {
                    for index in 0..symphony_auth_output_request_count(output) {
                        let mut request = std::mem::MaybeUninit::uninit();
                        let status = symphony_auth_output_request(output, index, request.as_mut_ptr());
                        assert_eq!(status, SymphonyAuthStatus::Ok);
                        let request = request.assume_init();
                        bodies.push(text(request.body));
                        pending.push((request.id, request.endpoint));
                    }
                    SymphonyAuthStatus::Ok
                }
                SymphonyAuthOutputKind::AwaitAnswers => {
                    let (id, endpoint) = pending.remove(0);
                    let (status, body) = match endpoint {
                        SymphonyAuthEndpoint::RsaSession => {
                            (script.session_status, format!(r#"{{"token":"{}"}}"#, script.token))
                        }
                        _ => (200, r#"{"token":"km-token-canary"}"#.to_owned()),
                    };
                    symphony_auth_authenticator_handle_response(
                        auth,
                        id,
                        status,
                        ptr::null(),
                        0,
                        body.as_ptr(),
                        body.len(),
                        now,
                    )
                }
                SymphonyAuthOutputKind::WaitUntil => {
                    now = symphony_auth_output_wait_until(output);
                    SymphonyAuthStatus::Ok
                }
                SymphonyAuthOutputKind::Done => {
                    let mut tokens = ptr::null_mut();
                    let generation = (symphony_auth_output_tokens(output, &mut tokens) == SymphonyAuthStatus::Ok)
                        .then(|| symphony_auth_tokens_generation(tokens));
                    symphony_auth_tokens_free(tokens);
                    symphony_auth_output_free(output);
                    // The events of the login's end.
                    let mut event = ptr::null_mut();
                    while symphony_auth_authenticator_poll_event(auth, &mut event) == SymphonyAuthStatus::Ok
                        && !event.is_null()
                    {
                        symphony_auth_event_free(event);
                    }
                    return Login { bodies, generation };
                }
                other => panic!("unexpected output {other:?}"),
            };
            symphony_auth_output_free(output);
            assert_eq!(status, SymphonyAuthStatus::Ok);
        }
    }
}

fn authenticator() -> *mut SymphonyAuthAuthenticator {
    // SAFETY: every pointer is live or writable during its call; the config is freed once, at the end.
    unsafe {
        let config = symphony_auth_config_new();
        assert_eq!(symphony_auth_config_set_url(config, 1, POD.as_ptr(), POD.len()), SymphonyAuthStatus::Ok);
        assert_eq!(symphony_auth_config_set_username(config, USER.as_ptr(), USER.len()), SymphonyAuthStatus::Ok);
        assert_eq!(symphony_auth_config_set_rsa_key_pem(config, KEY.as_ptr(), KEY.len()), SymphonyAuthStatus::Ok);
        let mut auth = ptr::null_mut();
        assert_eq!(symphony_auth_authenticator_new(config, 11, &mut auth), SymphonyAuthStatus::Ok);
        symphony_auth_config_free(config);
        auth
    }
}

/// A login, a 401 on its tokens and the re-login, another 401 and a rejected re-login: every body sent.
fn logins_with_a_relogin_and_a_failure() -> Vec<String> {
    let auth = authenticator();
    let first = login(auth, &Script { session_status: 200, token: "session-token-canary-1" });
    assert_eq!(first.generation, Some(1));
    let unauthorized = |generation| {
        // SAFETY: `auth` is live; the out-parameters may be NULL.
        let status = unsafe {
            symphony_auth_authenticator_report_unauthorized(auth, generation, ptr::null_mut(), ptr::null_mut())
        };
        assert_eq!(status, SymphonyAuthStatus::Ok);
    };
    unauthorized(1);
    let second = login(auth, &Script { session_status: 200, token: "session-token-canary-2" });
    assert_eq!(second.generation, Some(2));
    unauthorized(2);
    let rejected = login(auth, &Script { session_status: 401, token: "never" });
    assert_eq!(rejected.generation, None);
    // SAFETY: `auth` is live and freed once.
    unsafe { symphony_auth_authenticator_free(auth) };
    [first, second, rejected].into_iter().flat_map(|login| login.bodies).collect()
}

/// Turns the callback off when dropped.
struct Off;

impl Drop for Off {
    fn drop(&mut self) {
        set(None, ptr::null_mut(), SymphonyAuthLogLevel::Off);
    }
}

fn line<'a>(lines: &'a [(u32, String, String)], message: &str) -> &'a (u32, String, String) {
    lines.iter().find(|(_, _, text)| text.contains(message)).unwrap_or_else(|| panic!("no {message:?} in {lines:#?}"))
}

/// Fails when a message holds a 16-character slice of a canary, a JWT's start or a run of 64 hex digits.
fn assert_no_secret(lines: &[(u32, String, String)], canaries: &[String]) {
    for (_, _, message) in lines {
        for canary in canaries {
            for window in canary.as_bytes().windows(16.min(canary.len())) {
                let window = std::str::from_utf8(window).unwrap();
                assert!(!message.contains(window), "{window:?} of a secret in: {message}");
            }
        }
        assert!(!message.contains("eyJ"), "a JWT in: {message}");
        let mut run = 0;
        for c in message.chars() {
            run = if c.is_ascii_hexdigit() { run + 1 } else { 0 };
            assert!(run < 64, "a 64-hex run in: {message}");
        }
    }
}

// One test: the callback is process-wide.
#[test]
fn the_callback_gets_each_login_line_by_line_and_no_secret() {
    let (first, second) = (Captured::default(), Captured::default());
    let answers = Mutex::new(Vec::<SymphonyAuthStatus>::new());
    // Dropped before the data above, even when an assertion fails: no callback is left with a dangling pointer.
    let _off = Off;

    assert_eq!(set(Some(capture), IGNORED.user_data(), SymphonyAuthLogLevel::Info), SymphonyAuthStatus::Ok);
    assert_eq!(set(None, ptr::null_mut(), SymphonyAuthLogLevel::Off), SymphonyAuthStatus::Ok);
    // SAFETY: nothing is dereferenced for a level that does not exist.
    let status = unsafe { symphony_auth_set_log_callback(Some(capture), IGNORED.user_data(), 6) };
    assert_eq!(status, SymphonyAuthStatus::InvalidArgument);

    assert_eq!(set(Some(capture), first.user_data(), SymphonyAuthLogLevel::Info), SymphonyAuthStatus::Ok);
    let bodies = logins_with_a_relogin_and_a_failure();
    let lines = first.take();

    let started = line(&lines, "login started");
    assert_eq!((started.0, started.1.as_str()), (SymphonyAuthLogLevel::Info as u32, "symphony_auth_core::trace"));
    let span = format!(r#"login{{username="{USER}" method="rsa" session_endpoint="{POD}/login/pubkey/authenticate""#);
    assert!(started.2.starts_with(&span), "{started:?}");
    assert!(!started.2.ends_with('\n'), "{started:?}");
    assert!(line(&lines, "logged in generation=1").2.contains(r#"key_manager="obtained""#), "{lines:#?}");
    let expired = line(&lines, "tokens refused with HTTP 401");
    assert_eq!(expired.0, SymphonyAuthLogLevel::Warn as u32);
    assert!(expired.2.contains("generation=1"), "{expired:?}");
    assert!(line(&lines, r#"login started reason="relogin""#).2.contains("attempt=1"), "{lines:#?}");
    line(&lines, "logged in generation=2");
    let failed = line(&lines, "login failed");
    assert_eq!(failed.0, SymphonyAuthLogLevel::Error as u32);
    assert!(failed.2.contains(r#"class="rejected""#) && failed.2.contains("status=401"), "{failed:?}");
    assert!(lines.iter().all(|(level, _, _)| *level <= SymphonyAuthLogLevel::Info as u32), "{lines:#?}");

    let key: String = std::str::from_utf8(KEY).unwrap().lines().filter(|l| !l.starts_with("-----")).collect();
    let jwts = bodies.iter().filter_map(|body| body.split('"').find(|part| part.starts_with("eyJ")));
    let mut canaries: Vec<String> = jwts.map(str::to_owned).collect();
    canaries.dedup();
    assert_eq!(canaries.len(), 1, "the same JWT (same key, same clock) in each login request: {bodies:?}");
    canaries.extend([key, "session-token-canary-1".into(), "session-token-canary-2".into(), "km-token-canary".into()]);
    assert_no_secret(&lines, &canaries);

    // A second call replaces the callback and the level; the first gets nothing more.
    assert_eq!(set(Some(capture), second.user_data(), SymphonyAuthLogLevel::Debug), SymphonyAuthStatus::Ok);
    let auth = authenticator();
    assert_eq!(login(auth, &Script { session_status: 200, token: "session-token-canary-3" }).generation, Some(1));
    let lines = second.take();
    assert_eq!(line(&lines, "simplified key delivery decision").0, SymphonyAuthLogLevel::Debug as u32);
    line(&lines, "logged in generation=1");
    assert!(first.take().is_empty(), "a replaced callback is not called");

    // Called from inside the callback, the call is refused rather than waiting for itself.
    let user_data = ptr::from_ref(&answers).cast_mut().cast();
    assert_eq!(set(Some(reenter), user_data, SymphonyAuthLogLevel::Info), SymphonyAuthStatus::Ok);
    // SAFETY: `auth` is live.
    assert_eq!(unsafe { symphony_auth_authenticator_refresh(auth, NOW, ptr::null_mut()) }, SymphonyAuthStatus::Ok);
    login(auth, &Script { session_status: 200, token: "session-token-canary-4" });
    let answers = std::mem::take(&mut *answers.lock().unwrap());
    assert!(!answers.is_empty() && answers.iter().all(|s| *s == SymphonyAuthStatus::Usage), "{answers:?}");

    // NULL turns it off.
    assert_eq!(set(Some(capture), second.user_data(), SymphonyAuthLogLevel::Trace), SymphonyAuthStatus::Ok);
    assert_eq!(set(None, ptr::null_mut(), SymphonyAuthLogLevel::Trace), SymphonyAuthStatus::Ok);
    // SAFETY: `auth` is live.
    assert_eq!(unsafe { symphony_auth_authenticator_refresh(auth, NOW, ptr::null_mut()) }, SymphonyAuthStatus::Ok);
    login(auth, &Script { session_status: 200, token: "session-token-canary-5" });
    assert!(second.take().is_empty(), "no callback after NULL");
    // SAFETY: `auth` is live and freed once.
    unsafe { symphony_auth_authenticator_free(auth) };
}
