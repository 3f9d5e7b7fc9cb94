#!/usr/bin/env python3
"""Regenerates conformance/login-vectors.json, independently of any implementation of symphony-auth.

Every expected value is written here by hand from the protocol (spec/PROTOCOL.md in the project's shared notes),
except the JWT signatures, which come from the `openssl` command line: RS512 (RSASSA-PKCS1-v1_5 with SHA-512) is
deterministic, so a fixed key, username and time give one exact JWT. Run from anywhere:

    python3 conformance/generate-login-vectors.py          # rewrites the file
    python3 conformance/generate-login-vectors.py --check  # exits 1 if the file is not what this script writes

Needs python3 (standard library only) and the `openssl` command (1.1 or 3.x).
"""

import base64
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "conformance" / "login-vectors.json"

# `<version>` in a header value stands for the implementation's own version.
USER_AGENT = "symphony-auth/<version>"
JOSE_HEADER = {"alg": "RS512", "typ": "JWT"}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def compact_json(value) -> str:
    """JSON as the implementation writes it: no spaces, keys sorted, non-ASCII kept as UTF-8."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def openssl_sign(key: Path, message: bytes) -> bytes:
    with tempfile.NamedTemporaryFile() as data:
        data.write(message)
        data.flush()
        return subprocess.run(
            ["openssl", "dgst", "-sha512", "-sign", str(key), data.name],
            check=True,
            capture_output=True,
        ).stdout


def openssl_verify(key: Path, message: bytes, signature: bytes) -> None:
    """Checks the signature against the public half, so that a wrong key file is caught here."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "m").write_bytes(message)
        (tmp / "s").write_bytes(signature)
        public = subprocess.run(
            ["openssl", "pkey", "-in", str(key), "-pubout"], check=True, capture_output=True
        ).stdout
        (tmp / "p").write_bytes(public)
        subprocess.run(
            ["openssl", "dgst", "-sha512", "-verify", str(tmp / "p"), "-signature", str(tmp / "s"), str(tmp / "m")],
            check=True,
            capture_output=True,
        )


def login_jwt(name, key, username, now_unix_ms, lifetime_secs):
    exp = now_unix_ms // 1000 + lifetime_secs
    signing_input = f"{b64url(compact_json(JOSE_HEADER).encode())}.{b64url(compact_json({'sub': username, 'exp': exp}).encode())}"
    signature = openssl_sign(ROOT / key, signing_input.encode())
    openssl_verify(ROOT / key, signing_input.encode(), signature)
    return {
        "name": name,
        "key": key,
        "username": username,
        "now_unix_ms": now_unix_ms,
        "lifetime_secs": lifetime_secs,
        "signing_input": signing_input,
        "jwt": f"{signing_input}.{b64url(signature)}",
    }


def extension_app_and_common_jwt(json_headers, plain_headers):
    """E1–E4 (extension apps) and A5 (Common JWT): requests and the reading of their answers."""
    app_jwt = login_jwt("app-2048", "fixtures/keys/bot-2048.pkcs8.pem", "my-app", 1_700_000_000_000, 240)
    app_token = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
    answer = {"appId": "my-app", "appToken": app_token, "symphonyToken": "sym-0123456789", "expireAt": 1539636528288}

    def without(key):
        return compact_json({k: v for k, v in answer.items() if k != key})

    extension_app = {
        "app_id": "my-app",
        "app_token": app_token,
        "app_jwt": app_jwt,
        "endpoints": {"pod": "https://acme.symphony.com", "session_auth": "https://acme-api.symphony.com"},
        "requests": [
            {
                "name": "E1-rsa-extension-app",
                "credential": "rsa",
                "method": "POST",
                "uri": "https://acme.symphony.com/login/v1/pubkey/app/authenticate/extensionApp",
                "headers": json_headers,
                "body": compact_json({"appToken": app_token, "authToken": app_jwt["jwt"]}),
            },
            {
                "name": "E2-certificate-extension-app",
                "credential": "certificate",
                "method": "POST",
                "uri": "https://acme-api.symphony.com/sessionauth/v1/authenticate/extensionApp",
                "headers": json_headers,
                "body": compact_json({"appToken": app_token}),
            },
            {
                "name": "E3-pod-certificate",
                "credential": "rsa",
                "method": "GET",
                "uri": "https://acme.symphony.com/pod/v1/podcert",
                "headers": plain_headers,
                "body": "",
            },
            {
                "name": "E4-app-pod-certificate",
                "credential": "certificate",
                "method": "GET",
                "uri": "https://acme-api.symphony.com/sessionauth/v1/app/pod/certificate",
                "headers": plain_headers,
                "body": "",
            },
        ],
        # Answers to E1/E2 for `app_id` and `app_token`: the pod must echo both.
        "responses": [
            {"status": 200, "body": compact_json(answer), "outcome": "tokens", "symphony_token": "sym-0123456789",
             "expire_at_ms": 1539636528288},
            {"status": 200, "body": compact_json({**answer, "expireAt": "1539636528288"}), "outcome": "tokens",
             "symphony_token": "sym-0123456789", "expire_at_ms": 1539636528288},
            {"status": 200, "body": compact_json({**answer, "appId": "other"}), "outcome": "app_id_mismatch"},
            {"status": 200, "body": compact_json({**answer, "appToken": "zzzz"}), "outcome": "app_token_mismatch"},
            {"status": 200, "body": without("symphonyToken"), "outcome": "protocol", "problem": "MissingToken",
             "field": "symphonyToken"},
            {"status": 200, "body": without("expireAt"), "outcome": "protocol", "problem": "MissingToken",
             "field": "expireAt"},
            {"status": 200, "body": compact_json({**answer, "symphonyToken": ""}), "outcome": "protocol",
             "problem": "EmptyToken", "field": "symphonyToken"},
            {"status": 200, "body": "<html>", "outcome": "protocol", "problem": "NotJson"},
            {"status": 401, "body": "{\"code\":401,\"message\":\"Invalid app\"}", "outcome": "rejected"},
            {"status": 400, "body": "", "outcome": "rejected"},
            {"status": 403, "body": "", "outcome": "rejected"},
            {"status": 500, "body": "", "outcome": "status"},
        ],
    }
    now_s = 1_700_000_000
    access_claims = b64url(compact_json({"exp": now_s + 100, "sub": "13056700580915"}).encode())
    access_jwt = f"eyJhbGciOiJSUzI1NiJ9.{access_claims}.c2ln"
    common_jwt = {
        "session_token": "s3ss10n-token",
        "base_url": "https://acme.symphony.com",
        "requests": [
            {
                "name": "A5-access-token",
                "scope": "profile-manager",
                "method": "POST",
                "uri": "https://acme.symphony.com/login/idm/tokens?scope=profile-manager",
                "headers": {**plain_headers, "sessiontoken": "s3ss10n-token"},
                "body": "",
            },
            {
                "name": "A5-access-token-no-scope",
                "scope": "",
                "method": "POST",
                "uri": "https://acme.symphony.com/login/idm/tokens?scope=",
                "headers": {**plain_headers, "sessiontoken": "s3ss10n-token"},
                "body": "",
            },
        ],
        # Answers to A5 at `now_unix_ms` with `leeway_ms`: the expiry is the earlier of the JWT's `exp` and
        # now + `expires_in`; the token is refreshed from `refresh_at_ms` (expiry minus the leeway) on.
        "now_unix_ms": now_s * 1000,
        "leeway_ms": 30000,
        "responses": [
            {"status": 200, "body": compact_json({"token_type": "Bearer", "expires_in": 3600, "access_token": access_jwt}),
             "outcome": "token", "token": access_jwt, "expires_at_ms": (now_s + 100) * 1000,
             "refresh_at_ms": (now_s + 70) * 1000},
            {"status": 200, "body": compact_json({"token_type": "Bearer", "expires_in": 60, "access_token": "Bearer " + access_jwt}),
             "outcome": "token", "token": access_jwt, "expires_at_ms": (now_s + 60) * 1000,
             "refresh_at_ms": (now_s + 30) * 1000},
            {"status": 200, "body": compact_json({"expires_in": 120, "access_token": "opaque-token"}),
             "outcome": "token", "token": "opaque-token", "expires_at_ms": (now_s + 120) * 1000,
             "refresh_at_ms": (now_s + 90) * 1000},
            {"status": 200, "body": compact_json({"token_type": "Bearer", "access_token": "opaque-token"}),
             "outcome": "no_expiry"},
            {"status": 200, "body": compact_json({"expires_in": 5}), "outcome": "protocol", "problem": "MissingToken"},
            {"status": 200, "body": "<html>", "outcome": "protocol", "problem": "NotJson"},
            {"status": 403, "body": "", "outcome": "status"},
        ],
    }
    return extension_app, common_jwt


def main() -> int:
    jwts = [
        login_jwt("rsa-2048-pkcs8", "fixtures/keys/bot-2048.pkcs8.pem", "bot.user", 1_700_000_000_123, 240),
        login_jwt("rsa-4096-pkcs1", "fixtures/keys/bot-4096.pkcs1.pem", "bot.user@acme", 1_700_000_000_999, 300),
        # A username that JSON must escape (quote, backslash) and one that is not ASCII.
        login_jwt(
            "rsa-2048-escaped-username",
            "fixtures/keys/bot-2048.pkcs1.pem",
            'bot "quoted" \\ user/é',
            1_700_000_001_000,
            1,
        ),
        # An app's JWT (OBO, O1): the same format, with the app id as `sub`.
        login_jwt("rsa-2048-app", "fixtures/keys/bot-2048.pkcs8.pem", "my-app", 1_700_000_000_000, 240),
    ]
    by_name = {jwt["name"]: jwt["jwt"] for jwt in jwts}
    json_headers = {"accept": "application/json", "content-type": "application/json", "user-agent": USER_AGENT}
    plain_headers = {"accept": "application/json", "user-agent": USER_AGENT}
    requests = [
        {
            "name": "rsa-session-login",
            "base_url": "https://acme.symphony.com",
            "endpoint": "RsaSession",
            "jwt_from": "rsa-2048-pkcs8",
            "method": "POST",
            "uri": "https://acme.symphony.com/login/pubkey/authenticate",
            "headers": json_headers,
            "body": compact_json({"token": by_name["rsa-2048-pkcs8"]}),
        },
        {
            "name": "rsa-key-manager-login",
            "base_url": "http://km.acme:8444/ctx/",
            "endpoint": "RsaKeyManager",
            "jwt_from": "rsa-2048-pkcs8",
            "method": "POST",
            "uri": "http://km.acme:8444/ctx/relay/pubkey/authenticate",
            "headers": json_headers,
            "body": compact_json({"token": by_name["rsa-2048-pkcs8"]}),
        },
        {
            "name": "rsa-session-login-escaped-username",
            "base_url": "https://acme.symphony.com/",
            "endpoint": "RsaSession",
            "jwt_from": "rsa-2048-escaped-username",
            "method": "POST",
            "uri": "https://acme.symphony.com/login/pubkey/authenticate",
            "headers": json_headers,
            "body": compact_json({"token": by_name["rsa-2048-escaped-username"]}),
        },
        {
            "name": "certificate-session-login",
            "base_url": "acme-api.symphony.com",
            "endpoint": "CertificateSession",
            "method": "POST",
            "uri": "https://acme-api.symphony.com/sessionauth/v1/authenticate",
            "headers": plain_headers,
            "body": "",
        },
        {
            "name": "certificate-key-manager-login",
            "base_url": "https://km.acme",
            "endpoint": "CertificateKeyManager",
            "method": "POST",
            "uri": "https://km.acme/keyauth/v1/authenticate",
            "headers": plain_headers,
            "body": "",
        },
        {
            "name": "agent-version",
            "base_url": "https://agent.acme:8443/ctx",
            "endpoint": "AgentVersion",
            "method": "GET",
            "uri": "https://agent.acme:8443/ctx/agent/v1/info",
            "headers": plain_headers,
            "body": "",
        },
    ]
    # OBO (O1-O6) and logout (S2): the app session and the session to end travel in `sessionToken`.
    pod, session_auth = "https://acme.symphony.com", "https://acme-api.symphony.com:8444"
    app_session = "app-session-token"
    with_app_session = dict(plain_headers, sessiontoken=app_session)
    obo_requests = [
        {
            "name": "rsa-app-login",
            "endpoint": "RsaAppSession",
            "jwt_from": "rsa-2048-app",
            "method": "POST",
            "uri": f"{pod}/login/pubkey/app/authenticate",
            "headers": json_headers,
            "body": compact_json({"token": by_name["rsa-2048-app"]}),
        },
        {
            "name": "rsa-obo-by-user-id",
            "endpoint": "RsaOboUserId",
            "user": {"user_id": 12345},
            "app_session": app_session,
            "method": "POST",
            "uri": f"{pod}/login/pubkey/app/user/12345/authenticate",
            "headers": with_app_session,
            "body": "",
        },
        {
            "name": "rsa-obo-by-username-encoded",
            "endpoint": "RsaOboUsername",
            "user": {"username": "jane doe/x?y"},
            "app_session": app_session,
            "method": "POST",
            "uri": f"{pod}/login/pubkey/app/username/jane%20doe%2Fx%3Fy/authenticate",
            "headers": with_app_session,
            "body": "",
        },
        {
            "name": "certificate-app-login",
            "endpoint": "CertificateAppSession",
            "method": "POST",
            "uri": f"{session_auth}/sessionauth/v1/app/authenticate",
            "headers": plain_headers,
            "body": "",
        },
        {
            "name": "certificate-obo-by-user-id",
            "endpoint": "CertificateOboUserId",
            "user": {"user_id": 12345},
            "app_session": app_session,
            "method": "POST",
            "uri": f"{session_auth}/sessionauth/v1/app/user/12345/authenticate",
            "headers": with_app_session,
            "body": "",
        },
        {
            "name": "certificate-obo-by-username",
            "endpoint": "CertificateOboUsername",
            "user": {"username": "j.doe"},
            "app_session": app_session,
            "method": "POST",
            "uri": f"{session_auth}/sessionauth/v1/app/username/j.doe/authenticate",
            "headers": with_app_session,
            "body": "",
        },
    ]
    logout = {
        "session": "session-to-end",
        "method": "POST",
        "uri": f"{session_auth}/sessionauth/v1/logout",
        "headers": dict(plain_headers, sessiontoken="session-to-end"),
        "body": "",
    }
    # An answer to the OBO step `endpoint` (the app step before it answered with a token), with one attempt
    # allowed: `token`, `not_installed` (401/403 at the user step), `unknown_user` (404), `rejected`, `protocol`,
    # or `unavailable` (a retryable status with no attempt left).
    obo_responses = [
        {"endpoint": "RsaOboUserId", "status": 200, "body": "{\"name\":\"sessionToken\",\"token\":\"obo-1\"}", "outcome": "token", "token": "obo-1"},
        {"endpoint": "CertificateOboUserId", "status": 200, "body": "{\"sessionToken\":\"obo-2\"}", "outcome": "token", "token": "obo-2"},
        {"endpoint": "CertificateOboUsername", "status": 200, "body": "{\"token\":\"obo-3\"}", "outcome": "protocol", "problem": "MissingToken"},
        {"endpoint": "RsaOboUsername", "status": 401, "body": "", "outcome": "not_installed"},
        {"endpoint": "RsaOboUserId", "status": 403, "body": "{\"code\":403,\"message\":\"forbidden\"}", "outcome": "not_installed"},
        {"endpoint": "CertificateOboUsername", "status": 403, "body": "", "outcome": "not_installed"},
        {"endpoint": "CertificateOboUserId", "status": 404, "body": "{\"code\":404,\"message\":\"User not found\"}", "outcome": "unknown_user"},
        {"endpoint": "CertificateOboUserId", "status": 400, "body": "", "outcome": "rejected"},
        {"endpoint": "RsaAppSession", "status": 200, "body": "{\"token\":\"app\"}", "outcome": "token", "token": "app"},
        {"endpoint": "RsaAppSession", "status": 401, "body": "", "outcome": "rejected"},
        {"endpoint": "CertificateAppSession", "status": 403, "body": "", "outcome": "rejected"},
        {"endpoint": "RsaOboUserId", "status": 503, "body": "", "outcome": "unavailable"},
    ]
    # An answer to S2: `ok` ends the session; `error` does not.
    logout_responses = [
        {"status": 200, "body": "{\"message\":\"Logout successful\"}", "outcome": "ok"},
        {"status": 204, "body": "", "outcome": "ok"},
        {"status": 400, "body": "{\"code\":400,\"message\":\"bad\"}", "outcome": "error"},
        {"status": 401, "body": "", "outcome": "error"},
        {"status": 403, "body": "", "outcome": "error"},
        {"status": 500, "body": "", "outcome": "error"},
    ]
    skd = [
        {"claims": {"sub": "1234567890", "canUseSimplifiedKeyDelivery": True}, "skd": True},
        {
            "claims": {
                "exp": 1641308278,
                "sub": "13056700580915",
                "ext_pod_id": 190,
                "policy_id": "app",
                "entitlements": "",
            },
            "skd": False,
        },
        {"claims": {"sub": "123", "canUseSimplifiedKeyDelivery": "yes"}, "skd": False},
        {"claims": {"sub": "123", "canUseSimplifiedKeyDelivery": False}, "skd": False},
        {"token": "only.two", "skd": False},
        {"token": "invalid.jwt.value", "skd": False},
        {"token": "a.b.c.d", "skd": False},
    ]
    # Answers to an agent's `GET /agent/v1/info`: only agents from 24.12 on deliver keys without the key manager.
    agent_versions = [
        {"status": 200, "version": version, "supports_skd": supports}
        for version, supports in [
            ("Agent-24.12.0", True),
            ("Agent-24.13.0", True),
            ("Agent-25.0.0", True),
            ("Agent-24.12.1-815-Linux-4.14", True),
            ("Agent-24.11.0", False),
            ("Agent-23.15.0", False),
            ("Agent-2.55.0-SNAPSHOT-Linux-4.4.86+", False),
            ("Agent-24.10.1-815-Linux-4.14", False),
            ("Agent-24.12", False),
            ("unknown", False),
            ("", False),
        ]
    ] + [
        {"status": 404, "version": "Agent-25.0.0", "supports_skd": False},
        {"status": 500, "version": "Agent-25.0.0", "supports_skd": False},
        {"status": 200, "body": "{}", "supports_skd": False},
        {"status": 200, "body": "{\"version\":null}", "supports_skd": False},
        {"status": 200, "body": "not json", "supports_skd": False},
    ]
    # A login answer classified by a machine whose retry policy is the one below, answered at `now_unix_ms`.
    now_ms = 1_445_412_480_000  # Wed, 21 Oct 2015 07:28:00 GMT
    login_responses = [
        {
            "status": 200,
            "body": "{\"name\":\"sessionToken\",\"token\":\"abc\",\"authorizationToken\":\"Bearer eyJ\"}",
            "outcome": "token",
            "token": "abc",
        },
        {"status": 200, "body": "{\"token\":\"Bearer xyz\"}", "outcome": "token", "token": "xyz"},
        {"status": 200, "body": "{\"token\":\"\"}", "outcome": "protocol", "problem": "EmptyToken"},
        {"status": 200, "body": "<html>", "outcome": "protocol", "problem": "NotJson"},
        {"status": 200, "body": "{\"sessionToken\":\"x\"}", "outcome": "protocol", "problem": "MissingToken"},
        {"status": 200, "body": "{\"token\":\"a b\"}", "outcome": "protocol", "problem": "TokenNotAHeaderValue"},
        {"status": 401, "body": "{\"code\":401,\"message\":\"Invalid JWT\"}", "outcome": "rejected"},
        {"status": 400, "body": "", "outcome": "rejected"},
        {"status": 403, "body": "", "outcome": "rejected"},
        {"status": 407, "body": "", "outcome": "rejected"},
        {"status": 503, "body": "", "headers": {"retry-after": "3"}, "outcome": "retry", "delay_ms": 3000},
        {"status": 429, "body": "", "headers": {"retry-after": "7"}, "outcome": "retry", "delay_ms": 7000},
        {
            "status": 429,
            "body": "",
            "headers": {"retry-after": "Wed, 21 Oct 2015 07:28:30 GMT"},
            "outcome": "retry",
            "delay_ms": 30000,
        },
        {
            "status": 503,
            "body": "",
            "headers": {"retry-after": "Wed, 21 Oct 2015 07:00:00 GMT"},
            "outcome": "retry",
            "delay_ms": 0,
        },
        {"status": 503, "body": "", "headers": {"retry-after": "86400"}, "outcome": "retry", "delay_ms": 300000},
        {"status": 503, "body": "", "headers": {"retry-after": "soon"}, "outcome": "retry", "delay_ms": 500},
        {"status": 429, "body": "", "outcome": "retry", "delay_ms": 500},
        {"status": 408, "body": "", "outcome": "retry", "delay_ms": 500},
        {"status": 502, "body": "", "outcome": "retry", "delay_ms": 500},
        {"status": 404, "body": "not here", "outcome": "protocol", "problem": "UnexpectedStatus"},
        {"status": 302, "body": "", "headers": {"location": "https://elsewhere"}, "outcome": "protocol", "problem": "UnexpectedStatus"},
    ]
    extension_app, common_jwt = extension_app_and_common_jwt(json_headers, plain_headers)
    vectors = {
        "description": (
            "Language-neutral conformance vectors for symphony-auth login requests, written by "
            "conformance/generate-login-vectors.py: JWT signatures by `openssl dgst -sha512 -sign` (RS512 is "
            "deterministic), everything else by hand from the protocol. Keys are test-only fixtures under "
            "fixtures/keys/. `<version>` in a header value is the implementation's version. Request `headers` are "
            "the complete set: no other header may be sent."
        ),
        "login_jwt": jwts,
        "requests": requests,
        "skd": skd,
        "agent_versions": agent_versions,
        "login_responses_policy": {
            "now_unix_ms": now_ms,
            "max_attempts": 10,
            "initial_interval_ms": 500,
            "multiplier": 2.0,
            "max_interval_ms": 300000,
            "jitter": 0.0,
        },
        "login_responses": login_responses,
        "obo_base_urls": {"pod": pod, "session_auth": session_auth},
        "obo_requests": obo_requests,
        "obo_responses": obo_responses,
        "logout": logout,
        "logout_responses": logout_responses,
        "extension_app": extension_app,
        "common_jwt": common_jwt,
    }
    text = json.dumps(vectors, indent=2, ensure_ascii=False) + "\n"
    if "--check" in sys.argv[1:]:
        if OUT.read_text(encoding="utf-8") != text:
            print(f"{OUT.relative_to(ROOT)} differs from what the script writes", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
