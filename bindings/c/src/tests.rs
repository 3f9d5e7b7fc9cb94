//! The C ABI called from Rust the way C calls it: raw pointers, byte runs, status codes, messages.

use std::ptr;

use symphony_auth_core::{JwtSigner as _, RsaSigner};

use super::*;
use crate::abi::{Failure, Live, with_handle};

const KEY: &[u8] = include_bytes!("../../../fixtures/keys/bot-2048.pkcs8.pem");
const NOW: u64 = 1_700_000_000_000;
const POD: &str = "https://acme.symphony.com";
const CANARY: &str = "c4n4ry-s3cr3t-v4lu3";

/// The bytes a view shows.
fn shown(view: SymphonyAuthBytes) -> Vec<u8> {
    if view.ptr.is_null() {
        return Vec::new();
    }
    // SAFETY: every view these tests read comes from a handle they still hold, which owns `len` bytes at `ptr`.
    unsafe { std::slice::from_raw_parts(view.ptr, view.len) }.to_vec()
}

fn shown_text(view: SymphonyAuthBytes) -> String {
    String::from_utf8(shown(view)).unwrap()
}

/// Frees what it holds when dropped, as a C program must.
struct Owned<T>(*mut T, unsafe extern "C" fn(*mut T));

impl<T> Drop for Owned<T> {
    fn drop(&mut self) {
        // SAFETY: the pointer came from this ABI, with the free function of its type, and is freed once, here.
        unsafe { (self.1)(self.0) }
    }
}

fn new_config(setup: impl FnOnce(*mut SymphonyAuthConfig)) -> Owned<SymphonyAuthConfig> {
    let config = Owned(symphony_auth_config_new(), symphony_auth_config_free);
    assert!(!config.0.is_null());
    setup(config.0);
    config
}

fn rsa_config(config: *mut SymphonyAuthConfig) {
    // SAFETY: `config` is live; the slices outlive the calls.
    unsafe {
        assert_eq!(symphony_auth_config_set_url(config, 1, POD.as_ptr(), POD.len()), SymphonyAuthStatus::Ok);
        assert_eq!(symphony_auth_config_set_username(config, "bot.user".as_ptr(), 8), SymphonyAuthStatus::Ok);
        assert_eq!(symphony_auth_config_set_rsa_key_pem(config, KEY.as_ptr(), KEY.len()), SymphonyAuthStatus::Ok);
    }
}

fn authenticator(config: &Owned<SymphonyAuthConfig>) -> Owned<SymphonyAuthAuthenticator> {
    let mut auth = ptr::null_mut();
    // SAFETY: `config` is live and `auth` is a writable pointer.
    let status = unsafe { symphony_auth_authenticator_new(config.0, 7, &mut auth) };
    // SAFETY: `config` is live.
    assert_eq!(status, SymphonyAuthStatus::Ok, "{}", shown_text(unsafe { symphony_auth_config_last_error(config.0) }));
    Owned(auth, symphony_auth_authenticator_free)
}

fn poll(auth: &Owned<SymphonyAuthAuthenticator>, now: u64) -> Owned<SymphonyAuthOutput> {
    let mut output = ptr::null_mut();
    // SAFETY: `auth` is live and `output` is a writable pointer.
    assert_eq!(unsafe { symphony_auth_authenticator_poll_output(auth.0, now, &mut output) }, SymphonyAuthStatus::Ok);
    Owned(output, symphony_auth_output_free)
}

fn kind(output: &Owned<SymphonyAuthOutput>) -> SymphonyAuthOutputKind {
    // SAFETY: `output` is live.
    unsafe { symphony_auth_output_kind(output.0) }
}

fn sign(output: &Owned<SymphonyAuthOutput>) -> *mut SymphonyAuthSignature {
    let mut signature = ptr::null_mut();
    // SAFETY: `output` is live and `signature` is a writable pointer.
    assert_eq!(unsafe { symphony_auth_output_sign(output.0, &mut signature) }, SymphonyAuthStatus::Ok);
    signature
}

fn request(output: &Owned<SymphonyAuthOutput>, index: usize) -> (SymphonyAuthRequest, Vec<(String, String)>) {
    let mut view = std::mem::MaybeUninit::uninit();
    // SAFETY: `output` is live and `view` is writable.
    assert_eq!(unsafe { symphony_auth_output_request(output.0, index, view.as_mut_ptr()) }, SymphonyAuthStatus::Ok);
    // SAFETY: the call succeeded, so it wrote the whole struct.
    let view = unsafe { view.assume_init() };
    // SAFETY: `headers` points at `header_count` headers owned by the live output.
    let headers = unsafe { std::slice::from_raw_parts(view.headers, view.header_count) };
    let headers = headers.iter().map(|h| (shown_text(h.name), shown_text(h.value))).collect();
    (view, headers)
}

fn answer(auth: &Owned<SymphonyAuthAuthenticator>, id: u64, status: u16, body: &str) -> SymphonyAuthStatus {
    // SAFETY: `auth` is live; `body` outlives the call.
    unsafe {
        symphony_auth_authenticator_handle_response(auth.0, id, status, ptr::null(), 0, body.as_ptr(), body.len(), NOW)
    }
}

fn auth_error(auth: &Owned<SymphonyAuthAuthenticator>) -> String {
    // SAFETY: `auth` is live.
    shown_text(unsafe { symphony_auth_authenticator_last_error(auth.0) })
}

fn tokens_of(output: &Owned<SymphonyAuthOutput>) -> Owned<SymphonyAuthTokens> {
    let mut tokens = ptr::null_mut();
    // SAFETY: `output` is live and `tokens` is a writable pointer.
    assert_eq!(unsafe { symphony_auth_output_tokens(output.0, &mut tokens) }, SymphonyAuthStatus::Ok);
    Owned(tokens, symphony_auth_tokens_free)
}

/// Logs in with key-manager policy `Never`; returns the tokens' output.
fn logged_in(auth: &Owned<SymphonyAuthAuthenticator>) -> Owned<SymphonyAuthOutput> {
    let sign_output = poll(auth, NOW);
    assert_eq!(kind(&sign_output), SymphonyAuthOutputKind::Sign);
    // SAFETY: `auth` is live; the signature is handed over.
    let status = unsafe { symphony_auth_authenticator_supply_signature(auth.0, sign(&sign_output), NOW) };
    assert_eq!(status, SymphonyAuthStatus::Ok);
    let send = poll(auth, NOW);
    assert_eq!(kind(&send), SymphonyAuthOutputKind::Send);
    let (view, _) = request(&send, 0);
    assert_eq!(answer(auth, view.id, 200, r#"{"token":"session-1"}"#), SymphonyAuthStatus::Ok);
    let done = poll(auth, NOW);
    assert_eq!(kind(&done), SymphonyAuthOutputKind::Done);
    done
}

fn never_km(config: *mut SymphonyAuthConfig) {
    rsa_config(config);
    // SAFETY: `config` is live.
    assert_eq!(unsafe { symphony_auth_config_set_key_manager_policy(config, 3) }, SymphonyAuthStatus::Ok);
}

#[test]
fn an_rsa_login_runs_through_the_abi_to_tokens_and_headers() {
    let config = new_config(rsa_config);
    let auth = authenticator(&config);
    let sign_output = poll(&auth, NOW);
    assert_eq!(kind(&sign_output), SymphonyAuthOutputKind::Sign);
    // SAFETY: `sign_output` is live.
    assert_eq!(unsafe { symphony_auth_output_exp(sign_output.0) }, 1_700_000_240);
    // SAFETY: `auth` is live; the signature is handed over.
    let status = unsafe { symphony_auth_authenticator_supply_signature(auth.0, sign(&sign_output), NOW) };
    assert_eq!(status, SymphonyAuthStatus::Ok);

    let send = poll(&auth, NOW);
    assert_eq!(kind(&send), SymphonyAuthOutputKind::Send);
    // SAFETY: `send` is live.
    assert_eq!(unsafe { symphony_auth_output_request_count(send.0) }, 2, "parallel login: session and key manager");
    let (session, headers) = request(&send, 0);
    assert_eq!(session.endpoint, SymphonyAuthEndpoint::RsaSession);
    assert!(!session.uses_client_certificate);
    assert_eq!(shown_text(session.method), "POST");
    assert_eq!(shown_text(session.url), format!("{POD}/login/pubkey/authenticate"));
    assert!(headers.contains(&("content-type".into(), "application/json".into())), "{headers:?}");
    assert!(shown_text(session.body).starts_with(r#"{"token":"eyJ"#));
    let (km, _) = request(&send, 1);
    assert_eq!(km.endpoint, SymphonyAuthEndpoint::RsaKeyManager);

    assert_eq!(answer(&auth, session.id, 200, r#"{"token":"session-1"}"#), SymphonyAuthStatus::Ok);
    assert_eq!(kind(&poll(&auth, NOW)), SymphonyAuthOutputKind::AwaitAnswers);
    assert_eq!(answer(&auth, km.id, 200, r#"{"token":"km-1"}"#), SymphonyAuthStatus::Ok);
    let done = poll(&auth, NOW);
    assert_eq!(kind(&done), SymphonyAuthOutputKind::Done);
    let tokens = tokens_of(&done);
    // SAFETY: `tokens` is live.
    unsafe {
        assert_eq!(symphony_auth_tokens_generation(tokens.0), 1);
        assert_eq!(shown_text(symphony_auth_tokens_session(tokens.0)), "session-1");
        assert_eq!(shown_text(symphony_auth_tokens_key_manager(tokens.0)), "km-1");
        assert!(symphony_auth_tokens_authorization(tokens.0).ptr.is_null());
        assert!(!symphony_auth_tokens_simplified_key_delivery(tokens.0));
    }

    // Agent calls carry both tokens.
    let url = format!("{POD}/agent/v4/stream");
    let mut list = ptr::null_mut();
    // SAFETY: `tokens` is live; `url` outlives the call; `list` is a writable pointer.
    let status = unsafe { symphony_auth_tokens_authorize(tokens.0, url.as_ptr(), url.len(), &mut list) };
    assert_eq!(status, SymphonyAuthStatus::Ok);
    let list = Owned(list, symphony_auth_header_list_free);
    // SAFETY: `list` is live.
    let added: Vec<(String, String)> = (0..unsafe { symphony_auth_header_list_count(list.0) })
        .map(|i| {
            // SAFETY: `list` is live.
            let header = unsafe { symphony_auth_header_list_get(list.0, i) };
            (shown_text(header.name), shown_text(header.value))
        })
        .collect();
    assert_eq!(added, [("sessiontoken".into(), "session-1".into()), ("keymanagertoken".into(), "km-1".into())]);

    // A 401 on generation 1 expires it; a second one finds it expired already.
    let (mut outcome, mut current) = (SymphonyAuthUnauthorized::Other, 0);
    // SAFETY: `auth` is live; the out-parameters are writable.
    unsafe {
        assert_eq!(
            symphony_auth_authenticator_report_unauthorized(auth.0, 1, &mut outcome, &mut current),
            SymphonyAuthStatus::Ok
        );
        assert_eq!(outcome, SymphonyAuthUnauthorized::Expired);
        assert_eq!(
            symphony_auth_authenticator_report_unauthorized(auth.0, 1, &mut outcome, ptr::null_mut()),
            SymphonyAuthStatus::Ok
        );
        assert_eq!(outcome, SymphonyAuthUnauthorized::AlreadyExpired);
        assert_eq!(
            symphony_auth_authenticator_report_unauthorized(auth.0, 9, ptr::null_mut(), ptr::null_mut()),
            SymphonyAuthStatus::Usage
        );
    }
    assert_eq!(auth_error(&auth), "generation 9 was never issued (the latest is 1)");
    let mut state = std::mem::MaybeUninit::uninit();
    // SAFETY: `auth` is live; `state` is writable.
    assert_eq!(unsafe { symphony_auth_authenticator_state(auth.0, state.as_mut_ptr()) }, SymphonyAuthStatus::Ok);
    // SAFETY: the call succeeded, so it wrote the whole struct.
    let state = unsafe { state.assume_init() };
    assert_eq!((state.kind, state.generation, state.logging_in), (SymphonyAuthStateKind::Expired, 1, false));
    // The tokens handle outlives the machine's current tokens.
    drop(auth);
    // SAFETY: `tokens` is live.
    assert_eq!(shown_text(unsafe { symphony_auth_tokens_session(tokens.0) }), "session-1");
}

#[test]
fn a_signature_made_elsewhere_gives_the_same_request_as_one_made_here() {
    let config = new_config(never_km);
    let bodies: Vec<Vec<u8>> = [false, true]
        .into_iter()
        .map(|elsewhere| {
            let auth = authenticator(&config);
            let output = poll(&auth, NOW);
            let signature = if elsewhere {
                // SAFETY: `output` is live.
                let input = shown(unsafe { symphony_auth_output_signing_input(output.0) });
                let raw = RsaSigner::from_pem(KEY).unwrap().sign_rs512(&input).unwrap();
                let mut signature = ptr::null_mut();
                // SAFETY: `output` is live; `raw` outlives the call; `signature` is a writable pointer.
                let status =
                    unsafe { symphony_auth_output_with_signature(output.0, raw.as_ptr(), raw.len(), &mut signature) };
                assert_eq!(status, SymphonyAuthStatus::Ok);
                signature
            } else {
                sign(&output)
            };
            // A JWT is signed once.
            let mut again = ptr::null_mut();
            // SAFETY: `output` is live and `again` is a writable pointer.
            assert_eq!(unsafe { symphony_auth_output_sign(output.0, &mut again) }, SymphonyAuthStatus::Usage);
            assert!(again.is_null());
            // SAFETY: `auth` is live; the signature is handed over.
            unsafe { symphony_auth_authenticator_supply_signature(auth.0, signature, NOW) };
            let send = poll(&auth, NOW);
            shown(request(&send, 0).0.body)
        })
        .collect();
    assert_eq!(bodies[0], bodies[1]);
}

#[test]
fn a_rejected_login_reads_as_codes_an_event_and_a_message() {
    let config = new_config(never_km);
    let auth = authenticator(&config);
    let output = poll(&auth, NOW);
    // SAFETY: `auth` is live; the signature is handed over.
    unsafe { symphony_auth_authenticator_supply_signature(auth.0, sign(&output), NOW) };
    let id = request(&poll(&auth, NOW), 0).0.id;
    assert_eq!(answer(&auth, id, 401, r#"{"message":"Invalid JWT"}"#), SymphonyAuthStatus::Ok);
    let done = poll(&auth, NOW);
    // SAFETY: `done` is live.
    let error = unsafe { symphony_auth_output_error(done.0) };
    assert_eq!(error.error_class, SymphonyAuthErrorClass::Rejected);
    assert_eq!((error.endpoint, error.status), (SymphonyAuthEndpoint::RsaSession, 401));
    assert_eq!(shown_text(error.server_message), "Invalid JWT");
    assert!(shown_text(error.message).contains("rejected bot \"bot.user\": HTTP 401"), "{}", shown_text(error.message));
    let mut tokens = ptr::null_mut();
    // SAFETY: `done` is live and `tokens` is a writable pointer.
    assert_eq!(unsafe { symphony_auth_output_tokens(done.0, &mut tokens) }, SymphonyAuthStatus::Usage);

    let mut kinds = Vec::new();
    loop {
        let mut event = ptr::null_mut();
        // SAFETY: `auth` is live and `event` is a writable pointer.
        assert_eq!(unsafe { symphony_auth_authenticator_poll_event(auth.0, &mut event) }, SymphonyAuthStatus::Ok);
        if event.is_null() {
            break;
        }
        let event = Owned(event, symphony_auth_event_free);
        // SAFETY: `event` is live.
        let info = unsafe { symphony_auth_event_info(event.0) };
        if info.kind == SymphonyAuthEventKind::LoginFailed {
            assert_eq!(info.error.error_class, SymphonyAuthErrorClass::Rejected);
            assert_eq!(info.cool_down_ms, 1000);
        }
        kinds.push(info.kind);
    }
    assert_eq!(kinds, [SymphonyAuthEventKind::LoginStarted, SymphonyAuthEventKind::LoginFailed]);
}

#[test]
fn bad_arguments_are_status_codes_with_messages_naming_the_argument() {
    let config = new_config(|_| ());
    let c = config.0;
    let message = || {
        // SAFETY: `c` is live.
        shown_text(unsafe { symphony_auth_config_last_error(c) })
    };
    // SAFETY: `c` is live; every slice outlives its call.
    unsafe {
        assert_eq!(
            symphony_auth_config_set_username(ptr::null_mut(), ptr::null(), 0),
            SymphonyAuthStatus::NullArgument
        );
        assert_eq!(symphony_auth_config_set_username(c, ptr::null(), 3), SymphonyAuthStatus::NullArgument);
        assert_eq!(message(), "`username` is NULL but its length is 3");
        assert_eq!(symphony_auth_config_set_username(c, [0xff, 0xfe].as_ptr(), 2), SymphonyAuthStatus::InvalidArgument);
        assert_eq!(message(), "`username` is not UTF-8");
        assert_eq!(symphony_auth_config_set_url(c, 9, POD.as_ptr(), POD.len()), SymphonyAuthStatus::InvalidArgument);
        assert_eq!(message(), "9 is not a valid `SymphonyAuthService` code");
        assert_eq!(symphony_auth_config_set_url(c, 1, "ftp://x".as_ptr(), 7), SymphonyAuthStatus::Config);
        assert!(message().contains("the scheme must be `https` or `http`"), "{}", message());
        // A successful call clears the message.
        assert_eq!(symphony_auth_config_set_url(c, 1, POD.as_ptr(), POD.len()), SymphonyAuthStatus::Ok);
        assert_eq!(message(), "");
        let mut auth = ptr::null_mut();
        assert_eq!(symphony_auth_authenticator_new(c, 0, &mut auth), SymphonyAuthStatus::Config);
        assert!(auth.is_null());
        assert!(message().starts_with("no username"), "{}", message());
        assert_eq!(symphony_auth_config_set_retry(c, 0, 500, 2.0, 1000, 0.0), SymphonyAuthStatus::Config);
        assert_eq!(message(), "invalid retry setting max_attempts: must be between 1 and 100");
    }

    let config = new_config(never_km);
    let auth = authenticator(&config);
    drop(poll(&auth, NOW));
    assert_eq!(answer(&auth, 99, 200, "{}"), SymphonyAuthStatus::Usage);
    assert_eq!(auth_error(&auth), "no outstanding request has id 99");
    assert_eq!(answer(&auth, 1, 1000, "{}"), SymphonyAuthStatus::InvalidArgument);
    assert_eq!(auth_error(&auth), "status 1000 is not 100..=999");
    let header = SymphonyAuthHeader {
        name: SymphonyAuthBytes::of(b"bad name"),
        value: SymphonyAuthBytes::of(CANARY.as_bytes()),
    };
    // SAFETY: `auth` is live; `header` and its bytes outlive the call.
    let status =
        unsafe { symphony_auth_authenticator_handle_response(auth.0, 1, 200, &header, 1, ptr::null(), 0, NOW) };
    assert_eq!(status, SymphonyAuthStatus::InvalidArgument);
    assert_eq!(auth_error(&auth), "headers[0]: the name is not a valid HTTP header name");
    // SAFETY: `auth` is live; the detail outlives the call.
    let status = unsafe { symphony_auth_authenticator_handle_failure(auth.0, 1, 0, "x".as_ptr(), 1, NOW) };
    assert_eq!(status, SymphonyAuthStatus::InvalidArgument);
    let output = poll(&auth, NOW);
    let mut view = std::mem::MaybeUninit::uninit();
    // SAFETY: `output` is live; `view` is writable.
    let status = unsafe { symphony_auth_output_request(output.0, 0, view.as_mut_ptr()) };
    assert_eq!(status, SymphonyAuthStatus::InvalidArgument, "a SIGN output has no requests");
    // SAFETY: `output` is live.
    let message = unsafe { symphony_auth_output_last_error(output.0) };
    assert_eq!(shown_text(message), "request index 0 is out of range: the output has 0");
}

#[test]
fn no_message_shows_a_key_a_token_or_a_url_query() {
    let pem = format!("-----BEGIN PRIVATE KEY-----\n{CANARY}\n-----END PRIVATE KEY-----\n");
    let config = new_config(|c| {
        // SAFETY: `c` is live; `pem` outlives the call.
        let status = unsafe { symphony_auth_config_set_rsa_key_pem(c, pem.as_ptr(), pem.len()) };
        assert_eq!(status, SymphonyAuthStatus::Config);
    });
    // SAFETY: `config` is live.
    let message = shown_text(unsafe { symphony_auth_config_last_error(config.0) });
    assert!(message.contains("malformed") && !message.contains(CANARY), "{message}");

    let bdk = format!(
        "host: acme.symphony.com\nbot:\n  username: bot\n  certificate:\n    path: x.p12\n    password: 12345\nx: {CANARY}\n"
    );
    // SAFETY: `config` is live; `bdk` outlives the call.
    let status = unsafe { symphony_auth_config_load_bdk_text(config.0, bdk.as_ptr(), bdk.len()) };
    assert_eq!(status, SymphonyAuthStatus::Config);
    // SAFETY: `config` is live.
    let message = shown_text(unsafe { symphony_auth_config_last_error(config.0) });
    assert!(message.contains("bot.certificate.password") && !message.contains("12345"), "{message}");

    let config = new_config(never_km);
    let auth = authenticator(&config);
    let tokens = tokens_of(&logged_in(&auth));
    let url = format!("https://evil.example/pod?token={CANARY}");
    let mut list = ptr::null_mut();
    // SAFETY: `tokens` is live; `url` outlives the call; `list` is a writable pointer.
    let status = unsafe { symphony_auth_tokens_authorize(tokens.0, url.as_ptr(), url.len(), &mut list) };
    assert_eq!(status, SymphonyAuthStatus::Usage);
    assert!(list.is_null());
    // SAFETY: `tokens` is live.
    let message = shown_text(unsafe { symphony_auth_tokens_last_error(tokens.0) });
    assert!(message.contains("https://evil.example/pod") && !message.contains(CANARY), "{message}");
    assert!(!message.contains("session-1"), "{message}");
}

#[test]
fn a_bdk_file_configures_the_authenticator() {
    let dir = std::env::temp_dir().join(format!("symphony-auth-c-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = format!("{}/../../fixtures/keys/bot-2048.pkcs1.pem", env!("CARGO_MANIFEST_DIR"));
    let file = dir.join("config.yaml");
    std::fs::write(
        &file,
        format!("host: acme.symphony.com\nbot:\n  username: file.bot\n  privateKey:\n    path: {key}\n"),
    )
    .unwrap();
    let path = file.to_str().unwrap();
    let config = new_config(|c| {
        // SAFETY: `c` is live; `path` outlives the call.
        assert_eq!(unsafe { symphony_auth_config_load_bdk_file(c, path.as_ptr(), path.len()) }, SymphonyAuthStatus::Ok);
    });
    let auth = authenticator(&config);
    let output = poll(&auth, NOW);
    // SAFETY: `output` is live.
    let input = shown_text(unsafe { symphony_auth_output_signing_input(output.0) });
    assert!(input.starts_with("eyJhbGciOiJSUzUxMiIsInR5cCI6IkpXVCJ9."), "{input}");
    std::fs::remove_dir_all(&dir).unwrap();

    let missing = dir.join("missing.yaml");
    let missing = missing.to_str().unwrap();
    // SAFETY: `config` is live; `missing` outlives the call.
    let status = unsafe { symphony_auth_config_load_bdk_file(config.0, missing.as_ptr(), missing.len()) };
    assert_eq!(status, SymphonyAuthStatus::Config);
    // SAFETY: `config` is live.
    let message = shown_text(unsafe { symphony_auth_config_last_error(config.0) });
    assert!(message.starts_with("cannot read the configuration file"), "{message}");
}

#[test]
fn a_flight_shares_one_login_between_callers() {
    let config = new_config(never_km);
    // SAFETY: the authenticator handle is handed over to the flight.
    let flight =
        Owned(unsafe { symphony_auth_flight_new(authenticator(&config).into_raw()) }, symphony_auth_flight_free);
    assert!(!flight.0.is_null());
    let join = |want: u32, generation: u64| {
        let mut caller = ptr::null_mut();
        // SAFETY: `flight` is live and `caller` is a writable pointer.
        let status = unsafe { symphony_auth_flight_join(flight.0, want, generation, &mut caller) };
        assert_eq!(status, SymphonyAuthStatus::Ok);
        caller
    };
    let step = |caller: *mut SymphonyAuthCaller| {
        let mut output = ptr::null_mut();
        // SAFETY: `flight` and `caller` are live; `output` is a writable pointer.
        assert_eq!(unsafe { symphony_auth_flight_poll(flight.0, caller, NOW, &mut output) }, SymphonyAuthStatus::Ok);
        Owned(output, symphony_auth_output_free)
    };
    let leave = |caller: *mut SymphonyAuthCaller| {
        let mut wake = true;
        // SAFETY: `flight` is live; the caller is handed over.
        assert_eq!(unsafe { symphony_auth_flight_leave(flight.0, caller, NOW, &mut wake) }, SymphonyAuthStatus::Ok);
        wake
    };

    let (leader, follower) = (join(1, 0), join(1, 0));
    let signing = step(leader);
    assert_eq!(kind(&signing), SymphonyAuthOutputKind::Sign);
    assert_eq!(kind(&step(follower)), SymphonyAuthOutputKind::Follow);
    // SAFETY: `flight` is live; the signature is handed over.
    unsafe { symphony_auth_flight_supply_signature(flight.0, sign(&signing), NOW) };
    let send = step(leader);
    let id = request(&send, 0).0.id;
    let body = r#"{"token":"shared"}"#;
    // SAFETY: `flight` is live; `body` outlives the call.
    let status = unsafe {
        symphony_auth_flight_handle_response(flight.0, id, 200, ptr::null(), 0, body.as_ptr(), body.len(), NOW)
    };
    assert_eq!(status, SymphonyAuthStatus::Ok);
    let led = step(leader);
    assert_eq!(kind(&led), SymphonyAuthOutputKind::Done);
    // SAFETY: `led` is live.
    assert!(unsafe { symphony_auth_output_wake_followers(led.0) });
    let followed = step(follower);
    // SAFETY: `followed` is live.
    assert!(!unsafe { symphony_auth_output_wake_followers(followed.0) });
    // SAFETY: both token handles are live.
    unsafe {
        assert_eq!(shown_text(symphony_auth_tokens_session(tokens_of(&followed).0)), "shared");
        assert_eq!(symphony_auth_tokens_generation(tokens_of(&led).0), 1);
    }
    assert!(!leave(leader));
    assert!(!leave(follower));

    // Two 401s on generation 1: one new login, led by the first; a leader that leaves hands it over.
    let (first, second) = (join(3, 1), join(3, 1));
    assert_eq!(kind(&step(first)), SymphonyAuthOutputKind::Sign);
    assert_eq!(kind(&step(second)), SymphonyAuthOutputKind::Follow);
    assert!(leave(first), "the leader left: the followers must be woken");
    assert_eq!(kind(&step(second)), SymphonyAuthOutputKind::Sign);
    assert!(leave(second));
    let mut caller = ptr::null_mut();
    // SAFETY: `flight` is live and `caller` is a writable pointer.
    assert_eq!(unsafe { symphony_auth_flight_join(flight.0, 3, 5, &mut caller) }, SymphonyAuthStatus::Usage);
    // SAFETY: `flight` is live.
    let message = unsafe { symphony_auth_flight_last_error(flight.0) };
    assert_eq!(shown_text(message), "generation 5 was never issued (the latest is 1)");
}

impl<T> Owned<T> {
    fn into_raw(self) -> *mut T {
        let raw = self.0;
        std::mem::forget(self);
        raw
    }
}

#[test]
fn a_panic_is_caught_at_the_boundary_and_breaks_only_its_handle() {
    let config = new_config(rsa_config);
    // SAFETY: `config` is live and used by nothing else during the call.
    let status = with_handle(unsafe { Live::new(config.0) }, |_| -> Result<(), Failure> { panic!("payload-7d1") });
    assert_eq!(status, SymphonyAuthStatus::Internal);
    // SAFETY: `config` is live.
    let message = shown_text(unsafe { symphony_auth_config_last_error(config.0) });
    assert!(message.starts_with("internal error:") && !message.contains("payload-7d1"), "{message}");
    // SAFETY: `config` is live.
    assert_eq!(unsafe { symphony_auth_config_set_parallel_login(config.0, false) }, SymphonyAuthStatus::Internal);
    let other = new_config(rsa_config);
    drop(authenticator(&other));
}

#[test]
fn null_handles_give_codes_and_empty_values() {
    // SAFETY: NULL is accepted by every one of these.
    unsafe {
        symphony_auth_config_free(ptr::null_mut());
        symphony_auth_authenticator_free(ptr::null_mut());
        symphony_auth_flight_free(ptr::null_mut());
        symphony_auth_output_free(ptr::null_mut());
        symphony_auth_tokens_free(ptr::null_mut());
        symphony_auth_event_free(ptr::null_mut());
        symphony_auth_signature_free(ptr::null_mut());
        symphony_auth_header_list_free(ptr::null_mut());
        symphony_auth_caller_free(ptr::null_mut());
        assert!(symphony_auth_flight_new(ptr::null_mut()).is_null());
        assert_eq!(symphony_auth_output_kind(ptr::null()), SymphonyAuthOutputKind::None);
        assert_eq!(symphony_auth_event_info(ptr::null()).kind, SymphonyAuthEventKind::None);
        assert!(symphony_auth_tokens_session(ptr::null()).ptr.is_null());
        assert!(symphony_auth_authenticator_last_error(ptr::null()).ptr.is_null());
        let mut output = ptr::null_mut();
        assert_eq!(
            symphony_auth_authenticator_poll_output(ptr::null_mut(), NOW, &mut output),
            SymphonyAuthStatus::NullArgument
        );
        // A signature handed to a NULL authenticator is freed all the same (ASan would see a leak).
        assert_eq!(
            symphony_auth_authenticator_supply_signature(ptr::null_mut(), ptr::null_mut(), NOW),
            SymphonyAuthStatus::NullArgument
        );
    }
    assert_eq!(shown_text(symphony_auth_version()), symphony_auth_core::USER_AGENT_VALUE);
}
