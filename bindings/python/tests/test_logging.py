"""`install_logging()`: the native side's spans and events (and ureq's `log` records) reach Python's `logging`
under `symphony_auth.*` against the `fake-pod` binary: a login, a 401 re-login and a failure each leave their
records, the level cap holds records back on the Rust side, ureq-proto's TRACE dump never reaches Python (so a
bot still works at level 1), no record holds a secret, and threads logging during a login storm never deadlock."""

from __future__ import annotations

import base64
import json
import logging
import re
import subprocess
import sys
from pathlib import Path

import pytest

import symphony_auth as sa
from conftest import KEYS, RSA_BOT

TIMEOUT_S = 60
STORM_TIMEOUT_S = 180
CORE = "symphony_auth.symphony_auth_core.trace"
KEY_PEM = (KEYS / "bot-2048.pkcs8.pem").read_text()
FAIL_FAST = {"max_attempts": 1, "initial_interval_ms": 10, "multiplier": 2.0, "max_interval_ms": 100}
HEX_64 = re.compile(r"[0-9a-fA-F]{64}")


def rsa_config(pod, username: str = RSA_BOT, **kwargs) -> sa.Config:
    return sa.Config(
        pod.urls["pod"],
        username,
        private_key_path=str(KEYS / "bot-2048.pkcs8.pem"),
        key_manager_url=pod.urls["key_manager"],
        agent_url=pod.urls["agent"],
        **kwargs,
    )


class Records(logging.Handler):
    """Every record of the `symphony_auth` loggers, thread-safe."""

    def __init__(self) -> None:
        super().__init__(level=1)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def named(self, name: str) -> list[logging.LogRecord]:
        return [r for r in self.records if r.name == name]

    def messages(self, name: str = CORE) -> list[str]:
        return [r.getMessage() for r in self.named(name)]


@pytest.fixture
def logs():
    """A handler on `symphony_auth` at the lowest level, the bridge installed at it; afterwards, the bridge off."""
    logger = logging.getLogger("symphony_auth")
    handler = Records()
    logger.addHandler(handler)
    logger.setLevel(1)
    assert sa.install_logging() is True, "built with the tracing feature, nothing else installed a subscriber"
    try:
        yield handler
    finally:
        sa.install_logging(logging.CRITICAL + 1)
        logger.removeHandler(handler)
        logger.setLevel(logging.NOTSET)


def secrets_of(*tokens: sa.Tokens) -> list[str]:
    """The strings no record may hold: the tokens, their base64, and the key's base64 lines."""
    found = []
    for t in tokens:
        for token in (t.session_token, t.key_manager_token):
            if token:
                found += [token, base64.b64encode(token.encode()).decode().rstrip("=")]
    found += [line for line in KEY_PEM.splitlines() if line and not line.startswith("-----")]
    return found


def assert_no_canary(records: list[logging.LogRecord], secrets: list[str]) -> None:
    assert records, "nothing was logged: nothing to check"
    for record in records:
        texts = [record.getMessage(), str(record.msg), repr(record.args)]
        for text in texts:
            assert "eyJ" not in text, f"a JWT in {record.name}: {text[:200]!r}"
            assert not HEX_64.search(text), f"a 64-hex run in {record.name}: {text[:200]!r}"
            for secret in secrets:
                assert secret not in text, f"a secret in {record.name}: {text[:200]!r}"


def test_a_login_is_traced_with_the_span_fields(rsa_pod, logs):
    bot = sa.Bot(rsa_config(rsa_pod))
    tokens = bot.tokens()
    started = [m for m in logs.messages() if "login started" in m]
    assert len(started) == 1, logs.messages()
    pod = rsa_pod.urls["pod"].rstrip("/")
    for field in (f'username="{RSA_BOT}"', 'method="rsa"', "attempt=1", 'reason="initial"'):
        assert field in started[0], started[0]
    assert f"{pod}/login/pubkey/authenticate" in started[0], started[0]
    logged_in = [r for r in logs.named(CORE) if "logged in" in r.getMessage()]
    assert len(logged_in) == 1 and logged_in[0].levelno == logging.INFO
    assert "generation=1" in logged_in[0].getMessage() and f'username="{RSA_BOT}"' in logged_in[0].getMessage()
    # ureq's `log` records come through the same bridge, each under its own target.
    assert any(r.name.startswith("symphony_auth.ureq.") for r in logs.records), {r.name for r in logs.records}
    assert_no_canary(logs.records, secrets_of(tokens))


def test_a_401_relogin_is_traced(rsa_pod, logs):
    bot = sa.Bot(rsa_config(rsa_pod))
    first = bot.tokens()
    rsa_pod.expire()
    response = bot.send("GET", rsa_pod.urls["pod"] + "/pod/v2/sessioninfo")
    assert response.status == 200
    second = bot.tokens()
    assert second.generation == 2
    refused = [r for r in logs.named(CORE) if "HTTP 401" in r.getMessage()]
    assert len(refused) == 1 and refused[0].levelno == logging.WARNING
    assert "generation=1" in refused[0].getMessage()
    relogin = [m for m in logs.messages() if "login started" in m and 'reason="relogin"' in m]
    assert len(relogin) == 1, logs.messages()
    assert any("logged in" in m and "generation=2" in m for m in logs.messages()), logs.messages()
    assert_no_canary(logs.records, secrets_of(first, second))


def test_a_rejected_login_is_traced_with_its_class(rsa_pod, logs):
    bot = sa.Bot(rsa_config(rsa_pod, "nobody"))
    with pytest.raises(sa.CredentialsRejectedError):
        bot.tokens()
    failed = [r for r in logs.named(CORE) if "login failed" in r.getMessage()]
    assert len(failed) == 1 and failed[0].levelno == logging.ERROR
    assert 'class="rejected"' in failed[0].getMessage() and "status=401" in failed[0].getMessage()
    assert 'username="nobody"' in failed[0].getMessage()
    assert_no_canary(logs.records, secrets_of())


def test_an_unreachable_pod_is_traced_as_unavailable(logs):
    bot = sa.Bot.from_values(
        "http://127.0.0.1:9", "bot", private_key_path=str(KEYS / "bot-2048.pkcs8.pem"), retry=FAIL_FAST
    )
    with pytest.raises(sa.UnavailableError):
        bot.tokens()
    failed = [m for m in logs.messages() if "login failed" in m]
    assert len(failed) == 1 and 'class="unavailable"' in failed[0], logs.messages()


def test_the_cap_keeps_records_below_it_on_the_rust_side(rsa_pod, logs):
    # The Python logger takes everything (level 1); only the cap set at install can hold these back.
    sa.install_logging(logging.WARNING)
    sa.Bot(rsa_config(rsa_pod)).tokens()
    assert logs.records == []
    sa.install_logging(logging.INFO)
    sa.Bot(rsa_config(rsa_pod)).tokens()
    assert any("logged in" in m for m in logs.messages()), logs.messages()
    assert all(r.levelno >= logging.INFO for r in logs.records), [(r.name, r.levelno) for r in logs.records]


def test_a_bot_works_at_level_1_and_the_ureq_proto_dump_never_reaches_python(rsa_pod, caplog):
    # What `logging.basicConfig(level=1)` does to the root logger; the bridge reads the effective level.
    caplog.set_level(1)
    try:
        assert sa.install_logging() is True
        bot = sa.Bot(rsa_config(rsa_pod))
        tokens = bot.tokens()
        assert bot.send("GET", rsa_pod.urls["pod"] + "/pod/v2/sessioninfo").status == 200
    finally:
        sa.install_logging(logging.CRITICAL + 1)
    ours = [r for r in caplog.records if r.name.startswith("symphony_auth.")]
    assert any(r.levelno == 5 and r.levelname == "TRACE" for r in ours), "TRACE records are bridged"
    assert not [r for r in ours if r.name.startswith("symphony_auth.ureq_proto") and r.levelno < logging.DEBUG]
    assert_no_canary(ours, secrets_of(tokens))


def test_threads_logging_through_a_login_storm_never_deadlock():
    """`logging_storm.py` in a child process: a deadlock between a lock and the GIL freezes every Python thread,
    timeouts included, so only a process outside it can fail the test."""
    storm = Path(__file__).with_name("logging_storm.py")
    try:
        run = subprocess.run(
            [sys.executable, str(storm)], capture_output=True, text=True, timeout=STORM_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"the login storm did not finish in {STORM_TIMEOUT_S} s: deadlock")
    assert run.returncode == 0, run.stderr[-4000:]
    summary = json.loads(run.stdout)
    assert summary["refused_401"] >= 5, summary
