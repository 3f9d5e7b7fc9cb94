"""`Bot` (the blocking Rust driver) against the `fake-pod` binary: RSA and certificate logins, BDK files, 401
recovery, 50 threads on one generation, and the error taxonomy without secrets."""

from __future__ import annotations

import json
import threading
import time

import pytest

import symphony_auth as sa
from conftest import CERT_BOT, KEYS, RSA_BOT

JOIN_TIMEOUT_S = 60
FAIL_FAST = {"max_attempts": 1, "initial_interval_ms": 10, "multiplier": 2.0, "max_interval_ms": 100}


def rsa_bot(pod, **kwargs) -> sa.Bot:
    return sa.Bot.from_values(
        pod.urls["pod"],
        RSA_BOT,
        private_key_path=str(KEYS / "bot-2048.pkcs8.pem"),
        key_manager_url=pod.urls["key_manager"],
        agent_url=pod.urls["agent"],
        **kwargs,
    )


def host_port(url: str) -> dict:
    scheme, rest = url.split("://")
    host, port = rest.rsplit(":", 1)
    return {"scheme": scheme, "host": host, "port": int(port)}


def test_rsa_login_session_info_and_agent_call(rsa_pod):
    bot = rsa_bot(rsa_pod)
    tokens = bot.tokens()
    assert tokens.generation == 1
    assert tokens.session_token and tokens.key_manager_token
    assert bot.state() == {"type": "ready", "generation": 1, "refreshing": False}
    assert bot.session_info()["username"] == RSA_BOT
    echo = bot.send("POST", rsa_pod.urls["agent"] + "/agent/v1/util/echo", {"content-type": "application/json"}, "{}")
    assert echo.status == 200, echo.text
    assert bot.refresh().generation == 2


def test_rsa_login_from_a_bdk_file(rsa_pod, tmp_path):
    config = {
        **host_port(rsa_pod.urls["pod"]),
        "keyManager": host_port(rsa_pod.urls["key_manager"]),
        "agent": host_port(rsa_pod.urls["agent"]),
        "bot": {"username": RSA_BOT, "privateKey": {"path": str(KEYS / "bot-2048.pkcs8.pem")}},
    }
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    bot = sa.Bot.from_config(str(path))
    assert bot.username == RSA_BOT
    assert bot.session_info()["username"] == RSA_BOT


def cert_config(pod) -> dict:
    return {
        **host_port(pod.urls["pod"]),
        "sessionAuth": host_port(pod.urls["session_auth"]),
        "keyManager": host_port(pod.urls["key_auth"]),
        "agent": host_port(pod.urls["agent"]),
        "ssl": {"trustStore": {"path": pod.urls["ca_cert"]}},
        "bot": {"username": CERT_BOT, "certificate": {"path": str(pod.tls_dir / f"{CERT_BOT}.pem")}},
    }


def test_certificate_login_from_a_bdk_file(cert_pod, tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(json.dumps(cert_config(cert_pod)))  # YAML is a superset of JSON
    bot = sa.Bot.from_config(str(path))
    tokens = bot.tokens()
    assert tokens.generation == 1 and tokens.key_manager_token
    assert bot.session_info()["username"] == CERT_BOT


def test_certificate_login_from_values(cert_pod):
    urls = cert_pod.urls
    bot = sa.Bot.from_values(
        urls["pod"],
        CERT_BOT,
        client_certificate_path=str(cert_pod.tls_dir / f"{CERT_BOT}.pem"),
        session_auth_url=urls["session_auth"],
        key_manager_url=urls["key_auth"],
        agent_url=urls["agent"],
        trust_path=urls["ca_cert"],
    )
    assert bot.session_info()["username"] == CERT_BOT


def test_send_recovers_after_the_fake_expires_the_session(rsa_pod):
    bot = rsa_bot(rsa_pod)
    assert bot.tokens().generation == 1
    before = rsa_pod.logins()
    rsa_pod.expire()
    response = bot.send("GET", rsa_pod.urls["pod"] + "/pod/v2/sessioninfo")
    assert response.status == 200
    assert response.json()["username"] == RSA_BOT
    assert bot.tokens().generation == 2
    assert rsa_pod.logins() == before + 1


def test_fifty_threads_meeting_a_401_on_one_generation_cause_one_login(rsa_pod):
    bot = rsa_bot(rsa_pod)
    assert bot.tokens().generation == 1
    rsa_pod.expire()
    before = rsa_pod.logins()
    url = rsa_pod.urls["pod"] + "/pod/v2/sessioninfo"
    barrier = threading.Barrier(50, timeout=JOIN_TIMEOUT_S)
    statuses, errors = [], []

    def call():
        try:
            barrier.wait()
            statuses.append(bot.send("GET", url).status)
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=call) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(JOIN_TIMEOUT_S)
        assert not thread.is_alive(), "a thread is still sending"
    assert errors == []
    assert statuses == [200] * 50
    assert rsa_pod.logins() == before + 1
    assert bot.tokens().generation == 2


# -- errors: the Rust taxonomy, and no secret in any message or repr ----------------------------------------------

CANARY = "CANARYkeyMATERIAL0123456789"


def test_an_unknown_bot_is_rejected(rsa_pod):
    bot = sa.Bot.from_values(
        rsa_pod.urls["pod"],
        "nobody",
        private_key_path=str(KEYS / "bot-2048.pkcs8.pem"),
        key_manager_url=rsa_pod.urls["key_manager"],
    )
    with pytest.raises(sa.CredentialsRejectedError) as raised:
        bot.tokens()
    assert "rejected bot \"nobody\": HTTP 401" in str(raised.value)
    assert raised.value.details["class"] == "rejected"
    assert raised.value.details["status"] == 401
    assert isinstance(raised.value, sa.SymphonyAuthError)
    key = (KEYS / "bot-2048.pkcs8.pem").read_text()
    body = "".join(key.splitlines()[1:-1])
    assert body[:40] not in str(raised.value) and body[:40] not in repr(raised.value)


def test_a_bad_key_is_a_configuration_error_without_the_key():
    pem = f"-----BEGIN PRIVATE KEY-----\n{CANARY}\n-----END PRIVATE KEY-----\n".encode()
    with pytest.raises(sa.ConfigurationError) as raised:
        sa.Config("https://pod.example", "bot", private_key_pem=pem)
    assert CANARY not in str(raised.value) and CANARY not in repr(raised.value)


def test_a_bad_url_is_a_configuration_error():
    with pytest.raises(sa.ConfigurationError, match="pod"):
        sa.Config("not a url", "bot", certificate=True)


def test_no_credentials_is_a_configuration_error():
    with pytest.raises(sa.ConfigurationError, match="no credentials"):
        sa.Config("https://pod.example", "bot")


def test_an_unreachable_pod_is_unavailable():
    bot = sa.Bot.from_values(
        "http://127.0.0.1:9", "bot", private_key_path=str(KEYS / "bot-2048.pkcs8.pem"), retry=FAIL_FAST
    )
    with pytest.raises(sa.UnavailableError) as raised:
        bot.tokens()
    assert raised.value.details["last"] == {"transport": "connect"}


def test_an_untrusted_server_is_a_tls_error(cert_pod):
    bot = sa.Bot.from_values(
        cert_pod.urls["pod"], "bot", private_key_path=str(KEYS / "bot-2048.pkcs8.pem"), retry=FAIL_FAST
    )
    with pytest.raises(sa.TlsError) as raised:
        bot.tokens()
    assert isinstance(raised.value, sa.TransportError)


def test_a_url_outside_the_services_is_refused(rsa_pod):
    bot = rsa_bot(rsa_pod)
    with pytest.raises(sa.UsageError):
        bot.send("GET", "https://elsewhere.example/pod/v2/sessioninfo")


def test_tokens_and_responses_show_no_secret(rsa_pod):
    bot = rsa_bot(rsa_pod)
    tokens = bot.tokens()
    response = bot.send("GET", rsa_pod.urls["pod"] + "/pod/v2/sessioninfo")
    for shown in (repr(tokens), str(tokens), repr(bot), repr(response), repr(bot.state())):
        assert tokens.session_token not in shown
        assert tokens.key_manager_token not in shown


def test_the_gil_is_released_while_the_bot_logs_in(slow_pod):
    # Each answer takes 300 ms: were the GIL held during the login, this thread would stop for as long.
    bot = rsa_bot(slow_pod)
    worker = threading.Thread(target=bot.tokens)
    ticks = []
    worker.start()
    deadline = time.monotonic() + JOIN_TIMEOUT_S
    while worker.is_alive() and time.monotonic() < deadline:
        ticks.append(time.monotonic())
        time.sleep(0.005)
    worker.join(JOIN_TIMEOUT_S)
    assert not worker.is_alive()
    assert bot.state()["type"] == "ready"
    gaps = [b - a for a, b in zip(ticks, ticks[1:])]
    assert ticks[-1] - ticks[0] >= 0.25, "the login waited for answers of 300 ms"
    assert max(gaps) < 0.2, f"this thread stood still for {max(gaps):.3f} s"


def test_a_bdk_file_with_a_proxy_password_shows_it_nowhere(tmp_path):
    config = {
        "host": "acme.symphony.com",
        "proxy": {"host": "proxy.example", "port": 3128, "username": "me", "password": CANARY},
        "bot": {"username": "bot", "privateKey": {"path": str(tmp_path / "missing.pem")}},
    }
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    with pytest.raises(sa.ConfigurationError) as raised:
        sa.Bot.from_config(str(path))
    assert "missing.pem" in str(raised.value)
    assert CANARY not in str(raised.value) and CANARY not in repr(raised.value)
    (tmp_path / "missing.pem").write_bytes((KEYS / "bot-2048.pkcs8.pem").read_bytes())
    bot = sa.Bot.from_config(str(path))
    assert CANARY not in repr(bot) and CANARY not in repr(sa.Config.from_file(str(path)))
