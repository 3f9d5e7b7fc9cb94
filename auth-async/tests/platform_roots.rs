//! `BotBuilder::platform_roots`: the operating system's store is added to the built-in roots, not substituted.

mod common;

use common::{BOT, https_server, rsa_config};
use symphony_auth_async::{Bot, Error};
use symphony_auth_core::{AuthError, TransportKind};

#[tokio::test]
async fn platform_roots_build_and_log_in_over_https_with_the_fake_ca_as_an_extra_root() {
    let server = https_server(|_| {});
    // Debian has `/etc/ssl/certs`: the store is read and the bot builds.
    let bot = Bot::builder(rsa_config(server.rsa_endpoints()))
        .platform_roots()
        .extra_root_certificates_pem(server.ca_pem().as_bytes())
        .unwrap()
        .build()
        .unwrap();
    assert_eq!(bot.session_info().await.unwrap().username, BOT);
    let echo = bot.send(symphony_auth_core::echo(bot.config().endpoints(), "platform")).await.unwrap();
    assert_eq!(echo.status(), 200);
}

#[tokio::test]
async fn platform_roots_alone_do_not_trust_the_fake_ca() {
    let server = https_server(|_| {});
    let bot = Bot::builder(rsa_config(server.rsa_endpoints())).platform_roots().build().unwrap();
    match bot.tokens().await {
        Err(Error::Auth(AuthError::Transport { failure, .. })) => assert_eq!(failure.kind, TransportKind::Tls),
        other => panic!("expected a TLS failure, got {other:?}"),
    }
}
