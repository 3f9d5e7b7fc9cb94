//! What each feature switches: which signer a configuration file's key is loaded into, and what a PKCS#12
//! certificate does without `client-identity`. CI runs this file in several feature sets (see `.ci/run`).

use symphony_auth_core::ClientIdentity;

const CERT_PEM: &[u8] = include_bytes!("../../fixtures/certs/bot.pem");

#[test]
fn pem_client_identities_need_no_feature() {
    let identity = ClientIdentity::from_pem(CERT_PEM).unwrap();
    assert_eq!(identity.certificate_chain_der().len(), 1);
}

#[cfg(feature = "client-identity")]
#[test]
fn pkcs12_client_identities_come_with_client_identity() {
    let from_p12 = ClientIdentity::from_pkcs12(include_bytes!("../../fixtures/certs/bot.p12"), "changeit").unwrap();
    let from_pem = ClientIdentity::from_pem(CERT_PEM).unwrap();
    assert_eq!(from_p12.certificate_chain_der(), from_pem.certificate_chain_der());
}

#[cfg(feature = "bdk-config")]
mod config_file {
    use std::path::Path;

    use symphony_auth_core::{ConfigFileError, parse_bdk_config};

    fn read(path: &Path) -> std::io::Result<Vec<u8>> {
        Ok(match path.to_str() {
            Some("key.pem") => include_bytes!("../../fixtures/keys/bot-2048.pkcs8.pem").to_vec(),
            Some("bot.p12") => include_bytes!("../../fixtures/certs/bot.p12").to_vec(),
            _ => return Err(std::io::ErrorKind::NotFound.into()),
        })
    }

    #[cfg(any(feature = "rsa-signer", feature = "ring-signer", feature = "aws-lc-signer"))]
    #[test]
    fn a_configured_key_is_loaded_into_the_default_signer_when_both_are_compiled() {
        let settings = parse_bdk_config("host: h\nbot: {username: b, privateKey: {path: key.pem}}", &|_| None).unwrap();
        let loaded = settings.load(&mut read).unwrap();
        let symphony_auth_core::LoginMethod::Rsa(signer) = loaded.config.method() else { panic!("not an RSA login") };
        let expected = if cfg!(feature = "rsa-signer") {
            "RsaSigner"
        } else if cfg!(feature = "ring-signer") {
            "RingSigner"
        } else {
            "AwsLcSigner"
        };
        assert!(format!("{signer:?}").starts_with(expected), "{signer:?}");
    }

    #[cfg(not(any(feature = "rsa-signer", feature = "ring-signer", feature = "aws-lc-signer")))]
    #[test]
    fn without_a_signer_an_rsa_configuration_names_the_features_it_needs() {
        let settings = parse_bdk_config("host: h\nbot: {username: b, privateKey: {path: key.pem}}", &|_| None).unwrap();
        let error = settings.load(&mut read).unwrap_err().to_string();
        assert!(error.starts_with("`bot.privateKey`:") && error.contains("`rsa-signer`"), "{error}");
    }

    #[test]
    fn a_pkcs12_certificate_in_a_configuration_file_loads_or_names_the_missing_feature() {
        let settings =
            parse_bdk_config("host: h\nbot: {username: b, certificate: {path: bot.p12, password: changeit}}", &|_| {
                None
            })
            .unwrap();
        let result = settings.load(&mut read);
        if cfg!(feature = "client-identity") {
            assert!(result.unwrap().identity.is_some());
        } else {
            let error = result.unwrap_err();
            assert!(matches!(error, ConfigFileError::Identity { key: "bot.certificate", .. }), "{error:?}");
            assert!(error.to_string().contains("`client-identity` feature"), "{error}");
        }
    }
}
